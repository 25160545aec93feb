/* tunnel_persist.c: serializes the Tunnel Service state for the emulator's durable state
 * and applies it back (see tunnel_persist.h for what is kept and why clients are not). */
#include "durability/tunnel_persist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel/tunnel_internal.h"

#define MAX_CHANNELS 100000
#define CHUNK (1u << 20)

typedef struct jentry {
    char key[300];
    uint8_t *bytes;
    size_t len;
    int seen;
} jentry;

typedef struct jlist {
    jentry *e;
    size_t n, cap;
} jlist;

struct lunnel_emu_tunnel_journal {
    jlist tunnels, tables;
    jentry settings;
    uint8_t reg[32];
    size_t reg_len;
    emu_wbuf scratch;
};

lunnel_emu_tunnel_journal *lunnel_emu_tunnel_journal_new(void)
{
    return calloc(1, sizeof(lunnel_emu_tunnel_journal));
}

static void jlist_free(jlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->e[i].bytes);
    free(l->e);
    memset(l, 0, sizeof *l);
}

void lunnel_emu_tunnel_journal_free(lunnel_emu_tunnel_journal *j)
{
    if (!j) return;
    jlist_free(&j->tunnels);
    jlist_free(&j->tables);
    free(j->settings.bytes);
    lunnel_emu_wbuf_free(&j->scratch);
    free(j);
}

/* ---- serialization ---- */

static void ser_registry(emu_wbuf *b, const lunnel_emu_tunnels *t)
{
    emu_put_u8(b, EMU_REC_T_REGISTRY);
    emu_put_u64(b, t->rng);
    emu_put_u64(b, t->next_client);
}

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static void ser_settings(emu_wbuf *b, const lunnel_emu_tunnels *t)
{
    emu_put_u8(b, EMU_REC_T_SETTINGS);
    emu_put_i64(b, t->o.retention_ms);
    emu_put_u64(b, dbits(t->o.heartbeat_scale));
    emu_put_i64(b, t->o.default_timeout_ms);
    emu_put_i32(b, t->o.batch_records);
    emu_put_u64(b, t->o.batch_bytes);
    emu_put_u32(b, (uint32_t)t->nfaults);
    for (int i = 0; i < t->nfaults; i++) {
        const emu_fault *f = &t->faults[i];
        emu_put_str(b, f->path);
        emu_put_u64(b, dbits(f->error_rate));
        emu_put_u64(b, dbits(f->drop_rate));
        emu_put_i64(b, f->delay_ms);
        emu_put_i64(b, f->remaining);
        emu_put_str(b, f->code);
        emu_put_i32(b, f->status);
    }
}

static int apply_settings(lunnel_emu_tunnels *t, emu_rbuf *r, char *err, size_t errlen)
{
    int64_t retention = emu_get_i64(r);
    double scale = bitsd(emu_get_u64(r));
    int64_t timeout = emu_get_i64(r);
    int32_t records = emu_get_i32(r);
    uint64_t bytes = emu_get_u64(r);
    uint32_t n = emu_get_u32(r);
    if (r->err || retention < 0 || !(scale > 0) || timeout < 1 || records < 1 || bytes < 1 ||
        n > 4096 || n > r->len) {
        snprintf(err, errlen, "bad settings record");
        return -1;
    }
    emu_fault *fs = n ? calloc(n, sizeof *fs) : NULL;
    if (n && !fs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < n && !r->err; i++) {
        emu_fault *f = &fs[i];
        emu_get_str(r, f->path, sizeof f->path);
        f->error_rate = bitsd(emu_get_u64(r));
        f->drop_rate = bitsd(emu_get_u64(r));
        f->delay_ms = emu_get_i64(r);
        f->remaining = emu_get_i64(r);
        emu_get_str(r, f->code, sizeof f->code);
        f->status = emu_get_i32(r);
        if (!(f->error_rate >= 0 && f->error_rate <= 1) ||
            !(f->drop_rate >= 0 && f->drop_rate <= 1) || f->delay_ms < 0)
            r->err = 1;
    }
    if (r->err || r->off != r->len) {
        free(fs);
        snprintf(err, errlen, "bad settings record");
        return -1;
    }
    t->o.retention_ms = retention;
    t->o.heartbeat_scale = scale;
    t->o.default_timeout_ms = timeout;
    t->o.batch_records = records;
    t->o.batch_bytes = (size_t)bytes;
    free(t->faults);
    t->faults = fs;
    t->nfaults = (int)n;
    return 0;
}

