/* metrics_http.c: GET /metrics, /healthz, /readyz for `lunnel run --metrics-listen`
 * (metrics_http.h). A deliberately small HTTP/1.1 server on the run's libev loop: one request
 * per connection (Connection: close), request head at most 8 KiB, a 10 s deadline per
 * connection, non-blocking sockets throughout, so a slow scraper never stalls the loop.
 * Bounded: at most MAX_CONNS connections at once (past it the listener is paused and the
 * kernel's backlog of 64 holds the rest); an accept() failure such as EMFILE pauses the
 * listener with a backoff (0.1 s doubling to 5 s, one log line per step) instead of spinning
 * on a socket that stays readable. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/metrics_http.h"
#include "lunnel/host.h"
#include "lunnel/http.h"
#include "lunnel/log.h"
#include "lunnel/metrics.h"
#include "lunnel/worker.h"

#define HEAD_MAX 8192
#define CONN_TIMEOUT_S 10.0
#define TICK_S 1.0
#define TICK_STALE_S 5.0 /* /healthz fails when the loop's tick is older than this */
#define MAX_CONNS 32
#define ACCEPT_BACKOFF_MIN_S 0.1
#define ACCEPT_BACKOFF_MAX_S 5.0

typedef struct conn conn;

struct metrics_http {
    metrics_http_config cfg;
    int fd, port;
    ev_io accept_io;
    ev_timer tick;
    ev_tstamp last_tick;
    conn *conns;
    int n_conns;
    ev_timer accept_retry; /* the listener paused after an accept() error */
    double accept_backoff_s;
    int accepting;
};

static void accept_resume(metrics_http *s)
{
    if (s->accepting || ev_is_active(&s->accept_retry)) return;
    s->accepting = 1;
    ev_io_start(s->cfg.loop, &s->accept_io);
}

static void accept_pause(metrics_http *s)
{
    if (!s->accepting) return;
    s->accepting = 0;
    ev_io_stop(s->cfg.loop, &s->accept_io);
}

struct conn {
    metrics_http *s;
    int fd;
    ev_io io;
    ev_timer deadline;
    char head[HEAD_MAX];
    size_t n;
    lunnel_metrics_buf out;
    size_t off;
    conn *prev, *next;
};

static void conn_close(conn *c)
{
    metrics_http *s = c->s;
    ev_io_stop(s->cfg.loop, &c->io);
    ev_timer_stop(s->cfg.loop, &c->deadline);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c->out.p);
    free(c);
    s->n_conns--;
    accept_resume(s); /* below the cap again */
}

