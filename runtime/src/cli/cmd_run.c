/* cmd_run.c: `lunnel run [options] SCRIPT`, the main job: consume a tunnel end to end.
 *
 * Parses the options (one descriptor table drives parsing, --help and defaults; a --config
 * Lua file returning a table supplies the same options, command-line flags win), resolves
 * the tunnel (DescribeTunnel by table + name, CreateTunnel with --create when missing),
 * starts the Lua host (host.h) and the tunnel worker (worker.h) on one libev loop, and wires
 * signals: SIGINT/SIGTERM drain gracefully (a second one exits at once), SIGHUP reloads the
 * script. The exit status is the worker's (errors.h LUNNEL_EXIT_*). */
#include <ev.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lunnel/api.h"
#include "lunnel/credentials.h"
#include "lunnel/errors.h"
#include "lunnel/host.h"
#include "lunnel/http.h"
#include "lunnel/log.h"
#include "lunnel/worker.h"

int lunnel_cmd_run(int argc, char **argv);

typedef enum opt_type { T_STR, T_INT, T_NUM, T_BOOL } opt_type;

typedef struct run_opts {
    const char *endpoint, *instance, *table, *tunnel, *tunnel_id, *create;
    const char *access_key_id, *access_key_secret, *security_token, *credentials_command;
    const char *ca_file, *custom, *config, *client_tag, *commit, *log_format, *log_level;
    double workers, prefetch, max_inflight_bytes, max_channels;
    double heartbeat_interval, heartbeat_timeout, max_backoff, checkpoint_interval;
    double drain_timeout, reconnect_delay_max, process_timeout;
    int exit_when_done, no_watch, help;
} run_opts;

typedef struct opt_desc {
    const char *name; /* long option without "--"; config keys use '_' for '-' */
    opt_type type;
    size_t offset;
    const char *def; /* default as text (NULL: none) */
    const char *help;
} opt_desc;

