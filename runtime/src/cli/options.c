/* options.c: the option descriptor machinery of options.h (parse, help, Markdown reference,
 * printed config) and the shared connection/logging sets, plus building the protocol client
 * from them. Commands declare tables; nothing else lists options. */
#include "lunnel/options.h"
#include "cli/exit_status.h"
#include "lunnel/bytesize.h"

#include <ctype.h>
#include <ev.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lunnel/api.h"
#include "lunnel/credentials.h"
#include "lunnel/http.h"
#include "lunnel/log.h"
#include "lunnel/timeutil.h"

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

typedef enum { SRC_NONE = 0, SRC_DEFAULT, SRC_ENV, SRC_FLAG } value_source;

typedef struct {
    const lunnel_opt *opt;
    char *text; /* owned copy; NULL when absent */
    value_source src;
    double num;
    int64_t i64;
} slot;

struct lunnel_opt_values {
    slot *slots;
    size_t n;
    char **args;
    int n_args;
};

static void errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static const char *type_metavar(const lunnel_opt *o)
{
    if (o->metavar) return o->metavar;
    switch (o->type) {
    case LUNNEL_OPT_INT:
        return "N";
    case LUNNEL_OPT_NUMBER:
        return "X";
    case LUNNEL_OPT_DURATION:
        return "DURATION";
    case LUNNEL_OPT_TIME:
        return "TIME";
    case LUNNEL_OPT_BYTES:
        return "BYTES";
    case LUNNEL_OPT_ENUM:
        return o->choices;
    case LUNNEL_OPT_BOOL:
        return "";
    default:
        return "VALUE";
    }
}

static int choice_match(const char *choices, const char *v, char *canon, size_t cap)
{
    const char *p = choices;
    size_t vl = strlen(v);
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == vl && strncasecmp(p, v, l) == 0) {
            snprintf(canon, cap, "%.*s", (int)l, p);
            return 1;
        }
        p += l + (bar ? 1 : 0);
    }
    return 0;
}

/* Validates and converts s->text; message names the option and where the value came from. */
static int convert(slot *s, char *err, size_t cap)
{
    const lunnel_opt *o = s->opt;
    const char *t = s->text;
    const char *from = s->src == SRC_ENV ? o->env : NULL;
    char where[96];
    if (from)
        snprintf(where, sizeof where, "$%s (for --%s)", from, o->name);
    else
        snprintf(where, sizeof where, "--%s", o->name);
    char *end;
    switch (o->type) {
    case LUNNEL_OPT_INT: {
        long long v = strtoll(t, &end, 10);
        if (!*t || *end) {
            errf(err, cap, "%s expects an integer, got \"%.60s\"", where, t);
            return -1;
        }
        s->i64 = v;
        s->num = (double)v;
        return 0;
    }
    case LUNNEL_OPT_BYTES: {
        uint64_t b;
        if (lunnel_bytes_parse(t, &b) != 0) {
            errf(err, cap, "%s expects a byte size like 67108864, 64MiB or 512KiB, got \"%.60s\"",
                 where, t);
            return -1;
        }
        s->i64 = (int64_t)b;
        s->num = (double)b;
        return 0;
    }
    case LUNNEL_OPT_NUMBER:
        s->num = strtod(t, &end);
        if (!*t || *end) {
            errf(err, cap, "%s expects a number, got \"%.60s\"", where, t);
            return -1;
        }
        return 0;
    case LUNNEL_OPT_DURATION:
        if (lunnel_duration_parse(t, &s->num) != 0) {
            errf(err, cap, "%s expects a duration like 500ms, 5s or 2m, got \"%.60s\"", where, t);
            return -1;
        }
        return 0;
    case LUNNEL_OPT_TIME:
        if (lunnel_time_parse(t, &s->i64) != 0) {
            errf(err, cap,
                 "%s expects an RFC 3339 time (2026-11-21T10:00:00Z) or epoch milliseconds, got "
                 "\"%.60s\"",
                 where, t);
            return -1;
        }
        return 0;
    case LUNNEL_OPT_BOOL:
        if (!strcasecmp(t, "1") || !strcasecmp(t, "true") || !strcasecmp(t, "yes") ||
            !strcasecmp(t, "on"))
            s->i64 = 1;
        else if (!strcasecmp(t, "0") || !strcasecmp(t, "false") || !strcasecmp(t, "no") ||
                 !strcasecmp(t, "off") || !*t)
            s->i64 = 0;
        else {
            errf(err, cap, "%s expects true or false, got \"%.60s\"", where, t);
            return -1;
        }
        return 0;
    case LUNNEL_OPT_ENUM: {
        char canon[64];
        if (!choice_match(o->choices, t, canon, sizeof canon)) {
            errf(err, cap, "%s must be one of %s, got \"%.60s\"", where, o->choices, t);
            return -1;
        }
        free(s->text);
        s->text = strdup(canon);
        return s->text ? 0 : -1;
    }
    case LUNNEL_OPT_SECRET:
        lunnel_log_add_secret(t);
        return 0;
    default:
        return 0;
    }
}