static void respond(conn *c, int status, const char *ctype, const char *body, size_t len)
{
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 400 ? "Bad Request"
                         : status == 431 ? "Request Header Fields Too Large"
                                         : "Service Unavailable";
    lunnel_metrics_buf b = {0};
    lunnel_metrics_buf_printf(&b,
                              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                              "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                              status, reason, ctype, len);
    lunnel_buf_add(&b, body, len); /* raw: it may hold '%' */
    free(c->out.p);
    c->out = b;
    c->off = 0;
}

static void render_metrics(metrics_http *s, lunnel_metrics_buf *b)
{
    double now = ev_time();
    lunnel_metrics_render(s->cfg.metrics, s->cfg.worker, now, b);
    if (s->cfg.host) {
        lunnel_host_stats hs;
        lunnel_host_get_stats(s->cfg.host, &hs);
        lunnel_metrics_buf_printf(
            b,
            "# HELP lunnel_script_reloads_total hot reloads of the script by result\n"
            "# TYPE lunnel_script_reloads_total counter\n"
            "lunnel_script_reloads_total{result=\"ok\"} %llu\n"
            "lunnel_script_reloads_total{result=\"failed\"} %llu\n"
            "# HELP lunnel_script_version script version every Lua worker runs (1 = initial)\n"
            "# TYPE lunnel_script_version gauge\nlunnel_script_version %d\n"
            "# HELP lunnel_process_timeouts_total process() calls the watchdog reported\n"
            "# TYPE lunnel_process_timeouts_total counter\nlunnel_process_timeouts_total %llu\n"
            "# HELP lunnel_lua_memory_errors_total calls failed on the Lua memory limit\n"
            "# TYPE lunnel_lua_memory_errors_total counter\nlunnel_lua_memory_errors_total %llu\n"
            "# HELP lunnel_process_stuck_calls script calls running past --process-timeout now\n"
            "# TYPE lunnel_process_stuck_calls gauge\nlunnel_process_stuck_calls %d\n"
            "# HELP lunnel_lua_worker_replacements_total workers replaced after a stuck call\n"
            "# TYPE lunnel_lua_worker_replacements_total counter\n"
            "lunnel_lua_worker_replacements_total %llu\n"
            "# HELP lunnel_lua_state_rebuilds_total Lua states rebuilt after the script kept "
            "its memory past the limit\n"
            "# TYPE lunnel_lua_state_rebuilds_total counter\nlunnel_lua_state_rebuilds_total %llu\n"
            "# HELP lunnel_lua_memory_bytes bytes allocated by each Lua worker's state\n"
            "# TYPE lunnel_lua_memory_bytes gauge\n",
            (unsigned long long)hs.reloads_ok, (unsigned long long)hs.reloads_failed,
            hs.script_version, (unsigned long long)hs.timeouts,
            (unsigned long long)hs.memory_errors, hs.stuck_calls,
            (unsigned long long)hs.worker_replacements, (unsigned long long)hs.state_rebuilds);
        for (int i = 0; i < hs.workers; i++)
            lunnel_metrics_buf_printf(b, "lunnel_lua_memory_bytes{worker=\"%d\"} %zu\n", i,
                                      lunnel_host_worker_memory(s->cfg.host, i));
    }
    if (s->cfg.http) {
        lunnel_http_stats st;
        lunnel_http_get_stats(s->cfg.http, &st);
        lunnel_metrics_buf_printf(
            b,
            "# HELP lunnel_http_attempts_total HTTP attempts of service calls (retries included)\n"
            "# TYPE lunnel_http_attempts_total counter\nlunnel_http_attempts_total %llu\n"
            "# HELP lunnel_http_retries_total retried attempts of service calls\n"
            "# TYPE lunnel_http_retries_total counter\nlunnel_http_retries_total %llu\n"
            "# HELP lunnel_http_connections_total connections opened to the service\n"
            "# TYPE lunnel_http_connections_total counter\nlunnel_http_connections_total %llu\n"
            "# HELP lunnel_http_active_calls service calls in flight (bounded by the pool)\n"
            "# TYPE lunnel_http_active_calls gauge\nlunnel_http_active_calls %d\n"
            "# HELP lunnel_http_queued_calls service calls waiting for a pool slot\n"
            "# TYPE lunnel_http_queued_calls gauge\nlunnel_http_queued_calls %d\n"
            "# HELP lunnel_http_downloading_bytes reply bytes being downloaded\n"
            "# TYPE lunnel_http_downloading_bytes gauge\nlunnel_http_downloading_bytes %zu\n"
            "# HELP lunnel_http_md5_mismatches_total replies not matching x-ots-contentmd5\n"
            "# TYPE lunnel_http_md5_mismatches_total counter\nlunnel_http_md5_mismatches_total "
            "%llu\n",
            (unsigned long long)st.attempts, (unsigned long long)st.retries,
            (unsigned long long)st.connections, st.active, st.queued, st.downloading,
            (unsigned long long)st.md5_mismatches);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
        lunnel_metrics_buf_printf(b,
                                  "# HELP process_cpu_seconds_total user + system CPU time\n"
                                  "# TYPE process_cpu_seconds_total counter\n"
                                  "process_cpu_seconds_total %.6f\n"
                                  "# HELP process_max_resident_bytes peak resident set size\n"
                                  "# TYPE process_max_resident_bytes gauge\n"
                                  "process_max_resident_bytes %ld\n",
                                  cpu, ru.ru_maxrss * 1024L);
    }
}

/* The request head is complete: route it. */
static void handle(conn *c)
{
    metrics_http *s = c->s;
    char method[16], target[512];
    if (sscanf(c->head, "%15s %511s", method, target) != 2) {
        respond(c, 400, "text/plain; charset=utf-8", "bad request\n", 12);
        return;
    }
    char *q = strchr(target, '?');
    if (q) *q = 0;
    int head_only = strcmp(method, "HEAD") == 0;
    if (strcmp(method, "GET") != 0 && !head_only) {
        respond(c, 405, "text/plain; charset=utf-8", "only GET\n", 9);
        return;
    }
    char body[256];
    if (strcmp(target, "/metrics") == 0) {
        lunnel_metrics_buf b = {0};
        render_metrics(s, &b);
        if (b.oom) {
            free(b.p);
            respond(c, 503, "text/plain; charset=utf-8", "out of memory\n", 14);
            return;
        }
        respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, head_only ? 0 : b.len);
        free(b.p);
    } else if (strcmp(target, "/healthz") == 0) {
        double age = ev_time() - s->last_tick;
        int ok = age < TICK_STALE_S;
        int k = ok ? snprintf(body, sizeof body, "ok\n")
                   : snprintf(body, sizeof body, "loop stalled: tick %.1fs old\n", age);
        respond(c, ok ? 200 : 503, "text/plain; charset=utf-8", body, head_only ? 0 : (size_t)k);
    } else if (strcmp(target, "/readyz") == 0) {
        char why[256];
        int ok = lunnel_metrics_ready(s->cfg.worker, ev_time(), why, sizeof why);
        lunnel_host_stats hs;
        if (ok && s->cfg.host) {
            lunnel_host_get_stats(s->cfg.host, &hs);
            if (hs.stuck_calls > 0) {
                /* a stuck call holds its channel: this process is not doing its job */
                ok = 0;
                snprintf(why, sizeof why, "script call stuck on channel %s for %.0fs",
                         hs.stuck_channel, hs.oldest_stuck_s);
            }
        }
        int k = ok ? snprintf(body, sizeof body, "ready\n")
                   : snprintf(body, sizeof body, "not ready: %s\n", why);
        respond(c, ok ? 200 : 503, "text/plain; charset=utf-8", body, head_only ? 0 : (size_t)k);
    } else {
        respond(c, 404, "text/plain; charset=utf-8",
                "not found (try /metrics, /healthz, /readyz)\n", 44);
    }
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = w->data;
    if (revents & EV_READ) {
        ssize_t k = recv(c->fd, c->head + c->n, sizeof c->head - 1 - c->n, 0);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c);
            return;
        }
        if (k < 0) return;
        c->n += (size_t)k;
        c->head[c->n] = 0;
        if (!strstr(c->head, "\r\n\r\n") && !strstr(c->head, "\n\n")) {
            if (c->n < sizeof c->head - 1) return;
            respond(c, 431, "text/plain; charset=utf-8", "request head too large\n", 23);
        } else {
            handle(c);
        }
        ev_io_stop(loop, &c->io);
        ev_io_set(&c->io, c->fd, EV_WRITE);
        ev_io_start(loop, &c->io);
        return;
    }
    if (revents & EV_WRITE) {
        if (c->out.oom || !c->out.p) {
            conn_close(c);
            return;
        }
        ssize_t k = send(c->fd, c->out.p + c->off, c->out.len - c->off, MSG_NOSIGNAL);
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (k <= 0) {
            conn_close(c);
            return;
        }
        c->off += (size_t)k;
        if (c->off == c->out.len) conn_close(c);
    }
}

