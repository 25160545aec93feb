/* test_tunnel_core.c: the emulator's Tunnel Service driven directly through its request
 * handler (no HTTP, no lunnel worker), with a fake store and a fake clock: base + stream
 * delivery with one client, load balancing and the CLOSING handoff with three clients,
 * heartbeat expiry, split ordering, retention expiry, sequence-number mismatch, non-owner
 * rejection, token replay and batch caps, Schedule, GetRpo and fault injection. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "testutil.h"
#include "tunnel/tunnel_internal.h"
#include "tunnel_test_client.h"

/* ---- fake store: rows "row:<key>", keys "k<N>" ---- */

typedef struct fake_row {
    char key[32];
    char row[64];
    int live;
} fake_row;

static fake_row rows[4096];
static int nrows;
static int64_t now_ns = 1700000000000000000LL;
static int64_t fake_clock(void *arg)
{
    (void)arg;
    return now_ns;
}

static int f_exists(void *ctx, const char *table)
{
    (void)ctx;
    return strcmp(table, "orders") == 0;
}

static int f_snapshot(void *ctx, const char *table, emu_tunnel_row_fn fn, void *arg)
{
    (void)ctx;
    if (strcmp(table, "orders")) return -1;
    for (int i = 0; i < nrows; i++) {
        if (!rows[i].live) continue;
        emu_tunnel_row r = {(const uint8_t *)rows[i].row, strlen(rows[i].row),
                            (const uint8_t *)rows[i].key, strlen(rows[i].key)};
        int rc = fn(arg, &r);
        if (rc) return rc;
    }
    return 0;
}

static emu_tunnel_source src = {NULL, f_exists, f_snapshot};

/* Writes key k (row + change "chg:k<k>:<n>"), as the store would. */
static int change_seq;
static void put(lunnel_emu_tunnels *t, int k)
{
    char key[32], row[64];
    snprintf(key, sizeof key, "k%d", k);
    snprintf(row, sizeof row, "chg:%s:%06d", key, ++change_seq);
    int i;
    for (i = 0; i < nrows && strcmp(rows[i].key, key); i++) {
    }
    if (i == nrows) nrows++;
    snprintf(rows[i].key, sizeof rows[i].key, "%s", key);
    snprintf(rows[i].row, sizeof rows[i].row, "row:%s", key);
    rows[i].live = 1;
    now_ns += 1000;
    emu_tunnel_change c = {"orders", 1, (const uint8_t *)row, strlen(row),
                           NULL,     0, (const uint8_t *)key, strlen(key),
                           now_ns};
    lunnel_emu_tunnels_on_change(t, &c);
}

static lunnel_emu_tunnels *mk(int partitions, int batch_records)
{
    lunnel_emu_tunnel_opts o;
    lunnel_emu_tunnel_opts_default(&o);
    o.partitions = partitions;
    o.batch_records = batch_records;
    o.clock_ns = fake_clock;
    nrows = 0;
    change_seq = 0;
    return lunnel_emu_tunnels_new(&o, &src);
}

/* ---- delivery accounting ---- */

typedef struct seen {
    int base[4096];     /* per key: base deliveries */
    int last_seq[4096]; /* per key: last change sequence seen */
    int changes;        /* stream records */
    int order_errors;   /* a key's change arrived out of order or twice */
    int base_records;
    int stream_before_base_done; /* stream record while base channels still ran */
    int base_open;
} seen;

static void on_rec(void *arg, const char *chan, const uint8_t *row, size_t len, int action)
{
    seen *s = arg;
    char buf[80];
    snprintf(buf, sizeof buf, "%.*s", (int)len, (const char *)row);
    if (strncmp(chan, "BaseData_", 9) == 0) {
        int k = atoi(buf + 5);
        if (k >= 0 && k < 4096) s->base[k]++;
        s->base_records++;
        (void)action;
    } else {
        int k = 0, q = 0;
        if (sscanf(buf, "chg:k%d:%d", &k, &q) == 2 && k >= 0 && k < 4096) {
            if (q <= s->last_seq[k]) s->order_errors++;
            s->last_seq[k] = q;
        }
        s->changes++;
    }
}

static int round_of(tc_client **cs, int n, int batches)
{
    int ok = 1;
    for (int i = 0; i < n; i++) {
        if (tc_heartbeat(cs[i]) != 200) ok = 0;
        tc_work(cs[i], batches);
    }
    return ok;
}

/* ---- tests ---- */

/* GetRpo's two JSON documents, parsed (caller cJSON_Deletes both); 0 on success. */
static int get_rpo(lunnel_emu_tunnels *t, const char *tid, cJSON **rpo, cJSON **tun)
{
    Lunnel__Tunnel__GetRpoRequest gq = LUNNEL__TUNNEL__GET_RPO_REQUEST__INIT;
    gq.tunnel_id = (char *)tid;
    lunnel_emu_reply r = tc_call(t, "/tunnel/getrpo", &gq.base);
    *rpo = *tun = NULL;
    Lunnel__Tunnel__GetRpoResponse *gp =
        r.status == 200 ? lunnel__tunnel__get_rpo_response__unpack(NULL, r.len, r.body) : NULL;
    if (gp && gp->has_rpo_infos && gp->has_tunnel_rpo_infos) {
        *rpo = cJSON_ParseWithLength((const char *)gp->rpo_infos.data, gp->rpo_infos.len);
        *tun = cJSON_ParseWithLength((const char *)gp->tunnel_rpo_infos.data,
                                     gp->tunnel_rpo_infos.len);
    }
    if (gp) lunnel__tunnel__get_rpo_response__free_unpacked(gp, NULL);
    lunnel_emu_reply_free(&r);
    return *rpo && *tun ? 0 : -1;
}