static void ser_shards(emu_wbuf *b, const emu_table *tb)
{
    emu_put_u8(b, EMU_REC_T_SHARDS);
    emu_put_str(b, tb->name);
    emu_put_u32(b, (uint32_t)tb->nshards);
    for (int i = 0; i < tb->nshards; i++) {
        const emu_shard *s = tb->shards[i];
        emu_put_str(b, s->id);
        emu_put_u64(b, s->lo);
        emu_put_u64(b, s->hi);
        emu_put_i32(b, s->parent);
        emu_put_u8(b, (uint8_t)s->closed);
    }
}

static void ser_tunnel(emu_wbuf *b, const emu_tunnel *tu)
{
    emu_put_u8(b, EMU_REC_T_TUNNEL);
    emu_put_str(b, tu->id);
    emu_put_str(b, tu->name);
    emu_put_str(b, tu->table->name);
    emu_put_u8(b, (uint8_t)tu->type);
    emu_put_u8(b, (uint8_t)tu->expired);
    emu_put_u8(b, (uint8_t)tu->has_config);
    emu_put_u8(b, (uint8_t)tu->start_flag);
    emu_put_u64(b, tu->start_ns);
    emu_put_u64(b, tu->end_ns);
    emu_put_i64(b, tu->create_ns);
    emu_put_u32(b, (uint32_t)tu->nch);
    for (int i = 0; i < tu->nch; i++) {
        const emu_channel *ch = tu->ch[i];
        emu_put_str(b, ch->id);
        emu_put_u8(b, (uint8_t)ch->is_base);
        emu_put_str(b, ch->shard ? ch->shard->id : "");
        emu_put_i32(b, ch->parent);
        emu_put_u64(b, ch->start);
        emu_put_u8(b, (uint8_t)ch->status);
        emu_put_i64(b, ch->version);
        emu_put_str(b, ch->owner ? ch->owner->id : "");
        emu_put_u8(b, ch->checkpoint != NULL);
        emu_put_str(b, ch->checkpoint);
        emu_put_i64(b, ch->seq);
        emu_put_u64(b, ch->ck_offset);
        emu_put_i64(b, ch->count);
        emu_put_i64(b, ch->rpo_ns);
    }
}

/* Appends scratch as a framed record when it differs from the entry's bytes. */
static int diff_emit(jentry *e, emu_wbuf *s, emu_wbuf *out)
{
    e->seen = 1;
    if (e->bytes && e->len == s->len && memcmp(e->bytes, s->p, s->len) == 0) return 0;
    uint8_t *copy = malloc(s->len);
    if (!copy) return -1;
    memcpy(copy, s->p, s->len);
    free(e->bytes);
    e->bytes = copy;
    e->len = s->len;
    size_t at = lunnel_emu_wal_frame_begin(out);
    emu_put(out, s->p, s->len);
    lunnel_emu_wal_frame_end(out, at);
    return out->oom ? -1 : 1;
}

static jentry *jlist_get(jlist *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->e[i].key, key) == 0) return &l->e[i];
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        jentry *e = realloc(l->e, cap * sizeof *e);
        if (!e) return NULL;
        l->e = e;
        l->cap = cap;
    }
    jentry *e = &l->e[l->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->key, sizeof e->key, "%s", key);
    return e;
}

