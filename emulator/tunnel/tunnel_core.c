/* tunnel_core.c: the Tunnel Service state machine -- the registry, tunnel creation (base
 * snapshot + stream start positions), clients and their heartbeat timeouts, and the
 * scheduler that decides which channel is WAIT/OPEN/CLOSING/CLOSE/TERMINATED and who owns it
 * (PROTOCOL.md section 3). Everything here is driven by the request handlers
 * (tunnel_api.c), the admin actions (admin_tunnel.c) and lunnel_emu_tunnels_tick(); no I/O,
 * no HTTP, so it is unit tested with a fake clock. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tunnel/tunnel_internal.h"

void lunnel_emu_tunnel_opts_default(lunnel_emu_tunnel_opts *o)
{
    memset(o, 0, sizeof *o);
    o->partitions = 4;
    o->batch_records = 1000;
    o->batch_bytes = 1024 * 1024;
    o->retention_ms = 7LL * 24 * 3600 * 1000;
    o->heartbeat_scale = 1.0;
    o->default_timeout_ms = 300 * 1000;
    o->instance = "lunnel";
    o->seed = 1;
}

int64_t emu_now_ns(lunnel_emu_tunnels *t)
{
    if (t->o.clock_ns) return t->o.clock_ns(t->o.clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* xorshift64*: reproducible fault injection and ids for a given --seed. */
