/* arena.c: the caller-owned memory behind record views. A list of chunks handed out by bump
 * allocation; reset rewinds every chunk (memory is kept, so steady-state decoding allocates
 * nothing) and bumps the live generation, which lives in the arena header (never in a
 * chunk) so a stale Lua handle can always read it safely. Two scratch vectors (columns,
 * rows) let the decoder collect an unknown number of items before copying them into a chunk. */
#include <stdlib.h>

#include "codec/codec_internal.h"
#include "lunnel/buf.h"

#define CHUNK_MIN (16u * 1024u)
#define CHUNK_MAX (1024u * 1024u)

typedef struct chunk {
    struct chunk *next;
    size_t cap;
    size_t used;
    _Alignas(16) uint8_t data[];
} chunk;

struct lunnel_arena {
    volatile uint32_t live; /* first member: its address is what Lua handles compare against */
    chunk *head;
    chunk *cur;
    chunk *tail;
    size_t total;
    lunnel_column *scols;
    size_t scols_cap;
    lunnel_record *srows;
    size_t srows_cap;
};

lunnel_arena *lunnel_arena_new(void)
{
    lunnel_arena *a = calloc(1, sizeof *a);
    if (a) a->live = 1; /* generation 0 never matches: a zeroed handle is always stale */
    return a;
}

void lunnel_arena_free(lunnel_arena *a)
{
    if (!a) return;
    for (chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(a->scols);
    free(a->srows);
    free(a);
}

void lunnel_arena_reset(lunnel_arena *a)
{
    a->live = a->live + 1 == 0 ? 1 : a->live + 1;
    for (chunk *c = a->head; c; c = c->next)
        c->used = 0;
    a->cur = a->head;
}

uint32_t lunnel_arena_generation(const lunnel_arena *a)
{
    return a->live;
}
const volatile uint32_t *lunnel_arena_live(const lunnel_arena *a)
{
    return &a->live;
}
size_t lunnel_arena_capacity(const lunnel_arena *a)
{
    return a->total;
}

void *lunnel_arena_alloc(lunnel_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    for (chunk *c = a->cur; c; c = c->next) {
        if (c->cap - c->used >= n) {
            void *p = c->data + c->used;
            c->used += n;
            a->cur = c;
            return p;
        }
    }
    size_t cap = a->tail ? a->tail->cap * 2 : CHUNK_MIN;
    if (cap > CHUNK_MAX) cap = CHUNK_MAX;
    if (cap < n) cap = n;
    chunk *c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = n;
    if (a->tail)
        a->tail->next = c;
    else
        a->head = c;
    a->tail = c;
    a->cur = c;
    a->total += cap;
    return c->data;
}

lunnel_column *arena_scratch_cols(lunnel_arena *a, uint32_t need)
{
    if (need <= a->scols_cap) return a->scols; /* per record: no call on the common path */
    if (lunnel_vec_reserve(&a->scols, &a->scols_cap, need, 32) != 0) return NULL;
    return a->scols;
}

lunnel_record *arena_scratch_rows(lunnel_arena *a, uint32_t need)
{
    if (need <= a->srows_cap) return a->srows;
    if (lunnel_vec_reserve(&a->srows, &a->srows_cap, need, 16) != 0) return NULL;
    return a->srows;
}
