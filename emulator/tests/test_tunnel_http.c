/* test_tunnel_http.c: the tunnel service over real HTTP: an in-process lunnel-emulator
 * (server + store + data API + admin + tunnels on a libev loop in a thread) and a libcurl
 * client signing every request. Rows come from the admin bulk loader (real PlainBuffer from
 * the store), are delivered by a simulated worker (tunnel_test_client.h over HTTP) and are
 * decoded with lunnel's own PlainBuffer decoder. Also: fault injection (503, dropped
 * connection, latency), admin expire_client -> OTSResourceGone, stats. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <ev.h>

#include "admin/admin.h"
#include "config.h"
#include "data_api/data_api.h"
#include "http/server.h"
#include "lunnel/plainbuffer.h"
#include "store/store.h"
#include "testutil.h"
#include "tunnel/tunnel.h"
#include "tunnel_http_client.h"
#include "tunnel_test_client.h"

/* ---- the in-process emulator ---- */

typedef struct emu {
    struct ev_loop *loop;
    lunnel_emu_config cfg;
    lunnel_emu_server *srv;
    lunnel_emu_store *store;
    ev_async stop;
    pthread_t thread;
} emu;

static void on_stop(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)revents;
    emu *e = w->data;
    lunnel_emu_server_stop(e->srv);
    ev_break(loop, EVBREAK_ALL);
}

static void *run(void *arg)
{
    emu *e = arg;
    ev_run(e->loop, 0);
    return NULL;
}

static int emu_start(emu *e)
{
    memset(e, 0, sizeof *e);
    lunnel_emu_config_defaults(&e->cfg);
    e->cfg.listen = "127.0.0.1:0";
    e->cfg.partitions = 3;
    e->cfg.batch_records = 100;
    e->loop = ev_loop_new(EVFLAG_AUTO);
    char err[256];
    e->srv = lunnel_emu_server_new(e->loop, &e->cfg, err, sizeof err);
    if (!e->srv) {
        fprintf(stderr, "server: %s\n", err);
        return -1;
    }
    e->store = lunnel_emu_store_new(e->cfg.partitions);
    if (lunnel_emu_data_api_register(e->srv, e->store) ||
        lunnel_emu_admin_register(e->srv, e->store) ||
        lunnel_emu_tunnel_register(e->srv, e->store, &e->cfg))
        return -1;
    ev_async_init(&e->stop, on_stop);
    e->stop.data = e;
    ev_async_start(e->loop, &e->stop);
    return pthread_create(&e->thread, NULL, run, e);
}

static void emu_stop(emu *e)
{
    ev_async_send(e->loop, &e->stop);
    pthread_join(e->thread, NULL);
    lunnel_emu_server_free(e->srv);
    lunnel_emu_store_free(e->store);
    ev_loop_destroy(e->loop);
}

/* ---- HTTP transport for tunnel_test_client.h ---- */

static char last_code[64];

static void http_transport(void *arg, const char *path, const uint8_t *body, size_t len,
                           lunnel_emu_reply *out)
{
    th_client *c = arg;
    memset(out, 0, sizeof *out);
    out->status = th_post(c, path, body, len);
    out->body = malloc(c->len + 1);
    memcpy(out->body, c->buf, c->len);
    out->len = c->len;
    if (out->status != 200) {
        Lunnel__Tunnel__Error *e = lunnel__tunnel__error__unpack(NULL, c->len, c->buf);
        snprintf(last_code, sizeof last_code, "%s", e ? e->code : "(unparsable)");
        if (e) lunnel__tunnel__error__free_unpacked(e, NULL);
        out->error_code = last_code;
    }
}

/* ---- record checks: decode every delivered row with lunnel's decoder ---- */

typedef struct got {
    lunnel_arena *arena;
    int base, stream, bad, with_seq;
    int seen[3000];
} got;