uint64_t emu_rand(lunnel_emu_tunnels *t)
{
    uint64_t x = t->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

lunnel_emu_tunnels *lunnel_emu_tunnels_new(const lunnel_emu_tunnel_opts *opts,
                                           const emu_tunnel_source *src)
{
    lunnel_emu_tunnels *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->o = *opts;
    t->instance = strdup(opts->instance ? opts->instance : "lunnel");
    t->o.instance = t->instance;
    if (t->o.partitions < 1) t->o.partitions = 1;
    if (t->o.batch_records < 1) t->o.batch_records = 1;
    if (t->o.batch_bytes < 1) t->o.batch_bytes = 1;
    if (t->o.heartbeat_scale <= 0) t->o.heartbeat_scale = 1.0;
    t->src = src;
    t->rng = opts->seed ? opts->seed : 1;
    return t;
}

void emu_channel_free(emu_channel *ch)
{
    if (ch->base) {
        emu_reclog_free(ch->base);
        free(ch->base);
    }
    free(ch->checkpoint);
    free(ch);
}

static void tunnel_free(emu_tunnel *tu)
{
    for (int i = 0; i < tu->nch; i++)
        emu_channel_free(tu->ch[i]);
    free(tu->ch);
    free(tu->name);
    free(tu);
}

/* A table's partitions and their logs (its tunnels are freed separately). */
static void table_free(emu_table *tb)
{
    for (int s = 0; s < tb->nshards; s++) {
        emu_reclog_free(&tb->shards[s]->log);
        free(tb->shards[s]);
    }
    free(tb->shards);
    free(tb->name);
    free(tb);
}

void lunnel_emu_tunnels_free(lunnel_emu_tunnels *t)
{
    if (!t) return;
    for (int i = 0; i < t->nclients; i++) {
        free(t->clients[i]->tag);
        free(t->clients[i]);
    }
    free(t->clients);
    for (int i = 0; i < t->ntunnels; i++)
        tunnel_free(t->tunnels[i]);
    free(t->tunnels);
    for (int i = 0; i < t->ntables; i++)
        table_free(t->tables[i]);
    free(t->tables);
    free(t->faults);
    free(t->instance);
    free(t);
}

void lunnel_emu_tunnels_on_change(lunnel_emu_tunnels *t, const emu_tunnel_change *c)
{
    emu_table *tb = emu_table_get(t, c->table, 1);
    if (!tb) return;
    emu_shard *s = emu_table_route(tb, emu_key_hash(c->pk, c->pk_len));
    if (!s) return;
    emu_reclog_append(&s->log, c->action, c->row, c->row_len, c->origin, c->origin_len,
                      c->timestamp_ns);
}

void lunnel_emu_tunnels_drop_table(lunnel_emu_tunnels *t, const char *table)
{
    for (int i = t->ntunnels - 1; i >= 0; i--)
        if (strcmp(t->tunnels[i]->table->name, table) == 0) emu_tunnel_delete(t, t->tunnels[i]);
    for (int i = 0; i < t->ntables; i++) {
        emu_table *tb = t->tables[i];
        if (strcmp(tb->name, table) != 0) continue;
        table_free(tb);
        t->tables[i] = t->tables[--t->ntables];
        return;
    }
}

const char *emu_status_name(int status)
{
    switch (status) {
    case CH_WAIT:
        return "WAIT";
    case CH_OPEN:
        return "OPEN";
    case CH_CLOSING:
        return "CLOSING";
    case CH_CLOSE:
        return "CLOSE";
    case CH_TERMINATED:
        return "TERMINATED";
    }
    return "UNKNOWN";
}

const char *emu_stage_name(int stage)
{
    switch (stage) {
    case STAGE_INIT:
        return "InitBaseDataAndStreamShard";
    case STAGE_BASE:
        return "ProcessBaseData";
    case STAGE_STREAM:
        return "ProcessStream";
    }
    return "Unknown";
}

emu_tunnel *emu_tunnel_find(lunnel_emu_tunnels *t, const char *id)
{
    if (!id) return NULL;
    for (int i = 0; i < t->ntunnels; i++)
        if (strcmp(t->tunnels[i]->id, id) == 0) return t->tunnels[i];
    return NULL;
}

emu_tunnel *emu_tunnel_find_name(lunnel_emu_tunnels *t, const char *table, const char *name)
{
    if (!table || !name) return NULL;
    for (int i = 0; i < t->ntunnels; i++) {
        emu_tunnel *tu = t->tunnels[i];
        if (strcmp(tu->table->name, table) == 0 && strcmp(tu->name, name) == 0) return tu;
    }
    return NULL;
}

emu_client *emu_client_find(lunnel_emu_tunnels *t, const char *id)
{
    if (!id) return NULL;
    for (int i = 0; i < t->nclients; i++)
        if (strcmp(t->clients[i]->id, id) == 0) return t->clients[i];
    return NULL;
}

int emu_tunnel_channel_index(emu_tunnel *tu, const char *id)
{
    for (int i = 0; i < tu->nch; i++)
        if (strcmp(tu->ch[i]->id, id) == 0) return i;
    return -1;
}

emu_channel *emu_tunnel_add_channel(emu_tunnel *tu, const char *id, int is_base)
{
    if (tu->nch == tu->chcap) {
        int cap = tu->chcap ? tu->chcap * 2 : 8;
        emu_channel **a = realloc(tu->ch, (size_t)cap * sizeof *a);
        if (!a) return NULL;
        tu->ch = a;
        tu->chcap = cap;
    }
    emu_channel *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    snprintf(ch->id, sizeof ch->id, "%s%s", is_base ? "BaseData_" : "", id);
    ch->is_base = is_base;
    ch->parent = -1;
    ch->status = CH_WAIT;
    tu->ch[tu->nch++] = ch;
    return ch;
}

int emu_tunnel_client_count(lunnel_emu_tunnels *t, emu_tunnel *tu)
{
    int n = 0;
    for (int i = 0; i < t->nclients; i++)
        n += t->clients[i]->tunnel == tu;
    return n;
}

/* Releases every channel a client holds (back to the pool as CLOSE, version bumped so any
 * late report of the old owner loses) and forgets the client. */
void emu_client_drop(lunnel_emu_tunnels *t, emu_client *c)
{
    emu_tunnel *tu = c->tunnel;
    if (tu) {
        for (int i = 0; i < tu->nch; i++) {
            emu_channel *ch = tu->ch[i];
            if (ch->owner == c) {
                ch->owner = NULL;
                ch->status = CH_CLOSE;
                ch->version++;
            }
        }
    }
    for (int i = 0; i < t->nclients; i++) {
        if (t->clients[i] == c) {
            t->clients[i] = t->clients[--t->nclients];
            break;
        }
    }
    free(c->tag);
    free(c);
    if (tu) emu_tunnel_schedule(t, tu);
}

void emu_tunnel_delete(lunnel_emu_tunnels *t, emu_tunnel *tu)
{
    for (int i = t->nclients - 1; i >= 0; i--) {
        emu_client *c = t->clients[i];
        if (c->tunnel == tu) {
            c->tunnel = NULL; /* no scheduling on a tunnel being deleted */
            t->clients[i] = t->clients[--t->nclients];
            free(c->tag);
            free(c);
        }
    }
    for (int i = 0; i < t->ntunnels; i++) {
        if (t->tunnels[i] == tu) {
            memmove(&t->tunnels[i], &t->tunnels[i + 1],
                    (size_t)(t->ntunnels - i - 1) * sizeof *t->tunnels);
            t->ntunnels--;
            break;
        }
    }
    tunnel_free(tu);
}

static int base_all_terminated(emu_tunnel *tu)
{
    for (int i = 0; i < tu->nch; i++)
        if (tu->ch[i]->is_base && tu->ch[i]->status != CH_TERMINATED) return 0;
    return 1;
}

/* May this channel be handed to a client now? (Base channels always; stream channels after
 * the base phase of a BaseAndStream tunnel, and after their parent partition's channel.) */
static int eligible(emu_tunnel *tu, emu_channel *ch, int base_done)
{
    if (ch->status == CH_TERMINATED) return 0;
    if (ch->is_base) return 1;
    if (tu->type == TT_BOTH && !base_done) return 0;
    if (ch->parent >= 0 && tu->ch[ch->parent]->status != CH_TERMINATED) return 0;
    return 1;
}

int emu_tunnel_schedule(lunnel_emu_tunnels *t, emu_tunnel *tu)
{
    int changed = 0;
    int base_done = base_all_terminated(tu);
    tu->stage = tu->type == TT_BASE     ? STAGE_BASE
                : tu->type == TT_STREAM ? STAGE_STREAM
                : base_done             ? STAGE_STREAM
                                        : STAGE_BASE;
    if (tu->expired) return 0;

    /* Live clients of this tunnel, in connect order. */
    int k = emu_tunnel_client_count(t, tu);
    if (k == 0) return 0;
    emu_client **cl = malloc((size_t)k * sizeof *cl);
    int *open = calloc((size_t)k, sizeof *open), *cap = malloc((size_t)k * sizeof *cap),
        *rank = malloc((size_t)k * sizeof *rank);
    if (!cl || !open || !cap || !rank) {
        free(cl);
        free(open);
        free(cap);
        free(rank);
        return 0; /* out of memory: try again at the next tick */
    }
    k = 0;
    for (int i = 0; i < t->nclients; i++)
        if (t->clients[i]->tunnel == tu) cl[k++] = t->clients[i];

    int n = 0;
    for (int i = 0; i < tu->nch; i++) {
        emu_channel *ch = tu->ch[i];
        if (ch->owner) {
            n++;
            if (ch->status == CH_OPEN)
                for (int j = 0; j < k; j++)
                    if (cl[j] == ch->owner) open[j]++;
        } else if (eligible(tu, ch, base_done)) {
            n++;
        }
    }
    /* Capacities: n/k each, the remainder to the clients already holding the most, so a
     * balanced tunnel never moves a channel. */
    for (int j = 0; j < k; j++)
        rank[j] = j;
    for (int a = 1; a < k; a++) { /* insertion sort by open desc, stable */
        int r = rank[a], b = a;
        while (b > 0 && open[rank[b - 1]] < open[r]) {
            rank[b] = rank[b - 1];
            b--;
        }
        rank[b] = r;
    }
    for (int j = 0; j < k; j++)
        cap[rank[j]] = n / k + (j < n % k ? 1 : 0);

    /* Over-loaded clients give channels back: CLOSING, the owner answers CLOSE. */
    for (int i = tu->nch - 1; i >= 0; i--) {
        emu_channel *ch = tu->ch[i];
        if (ch->status != CH_OPEN || !ch->owner) continue;
        for (int j = 0; j < k; j++) {
            if (cl[j] == ch->owner && open[j] > cap[j]) {
                ch->status = CH_CLOSING;
                ch->version++;
                open[j]--;
                changed++;
            }
        }
    }
    /* Free channels go to the least-loaded client with room. */
    for (int i = 0; i < tu->nch; i++) {
        emu_channel *ch = tu->ch[i];
        if (ch->owner || !eligible(tu, ch, base_done)) continue;
        int best = -1;
        for (int j = 0; j < k; j++)
            if (open[j] < cap[j] && (best < 0 || open[j] < open[best])) best = j;
        if (best < 0) break;
        ch->owner = cl[best];
        ch->status = CH_OPEN;
        ch->version++;
        open[best]++;
        changed++;
    }
    free(cl);
    free(open);
    free(cap);
    free(rank);
    return changed;
}

void lunnel_emu_tunnels_tick(lunnel_emu_tunnels *t)
{
    int64_t now = emu_now_ns(t);
    /* Heartbeat timeouts. */
    for (int i = t->nclients - 1; i >= 0; i--) {
        if (i >= t->nclients) continue;
        emu_client *c = t->clients[i];
        if (now - c->last_ns > c->timeout_ns) emu_client_drop(t, c);
    }
    /* Retention: trim, then expire tunnels that still needed trimmed records. */
    int64_t cutoff = now - t->o.retention_ms * 1000000LL;
    for (int i = 0; i < t->ntables; i++)
        for (int s = 0; s < t->tables[i]->nshards; s++)
            emu_reclog_trim(&t->tables[i]->shards[s]->log, cutoff);
    for (int i = 0; i < t->ntunnels; i++) {
        emu_tunnel *tu = t->tunnels[i];
        for (int c = 0; c < tu->nch && !tu->expired; c++) {
            emu_channel *ch = tu->ch[c];
            if (ch->is_base || ch->status == CH_TERMINATED) continue;
            if (ch->checkpoint && strcmp(ch->checkpoint, "finished") == 0) continue;
            if (ch->ck_offset < emu_reclog_first(&ch->shard->log)) tu->expired = 1;
        }
        emu_tunnel_schedule(t, tu);
    }
    t->last_tick_ns = now;
}