/* A number member of `o` (or -1 when missing / not a number). */
static int64_t jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

/* A string member of `o` (or "" when missing). */
static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void test_base_and_stream_one_client(void)
{
    lunnel_emu_tunnels *t = mk(4, 7);
    for (int k = 0; k < 100; k++)
        put(t, k); /* before the tunnel: base data only */
    char *tid = tc_create(t, "orders", "cdc", 3);
    CHECK(tid != NULL);
    char stage[64];
    tc_desc_ch d[32];
    int expired = 1;
    CHECK_INT(tc_describe(t, "orders", "cdc", d, 32, stage, &expired), 8);
    CHECK_STR(stage, "InitBaseDataAndStreamShard");
    CHECK_INT(expired, 0);
    CHECK_STR(d[0].status, "WAIT");
    CHECK(strncmp(d[0].id, "BaseData_", 9) == 0);
    for (int k = 50; k < 250; k++)
        put(t, k); /* after: stream (updates + new keys) */

    char *cid = tc_connect(t, tid, 30, "w1");
    CHECK(cid != NULL);
    tc_client c;
    tc_init(&c, t, tid, cid);
    seen s;
    memset(&s, 0, sizeof s);
    c.on_record = on_rec;
    c.arg = &s;
    tc_client *cs[1] = {&c};
    int saw_stream_during_base = 0;
    for (int r = 0; r < 200; r++) {
        round_of(cs, 1, 1000);
        /* Stream channels must not be handed out while a base channel is unfinished. */
        int nd = tc_describe(t, "orders", "cdc", d, 32, stage, NULL);
        int base_left = 0, stream_held = 0;
        for (int i = 0; i < nd; i++) {
            if (!strcmp(d[i].type, "BaseData"))
                base_left += strcmp(d[i].status, "TERMINATED") != 0;
            else
                stream_held += !strcmp(d[i].status, "OPEN") || !strcmp(d[i].status, "CLOSING");
        }
        if (base_left && stream_held) saw_stream_during_base = 1;
        if (s.changes >= 200 && !base_left) break;
    }
    CHECK_INT(saw_stream_during_base, 0);
    CHECK_INT(s.base_records, 100);
    int dup = 0;
    for (int k = 0; k < 100; k++)
        dup += s.base[k] != 1;
    CHECK_INT(dup, 0);
    CHECK_INT(s.changes, 200);
    CHECK_INT(s.order_errors, 0);
    int nd = tc_describe(t, "orders", "cdc", d, 32, stage, NULL);
    CHECK_STR(stage, "ProcessStream");
    int64_t total = 0;
    for (int i = 0; i < nd; i++) {
        if (!strcmp(d[i].type, "BaseData"))
            CHECK_STR(d[i].status, "TERMINATED");
        else {
            CHECK_STR(d[i].status, "OPEN");
            CHECK_STR(d[i].owner, cid);
            total += d[i].count;
            CHECK(d[i].rpo > 0);
        }
    }
    CHECK_INT(total, 200);
    /* GetRpo in the Go SDK's shape: {tunnel: {channel: RpoLatency}} and {tunnel: TunnelRpoLatency},
     * times in ms; RpoTime is Describe's channel_rpo (ns) in ms, AccessTime the (fake) clock. */
    cJSON *rpo, *tun;
    CHECK_INT(get_rpo(t, tid, &rpo, &tun), 0);
    const cJSON *chans = cJSON_GetObjectItemCaseSensitive(rpo, tid);
    CHECK_INT(cJSON_GetArraySize(chans), nd);
    int64_t newest_rpo_ms = 0, oldest_rpo_ms = 0;
    for (int i = 0; i < nd; i++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(chans, d[i].id);
        CHECK(c != NULL);
        CHECK_STR(jstr(c, "ChannelTyp"), d[i].type);
        CHECK_STR(jstr(c, "Status"), d[i].status);
        CHECK_INT(jnum(c, "TotalCount"), d[i].count);
        CHECK(jnum(c, "AccessTime") > 1700000000000LL && jnum(c, "AccessTime") <= now_ns / 1000000);
        if (!strcmp(d[i].type, "Stream")) {
            CHECK_INT(jnum(c, "RpoTime"), d[i].rpo / 1000000);
            if (d[i].rpo / 1000000 > newest_rpo_ms) newest_rpo_ms = d[i].rpo / 1000000;
            if (!oldest_rpo_ms || d[i].rpo / 1000000 < oldest_rpo_ms)
                oldest_rpo_ms = d[i].rpo / 1000000;
        } else {
            CHECK_INT(jnum(c, "RpoTime"), 0);
        }
    }
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(tun, tid);
    CHECK_STR(jstr(tr, "Status"), "ProcessStream");
    CHECK_INT(jnum(tr, "TotalCount"), 300); /* 100 base + 200 stream records */
    CHECK_INT(jnum(tr, "RpoTime"), oldest_rpo_ms);
    CHECK(jnum(tr, "AccessTime") > 0 && jnum(tr, "AccessTime") <= now_ns / 1000000);
    CHECK(newest_rpo_ms > 1700000000000LL);
    cJSON_Delete(rpo);
    cJSON_Delete(tun);
    /* More changes keep flowing to the open stream channels. */
    for (int k = 0; k < 10; k++)
        put(t, k);
    round_of(cs, 1, 1000);
    CHECK_INT(s.changes, 210);
    CHECK_INT(s.order_errors, 0);
    free(tid);
    free(cid);
    lunnel_emu_tunnels_free(t);
}

