/* test_durable.c: the emulator's durable state (--data-dir, durable.c, tunnel_persist.c,
 * wal.c) without HTTP: a store and a tunnel registry wired like tunnel_server.c, driven by
 * store writes and the in-process tunnel client; then a fresh store + registry restored from
 * the directory must hold the same bytes (rows, change streams, partition logs, tunnels and
 * checkpoints). Also: compaction, truncated and corrupt WAL tails (clear message, restart
 * from the last good record), a damaged snapshot, a changed --partitions, the lock. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "durability/durable.h"
#include "durability/tunnel_persist.h"
#include "durability/wal.h"
#include "store/store.h"
#include "testutil.h"
#include "tunnel/tunnel.h"
#include "tunnel/tunnel_feed.h"
#include "tunnel/tunnel_internal.h"
#include "tunnel_test_client.h"

/* ---- a store + registry pair, wired like tunnel_server.c ---- */

typedef struct world {
    lunnel_emu_store *st;
    lunnel_emu_tunnels *tu;
    lunnel_emu_tunnel_feed feed; /* the store feeds the registry */
    lunnel_emu_durable *d;
} world;

static int64_t fake_clock_ns = 1700000000000000000LL;
static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_clock_ns;
}

static void world_new(world *w, uint32_t partitions)
{
    memset(w, 0, sizeof *w);
    w->st = lunnel_emu_store_new(partitions);
    lunnel_emu_tunnel_feed_init(&w->feed, w->st);
    lunnel_emu_tunnel_opts o;
    lunnel_emu_tunnel_opts_default(&o);
    o.partitions = (int)partitions;
    o.batch_records = 7;
    o.clock_ns = fake_clock;
    w->tu = w->feed.tunnels = lunnel_emu_tunnels_new(&o, &w->feed.src);
    lunnel_emu_store_listen(w->st, lunnel_emu_tunnel_feed_on_store, &w->feed);
}

static void world_free(world *w)
{
    lunnel_emu_tunnels_free(w->tu);
    lunnel_emu_store_free(w->st);
}

static char dirbuf[256];
static FILE *logf;
static char *logtext;
static size_t loglen;

static int world_open(world *w, size_t compact, char *err, size_t errlen)
{
    lunnel_emu_durable_opts o = {dirbuf, LUNNEL_EMU_FSYNC_NEVER, compact, logf};
    w->d = lunnel_emu_durable_open(&o, w->st, w->tu, err, errlen);
    return w->d ? 0 : -1;
}

static void commit(world *w)
{
    char err[256];
    int rc = lunnel_emu_durable_commit(w->d, err, sizeof err);
    if (rc != 0) fprintf(stderr, "commit: %s\n", err);
    CHECK_INT(rc, 0);
}

/* Tunnel calls as the glue makes them: handle, sync, commit before the reply is used. */
static world *cur;
static void transport(void *arg, const char *path, const uint8_t *body, size_t len,
                      lunnel_emu_reply *out)
{
    world *w = arg;
    lunnel_emu_tunnels_handle(w->tu, path, body, len, out);
    if (w->tu->sync_fn) w->tu->sync_fn(w->tu->sync_ud);
    commit(w);
}

/* ---- state fingerprints ---- */

/* Everything the store holds, as bytes: tables, current rows (all versions), changes. */
static void store_bytes(lunnel_emu_store *st, emu_wbuf *b)
{
    for (size_t i = 0; i < lunnel_emu_store_table_count(st); i++) {
        lunnel_emu_table *t = lunnel_emu_store_table_at(st, i);
        emu_put_str(b, lunnel_emu_table_name(t));
        emu_put_i64(b, lunnel_emu_table_created_ms(t));
        emu_put_u64(b, lunnel_emu_table_row_count(t));
        const lunnel_emu_table_options *o = lunnel_emu_table_options_of(t);
        emu_put_i32(b, o->max_versions);
        emu_put_i32(b, o->time_to_live);
        emu_put_i64(b, o->deviation_s);
        emu_put_u8(b, o->stream_enabled);
        emu_put_i32(b, o->stream_expiration_hours);
        emu_put_u32(b, (uint32_t)o->n_origin_columns);
        for (size_t k = 0; k < o->n_origin_columns; k++)
            emu_put_str(b, o->origin_columns[k]);
        lunnel_emu_snapshot *s = lunnel_emu_table_snapshot(t);
        for (size_t r = 0; s && r < s->n_rows; r++)
            emu_put_bytes(b, s->rows[r].row, s->rows[r].row_len);
        lunnel_emu_snapshot_free(s);
        for (uint64_t k = lunnel_emu_table_changes_begin(t); k < lunnel_emu_table_changes_end(t);
             k++) {
            const lunnel_emu_change *c = lunnel_emu_table_change_at(t, k);
            emu_put_u64(b, c->index);
            emu_put_bytes(b, c->row, c->row_len);
            emu_put_u32(b, c->partition);
        }
    }
    int64_t us;
    int32_t ri;
    lunnel_emu_store_seq(st, &us, &ri);
    emu_put_i64(b, us);
    emu_put_i32(b, ri);
}