int lunnel_emu_tunnel_journal_sync(lunnel_emu_tunnel_journal *j, lunnel_emu_tunnels *t,
                                   emu_wbuf *out)
{
    int n = 0, rc;
    emu_wbuf *s = &j->scratch;
    s->len = 0;
    ser_registry(s, t);
    if (s->oom) return -1;
    if (s->len != j->reg_len || memcmp(s->p, j->reg, s->len) != 0) {
        memcpy(j->reg, s->p, s->len);
        j->reg_len = s->len;
        size_t at = lunnel_emu_wal_frame_begin(out);
        emu_put(out, s->p, s->len);
        lunnel_emu_wal_frame_end(out, at);
        n++;
    }
    s->len = 0;
    ser_settings(s, t);
    if (s->oom || (rc = diff_emit(&j->settings, s, out)) < 0) return -1;
    n += rc;
    for (size_t i = 0; i < j->tables.n; i++)
        j->tables.e[i].seen = 0;
    for (size_t i = 0; i < j->tunnels.n; i++)
        j->tunnels.e[i].seen = 0;
    for (int i = 0; i < t->ntables; i++) {
        s->len = 0;
        ser_shards(s, t->tables[i]);
        jentry *e = jlist_get(&j->tables, t->tables[i]->name);
        if (s->oom || !e || (rc = diff_emit(e, s, out)) < 0) return -1;
        n += rc;
    }
    for (int i = 0; i < t->ntunnels; i++) {
        s->len = 0;
        ser_tunnel(s, t->tunnels[i]);
        jentry *e = jlist_get(&j->tunnels, t->tunnels[i]->id);
        if (s->oom || !e || (rc = diff_emit(e, s, out)) < 0) return -1;
        n += rc;
    }
    for (size_t i = 0; i < j->tables.n;) {
        if (j->tables.e[i].seen) {
            i++;
            continue;
        }
        free(j->tables.e[i].bytes);
        j->tables.e[i] = j->tables.e[--j->tables.n];
    }
    for (size_t i = 0; i < j->tunnels.n;) {
        if (j->tunnels.e[i].seen) {
            i++;
            continue;
        }
        size_t at = lunnel_emu_wal_frame_begin(out);
        emu_put_u8(out, EMU_REC_T_TUNNEL_DEL);
        emu_put_str(out, j->tunnels.e[i].key);
        lunnel_emu_wal_frame_end(out, at);
        n++;
        free(j->tunnels.e[i].bytes);
        j->tunnels.e[i] = j->tunnels.e[--j->tunnels.n];
    }
    return out->oom ? -1 : n;
}

/* ---- snapshot ---- */

static int ser_log(emu_wbuf *b, int kind, const char *owner, const char *id, const emu_reclog *l,
                   int (*flush)(void *, emu_wbuf *), void *ud)
{
    size_t at = lunnel_emu_wal_frame_begin(b);
    emu_put_u8(b, EMU_REC_T_LOG);
    emu_put_u8(b, (uint8_t)kind);
    emu_put_str(b, owner);
    emu_put_str(b, id);
    emu_put_u64(b, emu_reclog_first(l));
    lunnel_emu_wal_frame_end(b, at);
    uint64_t i = emu_reclog_first(l), end = emu_reclog_end(l);
    while (i < end) {
        at = lunnel_emu_wal_frame_begin(b);
        emu_put_u8(b, EMU_REC_T_LOG_ENTRIES);
        size_t count_at = b->len;
        emu_put_u32(b, 0);
        uint32_t k = 0;
        size_t bytes = 0;
        while (i < end && bytes < CHUNK) {
            size_t s = emu_reclog_entry_start(l, i), e = emu_reclog_entry_end(l, i);
            emu_put_i64(b, l->ts[i - l->base]);
            emu_put_bytes(b, l->buf + s, e - s);
            bytes += e - s + 12;
            k++;
            i++;
        }
        if (b->oom) return -1;
        for (int q = 0; q < 4; q++)
            b->p[count_at + q] = (uint8_t)(k >> (8 * q));
        lunnel_emu_wal_frame_end(b, at);
        if (b->len > CHUNK && flush(ud, b) != 0) return -1;
    }
    return b->oom ? -1 : 0;
}

/* Does entry `i` of `l` hold exactly change `c` (Record{action, row}, no origin, same ts)? */
static int entry_is(const emu_reclog *l, uint64_t i, const emu_tunnel_change *c)
{
    if (c->origin || l->ts[i - l->base] != c->timestamp_ns) return 0;
    size_t s = emu_reclog_entry_start(l, i), e = emu_reclog_entry_end(l, i);
    uint8_t hdr[32];
    size_t msg = 2 + 1 + emu_pb_varint(hdr, c->row_len) + c->row_len;
    size_t n = 0;
    hdr[n++] = 0x0A;
    n += emu_pb_varint(hdr + n, msg);
    hdr[n++] = 0x08;
    hdr[n++] = (uint8_t)c->action;
    hdr[n++] = 0x12;
    n += emu_pb_varint(hdr + n, c->row_len);
    return e - s == n + c->row_len && memcmp(l->buf + s, hdr, n) == 0 &&
           memcmp(l->buf + s + n, c->row, c->row_len) == 0;
}

typedef struct refs {
    uint64_t *v;
    size_t n, cap;
    uint64_t cursor; /* next logical entry of the log to match */
} refs;

