/* exit_status.c: outcomes of runs and commands -> process exit statuses (exit_status.h). */
#include "cli/exit_status.h"

int lunnel_exit_status_of(lunnel_outcome outcome)
{
    switch (outcome) {
    case LUNNEL_OUTCOME_OK:
        return LUNNEL_EXIT_OK;
    case LUNNEL_OUTCOME_USAGE:
        return LUNNEL_EXIT_USAGE;
    case LUNNEL_OUTCOME_AUTH:
        return LUNNEL_EXIT_AUTH;
    case LUNNEL_OUTCOME_EXPIRED:
        return LUNNEL_EXIT_EXPIRED;
    case LUNNEL_OUTCOME_NOT_FOUND:
        return LUNNEL_EXIT_NOT_FOUND;
    case LUNNEL_OUTCOME_FAILED:
        break;
    }
    return LUNNEL_EXIT_RUNTIME;
}

int lunnel_error_exit_status(const lunnel_error *err)
{
    return lunnel_exit_status_of(lunnel_error_outcome(err));
}