static void deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    conn_close(t->data);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    metrics_http *s = w->data;
    for (int i = 0; i < 16; i++) { /* bounded: other watchers get their turn */
        if (s->n_conns >= MAX_CONNS) {
            accept_pause(s); /* resumed by conn_close */
            return;
        }
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                s->accept_backoff_s = 0; /* a clean drain resets the backoff */
                return;
            }
            if (errno == EINTR || errno == ECONNABORTED) continue;
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM...: the pending connection stays queued and the
             * socket readable, so retrying at once would spin. Pause, then try again. */
            double d = s->accept_backoff_s <= 0 ? ACCEPT_BACKOFF_MIN_S : s->accept_backoff_s * 2;
            if (d > ACCEPT_BACKOFF_MAX_S) d = ACCEPT_BACKOFF_MAX_S;
            if (d != s->accept_backoff_s) {
                char dbuf[32];
                snprintf(dbuf, sizeof dbuf, "%.1f", d);
                lunnel_log_kv(LUNNEL_LOG_WARN, "metrics", "accept failed, pausing the listener",
                              "error", strerror(errno), "retry_s", dbuf, NULL);
            }
            s->accept_backoff_s = d;
            accept_pause(s);
            ev_timer_set(&s->accept_retry, d, 0.);
            ev_timer_start(loop, &s->accept_retry);
            return;
        }
        s->n_conns++;
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            s->n_conns--;
            return;
        }
        c->s = s;
        c->fd = fd;
        ev_io_init(&c->io, conn_cb, fd, EV_READ);
        c->io.data = c;
        ev_timer_init(&c->deadline, deadline_cb, CONN_TIMEOUT_S, 0.);
        c->deadline.data = c;
        c->next = s->conns;
        if (s->conns) s->conns->prev = c;
        s->conns = c;
        ev_io_start(loop, &c->io);
        ev_timer_start(loop, &c->deadline);
    }
}