static void on_row(void *arg, const char *chan, const uint8_t *row, size_t len, int action)
{
    got *g = arg;
    const lunnel_record *recs;
    uint32_t n;
    lunnel_codec_error err;
    if (lunnel_pb_decode_rows(g->arena, row, len, LUNNEL_PB_STRICT, &recs, &n, &err) != 0 ||
        n != 1 || recs[0].pk_count != 1 || recs[0].col_count != 1 ||
        recs[0].cols[0].value.len != 200) {
        g->bad++;
        return;
    }
    int64_t id = recs[0].pk[0].value.u.i;
    if (id >= 0 && id < 3000) g->seen[id]++;
    if (strncmp(chan, "BaseData_", 9) == 0)
        g->base++;
    else {
        g->stream++;
        g->with_seq += recs[0].has_seq && action == 1;
    }
    lunnel_arena_reset(g->arena);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    emu e;
    CHECK_INT(emu_start(&e), 0);
    th_client h;
    th_init(&h, lunnel_emu_server_port(e.srv));
    tc_transport = http_transport;
    tc_transport_arg = &h;

    /* 1000 rows before the tunnel (base data), 500 new + 500 updates after (stream). */
    CHECK_INT(th_admin(&h, "load", "{\"table\":\"orders\",\"rows\":1000,\"value_bytes\":200}"),
              200);
    char *tid = tc_create(NULL, "orders", "cdc", 3);
    CHECK(tid != NULL);
    CHECK_INT(th_admin(&h, "load",
                       "{\"table\":\"orders\",\"rows\":1000,\"start\":500,\"value_bytes\":200}"),
              200);
    char *cid = tc_connect(NULL, tid ? tid : "", 30, "http");
    CHECK(cid != NULL);
    tc_client c;
    tc_init(&c, NULL, tid ? tid : "", cid);
    got g;
    memset(&g, 0, sizeof g);
    g.arena = lunnel_arena_new();
    c.on_record = on_row;
    c.arg = &g;
    double t0 = now_ms();
    while ((g.base < 1000 || g.stream < 1000) && now_ms() - t0 < 20000) {
        if (tc_heartbeat(&c) != 200) break;
        tc_work(&c, 1000);
    }
    CHECK_INT(g.bad, 0);
    CHECK_INT(g.base, 1000);
    CHECK_INT(g.stream, 1000);
    CHECK_INT(g.with_seq, 1000);
    int wrong = 0;
    for (int i = 0; i < 1500; i++)
        wrong += g.seen[i] != (i < 500 ? 1 : i < 1000 ? 2 : 1);
    CHECK_INT(wrong, 0);
    char stage[64] = "";
    tc_desc_ch d[16];
    CHECK_INT(tc_describe(NULL, "orders", "cdc", d, 16, stage, NULL), 6);
    CHECK_STR(stage, "ProcessStream");

    /* Stats: /_emulator/stats carries the tunnel figures. */
    CHECK_INT(th_admin(&h, "stats", "{}"), 200);
    cJSON *st = cJSON_Parse((const char *)h.buf);
    cJSON *tun = cJSON_GetObjectItem(st, "tunnel");
    CHECK(tun && cJSON_GetObjectItem(tun, "records_served")->valuedouble == 2000);
    cJSON_Delete(st);

    /* Faults: one 503, one dropped connection, then latency. */
    CHECK_INT(
        th_admin(&h, "faults", "{\"path\":\"/tunnel/heartbeat\",\"error_rate\":1,\"count\":1}"),
        200);
    CHECK_INT(tc_heartbeat(&c), 503);
    CHECK_STR(c.last_error, "OTSTunnelServerUnavailable");
    CHECK_INT(
        th_admin(&h, "faults",
                 "{\"clear\":true,\"path\":\"/tunnel/heartbeat\",\"drop_rate\":1,\"count\":2}"),
        200);
    /* (curl retries a request once when a reused connection dies: two drops) */
    CHECK_INT(tc_heartbeat(&c), 0);
    CHECK_INT(
        th_admin(&h, "faults",
                 "{\"clear\":true,\"path\":\"/tunnel/heartbeat\",\"delay_ms\":300,\"count\":1}"),
        200);
    double t1 = now_ms();
    CHECK_INT(tc_heartbeat(&c), 200);
    CHECK(now_ms() - t1 >= 290);
    CHECK_INT(tc_heartbeat(&c), 200);
    /* Faults on a data API path go through the server filter. */
    CHECK_INT(th_admin(&h, "faults",
                       "{\"clear\":true,\"path\":\"/ListTable\",\"error_rate\":1,\"count\":1}"),
              200);
    CHECK_INT(th_post(&h, "/ListTable", "", 0), 503);
    CHECK_INT(th_post(&h, "/ListTable", "", 0), 200);

    /* Split over the admin API, then expire the client: OTSResourceGone. */
    CHECK_INT(th_admin(&h, "split", "{\"table\":\"orders\",\"partition\":\"p1\"}"), 200);
    CHECK_INT(tc_describe(NULL, "orders", "cdc", d, 16, NULL, NULL), 8);
    char body[160];
    snprintf(body, sizeof body, "{\"client_id\":\"%s\"}", cid ? cid : "");
    CHECK_INT(th_admin(&h, "expire_client", body), 200);
    CHECK_INT(tc_heartbeat(&c), 410);
    CHECK_STR(c.last_error, "OTSResourceGone");
    CHECK_INT(th_admin(&h, "nonsense_action", "{}"), 404);

    lunnel_arena_free(g.arena);
    free(tid);
    free(cid);
    th_free(&h);
    emu_stop(&e);
    curl_global_cleanup();
    TEST_DONE();
}