static void test_balance_and_handoff(void)
{
    lunnel_emu_tunnels *t = mk(6, 1000);
    char *tid = tc_create(t, "orders", "bal", 2);
    for (int k = 0; k < 300; k++)
        put(t, k);
    tc_client a, b, c;
    char *ida = tc_connect(t, tid, 30, NULL);
    tc_init(&a, t, tid, ida);
    tc_client *cs[3] = {&a, &b, &c};
    seen s;
    memset(&s, 0, sizeof s);
    a.on_record = on_rec;
    a.arg = &s;
    round_of(cs, 1, 1);
    CHECK_INT(tc_count(&a, 1), 6);

    /* Client a read some of each channel (one batch each) and checkpointed. */
    char *idb = tc_connect(t, tid, 30, NULL);
    tc_init(&b, t, tid, idb);
    b.on_record = on_rec;
    b.arg = &s;
    /* The join asks a to give back half: CLOSING at a higher version. */
    tc_heartbeat(&a);
    CHECK_INT(tc_count(&a, 2), 3);
    CHECK_INT(tc_count(&a, 1), 3);
    /* b gets nothing until a has released them. */
    tc_heartbeat(&b);
    CHECK_INT(b.nch, 0);
    /* A closing channel is still a's until it reports CLOSE: b may not read it. */
    tc_chan *closing = NULL;
    for (int i = 0; i < a.nch; i++)
        if (a.ch[i].status == 2) closing = &a.ch[i];
    CHECK(closing != NULL);
    char chid[48];
    snprintf(chid, sizeof chid, "%s", closing ? closing->id : "");
    int n = 0, more = 0;
    char next[512];
    CHECK_INT(tc_read(&b, chid, closing ? closing->token : "x", &n, next, sizeof next, &more), 400);
    CHECK_STR(b.last_error, "OTSParameterInvalid");
    tc_work(&a, 1);   /* a drains, checkpoints, marks CLOSE at v+1 */
    tc_heartbeat(&a); /* reports CLOSE; server drops them from a */
    CHECK_INT(a.nch, 3);
    tc_heartbeat(&b);
    CHECK_INT(tc_count(&b, 1), 3);
    /* b continues from a's checkpoint: nothing delivered twice, nothing lost. */
    c.nch = 0;
    for (int r = 0; r < 20 && s.changes < 300; r++)
        round_of(cs, 2, 1000);
    CHECK_INT(s.changes, 300);
    CHECK_INT(s.order_errors, 0);

    /* A third client: 2/2/2. */
    char *idc = tc_connect(t, tid, 30, NULL);
    tc_init(&c, t, tid, idc);
    for (int r = 0; r < 10; r++)
        round_of(cs, 3, 10);
    CHECK_INT(tc_count(&a, 1), 2);
    CHECK_INT(tc_count(&b, 1), 2);
    CHECK_INT(tc_count(&c, 1), 2);
    /* Describe agrees with the clients. */
    tc_desc_ch d[16];
    int nd = tc_describe(t, "orders", "bal", d, 16, NULL, NULL);
    int owned_a = 0;
    for (int i = 0; i < nd; i++)
        owned_a += !strcmp(d[i].owner, ida);
    CHECK_INT(owned_a, 2);
    /* Shutdown of c: its channels go back to a and b (3/3). */
    Lunnel__Tunnel__ShutdownRequest sq = LUNNEL__TUNNEL__SHUTDOWN_REQUEST__INIT;
    sq.tunnel_id = tid;
    sq.client_id = idc;
    lunnel_emu_reply r = tc_call(t, "/tunnel/shutdown", &sq.base);
    CHECK_INT(r.status, 200);
    lunnel_emu_reply_free(&r);
    for (int i = 0; i < 4; i++)
        round_of(cs, 2, 10);
    CHECK_INT(tc_count(&a, 1) + tc_count(&b, 1), 6);
    CHECK_INT(tc_count(&a, 1), 3);
    free(tid);
    free(ida);
    free(idb);
    free(idc);
    lunnel_emu_tunnels_free(t);
}

