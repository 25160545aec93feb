/* channel_table.c: the channels this client holds and the heartbeat contract
 * (PROTOCOL.md section 3). A heartbeat response lists exactly the channels this client
 * should hold now; for each id the higher version wins (server on a tie); a channel missing
 * from the response, or listed CLOSE / TERMINATED, is stopped. The client itself moves a
 * channel on by raising its local view to version + 1 with CLOSE or TERMINATED, which the
 * next heartbeat reports. Pure bookkeeping: worker.c turns decisions into actions. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/buf.h"
#include "lunnel/channel.h"

const char *lunnel_channel_status_str(int status)
{
    switch (status) {
    case LUNNEL_CHANNEL_OPEN:
        return "OPEN";
    case LUNNEL_CHANNEL_CLOSING:
        return "CLOSING";
    case LUNNEL_CHANNEL_CLOSE:
        return "CLOSE";
    case LUNNEL_CHANNEL_TERMINATED:
        return "TERMINATED";
    default:
        return "UNKNOWN";
    }
}

const char *lunnel_merge_action_str(lunnel_merge_action a)
{
    switch (a) {
    case LUNNEL_MERGE_NONE:
        return "none";
    case LUNNEL_MERGE_START:
        return "start";
    case LUNNEL_MERGE_DECLINE:
        return "decline";
    case LUNNEL_MERGE_DRAIN:
        return "drain";
    case LUNNEL_MERGE_STOP:
        return "stop";
    case LUNNEL_MERGE_ADOPT:
        return "adopt";
    }
    return "unknown";
}

static int is_final(int status)
{
    return status == LUNNEL_CHANNEL_CLOSE || status == LUNNEL_CHANNEL_TERMINATED;
}

lunnel_merge_action lunnel_channel_merge_one(const lunnel_channel_view *local,
                                             const lunnel_channel_view *server)
{
    if (!server) return local ? LUNNEL_MERGE_STOP : LUNNEL_MERGE_NONE;
    if (!local) {
        if (server->status == LUNNEL_CHANNEL_OPEN) return LUNNEL_MERGE_START;
        if (server->status == LUNNEL_CHANNEL_CLOSING)
            return LUNNEL_MERGE_DECLINE; /* never opened here: answer CLOSE right away */
        return LUNNEL_MERGE_NONE;        /* CLOSE / TERMINATED of a channel we never had */
    }
    if (local->version > server->version)
        return LUNNEL_MERGE_NONE; /* our report (CLOSE/TERMINATED) is newer: keep sending it */
    /* server view wins */
    if (is_final(server->status)) return LUNNEL_MERGE_STOP;
    if (server->status == LUNNEL_CHANNEL_CLOSING)
        return local->status == LUNNEL_CHANNEL_CLOSING && local->version == server->version
                   ? LUNNEL_MERGE_NONE
                   : LUNNEL_MERGE_DRAIN;
    /* server OPEN */
    if (is_final(local->status))
        return LUNNEL_MERGE_START; /* we had stopped it; the server offers it again */
    if (local->version == server->version && local->status == server->status)
        return LUNNEL_MERGE_NONE;
    return LUNNEL_MERGE_ADOPT;
}

void lunnel_chtable_init(lunnel_chtable *t)
{
    memset(t, 0, sizeof *t);
}

void lunnel_chtable_free(lunnel_chtable *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->entries[i].view.id);
    free(t->entries);
    memset(t, 0, sizeof *t);
}

/* The entries are kept sorted by id: find is a binary search, and a merge walks the table
 * and the sorted response side by side, so a heartbeat of n channels costs O(n log n) (the
 * sort of the response) instead of n linear searches. */
static size_t lower_bound(const lunnel_chtable *t, const char *id, int *found)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->entries[mid].view.id, id);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < t->n && strcmp(t->entries[lo].view.id, id) == 0;
    return lo;
}

lunnel_chtable_entry *lunnel_chtable_find(lunnel_chtable *t, const char *id)
{
    int found;
    size_t i = lower_bound(t, id, &found);
    return found ? &t->entries[i] : NULL;
}

static int reserve(lunnel_chtable *t, size_t n)
{
    return lunnel_vec_reserve(&t->entries, &t->cap, n, 16);
}

lunnel_chtable_entry *lunnel_chtable_add(lunnel_chtable *t, const lunnel_channel_view *v)
{
    int found;
    size_t i = lower_bound(t, v->id, &found);
    if (found) return &t->entries[i];
    if (reserve(t, t->n + 1) != 0) return NULL;
    char *id = strdup(v->id);
    if (!id) return NULL;
    memmove(&t->entries[i + 1], &t->entries[i], (t->n - i) * sizeof t->entries[0]);
    t->n++;
    lunnel_chtable_entry *e = &t->entries[i];
    memset(e, 0, sizeof *e);
    e->view = *v;
    e->view.id = id;
    return e;
}

void lunnel_chtable_remove(lunnel_chtable *t, const char *id)
{
    int found;
    size_t i = lower_bound(t, id, &found);
    if (!found) return;
    free(t->entries[i].view.id);
    memmove(&t->entries[i], &t->entries[i + 1], (t->n - i - 1) * sizeof t->entries[0]);
    t->n--;
}

/* The response, indexed and sorted by (id, position): duplicates end up adjacent with the
 * first listing first. */
typedef struct {
    const char *id;
    size_t k;
} server_ref;

