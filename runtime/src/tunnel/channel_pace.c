/* channel_pace.c: the failure backoff of each channel id on this worker. A channel object
 * lives from one OPEN to its stop; when it stops on a persistent failure (failed open, a
 * refused or unparseable reply, retries exhausted, ...) the server usually hands the same
 * channel straight back. Without a memory of the failure that would be a tight reopen loop,
 * so the failure is recorded here by channel id: the next object of that id waits
 * lunnel_pace's delay (1 s doubling to 60 s, jittered) before its GetCheckpoint. One log line
 * per failure, i.e. per backoff step, carries the count of identical failures in a row.
 * Entries whose wait is long over are pruned: the table holds at most the channels that
 * failed within the last few minutes. Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/buf.h"
#include "lunnel/log.h"
#include "lunnel/retry.h"
#include "run_internal.h"

/* An entry idle this long after its wait ended is forgotten (a new failure starts at 1 s:
 * the same as lunnel_pace's healthy reset). */
#define PRUNE_AFTER_S (2.0 * LUNNEL_PACE_MAX_MS / 1000.0)

static run_pace_entry *find(run_worker *w, const char *id)
{
    for (size_t i = 0; i < w->n_pace; i++)
        if (strcmp(w->pace[i].id, id) == 0) return &w->pace[i];
    return NULL;
}

static void prune(run_worker *w, double now)
{
    size_t j = 0;
    for (size_t i = 0; i < w->n_pace; i++) {
        if (now - w->pace[i].not_before > PRUNE_AFTER_S) {
            free(w->pace[i].id);
            continue;
        }
        w->pace[j++] = w->pace[i];
    }
    w->n_pace = j;
}

double run_pace_wait(run_worker *w, const char *id)
{
    run_pace_entry *e = find(w, id);
    if (!e) return 0;
    double d = e->not_before - run_now(w);
    return d > 0 ? d : 0;
}

static run_pace_entry *add(run_worker *w, const char *id)
{
    if (lunnel_vec_reserve(&w->pace, &w->cap_pace, w->n_pace + 1, 8) != 0) return NULL;
    run_pace_entry *e = &w->pace[w->n_pace];
    memset(e, 0, sizeof *e);
    e->id = strdup(id);
    if (!e->id) return NULL;
    lunnel_pace_init(&e->pace, LUNNEL_PACE_BASE_MS, LUNNEL_PACE_MAX_MS);
    w->n_pace++;
    return e;
}

void run_pace_failed(run_worker *w, const char *id, double healthy_s, const char *what,
                     const char *error)
{
    double now = run_now(w);
    prune(w, now);
    char line[sizeof((run_pace_entry *)0)->last_error];
    snprintf(line, sizeof line, "%s: %s", what, error ? error : "");
    run_pace_entry *e = find(w, id);
    if (!e) e = add(w, id);
    if (!e) { /* out of memory: still never a tight loop for this object's successor */
        lunnel_log_kv(LUNNEL_LOG_ERROR, "channel", "channel failed", "channel", id, "error", line,
                      NULL);
        return;
    }
    double ms = lunnel_pace_fail(&e->pace, healthy_s * 1000.0, run_rand01(w));
    /* "identical" ignores the request and trace ids every reply carries */
    char same[sizeof line];
    snprintf(same, sizeof same, "%s", line);
    char *ids = strstr(same, " [request id ");
    if (!ids) ids = strstr(same, " [trace id ");
    if (ids) *ids = '\0';
    if (e->pace.step > 1 && strcmp(e->last_error, same) == 0) {
        e->repeats++;
    } else {
        e->repeats = 1;
        snprintf(e->last_error, sizeof e->last_error, "%s", same);
    }
    e->last_fail = now;
    e->not_before = now + ms / 1000.0;
    char rep[16], wait[32], step[16];
    snprintf(rep, sizeof rep, "%u", e->repeats);
    snprintf(wait, sizeof wait, "%.3f", ms / 1000.0);
    snprintf(step, sizeof step, "%d", e->pace.step);
    lunnel_log_kv(LUNNEL_LOG_ERROR, "channel", "channel failed, reopening after a backoff",
                  "channel", id, "error", line, "repeats", rep, "failures_in_a_row", step,
                  "backoff_s", wait, NULL);
}

void run_pace_free(run_worker *w)
{
    for (size_t i = 0; i < w->n_pace; i++)
        free(w->pace[i].id);
    free(w->pace);
    w->pace = NULL;
    w->n_pace = w->cap_pace = 0;
}
