/* server.c: lunnel-emulator's HTTP/1.1 server on libev (see server.h for the contract).
 *
 * One connection = one non-blocking socket with an input buffer and an output buffer.
 * Requests are parsed by http_parse.c, authenticated by auth.c and dispatched to the handler
 * of their path, one at a time per connection (a deferred response holds the connection's
 * later requests back, as HTTP/1.1 requires). All on the loop thread.
 *
 * Bounds: at most max_connections are open; a new one past that closes the least recently
 * active connection that waits on its client (idle or half-open), so a flood of idle sockets
 * never locks real clients out. A sweep timer closes connections idle past idle_timeout, and
 * answers 408 OTSRequestTimeout to heads slower than header_timeout and bodies (or replies
 * being written) stalled past body_timeout. Input buffers hold what arrived, no more, and are
 * freed when empty; all of them together stay under max_buffered_bytes. */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <proto/tunnel_service_api.pb-c.h>

#include "http/auth.h"
#include "http/http_parse.h"
#include "lunnel/timeutil.h"

#define MAX_ROUTES 64
#define MAX_ADMIN 64
#define MAX_STAT_PATHS 128
#define MAX_ON_FREE 8
#define READ_CHUNK 65536

typedef struct route {
    char path[128];
    lunnel_emu_handler fn;
    void *ud;
} route;

typedef struct admin_route {
    char action[64];
    lunnel_emu_admin_handler fn;
    void *ud;
} admin_route;

typedef struct path_stat_slot {
    char path[128];
} path_stat_slot;

typedef struct conn conn;

struct lunnel_emu_response {
    lunnel_emu_server *srv;
    conn *c; /* NULL once the connection is gone (deferred answers are discarded) */
    char request_id[48];
    char path[128];
    char trace_id[72]; /* the request's x-ots-trace-id ("" when none), for --verbose */
    bool is_admin;
    bool answered;
    bool deferred;
    bool keep_alive;
};

struct conn {
    lunnel_emu_server *srv;
    int fd;
    uint64_t id;
    ev_io io;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off, out_cap;
    bool close_after;   /* close once the output is written */
    bool sent_continue; /* 100 Continue already sent for the request being received */
    lunnel_emu_response *pending;
    bool awaiting_commit;  /* output held until the loop iteration's commit */
    bool in_body;          /* the head of the request being received is complete */
    ev_tstamp last_active; /* last byte in or out */
    ev_tstamp req_started; /* first byte of the request being received */
    conn *prev, *next;     /* most recently active first */
};

struct lunnel_emu_server {
    struct ev_loop *loop;
    const lunnel_emu_config *cfg;
    int fd;
    int port;
    ev_io accept_io;
    conn *conns, *conns_tail;
    int n_conns;
    ev_timer sweep;
    size_t in_bytes; /* input buffer capacity of all connections */
    struct {
        uint64_t accepted, evicted, idle_closed, header_timeouts, body_timeouts, over_budget;
    } cstats;
    ev_tstamp last_trim;
    size_t freed_since_trim;
    uint64_t next_conn_id;
    uint64_t next_request;
    uint32_t boot_id;
    route routes[MAX_ROUTES];
    size_t n_routes;
    admin_route admins[MAX_ADMIN];
    size_t n_admins;
    lunnel_emu_filter filter;
    void *filter_ud;
    const char *busy; /* lunnel_emu_server_set_busy */
    /* Durable state (group commit): replies that acknowledge uncommitted changes wait; once
     * per loop iteration, after every callback, the prepare watcher commits and sends them. */
    void (*commit_fn)(void *ud);
    int (*commit_pending_fn)(void *ud);
    void *commit_ud;
    ev_prepare commit_prep;
    int n_awaiting; /* connections whose output waits for the commit */
    path_stat_slot stat_names[MAX_STAT_PATHS];
    lunnel_emu_path_stat stats[MAX_STAT_PATHS];
    size_t n_stats;
    struct {
        void (*fn)(void *);
        void *ud;
    } on_free[MAX_ON_FREE];
    size_t n_on_free;
    struct {
        lunnel_emu_stats_fn fn;
        void *ud;
    } stats_fns[MAX_ON_FREE];
    size_t n_stats_fns;
    bool stopped;
};

/* ---- small helpers ------------------------------------------------------------------- */

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static bool buf_reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return true;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p) return false;
    *buf = p;
    *cap = n;
    return true;
}