#define O(field) offsetof(run_opts, field)
static const opt_desc OPTS[] = {
    {"endpoint", T_STR, O(endpoint), NULL, "service endpoint, e.g. http://127.0.0.1:8866 ($LUNNEL_ENDPOINT)"},
    {"instance", T_STR, O(instance), NULL, "instance name ($LUNNEL_INSTANCE)"},
    {"table", T_STR, O(table), NULL, "table of the tunnel"},
    {"tunnel", T_STR, O(tunnel), NULL, "tunnel name (with --table)"},
    {"tunnel-id", T_STR, O(tunnel_id), NULL, "tunnel id (instead of --table/--tunnel)"},
    {"create", T_STR, O(create), NULL, "create the tunnel when missing: BaseData|Stream|BaseAndStream"},
    {"access-key-id", T_STR, O(access_key_id), NULL, "access key id ($TABLESTORE_ACCESS_KEY_ID)"},
    {"access-key-secret", T_STR, O(access_key_secret), NULL, "access key secret ($TABLESTORE_ACCESS_KEY_SECRET)"},
    {"security-token", T_STR, O(security_token), NULL, "STS token ($TABLESTORE_SECURITY_TOKEN)"},
    {"credentials-command", T_STR, O(credentials_command), NULL, "command printing credentials JSON (refreshed)"},
    {"ca-file", T_STR, O(ca_file), NULL, "PEM bundle to trust for https"},
    {"custom", T_STR, O(custom), NULL, "CustomValue as JSON (ctx.custom)"},
    {"config", T_STR, O(config), NULL, "Lua file returning a table of these options (keys with _)"},
    {"workers", T_INT, O(workers), "0", "Lua worker threads (0: one per CPU)"},
    {"client-tag", T_STR, O(client_tag), NULL, "client tag sent in Connect (default: hostname)"},
    {"heartbeat-interval", T_NUM, O(heartbeat_interval), "30", "seconds between heartbeats (>= 0.1)"},
    {"heartbeat-timeout", T_NUM, O(heartbeat_timeout), "300", "heartbeat timeout in seconds (> interval)"},
    {"prefetch", T_INT, O(prefetch), "1", "batches read ahead of processing per channel"},
    {"max-inflight-bytes", T_INT, O(max_inflight_bytes), "67108864", "response bytes held by unfinished batches"},
    {"max-backoff", T_NUM, O(max_backoff), "5", "cap of the stream read backoff, seconds"},
    {"checkpoint-interval", T_NUM, O(checkpoint_interval), "5", "seconds between checkpoints"},
    {"commit", T_STR, O(commit), "auto", "auto (process returned) | manual (ctx:commit())"},
    {"max-channels", T_INT, O(max_channels), "0", "channels processed at once (0: unlimited)"},
    {"drain-timeout", T_NUM, O(drain_timeout), "30", "bound of the graceful stop, seconds"},
    {"exit-when-done", T_BOOL, O(exit_when_done), NULL, "exit 0 once every channel is TERMINATED (BaseData)"},
    {"reconnect-delay-max", T_NUM, O(reconnect_delay_max), "10", "random delay before reconnecting, up to this, seconds"},
    {"process-timeout", T_NUM, O(process_timeout), "0", "warn when process() runs longer (0: off)"},
    {"no-watch", T_BOOL, O(no_watch), NULL, "do not hot-reload the script"},
    {"log-format", T_STR, O(log_format), "text", "text | json (stderr)"},
    {"log-level", T_STR, O(log_level), "info", "trace|debug|info|warn|error|off"},
    {"help", T_BOOL, O(help), NULL, "this help"},
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: lunnel run [options] SCRIPT\n\nConsumes a tunnel: SCRIPT's process(ctx, "
               "batch) gets every batch.\n\noptions:\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", OPTS[i].name,
                 OPTS[i].type == T_BOOL ? "" : OPTS[i].type == T_STR ? " S" : " N");
        fprintf(f, "  %-26s %s", left, OPTS[i].help);
        if (OPTS[i].def)
            fprintf(f, " [%s]", OPTS[i].def);
        fputc('\n', f);
    }
}

/* Sets one option from text. 0 ok, -1 with a message. */
static int set_opt(run_opts *o, const opt_desc *d, const char *val, const char *origin)
{
    char *p = (char *)o + d->offset;
    switch (d->type) {
    case T_STR:
        *(const char **)p = val;
        return 0;
    case T_INT:
    case T_NUM: {
        char *end;
        double v = strtod(val, &end);
        if (end == val || *end || v < 0 || (d->type == T_INT && v != (double)(long long)v)) {
            fprintf(stderr, "lunnel run: %s --%s: not a valid %s: '%s'\n", origin, d->name,
                    d->type == T_INT ? "non-negative integer" : "non-negative number", val);
            return -1;
        }
        *(double *)p = v;
        return 0;
    }
    case T_BOOL:
        *(int *)p = strcmp(val, "true") == 0 || strcmp(val, "1") == 0;
        return 0;
    }
    return -1;
}

static const opt_desc *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        size_t n = strlen(OPTS[i].name);
        if (n != len)
            continue;
        int same = 1;
        for (size_t k = 0; k < n && same; k++) {
            char a = name[k] == '_' ? '-' : name[k];
            same = a == OPTS[i].name[k];
        }
        if (same)
            return &OPTS[i];
    }
    return NULL;
}

/* ---- --config FILE: a Lua chunk returning a table ---------------------------------------- */

/* A growing C string (luaL_Buffer would fight the stack walk below). */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void json_escape(sbuf *b, const char *s, size_t n)
{
    sb_str(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        if (c == '"' || c == '\\') {
            tmp[0] = '\\', tmp[1] = (char)c;
            sb_add(b, tmp, 2);
        } else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            sb_str(b, tmp);
        } else {
            sb_add(b, (const char *)&c, 1);
        }
    }
    sb_str(b, "\"");
}

