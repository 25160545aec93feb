/* tunnel_server.c: glue between the tunnel registry (tunnel.h, HTTP-free) and the rest of
 * lunnel-emulator: the store feeds it changes (store listener) and snapshots (base data);
 * the server routes the 13 tunnel paths and the tunnel admin actions to it; a server filter
 * applies fault injection to the data API paths too; a libev timer runs housekeeping
 * (heartbeat timeouts, retention) even when no request arrives. Injected latency defers the
 * response on a one-shot timer, so the loop never sleeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "config.h"
#include "http/server.h"
#include "store/store.h"
#include "tunnel/tunnel.h"
#include "tunnel/tunnel_feed.h"
#include "tunnel/tunnel_internal.h"

static const char *const tunnel_paths[] = {"/tunnel/create",     "/tunnel/delete",
                                           "/tunnel/list",       "/tunnel/describe",
                                           "/tunnel/connect",    "/tunnel/heartbeat",
                                           "/tunnel/shutdown",   "/tunnel/getcheckpoint",
                                           "/tunnel/checkpoint", "/tunnel/readrecords",
                                           "/tunnel/getrpo",     "/tunnel/getrpobyoffset",
                                           "/tunnel/schedule",   NULL};

typedef struct glue {
    lunnel_emu_server *srv;
    lunnel_emu_store *store;
    lunnel_emu_tunnels *tunnels;
    lunnel_emu_tunnel_feed feed; /* store -> tunnels */
    ev_timer tick;
} glue;

/* A response held back by injected latency. */
typedef struct delayed {
    ev_timer timer;
    lunnel_emu_response *resp;
    lunnel_emu_reply reply;
    int data_path; /* a data-API request passed through after the delay: answered 503 */
} delayed;

static void send_reply(lunnel_emu_response *resp, lunnel_emu_reply *r)
{
    if (r->drop)
        lunnel_emu_response_drop(resp);
    else
        lunnel_emu_respond_raw(resp, r->status, r->body, r->len, "application/x-protobuf");
    lunnel_emu_reply_free(r);
}

static void on_delayed(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    delayed *d = (delayed *)w;
    ev_timer_stop(loop, w);
    send_reply(d->resp, &d->reply);
    free(d);
}

static int defer_reply(glue *g, lunnel_emu_response *resp, lunnel_emu_reply *r)
{
    delayed *d = calloc(1, sizeof *d);
    if (!d) return -1;
    d->resp = resp;
    d->reply = *r;
    lunnel_emu_response_defer(resp);
    ev_timer_init(&d->timer, on_delayed, (double)r->delay_ms / 1000.0, 0.);
    ev_timer_start(lunnel_emu_server_loop(g->srv), &d->timer);
    return 0;
}

static void h_tunnel(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    glue *g = ud;
    lunnel_emu_reply r;
    lunnel_emu_tunnels_handle(g->tunnels, req->path, req->body, req->body_len, &r);
    if (g->tunnels->sync_fn) g->tunnels->sync_fn(g->tunnels->sync_ud);
    if (r.delay_ms > 0 && defer_reply(g, resp, &r) == 0) return;
    send_reply(resp, &r);
}

static void h_admin(void *ud, const cJSON *body, const lunnel_emu_request *req,
                    lunnel_emu_response *resp)
{
    glue *g = ud;
    const char *action = strrchr(req->path, '/');
    action = action ? action + 1 : req->path;
    int status = 0;
    char err[256];
    cJSON *r = lunnel_emu_tunnels_admin(g->tunnels, action, body, &status, err, sizeof err);
    if (g->tunnels->sync_fn) g->tunnels->sync_fn(g->tunnels->sync_ud);
    if (r)
        lunnel_emu_respond_json(resp, r);
    else
        lunnel_emu_respond_error(resp, status ? status : 404,
                                 status == 404 ? "OTSObjectNotExist" : "OTSParameterInvalid", "%s",
                                 status ? err : "unknown admin action");
}

/* Fault injection for every non-tunnel, non-admin path (the tunnel paths roll their own
 * inside lunnel_emu_tunnels_handle, which also counts them). */
static int filter(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    glue *g = ud;
    if (strncmp(req->path, "/tunnel/", 8) == 0 || strncmp(req->path, "/_emulator/", 11) == 0)
        return 0;
    int64_t delay = 0;
    int drop = 0;
    char code[64];
    int status = 503;
    int fail =
        lunnel_emu_tunnels_fault(g->tunnels, req->path, &delay, &drop, code, sizeof code, &status);
    if (!fail && !drop && delay <= 0) return 0;
    /* a fault was used up by one: journal its remaining count before the reply leaves */
    if (g->tunnels->sync_fn) g->tunnels->sync_fn(g->tunnels->sync_ud);
    if (drop && delay <= 0) {
        lunnel_emu_response_drop(resp);
        return 1;
    }
    if (fail || drop) {
        lunnel_emu_reply r = {0};
        r.drop = drop;
        r.delay_ms = delay;
        if (fail) {
            /* data API Error{code, message}: same field numbers as the tunnel Error (both
             * short: one-byte lengths) */
            static const char msg[] = "injected fault";
            size_t clen = strlen(code);
            uint8_t *b = malloc(4 + clen + sizeof msg);
            if (b) {
                size_t n = 0;
                b[n++] = 0x0A;
                b[n++] = (uint8_t)clen;
                memcpy(b + n, code, clen);
                n += clen;
                b[n++] = 0x12;
                b[n++] = (uint8_t)(sizeof msg - 1);
                memcpy(b + n, msg, sizeof msg - 1);
                n += sizeof msg - 1;
                r.body = b;
                r.len = n;
            }
            r.status = status;
        }
        if (delay > 0 && defer_reply(g, resp, &r) == 0) return 1;
        send_reply(resp, &r);
        return 1;
    }
    /* Latency only: the request must still be served by its handler after the delay, which
     * this server API cannot do from a filter; the latency is applied to tunnel paths only.
     * Let the request through undelayed. */
    return 0;
}