static int discard_flush(void *ud, emu_wbuf *b)
{
    emu_wbuf *all = ud;
    emu_put(all, b->p, b->len);
    b->len = 0;
    return 0;
}

static void tunnel_bytes(lunnel_emu_tunnels *t, emu_wbuf *all)
{
    emu_wbuf b = {0};
    lunnel_emu_tunnel_persist_snapshot(t, &b, discard_flush, all);
    discard_flush(all, &b);
    lunnel_emu_wbuf_free(&b);
}

static int same_state(world *a, world *b)
{
    emu_wbuf x = {0}, y = {0};
    store_bytes(a->st, &x);
    store_bytes(b->st, &y);
    int same_store = x.len == y.len && memcmp(x.p, y.p, x.len) == 0;
    if (!same_store) fprintf(stderr, "store differs: %zu vs %zu bytes\n", x.len, y.len);
    x.len = y.len = 0;
    tunnel_bytes(a->tu, &x);
    tunnel_bytes(b->tu, &y);
    int same_tunnels = x.len == y.len && memcmp(x.p, y.p, x.len) == 0;
    if (!same_tunnels) fprintf(stderr, "tunnels differ: %zu vs %zu bytes\n", x.len, y.len);
    lunnel_emu_wbuf_free(&x);
    lunnel_emu_wbuf_free(&y);
    return same_store && same_tunnels;
}

/* ---- workload ---- */

static lunnel_emu_table *make_table(world *w, const char *name)
{
    lunnel_emu_pk_schema pk[2] = {{"id", LUNNEL_EMU_PK_INTEGER}, {"k", LUNNEL_EMU_PK_STRING}};
    lunnel_emu_table_options o = {.max_versions = 2,
                                  .time_to_live = -1,
                                  .stream_enabled = true,
                                  .stream_expiration_hours = 168};
    char msg[256];
    CHECK_INT(lunnel_emu_store_create_table(w->st, name, pk, 2, &o, msg, sizeof msg), 0);
    return lunnel_emu_store_table(w->st, name);
}

static void write_rows(world *w, lunnel_emu_table *t, int from, int to)
{
    char msg[256];
    for (int i = from; i < to; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i % 7);
        lunnel_emu_value pk[2] = {
            {.type = LUNNEL_EMU_V_INTEGER, .i = i % 50},
            {.type = LUNNEL_EMU_V_STRING, .ptr = (const uint8_t *)k, .len = (uint32_t)strlen(k)}};
        lunnel_emu_cell c[3] = {
            {(const uint8_t *)"s",
             1,
             LUNNEL_EMU_OP_PUT,
             {.type = LUNNEL_EMU_V_STRING, .ptr = (const uint8_t *)"hello\0x", .len = 7},
             false,
             0},
            {(const uint8_t *)"d",
             1,
             LUNNEL_EMU_OP_PUT,
             {.type = LUNNEL_EMU_V_DOUBLE, .d = i * 0.5},
             true,
             1000 + i},
            {(const uint8_t *)"b",
             1,
             LUNNEL_EMU_OP_PUT,
             {.type = LUNNEL_EMU_V_BOOLEAN, .b = i & 1},
             false,
             0}};
        lunnel_emu_action a = i % 11 == 10 ? LUNNEL_EMU_ACTION_DELETE
                              : i % 3 == 0 ? LUNNEL_EMU_ACTION_UPDATE
                                           : LUNNEL_EMU_ACTION_PUT;
        if (a == LUNNEL_EMU_ACTION_UPDATE && i % 2) c[1].op = LUNNEL_EMU_OP_DELETE_ALL_VERSIONS;
        CHECK_INT(lunnel_emu_store_write(w->st, t, a, LUNNEL_EMU_COND_IGNORE, pk, 2, c, 3, 5000 + i,
                                         msg, sizeof msg),
                  0);
        fake_clock_ns += 1000;
    }
}