/* Matches the table's retained changes, in order, against each partition log's entries
 * (a change went to exactly one log, and its row bytes -- sequence info included -- are
 * unique). out[s] is complete when its cursor reached the log's end. */
static int match_refs(emu_table *tb, const emu_persist_changes *chg, refs *out)
{
    uint64_t b = 0, e = 0;
    chg->range(chg->ud, tb->name, &b, &e);
    for (int s = 0; s < tb->nshards; s++)
        out[s].cursor = emu_reclog_first(&tb->shards[s]->log);
    for (uint64_t i = b; i < e; i++) {
        emu_tunnel_change c;
        if (chg->at(chg->ud, tb->name, i, &c) != 0) continue;
        uint32_t h = emu_key_hash(c.pk, c.pk_len);
        for (int s = 0; s < tb->nshards; s++) {
            emu_shard *sh = tb->shards[s];
            refs *r = &out[s];
            if (h < sh->lo || h >= sh->hi || r->cursor >= emu_reclog_end(&sh->log) ||
                !entry_is(&sh->log, r->cursor, &c))
                continue;
            if (r->n == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 1024;
                uint64_t *v = realloc(r->v, cap * sizeof *v);
                if (!v) return -1;
                r->v = v;
                r->cap = cap;
            }
            r->v[r->n++] = i;
            r->cursor++;
            break;
        }
    }
    return 0;
}

static int ser_refs(emu_wbuf *b, const emu_table *tb, const emu_shard *sh, const refs *r,
                    int (*flush)(void *, emu_wbuf *), void *ud)
{
    size_t done = 0;
    do {
        size_t k = r->n - done < 65536 ? r->n - done : 65536;
        size_t at = lunnel_emu_wal_frame_begin(b);
        emu_put_u8(b, EMU_REC_T_LOG_REFS);
        emu_put_str(b, tb->name);
        emu_put_str(b, sh->id);
        emu_put_u64(b, emu_reclog_first(&sh->log) + done); /* logical index of the first */
        emu_put_u32(b, (uint32_t)k);
        for (size_t i = 0; i < k; i++)
            emu_put_u64(b, r->v[done + i]);
        lunnel_emu_wal_frame_end(b, at);
        done += k;
        if (b->oom || (b->len > CHUNK && flush(ud, b) != 0)) return -1;
    } while (done < r->n);
    return 0;
}

int lunnel_emu_tunnel_persist_snapshot(lunnel_emu_tunnels *t, emu_wbuf *b,
                                       int (*flush)(void *ud, emu_wbuf *b), void *ud)
{
    return lunnel_emu_tunnel_persist_snapshot_refs(t, b, flush, ud, NULL);
}

int lunnel_emu_tunnel_persist_snapshot_refs(lunnel_emu_tunnels *t, emu_wbuf *b,
                                            int (*flush)(void *ud, emu_wbuf *b), void *ud,
                                            const emu_persist_changes *chg)
{
    size_t at = lunnel_emu_wal_frame_begin(b);
    ser_registry(b, t);
    lunnel_emu_wal_frame_end(b, at);
    at = lunnel_emu_wal_frame_begin(b);
    ser_settings(b, t);
    lunnel_emu_wal_frame_end(b, at);
    for (int i = 0; i < t->ntables; i++) {
        emu_table *tb = t->tables[i];
        at = lunnel_emu_wal_frame_begin(b);
        ser_shards(b, tb);
        lunnel_emu_wal_frame_end(b, at);
        refs *r = chg ? calloc((size_t)tb->nshards, sizeof *r) : NULL;
        int matched = r && match_refs(tb, chg, r) == 0;
        int rc = 0;
        for (int s = 0; s < tb->nshards && rc == 0; s++) {
            emu_shard *sh = tb->shards[s];
            if (matched && r[s].cursor == emu_reclog_end(&sh->log) && r[s].n > 0)
                rc = ser_refs(b, tb, sh, &r[s], flush, ud);
            else
                rc = ser_log(b, 0, tb->name, sh->id, &sh->log, flush, ud);
        }
        for (int s = 0; r && s < tb->nshards; s++)
            free(r[s].v);
        free(r);
        if (rc != 0) return -1;
    }
    for (int i = 0; i < t->ntunnels; i++) {
        emu_tunnel *tu = t->tunnels[i];
        at = lunnel_emu_wal_frame_begin(b);
        ser_tunnel(b, tu);
        lunnel_emu_wal_frame_end(b, at);
        for (int c = 0; c < tu->nch; c++)
            if (tu->ch[c]->is_base && tu->ch[c]->base &&
                ser_log(b, 1, tu->id, tu->ch[c]->id, tu->ch[c]->base, flush, ud) != 0)
                return -1;
        if (b->len > CHUNK && flush(ud, b) != 0) return -1;
    }
    return b->oom ? -1 : 0;
}