/* Serializes the value at stack index idx as JSON (tables with keys exactly 1..n are
 * arrays). Returns 0, or -1 for values JSON cannot carry. */
static int to_json(lua_State *L, int idx, sbuf *b, int depth)
{
    if (depth > 32)
        return -1;
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: sb_str(b, "null"); return 0;
    case LUA_TBOOLEAN: sb_str(b, lua_toboolean(L, idx) ? "true" : "false"); return 0;
    case LUA_TNUMBER: {
        char tmp[64];
        double v = lua_tonumber(L, idx);
        if (v == (double)(long long)v && v < 9.007199254740992e15 && v > -9.007199254740992e15)
            snprintf(tmp, sizeof tmp, "%lld", (long long)v);
        else
            snprintf(tmp, sizeof tmp, "%.17g", v);
        sb_str(b, tmp);
        return 0;
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        json_escape(b, s, n);
        return 0;
    }
    case LUA_TTABLE: {
        size_t len = lua_objlen(L, idx), count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            count++;
            lua_pop(L, 1);
        }
        int is_array = count > 0 && count == len;
        sb_str(b, is_array ? "[" : "{");
        int first = 1;
        if (is_array) {
            for (size_t i = 1; i <= len; i++) {
                if (!first)
                    sb_str(b, ",");
                first = 0;
                lua_rawgeti(L, idx, (int)i);
                int rc = to_json(L, -1, b, depth + 1);
                lua_pop(L, 1);
                if (rc)
                    return -1;
            }
        } else {
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                if (lua_type(L, -2) != LUA_TSTRING) {
                    lua_pop(L, 2);
                    return -1;
                }
                if (!first)
                    sb_str(b, ",");
                first = 0;
                size_t kn;
                const char *k = lua_tolstring(L, -2, &kn);
                json_escape(b, k, kn);
                sb_str(b, ":");
                if (to_json(L, -1, b, depth + 1)) {
                    lua_pop(L, 2);
                    return -1;
                }
                lua_pop(L, 1);
            }
        }
        sb_str(b, is_array ? "]" : "}");
        return 0;
    }
    default: return -1;
    }
}

/* Strings taken from the config live as long as the process: kept in this list. */
static char *keep(const char *s)
{
    return strdup(s);
}

static int load_config(const char *path, run_opts *o, const unsigned char *set_on_cli)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return -1;
    luaL_openlibs(L);
    if (luaL_dofile(L, path)) {
        fprintf(stderr, "lunnel run: --config %s: %s\n", path, lua_tostring(L, -1));
        lua_close(L);
        return -1;
    }
    if (!lua_istable(L, -1)) {
        fprintf(stderr, "lunnel run: --config %s: must return a table\n", path);
        lua_close(L);
        return -1;
    }
    int t = lua_gettop(L), rc = 0;
    lua_pushnil(L);
    while (rc == 0 && lua_next(L, t)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            fprintf(stderr, "lunnel run: --config %s: keys must be option names\n", path);
            rc = -1;
            lua_pop(L, 2);
            break;
        }
        size_t kn;
        const char *k = lua_tolstring(L, -2, &kn);
        const opt_desc *d = find_opt(k, kn);
        if (!d || strcmp(d->name, "config") == 0) {
            fprintf(stderr, "lunnel run: --config %s: unknown option '%s'\n", path, k);
            rc = -1;
            lua_pop(L, 2);
            break;
        }
        if (!set_on_cli[d - OPTS]) {
            char origin[600];
            snprintf(origin, sizeof origin, "--config %s:", path);
            if (strcmp(d->name, "custom") == 0 && lua_istable(L, -1)) {
                sbuf b = {0};
                if (to_json(L, -1, &b, 0) != 0 || b.oom) {
                    fprintf(stderr, "lunnel run: --config %s: custom holds a value JSON cannot carry\n",
                            path);
                    rc = -1;
                    free(b.p);
                } else {
                    o->custom = b.p; /* lives as long as the process */
                }
            } else if (d->type == T_BOOL) {
                *(int *)((char *)o + d->offset) = lua_toboolean(L, -1);
            } else if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
                const char *v = keep(lua_tostring(L, -1));
                if (set_opt(o, d, v, origin) != 0)
                    rc = -1;
            } else {
                fprintf(stderr, "lunnel run: --config %s: option '%s' must be a string or number\n",
                        path, k);
                rc = -1;
            }
        }
        lua_pop(L, 1);
    }
    lua_close(L);
    return rc;
}