static void rm_dir(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dirbuf);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dirbuf);
}

static off_t file_size(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dirbuf, name);
    struct stat sb;
    return stat(p, &sb) == 0 ? sb.st_size : -1;
}

/* Builds a state with everything: table, rows, a BaseAndStream tunnel created mid-way, a
 * split, a client reading + checkpointing, more writes. `w` stays open. */
static void build_state(world *w, size_t compact, tc_client *cl)
{
    char err[256];
    world_new(w, 2);
    CHECK_INT(world_open(w, compact, err, sizeof err), 0);
    cur = w;
    tc_transport = transport;
    tc_transport_arg = w;
    lunnel_emu_table *t = make_table(w, "orders");
    write_rows(w, t, 0, 60);
    commit(w);
    char *tid = tc_create(w->tu, "orders", "cdc", 3);
    CHECK(tid != NULL);
    char *sid = tc_create(w->tu, "orders", "stream", 2);
    CHECK(sid != NULL);
    write_rows(w, t, 60, 120);
    commit(w);
    char *cid = tc_connect(w->tu, tid, 30, "c1");
    CHECK(cid != NULL);
    tc_init(cl, w->tu, tid, cid);
    for (int round = 0; round < 12; round++) {
        tc_heartbeat(cl);
        tc_work(cl, 3);
    }
    /* split partition p0 of the table through the admin action */
    cJSON *body = cJSON_Parse("{\"table\":\"orders\",\"partition\":\"p0\"}");
    int status = 0;
    cJSON *r = lunnel_emu_tunnels_admin(w->tu, "split", body, &status, err, sizeof err);
    CHECK(r != NULL);
    cJSON_Delete(r);
    cJSON_Delete(body);
    w->tu->sync_fn(w->tu->sync_ud);
    /* UpdateTable: other time to live, versions, deviation and origin columns */
    static const char *const origin[] = {"v"};
    lunnel_emu_table_options o = *lunnel_emu_table_options_of(t);
    o.time_to_live = 86400;
    o.max_versions = 3;
    o.deviation_s = 600;
    o.stream_expiration_hours = 24;
    o.origin_columns = origin;
    o.n_origin_columns = 1;
    char msg[256];
    CHECK_INT(lunnel_emu_store_update_table(w->st, t, &o, msg, sizeof msg), 0);
    CHECK_INT(lunnel_emu_table_options_of(t)->deviation_s, 600);
    write_rows(w, t, 120, 200);
    commit(w);
    for (int round = 0; round < 6; round++) {
        tc_heartbeat(cl);
        tc_work(cl, 2);
    }
    free(tid);
    free(sid);
    free(cid);
}

static void reopen_and_compare(world *w, int expect_same)
{
    world v;
    char err[512];
    world_new(&v, 2);
    int rc = world_open(&v, 0, err, sizeof err);
    if (rc) fprintf(stderr, "reopen: %s\n", err);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        /* the restored registry has no clients and released their channels: do the same
         * to w (forget its clients without the drop's own version bump) */
        for (int i = 0; i < w->tu->nclients; i++) {
            free(w->tu->clients[i]->tag);
            free(w->tu->clients[i]);
        }
        w->tu->nclients = 0;
        lunnel_emu_tunnel_persist_release(w->tu);
        if (expect_same) CHECK(same_state(w, &v));
        char e2[256];
        CHECK_INT(lunnel_emu_durable_close(v.d, e2, sizeof e2), 0);
    }
    world_free(&v);
}