/* ---- restore ---- */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)

static emu_shard *shard_by_id(emu_table *tb, const char *id)
{
    for (int i = 0; i < tb->nshards; i++)
        if (strcmp(tb->shards[i]->id, id) == 0) return tb->shards[i];
    return NULL;
}

static int apply_shards(lunnel_emu_tunnels *t, emu_rbuf *r, char *err, size_t errlen)
{
    char name[256];
    emu_get_str(r, name, sizeof name);
    uint32_t n = emu_get_u32(r);
    if (r->err || n == 0 || n > MAX_CHANNELS) FAIL("bad partition record");
    emu_shard *in = calloc(n, sizeof *in);
    if (!in) FAIL("out of memory");
    for (uint32_t i = 0; i < n; i++) {
        emu_get_str(r, in[i].id, sizeof in[i].id);
        in[i].lo = emu_get_u64(r);
        in[i].hi = emu_get_u64(r);
        in[i].parent = emu_get_i32(r);
        in[i].closed = emu_get_u8(r);
        if (in[i].parent < -1 || in[i].parent >= (int)i || in[i].lo >= in[i].hi) r->err = 1;
    }
    if (r->err || r->off != r->len) {
        free(in);
        FAIL("bad partition record for table %s", name);
    }
    emu_table *tb = emu_table_get(t, name, 1);
    if (!tb) {
        free(in);
        FAIL("out of memory");
    }
    /* Partitions only ever get added (splits) and closed; the existing ones must match. */
    for (int i = 0; i < tb->nshards && i < (int)n; i++) {
        emu_shard *s = tb->shards[i];
        if (strcmp(s->id, in[i].id) != 0 || s->lo != in[i].lo || s->hi != in[i].hi) {
            snprintf(err, errlen,
                     "table %s partition %d is %s [%llu,%llu) in the data dir but %s here (was "
                     "--partitions changed?)",
                     name, i, in[i].id, (unsigned long long)in[i].lo, (unsigned long long)in[i].hi,
                     s->id);
            free(in);
            return -1;
        }
    }
    if (tb->nshards > (int)n) {
        free(in);
        FAIL("table %s has %d partitions, the record only %u", name, tb->nshards, n);
    }
    for (uint32_t i = 0; i < n; i++) {
        if ((int)i >= tb->nshards) {
            if (tb->nshards == tb->cap) {
                int cap = tb->cap ? tb->cap * 2 : 8;
                emu_shard **a = realloc(tb->shards, (size_t)cap * sizeof *a);
                if (!a) {
                    free(in);
                    FAIL("out of memory");
                }
                tb->shards = a;
                tb->cap = cap;
            }
            emu_shard *s = calloc(1, sizeof *s);
            if (!s) {
                free(in);
                FAIL("out of memory");
            }
            *s = in[i];
            memset(&s->log, 0, sizeof s->log);
            tb->shards[tb->nshards++] = s;
        }
        tb->shards[i]->closed = in[i].closed;
    }
    free(in);
    return 0;
}

typedef struct ch_in {
    char id[48], shard[24], owner[48];
    int is_base, parent, status, has_ck;
    uint64_t start, ck_offset;
    int64_t version, seq, count, rpo_ns;
    const uint8_t *ck;
    uint32_t ck_len;
} ch_in;

/* Decodes a tunnel record's `nch` channel entries into `in` (calloc'd by the caller); every
 * stream channel must read a partition `tb` has. */
