/* channel_table.c: the channels this client holds and the heartbeat contract
 * (PROTOCOL.md section 3). A heartbeat response lists exactly the channels this client
 * should hold now; for each id the higher version wins (server on a tie); a channel missing
 * from the response, or listed CLOSE / TERMINATED, is stopped. The client itself moves a
 * channel on by raising its local view to version + 1 with CLOSE or TERMINATED, which the
 * next heartbeat reports. Pure bookkeeping: worker.c turns decisions into actions. */
#include <stdlib.h>
#include <string.h>

#include "lunnel/channel.h"

const char *lunnel_channel_status_str(int status)
{
    switch (status) {
    case LUNNEL_CHANNEL_OPEN: return "OPEN";
    case LUNNEL_CHANNEL_CLOSING: return "CLOSING";
    case LUNNEL_CHANNEL_CLOSE: return "CLOSE";
    case LUNNEL_CHANNEL_TERMINATED: return "TERMINATED";
    default: return "UNKNOWN";
    }
}

const char *lunnel_merge_action_str(lunnel_merge_action a)
{
    switch (a) {
    case LUNNEL_MERGE_NONE: return "none";
    case LUNNEL_MERGE_START: return "start";
    case LUNNEL_MERGE_DECLINE: return "decline";
    case LUNNEL_MERGE_DRAIN: return "drain";
    case LUNNEL_MERGE_STOP: return "stop";
    case LUNNEL_MERGE_ADOPT: return "adopt";
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
    if (!server)
        return local ? LUNNEL_MERGE_STOP : LUNNEL_MERGE_NONE;
    if (!local) {
        if (server->status == LUNNEL_CHANNEL_OPEN)
            return LUNNEL_MERGE_START;
        if (server->status == LUNNEL_CHANNEL_CLOSING)
            return LUNNEL_MERGE_DECLINE; /* never opened here: answer CLOSE right away */
        return LUNNEL_MERGE_NONE;        /* CLOSE / TERMINATED of a channel we never had */
    }
    if (local->version > server->version)
        return LUNNEL_MERGE_NONE; /* our report (CLOSE/TERMINATED) is newer: keep sending it */
    /* server view wins */
    if (is_final(server->status))
        return LUNNEL_MERGE_STOP;
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

lunnel_chtable_entry *lunnel_chtable_find(lunnel_chtable *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->entries[i].view.id, id) == 0)
            return &t->entries[i];
    return NULL;
}

lunnel_chtable_entry *lunnel_chtable_add(lunnel_chtable *t, const lunnel_channel_view *v)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        lunnel_chtable_entry *e = realloc(t->entries, cap * sizeof *e);
        if (!e)
            return NULL;
        t->entries = e;
        t->cap = cap;
    }
    char *id = strdup(v->id);
    if (!id)
        return NULL;
    lunnel_chtable_entry *e = &t->entries[t->n++];
    memset(e, 0, sizeof *e);
    e->view = *v;
    e->view.id = id;
    return e;
}

void lunnel_chtable_remove(lunnel_chtable *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->entries[i].view.id, id) == 0) {
            free(t->entries[i].view.id);
            memmove(&t->entries[i], &t->entries[i + 1], (t->n - i - 1) * sizeof t->entries[0]);
            t->n--;
            return;
        }
    }
}

int lunnel_chtable_merge(lunnel_chtable *t, const lunnel_channel_view *server, size_t n,
                         lunnel_merge_cb cb, void *ud)
{
    int rc = 0;
    for (size_t i = 0; i < t->n; i++)
        t->entries[i].seen = 0;
    /* First add every new OPEN channel so entry pointers stay stable for the callbacks. */
    size_t first_new = t->n;
    for (size_t k = 0; k < n; k++) {
        if (lunnel_chtable_find(t, server[k].id))
            continue;
        if (lunnel_channel_merge_one(NULL, &server[k]) == LUNNEL_MERGE_START) {
            if (!lunnel_chtable_add(t, &server[k]))
                rc = -1;
        }
    }
    for (size_t k = 0; k < n; k++) {
        const lunnel_channel_view *s = &server[k];
        lunnel_chtable_entry *e = lunnel_chtable_find(t, s->id);
        if (!e) {
            lunnel_merge_action a = lunnel_channel_merge_one(NULL, s);
            if (a == LUNNEL_MERGE_DECLINE)
                cb(ud, a, NULL, s);
            continue;
        }
        if (e->seen)
            continue; /* duplicate id in the response: first listing wins */
        e->seen = 1;
        size_t idx = (size_t)(e - t->entries);
        lunnel_merge_action a =
            idx >= first_new ? LUNNEL_MERGE_START : lunnel_channel_merge_one(&e->view, s);
        if (a != LUNNEL_MERGE_NONE) {
            e->view.version = s->version;
            e->view.status = s->status;
        }
        if (a == LUNNEL_MERGE_STOP)
            e->seen = 2; /* removed below, after every callback ran */
        if (a != LUNNEL_MERGE_NONE)
            cb(ud, a, e, s);
    }
    for (size_t i = 0; i < t->n; i++) {
        if (!t->entries[i].seen)
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