static void test_roundtrip(size_t compact)
{
    world w;
    tc_client cl;
    build_state(&w, compact, &cl);
    const lunnel_emu_durable_stats *s = lunnel_emu_durable_stats_of(w.d);
    /* An idle tick with nothing changed writes nothing (the journal is by difference). */
    uint64_t bytes = s->wal_bytes, commits = s->commits;
    for (int i = 0; i < 3; i++) {
        lunnel_emu_tunnels_tick(w.tu);
        w.tu->sync_fn(w.tu->sync_ud);
        commit(&w);
    }
    CHECK_INT(s->wal_bytes, bytes);
    CHECK_INT(s->commits, commits);
    if (compact) {
        /* compactions run in a forked child: wait (bounded) for the last one to be reaped */
        for (int i = 0; i < 1000 && lunnel_emu_durable_compacting(w.d); i++) {
            usleep(5000);
            lunnel_emu_durable_poll(w.d);
        }
        CHECK(s->compactions > 0);
    } else
        CHECK_INT(s->compactions, 0);
    /* the channels were read and checkpointed */
    emu_tunnel *tu = w.tu->tunnels[0];
    int cks = 0;
    for (int i = 0; i < tu->nch; i++)
        cks += tu->ch[i]->checkpoint != NULL;
    CHECK(cks > 0);
    char err[256];
    /* Everything was committed as it happened (as before any reply), so closing now adds
     * nothing a crash would lose; it releases the lock for the second instance. */
    CHECK_INT(lunnel_emu_durable_close(w.d, err, sizeof err), 0);
    reopen_and_compare(&w, 1);
    world_free(&w);
    /* restart twice more: restoring is stable (no drift from replaying twice) */
    world a, b;
    world_new(&a, 2);
    CHECK_INT(world_open(&a, 0, err, sizeof err), 0);
    CHECK_INT(lunnel_emu_durable_close(a.d, err, sizeof err), 0);
    world_new(&b, 2);
    CHECK_INT(world_open(&b, 0, err, sizeof err), 0);
    CHECK(same_state(&a, &b));
    /* the restored tunnel goes on: a new client gets the channels, the checkpoint is there */
    tc_transport_arg = &b;
    emu_tunnel *bt = b.tu->tunnels[0];
    char *cid = tc_connect(b.tu, bt->id, 30, "c2");
    tc_client c2;
    tc_init(&c2, b.tu, bt->id, cid);
    tc_heartbeat(&c2);
    CHECK(c2.nch > 0);
    int matched = 0;
    for (int i = 0; i < c2.nch; i++) {
        int ci = emu_tunnel_channel_index(bt, c2.ch[i].id);
        if (ci < 0 || !bt->ch[ci]->checkpoint) continue;
        CHECK_INT(tc_getcheckpoint(&c2, &c2.ch[i]), 200);
        CHECK_STR(c2.ch[i].token, bt->ch[ci]->checkpoint);
        CHECK_INT(c2.ch[i].seq, bt->ch[ci]->seq + 1);
        matched++;
    }
    CHECK(matched > 0);
    /* the old client is gone: its next heartbeat says so */
    tc_init(&cl, b.tu, bt->id, "c1-1-000000");
    CHECK_INT(tc_heartbeat(&cl), 410);
    free(cid);
    CHECK_INT(lunnel_emu_durable_close(b.d, err, sizeof err), 0);
    world_free(&a);
    world_free(&b);
    /* Fuzz seeds (fuzz/corpus/emulator_wal/): real files with every record type. */
    const char *seeds = getenv("LUNNEL_DURABLE_SEED_DIR");
    if (seeds) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && for f in wal.*; do (printf '\\000'; cat $f) > '%s/wal_%zu'; done; "
                 "[ -f snapshot ] && (printf '\\001'; cat snapshot) > '%s/snapshot_%zu'; true",
                 dirbuf, seeds, compact, seeds, compact);
        if (system(cmd) != 0) fprintf(stderr, "cannot write seeds\n");
    }
    rm_dir();
}