static int read_channels(emu_rbuf *r, emu_table *tb, const char *id, uint32_t nch, ch_in *in,
                         char *err, size_t errlen)
{
    for (uint32_t i = 0; i < nch && !r->err; i++) {
        ch_in *c = &in[i];
        emu_get_str(r, c->id, sizeof c->id);
        c->is_base = emu_get_u8(r);
        emu_get_str(r, c->shard, sizeof c->shard);
        c->parent = emu_get_i32(r);
        c->start = emu_get_u64(r);
        c->status = emu_get_u8(r);
        c->version = emu_get_i64(r);
        emu_get_str(r, c->owner, sizeof c->owner);
        c->has_ck = emu_get_u8(r);
        c->ck = emu_get_bytes(r, &c->ck_len);
        c->seq = emu_get_i64(r);
        c->ck_offset = emu_get_u64(r);
        c->count = emu_get_i64(r);
        c->rpo_ns = emu_get_i64(r);
        if (!c->id[0] || c->status > CH_TERMINATED || c->parent < -1 || c->parent >= (int)nch ||
            (c->ck && memchr(c->ck, 0, c->ck_len)) || c->is_base > 1)
            r->err = 1;
        if (!r->err && !c->is_base && !shard_by_id(tb, c->shard))
            FAIL("tunnel %s channel %s reads partition '%s', unknown on table %s", id, c->id,
                 c->shard, tb->name);
    }
    if (r->err || r->off != r->len) FAIL("bad tunnel record %s", id);
    return 0;
}