static lunnel_emu_path_stat *stat_for(lunnel_emu_server *s, const char *path)
{
    for (size_t i = 0; i < s->n_stats; i++)
        if (strcmp(s->stat_names[i].path, path) == 0) return &s->stats[i];
    size_t i = s->n_stats;
    if (i == MAX_STAT_PATHS) { /* too many distinct paths: lump the rest together */
        i = MAX_STAT_PATHS - 1;
        snprintf(s->stat_names[i].path, sizeof s->stat_names[i].path, "(other)");
        return &s->stats[i];
    }
    snprintf(s->stat_names[i].path, sizeof s->stat_names[i].path, "%s", path);
    s->stats[i].path = s->stat_names[i].path;
    s->n_stats++;
    return &s->stats[i];
}

/* ---- connections --------------------------------------------------------------------- */

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_process(conn *c);
static void reject_busy(conn *c);

static void conn_unlink(conn *c)
{
    lunnel_emu_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        s->conns_tail = c->prev;
    c->prev = c->next = NULL;
}

static void conn_link_head(conn *c)
{
    lunnel_emu_server *s = c->srv;
    c->prev = NULL;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    else
        s->conns_tail = c;
    s->conns = c;
}

/* Marks activity: the connection moves to the front (eviction takes from the back). */
static void conn_touch(conn *c)
{
    c->last_active = ev_now(c->srv->loop);
    if (c->srv->conns != c) {
        conn_unlink(c);
        conn_link_head(c);
    }
}

static void conn_close(conn *c)
{
    lunnel_emu_server *s = c->srv;
    if (c->pending) c->pending->c = NULL; /* its owner answers later into the void */
    if (c->awaiting_commit) s->n_awaiting--;
    ev_io_stop(s->loop, &c->io);
    close(c->fd);
    conn_unlink(c);
    s->n_conns--;
    s->in_bytes -= c->in_cap;
    s->freed_since_trim += c->in_cap + c->out_cap + sizeof *c;
    free(c->in);
    free(c->out);
    free(c);
    if (!s->stopped && (uint32_t)s->n_conns < s->cfg->max_connections)
        ev_io_start(s->loop, &s->accept_io);
}

/* Re-arms the watcher for what the connection waits for now. */
static void conn_update(conn *c)
{
    int ev = 0;
    if (c->out_len > c->out_off) ev |= EV_WRITE;
    if (!c->pending && !c->close_after) ev |= EV_READ;
    if (ev == 0 && c->close_after && c->out_len == c->out_off) {
        conn_close(c);
        return;
    }
    if (ev != (c->io.events & (EV_READ | EV_WRITE))) {
        ev_io_stop(c->srv->loop, &c->io);
        ev_io_set(&c->io, c->fd, ev);
        ev_io_start(c->srv->loop, &c->io);
    }
}

/* Tries to flush output; returns -1 when the connection was closed. */
static int conn_flush(conn *c)
{
    /* Durable state: a reply never leaves before what it acknowledges is committed; while
     * changes are uncommitted the output waits for this iteration's group commit. */
    lunnel_emu_server *srv = c->srv;
    if (srv->commit_fn && c->out_off < c->out_len && srv->commit_pending_fn(srv->commit_ud)) {
        if (!c->awaiting_commit) {
            c->awaiting_commit = true;
            srv->n_awaiting++;
        }
        return 0;
    }
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            conn_close(c);
            return -1;
        }
        c->out_off += (size_t)n;
        c->last_active = ev_now(srv->loop);
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->out_cap > 65536) { /* a big reply was sent: give its buffer back */
            srv->freed_since_trim += c->out_cap;
            free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
    }
    if (c->close_after && c->out_len == 0) {
        conn_close(c);
        return -1;
    }
    return 0;
}