static void test_heartbeat_expiry(void)
{
    lunnel_emu_tunnels *t = mk(4, 1000);
    char *tid = tc_create(t, "orders", "hb", 2);
    tc_client a, b;
    char *ida = tc_connect(t, tid, 2, NULL); /* 2 s timeout */
    char *idb = tc_connect(t, tid, 0, "timeout_ms=60000");
    tc_init(&a, t, tid, ida);
    tc_init(&b, t, tid, idb);
    tc_client *cs[2] = {&a, &b};
    for (int i = 0; i < 3; i++)
        round_of(cs, 2, 1);
    CHECK_INT(tc_count(&a, 1), 2);
    CHECK_INT(tc_count(&b, 1), 2);
    now_ns += 1500000000LL; /* 1.5 s: still alive */
    CHECK_INT(tc_heartbeat(&b), 200);
    CHECK_INT(tc_heartbeat(&a), 200);
    now_ns += 2100000000LL;           /* 2.1 s of silence from a */
    CHECK_INT(tc_heartbeat(&b), 200); /* b's call runs the timeout check */
    CHECK_INT(tc_count(&b, 1), 4);    /* a's channels came back to b */
    CHECK_INT(tc_heartbeat(&a), 410);
    CHECK_STR(a.last_error, "OTSResourceGone");
    int n = 0, more = 0;
    char next[512];
    CHECK_INT(tc_read(&a, b.ch[0].id, "finished", &n, next, sizeof next, &more), 410);
    /* Admin expire_client does the same at once. */
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "client_id", idb);
    int status = 0;
    char err[128];
    cJSON *rep = lunnel_emu_tunnels_admin(t, "expire_client", body, &status, err, sizeof err);
    CHECK_INT(status, 200);
    CHECK(rep && cJSON_GetObjectItem(rep, "expired")->valuedouble == 1);
    cJSON_Delete(rep);
    cJSON_Delete(body);
    CHECK_INT(tc_heartbeat(&b), 410);
    tc_desc_ch d[8];
    int nd = tc_describe(t, "orders", "hb", d, 8, NULL, NULL);
    int pool = 0;
    for (int i = 0; i < nd; i++)
        pool += !strcmp(d[i].status, "CLOSE") && !d[i].owner[0];
    CHECK_INT(pool, 4);
    free(tid);
    free(ida);
    free(idb);
    lunnel_emu_tunnels_free(t);
}

static void test_split_ordering(void)
{
    lunnel_emu_tunnels *t = mk(2, 5);
    char *tid = tc_create(t, "orders", "sp", 2);
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 40; k++)
            put(t, k); /* 120 changes, 3 per key */
    cJSON *body = cJSON_Parse("{\"table\":\"orders\",\"partition\":\"p0\"}");
    int status = 0;
    char err[128];
    cJSON *rep = lunnel_emu_tunnels_admin(t, "split", body, &status, err, sizeof err);
    CHECK_INT(status, 200);
    CHECK_STR(cJSON_GetObjectItem(rep, "parent")->valuestring, "p0");
    cJSON_Delete(rep);
    cJSON_Delete(body);
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 40; k++)
            put(t, k); /* 120 more, routed to p1 or children */
    char *id = tc_connect(t, tid, 30, NULL);
    tc_client c;
    tc_init(&c, t, tid, id);
    seen s;
    memset(&s, 0, sizeof s);
    c.on_record = on_rec;
    c.arg = &s;
    tc_client *cs[1] = {&c};
    /* First round: p0 and p1 open; the children wait for p0. */
    tc_heartbeat(&c);
    CHECK_INT(c.nch, 2);
    tc_desc_ch d[8];
    int nd = tc_describe(t, "orders", "sp", d, 8, NULL, NULL);
    CHECK_INT(nd, 4);
    int waits = 0;
    for (int i = 0; i < nd; i++)
        waits += !strcmp(d[i].status, "WAIT");
    CHECK_INT(waits, 2);
    /* Read p0 only partly: the children still wait. */
    tc_work(&c, 1);
    tc_heartbeat(&c);
    CHECK_INT(c.nch, 2);
    for (int r = 0; r < 100 && s.changes < 240; r++)
        round_of(cs, 1, 1000);
    CHECK_INT(s.changes, 240);
    CHECK_INT(s.order_errors, 0);
    nd = tc_describe(t, "orders", "sp", d, 8, NULL, NULL);
    for (int i = 0; i < nd; i++)
        if (!strcmp(d[i].id, "p0")) CHECK_STR(d[i].status, "TERMINATED");
    /* Every key's history came in order (checked per record above) and complete. */
    int incomplete = 0;
    for (int k = 0; k < 40; k++)
        incomplete += s.last_seq[k] < 200;
    CHECK_INT(incomplete, 0);
    free(tid);
    free(id);
    lunnel_emu_tunnels_free(t);
}

