/* tunnel_table.c: per-table change streams as the tunnel side sees them: a set of
 * partitions (shards), each a hash range of the primary-key hash with its own record log.
 * A table starts with --partitions shards splitting the 32-bit hash space evenly; an admin
 * split closes one shard and gives each half of its range to a new child shard, so every
 * key keeps a single ordered history: parent log, then exactly one child log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel/tunnel_internal.h"

static emu_shard *shard_new(emu_table *tb, uint64_t lo, uint64_t hi, int parent)
{
    if (tb->nshards == tb->cap) {
        int cap = tb->cap ? tb->cap * 2 : 8;
        emu_shard **s = realloc(tb->shards, (size_t)cap * sizeof *s);
        if (!s) return NULL;
        tb->shards = s;
        tb->cap = cap;
    }
    emu_shard *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    snprintf(s->id, sizeof s->id, "p%d", tb->nshards);
    s->lo = lo;
    s->hi = hi;
    s->parent = parent;
    tb->shards[tb->nshards++] = s;
    return s;
}

emu_table *emu_table_get(lunnel_emu_tunnels *t, const char *name, int create)
{
    for (int i = 0; i < t->ntables; i++)
        if (strcmp(t->tables[i]->name, name) == 0) return t->tables[i];
    if (!create) return NULL;
    if (t->ntables == t->tcap) {
        int cap = t->tcap ? t->tcap * 2 : 8;
        emu_table **a = realloc(t->tables, (size_t)cap * sizeof *a);
        if (!a) return NULL;
        t->tables = a;
        t->tcap = cap;
    }
    emu_table *tb = calloc(1, sizeof *tb);
    if (!tb || !(tb->name = strdup(name))) {
        free(tb);
        return NULL;
    }
    uint64_t space = (uint64_t)1 << 32;
    int n = t->o.partitions > 0 ? t->o.partitions : 1;
    for (int i = 0; i < n; i++) {
        if (!shard_new(tb, space * (uint64_t)i / (uint64_t)n,
                       space * (uint64_t)(i + 1) / (uint64_t)n, -1)) {
            /* leave the partial table; later calls retry nothing, but nothing crashes */
            break;
        }
    }
    t->tables[t->ntables++] = tb;
    return tb;
}

emu_shard *emu_table_route(emu_table *tb, uint32_t hash)
{
    for (int i = 0; i < tb->nshards; i++) {
        emu_shard *s = tb->shards[i];
        if (!s->closed && hash >= s->lo && hash < s->hi) return s;
    }
    return NULL;
}

int emu_table_split(lunnel_emu_tunnels *t, emu_table *tb, int idx)
{
    if (idx < 0 || idx >= tb->nshards) return -1;
    emu_shard *p = tb->shards[idx];
    if (p->closed || p->hi - p->lo < 2) return -1;
    uint64_t mid = p->lo + (p->hi - p->lo) / 2;
    int first = tb->nshards;
    if (!shard_new(tb, p->lo, mid, idx)) return -1;
    if (!shard_new(tb, mid, p->hi, idx)) return -1;
    p = tb->shards[idx]; /* shard_new may have moved the pointer array, not the shards */
    p->closed = 1;
    /* Every tunnel reading this table's stream gets a channel per child; it waits (WAIT)
     * until the parent's channel is TERMINATED (emu_tunnel_schedule). */
    for (int i = 0; i < t->ntunnels; i++) {
        emu_tunnel *tu = t->tunnels[i];
        if (tu->table != tb || tu->type == TT_BASE) continue;
        int parent_ch = emu_tunnel_channel_index(tu, p->id);
        for (int c = first; c < first + 2; c++) {
            emu_channel *ch = emu_tunnel_add_channel(tu, tb->shards[c]->id, 0);
            if (!ch) continue;
            ch->shard = tb->shards[c];
            ch->parent = parent_ch;
            ch->start = 0; /* children are born empty: everything in them is new */
            ch->ck_offset = 0;
        }
    }
    return first;
}