/* The tunnel `id` of the registry, or a new one registered on `tb`; NULL with err set. */
static emu_tunnel *tunnel_for(lunnel_emu_tunnels *t, emu_table *tb, const char *id,
                              const char *name, int *is_new, char *err, size_t errlen)
{
    emu_tunnel *tu = emu_tunnel_find(t, id);
    *is_new = tu == NULL;
    if (tu) {
        if (tu->table != tb) {
            snprintf(err, errlen, "tunnel %s moved from table %s to %s", id, tu->table->name,
                     tb->name);
            return NULL;
        }
        return tu;
    }
    if (t->ntunnels == t->tucap) {
        int cap = t->tucap ? t->tucap * 2 : 8;
        emu_tunnel **arr = realloc(t->tunnels, (size_t)cap * sizeof *arr);
        if (!arr) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        t->tunnels = arr;
        t->tucap = cap;
    }
    tu = calloc(1, sizeof *tu);
    if (!tu || !(tu->name = strdup(name))) {
        free(tu);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(tu->id, sizeof tu->id, "%s", id);
    tu->table = tb;
    t->tunnels[t->ntunnels++] = tu;
    return tu;
}

/* Channel `c` as restored: tu's channel of that id (taken out of tu->ch) updated, or a new
 * one. NULL when out of memory. */
static emu_channel *channel_restore(emu_tunnel *tu, emu_table *tb, const ch_in *c, int *failed)
{
    emu_channel *ch = NULL;
    for (int k = 0; k < tu->nch && !ch; k++) {
        if (tu->ch[k] && strcmp(tu->ch[k]->id, c->id) == 0) {
            ch = tu->ch[k];
            tu->ch[k] = NULL;
        }
    }
    if (!ch) {
        ch = calloc(1, sizeof *ch);
        if (ch && c->is_base && !(ch->base = calloc(1, sizeof *ch->base))) {
            free(ch);
            ch = NULL;
        }
        if (!ch) {
            *failed = 1;
            return NULL;
        }
        snprintf(ch->id, sizeof ch->id, "%s", c->id);
        ch->is_base = c->is_base;
    }
    ch->shard = c->is_base ? NULL : shard_by_id(tb, c->shard);
    ch->parent = c->parent;
    ch->start = c->start;
    ch->status = c->status;
    ch->version = c->version;
    ch->owner = NULL; /* clients are not persisted; see tunnel_persist.h */
    free(ch->checkpoint);
    ch->checkpoint = NULL;
    if (c->has_ck) {
        ch->checkpoint = malloc(c->ck_len + 1);
        if (ch->checkpoint) {
            if (c->ck_len) memcpy(ch->checkpoint, c->ck, c->ck_len);
            ch->checkpoint[c->ck_len] = 0;
        } else {
            *failed = 1;
        }
    }
    ch->seq = c->seq;
    ch->ck_offset = c->ck_offset;
    ch->count = c->count;
    ch->rpo_ns = c->rpo_ns;
    return ch;
}

/* Replaces tu's channels with the `n` of `chs` (taken over; NULL entries, channels that
 * failed to allocate under memory exhaustion, are left out); channels the record no longer
 * names are freed. */
static void replace_channels(emu_tunnel *tu, emu_channel **chs, uint32_t n)
{
    for (int k = 0; k < tu->nch; k++)
        if (tu->ch[k]) emu_channel_free(tu->ch[k]);
    free(tu->ch);
    int m = 0;
    for (uint32_t i = 0; i < n; i++)
        if (chs[i]) chs[m++] = chs[i];
    tu->ch = chs;
    tu->nch = tu->chcap = m;
}

static int apply_tunnel(lunnel_emu_tunnels *t, emu_rbuf *r, int from_wal, char *err, size_t errlen)
{
    char id[40], name[256], table[256];
    emu_get_str(r, id, sizeof id);
    emu_get_str(r, name, sizeof name);
    emu_get_str(r, table, sizeof table);
    int type = emu_get_u8(r), expired = emu_get_u8(r), has_config = emu_get_u8(r),
        start_flag = emu_get_u8(r);
    uint64_t start_ns = emu_get_u64(r), end_ns = emu_get_u64(r);
    int64_t create_ns = emu_get_i64(r);
    uint32_t nch = emu_get_u32(r);
    if (r->err || !id[0] || !name[0] || !table[0] || type < TT_BASE || type > TT_BOTH ||
        nch > MAX_CHANNELS)
        FAIL("bad tunnel record");
    emu_table *tb = emu_table_get(t, table, 1);
    if (!tb) FAIL("out of memory");
    int rc = -1, is_new = 0, failed = 0;
    ch_in *in = calloc(nch ? nch : 1, sizeof *in);
    emu_channel **chs = calloc(nch ? nch : 1, sizeof *chs);
    emu_tunnel *tu = NULL;
    if (!in || !chs) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (read_channels(r, tb, id, nch, in, err, errlen) != 0) goto out;
    if (!(tu = tunnel_for(t, tb, id, name, &is_new, err, errlen))) goto out;
    tu->type = type;
    tu->expired = expired;
    tu->has_config = has_config;
    tu->start_flag = start_flag;
    tu->start_ns = start_ns;
    tu->end_ns = end_ns;
    tu->create_ns = create_ns;
    for (uint32_t i = 0; i < nch; i++)
        chs[i] = channel_restore(tu, tb, &in[i], &failed);
    replace_channels(tu, chs, nch);
    chs = NULL; /* the tunnel's now */
    if (is_new && from_wal && type != TT_STREAM) emu_tunnel_fill_base(t, tu);
    if (failed) {
        snprintf(err, errlen, "out of memory restoring tunnel %s", id);
        goto out;
    }
    rc = 0;
out:
    free(chs);
    free(in);
    return rc;
}

static int apply_log(lunnel_emu_tunnels *t, lunnel_emu_tunnel_restore *rs, emu_rbuf *r, char *err,
                     size_t errlen)
{
    int kind = emu_get_u8(r);
    char owner[256], id[64];
    emu_get_str(r, owner, sizeof owner);
    emu_get_str(r, id, sizeof id);
    uint64_t first = emu_get_u64(r);
    if (r->err || r->off != r->len || kind > 1) FAIL("bad log record");
    emu_reclog *l = NULL;
    if (kind == 0) {
        emu_table *tb = emu_table_get(t, owner, 0);
        emu_shard *s = tb ? shard_by_id(tb, id) : NULL;
        if (!s) FAIL("log of unknown partition %s/%s", owner, id);
        l = &s->log;
    } else {
        emu_tunnel *tu = emu_tunnel_find(t, owner);
        int ci = tu ? emu_tunnel_channel_index(tu, id) : -1;
        if (ci < 0 || !tu->ch[ci]->base) FAIL("log of unknown base channel %s/%s", owner, id);
        l = tu->ch[ci]->base;
    }
    if (l->n != 0) FAIL("log %s/%s restored twice", owner, id);
    l->base = first;
    rs->log = l;
    return 0;
}

static int apply_entries(lunnel_emu_tunnel_restore *rs, emu_rbuf *r, char *err, size_t errlen)
{
    emu_reclog *l = rs->log;
    if (!l) FAIL("log entries without a log record before them");
    uint32_t n = emu_get_u32(r);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        int64_t ts = emu_get_i64(r);
        uint32_t len;
        const uint8_t *p = emu_get_bytes(r, &len);
        if (r->err || !p) break;
        if (emu_reclog_append_raw(l, p, len, ts) != 0) FAIL("out of memory");
    }
    if (r->err || r->off != r->len) FAIL("bad log entries record");
    return 0;
}