static int cmp_ref(const void *a, const void *b)
{
    const server_ref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    return x->k < y->k ? -1 : x->k > y->k;
}

#define SEEN_NEW 3 /* added by this merge (scratch value of `seen`) */

int lunnel_chtable_merge(lunnel_chtable *t, const lunnel_channel_view *server, size_t n,
                         lunnel_merge_cb cb, void *ud)
{
    int rc = 0;
    for (size_t i = 0; i < t->n; i++)
        t->entries[i].seen = 0;
    server_ref *refs = n ? malloc(n * sizeof *refs) : NULL;
    size_t *match = n ? malloc(n * sizeof *match) : NULL; /* entry index, or SIZE_MAX */
    if (n && (!refs || !match)) {
        free(refs);
        free(match);
        return -1; /* the table is unchanged; the next heartbeat tries again */
    }
    for (size_t k = 0; k < n; k++)
        refs[k] = (server_ref){server[k].id, k};
    if (n > 1) /* qsort(NULL, 0, ...) is undefined (UBSan) */
        qsort(refs, n, sizeof *refs, cmp_ref);

    /* 1. New OPEN channels, added first (one sorted merge) so entry pointers stay stable for
     * the callbacks. */
    size_t n_new = 0;
    for (size_t j = 0, i = 0; j < n; j++) {
        if (j > 0 && strcmp(refs[j].id, refs[j - 1].id) == 0) continue;
        while (i < t->n && strcmp(t->entries[i].view.id, refs[j].id) < 0)
            i++;
        if (i < t->n && strcmp(t->entries[i].view.id, refs[j].id) == 0) continue;
        if (lunnel_channel_merge_one(NULL, &server[refs[j].k]) == LUNNEL_MERGE_START) n_new++;
    }
    if (n_new && reserve(t, t->n + n_new) != 0) {
        rc = -1;
        n_new = 0; /* they are offered again by the next heartbeat */
    }
    if (n_new) {
        /* merge from the back: old entries and new ones, both sorted */
        size_t i = t->n, out = t->n + n_new, j = n;
        while (j > 0) {
            const server_ref *r = &refs[j - 1];
            int dup = j > 1 && strcmp(refs[j - 2].id, r->id) == 0;
            const lunnel_channel_view *s = &server[r->k];
            j--;
            if (dup) continue; /* the first listing (earlier in refs) decides */
            while (i > 0 && strcmp(t->entries[i - 1].view.id, r->id) > 0)
                t->entries[--out] = t->entries[--i];
            if (i > 0 && strcmp(t->entries[i - 1].view.id, r->id) == 0) continue;
            if (lunnel_channel_merge_one(NULL, s) != LUNNEL_MERGE_START) continue;
            char *id = strdup(s->id);
            lunnel_chtable_entry *e = &t->entries[--out];
            memset(e, 0, sizeof *e);
            e->view = *s;
            e->view.id = id;
            e->seen = id ? SEEN_NEW : 2; /* out of memory: dropped again below */
            if (!id) rc = -1;
        }
        t->n += n_new;
    }

    /* 2. Each listing's entry. */
    for (size_t j = 0, i = 0; j < n; j++) {
        if (j > 0 && strcmp(refs[j].id, refs[j - 1].id) == 0) {
            match[refs[j].k] = match[refs[j - 1].k] == SIZE_MAX ? SIZE_MAX : SIZE_MAX - 1;
            continue; /* duplicate id in the response: first listing wins */
        }
        while (i < t->n &&
               (!t->entries[i].view.id || strcmp(t->entries[i].view.id, refs[j].id) < 0))
            i++;
        match[refs[j].k] =
            i < t->n && t->entries[i].view.id && strcmp(t->entries[i].view.id, refs[j].id) == 0
                ? i
                : SIZE_MAX;
    }
    free(refs);

    /* 3. Decisions, in the response's order. */
    for (size_t k = 0; k < n; k++) {
        const lunnel_channel_view *s = &server[k];
        if (match[k] == SIZE_MAX - 1) continue;
        if (match[k] == SIZE_MAX) {
            lunnel_merge_action a = lunnel_channel_merge_one(NULL, s);
            if (a == LUNNEL_MERGE_DECLINE) cb(ud, a, NULL, s);
            continue;
        }
        lunnel_chtable_entry *e = &t->entries[match[k]];
        int is_new = e->seen == SEEN_NEW;
        e->seen = 1;
        lunnel_merge_action a = is_new ? LUNNEL_MERGE_START : lunnel_channel_merge_one(&e->view, s);
        if (a != LUNNEL_MERGE_NONE) {
            e->view.version = s->version;
            e->view.status = s->status;
        }
        if (a == LUNNEL_MERGE_STOP) e->seen = 2; /* removed below, after every callback ran */
        if (a != LUNNEL_MERGE_NONE) cb(ud, a, e, s);
    }
    free(match);
    for (size_t i = 0; i < t->n; i++) {
        if (!t->entries[i].seen && t->entries[i].view.id)
            cb(ud, LUNNEL_MERGE_STOP, &t->entries[i], NULL);
    }
    /* Remove stopped entries: unseen ones and those the server ended. */
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        lunnel_chtable_entry *e = &t->entries[i];
        if (e->seen != 1) {
            free(e->view.id);
            continue;
        }
        t->entries[w++] = *e;
    }
    t->n = w;
    return rc;
}