/* ---- the run ------------------------------------------------------------------------------ */

typedef struct run_app {
    struct ev_loop *loop;
    lunnel_worker *worker;
    lunnel_host *host;
    int signals;
    int exit_status;
    int exited;
} run_app;

static void *proc_open(void *ud, const lunnel_host_channel_info *info)
{
    return lunnel_host_channel_open(ud, info);
}
static int proc_submit(void *ch, const lunnel_host_batch *b)
{
    return lunnel_host_submit(ch, b);
}
static int proc_shutdown(void *ch)
{
    return lunnel_host_channel_shutdown(ch);
}

static void on_host_done(const lunnel_host_completion *c, void *ud)
{
    run_app *app = ud;
    if (app->worker)
        lunnel_worker_on_done(app->worker, c);
}

static void on_worker_exit(void *ud, int status)
{
    run_app *app = ud;
    app->exit_status = status;
    app->exited = 1;
    ev_break(app->loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop, (void)revents;
    run_app *app = w->data;
    if (++app->signals > 1) {
        static const char msg[] = "lunnel run: second signal, exiting now\n";
        if (write(2, msg, sizeof msg - 1) < 0) {
        }
        _exit(130);
    }
    lunnel_log_kv(LUNNEL_LOG_INFO, "run", "signal received, draining", "signal",
                  w->signum == SIGINT ? "SIGINT" : "SIGTERM", NULL);
    lunnel_worker_stop(app->worker);
}

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop, (void)revents;
    run_app *app = w->data;
    lunnel_log_kv(LUNNEL_LOG_INFO, "run", "SIGHUP: checking the script", NULL);
    lunnel_host_reload(app->host);
}

/* $LUNNEL_LUA_DIR wins (host.h); else the source tree's lua/ this binary was built from. */
static const char *lua_dir(void)
{
    if (getenv("LUNNEL_LUA_DIR"))
        return NULL;
#ifdef LUNNEL_SOURCE_DIR
    return LUNNEL_SOURCE_DIR "/lua";
#else
    return NULL;
#endif
}

static int tunnel_type_of(const char *s, Lunnel__Tunnel__TunnelType *out)
{
    if (strcmp(s, "BaseData") == 0)
        *out = LUNNEL__TUNNEL__TUNNEL_TYPE__BaseData;
    else if (strcmp(s, "Stream") == 0)
        *out = LUNNEL__TUNNEL__TUNNEL_TYPE__Stream;
    else if (strcmp(s, "BaseAndStream") == 0)
        *out = LUNNEL__TUNNEL__TUNNEL_TYPE__BaseAndStream;
    else
        return -1;
    return 0;
}

static void print_error(const char *what, const lunnel_error *err)
{
    char line[1200];
    lunnel_error_format(err, line, sizeof line);
    lunnel_log_kv(LUNNEL_LOG_ERROR, "run", what, "error", line, NULL);
    fprintf(stderr, "lunnel run: %s: %s\n", what, line);
}

static int is_not_found(const lunnel_error *err)
{
    return lunnel_error_exit_status(err) == LUNNEL_EXIT_NOT_FOUND;
}

