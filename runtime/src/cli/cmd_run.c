/* cmd_run.c: `lunnel run [options] SCRIPT`, the main job: consume a tunnel end to end.
 *
 * Parses the options (one descriptor table drives parsing, --help and defaults; a --config
 * Lua file returning a table supplies the same options, command-line flags win), resolves
 * the tunnel (DescribeTunnel by table + name, CreateTunnel with --create when missing),
 * starts the Lua host (host.h) and the tunnel worker (worker.h) on one libev loop, and wires
 * signals: SIGINT/SIGTERM drain gracefully (a second one exits at once), SIGHUP reloads the
 * script. The exit status is the worker's outcome mapped by exit_status.h. */
#include <ev.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli/capture.h"
#include "cli/client_options.h"
#include "cli/exit_status.h"
#include "cli/lua_dir.h"
#include "cli/run_observe.h"
#include "lunnel/api.h"
#include "lunnel/buf.h"
#include "lunnel/credentials.h"
#include "lunnel/dead_letter.h"
#include "lunnel/errors.h"
#include "lunnel/host.h"
#include "lunnel/http.h"
#include "lunnel/json.h"
#include "lunnel/log.h"
#include "lunnel/options.h"
#include "lunnel/worker.h"

int lunnel_cmd_run(int argc, char **argv);

static const lunnel_opt run_opts[] = {
    {"table", LUNNEL_OPT_STRING, NULL, NULL, NULL, "TABLE", 0, "table of the tunnel"},
    {"tunnel", LUNNEL_OPT_STRING, NULL, NULL, NULL, "NAME", 0, "tunnel name (with --table)"},
    {"tunnel-id", LUNNEL_OPT_STRING, NULL, NULL, NULL, "ID", 0,
     "tunnel id, instead of --table/--tunnel"},
    {"create", LUNNEL_OPT_ENUM, NULL, NULL, "BaseData|Stream|BaseAndStream", "TYPE", 0,
     "create the tunnel when ListTunnel does not show it (a lost creation race uses the winner's)"},
    {"custom", LUNNEL_OPT_STRING, NULL, NULL, NULL, "JSON", 0, "CustomValue as JSON: ctx.custom"},
    {"config", LUNNEL_OPT_STRING, NULL, NULL, NULL, "FILE", 0,
     "Lua file returning a table of these options (keys with _ for -; custom may be a "
     "table); command-line flags win"},
    {"workers", LUNNEL_OPT_INT, "0", NULL, NULL, "N", 0, "Lua worker threads (0: one per CPU)"},
    {"client-tag", LUNNEL_OPT_STRING, NULL, NULL, NULL, "TAG", 0,
     "client tag sent in Connect (default: the hostname)"},
    {"heartbeat-interval", LUNNEL_OPT_DURATION, "30s", NULL, NULL, NULL, 0,
     "time between heartbeats (at least 100ms)"},
    {"heartbeat-timeout", LUNNEL_OPT_DURATION, "300s", NULL, NULL, NULL, 0,
     "heartbeat timeout sent in Connect; must exceed the interval"},
    {"prefetch", LUNNEL_OPT_INT, "1", NULL, NULL, "N", 0,
     "batches read ahead of processing, per channel"},
    {"max-inflight-bytes", LUNNEL_OPT_BYTES, "64MiB", NULL, NULL, "BYTES", 0,
     "response bytes held by unfinished batches, all channels together"},
    {"max-backoff", LUNNEL_OPT_DURATION, "5s", NULL, NULL, NULL, 0,
     "cap of the read backoff of an idle stream channel"},
    {"checkpoint-interval", LUNNEL_OPT_DURATION, "5s", NULL, NULL, NULL, 0,
     "time between checkpoints (a final one on close and shutdown)"},
    {"commit", LUNNEL_OPT_ENUM, "auto", NULL, "auto|manual", NULL, 0,
     "auto: a batch is handled when process returns; manual: only ctx:commit() marks (in "
     "process: that batch and those before; in tick or shutdown: all delivered so far)"},
    {"tick-interval", LUNNEL_OPT_DURATION, "1s", NULL, NULL, NULL, 0,
     "run the script's tick(ctx) this often on every open channel, batch or not (0: never)"},
    {"capture", LUNNEL_OPT_STRING, NULL, NULL, NULL, "FILE", 0,
     "write every ReadRecords response handed to the script to FILE (truncated at start), for "
     "lunnel replay"},
    {"capture-max-bytes", LUNNEL_OPT_BYTES, "64MiB", NULL, NULL, "BYTES", 0,
     "--capture stops (one log line) before FILE would grow past this"},
    {"lua-path", LUNNEL_OPT_STRING, NULL, NULL, NULL, "DIRS", 0,
     "';'-separated directories of the script's own modules: part of its version, hot-reloaded "
     "with it (its own directory always is)"},
    {"max-channels", LUNNEL_OPT_INT, "0", NULL, NULL, "N", 0,
     "channels processed at once (0: unlimited)"},
    {"drain-timeout", LUNNEL_OPT_DURATION, "30s", NULL, NULL, NULL, 0,
     "bound of the graceful stop on SIGINT/SIGTERM (a second signal exits at once)"},
    {"exit-when-done", LUNNEL_OPT_BOOL, NULL, NULL, NULL, NULL, 0,
     "exit 0 once every channel of the tunnel is TERMINATED (BaseData tunnels)"},
    {"reconnect-delay-max", LUNNEL_OPT_DURATION, "10s", NULL, NULL, NULL, 0,
     "a lost client reconnects after a random delay up to this"},
    {"on-error", LUNNEL_OPT_ENUM, "retry", NULL, "retry|skip|stop", NULL, 0,
     "a failed process() batch: retry it (then close the channel), skip it to --dead-letter, "
     "or stop (checkpoint, drain, exit 1)"},
    {"max-retries", LUNNEL_OPT_INT, "5", NULL, NULL, "N", 0,
     "--on-error retry: re-runs of a failed batch before its channel is closed"},
    {"dead-letter", LUNNEL_OPT_STRING, NULL, NULL, NULL, "FILE", 0,
     "--on-error skip: JSON Lines file receiving failed batches (fsync'd)"},
    {"connect-retry-window", LUNNEL_OPT_DURATION, "10m", NULL, NULL, NULL, 0,
     "give up (exit 1) after Connect failed this long in a row (0: retry forever)"},
    {"process-timeout", LUNNEL_OPT_DURATION, "300s", NULL, NULL, NULL, 0,
     "a script call running longer is reported stuck (log, metric, /readyz unready) and the "
     "other channels of its worker move to a replacement worker (0: off)"},
    {"stuck-exit-timeout", LUNNEL_OPT_DURATION, "15m", NULL, NULL, NULL, 0,
     "a script call running longer makes lunnel exit with status 6 for its supervisor to "
     "restart it (0: never)"},
    {"memory-limit", LUNNEL_OPT_BYTES, "0", NULL, NULL, "BYTES", 0,
     "memory of each Lua state (one per worker); an allocation past it fails the call "
     "(0: 1 GiB)"},
    {"metrics-listen", LUNNEL_OPT_STRING, NULL, "LUNNEL_METRICS_LISTEN", NULL, "HOST:PORT", 0,
     "serve Prometheus /metrics, /healthz and /readyz there (port 0: any free port)"},
    {"metrics-port-file", LUNNEL_OPT_STRING, NULL, NULL, NULL, "FILE", 0,
     "write the bound metrics port to FILE (for scripts and tests)"},
    {"no-status", LUNNEL_OPT_BOOL, NULL, NULL, NULL, NULL, 0,
     "no live status line on a terminal (it is off anyway when stderr is not a TTY or with "
     "--log-format json)"},
    {"no-watch", LUNNEL_OPT_BOOL, NULL, NULL, NULL, NULL, 0,
     "do not hot-reload the script when it changes (SIGHUP still does)"},
};
static const lunnel_opt_set run_set = LUNNEL_OPT_SET("Run", run_opts);
static const lunnel_command_spec run_spec = {
    .name = "run",
    .usage = "lunnel run --endpoint URL --instance NAME (--table T --tunnel NAME | --tunnel-id ID) "
             "[options] SCRIPT",
    .summary = "consume a tunnel: SCRIPT's process(ctx, batch) gets every batch",
    .sets = {&run_set, &lunnel_opts_connection, &lunnel_opts_logging},
    .n_sets = 3,
    .min_args = 1,
    .max_args = 1,
};

