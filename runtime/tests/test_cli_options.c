/* test_cli_options.c: the option tables of the lunnel commands (base's lunnel/options.h
 * with the CLI's shared sets, src/cli/client_options.c compiled in here): flag > env >
 * default precedence, --name=value, bool flags, duration/time/enum validation with messages
 * naming the option (and the env var), required options, positional arguments, -h, and
 * secrets never shown by help, Markdown or the printed configuration. */
#include <stdarg.h>
#include <stdlib.h>

#include "cli/client_options.h"
#include "testutil.h"

static const lunnel_opt own[] = {
    {"table", LUNNEL_OPT_STRING, NULL, NULL, NULL, "T", 1, "table"},
    {"type", LUNNEL_OPT_ENUM, NULL, NULL, "BaseData|Stream|BaseAndStream", NULL, 0, "type"},
    {"start-time", LUNNEL_OPT_TIME, NULL, NULL, NULL, NULL, 0, "start"},
    {"interval", LUNNEL_OPT_DURATION, "5s", "T_INTERVAL", NULL, NULL, 0, "interval"},
    {"count", LUNNEL_OPT_INT, "3", NULL, NULL, NULL, 0, "count"},
    {"json", LUNNEL_OPT_BOOL, NULL, "T_JSON", NULL, NULL, 0, "json"},
};
static const lunnel_opt_set own_set = LUNNEL_OPT_SET("Test", own);
static const lunnel_command_spec spec = {"test cmd",
                                         "lunnel test cmd --table T [FILE]",
                                         "A test command.",
                                         {&own_set, &lunnel_opts_connection, &lunnel_opts_logging},
                                         3,
                                         0,
                                         1};

static int parse(lunnel_opt_values **v, char *err, size_t cap, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, cap);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 31)
        argv[argc++] = (char *)a;
    va_end(ap);
    return lunnel_opts_parse(&spec, argc, argv, 1, v, err, cap);
}

static char *capture(void (*fn)(const void *, FILE *), const void *arg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(arg, f);
    fclose(f);
    return buf;
}
static void help_fn(const void *a, FILE *f)
{
    lunnel_opts_print_help(a, f);
}
static void md_fn(const void *a, FILE *f)
{
    lunnel_opts_print_markdown(a, f);
}
static void cfg_fn(const void *a, FILE *f)
{
    lunnel_opts_print_config(a, f);
}