static void conn_append(conn *c, const void *p, size_t n)
{
    if (!buf_reserve(&c->out, &c->out_cap, c->out_len + n)) {
        c->close_after = true; /* out of memory: give up on this client */
        return;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

int lunnel_emu_server_adopt(lunnel_emu_server *s, int fd)
{
    conn *c = set_nonblock(fd) == 0 ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        close(fd);
        return -1;
    }
    c->srv = s;
    c->fd = fd;
    c->id = ++s->next_conn_id;
    ev_io_init(&c->io, conn_cb, fd, EV_READ);
    c->io.data = c;
    ev_io_start(s->loop, &c->io);
    ev_now_update(s->loop); /* the loop's cached time may be a whole iteration old */
    c->last_active = ev_now(s->loop);
    conn_link_head(c);
    s->n_conns++;
    s->cstats.accepted++;
    return 0;
}

/* The least recently active connection that waits on its client (nothing in flight here:
 * no handler answer pending, no reply waiting for the commit), or NULL. */
static conn *evictable(lunnel_emu_server *s)
{
    for (conn *c = s->conns_tail; c; c = c->prev)
        if (!c->pending && !c->awaiting_commit) return c;
    return NULL;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    lunnel_emu_server *s = w->data;
    for (int k = 0; k < 64; k++) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if ((errno == EMFILE || errno == ENFILE) && s->n_conns > 0) {
                /* out of descriptors: close one waiting connection for the next accept, or
                 * stop accepting until one closes (no busy loop on a ready listen socket) */
                conn *victim = evictable(s);
                if (victim) {
                    s->cstats.evicted++;
                    conn_close(victim);
                    continue;
                }
                ev_io_stop(loop, &s->accept_io);
            }
            return; /* EAGAIN etc.: retry on the next readiness */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (lunnel_emu_server_adopt(s, fd) != 0) continue;
        if ((uint32_t)s->n_conns <= s->cfg->max_connections) continue;
        /* past the limit: the least recently active waiting connection makes room (the new
         * one is the most recent, so it goes only when every other one is busy) */
        conn *newest = s->conns, *victim = evictable(s);
        s->cstats.evicted++;
        conn_close(victim);
        if (victim == newest) { /* every other connection busy: new ones wait in the backlog */
            ev_io_stop(loop, &s->accept_io);
            return;
        }
    }
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    conn *c = w->data;
    if (revents & EV_WRITE) {
        if (conn_flush(c) != 0) return;
    }
    if ((revents & EV_READ) && !c->pending && !c->close_after) {
        lunnel_emu_server *s = c->srv;
        static char chunk[READ_CHUNK]; /* the loop thread's; copied out at once */
        for (int k = 0; k < 16; k++) {
            ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
            if (n == 0) { /* peer closed: answer nothing more */
                conn_close(c);
                return;
            }
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR) continue;
                conn_close(c);
                return;
            }
            size_t cap0 = c->in_cap;
            if (c->in_len == 0) c->req_started = ev_now(s->loop);
            if (s->in_bytes + (c->in_len + (size_t)n > cap0 ? c->in_len + (size_t)n : 0) >
                    s->cfg->max_buffered_bytes ||
                !buf_reserve(&c->in, &c->in_cap, c->in_len + (size_t)n)) {
                s->cstats.over_budget++;
                reject_busy(c);
                return;
            }
            s->in_bytes += c->in_cap - cap0;
            memcpy(c->in + c->in_len, chunk, (size_t)n);
            c->in_len += (size_t)n;
            if ((size_t)n < sizeof chunk) break;
        }
        conn_touch(c);
        conn_process(c);
        return; /* conn_process flushes and re-arms (or closed c) */
    }
    conn_update(c);
}

/* ---- responses ------------------------------------------------------------------------ */

static const char *reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Status";
    }
}

static void response_release(lunnel_emu_response *r);

/* Writes a whole reply for `r` to its connection (if still there) and frees `r` when it was
 * deferred (the synchronous path frees it in conn_process). */
static void response_send(lunnel_emu_response *r, int status, const void *body, size_t len,
                          const char *ctype)
{
    if (r->answered) {
        fprintf(stderr, "lunnel-emulator: BUG: second answer to request %s ignored\n",
                r->request_id);
        return;
    }
    r->answered = true;
    lunnel_emu_path_stat *st = stat_for(r->srv, r->path);
    if (status < 200 || status > 299) st->errors++;
    if (r->srv->cfg->verbose)
        fprintf(stderr, "lunnel-emulator: %s %s -> %d (%zu bytes)%s%s\n", r->request_id, r->path,
                status, len, r->trace_id[0] ? " trace=" : "", r->trace_id);
    conn *c = r->c;
    if (c) {
        char date[64], ots_date[LUNNEL_DATE_LEN];
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        lunnel_sign_format_date((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, ots_date);
        /* The service signs its responses (the Java SDK verifies): content MD5, content type,
         * and an authorization header over the x-ots-* headers + path. Skipped for admin
         * calls and, unless asked, for the tunnel API (MD5 of large ReadRecords bodies). */
        char sig_headers[512] = "";
        bool is_tunnel = strncmp(r->path, "/tunnel/", 8) == 0;
        if (!r->is_admin && (!is_tunnel || r->srv->cfg->sign_tunnel_responses)) {
            char md5[LUNNEL_MD5_B64_LEN], auth[160];
            lunnel_sign_content_md5(body, len, md5);
            lunnel_header h[4] = {{"x-ots-contentmd5", md5},
                                  {"x-ots-contenttype", "protocol buffer"},
                                  {"x-ots-date", ots_date},
                                  {"x-ots-requestid", r->request_id}};
            if (lunnel_emu_auth_sign_response(r->srv->cfg, r->path, h, 4, auth, sizeof auth) == 0)
                snprintf(sig_headers, sizeof sig_headers,
                         "x-ots-contentmd5: %s\r\nx-ots-contenttype: protocol buffer\r\n"
                         "authorization: %s\r\n",
                         md5, auth);
        }
        char head[1024];
        int hn = snprintf(head, sizeof head,
                          "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                          "x-ots-requestid: %s\r\nx-ots-date: %s\r\n%sDate: %s\r\n"
                          "Connection: %s\r\n\r\n",
                          status, reason(status), ctype ? ctype : "application/x-protobuf", len,
                          r->request_id, ots_date, sig_headers, date,
                          r->keep_alive ? "keep-alive" : "close");
        conn_append(c, head, (size_t)hn);
        if (len) conn_append(c, body, len);
        if (!r->keep_alive) c->close_after = true;
    }
    /* A deferred answer given after the handler returned: free it and resume the
     * connection (requests queued behind it). Answers given inside the handler are freed by
     * conn_process. */
    if (r->deferred && (!c || c->pending == r)) {
        response_release(r);
        if (c) {
            c->pending = NULL;
            conn_process(c);
        }
    }
}

static void response_release(lunnel_emu_response *r)
{
    free(r);
}

void lunnel_emu_respond_raw(lunnel_emu_response *resp, int status, const void *body, size_t len,
                            const char *content_type)
{
    response_send(resp, status, body, len,
                  content_type ? content_type : "application/octet-stream");
}

void lunnel_emu_respond_pb(lunnel_emu_response *resp, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t stackbuf[4096];
    uint8_t *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!buf) {
        lunnel_emu_respond_error(resp, 500, "OTSInternalServerError",
                                 "out of memory packing a %zu-byte response", n);
        return;
    }
    protobuf_c_message_pack(msg, buf);
    response_send(resp, 200, buf, n, "application/x-protobuf");
    if (buf != stackbuf) free(buf);
}