/* Finds (or creates) the tunnel; returns a malloc'd tunnel id or NULL with *status set. */
static char *resolve_tunnel(lunnel_api *api, struct ev_loop *loop, const run_opts *o, int *status)
{
    if (o->tunnel_id)
        return strdup(o->tunnel_id);
    Lunnel__Tunnel__DescribeTunnelRequest req = LUNNEL__TUNNEL__DESCRIBE_TUNNEL_REQUEST__INIT;
    req.table_name = (char *)o->table;
    req.tunnel_name = (char *)o->tunnel;
    lunnel_api_sync_result r;
    memset(&r, 0, sizeof r);
    if (lunnel_api_call_sync(api, loop, LUNNEL_API_DESCRIBE, &req.base, 0, &r) == 0) {
        Lunnel__Tunnel__DescribeTunnelResponse *m = (Lunnel__Tunnel__DescribeTunnelResponse *)r.msg;
        char *id = m && m->tunnel && m->tunnel->tunnel_id ? strdup(m->tunnel->tunnel_id) : NULL;
        lunnel_api_sync_result_free(&r);
        if (!id)
            *status = LUNNEL_EXIT_RUNTIME;
        return id;
    }
    if (!o->create || !is_not_found(&r.err)) {
        print_error("describe tunnel failed", &r.err);
        *status = lunnel_error_exit_status(&r.err);
        lunnel_api_sync_result_free(&r);
        return NULL;
    }
    lunnel_api_sync_result_free(&r);
    Lunnel__Tunnel__Tunnel t = LUNNEL__TUNNEL__TUNNEL__INIT;
    t.table_name = (char *)o->table;
    t.tunnel_name = (char *)o->tunnel;
    tunnel_type_of(o->create, &t.tunnel_type);
    Lunnel__Tunnel__CreateTunnelRequest creq = LUNNEL__TUNNEL__CREATE_TUNNEL_REQUEST__INIT;
    creq.tunnel = &t;
    memset(&r, 0, sizeof r);
    if (lunnel_api_call_sync(api, loop, LUNNEL_API_CREATE, &creq.base, 0, &r) != 0) {
        print_error("create tunnel failed", &r.err);
        *status = lunnel_error_exit_status(&r.err);
        lunnel_api_sync_result_free(&r);
        return NULL;
    }
    Lunnel__Tunnel__CreateTunnelResponse *m = (Lunnel__Tunnel__CreateTunnelResponse *)r.msg;
    char *id = m && m->tunnel_id ? strdup(m->tunnel_id) : NULL;
    lunnel_api_sync_result_free(&r);
    lunnel_log_kv(LUNNEL_LOG_INFO, "run", "tunnel created", "tunnel", o->tunnel, "type",
                  o->create, "tunnel_id", id, NULL);
    return id;
}