static void accept_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    metrics_http *s = t->data;
    if (s->n_conns < MAX_CONNS) accept_resume(s);
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    metrics_http *s = t->data;
    s->last_tick = ev_now(loop);
}

metrics_http *metrics_http_start(const metrics_http_config *cfg, char *err, size_t err_cap)
{
    char hostbuf[256];
    const char *colon = strrchr(cfg->listen, ':');
    if (!colon || colon == cfg->listen || !colon[1]) {
        snprintf(err, err_cap, "--metrics-listen %s: expected HOST:PORT (e.g. 127.0.0.1:9464)",
                 cfg->listen);
        return NULL;
    }
    size_t hl = (size_t)(colon - cfg->listen);
    if (hl >= sizeof hostbuf) hl = sizeof hostbuf - 1;
    memcpy(hostbuf, cfg->listen, hl);
    hostbuf[hl] = 0;
    char *host = hostbuf;
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        host++;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gai != 0) {
        snprintf(err, err_cap, "--metrics-listen %s: %s", cfg->listen, gai_strerror(gai));
        return NULL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        snprintf(err, err_cap, "--metrics-listen %s: %s", cfg->listen, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return NULL;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        char sv[16];
        if (getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, sv, sizeof sv, NI_NUMERICSERV) == 0)
            port = atoi(sv);
    }
    metrics_http *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        snprintf(err, err_cap, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->cfg.listen = NULL; /* not kept */
    s->fd = fd;
    s->port = port;
    ev_io_init(&s->accept_io, accept_cb, fd, EV_READ);
    s->accept_io.data = s;
    ev_timer_init(&s->accept_retry, accept_retry_cb, 0., 0.);
    s->accept_retry.data = s;
    accept_resume(s);
    ev_timer_init(&s->tick, tick_cb, TICK_S, TICK_S);
    s->tick.data = s;
    ev_timer_start(cfg->loop, &s->tick);
    ev_now_update(cfg->loop);
    s->last_tick = ev_now(cfg->loop);
    return s;
}

int metrics_http_port(const metrics_http *s)
{
    return s->port;
}

void metrics_http_set_worker(metrics_http *s, struct lunnel_worker *w)
{
    s->cfg.worker = w;
}

void metrics_http_stop(metrics_http *s)
{
    if (!s) return;
    while (s->conns)
        conn_close(s->conns);
    ev_io_stop(s->cfg.loop, &s->accept_io);
    ev_timer_stop(s->cfg.loop, &s->accept_retry);
    ev_timer_stop(s->cfg.loop, &s->tick);
    close(s->fd);
    free(s);
}