static void respond_error_v(lunnel_emu_response *resp, int status, const char *code,
                            const char *tunnel_id, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (resp->is_admin) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "code", code);
        cJSON_AddStringToObject(j, "message", msg);
        cJSON_AddStringToObject(j, "request_id", resp->request_id);
        char *s = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        response_send(resp, status, s ? s : "{}", s ? strlen(s) : 2, "application/json");
        cJSON_free(s);
        return;
    }
    /* The tunnel API's Error is the data API's plus field 3; field 3 stays unset there. */
    Lunnel__Tunnel__Error e = LUNNEL__TUNNEL__ERROR__INIT;
    e.code = (char *)code;
    e.message = msg;
    e.tunnel_id = (char *)tunnel_id;
    size_t n = lunnel__tunnel__error__get_packed_size(&e);
    uint8_t buf[1400];
    if (n > sizeof buf)
        n = 0; /* cannot happen: message is bounded to 1 KiB */
    else
        lunnel__tunnel__error__pack(&e, buf);
    response_send(resp, status, buf, n, "application/x-protobuf");
}

void lunnel_emu_respond_error(lunnel_emu_response *resp, int status, const char *code,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    respond_error_v(resp, status, code, NULL, fmt, ap);
    va_end(ap);
}

void lunnel_emu_respond_tunnel_error(lunnel_emu_response *resp, int status, const char *code,
                                     const char *tunnel_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    respond_error_v(resp, status, code, tunnel_id, fmt, ap);
    va_end(ap);
}

void lunnel_emu_respond_json(lunnel_emu_response *resp, cJSON *json)
{
    char *s = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (!s) {
        lunnel_emu_respond_error(resp, 500, "OTSInternalServerError", "cannot encode JSON reply");
        return;
    }
    response_send(resp, 200, s, strlen(s), "application/json");
    cJSON_free(s);
}

void lunnel_emu_response_drop(lunnel_emu_response *resp)
{
    if (resp->answered) return;
    resp->answered = true;
    stat_for(resp->srv, resp->path)->errors++;
    conn *c = resp->c;
    bool after_handler = resp->deferred && (!c || c->pending == resp);
    if (after_handler) response_release(resp);
    if (c) {
        c->out_len = c->out_off = 0;
        if (after_handler) {
            c->pending = NULL;
            conn_close(c);
        } else {
            c->close_after = true; /* conn_process closes it after the handler returns */
        }
    }
}

void lunnel_emu_response_defer(lunnel_emu_response *resp)
{
    resp->deferred = true;
}

/* ---- dispatch ------------------------------------------------------------------------- */