static void trim_store(glue *g)
{
    /* Keep the store's own change stream within retention too (memory). */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    int64_t keep_us = g->tunnels->o.retention_ms * 1000;
    size_t n = lunnel_emu_store_table_count(g->store);
    for (size_t i = 0; i < n; i++) {
        lunnel_emu_table *tb = lunnel_emu_store_table_at(g->store, i);
        uint64_t b = lunnel_emu_table_changes_begin(tb), e = lunnel_emu_table_changes_end(tb),
                 k = b;
        while (k < e) {
            const lunnel_emu_change *c = lunnel_emu_table_change_at(tb, k);
            if (!c || c->timestamp_us >= now_us - keep_us) break;
            k++;
        }
        if (k > b) lunnel_emu_store_trim_changes(g->store, tb, k);
    }
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    glue *g = w->data;
    if (lunnel_emu_server_busy(g->srv)) return; /* the start-up restore owns the registry */
    lunnel_emu_tunnels_tick(g->tunnels);
    trim_store(g);
    if (g->tunnels->sync_fn) g->tunnels->sync_fn(g->tunnels->sync_ud);
}

/* Adds "tunnel": {...tunnel_stats...} to /_emulator/stats. */
static void add_stats(void *ud, cJSON *stats)
{
    glue *g = ud;
    int status;
    char err[64];
    cJSON *r = lunnel_emu_tunnels_admin(g->tunnels, "tunnel_stats", NULL, &status, err, sizeof err);
    if (r) cJSON_AddItemToObject(stats, "tunnel", r);
}

static void on_free(void *ud)
{
    glue *g = ud;
    ev_timer_stop(lunnel_emu_server_loop(g->srv), &g->tick);
    lunnel_emu_tunnels_free(g->tunnels);
    free(g);
}

int lunnel_emu_tunnel_register(struct lunnel_emu_server *srv, struct lunnel_emu_store *store,
                               const struct lunnel_emu_config *cfg)
{
    return lunnel_emu_tunnel_register_ex(srv, store, cfg, NULL);
}

int lunnel_emu_tunnel_register_ex(struct lunnel_emu_server *srv, struct lunnel_emu_store *store,
                                  const struct lunnel_emu_config *cfg, lunnel_emu_tunnels **out)
{
    glue *g = calloc(1, sizeof *g);
    if (!g) return -1;
    g->srv = srv;
    g->store = store;
    lunnel_emu_tunnel_feed_init(&g->feed, store);
    lunnel_emu_tunnel_opts o;
    lunnel_emu_tunnel_opts_default(&o);
    if (cfg->partitions) o.partitions = (int)cfg->partitions;
    if (cfg->batch_records) o.batch_records = (int)cfg->batch_records;
    if (cfg->batch_bytes) o.batch_bytes = cfg->batch_bytes;
    if (cfg->retention_s > 0) o.retention_ms = cfg->retention_s * 1000;
    if (cfg->instance) o.instance = cfg->instance;
    const char *scale = getenv("LUNNEL_EMULATOR_HEARTBEAT_SCALE");
    if (scale && atof(scale) > 0) o.heartbeat_scale = atof(scale);
    g->tunnels = g->feed.tunnels = lunnel_emu_tunnels_new(&o, &g->feed.src);
    if (!g->tunnels) {
        free(g);
        return -1;
    }
    if (lunnel_emu_store_listen(store, lunnel_emu_tunnel_feed_on_store, &g->feed) != 0) goto fail;
    for (int i = 0; tunnel_paths[i]; i++)
        if (lunnel_emu_route_add(srv, tunnel_paths[i], h_tunnel, g) != 0) goto fail;
    for (int i = 0; lunnel_emu_tunnels_admin_actions[i]; i++)
        if (lunnel_emu_admin_add(srv, lunnel_emu_tunnels_admin_actions[i], h_admin, g) != 0)
            fprintf(stderr,
                    "lunnel-emulator: admin action %s is taken; tunnel's version not registered\n",
                    lunnel_emu_tunnels_admin_actions[i]);
    lunnel_emu_server_set_filter(srv, filter, g);
    lunnel_emu_server_add_stats(srv, add_stats, g);
    ev_timer_init(&g->tick, on_tick, 0.05, 0.05);
    g->tick.data = g;
    ev_timer_start(lunnel_emu_server_loop(srv), &g->tick);
    if (lunnel_emu_server_on_free(srv, on_free, g) != 0) {
        ev_timer_stop(lunnel_emu_server_loop(srv), &g->tick);
        goto fail;
    }
    if (out) *out = g->tunnels;
    return 0;
fail:
    lunnel_emu_tunnels_free(g->tunnels);
    free(g);
    return -1;
}