static void test_retention_expiry(void)
{
    lunnel_emu_tunnels *t = mk(2, 1000);
    for (int k = 0; k < 10; k++)
        put(t, k);
    char *tid = tc_create(t, "orders", "ret", 3);
    for (int k = 0; k < 10; k++)
        put(t, k); /* the tunnel needs these after its base phase */
    char *id = tc_connect(t, tid, 30, NULL);
    tc_client c;
    tc_init(&c, t, tid, id);
    tc_heartbeat(&c);
    CHECK_INT(c.nch, 2); /* base channels, not yet read */
    cJSON *body = cJSON_Parse("{\"retention_ms\":1000}");
    int status = 0;
    char err[128];
    cJSON *rep = lunnel_emu_tunnels_admin(t, "retention", body, &status, err, sizeof err);
    CHECK_INT(status, 200);
    CHECK_INT((int)cJSON_GetObjectItem(rep, "trimmed")->valuedouble, 0);
    cJSON_Delete(rep);
    now_ns += 5000000000LL; /* the base phase outlives retention */
    rep = lunnel_emu_tunnels_admin(t, "retention", body, &status, err, sizeof err);
    CHECK_INT((int)cJSON_GetObjectItem(rep, "trimmed")->valuedouble, 20);
    cJSON_Delete(rep);
    cJSON_Delete(body);
    int expired = 0;
    tc_desc_ch d[8];
    tc_describe(t, "orders", "ret", d, 8, NULL, &expired);
    CHECK_INT(expired, 1);
    CHECK_INT(tc_heartbeat(&c), 400);
    CHECK_STR(c.last_error, "OTSTunnelExpired");
    int n, more;
    char next[64];
    CHECK_INT(tc_read(&c, "BaseData_p0", "finished", &n, next, sizeof next, &more), 400);
    CHECK_STR(c.last_error, "OTSTunnelExpired");
    /* List marks it expired too. */
    Lunnel__Tunnel__ListTunnelRequest lq = LUNNEL__TUNNEL__LIST_TUNNEL_REQUEST__INIT;
    lunnel_emu_reply r = tc_call(t, "/tunnel/list", &lq.base);
    Lunnel__Tunnel__ListTunnelResponse *lp =
        lunnel__tunnel__list_tunnel_response__unpack(NULL, r.len, r.body);
    CHECK(lp && lp->n_tunnels == 1 && lp->tunnels[0]->expired);
    if (lp) lunnel__tunnel__list_tunnel_response__free_unpacked(lp, NULL);
    lunnel_emu_reply_free(&r);
    /* Admin expire_tunnel: expire and revive. */
    body = cJSON_Parse("{\"table\":\"orders\",\"tunnel_name\":\"ret\",\"expired\":false}");
    rep = lunnel_emu_tunnels_admin(t, "expire_tunnel", body, &status, err, sizeof err);
    CHECK_INT(status, 200);
    cJSON_Delete(rep);
    cJSON_Delete(body);
    tc_describe(t, "orders", "ret", d, 8, NULL, &expired);
    CHECK_INT(expired, 0);
    body = cJSON_Parse("{\"table\":\"orders\",\"tunnel_name\":\"ret\"}");
    rep = lunnel_emu_tunnels_admin(t, "expire_tunnel", body, &status, err, sizeof err);
    cJSON_Delete(rep);
    cJSON_Delete(body);
    tc_describe(t, "orders", "ret", d, 8, NULL, &expired);
    CHECK_INT(expired, 1);
    /* A tunnel created now (nothing to catch up on) is fine. */
    char *tid2 = tc_create(t, "orders", "ret2", 2);
    char *id2 = tc_connect(t, tid2, 30, NULL);
    CHECK(id2 != NULL);
    free(tid);
    free(id);
    free(tid2);
    free(id2);
    lunnel_emu_tunnels_free(t);
}