static void handle_admin(lunnel_emu_server *s, const lunnel_emu_request *req,
                         lunnel_emu_response *resp)
{
    const char *action = req->path + strlen("/_emulator/");
    for (size_t i = 0; i < s->n_admins; i++) {
        if (strcmp(s->admins[i].action, action) != 0) continue;
        cJSON *body = req->body_len ? cJSON_ParseWithLength((const char *)req->body, req->body_len)
                                    : cJSON_CreateObject();
        if (!body) {
            lunnel_emu_respond_error(
                resp, 400, "OTSParameterInvalid",
                "admin action '%s': body is not valid JSON (near byte %ld)", action,
                (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - (const char *)req->body : 0));
            return;
        }
        s->admins[i].fn(s->admins[i].ud, body, req, resp);
        cJSON_Delete(body);
        return;
    }
    lunnel_emu_respond_error(resp, 404, "OTSParameterInvalid", "unknown admin action '%s'", action);
}

static void dispatch(lunnel_emu_server *s, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    if (s->busy) {
        if (strncmp(req->path, "/tunnel/", 8) == 0)
            lunnel_emu_respond_tunnel_error(resp, 503, "OTSTunnelServerUnavailable", NULL,
                                            "Service is temporarily unavailable: %s.", s->busy);
        else
            lunnel_emu_respond_error(resp, 503, "OTSServerBusy", "Server is busy: %s.", s->busy);
        return;
    }
    if (s->filter && s->filter(s->filter_ud, req, resp)) return;
    if (strncmp(req->path, "/_emulator/", 11) == 0) {
        handle_admin(s, req, resp);
        return;
    }
    for (size_t i = 0; i < s->n_routes; i++) {
        if (strcmp(s->routes[i].path, req->path) == 0) {
            s->routes[i].fn(s->routes[i].ud, req, resp);
            return;
        }
    }
    lunnel_emu_respond_error(resp, 404, "OTSUnsupportedOperation", "Unsupported operation: '%s'.",
                             req->path);
}

static lunnel_emu_response *response_new(conn *c, bool keep_alive)
{
    lunnel_emu_server *s = c->srv;
    lunnel_emu_response *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = s;
    r->c = c;
    r->keep_alive = keep_alive;
    snprintf(r->request_id, sizeof r->request_id, "%08x-%04llx-%010llu", s->boot_id,
             (unsigned long long)(c->id & 0xffff), (unsigned long long)++s->next_request);
    return r;
}

/* Answers a request the server refuses before any handler (unparsable, too slow, over the
 * buffer budget) under the pseudo-path `what`, then closes once the answer is written. */
static void reject_conn(conn *c, const char *what, int status, const char *code, const char *msg)
{
    lunnel_emu_response *r = response_new(c, false);
    if (!r) {
        conn_close(c);
        return;
    }
    snprintf(r->path, sizeof r->path, "%s", what);
    stat_for(c->srv, r->path)->requests++;
    lunnel_emu_respond_error(r, status, code, "%s", msg);
    response_release(r);
    c->close_after = true;
    c->in_len = 0;
}

/* Answers a request that could not be parsed, then closes. */
static void reject_unparsed(conn *c, int status, const char *msg)
{
    reject_conn(c, "(malformed)", status, "OTSParameterInvalid", msg);
}

/* The buffered request bytes of all connections passed the budget: this one gives up. */
static void reject_busy(conn *c)
{
    char msg[160];
    snprintf(msg, sizeof msg,
             "Server busy: connections hold more than %zu request bytes "
             "(--max-buffered-bytes); retry.",
             c->srv->cfg->max_buffered_bytes);
    reject_conn(c, "(busy)", 503, "OTSServerBusy", msg);
    if (conn_flush(c) == 0) conn_update(c);
}

/* Closes connections past their idle, head or body time (see the top of this file) and hands
 * freed memory back to the system after a flood (at most every 10 s). */
static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    lunnel_emu_server *s = w->data;
    const lunnel_emu_config *cfg = s->cfg;
    ev_tstamp now = ev_now(loop);
    for (conn *c = s->conns_tail, *prev; c; c = prev) {
        prev = c->prev;
        if (c->pending || c->awaiting_commit) continue;
        if (c->out_len > c->out_off || c->close_after) { /* a reply the client does not read */
            if (now - c->last_active > cfg->body_timeout_s) {
                s->cstats.body_timeouts++;
                conn_close(c);
            }
        } else if (c->in_len == 0) {
            if (now - c->last_active > cfg->idle_timeout_s) {
                s->cstats.idle_closed++;
                conn_close(c);
            }
        } else if (!c->in_body) {
            if (now - c->req_started > cfg->header_timeout_s) {
                s->cstats.header_timeouts++;
                reject_conn(c, "(timeout)", 408, "OTSRequestTimeout",
                            "Request timeout: the request head did not arrive in time "
                            "(--header-timeout).");
                if (conn_flush(c) == 0) conn_update(c);
            }
        } else if (now - c->last_active > cfg->body_timeout_s) {
            s->cstats.body_timeouts++;
            reject_conn(c, "(timeout)", 408, "OTSRequestTimeout",
                        "Request timeout: the request body stopped arriving (--body-timeout).");
            if (conn_flush(c) == 0) conn_update(c);
        }
    }
    if (s->freed_since_trim > (8u << 20) && now - s->last_trim > 10) {
        malloc_trim(0);
        s->freed_since_trim = 0;
        s->last_trim = now;
    }
}