/* Builds a small WAL, closes it, damages the tail with `damage`, reopens. */
static void test_tail(const char *what, void (*damage)(const char *path, off_t size),
                      const char *expect)
{
    char err[512];
    world w;
    world_new(&w, 2);
    CHECK_INT(world_open(&w, 0, err, sizeof err), 0);
    lunnel_emu_table *t = make_table(&w, "t");
    write_rows(&w, t, 0, 19);
    w.tu->sync_fn(w.tu->sync_ud); /* the tunnel side's records first: the last record is a write */
    write_rows(&w, t, 19, 20);
    commit(&w);
    CHECK_INT(lunnel_emu_durable_close(w.d, err, sizeof err), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/wal.00000001", dirbuf);
    off_t before = file_size("wal.00000001");
    damage(path, before);
    fflush(logf);
    size_t mark = loglen;
    world v;
    world_new(&v, 2);
    int rc = world_open(&v, 0, err, sizeof err);
    if (rc) fprintf(stderr, "%s: %s\n", what, err);
    CHECK_INT(rc, 0);
    fflush(logf);
    const char *msg = logtext + mark;
    fprintf(stderr, "[%s] %s", what, msg);
    CHECK(strstr(msg, "wal.00000001") != NULL);
    CHECK(strstr(msg, "offset") != NULL);
    CHECK(strstr(msg, expect) != NULL);
    CHECK(strstr(msg, "recovered") != NULL);
    CHECK(lunnel_emu_durable_stats_of(v.d)->tail_recovered);
    /* every write but the last survived */
    lunnel_emu_table *vt = lunnel_emu_store_table(v.st, "t");
    CHECK(vt != NULL);
    if (vt) CHECK_INT(lunnel_emu_table_changes_end(vt), 19);
    /* appends continue after the last good record and replay cleanly */
    if (vt) write_rows(&v, vt, 20, 25);
    commit(&v);
    CHECK_INT(lunnel_emu_durable_close(v.d, err, sizeof err), 0);
    world_free(&v);
    world x;
    world_new(&x, 2);
    fflush(logf);
    mark = loglen;
    CHECK_INT(world_open(&x, 0, err, sizeof err), 0);
    fflush(logf);
    CHECK(strstr(logtext + mark, "recovered") == NULL);
    lunnel_emu_table *xt = lunnel_emu_store_table(x.st, "t");
    if (xt) CHECK_INT(lunnel_emu_table_changes_end(xt), 24);
    CHECK_INT(lunnel_emu_durable_close(x.d, err, sizeof err), 0);
    world_free(&x);
    world_free(&w);
    rm_dir();
}

static void cut_tail(const char *path, off_t size)
{
    CHECK_INT(truncate(path, size - 5), 0);
}

static void flip_tail(const char *path, off_t size)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    CHECK_INT(pread(fd, &c, 1, size - 3), 1);
    c ^= 0x40;
    CHECK_INT(pwrite(fd, &c, 1, size - 3), 1);
    close(fd);
}

static void test_refusals(void)
{
    char err[512];
    world w;
    world_new(&w, 2);
    CHECK_INT(world_open(&w, 0, err, sizeof err), 0);
    lunnel_emu_table *t = make_table(&w, "t");
    write_rows(&w, t, 0, 10);
    commit(&w);
    /* a second emulator on the same dir */
    world o;
    world_new(&o, 2);
    CHECK_INT(world_open(&o, 0, err, sizeof err), -1);
    CHECK(strstr(err, "in use") != NULL);
    world_free(&o);
    CHECK_INT(lunnel_emu_durable_compact(w.d, err, sizeof err), 0);
    CHECK_INT(lunnel_emu_durable_close(w.d, err, sizeof err), 0);
    CHECK_INT(file_size("wal.00000001"), -1); /* replaced by generation 2 */
    CHECK(file_size("wal.00000002") > 0);
    /* a record the CRC vouches for but that cannot be applied: refuse, cut nothing */
    {
        char path[512];
        snprintf(path, sizeof path, "%s/wal.00000002", dirbuf);
        off_t before = file_size("wal.00000002");
        emu_wbuf b = {0};
        size_t at = lunnel_emu_wal_frame_begin(&b);
        emu_put_u8(&b, 77); /* no such record type */
        lunnel_emu_wal_frame_end(&b, at);
        FILE *f = fopen(path, "ab");
        CHECK(f && fwrite(b.p, 1, b.len, f) == b.len);
        if (f) fclose(f);
        lunnel_emu_wbuf_free(&b);
        world u;
        world_new(&u, 2);
        CHECK_INT(world_open(&u, 0, err, sizeof err), -1);
        fprintf(stderr, "[unknown record] %s\n", err);
        CHECK(strstr(err, "refusing to start") != NULL && strstr(err, "wal.00000002") != NULL);
        CHECK_INT(file_size("wal.00000002"), before + 9);
        world_free(&u);
        CHECK_INT(truncate(path, before), 0);
    }
    /* other --partitions */
    world p;
    world_new(&p, 3);
    CHECK_INT(world_open(&p, 0, err, sizeof err), -1);
    CHECK(strstr(err, "--partitions") != NULL);
    world_free(&p);
    /* damaged snapshot: refuse with the reason */
    char path[512];
    snprintf(path, sizeof path, "%s/snapshot", dirbuf);
    off_t sz = file_size("snapshot");
    flip_tail(path, sz - 20);
    world s;
    world_new(&s, 2);
    CHECK_INT(world_open(&s, 0, err, sizeof err), -1);
    fprintf(stderr, "[damaged snapshot] %s\n", err);
    CHECK(strstr(err, "snapshot") != NULL && strstr(err, "CRC32C") != NULL);
    world_free(&s);
    world_free(&w);
    rm_dir();
}