int lunnel_cmd_run(int argc, char **argv)
{
    run_opts o;
    memset(&o, 0, sizeof o);
    unsigned char set_on_cli[N_OPTS];
    memset(set_on_cli, 0, sizeof set_on_cli);
    const char *script = NULL;

    /* defaults first */
    for (size_t i = 0; i < N_OPTS; i++)
        if (OPTS[i].def && set_opt(&o, &OPTS[i], OPTS[i].def, "default") != 0)
            return LUNNEL_EXIT_USAGE;

    /* argv[0] is "run" (or the program); options and one script, in any order */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (strcmp(a, "--") == 0 && i + 1 < argc) {
                a = argv[++i];
            } else if (a[0] == '-' && a[1] != 0) {
                fprintf(stderr, "lunnel run: unknown option '%s' (see --help)\n", a);
                return LUNNEL_EXIT_USAGE;
            }
            if (script) {
                fprintf(stderr, "lunnel run: one script only ('%s' and '%s')\n", script, a);
                return LUNNEL_EXIT_USAGE;
            }
            script = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opt_desc *d = find_opt(name, nlen);
        if (!d) {
            fprintf(stderr, "lunnel run: unknown option '%s' (see --help)\n", a);
            return LUNNEL_EXIT_USAGE;
        }
        const char *val;
        if (d->type == T_BOOL) {
            val = eq ? eq + 1 : "true";
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "lunnel run: option --%s needs a value\n", d->name);
            return LUNNEL_EXIT_USAGE;
        }
        if (set_opt(&o, d, val, "option") != 0)
            return LUNNEL_EXIT_USAGE;
        set_on_cli[d - OPTS] = 1;
    }
    if (o.help) {
        usage(stdout);
        return 0;
    }
    if (o.config && load_config(o.config, &o, set_on_cli) != 0)
        return LUNNEL_EXIT_USAGE;

    if (!o.endpoint)
        o.endpoint = getenv("LUNNEL_ENDPOINT");
    if (!o.instance)
        o.instance = getenv("LUNNEL_INSTANCE");
    if (!o.access_key_id)
        o.access_key_id = getenv("TABLESTORE_ACCESS_KEY_ID");
    if (!o.access_key_secret)
        o.access_key_secret = getenv("TABLESTORE_ACCESS_KEY_SECRET");
    if (!o.security_token)
        o.security_token = getenv("TABLESTORE_SECURITY_TOKEN");

    /* validation: one clear line per problem */
    const char *problem = NULL;
    char buf[256];
    Lunnel__Tunnel__TunnelType tt;
    if (!script)
        problem = "missing SCRIPT (usage: lunnel run [options] SCRIPT)";
    else if (!o.endpoint)
        problem = "missing --endpoint";
    else if (!o.instance)
        problem = "missing --instance";
    else if (!o.tunnel_id && (!o.table || !o.tunnel))
        problem = "give --table and --tunnel, or --tunnel-id";
    else if (o.create && tunnel_type_of(o.create, &tt) != 0)
        problem = "--create must be BaseData, Stream or BaseAndStream";
    else if (o.heartbeat_interval < 0.1)
        problem = "--heartbeat-interval must be at least 0.1 seconds";
    else if (o.heartbeat_timeout <= o.heartbeat_interval)
        problem = "--heartbeat-timeout must exceed --heartbeat-interval";
    else if (strcmp(o.commit, "auto") != 0 && strcmp(o.commit, "manual") != 0)
        problem = "--commit must be auto or manual";
    else if (o.checkpoint_interval <= 0)
        problem = "--checkpoint-interval must be positive";
    else if (o.max_inflight_bytes < 1)
        problem = "--max-inflight-bytes must be positive";
    else if (!o.credentials_command && (!o.access_key_id || !o.access_key_secret))
        problem = "no credentials: set TABLESTORE_ACCESS_KEY_ID / TABLESTORE_ACCESS_KEY_SECRET, "
                  "--access-key-id / --access-key-secret, or --credentials-command";
    lunnel_log_level lvl;
    lunnel_log_format fmt;
    if (!problem && lunnel_log_parse_level(o.log_level, &lvl) != 0)
        problem = "--log-level must be trace|debug|info|warn|error|off";
    if (!problem && lunnel_log_parse_format(o.log_format, &fmt) != 0)
        problem = "--log-format must be text or json";
    if (problem) {
        fprintf(stderr, "lunnel run: %s\n", problem);
        return LUNNEL_EXIT_USAGE;
    }
    lunnel_log_set_level(lvl);
    lunnel_log_set_format(fmt);
    if (o.access_key_secret)
        lunnel_log_add_secret(o.access_key_secret);
    if (o.security_token)
        lunnel_log_add_secret(o.security_token);
    if (!o.client_tag) {
        if (gethostname(buf, sizeof buf) != 0)
            snprintf(buf, sizeof buf, "lunnel");
        buf[sizeof buf - 1] = 0;
        o.client_tag = buf;
    }
    signal(SIGPIPE, SIG_IGN);

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    lunnel_error err;
    lunnel_error_clear(&err);
    lunnel_credentials *creds =
        o.credentials_command
            ? lunnel_credentials_new_command(o.credentials_command, 0, &err)
            : lunnel_credentials_new_static(o.access_key_id, o.access_key_secret,
                                            o.security_token, &err);
    if (!creds) {
        print_error("credentials", &err);
        return lunnel_error_exit_status(&err);
    }
    lunnel_credentials_start(creds, loop);
    lunnel_http_config hc = {.endpoint = o.endpoint, .instance = o.instance, .ca_file = o.ca_file};
    lunnel_http *http = lunnel_http_new(loop, &hc, creds, &err);
    if (!http) {
        print_error("http client", &err);
        return lunnel_error_exit_status(&err) ? lunnel_error_exit_status(&err) : LUNNEL_EXIT_USAGE;
    }
    lunnel_api *api = lunnel_api_new(http, NULL);
    if (!api)
        return LUNNEL_EXIT_RUNTIME;

    int status = LUNNEL_EXIT_RUNTIME;
    char *tunnel_id = resolve_tunnel(api, loop, &o, &status);
    if (!tunnel_id)
        return status ? status : LUNNEL_EXIT_RUNTIME;

    run_app app = {.loop = loop};
    lunnel_host_config hcfg = {
        .script_path = script,
        .workers = (int)o.workers,
        .custom_json = o.custom,
        .lua_dir = lua_dir(),
        .process_timeout_s = o.process_timeout,
        .watch = !o.no_watch,
        .loop = loop,
        .on_done = on_host_done,
        .ud = &app,
    };
    char herr[1024] = "";
    app.host = lunnel_host_new(&hcfg, herr, sizeof herr);
    if (!app.host) {
        fprintf(stderr, "lunnel run: %s: %s\n", script, herr);
        lunnel_log_kv(LUNNEL_LOG_ERROR, "run", "script does not load", "script", script, "error",
                      herr, NULL);
        return LUNNEL_EXIT_USAGE;
    }

    lunnel_worker_config wc = {
        .loop = loop,
        .api = api,
        .tunnel_id = tunnel_id,
        .table_name = o.table,
        .tunnel_name = o.tunnel,
        .client_tag = o.client_tag,
        .heartbeat_interval_s = o.heartbeat_interval,
        .heartbeat_timeout_s = o.heartbeat_timeout,
        .prefetch = (int)o.prefetch,
        .max_inflight_bytes = (size_t)o.max_inflight_bytes,
        .max_backoff_s = o.max_backoff,
        .checkpoint_interval_s = o.checkpoint_interval,
        .manual_commit = strcmp(o.commit, "manual") == 0,
        .max_channels = (int)o.max_channels,
        .drain_timeout_s = o.drain_timeout,
        .exit_when_done = o.exit_when_done,
        .reconnect_delay_max_s = o.reconnect_delay_max,
        .proc = {.open = proc_open, .submit = proc_submit, .shutdown = proc_shutdown,
                 .ud = app.host},
        .on_exit = on_worker_exit,
        .ud = &app,
    };
    app.worker = lunnel_worker_new(&wc);
    if (!app.worker)
        return LUNNEL_EXIT_RUNTIME;

    ev_signal sigint, sigterm, sighup;
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sighup, on_sighup, SIGHUP);
    sigint.data = sigterm.data = sighup.data = &app;
    ev_signal_start(loop, &sigint);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sighup);

    lunnel_log_kv(LUNNEL_LOG_INFO, "run", "starting", "tunnel_id", tunnel_id, "script", script,
                  "commit", o.commit, NULL);
    lunnel_worker_start(app.worker);
    ev_run(loop, 0);

    /* The worker has drained (or failed); Lua workers finish their current job and stop.
     * Calls still in flight and their owners are left to the process exit. */
    ev_signal_stop(loop, &sigint);
    ev_signal_stop(loop, &sigterm);
    ev_signal_stop(loop, &sighup);
    lunnel_host_free(app.host);
    free(tunnel_id);
    return app.exit_status;
}