static void test_tokens_sequence_owner(void)
{
    lunnel_emu_tunnels *t = mk(1, 7);
    for (int k = 0; k < 20; k++)
        put(t, k);
    char *tid = tc_create(t, "orders", "tok", 1);
    char *ida = tc_connect(t, tid, 30, NULL), *idb = tc_connect(t, tid, 30, NULL);
    tc_client a, b;
    tc_init(&a, t, tid, ida);
    tc_init(&b, t, tid, idb);
    tc_heartbeat(&a);
    tc_heartbeat(&b);
    tc_client *owner = a.nch ? &a : &b, *other = a.nch ? &b : &a;
    CHECK_INT(owner->nch, 1);
    CHECK_INT(other->nch, 0);
    tc_chan *ch = &owner->ch[0];
    CHECK_STR(ch->id, "BaseData_p0");
    CHECK_INT(tc_getcheckpoint(owner, ch), 200);
    CHECK_INT(ch->seq, 1);
    /* Same token, same records; caps at batch_records with may_more_record. */
    seen s1, s2;
    memset(&s1, 0, sizeof s1);
    memset(&s2, 0, sizeof s2);
    int n1, n2, more1, more2;
    char next1[512], next2[512];
    owner->on_record = on_rec;
    owner->arg = &s1;
    CHECK_INT(tc_read(owner, ch->id, ch->token, &n1, next1, sizeof next1, &more1), 200);
    owner->arg = &s2;
    CHECK_INT(tc_read(owner, ch->id, ch->token, &n2, next2, sizeof next2, &more2), 200);
    CHECK_INT(n1, 7);
    CHECK_INT(more1, 1);
    CHECK_STR(next1, next2);
    CHECK(memcmp(s1.base, s2.base, sizeof s1.base) == 0);
    /* Non-owner: read and checkpoint are refused. */
    int n;
    CHECK_INT(tc_read(other, ch->id, ch->token, &n, next2, sizeof next2, &more2), 400);
    CHECK_STR(other->last_error, "OTSParameterInvalid");
    CHECK_INT(tc_checkpoint(other, ch, next1, 50), 400);
    CHECK_STR(other->last_error, "OTSParameterInvalid");
    /* Sequence numbers: 1 accepted, 1 again stale, 2 accepted. */
    CHECK_INT(tc_checkpoint(owner, ch, next1, 1), 200);
    CHECK_INT(tc_checkpoint(owner, ch, next1, 1), 400);
    CHECK_STR(owner->last_error, "OTSSequenceNumberNotMatch");
    CHECK_INT(tc_getcheckpoint(owner, ch), 200);
    CHECK_STR(ch->token, next1);
    CHECK_INT(ch->seq, 2);
    CHECK_INT(tc_checkpoint(owner, ch, next1, 2), 200);
    /* A garbage token is a clear error, not a crash. */
    CHECK_INT(tc_read(owner, ch->id, "not-a-token", &n, next2, sizeof next2, &more2), 400);
    CHECK_INT(tc_checkpoint(owner, ch, "AAAA", 3), 400);
    /* Read to the end: 20 records in batches of 7, then "finished". */
    int total = 7, rounds = 0;
    char tok[512];
    snprintf(tok, sizeof tok, "%s", next1);
    while (strcmp(tok, "finished") != 0 && rounds++ < 10) {
        CHECK_INT(tc_read(owner, ch->id, tok, &n, next2, sizeof next2, &more2), 200);
        total += n;
        snprintf(tok, sizeof tok, "%s", next2);
    }
    CHECK_INT(total, 20);
    CHECK_STR(tok, "finished");
    CHECK_INT(tc_checkpoint(owner, ch, "finished", 3), 200);
    /* Schedule: the operator moves the channel off its owner. */
    Lunnel__Tunnel__Channel sc = LUNNEL__TUNNEL__CHANNEL__INIT;
    sc.channel_id = ch->id;
    sc.version = 0;
    sc.status = LUNNEL__TUNNEL__CHANNEL_STATUS__CLOSE;
    Lunnel__Tunnel__Channel *scp = &sc;
    Lunnel__Tunnel__ScheduleRequest sq = LUNNEL__TUNNEL__SCHEDULE_REQUEST__INIT;
    sq.tunnel_id = tid;
    sq.n_channels = 1;
    sq.channels = &scp;
    lunnel_emu_reply r = tc_call(t, "/tunnel/schedule", &sq.base);
    CHECK_INT(r.status, 200);
    lunnel_emu_reply_free(&r);
    /* CLOSE takes it from its owner and the scheduler reopens it at a higher version. */
    int64_t v0 = ch->version;
    tc_heartbeat(owner);
    tc_heartbeat(other);
    tc_chan *again = tc_find(owner, "BaseData_p0") ? tc_find(owner, "BaseData_p0")
                                                   : tc_find(other, "BaseData_p0");
    CHECK(again && again->status == 1 && again->version > v0);
    /* TERMINATED ends it: nobody may read it any more. */
    sc.status = LUNNEL__TUNNEL__CHANNEL_STATUS__TERMINATED;
    r = tc_call(t, "/tunnel/schedule", &sq.base);
    CHECK_INT(r.status, 200);
    lunnel_emu_reply_free(&r);
    CHECK_INT(tc_read(&a, "BaseData_p0", "finished", &n, next2, sizeof next2, &more2), 400);
    CHECK_INT(tc_read(&b, "BaseData_p0", "finished", &n, next2, sizeof next2, &more2), 400);
    tc_heartbeat(&a);
    tc_heartbeat(&b);
    CHECK_INT(a.nch + b.nch, 0);
    /* GetRpo answers JSON in the Go SDK's shape: the terminated base channel, all 20 read. */
    cJSON *rpo, *tun;
    CHECK_INT(get_rpo(t, tid, &rpo, &tun), 0);
    const cJSON *b0 =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rpo, tid), "BaseData_p0");
    CHECK(b0 != NULL);
    CHECK_STR(jstr(b0, "ChannelTyp"), "BaseData");
    CHECK_STR(jstr(b0, "Status"), "TERMINATED");
    CHECK_INT(jnum(b0, "TotalCount"), 20);
    CHECK_INT(jnum(b0, "RpoTime"), 0);
    CHECK(jnum(b0, "AccessTime") >= 1700000000000LL);
    CHECK(jnum(cJSON_GetObjectItemCaseSensitive(tun, tid), "TotalCount") >= 20);
    cJSON_Delete(rpo);
    cJSON_Delete(tun);
    lunnel_emu_reply_free(&r);
    free(tid);
    free(ida);
    free(idb);
    lunnel_emu_tunnels_free(t);
}