/* A partition log given as change indexes: rebuilt from the store's changes, exactly as
 * lunnel_emu_tunnels_on_change appended them. */
static int apply_refs(lunnel_emu_tunnels *t, lunnel_emu_tunnel_restore *rs, emu_rbuf *r, char *err,
                      size_t errlen)
{
    char table[256], id[64];
    emu_get_str(r, table, sizeof table);
    emu_get_str(r, id, sizeof id);
    uint64_t first = emu_get_u64(r);
    uint32_t n = emu_get_u32(r);
    if (r->err || (uint64_t)n * 8 != r->len - r->off) FAIL("bad log reference record");
    if (!rs->changes) FAIL("log references without a change source");
    emu_table *tb = emu_table_get(t, table, 0);
    emu_shard *sh = tb ? shard_by_id(tb, id) : NULL;
    if (!sh) FAIL("log of unknown partition %s/%s", table, id);
    emu_reclog *l = &sh->log;
    if (l->n == 0)
        l->base = first;
    else if (emu_reclog_end(l) != first)
        FAIL("log %s/%s continues at %llu, not %llu", table, id,
             (unsigned long long)emu_reclog_end(l), (unsigned long long)first);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t k = emu_get_u64(r);
        emu_tunnel_change c;
        if (rs->changes->at(rs->changes->ud, table, k, &c) != 0)
            FAIL("log %s/%s refers to change %llu, which the snapshot does not hold", table, id,
                 (unsigned long long)k);
        if (emu_reclog_append(l, c.action, c.row, c.row_len, c.origin, c.origin_len,
                              c.timestamp_ns) != 0)
            FAIL("out of memory");
    }
    rs->log = NULL;
    return 0;
}

int lunnel_emu_tunnel_persist_apply(lunnel_emu_tunnels *t, lunnel_emu_tunnel_restore *rs,
                                    const uint8_t *p, size_t n, int from_wal, char *err,
                                    size_t errlen)
{
    emu_rbuf r = {p, n, 1, 0};
    if (n < 1) FAIL("empty record");
    switch (p[0]) {
    case EMU_REC_T_REGISTRY: {
        uint64_t rng = emu_get_u64(&r), next = emu_get_u64(&r);
        if (r.err || r.off != r.len) FAIL("bad registry record");
        t->rng = rng ? rng : 1;
        t->next_client = next;
        return 0;
    }
    case EMU_REC_T_SHARDS:
        return apply_shards(t, &r, err, errlen);
    case EMU_REC_T_TUNNEL:
        return apply_tunnel(t, &r, from_wal, err, errlen);
    case EMU_REC_T_TUNNEL_DEL: {
        char id[40];
        emu_get_str(&r, id, sizeof id);
        if (r.err || r.off != r.len) FAIL("bad tunnel delete record");
        emu_tunnel *tu = emu_tunnel_find(t, id);
        if (tu) emu_tunnel_delete(t, tu);
        return 0;
    }
    case EMU_REC_T_LOG:
        return apply_log(t, rs, &r, err, errlen);
    case EMU_REC_T_LOG_ENTRIES:
        return apply_entries(rs, &r, err, errlen);
    case EMU_REC_T_LOG_REFS:
        return apply_refs(t, rs, &r, err, errlen);
    case EMU_REC_T_SETTINGS:
        return apply_settings(t, &r, err, errlen);
    }
    FAIL("unknown tunnel record type %u", (unsigned)p[0]);
}

void lunnel_emu_tunnel_persist_release(lunnel_emu_tunnels *t)
{
    for (int i = 0; i < t->ntunnels; i++) {
        emu_tunnel *tu = t->tunnels[i];
        for (int c = 0; c < tu->nch; c++) {
            emu_channel *ch = tu->ch[c];
            if (ch->status == CH_OPEN || ch->status == CH_CLOSING) {
                ch->status = CH_CLOSE;
                ch->version++;
            }
            ch->owner = NULL;
        }
        emu_tunnel_schedule(t, tu);
    }
}

void lunnel_emu_tunnels_set_sync(lunnel_emu_tunnels *t, void (*fn)(void *ud), void *ud)
{
    t->sync_fn = fn;
    t->sync_ud = ud;
}

void lunnel_emu_tunnel_persist_pause_credit(lunnel_emu_tunnels *t, int64_t ns)
{
    for (int i = 0; i < t->nclients; i++)
        t->clients[i]->last_ns += ns;
}