static void test_wal_scan(void)
{
    emu_wbuf b = {0};
    emu_put(&b, LUNNEL_EMU_WAL_MAGIC, 8);
    size_t at = lunnel_emu_wal_frame_begin(&b);
    emu_put_u8(&b, 1);
    emu_put_u32(&b, 4);
    lunnel_emu_wal_frame_end(&b, at);
    lunnel_emu_wal_scan_result r;
    lunnel_emu_wal_scan(b.p, b.len, LUNNEL_EMU_WAL_MAGIC, NULL, NULL, &r);
    CHECK_INT(r.status, LUNNEL_EMU_WAL_OK);
    CHECK_INT(r.records, 1);
    CHECK_INT(r.good_end, b.len);
    lunnel_emu_wal_scan(b.p, b.len - 1, LUNNEL_EMU_WAL_MAGIC, NULL, NULL, &r);
    CHECK_INT(r.status, LUNNEL_EMU_WAL_TRUNCATED);
    CHECK_INT(r.good_end, 8);
    CHECK(strstr(r.msg, "offset 8") != NULL);
    lunnel_emu_wal_scan(b.p, 11, LUNNEL_EMU_WAL_MAGIC, NULL, NULL, &r);
    CHECK(strstr(r.msg, "header cut short") != NULL);
    b.p[9] = 0xFF; /* length byte */
    b.p[11] = 0xFF;
    lunnel_emu_wal_scan(b.p, b.len, LUNNEL_EMU_WAL_MAGIC, NULL, NULL, &r);
    CHECK_INT(r.status, LUNNEL_EMU_WAL_CORRUPT);
    lunnel_emu_wal_scan(b.p, b.len, LUNNEL_EMU_SNAP_MAGIC, NULL, NULL, &r);
    CHECK_INT(r.status, LUNNEL_EMU_WAL_BAD_MAGIC);
    /* CRC32C check value (RFC 3720): "123456789" -> e3069283 */
    CHECK_INT(lunnel_emu_crc32c(0, "123456789", 9), 0xe3069283u);
    CHECK_INT(lunnel_emu_crc32c_sw(0, "123456789", 9), 0xe3069283u);
    uint8_t rnd[1000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof rnd; i++) {
        x = x * 1103515245u + 12345u;
        rnd[i] = (uint8_t)(x >> 16);
    }
    int same = 1;
    for (size_t n = 0; n < sizeof rnd; n += 37)
        same &= lunnel_emu_crc32c(7, rnd + n % 5, n - n % 5) ==
                lunnel_emu_crc32c_sw(7, rnd + n % 5, n - n % 5);
    CHECK(same);
    lunnel_emu_wbuf_free(&b);
}

int main(void)
{
    logf = open_memstream(&logtext, &loglen);
    snprintf(dirbuf, sizeof dirbuf, "/tmp/lunnel-durable-test-%d", (int)getpid());
    rm_dir();
    test_wal_scan();
    test_roundtrip(0);    /* WAL only */
    test_roundtrip(2048); /* compactions all along: snapshot + WAL */
    test_tail("truncated tail", cut_tail, "truncated");
    test_tail("corrupt tail", flip_tail, "CRC32C mismatch");
    test_refusals();
    fclose(logf);
    free(logtext);
    TEST_DONE();
}
