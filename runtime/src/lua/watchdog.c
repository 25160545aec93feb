/* watchdog.c: stuck-script containment. A thread looks at every worker's running call; a call
 * past cfg.process_timeout_s is reported once (log, counter, LUNNEL_HOST_EV_TIMEOUT), and a
 * call past cfg.stuck_exit_s once more (LUNNEL_HOST_EV_STUCK: the caller exits and lets its
 * supervisor restart). LuaJIT cannot interrupt compiled code, so a stuck call is never
 * killed; instead, on the loop thread, the stuck worker's slot gets a replacement worker (a
 * fresh Lua state on a new thread) and every other channel pinned to the stuck worker moves
 * there with its queued jobs, in order. The stuck channel stays behind: its later jobs queue
 * up after the stuck call (per-channel order holds, and nothing after the stuck batch is
 * handled, so nothing past it is checkpointed). The moved channels run open(ctx) again in
 * the new state before their next batch (their ctx.state starts empty). The retired worker
 * is freed with the host (it may still finish its call). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/host_internal.h"

#define ATOMIC_INC(p) __atomic_add_fetch((p), 1, __ATOMIC_RELAXED)

/* Every worker that may run a call: the slots, then the retired ones (under script_mu). */
static int snapshot_workers(lunnel_host *h, host_worker **out, int cap)
{
    int n = 0;
    pthread_mutex_lock(&h->script_mu);
    for (int i = 0; i < h->n_workers && n < cap; i++)
        out[n++] = h->workers[i];
    for (host_worker *w = h->retired; w && n < cap; w = w->retired_next)
        out[n++] = w;
    pthread_mutex_unlock(&h->script_mu);
    return n;
}

#define MAX_WATCHED (2 * LUNNEL_HOST_MAX_WORKERS)

static void check_worker(lunnel_host *h, host_worker *w, int64_t now)
{
    int64_t limit_ns = (int64_t)(h->cfg.process_timeout_s * 1e9);
    int64_t exit_ns = h->cfg.stuck_exit_s > 0 ? (int64_t)(h->cfg.stuck_exit_s * 1e9) : 0;
    /* report under busy_mu: the channel cannot be closed and freed meanwhile (the worker
     * posts EV_CLOSED only after set_idle) */
    pthread_mutex_lock(&w->busy_mu);
    int64_t running_ns = w->busy_since_ns ? now - w->busy_since_ns : 0;
    lunnel_host_channel *ch = w->busy_ch;
    double running = (double)running_ns / 1e9;
    char sec[32], wk[16];
    snprintf(sec, sizeof sec, "%.3f", running);
    snprintf(wk, sizeof wk, "%d", w->index);
    if (running_ns > limit_ns && w->reported_seq != w->busy_seq) {
        w->reported_seq = w->busy_seq;
        ATOMIC_INC(&h->timeouts);
        host_log(h, LUNNEL_LOG_WARN,
                 "script call runs past --process-timeout: channel reported stuck, the "
                 "worker's other channels move to a replacement worker",
                 "channel", ch->channel_id, "worker", wk, "running_s", sec, NULL);
        post_done(h, LUNNEL_HOST_EV_TIMEOUT, ch, w->busy_user, NULL, running, w->version);
    }
    if (exit_ns && running_ns > exit_ns && w->exit_reported_seq != w->busy_seq) {
        w->exit_reported_seq = w->busy_seq;
        host_log(h, LUNNEL_LOG_ERROR, "script call runs past --stuck-exit-timeout", "channel",
                 ch->channel_id, "worker", wk, "running_s", sec, NULL);
        char msg[300];
        snprintf(msg, sizeof msg, "process() on channel %s has run for %.0f s",
                 ch->channel_id ? ch->channel_id : "?", running);
        call_result r = {.status = LUNNEL_HOST_OK, .error = strdup(msg)};
        post_done(h, LUNNEL_HOST_EV_STUCK, ch, w->busy_user, &r, running, w->version);
        free(r.error);
    }
    pthread_mutex_unlock(&w->busy_mu);
}

