/* test_cli_exit_status.c: the exit statuses of every lunnel command (README "Usage"): each
 * outcome's number, and errors through their outcome to the status a script sees. */
#include "cli/exit_status.h"
#include "test_errors_util.h"
#include "testutil.h"

int main(void)
{
    CHECK_INT(lunnel_exit_status_of(LUNNEL_OUTCOME_OK), 0);
    CHECK_INT(lunnel_exit_status_of(LUNNEL_OUTCOME_FAILED), 1);
    CHECK_INT(lunnel_exit_status_of(LUNNEL_OUTCOME_USAGE), 2);
    CHECK_INT(lunnel_exit_status_of(LUNNEL_OUTCOME_AUTH), 3);
    CHECK_INT(lunnel_exit_status_of(LUNNEL_OUTCOME_EXPIRED), 4);
    CHECK_INT(lunnel_exit_status_of(LUNNEL_OUTCOME_NOT_FOUND), 5);
    CHECK_INT(LUNNEL_EXIT_STUCK, 6);

    lunnel_error e = tu_server_error(400, "OTSTunnelExpired", "");
    CHECK_INT(lunnel_error_exit_status(&e), LUNNEL_EXIT_EXPIRED);
    e = tu_server_error(403, "OTSPermissionDenied", "");
    CHECK_INT(lunnel_error_exit_status(&e), LUNNEL_EXIT_AUTH);
    e = tu_server_error(400, "OTSParameterInvalid", "tunnel does not exist");
    CHECK_INT(lunnel_error_exit_status(&e), LUNNEL_EXIT_NOT_FOUND);
    e = tu_server_error(400, "OTSParameterInvalid", "bad");
    CHECK_INT(lunnel_error_exit_status(&e), LUNNEL_EXIT_USAGE);
    e = tu_server_error(409, "OTSTunnelExist", "");
    CHECK_INT(lunnel_error_exit_status(&e), LUNNEL_EXIT_RUNTIME);
    lunnel_error_clear(&e);
    CHECK_INT(lunnel_error_exit_status(&e), LUNNEL_EXIT_OK);
    lunnel_error_set(&e, LUNNEL_NET_CREDENTIALS, "x");
    CHECK_INT(lunnel_error_exit_status(&e), LUNNEL_EXIT_AUTH);
    TEST_DONE();
}
