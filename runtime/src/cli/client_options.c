/* client_options.c: the connection and logging option sets shared by every lunnel command
 * (client_options.h), and the protocol client built from them. */
#include "cli/client_options.h"

#include <ev.h>
#include <stdio.h>
#include <string.h>

#include "cli/exit_status.h"
#include "lunnel/api.h"
#include "lunnel/credentials.h"
#include "lunnel/http.h"
#include "lunnel/log.h"

static const lunnel_opt connection_opts[] = {
    {"endpoint", LUNNEL_OPT_STRING, NULL, "TABLESTORE_ENDPOINT", NULL, "URL", 1,
     "service endpoint, e.g. https://myinst.cn-hangzhou.ots.aliyuncs.com or http://127.0.0.1:8866"},
    {"instance", LUNNEL_OPT_STRING, NULL, "TABLESTORE_INSTANCE", NULL, "NAME", 1, "instance name"},
    {"access-key-id", LUNNEL_OPT_STRING, NULL, "TABLESTORE_ACCESS_KEY_ID", NULL, "ID", 0,
     "access key id"},
    {"access-key-secret", LUNNEL_OPT_SECRET, NULL, "TABLESTORE_ACCESS_KEY_SECRET", NULL, "SECRET",
     0, "access key secret (prefer the environment variable: flags show in ps)"},
    {"security-token", LUNNEL_OPT_SECRET, NULL, "TABLESTORE_SECURITY_TOKEN", NULL, "TOKEN", 0,
     "STS security token"},
    {"credentials-command", LUNNEL_OPT_STRING, NULL, "LUNNEL_CREDENTIALS_COMMAND", NULL, "CMD", 0,
     "shell command printing JSON {AccessKeyId, AccessKeySecret, SecurityToken, Expiration}; "
     "re-run before expiry and once after OTSAuthFailed"},
    {"ca-file", LUNNEL_OPT_STRING, NULL, "LUNNEL_CA_FILE", NULL, "FILE", 0,
     "PEM CA bundle to verify the server with, instead of the system's"},
    {"request-timeout", LUNNEL_OPT_DURATION, "60s", NULL, NULL, NULL, 0,
     "timeout of one HTTP attempt"},
    {"retry-window", LUNNEL_OPT_DURATION, "35s", NULL, NULL, NULL, 0,
     "retries of a call (other than ReadRecords) stop after this long (0 = no retries)"},
    {"read-retry-window", LUNNEL_OPT_DURATION, "75s", NULL, NULL, NULL, 0,
     "retries of ReadRecords stop after this long"},
    {"max-connections", LUNNEL_OPT_INT, "32", NULL, NULL, "N", 0,
     "service calls in flight at once (one connection each; more wait in a queue); Connect, "
     "Heartbeat and Shutdown never wait (up to 4 more)"},
};
static const lunnel_opt logging_opts[] = {
    {"log-level", LUNNEL_OPT_ENUM, "info", "LUNNEL_LOG_LEVEL", "trace|debug|info|warn|error|off",
     NULL, 0, "log threshold"},
    {"log-format", LUNNEL_OPT_ENUM, "text", "LUNNEL_LOG_FORMAT", "text|json", NULL, 0,
     "log line format on stderr"},
};
const lunnel_opt_set lunnel_opts_connection = LUNNEL_OPT_SET("Connection", connection_opts);
const lunnel_opt_set lunnel_opts_logging = LUNNEL_OPT_SET("Logging", logging_opts);

int lunnel_opts_apply_logging(const lunnel_opt_values *v)
{
    lunnel_log_level lv;
    lunnel_log_format fm;
    const char *l = lunnel_opts_str(v, "log-level"), *fs = lunnel_opts_str(v, "log-format");
    if (l && lunnel_log_parse_level(l, &lv) == 0) lunnel_log_set_level(lv);
    if (fs && lunnel_log_parse_format(fs, &fm) == 0) lunnel_log_set_format(fm);
    return 0;
}

int lunnel_opts_open_client(const lunnel_opt_values *v, struct ev_loop *loop, lunnel_client *out,
                            char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    lunnel_error e;
    const char *cmd = lunnel_opts_str(v, "credentials-command");
    if (cmd) {
        out->creds = lunnel_credentials_new_command(cmd, 30, &e);
    } else {
        out->creds = lunnel_credentials_new_static(lunnel_opts_str(v, "access-key-id"),
                                                   lunnel_opts_str(v, "access-key-secret"),
                                                   lunnel_opts_str(v, "security-token"), &e);
    }
    if (!out->creds) {
        snprintf(err, cap, "%s", e.message);
        return lunnel_error_exit_status(&e);
    }
    lunnel_credentials_start(out->creds, loop);
    const char *ca = lunnel_opts_str(v, "ca-file");
    if (ca) {
        FILE *cf = fopen(ca, "r");
        if (!cf) {
            snprintf(err, cap, "--ca-file %.200s cannot be read", ca);
            lunnel_opts_close_client(out);
            return 2;
        }
        fclose(cf);
    }
    lunnel_http_config hc = {
        .endpoint = lunnel_opts_str(v, "endpoint"),
        .instance = lunnel_opts_str(v, "instance"),
        .ca_file = ca,
        .timeout_s = lunnel_opts_num(v, "request-timeout"),
        .max_connections = (int)lunnel_opts_int(v, "max-connections"),
    };
    if (hc.max_connections < 1) {
        snprintf(err, cap, "--max-connections must be at least 1");
        lunnel_opts_close_client(out);
        return 2;
    }
    out->http = lunnel_http_new(loop, &hc, out->creds, &e);
    if (!out->http) {
        snprintf(err, cap, "%s", e.message);
        lunnel_opts_close_client(out);
        return e.kind == LUNNEL_NET_INVALID ? 2 : 1;
    }
    lunnel_api_config ac;
    lunnel_api_config_defaults(&ac);
    if (lunnel_opts_has(v, "retry-window"))
        ac.default_retry.window_ms = lunnel_opts_num(v, "retry-window") * 1000;
    if (lunnel_opts_has(v, "read-retry-window"))
        ac.read_records_retry.window_ms = lunnel_opts_num(v, "read-retry-window") * 1000;
    out->api = lunnel_api_new(out->http, &ac);
    if (!out->api) {
        snprintf(err, cap, "out of memory");
        lunnel_opts_close_client(out);
        return 1;
    }
    return 0;
}

void lunnel_opts_close_client(lunnel_client *c)
{
    if (c->api) lunnel_api_free(c->api);
    if (c->http) lunnel_http_free(c->http);
    if (c->creds) lunnel_credentials_free(c->creds);
    memset(c, 0, sizeof *c);
}