void *watchdog_main(void *arg)
{
    lunnel_host *h = arg;
    double t = h->cfg.process_timeout_s;
    double period = t / 4;
    if (period < 0.01) period = 0.01;
    if (period > 0.25) period = 0.25;
    host_worker *ws[MAX_WATCHED];
    pthread_mutex_lock(&h->wd_mu);
    while (!h->wd_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (int64_t)(period * 1e9);
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&h->wd_cv, &h->wd_mu, &ts);
        if (h->wd_stop) break;
        int64_t now = host_now_ns();
        int n = snapshot_workers(h, ws, MAX_WATCHED);
        for (int i = 0; i < n; i++)
            check_worker(h, ws[i], now);
    }
    pthread_mutex_unlock(&h->wd_mu);
    return NULL;
}

int host_stuck_calls(lunnel_host *h, double *oldest_s, char *channel, size_t cap)
{
    if (oldest_s) *oldest_s = 0;
    if (channel && cap) channel[0] = 0;
    if (h->cfg.process_timeout_s <= 0) return 0;
    int64_t limit_ns = (int64_t)(h->cfg.process_timeout_s * 1e9);
    host_worker *ws[MAX_WATCHED];
    int n = snapshot_workers(h, ws, MAX_WATCHED), stuck = 0;
    int64_t now = host_now_ns(), oldest = 0;
    for (int i = 0; i < n; i++) {
        host_worker *w = ws[i];
        pthread_mutex_lock(&w->busy_mu);
        int64_t running = w->busy_since_ns ? now - w->busy_since_ns : 0;
        if (running > limit_ns) {
            stuck++;
            if (running > oldest) {
                oldest = running;
                if (channel && cap)
                    snprintf(channel, cap, "%s",
                             w->busy_ch && w->busy_ch->channel_id ? w->busy_ch->channel_id : "");
            }
        }
        pthread_mutex_unlock(&w->busy_mu);
    }
    if (oldest_s) *oldest_s = (double)oldest / 1e9;
    return stuck;
}

/* Loop thread. */
void host_replace_stuck_worker(lunnel_host *h, lunnel_host_channel *stuck)
{
    host_worker *old = stuck->w;
    if (old->replaced) return; /* retired already: it serves only its stuck channels */
    char err[1024];
    host_worker *nw = worker_create(h, old->index, 0, err, sizeof err);
    if (!nw) {
        host_log(h, LUNNEL_LOG_ERROR, "cannot start a replacement worker", "error", err, NULL);
        return;
    }
    /* the channels: all but the stuck one follow the slot */
    int moved = 0;
    for (lunnel_host_channel *ch = h->channels; ch; ch = ch->next) {
        if (ch->w != old || ch == stuck) continue;
        ch->w = nw;
        old->n_channels--;
        nw->n_channels++;
        moved++;
    }
    /* the queued jobs, in order: the stuck channel's stay behind its running call */
    pthread_mutex_lock(&old->mu);
    host_job *j = old->head, *keep_head = NULL, *keep_tail = NULL;
    old->head = old->tail = NULL;
    while (j) {
        host_job *next = j->next;
        j->next = NULL;
        if (j->ch == stuck) {
            if (keep_tail)
                keep_tail->next = j;
            else
                keep_head = j;
            keep_tail = j;
        } else {
            if (nw->tail)
                nw->tail->next = j;
            else
                nw->head = j;
            nw->tail = j;
        }
        j = next;
    }
    old->head = keep_head;
    old->tail = keep_tail;
    pthread_mutex_unlock(&old->mu);

    pthread_mutex_lock(&h->script_mu);
    old->replaced = 1;
    h->workers[old->index] = nw;
    old->retired_next = h->retired;
    h->retired = old;
    pthread_mutex_unlock(&h->script_mu);
    if (worker_start(nw) != 0) {
        host_log(h, LUNNEL_LOG_ERROR, "cannot start a replacement worker thread", NULL);
        return; /* its queue waits; lunnel_host_free frees it */
    }
    ATOMIC_INC(&h->worker_replacements);
    char wk[16], mv[16];
    snprintf(wk, sizeof wk, "%d", old->index);
    snprintf(mv, sizeof mv, "%d", moved);
    host_log(h, LUNNEL_LOG_WARN, "replacement worker started", "worker", wk, "stuck_channel",
             stuck->channel_id, "channels_moved", mv, NULL);
}
