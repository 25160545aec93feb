/* test_options.c: lunnel-emulator's command line on the shared option machinery: values
 * land in the config, defaults stay when an option is absent, flags, and every refusal in
 * the emulator's own words (unknown option, stray argument, missing value, bad byte size,
 * numbers out of their bounds, timeouts out of (0, 86400], "--" which is no option of
 * ours); --help shows the defaults. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "options.h"
#include "testutil.h"

static lunnel_emu_config cfg;
static char err[512];

static int parse(lunnel_opt_values **v, ...)
{
    char *argv[32] = {"lunnel-emulator"};
    int argc = 1;
    va_list ap;
    va_start(ap, v);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 31)
        argv[argc++] = (char *)a;
    va_end(ap);
    lunnel_emu_config_defaults(&cfg);
    err[0] = 0;
    return lunnel_emu_options_parse(argc, argv, &cfg, v, err, sizeof err);
}

/* Parses one bad command line and checks the whole message. */
static void refused(const char *want, const char *a1, const char *a2)
{
    lunnel_opt_values *v = NULL;
    CHECK_INT(parse(&v, a1, a2, NULL), LUNNEL_OPTS_ERROR);
    CHECK(v == NULL);
    CHECK_STR(err, want);
}

int main(void)
{
    lunnel_opt_values *v = NULL;
    CHECK_INT(parse(&v, "--listen", "127.0.0.1:0", "--partitions=8", "--max-request-bytes", "2MiB",
                    "--idle-timeout", "0.5", "--retention", "0", "--verbose", "--data-dir", "/x",
                    NULL),
              LUNNEL_OPTS_OK);
    CHECK_STR(cfg.listen, "127.0.0.1:0");
    CHECK_INT(cfg.partitions, 8);
    CHECK_INT(cfg.max_request_bytes, 2u << 20);
    CHECK(cfg.idle_timeout_s == 0.5);
    CHECK_INT(cfg.retention_s, 0);
    CHECK_INT(cfg.verbose, 1);
    CHECK_STR(cfg.data_dir, "/x");
    CHECK_STR(cfg.instance, "lunnel"); /* default kept */
    CHECK_INT(cfg.batch_records, 1000);
    CHECK_INT(cfg.sign_tunnel_responses, 0);
    CHECK(lunnel_emu_option_given(v, "partitions"));
    CHECK(!lunnel_emu_option_given(v, "batch-records"));
    lunnel_opts_free(v);

    CHECK_INT(parse(&v, "--help", NULL), LUNNEL_OPTS_HELP);
    CHECK_INT(parse(&v, NULL), LUNNEL_OPTS_OK);
    CHECK_INT(cfg.partitions, 4);
    lunnel_opts_free(v);

    refused("unknown option '--no-such-option' (see --help)", "--no-such-option", NULL);
    refused("unknown option '--nope=1' (see --help)", "--nope=1", NULL);
    refused("unexpected argument '-x' (see --help)", "-x", NULL);
    refused("unexpected argument 'stray' (see --help)", "stray", NULL);
    refused("option --listen needs a value", "--listen", NULL);
    refused("unknown option '--' (see --help)", "--", "x");
    refused("--verbose: bad value 'maybe' (a flag: true or false, or nothing)", "--verbose=maybe",
            NULL);
    refused("--max-request-bytes: bad byte size '12XB' (e.g. 1048576, 1MiB)", "--max-request-bytes",
            "12XB");
    refused("--partitions: bad number '0'", "--partitions", "0");
    refused("--partitions: bad number '1000001'", "--partitions", "1000001");
    refused("--batch-records: bad number 'ten'", "--batch-records", "ten");
    refused("--retention: bad number '-1'", "--retention", "-1");
    refused("--retention: bad number '99999999999999999999'", "--retention",
            "99999999999999999999");
    refused("--idle-timeout: bad number of seconds '0'", "--idle-timeout", "0");
    refused("--body-timeout: bad number of seconds '86401'", "--body-timeout", "86401");
    refused("--header-timeout: bad number of seconds 'nan'", "--header-timeout", "nan");

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    lunnel_emu_config d;
    lunnel_emu_config_defaults(&d);
    lunnel_emu_usage(f, &d);
    fclose(f);
    CHECK(strncmp(text, "usage: lunnel-emulator [options]\n", 33) == 0);
    CHECK(strstr(text, "  --partitions           partitions rows hash to (tunnel channels) "
                       "(default 4)\n") != NULL);
    CHECK(strstr(text, "(default 127.0.0.1:8866)") != NULL);
    free(text);
    TEST_DONE();
}