static slot *find_slot(const lunnel_opt_values *v, const char *name)
{
    for (size_t i = 0; v && i < v->n; i++)
        if (strcmp(v->slots[i].opt->name, name) == 0) return &v->slots[i];
    return NULL;
}

void lunnel_opts_free(lunnel_opt_values *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        if (v->slots[i].text) {
            /* may be a secret: wipe */
            memset(v->slots[i].text, 0, strlen(v->slots[i].text));
            free(v->slots[i].text);
        }
    }
    free(v->slots);
    free(v->args);
    free(v);
}

int lunnel_opts_parse(const lunnel_command_spec *spec, int argc, char **argv, int first,
                      lunnel_opt_values **out, char *err, size_t cap)
{
    *out = NULL;
    if (cap) err[0] = '\0';
    lunnel_opt_values *v = calloc(1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < spec->n_sets; i++)
        n += spec->sets[i]->n;
    if (!v || !(v->slots = calloc(n ? n : 1, sizeof(slot))) ||
        !(v->args = calloc((size_t)(argc > 0 ? argc : 1), sizeof(char *)))) {
        lunnel_opts_free(v);
        errf(err, cap, "out of memory");
        return LUNNEL_OPTS_ERROR;
    }
    for (size_t i = 0; i < spec->n_sets; i++)
        for (size_t j = 0; j < spec->sets[i]->n; j++)
            v->slots[v->n++].opt = &spec->sets[i]->opts[j];

    int only_args = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
            v->args[v->n_args++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            lunnel_opts_free(v);
            return LUNNEL_OPTS_HELP;
        }
        if (a[1] != '-') {
            errf(err, cap, "unknown option %s (see lunnel %s --help)", a, spec->name);
            lunnel_opts_free(v);
            return LUNNEL_OPTS_ERROR;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        slot *s = NULL;
        for (size_t k = 0; k < v->n; k++)
            if (strlen(v->slots[k].opt->name) == nl &&
                strncmp(v->slots[k].opt->name, name, nl) == 0)
                s = &v->slots[k];
        if (!s) {
            errf(err, cap, "unknown option --%.*s (see lunnel %s --help)", (int)nl, name,
                 spec->name);
            lunnel_opts_free(v);
            return LUNNEL_OPTS_ERROR;
        }
        const char *val;
        if (s->opt->type == LUNNEL_OPT_BOOL) {
            val = eq ? eq + 1 : "true";
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            errf(err, cap, "--%s needs a value (%s)", s->opt->name, type_metavar(s->opt));
            lunnel_opts_free(v);
            return LUNNEL_OPTS_ERROR;
        }
        free(s->text);
        s->text = strdup(val);
        s->src = SRC_FLAG;
        if (!s->text || convert(s, err, cap) != 0) {
            lunnel_opts_free(v);
            return LUNNEL_OPTS_ERROR;
        }
    }
    for (size_t k = 0; k < v->n; k++) {
        slot *s = &v->slots[k];
        if (s->src) continue;
        const char *e = s->opt->env ? getenv(s->opt->env) : NULL;
        if (e && *e) {
            s->text = strdup(e);
            s->src = SRC_ENV;
        } else if (s->opt->def) {
            s->text = strdup(s->opt->def);
            s->src = SRC_DEFAULT;
        } else {
            continue;
        }
        if (!s->text || convert(s, err, cap) != 0) {
            lunnel_opts_free(v);
            return LUNNEL_OPTS_ERROR;
        }
    }
    for (size_t k = 0; k < v->n; k++) {
        slot *s = &v->slots[k];
        if (s->opt->required && !s->text) {
            if (s->opt->env)
                errf(err, cap, "missing --%s (or $%s)", s->opt->name, s->opt->env);
            else
                errf(err, cap, "missing --%s", s->opt->name);
            lunnel_opts_free(v);
            return LUNNEL_OPTS_ERROR;
        }
    }
    if (v->n_args < spec->min_args || v->n_args > spec->max_args) {
        if (v->n_args > spec->max_args)
            errf(err, cap, "unexpected argument \"%.60s\" (usage: %s)", v->args[spec->max_args],
                 spec->usage);
        else
            errf(err, cap, "missing argument (usage: %s)", spec->usage);
        lunnel_opts_free(v);
        return LUNNEL_OPTS_ERROR;
    }
    *out = v;
    return LUNNEL_OPTS_OK;
}