/* Handles every complete request in the input buffer, in order, until one is deferred. */
static void conn_process(conn *c)
{
    lunnel_emu_server *s = c->srv;
    size_t consumed = 0;
    while (!c->pending && !c->close_after && consumed < c->in_len) {
        lunnel_emu_http_req h;
        int status;
        char err[256];
        lunnel_emu_http_result pr =
            lunnel_emu_http_parse(c->in + consumed, c->in_len - consumed, s->cfg->max_request_bytes,
                                  &h, &status, err, sizeof err);
        if (pr == LUNNEL_EMU_HTTP_INCOMPLETE) {
            c->in_body = false;
            break;
        }
        if (pr == LUNNEL_EMU_HTTP_ERROR) {
            reject_unparsed(c, status, err);
            break;
        }
        size_t total = h.head_len + h.content_length;
        if (c->in_len - consumed < total) {
            c->in_body = true;
            if (h.expect_continue && !c->sent_continue) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                conn_append(c, cont, sizeof cont - 1);
                c->sent_continue = true;
            }
            break;
        }
        c->sent_continue = false;

        /* NUL-terminated copies of path and headers for handlers and signing. */
        char *scratch = malloc(h.head_len + 2 * LUNNEL_EMU_HTTP_MAX_HEADERS + 8);
        lunnel_header hdrs[LUNNEL_EMU_HTTP_MAX_HEADERS];
        lunnel_emu_response *resp = response_new(c, h.keep_alive);
        if (!scratch || !resp) {
            free(scratch);
            free(resp);
            conn_close(c);
            return;
        }
        char *w = scratch;
        char *path = w;
        memcpy(w, h.path.p, h.path.len);
        w += h.path.len;
        *w++ = 0;
        for (size_t i = 0; i < h.n_headers; i++) {
            hdrs[i].name = w;
            memcpy(w, h.names[i].p, h.names[i].len);
            w += h.names[i].len;
            *w++ = 0;
            hdrs[i].value = w;
            memcpy(w, h.values[i].p, h.values[i].len);
            w += h.values[i].len;
            *w++ = 0;
        }
        snprintf(resp->path, sizeof resp->path, "%s", path);
        resp->is_admin = strncmp(path, "/_emulator/", 11) == 0;
        stat_for(s, resp->path)->requests++;

        lunnel_emu_request req = {0};
        req.path = path;
        req.headers = hdrs;
        req.n_headers = h.n_headers;
        req.body = (const uint8_t *)c->in + consumed + h.head_len;
        req.body_len = h.content_length;
        req.request_id = resp->request_id;
        req.conn_id = c->id;
        req.instance = "";
        req.trace_id = "";
        req.access_key_id = "";
        for (size_t i = 0; i < h.n_headers; i++) {
            if (strcasecmp(hdrs[i].name, "x-ots-instancename") == 0)
                req.instance = hdrs[i].value;
            else if (strcasecmp(hdrs[i].name, "x-ots-trace-id") == 0) {
                req.trace_id = hdrs[i].value;
                snprintf(resp->trace_id, sizeof resp->trace_id, "%s", req.trace_id);
            } else if (strcasecmp(hdrs[i].name, "x-ots-accesskeyid") == 0)
                req.access_key_id = hdrs[i].value;
        }

        lunnel_emu_auth_error aerr;
        if (h.method.len != 4 || memcmp(h.method.p, "POST", 4) != 0) {
            lunnel_emu_respond_error(resp, 405, "OTSMethodNotAllowed",
                                     "Only POST is supported, got '%.*s'.", (int)h.method.len,
                                     h.method.p);
        } else if (!s->cfg->skip_auth &&
                   lunnel_emu_auth_verify(s->cfg, path, hdrs, h.n_headers, req.body, req.body_len,
                                          lunnel_time_now_ms(), &aerr) != 0) {
            lunnel_emu_respond_error(resp, aerr.status, aerr.code, "%s", aerr.msg);
        } else if (*req.instance && strcmp(req.instance, s->cfg->instance) != 0) {
            lunnel_emu_respond_error(resp, 403, "OTSAuthFailed", "The instance is not found: '%s'.",
                                     req.instance);
        } else {
            dispatch(s, &req, resp);
        }
        free(scratch);
        consumed += total;
        if (resp->deferred && !resp->answered) {
            c->pending = resp;
        } else {
            if (!resp->answered) {
                fprintf(stderr, "lunnel-emulator: BUG: handler for %s did not answer\n",
                        resp->path);
                lunnel_emu_respond_error(resp, 500, "OTSInternalServerError",
                                         "handler for %s did not answer", resp->path);
            }
            response_release(resp);
        }
    }
    if (consumed) {
        memmove(c->in, c->in + consumed, c->in_len - consumed);
        c->in_len -= consumed;
        c->req_started = ev_now(s->loop); /* a pipelined request's clock starts now */
        if (c->in_len == 0) c->in_body = false;
    }
    if (c->in_len == 0 && c->in) { /* nothing held for idle connections */
        s->in_bytes -= c->in_cap;
        s->freed_since_trim += c->in_cap;
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    if (c->close_after && c->out_len == 0) {
        conn_close(c);
        return;
    }
    if (conn_flush(c) != 0) return;
    conn_update(c);
}