static void test_faults_and_errors(void)
{
    lunnel_emu_tunnels *t = mk(1, 100);
    cJSON *body =
        cJSON_Parse("{\"path\":\"/tunnel/list\",\"error_rate\":1,\"count\":2,\"delay_ms\":5}");
    int status;
    char err[128];
    cJSON *rep = lunnel_emu_tunnels_admin(t, "faults", body, &status, err, sizeof err);
    CHECK_INT(status, 200);
    cJSON_Delete(rep);
    cJSON_Delete(body);
    Lunnel__Tunnel__ListTunnelRequest lq = LUNNEL__TUNNEL__LIST_TUNNEL_REQUEST__INIT;
    for (int i = 0; i < 3; i++) {
        lunnel_emu_reply r = tc_call(t, "/tunnel/list", &lq.base);
        CHECK_INT(r.status, i < 2 ? 503 : 200);
        CHECK_INT(r.delay_ms, i < 2 ? 5 : 0);
        if (i < 2) CHECK_STR(r.error_code, "OTSTunnelServerUnavailable");
        lunnel_emu_reply_free(&r);
    }
    rep = lunnel_emu_tunnels_admin(t, "tunnel_stats", NULL, &status, err, sizeof err);
    cJSON *p = cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "paths"), "/tunnel/list");
    CHECK(p && cJSON_GetObjectItem(p, "requests")->valuedouble == 3);
    CHECK(p && cJSON_GetObjectItem(p, "errors")->valuedouble == 2);
    cJSON_Delete(rep);
    /* Bad bodies, unknown tunnels, duplicate names. */
    lunnel_emu_reply r;
    lunnel_emu_tunnels_handle(t, "/tunnel/connect", (const uint8_t *)"\xff\xff\xff", 3, &r);
    CHECK_INT(r.status, 400);
    lunnel_emu_reply_free(&r);
    CHECK(tc_connect(t, "no-such-tunnel", 30, NULL) == NULL);
    char *tid = tc_create(t, "orders", "dup", 2);
    CHECK(tid != NULL);
    CHECK(tc_create(t, "orders", "dup", 2) == NULL);
    CHECK(tc_create(t, "nosuchtable", "x", 2) == NULL);
    CHECK_INT(lunnel_emu_tunnels_handle(t, "/PutRow", NULL, 0, &r), -1);
    /* Delete: then the tunnel is gone. */
    Lunnel__Tunnel__DeleteTunnelRequest dq = LUNNEL__TUNNEL__DELETE_TUNNEL_REQUEST__INIT;
    dq.table_name = "orders";
    dq.tunnel_name = "dup";
    r = tc_call(t, "/tunnel/delete", &dq.base);
    CHECK_INT(r.status, 200);
    lunnel_emu_reply_free(&r);
    CHECK(tc_connect(t, tid, 30, NULL) == NULL);
    free(tid);
    /* The store deleting the table takes its tunnels along. */
    tid = tc_create(t, "orders", "gone", 2);
    CHECK(tid != NULL);
    lunnel_emu_tunnels_drop_table(t, "orders");
    CHECK(tc_connect(t, tid, 30, NULL) == NULL);
    free(tid);
    lunnel_emu_tunnels_free(t);
}

static void test_stream_start_end(void)
{
    lunnel_emu_tunnels *t = mk(1, 1000);
    for (int k = 0; k < 5; k++)
        put(t, k);
    int64_t mid = now_ns;
    for (int k = 5; k < 10; k++)
        put(t, k);
    int64_t end = now_ns;
    for (int k = 10; k < 15; k++)
        put(t, k);
    Lunnel__Tunnel__StreamTunnelConfig cfg = LUNNEL__TUNNEL__STREAM_TUNNEL_CONFIG__INIT;
    cfg.has_start_offset = 1;
    cfg.start_offset = (uint64_t)mid + 1;
    cfg.has_end_offset = 1;
    cfg.end_offset = (uint64_t)end;
    Lunnel__Tunnel__Tunnel tu = LUNNEL__TUNNEL__TUNNEL__INIT;
    tu.table_name = "orders";
    tu.tunnel_name = "window";
    tu.tunnel_type = LUNNEL__TUNNEL__TUNNEL_TYPE__Stream;
    tu.stream_tunnel_config = &cfg;
    Lunnel__Tunnel__CreateTunnelRequest q = LUNNEL__TUNNEL__CREATE_TUNNEL_REQUEST__INIT;
    q.tunnel = &tu;
    lunnel_emu_reply r = tc_call(t, "/tunnel/create", &q.base);
    CHECK_INT(r.status, 200);
    Lunnel__Tunnel__CreateTunnelResponse *cp =
        lunnel__tunnel__create_tunnel_response__unpack(NULL, r.len, r.body);
    char *id = tc_connect(t, cp->tunnel_id, 30, NULL);
    tc_client c;
    tc_init(&c, t, cp->tunnel_id, id);
    seen s;
    memset(&s, 0, sizeof s);
    c.on_record = on_rec;
    c.arg = &s;
    tc_client *cs[1] = {&c};
    for (int i = 0; i < 3; i++)
        round_of(cs, 1, 10);
    CHECK_INT(s.changes, 5); /* k5..k9: after start, up to end */
    CHECK_INT(s.last_seq[5], 6);
    CHECK_INT(s.last_seq[10], 0);
    tc_desc_ch d[4];
    tc_describe(t, "orders", "window", d, 4, NULL, NULL);
    CHECK_STR(d[0].status, "TERMINATED");
    lunnel__tunnel__create_tunnel_response__free_unpacked(cp, NULL);
    lunnel_emu_reply_free(&r);
    free(id);
    lunnel_emu_tunnels_free(t);
}