int lunnel_opts_has(const lunnel_opt_values *v, const char *name)
{
    slot *s = find_slot(v, name);
    return s && s->text;
}
const char *lunnel_opts_str(const lunnel_opt_values *v, const char *name)
{
    slot *s = find_slot(v, name);
    return s ? s->text : NULL;
}
int64_t lunnel_opts_int(const lunnel_opt_values *v, const char *name)
{
    slot *s = find_slot(v, name);
    return s && s->text ? s->i64 : 0;
}
double lunnel_opts_num(const lunnel_opt_values *v, const char *name)
{
    slot *s = find_slot(v, name);
    return s && s->text ? s->num : 0;
}
int64_t lunnel_opts_time(const lunnel_opt_values *v, const char *name)
{
    slot *s = find_slot(v, name);
    return s && s->text ? s->i64 : 0;
}
int lunnel_opts_bool(const lunnel_opt_values *v, const char *name)
{
    slot *s = find_slot(v, name);
    return s && s->text ? (int)s->i64 : 0;
}
int lunnel_opts_argc(const lunnel_opt_values *v)
{
    return v->n_args;
}
const char *lunnel_opts_arg(const lunnel_opt_values *v, int i)
{
    return i >= 0 && i < v->n_args ? v->args[i] : NULL;
}

void lunnel_opts_print_help(const lunnel_command_spec *spec, FILE *f)
{
    fprintf(f, "usage: %s\n\n%s\n", spec->usage, spec->summary);
    for (size_t i = 0; i < spec->n_sets; i++) {
        const lunnel_opt_set *set = spec->sets[i];
        fprintf(f, "\n%s options:\n", set->title);
        for (size_t j = 0; j < set->n; j++) {
            const lunnel_opt *o = &set->opts[j];
            char left[96];
            const char *mv = type_metavar(o);
            snprintf(left, sizeof left, "--%s%s%s", o->name, *mv ? " " : "", mv);
            char extra[256] = "";
            size_t el = 0;
            if (o->required)
                el += (size_t)snprintf(extra + el, sizeof extra - el, "%srequired", el ? ", " : "");
            if (o->def && o->type != LUNNEL_OPT_SECRET && el < sizeof extra)
                el += (size_t)snprintf(extra + el, sizeof extra - el, "%sdefault %s",
                                       el ? ", " : "", o->def);
            if (o->env && el < sizeof extra)
                el += (size_t)snprintf(extra + el, sizeof extra - el, "%s$%s", el ? ", " : "",
                                       o->env);
            fprintf(f, "  %-34s %s%s%s%s\n", left, o->help, el ? " (" : "", extra, el ? ")" : "");
        }
    }
    fprintf(f, "\n  %-34s %s\n", "-h, --help", "show this help");
}

static void md_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s, f);
    }
}

void lunnel_opts_print_markdown(const lunnel_command_spec *spec, FILE *f)
{
    fprintf(f, "### `lunnel %s`\n\n%s\n\n```\n%s\n```\n\n", spec->name, spec->summary, spec->usage);
    for (size_t i = 0; i < spec->n_sets; i++) {
        const lunnel_opt_set *set = spec->sets[i];
        fprintf(f, "%s options:\n\n| option | default | env | description |\n|---|---|---|---|\n",
                set->title);
        for (size_t j = 0; j < set->n; j++) {
            const lunnel_opt *o = &set->opts[j];
            const char *mv = type_metavar(o);
            fprintf(f, "| `--%s%s", o->name, *mv ? " " : "");
            md_escape(f, mv);
            fprintf(f, "` | %s | %s%s%s | ",
                    o->type != LUNNEL_OPT_SECRET && o->def ? o->def
                                                           : (o->required ? "required" : ""),
                    o->env ? "`" : "", o->env ? o->env : "", o->env ? "`" : "");
            md_escape(f, o->help);
            fprintf(f, " |\n");
        }
        fprintf(f, "\n");
    }
}

void lunnel_opts_print_config(const lunnel_opt_values *v, FILE *f)
{
    static const char *src_names[] = {"unset", "default", "env", "flag"};
    for (size_t k = 0; k < v->n; k++) {
        const slot *s = &v->slots[k];
        const char *shown = !s->text ? "" : (s->opt->type == LUNNEL_OPT_SECRET ? "****" : s->text);
        fprintf(f, "%s = %s (%s)\n", s->opt->name, shown, src_names[s->src]);
    }
}

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
        errf(err, cap, "%s", e.message);
        return lunnel_error_exit_status(&e);
    }
    lunnel_credentials_start(out->creds, loop);
    const char *ca = lunnel_opts_str(v, "ca-file");
    if (ca) {
        FILE *cf = fopen(ca, "r");
        if (!cf) {
            errf(err, cap, "--ca-file %.200s cannot be read", ca);
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
        errf(err, cap, "--max-connections must be at least 1");
        lunnel_opts_close_client(out);
        return 2;
    }
    out->http = lunnel_http_new(loop, &hc, out->creds, &e);
    if (!out->http) {
        errf(err, cap, "%s", e.message);
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
        errf(err, cap, "out of memory");
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