/* ---- server lifecycle ----------------------------------------------------------------- */

int lunnel_emu_route_add(lunnel_emu_server *s, const char *path, lunnel_emu_handler fn, void *ud)
{
    if (s->n_routes == MAX_ROUTES || strlen(path) >= sizeof s->routes[0].path) return -1;
    for (size_t i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].path, path) == 0) return -1;
    route *r = &s->routes[s->n_routes++];
    snprintf(r->path, sizeof r->path, "%s", path);
    r->fn = fn;
    r->ud = ud;
    return 0;
}

int lunnel_emu_admin_add(lunnel_emu_server *s, const char *action, lunnel_emu_admin_handler fn,
                         void *ud)
{
    if (s->n_admins == MAX_ADMIN || strlen(action) >= sizeof s->admins[0].action) return -1;
    for (size_t i = 0; i < s->n_admins; i++)
        if (strcmp(s->admins[i].action, action) == 0) return -1;
    admin_route *r = &s->admins[s->n_admins++];
    snprintf(r->action, sizeof r->action, "%s", action);
    r->fn = fn;
    r->ud = ud;
    return 0;
}

/* Once per loop iteration, after every callback: one commit for every reply produced. */
static void commit_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    lunnel_emu_server *s = w->data;
    if (s->n_awaiting == 0) return;
    s->commit_fn(s->commit_ud); /* does not return on failure */
    for (conn *c = s->conns, *next; c && s->n_awaiting > 0; c = next) {
        next = c->next;
        if (!c->awaiting_commit) continue;
        c->awaiting_commit = false;
        s->n_awaiting--;
        if (conn_flush(c) == 0) conn_update(c);
    }
}

void lunnel_emu_server_set_commit(lunnel_emu_server *s, void (*fn)(void *ud),
                                  int (*pending)(void *ud), void *ud)
{
    if (s->commit_fn) ev_prepare_stop(s->loop, &s->commit_prep);
    s->commit_fn = fn && pending ? fn : NULL;
    s->commit_pending_fn = pending;
    s->commit_ud = ud;
    if (s->commit_fn) {
        ev_prepare_init(&s->commit_prep, commit_prepare_cb);
        s->commit_prep.data = s;
        ev_prepare_start(s->loop, &s->commit_prep);
    }
}

void lunnel_emu_server_set_busy(lunnel_emu_server *s, const char *reason)
{
    s->busy = reason;
}

const char *lunnel_emu_server_busy(const lunnel_emu_server *s)
{
    return s->busy;
}

void lunnel_emu_server_set_filter(lunnel_emu_server *s, lunnel_emu_filter f, void *ud)
{
    s->filter = f;
    s->filter_ud = ud;
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, char *err, size_t errlen)
{
    const char *colon = strrchr(listen, ':');
    if (!colon) {
        snprintf(err, errlen, "--listen '%s': expected HOST:PORT", listen);
        return -1;
    }
    char host[64];
    size_t hl = (size_t)(colon - listen);
    if (hl == 0 || hl >= sizeof host) {
        snprintf(err, errlen, "--listen '%s': bad host", listen);
        return -1;
    }
    memcpy(host, listen, hl);
    host[hl] = 0;
    if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1) {
        snprintf(err, errlen, "--listen '%s': bad port", listen);
        return -1;
    }
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        snprintf(err, errlen, "--listen '%s': host must be an IPv4 address", listen);
        return -1;
    }
    return 0;
}