/* Record logs: lazy trimming keeps logical offsets and bytes; compaction is invisible. */
static void test_reclog(void)
{
    emu_reclog l;
    memset(&l, 0, sizeof l);
    char row[16];
    for (int i = 0; i < 10; i++) {
        int n = snprintf(row, sizeof row, "row%d", i);
        CHECK_INT(emu_reclog_append(&l, 1, (const uint8_t *)row, (size_t)n, NULL, 0, i + 1), 0);
    }
    CHECK_INT(emu_reclog_end(&l), 10);
    CHECK_INT(emu_reclog_trim(&l, 4), 3); /* ts 1,2,3 */
    CHECK_INT(emu_reclog_first(&l), 3);
    CHECK_INT(emu_reclog_trim(&l, 4), 0);
    /* entry 5: field tag, len, 08 01 12 len "row5" */
    size_t a = emu_reclog_entry_start(&l, 5), b = emu_reclog_entry_end(&l, 5);
    CHECK_INT(b - a, 10);
    CHECK(memcmp(l.buf + a + 6, "row5", 4) == 0);
    CHECK_INT(emu_reclog_trim(&l, 8), 4); /* ts 4..7: now 7 of 10 dead, compacts */
    CHECK_INT(l.dead, 0);
    CHECK_INT(l.base, 7);
    CHECK_INT(emu_reclog_first(&l), 7);
    CHECK_INT(emu_reclog_end(&l), 10);
    a = emu_reclog_entry_start(&l, 9);
    CHECK(memcmp(l.buf + a + 6, "row9", 4) == 0);
    CHECK_INT(emu_reclog_trim(&l, 100), 3);
    CHECK_INT(emu_reclog_first(&l), 10);
    CHECK_INT(emu_reclog_append(&l, 2, (const uint8_t *)"x", 1, (const uint8_t *)"old", 3, 200), 0);
    a = emu_reclog_entry_start(&l, 10);
    CHECK_INT(l.buf[a + 3], 2);    /* action UPDATE */
    CHECK_INT(l.buf[a + 7], 0x1A); /* origin_record field */
    emu_reclog_free(&l);
}

/* Retention trims what a tunnel has already consumed: no expiry for an up-to-date tunnel. */
static void test_retention_caught_up(void)
{
    lunnel_emu_tunnels *t = mk(1, 1000);
    char *tid = tc_create(t, "orders", "fresh", 2);
    for (int k = 0; k < 10; k++)
        put(t, k);
    char *id = tc_connect(t, tid, 3600, NULL);
    tc_client c;
    tc_init(&c, t, tid, id);
    seen s;
    memset(&s, 0, sizeof s);
    c.on_record = on_rec;
    c.arg = &s;
    tc_client *cs[1] = {&c};
    round_of(cs, 1, 10);
    CHECK_INT(s.changes, 10);
    cJSON *body = cJSON_Parse("{\"retention_ms\":1000}");
    int status = 0;
    char err[128];
    now_ns += 2000000000LL;
    cJSON *rep = lunnel_emu_tunnels_admin(t, "retention", body, &status, err, sizeof err);
    CHECK_INT((int)cJSON_GetObjectItem(rep, "trimmed")->valuedouble, 10);
    cJSON_Delete(rep);
    cJSON_Delete(body);
    for (int k = 0; k < 5; k++)
        put(t, k);
    round_of(cs, 1, 10);
    CHECK_INT(s.changes, 15);
    CHECK_INT(s.order_errors, 0);
    int expired = 1;
    tc_desc_ch d[4];
    tc_describe(t, "orders", "fresh", d, 4, NULL, &expired);
    CHECK_INT(expired, 0);
    free(tid);
    free(id);
    lunnel_emu_tunnels_free(t);
}

/* Uneven counts: 20 channels over 7 clients settle at 3,3,3,3,3,3,2 with nothing lost. */
static void test_many_clients(void)
{
    lunnel_emu_tunnels *t = mk(20, 1000);
    char *tid = tc_create(t, "orders", "many", 2);
    tc_client cl[7];
    tc_client *cs[7];
    char *ids[7];
    for (int i = 0; i < 7; i++) {
        ids[i] = tc_connect(t, tid, 3600, NULL);
        tc_init(&cl[i], t, tid, ids[i]);
        cs[i] = &cl[i];
        round_of(cs, i + 1, 1); /* clients join one by one, forcing handoffs */
    }
    for (int r = 0; r < 6; r++)
        round_of(cs, 7, 1);
    int total = 0, threes = 0, twos = 0;
    for (int i = 0; i < 7; i++) {
        int n = tc_count(&cl[i], 1);
        total += n;
        threes += n == 3;
        twos += n == 2;
    }
    CHECK_INT(total, 20);
    CHECK_INT(threes, 6);
    CHECK_INT(twos, 1);
    for (int i = 0; i < 7; i++)
        free(ids[i]);
    free(tid);
    lunnel_emu_tunnels_free(t);
}

int main(void)
{
    test_many_clients();
    test_reclog();
    test_retention_caught_up();
    test_base_and_stream_one_client();
    test_balance_and_handoff();
    test_heartbeat_expiry();
    test_split_ordering();
    test_retention_expiry();
    test_tokens_sequence_owner();
    test_faults_and_errors();
    test_stream_start_end();
    TEST_DONE();
}
