/* checkpoint_track.c: which token a channel may checkpoint. Batches are numbered in read
 * order; a batch becomes "handled" when process returned (auto commit) or when ctx:commit()
 * covers it (manual commit). Only the next_token of the newest batch such that it and every
 * earlier batch are handled may be stored, so a checkpoint never gets ahead of processing
 * (DESIGN.md: "A checkpoint records only tokens of handled batches"). Also keeps the
 * checkpoint sequence number (GetCheckpoint's + 1, +1 per accepted checkpoint). Pure. */
#include <stdlib.h>
#include <string.h>

#include "lunnel/channel.h"

void lunnel_cptrack_init(lunnel_cptrack *t, int64_t start_sequence)
{
    memset(t, 0, sizeof *t);
    t->sequence = start_sequence;
}

void lunnel_cptrack_free(lunnel_cptrack *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->items[(t->head + i) % t->cap].token);
    free(t->items);
    free(t->committable);
    free(t->checkpointed);
    memset(t, 0, sizeof *t);
}

static lunnel_cptrack_item *item_at(const lunnel_cptrack *t, size_t i)
{
    return &t->items[(t->head + i) % t->cap];
}

uint64_t lunnel_cptrack_add(lunnel_cptrack *t, const char *token)
{
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        lunnel_cptrack_item *n = malloc(cap * sizeof *n);
        if (!n) return UINT64_MAX;
        for (size_t i = 0; i < t->count; i++)
            n[i] = *item_at(t, i);
        free(t->items);
        t->items = n;
        t->cap = cap;
        t->head = 0;
    }
    char *copy = strdup(token ? token : "");
    if (!copy) return UINT64_MAX;
    lunnel_cptrack_item *it = &t->items[(t->head + t->count) % t->cap];
    it->no = t->next_no++;
    it->token = copy;
    it->handled = 0;
    t->count++;
    return it->no;
}

/* Folds the handled prefix into `committable`; returns 1 when it moved. */
static int fold(lunnel_cptrack *t)
{
    int moved = 0;
    while (t->count > 0 && t->items[t->head].handled) {
        lunnel_cptrack_item *it = &t->items[t->head];
        free(t->committable);
        t->committable = it->token; /* ownership moves */
        it->token = NULL;
        t->head = (t->head + 1) % t->cap;
        t->count--;
        moved = 1;
    }
    return moved;
}

int lunnel_cptrack_mark(lunnel_cptrack *t, uint64_t no)
{
    if (t->count == 0 || no < t->items[t->head].no) return 0;
    uint64_t off = no - t->items[t->head].no;
    if (off >= t->count) return 0;
    item_at(t, (size_t)off)->handled = 1;
    return fold(t);
}

int lunnel_cptrack_mark_through(lunnel_cptrack *t, uint64_t no)
{
    if (t->count == 0 || no < t->items[t->head].no) return 0;
    uint64_t off = no - t->items[t->head].no;
    if (off >= t->count) off = t->count - 1;
    for (size_t i = 0; i <= (size_t)off; i++)
        item_at(t, i)->handled = 1;
    return fold(t);
}

const char *lunnel_cptrack_pending(const lunnel_cptrack *t)
{
    if (!t->committable) return NULL;
    if (t->checkpointed && strcmp(t->checkpointed, t->committable) == 0) return NULL;
    return t->committable;
}

void lunnel_cptrack_accepted(lunnel_cptrack *t, const char *token)
{
    t->sequence++;
    char *copy = strdup(token);
    if (copy) {
        free(t->checkpointed);
        t->checkpointed = copy;
    }
}

void lunnel_cptrack_resync(lunnel_cptrack *t, int64_t server_seq)
{
    t->sequence = server_seq + 1;
}

size_t lunnel_cptrack_outstanding(const lunnel_cptrack *t)
{
    return t->count;
}