int main(void)
{
    char err[256];
    lunnel_opt_values *v;
    setenv("TABLESTORE_ENDPOINT", "http://env-endpoint", 1);
    setenv("TABLESTORE_INSTANCE", "inst", 1);
    setenv("TABLESTORE_ACCESS_KEY_SECRET", "env-secret-value", 1);
    setenv("T_INTERVAL", "250ms", 1);
    unsetenv("T_JSON");

    CHECK_INT(parse(&v, err, sizeof err, "cmd", "--table", "t1", "--type=stream", "--json",
                    "--start-time", "2026-11-21T10:00:00Z", "--endpoint", "http://flag", "file.lua",
                    NULL),
              LUNNEL_OPTS_OK);
    CHECK_STR(lunnel_opts_str(v, "table"), "t1");
    CHECK_STR(lunnel_opts_str(v, "type"), "Stream"); /* canonical spelling */
    CHECK(lunnel_opts_bool(v, "json"));
    CHECK(lunnel_opts_time(v, "start-time") == 1795255200000LL);
    CHECK_STR(lunnel_opts_str(v, "endpoint"), "http://flag"); /* flag beats env */
    CHECK_STR(lunnel_opts_str(v, "instance"), "inst");        /* env */
    CHECK(lunnel_opts_num(v, "interval") == 0.25);            /* env beats default */
    CHECK_INT(lunnel_opts_int(v, "count"), 3);                /* default */
    CHECK(lunnel_opts_num(v, "request-timeout") == 60);
    CHECK_STR(lunnel_opts_str(v, "log-level"), "info");
    CHECK(!lunnel_opts_has(v, "credentials-command"));
    CHECK_INT(lunnel_opts_argc(v), 1);
    CHECK_STR(lunnel_opts_arg(v, 0), "file.lua");
    char *cfg = capture(cfg_fn, v);
    CHECK(strstr(cfg, "access-key-secret = **** (env)") != NULL);
    CHECK(strstr(cfg, "env-secret-value") == NULL);
    CHECK(strstr(cfg, "endpoint = http://flag (flag)") != NULL);
    free(cfg);
    lunnel_opts_free(v);

    /* Errors name the option (and where a bad value came from). */
    CHECK_INT(parse(&v, err, sizeof err, "cmd", "--type", "Stream", NULL), LUNNEL_OPTS_ERROR);
    CHECK_STR(err, "missing --table");
    CHECK(v == NULL);
    CHECK_INT(parse(&v, err, sizeof err, "cmd", "--table", "t", "--type", "Nope", NULL),
              LUNNEL_OPTS_ERROR);
    CHECK(strstr(err, "--type must be one of BaseData|Stream|BaseAndStream") != NULL);
    CHECK_INT(parse(&v, err, sizeof err, "cmd", "--table", "t", "--count", "x1", NULL),
              LUNNEL_OPTS_ERROR);
    CHECK(strstr(err, "--count expects an integer") != NULL);
    CHECK_INT(parse(&v, err, sizeof err, "cmd", "--table", "t", "--start-time", "noon", NULL),
              LUNNEL_OPTS_ERROR);
    CHECK(strstr(err, "RFC 3339") != NULL);
    CHECK_INT(parse(&v, err, sizeof err, "cmd", "--table", "t", "--bogus", NULL),
              LUNNEL_OPTS_ERROR);
    CHECK(strstr(err, "unknown option --bogus") != NULL);
    CHECK_INT(parse(&v, err, sizeof err, "cmd", "--table", NULL), LUNNEL_OPTS_ERROR);
    CHECK(strstr(err, "--table needs a value") != NULL);
    CHECK_INT(parse(&v, err, sizeof err, "cmd", "--table", "t", "a", "b", NULL), LUNNEL_OPTS_ERROR);
    CHECK(strstr(err, "unexpected argument \"b\"") != NULL);
    setenv("T_INTERVAL", "soon", 1);
    CHECK_INT(parse(&v, err, sizeof err, "cmd", "--table", "t", NULL), LUNNEL_OPTS_ERROR);
    CHECK(strstr(err, "$T_INTERVAL (for --interval)") != NULL);
    setenv("T_INTERVAL", "2m", 1);
    setenv("T_JSON", "yes", 1);
    CHECK_INT(parse(&v, err, sizeof err, "cmd", "--table", "t", "--", "--not-an-option", NULL),
              LUNNEL_OPTS_OK);
    CHECK(lunnel_opts_num(v, "interval") == 120);
    CHECK(lunnel_opts_bool(v, "json"));
    CHECK_STR(lunnel_opts_arg(v, 0), "--not-an-option");
    lunnel_opts_free(v);
    CHECK_INT(parse(&v, err, sizeof err, "cmd", "--table", "t", "--json=false", NULL),
              LUNNEL_OPTS_OK);
    CHECK(!lunnel_opts_bool(v, "json"));
    lunnel_opts_free(v);
    CHECK_INT(parse(&v, err, sizeof err, "cmd", "-h", NULL), LUNNEL_OPTS_HELP);
    unsetenv("TABLESTORE_ENDPOINT");
    CHECK_INT(parse(&v, err, sizeof err, "cmd", "--table", "t", NULL), LUNNEL_OPTS_ERROR);
    CHECK_STR(err, "missing --endpoint (or $TABLESTORE_ENDPOINT)");

    /* Help and Markdown: defaults and env names, never a secret's value. */
    char *help = capture(help_fn, &spec);
    CHECK(strstr(help, "--interval DURATION") != NULL);
    CHECK(strstr(help, "default 5s, $T_INTERVAL") != NULL);
    CHECK(strstr(help, "$TABLESTORE_ACCESS_KEY_SECRET") != NULL);
    CHECK(strstr(help, "env-secret-value") == NULL);
    free(help);
    char *md = capture(md_fn, &spec);
    CHECK(strstr(md, "### `lunnel test cmd`") != NULL);
    CHECK(strstr(md, "| `--type BaseData\\|Stream\\|BaseAndStream` |") != NULL);
    CHECK(strstr(md, "| `--endpoint URL` | required | `TABLESTORE_ENDPOINT` |") != NULL);
    CHECK(strstr(md, "env-secret-value") == NULL);
    free(md);
    TEST_DONE();
}