void lunnel_cmd_run_markdown(FILE *f);
void lunnel_cmd_run_markdown(FILE *f)
{
    lunnel_opts_print_markdown(&run_spec, f);
}

/* ---- the command's own lines on stderr ---------------------------------------------------- */

/* One line of the command itself (usage problems, the final fatal line), masked like every
 * log line; with --log-format json a JSON object like the log's, so a machine reading stderr
 * never meets a line it cannot parse. `status` >= 0 adds "exit_status". */
static void say(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int status, const char *fmt, ...)
{
    char line[1600], masked[1800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    lunnel_log_mask(line, masked, sizeof masked);
    if (lunnel_log_get_format() == LUNNEL_LOG_FORMAT_JSON) {
        char ts[40];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        lunnel_buf b = LUNNEL_BUF_INIT;
        lunnel_jw w;
        lunnel_jw_init(&w, &b);
        lunnel_jw_object(&w);
        lunnel_jw_key(&w, "ts");
        lunnel_jw_str(&w, ts);
        lunnel_jw_key(&w, "level");
        lunnel_jw_str(&w, "error");
        lunnel_jw_key(&w, "component");
        lunnel_jw_str(&w, "run");
        lunnel_jw_key(&w, "msg");
        lunnel_jw_str(&w, masked);
        if (status >= 0) {
            lunnel_jw_key(&w, "exit_status");
            lunnel_jw_int(&w, status);
        }
        lunnel_jw_end_object(&w);
        lunnel_buf_char(&b, '\n');
        if (b.p) fputs(b.p, stderr);
        lunnel_buf_free(&b);
    } else {
        fprintf(stderr, "lunnel run: %s\n", masked);
    }
    fflush(stderr);
}

/* ---- --config FILE: a Lua chunk returning a table ---------------------------------------- */

/* Serializes the value at stack index idx as JSON through the JSON writer (tables with keys
 * exactly 1..n are arrays). Returns 0, or -1 for values JSON cannot carry. */
static int to_json(lua_State *L, int idx, lunnel_jw *w, int depth)
{
    if (depth > 32) return -1;
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        lunnel_jw_null(w);
        return 0;
    case LUA_TBOOLEAN:
        lunnel_jw_bool(w, lua_toboolean(L, idx));
        return 0;
    case LUA_TNUMBER: {
        char tmp[64];
        double v = lua_tonumber(L, idx);
        if (v == (double)(long long)v && v < 9.007199254740992e15 && v > -9.007199254740992e15)
            snprintf(tmp, sizeof tmp, "%lld", (long long)v);
        else
            snprintf(tmp, sizeof tmp, "%.17g", v);
        lunnel_jw_raw(w, tmp, strlen(tmp));
        return 0;
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        lunnel_jw_strn(w, s, n);
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
        if (is_array) {
            lunnel_jw_array(w);
            for (size_t i = 1; i <= len; i++) {
                lua_rawgeti(L, idx, (int)i);
                int rc = to_json(L, -1, w, depth + 1);
                lua_pop(L, 1);
                if (rc) return -1;
            }
            lunnel_jw_end_array(w);
        } else {
            lunnel_jw_object(w);
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                if (lua_type(L, -2) != LUA_TSTRING) {
                    lua_pop(L, 2);
                    return -1;
                }
                size_t kn;
                const char *k = lua_tolstring(L, -2, &kn);
                lunnel_jw_keyn(w, k, kn);
                if (to_json(L, -1, w, depth + 1)) {
                    lua_pop(L, 2);
                    return -1;
                }
                lua_pop(L, 1);
            }
            lunnel_jw_end_object(w);
        }
        return 0;
    }
    default:
        return -1;
    }
}