lunnel_emu_server *lunnel_emu_server_new(struct ev_loop *loop, const lunnel_emu_config *cfg,
                                         char *err, size_t errlen)
{
    struct sockaddr_in sa;
    if (parse_listen(cfg->listen, &sa, err, errlen) != 0) return NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return NULL;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 1024) != 0 ||
        set_nonblock(fd) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen, strerror(errno));
        close(fd);
        return NULL;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    lunnel_emu_server *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->cfg = cfg;
    s->fd = fd;
    s->port = ntohs(sa.sin_port);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->boot_id = (uint32_t)(ts.tv_sec * 2654435761u) ^ (uint32_t)ts.tv_nsec ^ (uint32_t)getpid();
    ev_io_init(&s->accept_io, accept_cb, fd, EV_READ);
    s->accept_io.data = s;
    ev_io_start(loop, &s->accept_io);
    double tick = cfg->idle_timeout_s;
    if (cfg->header_timeout_s < tick) tick = cfg->header_timeout_s;
    if (cfg->body_timeout_s < tick) tick = cfg->body_timeout_s;
    tick = tick / 4 > 1.0 ? 1.0 : tick / 4 < 0.01 ? 0.01 : tick / 4;
    ev_timer_init(&s->sweep, sweep_cb, tick, tick);
    s->sweep.data = s;
    ev_timer_start(loop, &s->sweep);
    ev_unref(loop); /* the sweep alone does not keep ev_run going */
    return s;
}

int lunnel_emu_server_port(const lunnel_emu_server *s)
{
    return s->port;
}
struct ev_loop *lunnel_emu_server_loop(const lunnel_emu_server *s)
{
    return s->loop;
}
const lunnel_emu_config *lunnel_emu_server_config(const lunnel_emu_server *s)
{
    return s->cfg;
}

void lunnel_emu_server_stop(lunnel_emu_server *s)
{
    if (s->stopped) return;
    s->stopped = true;
    ev_io_stop(s->loop, &s->accept_io);
    ev_ref(s->loop);
    ev_timer_stop(s->loop, &s->sweep);
    /* Graceful: replies already produced get one last non-blocking send before closing
     * (committed first: they may acknowledge changes). */
    if (s->commit_fn) {
        ev_prepare_stop(s->loop, &s->commit_prep);
        if (s->commit_pending_fn(s->commit_ud)) s->commit_fn(s->commit_ud);
    }
    for (conn *c = s->conns; c; c = c->next)
        if (c->out_len > c->out_off)
            (void)send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    while (s->conns)
        conn_close(s->conns);
}

int lunnel_emu_server_on_free(lunnel_emu_server *s, void (*fn)(void *ud), void *ud)
{
    if (s->n_on_free == MAX_ON_FREE) return -1;
    s->on_free[s->n_on_free].fn = fn;
    s->on_free[s->n_on_free].ud = ud;
    s->n_on_free++;
    return 0;
}

void lunnel_emu_server_free(lunnel_emu_server *s)
{
    if (!s) return;
    lunnel_emu_server_stop(s);
    for (size_t i = s->n_on_free; i-- > 0;)
        s->on_free[i].fn(s->on_free[i].ud);
    close(s->fd);
    free(s);
}

size_t lunnel_emu_server_path_stats(const lunnel_emu_server *s, const lunnel_emu_path_stat **out)
{
    *out = s->stats;
    return s->n_stats;
}

int lunnel_emu_server_add_stats(lunnel_emu_server *s, lunnel_emu_stats_fn fn, void *ud)
{
    if (s->n_stats_fns == MAX_ON_FREE) return -1;
    s->stats_fns[s->n_stats_fns].fn = fn;
    s->stats_fns[s->n_stats_fns].ud = ud;
    s->n_stats_fns++;
    return 0;
}

void lunnel_emu_server_fill_stats(lunnel_emu_server *s, cJSON *stats)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "open", s->n_conns);
    cJSON_AddNumberToObject(c, "max", s->cfg->max_connections);
    cJSON_AddNumberToObject(c, "accepted", (double)s->cstats.accepted);
    cJSON_AddNumberToObject(c, "evicted", (double)s->cstats.evicted);
    cJSON_AddNumberToObject(c, "idle_closed", (double)s->cstats.idle_closed);
    cJSON_AddNumberToObject(c, "header_timeouts", (double)s->cstats.header_timeouts);
    cJSON_AddNumberToObject(c, "body_timeouts", (double)s->cstats.body_timeouts);
    cJSON_AddNumberToObject(c, "over_budget", (double)s->cstats.over_budget);
    cJSON_AddNumberToObject(c, "buffered_bytes", (double)s->in_bytes);
    cJSON_AddItemToObject(stats, "connections", c);
    for (size_t i = 0; i < s->n_stats_fns; i++)
        s->stats_fns[i].fn(s->stats_fns[i].ud, stats);
}