/* Flags built from the config file, put before the command line's (the last value wins). */
typedef struct flag_list {
    char **v;
    int n;
    size_t cap;
} flag_list;

static int flag_add(flag_list *l, char *s)
{
    if (!s) return -1;
    if (lunnel_vec_reserve(&l->v, &l->cap, (size_t)l->n + 1, 32) != 0) {
        free(s);
        return -1;
    }
    l->v[l->n++] = s;
    return 0;
}

/* Runs the config chunk and turns its table into "--name=value" flags. 0, or -1 with one
 * line printed naming the problem. */
static int load_config(const char *path, flag_list *flags)
{
    lua_State *L = luaL_newstate();
    if (!L) return -1;
    luaL_openlibs(L);
    if (luaL_dofile(L, path)) {
        /* Lua quotes the source near a syntax error: it may be a secret's value, so the
         * line names the file and line only */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
        char *near = strstr(msg, " near ");
        if (near) *near = '\0';
        say(-1, "--config %s: %s", path, msg);
        lua_close(L);
        return -1;
    }
    if (!lua_istable(L, -1)) {
        say(-1, "--config %s: must return a table of options", path);
        lua_close(L);
        return -1;
    }
    int t = lua_gettop(L), rc = 0;
    lua_pushnil(L);
    while (rc == 0 && lua_next(L, t)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            say(-1, "--config %s: keys must be option names", path);
            rc = -1;
            lua_pop(L, 2);
            break;
        }
        char name[128];
        snprintf(name, sizeof name, "%s", lua_tostring(L, -2));
        for (char *q = name; *q; q++)
            if (*q == '_') *q = '-';
        if (strcmp(name, "config") == 0) {
            say(-1, "--config %s: a config cannot name another config", path);
            rc = -1;
        } else if (lua_type(L, -1) == LUA_TTABLE && strcmp(name, "custom") == 0) {
            lunnel_buf b = LUNNEL_BUF_INIT;
            lunnel_jw w;
            lunnel_jw_init(&w, &b);
            if (to_json(L, -1, &w, 0) != 0 || b.oom) {
                say(-1, "--config %s: custom holds a value JSON cannot carry", path);
                rc = -1;
            } else {
                size_t n = strlen(name) + b.len + 4;
                char *f = malloc(n);
                if (f) snprintf(f, n, "--%s=%s", name, b.p);
                rc = flag_add(flags, f);
            }
            lunnel_buf_free(&b);
        } else if (lua_type(L, -1) == LUA_TBOOLEAN) {
            if (lua_toboolean(L, -1)) {
                size_t n = strlen(name) + 3;
                char *f = malloc(n);
                if (f) snprintf(f, n, "--%s", name);
                rc = flag_add(flags, f);
            }
        } else if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
            char num[64];
            const char *val;
            if (lua_type(L, -1) == LUA_TNUMBER) {
                snprintf(num, sizeof num, "%.17g", lua_tonumber(L, -1));
                val = num;
            } else {
                val = lua_tostring(L, -1);
            }
            size_t n = strlen(name) + strlen(val) + 4;
            char *f = malloc(n);
            if (f) snprintf(f, n, "--%s=%s", name, val);
            rc = flag_add(flags, f);
        } else {
            say(-1, "--config %s: %s must be a string, number or boolean", path,
                lua_tostring(L, -2));
            rc = -1;
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
/* --capture: every batch as the script gets it (capture.h); NULL when off. */
static lunnel_capture *run_capture;

static int proc_submit(void *ch, const lunnel_host_batch *b)
{
    if (run_capture && b->kind != LUNNEL_HOST_PAYLOAD_PLAINBUFFER)
        lunnel_capture_batch(run_capture, lunnel_host_channel_id(ch), b->next_token, b->data,
                             b->len);
    return lunnel_host_submit(ch, b);
}
static int proc_shutdown(void *ch)
{
    return lunnel_host_channel_shutdown(ch);
}

static void on_host_done(const lunnel_host_completion *c, void *ud)
{
    run_app *app = ud;
    if (c->event == LUNNEL_HOST_EV_STUCK) {
        /* Past the second limit: the stuck call cannot be interrupted and a drain would wait
         * for it. The checkpoints already written hold only handled batches (the stuck one
         * and the channel's later ones were never handled), so exit for the supervisor. */
        lunnel_log_kv(LUNNEL_LOG_ERROR, "run", "exiting: a script call is stuck", "error", c->error,
                      NULL);
        fprintf(stderr, "lunnel run: %s, past --stuck-exit-timeout (exit %d)\n", c->error,
                LUNNEL_EXIT_STUCK);
        fflush(NULL);
        _exit(LUNNEL_EXIT_STUCK);
    }
    if (app->worker) lunnel_worker_on_done(app->worker, c);
}

static void on_worker_exit(void *ud, int outcome)
{
    run_app *app = ud;
    app->exit_status = lunnel_exit_status_of((lunnel_outcome)outcome);
    app->exited = 1;
    ev_break(app->loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop, (void)revents;
    run_app *app = w->data;
    if (++app->signals > 1) {
        /* a watcher on the loop thread, not a signal handler: stdio is safe here, and what
         * the script printed must not be lost */
        fflush(stdout);
        say(130, "second signal, exiting now");
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

static int tunnel_type_of(const char *s, Lunnel__Tunnel__TunnelType *out)
{
    if (strcasecmp(s, "BaseData") == 0)
        *out = LUNNEL__TUNNEL__TUNNEL_TYPE__BaseData;
    else if (strcasecmp(s, "Stream") == 0)
        *out = LUNNEL__TUNNEL__TUNNEL_TYPE__Stream;
    else if (strcasecmp(s, "BaseAndStream") == 0)
        *out = LUNNEL__TUNNEL__TUNNEL_TYPE__BaseAndStream;
    else
        return -1;
    return 0;
}

static void print_error(const char *what, const lunnel_error *err)
{
    char line[1200];
    lunnel_error_format(err, line, sizeof line);
    /* one line, masked like every log line (secrets never reach stderr) */
    char masked[1400];
    lunnel_log_mask(line, masked, sizeof masked);
    if (lunnel_error_not_tablestore(err))
        say(-1,
            "%s: the endpoint does not look like Tablestore (a reply without an OTS error "
            "body): %s",
            what, masked);
    else
        say(-1, "%s: %s", what, masked);
}

/* The exit status of a failed start-up call: another web server's 404 is not "not found". */
static int start_status(const lunnel_error *err)
{
    return lunnel_error_not_tablestore(err) ? LUNNEL_EXIT_RUNTIME : lunnel_error_exit_status(err);
}

/* ListTunnel on `table`, looking for the tunnel named `tunnel`. Returns 0 with *id set to a
 * malloc'd tunnel id (NULL when the table has no such tunnel) and *type to its type (static
 * storage is not possible: copied into type_buf), or -1 with *status set after one line on
 * stderr. Existence is decided from the listing, as the official quick start does, never from
 * the wording of an error message. */
static int find_tunnel_by_name(lunnel_api *api, struct ev_loop *loop, const char *table,
                               const char *tunnel, char **id, char *type_buf, size_t type_cap,
                               int *status)
{
    Lunnel__Tunnel__ListTunnelRequest req = LUNNEL__TUNNEL__LIST_TUNNEL_REQUEST__INIT;
    req.table_name = (char *)table;
    lunnel_api_sync_result r;
    memset(&r, 0, sizeof r);
    *id = NULL;
    if (lunnel_api_call_sync(api, loop, LUNNEL_API_LIST, &req.base, 0, &r) != 0) {
        print_error("list tunnels failed", &r.err);
        *status = start_status(&r.err);
        lunnel_api_sync_result_free(&r);
        return -1;
    }
    Lunnel__Tunnel__ListTunnelResponse *m = (Lunnel__Tunnel__ListTunnelResponse *)r.msg;
    for (size_t i = 0; m && i < m->n_tunnels; i++) {
        const Lunnel__Tunnel__TunnelInfo *t = m->tunnels[i];
        /* the service filters by table; the table check guards against one that does not */
        if (t->tunnel_name && strcmp(t->tunnel_name, tunnel) == 0 && t->table_name &&
            strcmp(t->table_name, table) == 0 && t->tunnel_id) {
            *id = strdup(t->tunnel_id);
            snprintf(type_buf, type_cap, "%s", t->tunnel_type ? t->tunnel_type : "");
            break;
        }
    }
    lunnel_api_sync_result_free(&r);
    return 0;
}

/* --create: the tunnel's id from ListTunnel, creating it when the table has none of that
 * name. A create that fails because another process created the same name meanwhile is
 * settled by listing again: both processes then consume the one tunnel. */
static char *find_or_create_tunnel(lunnel_api *api, struct ev_loop *loop, const char *table,
                                   const char *tunnel, const char *create, int *status, char *type,
                                   size_t type_cap)
{
    char *id = NULL;
    if (find_tunnel_by_name(api, loop, table, tunnel, &id, type, type_cap, status) != 0)
        return NULL;
    if (id) {
        if (strcasecmp(type, create) != 0)
            lunnel_log_kv(LUNNEL_LOG_WARN, "run", "tunnel exists with another type; using it",
                          "tunnel", tunnel, "type", type, "create", create, NULL);
        return id;
    }
    Lunnel__Tunnel__Tunnel t = LUNNEL__TUNNEL__TUNNEL__INIT;
    t.table_name = (char *)table;
    t.tunnel_name = (char *)tunnel;
    tunnel_type_of(create, &t.tunnel_type);
    Lunnel__Tunnel__CreateTunnelRequest creq = LUNNEL__TUNNEL__CREATE_TUNNEL_REQUEST__INIT;
    creq.tunnel = &t;
    lunnel_api_sync_result r;
    memset(&r, 0, sizeof r);
    if (lunnel_api_call_sync(api, loop, LUNNEL_API_CREATE, &creq.base, 0, &r) == 0) {
        Lunnel__Tunnel__CreateTunnelResponse *m = (Lunnel__Tunnel__CreateTunnelResponse *)r.msg;
        id = m && m->tunnel_id ? strdup(m->tunnel_id) : NULL;
        lunnel_api_sync_result_free(&r);
        if (!id) {
            say(-1, "create tunnel: the reply carries no tunnel id");
            *status = LUNNEL_EXIT_RUNTIME;
            return NULL;
        }
        lunnel_log_kv(LUNNEL_LOG_INFO, "run", "tunnel created", "tunnel", tunnel, "type", create,
                      "tunnel_id", id, NULL);
        snprintf(type, type_cap, "%s", create);
        return id;
    }
    /* Only a server's refusal can mean "created meanwhile"; a transport failure is reported
     * as it is. */
    if (r.err.kind == LUNNEL_NET_SERVER &&
        find_tunnel_by_name(api, loop, table, tunnel, &id, type, type_cap, status) == 0 && id) {
        lunnel_log_kv(LUNNEL_LOG_INFO, "run", "tunnel was created concurrently; using it", "tunnel",
                      tunnel, "tunnel_id", id, NULL);
        lunnel_api_sync_result_free(&r);
        return id;
    }
    print_error("create tunnel failed", &r.err);
    *status = start_status(&r.err);
    lunnel_api_sync_result_free(&r);
    return NULL;
}

/* --tunnel-id given: the tunnel must be one of --table (when given), and its type is needed
 * for --exit-when-done. ListTunnel answers both; when it fails, Connect will say more. 0, or
 * -1 after one line naming the flags (a usage error). */
static int check_tunnel_id(lunnel_api *api, struct ev_loop *loop, const char *table,
                           const char *tunnel_id, char *type, size_t type_cap)
{
    Lunnel__Tunnel__ListTunnelRequest req = LUNNEL__TUNNEL__LIST_TUNNEL_REQUEST__INIT;
    lunnel_api_sync_result r;
    memset(&r, 0, sizeof r);
    if (lunnel_api_call_sync(api, loop, LUNNEL_API_LIST, &req.base, 0, &r) != 0) {
        lunnel_api_sync_result_free(&r);
        return 0;
    }
    Lunnel__Tunnel__ListTunnelResponse *m = (Lunnel__Tunnel__ListTunnelResponse *)r.msg;
    int rc = 0;
    for (size_t i = 0; m && i < m->n_tunnels; i++) {
        const Lunnel__Tunnel__TunnelInfo *t = m->tunnels[i];
        if (!t->tunnel_id || strcmp(t->tunnel_id, tunnel_id) != 0) continue;
        if (table && t->table_name && strcmp(t->table_name, table) != 0) {
            say(-1, "--tunnel-id %s is a tunnel of table %s, not of --table %s", tunnel_id,
                t->table_name, table);
            rc = -1;
        }
        if (t->tunnel_type) snprintf(type, type_cap, "%s", t->tunnel_type);
        break;
    }
    lunnel_api_sync_result_free(&r);
    return rc;
}

/* Finds (or, with --create, creates) the tunnel; returns a malloc'd tunnel id or NULL with
 * *status set. */
static char *resolve_tunnel(lunnel_api *api, struct ev_loop *loop, const char *table,
                            const char *tunnel, const char *tunnel_id, const char *create,
                            int *status, char *type, size_t type_cap)
{
    if (tunnel_id) return strdup(tunnel_id);
    if (create)
        return find_or_create_tunnel(api, loop, table, tunnel, create, status, type, type_cap);
    Lunnel__Tunnel__DescribeTunnelRequest req = LUNNEL__TUNNEL__DESCRIBE_TUNNEL_REQUEST__INIT;
    req.table_name = (char *)table;
    req.tunnel_name = (char *)tunnel;
    lunnel_api_sync_result r;
    memset(&r, 0, sizeof r);
    if (lunnel_api_call_sync(api, loop, LUNNEL_API_DESCRIBE, &req.base, 0, &r) != 0) {
        print_error("describe tunnel failed", &r.err);
        *status = start_status(&r.err);
        lunnel_api_sync_result_free(&r);
        return NULL;
    }
    Lunnel__Tunnel__DescribeTunnelResponse *m = (Lunnel__Tunnel__DescribeTunnelResponse *)r.msg;
    char *id = m && m->tunnel && m->tunnel->tunnel_id ? strdup(m->tunnel->tunnel_id) : NULL;
    if (m && m->tunnel && m->tunnel->tunnel_type)
        snprintf(type, type_cap, "%s", m->tunnel->tunnel_type);
    lunnel_api_sync_result_free(&r);
    if (!id) *status = LUNNEL_EXIT_RUNTIME;
    return id;
}

/* The value of --config on the command line, if any (read before parsing: the file's
 * options go in front of the command line's). */
static const char *find_config(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
    }
    return path;
}

static void flag_list_free(flag_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int run_parsed(lunnel_opt_values *v);

/* Each flag the config file gave, parsed alone: a bad one is reported with the file and the
 * key it came from (the parse of all flags together could not say which source it was). */
static int check_config(const char *path, const flag_list *all)
{
    /* the complaint without any flag (missing --endpoint, a bad environment variable) is
     * not the config's; a different one with a config flag is */
    char base_err[512] = "", perr[512];
    lunnel_opt_values *v = NULL;
    char *base[1] = {all->v[0]};
    if (lunnel_opts_parse(&run_spec, 1, base, 1, &v, base_err, sizeof base_err) == LUNNEL_OPTS_OK)
        base_err[0] = '\0';
    lunnel_opts_free(v);
    for (int i = 1; i < all->n; i++) {
        char *one[2] = {all->v[0], all->v[i]};
        v = NULL;
        perr[0] = '\0';
        int prc = lunnel_opts_parse(&run_spec, 2, one, 1, &v, perr, sizeof perr);
        lunnel_opts_free(v);
        if (prc == LUNNEL_OPTS_OK || strcmp(perr, base_err) == 0) continue;
        char key[128];
        const char *f = all->v[i] + 2;
        size_t n = strcspn(f, "=");
        snprintf(key, sizeof key, "%.*s", (int)(n < sizeof key ? n : sizeof key - 1), f);
        for (char *q = key; *q; q++)
            if (*q == '-') *q = '_';
        say(-1, "--config %s: key %s: %s", path, key, perr);
        return -1;
    }
    return 0;
}

int lunnel_cmd_run(int argc, char **argv)
{
    flag_list all = {0};
    const char *config = find_config(argc, argv);
    int rc = LUNNEL_EXIT_RUNTIME;
    if (flag_add(&all, strdup(argc > 0 ? argv[0] : "run")) != 0) goto out;
    if (config && (load_config(config, &all) != 0 || check_config(config, &all) != 0)) {
        rc = LUNNEL_EXIT_USAGE;
        goto out;
    }
    for (int i = 1; i < argc; i++)
        if (flag_add(&all, strdup(argv[i])) != 0) goto out;

    char perr[512];
    lunnel_opt_values *v = NULL;
    int prc = lunnel_opts_parse(&run_spec, all.n, all.v, 1, &v, perr, sizeof perr);
    if (prc == LUNNEL_OPTS_HELP) {
        lunnel_opts_print_help(&run_spec, stdout);
        rc = LUNNEL_EXIT_OK;
    } else if (prc != LUNNEL_OPTS_OK) {
        say(-1, "%s", perr);
        rc = LUNNEL_EXIT_USAGE;
    } else {
        rc = run_parsed(v);
        lunnel_opts_free(v); /* its arguments point into `all`: freed first */
    }
out:
    flag_list_free(&all);
    return rc;
}

/* One clear line for the first problem of the options, NULL when there is none. */
static const char *run_usage_problem(lunnel_opt_values *v)
{
    const char *script = lunnel_opts_arg(v, 0);
    const char *table = lunnel_opts_str(v, "table"), *tunnel = lunnel_opts_str(v, "tunnel");
    const char *tunnel_id_opt = lunnel_opts_str(v, "tunnel-id");
    const char *on_error = lunnel_opts_str(v, "on-error");
    const char *dead_letter = lunnel_opts_str(v, "dead-letter");
    double hb_interval = lunnel_opts_num(v, "heartbeat-interval");
    double hb_timeout = lunnel_opts_num(v, "heartbeat-timeout");

    if (!script) return "missing SCRIPT (usage: lunnel run [options] SCRIPT)";
    if (!tunnel_id_opt && (!table || !tunnel)) return "give --table and --tunnel, or --tunnel-id";
    if (lunnel_opts_str(v, "create") && !(table && tunnel))
        return "--create needs --table and --tunnel";
    if (hb_interval < 0.1) return "--heartbeat-interval must be at least 0.1 seconds";
    if (hb_timeout <= hb_interval) return "--heartbeat-timeout must exceed --heartbeat-interval";
    if (lunnel_opts_num(v, "checkpoint-interval") <= 0)
        return "--checkpoint-interval must be positive";
    if (lunnel_opts_int(v, "max-inflight-bytes") < 1)
        return "--max-inflight-bytes must be positive";
    if (lunnel_opts_int(v, "workers") < 0 || lunnel_opts_int(v, "prefetch") < 0 ||
        lunnel_opts_int(v, "max-channels") < 0)
        return "--workers, --prefetch and --max-channels must not be negative";
    if (lunnel_opts_int(v, "max-retries") < 0) return "--max-retries must not be negative";
    if (lunnel_opts_int(v, "memory-limit") < 0) return "--memory-limit must not be negative";
    if (strcasecmp(on_error, "skip") == 0 && !dead_letter)
        return "--on-error skip needs --dead-letter FILE";
    if (dead_letter && strcasecmp(on_error, "skip") != 0)
        return "--dead-letter is used only with --on-error skip (add it, or drop --dead-letter)";
    if (!lunnel_opts_str(v, "credentials-command") &&
        (!lunnel_opts_str(v, "access-key-id") || !lunnel_opts_str(v, "access-key-secret")))
        return "no credentials: set TABLESTORE_ACCESS_KEY_ID / TABLESTORE_ACCESS_KEY_SECRET, "
               "--access-key-id / --access-key-secret, or --credentials-command";
    return NULL;
}

/* The tunnel to consume (found, created, or --tunnel-id checked against --table), malloc'd;
 * NULL with *status set (and the reason said) when there is none to run. */
static char *run_pick_tunnel(lunnel_opt_values *v, lunnel_api *api, struct ev_loop *loop,
                             int *status)
{
    const char *table = lunnel_opts_str(v, "table"), *tunnel = lunnel_opts_str(v, "tunnel");
    const char *tunnel_id_opt = lunnel_opts_str(v, "tunnel-id");
    char tunnel_type[32] = "";
    *status = LUNNEL_EXIT_RUNTIME;
    char *tunnel_id =
        resolve_tunnel(api, loop, table, tunnel, tunnel_id_opt, lunnel_opts_str(v, "create"),
                       status, tunnel_type, sizeof tunnel_type);
    if (!tunnel_id) {
        if (*status == 0) *status = LUNNEL_EXIT_RUNTIME;
        return NULL;
    }
    if (tunnel_id_opt &&
        check_tunnel_id(api, loop, table, tunnel_id, tunnel_type, sizeof tunnel_type) != 0) {
        free(tunnel_id);
        *status = LUNNEL_EXIT_USAGE;
        return NULL;
    }
    if (lunnel_opts_bool(v, "exit-when-done") && strcasecmp(tunnel_type, "Stream") == 0) {
        say(-1,
            "--exit-when-done: tunnel %s is a Stream tunnel, which never "
            "finishes (use it with BaseData tunnels)",
            tunnel_id);
        free(tunnel_id);
        *status = LUNNEL_EXIT_USAGE;
        return NULL;
    }
    return tunnel_id;
}

/* What a run holds besides run_app, released by run_release whichever step ended the run. */
typedef struct run_resources {
    lunnel_dead_letter *dl; /* ours until the worker exists: then the worker owns it */
    lunnel_client cl;
    int client_open;
    run_observe *obs;
    char *tunnel_id;
} run_resources;

/* The one teardown of a run, for every way it ends (a step that failed at start-up, or the
 * loop having returned). Returns status, for `return run_release(...)`. */
static int run_release(run_app *app, run_resources *r, int status)
{
    run_observe_free(r->obs);
    r->obs = NULL;
    lunnel_host_free(app->host);
    app->host = NULL;
    lunnel_capture_close(run_capture);
    run_capture = NULL;
    if (!app->worker) lunnel_dead_letter_close(r->dl);
    /* The host is gone (no completion can come). With no call in flight, the worker frees
     * everything (the dead-letter file with it), then the api, http and credentials go
     * (leak-checker clean). With calls in flight (a stop during a heartbeat that added 50,000
     * channels leaves their GetCheckpoints queued) worker and client are left to the process
     * exit: lunnel_worker_free would cancel them one by one, and each cancel lets http start
     * the next queued request only to cancel it too. Calls before the worker exists are
     * synchronous: none is pending then. */
    if (!r->client_open || lunnel_http_pending(r->cl.http) == 0) {
        lunnel_worker_free(app->worker);
        app->worker = NULL;
        if (r->client_open) lunnel_opts_close_client(&r->cl);
    }
    free(r->tunnel_id);
    r->tunnel_id = NULL;
    return status;
}

/* After the loop returned with a failure: the one line that says why, and the immediate exit
 * of a drain that did not finish. */
static void run_report_exit(run_app *app)
{
    if (app->exit_status == 0) return;
    if (lunnel_worker_exit_reason(app->worker)[0]) {
        char masked[1400];
        lunnel_log_mask(lunnel_worker_exit_reason(app->worker), masked, sizeof masked);
        say(app->exit_status, "%s (exit %d)", masked, app->exit_status);
    } else if (app->signals > 0) {
        say(app->exit_status, "drain not finished within --drain-timeout (exit %d)",
            app->exit_status);
    }
    if (app->signals > 0 || lunnel_worker_drain_timed_out(app->worker)) {
        /* A drain that timed out (or failed): a process() call may never return (LuaJIT
         * cannot interrupt it) and lunnel_host_free would wait for it forever. Leave now, as
         * --drain-timeout promises; the checkpoints hold only what succeeded. */
        fflush(NULL);
        _exit(app->exit_status);
    }
}

/* The tunnel worker's configuration from the options (strings borrowed from v and res). */
static lunnel_worker_config run_worker_config(lunnel_opt_values *v, struct ev_loop *loop,
                                              run_app *app, run_resources *res,
                                              const char *client_tag)
{
    lunnel_worker_config wc = {
        .loop = loop,
        .api = res->cl.api,
        .tunnel_id = res->tunnel_id,
        .table_name = lunnel_opts_str(v, "table"),
        .tunnel_name = lunnel_opts_str(v, "tunnel"),
        .client_tag = client_tag,
        .heartbeat_interval_s = lunnel_opts_num(v, "heartbeat-interval"),
        .heartbeat_timeout_s = lunnel_opts_num(v, "heartbeat-timeout"),
        .prefetch = (int)lunnel_opts_int(v, "prefetch"),
        .max_inflight_bytes = (size_t)lunnel_opts_int(v, "max-inflight-bytes"),
        .max_backoff_s = lunnel_opts_num(v, "max-backoff"),
        .checkpoint_interval_s = lunnel_opts_num(v, "checkpoint-interval"),
        .manual_commit = strcasecmp(lunnel_opts_str(v, "commit"), "manual") == 0,
        .max_channels = (int)lunnel_opts_int(v, "max-channels"),
        .drain_timeout_s = lunnel_opts_num(v, "drain-timeout"),
        .exit_when_done = lunnel_opts_bool(v, "exit-when-done"),
        .reconnect_delay_max_s = lunnel_opts_num(v, "reconnect-delay-max"),
        .connect_retry_window_s = lunnel_opts_num(v, "connect-retry-window"),
        .max_retries = (int)lunnel_opts_int(v, "max-retries"),
        .retry_backoff_max_s = lunnel_opts_num(v, "max-backoff"),
        .dead_letter_path = lunnel_opts_str(v, "dead-letter"),
        .dead_letter = res->dl,
        .proc = {.open = proc_open,
                 .submit = proc_submit,
                 .shutdown = proc_shutdown,
                 .ud = app->host},
        .on_exit = on_worker_exit,
        .ud = app,
    };
    lunnel_on_error_parse(lunnel_opts_str(v, "on-error"), &wc.on_error);
    return wc;
}

/* The run itself, on parsed options (borrowed). Returns the exit status. */
static int run_parsed(lunnel_opt_values *v)
{
    const char *script = lunnel_opts_arg(v, 0);
    const char *table = lunnel_opts_str(v, "table"), *tunnel = lunnel_opts_str(v, "tunnel");
    const char *commit = lunnel_opts_str(v, "commit");

    /* logging first: with --log-format json a usage problem is a JSON line too */
    if (lunnel_opts_apply_logging(v) != 0) {
        say(-1, "bad --log-level or --log-format");
        return LUNNEL_EXIT_USAGE;
    }
    const char *problem = run_usage_problem(v);
    if (problem) {
        say(-1, "%s", problem);
        return LUNNEL_EXIT_USAGE;
    }
    char host[256];
    const char *client_tag = lunnel_opts_str(v, "client-tag");
    if (!client_tag) {
        if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "lunnel");
        host[sizeof host - 1] = 0;
        client_tag = host;
    }
    signal(SIGPIPE, SIG_IGN);

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    run_app app = {.loop = loop};
    run_resources res = {0};
    char err[1024] = "";

    /* The dead-letter file is opened (created) now: a path that cannot be written is a
     * usage error before any call, not a channel re-read in a loop at the first bad batch. */
    if (lunnel_opts_str(v, "dead-letter")) {
        res.dl = lunnel_dead_letter_open(lunnel_opts_str(v, "dead-letter"), err, sizeof err);
        if (!res.dl) {
            say(-1, "%s", err);
            return run_release(&app, &res, LUNNEL_EXIT_USAGE);
        }
    }
    int crc = lunnel_opts_open_client(v, loop, &res.cl, err, sizeof err);
    if (crc != 0) {
        say(-1, "%s", err);
        return run_release(&app, &res, crc);
    }
    res.client_open = 1;

    /* the script first: a script that does not load must not leave a created tunnel behind */
    lunnel_host_config hcfg = {
        .script_path = script,
        .workers = (int)lunnel_opts_int(v, "workers"),
        .custom_json = lunnel_opts_str(v, "custom"),
        .lua_dir = lunnel_cli_lua_dir(),
        .process_timeout_s = lunnel_opts_num(v, "process-timeout"),
        .stuck_exit_s = lunnel_opts_num(v, "stuck-exit-timeout"),
        .memory_limit = (size_t)lunnel_opts_int(v, "memory-limit"),
        .watch = !lunnel_opts_bool(v, "no-watch"),
        .lua_path = lunnel_opts_str(v, "lua-path"),
        .tick_interval_s = lunnel_opts_num(v, "tick-interval"),
        .loop = loop,
        .on_done = on_host_done,
        .ud = &app,
    };
    err[0] = 0;
    app.host = lunnel_host_new(&hcfg, err, sizeof err);
    if (!app.host) {
        say(-1, "%s: %s", script, err);
        return run_release(&app, &res, LUNNEL_EXIT_USAGE);
    }

    const char *capture_path = lunnel_opts_str(v, "capture");
    if (capture_path) {
        run_capture = lunnel_capture_open(
            capture_path, (uint64_t)lunnel_opts_int(v, "capture-max-bytes"), err, sizeof err);
        if (!run_capture) {
            fprintf(stderr, "lunnel run: %s\n", err);
            return run_release(&app, &res, LUNNEL_EXIT_USAGE);
        }
    }

    int status;
    res.tunnel_id = run_pick_tunnel(v, res.cl.api, loop, &status);
    if (!res.tunnel_id) return run_release(&app, &res, status);

    lunnel_worker_config wc = run_worker_config(v, loop, &app, &res, client_tag);
    res.obs = run_observe_new(v); /* NULL: no metrics, no status line */
    wc.metrics = run_observe_metrics(res.obs);
    app.worker = lunnel_worker_new(&wc);
    if (!app.worker) return run_release(&app, &res, LUNNEL_EXIT_RUNTIME);

    run_observe_target ot = {.loop = loop,
                             .worker = app.worker,
                             .host = app.host,
                             .client = &res.cl,
                             .table_name = table,
                             .tunnel_name = tunnel,
                             .tunnel_id = res.tunnel_id};
    if (run_observe_start(res.obs, &ot, err, sizeof err) != 0) {
        say(-1, "%s", err);
        return run_release(&app, &res, LUNNEL_EXIT_USAGE); /* worker never started */
    }

    ev_signal sigint, sigterm, sighup;
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sighup, on_sighup, SIGHUP);
    sigint.data = sigterm.data = sighup.data = &app;
    ev_signal_start(loop, &sigint);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sighup);
    lunnel_log_kv(LUNNEL_LOG_INFO, "run", "starting", "tunnel_id", res.tunnel_id, "script", script,
                  "commit", commit, NULL);
    lunnel_worker_start(app.worker);
    ev_run(loop, 0);

    /* The worker has drained (or failed); Lua workers finish their current job and stop. */
    ev_signal_stop(loop, &sigint);
    ev_signal_stop(loop, &sigterm);
    ev_signal_stop(loop, &sighup);
    run_observe_free(res.obs); /* the status line ends before the last words */
    res.obs = NULL;
    run_report_exit(&app);
    return run_release(&app, &res, app.exit_status);
}
