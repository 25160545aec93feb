/* host.c: the Lua host's machinery (host.h): worker threads with one job queue each,
 * channel pinning, the completion queue drained on the loop thread through ev_async, the
 * script-version swap and its acknowledgement, and the process-timeout watchdog.
 *
 * Ownership: the loop thread owns channel handles and the completion callback; each worker
 * owns its lua_State and arena; the two sides meet only in the worker queues, the completion
 * queue and the script-version slot, each behind its own mutex. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lua/host_internal.h"
#include "lunnel/record.h"

#define ATOMIC_INC(p) __atomic_add_fetch((p), 1, __ATOMIC_RELAXED)
#define ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)

uint64_t lunnel_host_hash(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t x = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        x = (x ^ p[i]) * 1099511628211ull;
    return x;
}

int64_t host_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- logging ------------------------------------------------------------------------ */

void host_log_fields(lunnel_host *h, lunnel_log_level level, const char *component, const char *msg,
                     const lunnel_log_field *f, size_t n)
{
    if (h && h->cfg.log) {
        h->cfg.log(level, component, msg, f, n);
    } else {
        lunnel_log_fields(level, component, msg, f, n);
    }
}

int host_log_enabled(lunnel_host *h, lunnel_log_level level)
{
    if (h && h->cfg.log) return 1; /* the sink decides */
    return lunnel_log_enabled(level);
}

/* host_log(h, level, msg, key, value, ..., NULL): the host's own lines (component "host"). */
void host_log(lunnel_host *h, lunnel_log_level level, const char *msg, ...)
{
    lunnel_log_field f[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        if (n < 16) f[n++] = (lunnel_log_field){k, v};
    }
    va_end(ap);
    host_log_fields(h, level, "host", msg, f, n);
}

/* ---- completions -------------------------------------------------------------------- */

void post_done(lunnel_host *h, lunnel_host_event ev, lunnel_host_channel *ch, void *batch_user,
               call_result *r, double elapsed, int version)
{
    host_done *d = calloc(1, sizeof *d);
    if (!d) abort(); /* a lost completion would wedge the channel forever */
    d->c.event = ev;
    d->c.channel = ch;
    d->c.channel_user = ch->user;
    d->c.batch_user = batch_user;
    d->c.status = r ? r->status : LUNNEL_HOST_OK;
    d->c.committed = r ? r->committed : 0;
    d->c.record_count = r ? r->records : 0;
    d->c.newest_timestamp_us = r ? r->newest_ts_us : 0;
    d->c.elapsed_s = elapsed;
    d->c.script_version = version;
    d->c.dead_lettered = r ? r->dead_lettered : 0;
    if (r) snprintf(d->dead_letter_error, sizeof d->dead_letter_error, "%s", r->dead_letter_error);
    if (r) {
        d->error = r->error;
        d->traceback = r->traceback;
        r->error = r->traceback = NULL;
    }
    pthread_mutex_lock(&h->done_mu);
    if (h->done_tail)
        h->done_tail->next = d;
    else
        h->done_head = d;
    h->done_tail = d;
    pthread_mutex_unlock(&h->done_mu);
    ev_async_send(h->loop, &h->async);
}

static void free_channel(lunnel_host_channel *ch)
{
    free(ch->tunnel_id);
    free(ch->client_id);
    free(ch->channel_id);
    free(ch->trace_id);
    free(ch);
}

static void unlink_channel(lunnel_host *h, lunnel_host_channel *ch)
{
    if (ch->prev)
        ch->prev->next = ch->next;
    else
        h->channels = ch->next;
    if (ch->next) ch->next->prev = ch->prev;
    ch->w->n_channels--;
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    lunnel_host *h = w->data;
    pthread_mutex_lock(&h->done_mu);
    host_done *d = h->done_head;
    h->done_head = h->done_tail = NULL;
    pthread_mutex_unlock(&h->done_mu);
    while (d) {
        host_done *next = d->next;
        d->c.error = d->error ? d->error : "";
        d->c.traceback = d->traceback ? d->traceback : "";
        d->c.dead_letter_error = d->dead_letter_error;
        if (d->c.event == LUNNEL_HOST_EV_TIMEOUT) host_replace_stuck_worker(h, d->c.channel);
        if (d->c.event == LUNNEL_HOST_EV_TICK) d->c.channel->tick_pending = 0;
        h->cfg.on_done(&d->c, h->cfg.ud);
        if (d->c.event == LUNNEL_HOST_EV_CLOSED) {
            unlink_channel(h, d->c.channel);
            free_channel(d->c.channel);
        }
        free(d->error);
        free(d->traceback);
        free(d);
        d = next;
    }
}

/* ---- script versions ---------------------------------------------------------------- */

void script_version_free_mods(script_version *v)
{
    for (int i = 0; i < v->n_mods; i++) {
        free(v->mods[i].name);
        free(v->mods[i].path);
        free(v->mods[i].source);
    }
    free(v->mods);
    v->mods = NULL;
    v->n_mods = 0;
}

void script_version_free(script_version *v)
{
    if (!v) return;
    script_version_free_mods(v);
    free(v->source);
    free(v);
}

void script_unref(lunnel_host *h, script_version *v)
{
    pthread_mutex_lock(&h->script_mu);
    int last = --v->refs == 0;
    pthread_mutex_unlock(&h->script_mu);
    if (last) script_version_free(v);
}

static void wake_worker(host_worker *w)
{
    pthread_mutex_lock(&w->mu);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void host_publish(lunnel_host *h, script_version *v)
{
    v->refs = 1; /* the host's reference (h->current) */
    pthread_mutex_lock(&h->script_mu);
    script_version *old = h->current;
    v->gen = old->gen + 1;
    h->current = v;
    __atomic_store_n(&h->gen, v->gen, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&h->script_mu);
    script_unref(h, old);
    for (int i = 0; i < h->n_workers; i++)
        wake_worker(h->workers[i]);
}

/* Worker side of a reload: load the newest version at a batch boundary, then acknowledge
 * once every worker runs it (or a newer one). */
static void worker_swap(host_worker *w)
{
    lunnel_host *h = w->h;
    pthread_mutex_lock(&h->script_mu);
    script_version *v = h->current;
    v->refs++;
    pthread_mutex_unlock(&h->script_mu);

    char err[1024];
    int rc = state_load(&w->st, v, 1, 0, err, sizeof err);
    if (rc != 0) {
        /* validated elsewhere but failed here (load-time side effects, memory): keep the old
         * handlers; the new version never runs on this worker */
        char ver[16];
        snprintf(ver, sizeof ver, "%d", v->gen);
        host_log(h, LUNNEL_LOG_ERROR, "script reload failed on a worker, old version kept",
                 "version", ver, "error", err, NULL);
    }

    pthread_mutex_lock(&h->script_mu);
    w->version = v->gen;
    w->hash = v->hash;
    int m = w->version;
    uint64_t mhash = w->hash;
    for (int i = 0; i < h->n_workers; i++) {
        if (h->workers[i]->version < m) {
            m = h->workers[i]->version;
            mhash = h->workers[i]->hash;
        }
    }
    if (m > h->acked_gen) {
        /* the acknowledgement: logged before the counters move (under script_mu, which
         * lunnel_host_get_stats takes), so a reader that sees them also sees the line */
        char vbuf[16], hbuf[24], okbuf[24];
        snprintf(vbuf, sizeof vbuf, "%d", m);
        snprintf(hbuf, sizeof hbuf, "%016llx", (unsigned long long)mhash);
        snprintf(okbuf, sizeof okbuf, "%llu",
                 (unsigned long long)(h->reloads_ok + (uint64_t)(m - h->acked_gen)));
        host_log(h, LUNNEL_LOG_INFO, "script reloaded", "path", h->script_path, "version", vbuf,
                 "hash", hbuf, "reloads_ok", okbuf, NULL);
        __atomic_add_fetch(&h->reloads_ok, (uint64_t)(m - h->acked_gen), __ATOMIC_RELEASE);
        h->acked_gen = m;
        h->acked_hash = mhash;
    }
    pthread_mutex_unlock(&h->script_mu);
    script_unref(h, v);
}

/* ---- workers ------------------------------------------------------------------------ */

static void set_busy(host_worker *w, lunnel_host_channel *ch, void *user)
{
    pthread_mutex_lock(&w->busy_mu);
    w->busy_since_ns = host_now_ns();
    w->busy_seq++;
    w->busy_ch = ch;
    w->busy_user = user;
    pthread_mutex_unlock(&w->busy_mu);
}

static void set_idle(host_worker *w)
{
    pthread_mutex_lock(&w->busy_mu);
    w->busy_since_ns = 0;
    pthread_mutex_unlock(&w->busy_mu);
}

/* After a memory error whose collection freed too little: the script keeps the data alive
 * (module-level tables), so every later call would fail too. A fresh state runs the current
 * version; the worker's channels get open(ctx) again before their next batch (ctx.state
 * starts empty: the old one is what filled the memory). */
static void rebuild_state(host_worker *w)
{
    lunnel_host *h = w->h;
    char used[32], peak[32], err[1024];
    snprintf(used, sizeof used, "%zu", w->st.used);
    snprintf(peak, sizeof peak, "%zu", w->st.peak); /* limit + the overshoot before the check */
    state_close(&w->st);
    if (state_open(&w->st, h, w->index, h->memory_limit, err, sizeof err) != 0) {
        host_log(h, LUNNEL_LOG_ERROR, "cannot rebuild a Lua state", "error", err, NULL);
        return; /* w->st.L is NULL: the calls of this worker fail with ESYSTEM */
    }
    w->st.serial = __atomic_add_fetch(&h->state_serials, 1, __ATOMIC_RELAXED);
    ATOMIC_INC(&h->state_rebuilds);
    char wk[16];
    snprintf(wk, sizeof wk, "%d", w->index);
    host_log(h, LUNNEL_LOG_WARN,
             "the script holds more than 3/4 of --memory-limit after a collection: worker "
             "state rebuilt, its channels' open(ctx) runs again (ctx.state starts empty)",
             "worker", wk, "used", used, "peak", peak, NULL);
    w->version = 0; /* worker_swap loads the current version before the next job */
}

/* A failing tick is logged when it starts failing and when it recovers, not every interval
 * (the interval paces the retries). Worker thread: a channel's jobs all run here. */
static void log_tick_outcome(lunnel_host *h, lunnel_host_channel *ch, const call_result *r)
{
    if (r->status != LUNNEL_HOST_OK && !ch->tick_failing) {
        ch->tick_failing = 1;
        host_log(h, LUNNEL_LOG_ERROR, "tick(ctx) failed (retried every --tick-interval)", "channel",
                 ch->channel_id, "error", r->error ? r->error : "", "traceback",
                 r->traceback ? r->traceback : "", NULL);
    } else if (r->status == LUNNEL_HOST_OK && ch->tick_failing) {
        ch->tick_failing = 0;
        host_log(h, LUNNEL_LOG_INFO, "tick(ctx) succeeds again", "channel", ch->channel_id, NULL);
    }
}

/* A failed batch goes to its dead_letter hook (host_queue.h) here, on the worker, while its
 * decoded records are valid and before its completion is posted: the tunnel side may count
 * it handled only once the hook's write is durable. */
static void set_aside(host_job *j, const lunnel_batch *records, const char *decode_error,
                      call_result *r)
{
    const lunnel_host_dead_letter *dl = j->batch.dead_letter;
    if (r->status == LUNNEL_HOST_OK || !dl) return;
    r->dead_lettered = dl->write(dl->ud, &j->batch, records, decode_error, r->error ? r->error : "",
                                 r->traceback ? r->traceback : "", r->dead_letter_error,
                                 sizeof r->dead_letter_error) == 0;
}

static void run_job(host_worker *w, host_job *j)
{
    lunnel_host *h = w->h;
    call_result r = {0};
    int64_t t0 = host_now_ns();
    lunnel_host_event ev = LUNNEL_HOST_EV_BATCH;
    void *user = NULL;
    if (!w->st.L) { /* a rebuild failed (logged): fail every call rather than crash */
        r.status = LUNNEL_HOST_ESYSTEM;
        r.error = strdup("this worker has no Lua state (its rebuild failed)");
        if (j->kind == JOB_BATCH) {
            user = j->batch.user;
            const lunnel_batch *view = NULL;
            char err[256], why[256];
            int bad = host_decode(w->arena, &j->batch, &view, err, sizeof err, why, sizeof why);
            set_aside(j, bad ? NULL : view, bad ? why : NULL, &r);
            lunnel_arena_reset(w->arena);
        }
        ev = j->kind == JOB_OPEN       ? LUNNEL_HOST_EV_OPENED
             : j->kind == JOB_SHUTDOWN ? LUNNEL_HOST_EV_CLOSED
             : j->kind == JOB_TICK     ? LUNNEL_HOST_EV_TICK
                                       : LUNNEL_HOST_EV_BATCH;
        post_done(h, ev, j->ch, user, &r, 0, w->version);
        free(r.error);
        return;
    }
    switch (j->kind) {
    case JOB_OPEN:
        ev = LUNNEL_HOST_EV_OPENED;
        set_busy(w, j->ch, NULL);
        state_open_channel(&w->st, j->ch, &r);
        j->ch->state_serial = w->st.serial;
        break;
    case JOB_SHUTDOWN:
        ev = LUNNEL_HOST_EV_CLOSED;
        set_busy(w, j->ch, NULL);
        state_shutdown_channel(&w->st, j->ch, &r);
        break;
    case JOB_TICK:
        ev = LUNNEL_HOST_EV_TICK;
        set_busy(w, j->ch, NULL);
        if (j->ch->state_serial != w->st.serial) break; /* no ctx here yet: nothing to tick */
        state_tick_channel(&w->st, j->ch, &r);
        log_tick_outcome(h, j->ch, &r);
        break;
    case JOB_BATCH: {
        user = j->batch.user;
        const lunnel_batch *view = NULL;
        char err[256], why[256];
        if (host_decode(w->arena, &j->batch, &view, err, sizeof err, why, sizeof why) != 0) {
            r.status = LUNNEL_HOST_EDECODE;
            r.error = strdup(err);
            set_aside(j, NULL, why, &r);
        } else {
            set_busy(w, j->ch, user);
            if (j->ch->state_serial != w->st.serial) {
                /* the channel's ctx lived in a state since replaced: open() it here first */
                state_open_channel(&w->st, j->ch, &r);
                j->ch->state_serial = w->st.serial;
            }
            if (r.status == LUNNEL_HOST_OK)
                state_process(&w->st, j->ch, view, j->batch.next_token, j->batch.trace_id, &r);
            set_aside(j, view, NULL, &r); /* while the decoded records are still valid */
        }
        lunnel_arena_reset(w->arena); /* every view of this batch is stale from here on */
        if (r.status == LUNNEL_HOST_OK)
            ATOMIC_INC(&h->batches_ok);
        else
            ATOMIC_INC(&h->batches_failed);
        if (r.status == LUNNEL_HOST_EMEMORY) ATOMIC_INC(&h->memory_errors);
        break;
    }
    }
    set_idle(w);
    double elapsed = (double)(host_now_ns() - t0) / 1e9;
    post_done(h, ev, j->ch, user, &r, elapsed, w->version);
    if (r.status == LUNNEL_HOST_EMEMORY && w->st.used > w->st.limit / 4 * 3) rebuild_state(w);
    free(r.error);
    free(r.traceback);
}

static void *worker_main(void *arg)
{
    host_worker *w = arg;
    lunnel_host *h = w->h;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->stop && !w->head && w->version == ATOMIC_LOAD(&h->gen))
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        host_job *j = w->head;
        if (j) {
            w->head = j->next;
            if (!w->head) w->tail = NULL;
        }
        pthread_mutex_unlock(&w->mu);
        /* the batch boundary: a validated new version takes effect before the next job */
        if (w->version != ATOMIC_LOAD(&h->gen)) worker_swap(w);
        if (j) {
            run_job(w, j);
            free((char *)j->batch.next_token);
            free((char *)j->batch.trace_id);
            free(j);
        }
    }
    return NULL;
}

static void push_job(host_worker *w, host_job *j)
{
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

host_worker *worker_create(lunnel_host *h, int index, int record, char *err, size_t cap)
{
    host_worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    w->h = h;
    w->index = index;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_mutex_init(&w->busy_mu, NULL);
    w->arena = lunnel_arena_new();
    if (!w->arena) {
        snprintf(err, cap, "out of memory");
        worker_destroy(w);
        return NULL;
    }
    pthread_mutex_lock(&h->script_mu);
    script_version *v = h->current;
    v->refs++;
    pthread_mutex_unlock(&h->script_mu);
    int rc = state_open(&w->st, h, index, h->memory_limit, err, cap);
    if (rc == 0) rc = state_load(&w->st, v, 1, record, err, cap);
    w->version = v->gen;
    w->hash = v->hash;
    script_unref(h, v);
    if (rc != 0) {
        worker_destroy(w);
        return NULL;
    }
    w->st.serial = __atomic_add_fetch(&h->state_serials, 1, __ATOMIC_RELAXED);
    return w;
}

int worker_start(host_worker *w)
{
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) return -1;
    w->started = 1;
    return 0;
}

/* Stops the worker thread (after its running job) and joins it. */
static void worker_stop(host_worker *w)
{
    if (!w->started) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->started = 0;
}

/* Stops the worker and frees it with its queued jobs. */
void worker_destroy(host_worker *w)
{
    worker_stop(w);
    host_job *j = w->head;
    while (j) {
        host_job *next = j->next;
        free((char *)j->batch.next_token);
        free((char *)j->batch.trace_id);
        free(j);
        j = next;
    }
    state_close(&w->st);
    if (w->arena) lunnel_arena_free(w->arena);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->busy_mu);
    free(w);
}

/* ---- ticks -------------------------------------------------------------------------- */

/* Loop thread: one tick job per open channel and interval, queued behind the channel's
 * batches (so "delivered so far" is exact) and never two at once for one channel. */
static void on_tick_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    lunnel_host *h = t->data;
    for (lunnel_host_channel *ch = h->channels; ch; ch = ch->next) {
        if (ch->shut || ch->tick_pending) continue;
        host_job *j = calloc(1, sizeof *j);
        if (!j) return; /* the next interval tries again */
        j->kind = JOB_TICK;
        j->ch = ch;
        ch->tick_pending = 1;
        push_job(ch->w, j);
    }
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static char *dupstr(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* cfg->lua_dir, else $LUNNEL_LUA_DIR, else "" (nothing prepended: LuaJIT's default
 * package.path, where an installed lunnel puts its modules, share/lua/5.1). */
static void default_lua_dir(char *out, size_t cap)
{
    const char *env = getenv("LUNNEL_LUA_DIR");
    snprintf(out, cap, "%s", env && *env ? env : "");
}

lunnel_host *lunnel_host_new(const lunnel_host_config *cfg, char *err, size_t cap)
{
    if (!cfg || !cfg->script_path || !cfg->loop || !cfg->on_done) {
        snprintf(err, cap, "host config needs script_path, loop and on_done");
        return NULL;
    }
    lunnel_host *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    h->cfg = *cfg;
    h->inotify_fd = h->wake_fd = -1;
    h->script_path = strdup(cfg->script_path);
    h->custom_json = dupstr(cfg->custom_json);
    char dir[4096];
    if (cfg->lua_dir)
        snprintf(dir, sizeof dir, "%s", cfg->lua_dir);
    else
        default_lua_dir(dir, sizeof dir);
    h->lua_dir = strdup(dir);
    const char *slash = strrchr(h->script_path, '/');
    h->script_dir = slash ? strndup(h->script_path,
                                    (size_t)(slash - h->script_path) + (slash == h->script_path))
                          : strdup(".");
    h->script_base = strdup(slash ? slash + 1 : h->script_path);
    size_t ud_len = strlen(h->script_dir) + (cfg->lua_path ? strlen(cfg->lua_path) : 0) + 2;
    h->user_dirs = malloc(ud_len);
    if (h->user_dirs)
        snprintf(h->user_dirs, ud_len, "%s;%s", h->script_dir, cfg->lua_path ? cfg->lua_path : "");
    h->cfg.lua_path = NULL; /* not kept: user_dirs holds it */
    h->cfg.script_path = h->script_path;
    h->cfg.custom_json = h->custom_json;
    h->cfg.lua_dir = h->lua_dir;
    h->loop = cfg->loop;
    pthread_mutex_init(&h->done_mu, NULL);
    pthread_mutex_init(&h->script_mu, NULL);
    pthread_mutex_init(&h->wd_mu, NULL);
    pthread_cond_init(&h->wd_cv, NULL);
    ev_async_init(&h->async, on_async);
    h->async.data = h;
    ev_async_start(h->loop, &h->async);
    ev_timer_init(&h->tick_timer, on_tick_timer, cfg->tick_interval_s, cfg->tick_interval_s);
    h->tick_timer.data = h;

    int n = cfg->workers;
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    if (n > LUNNEL_HOST_MAX_WORKERS) n = LUNNEL_HOST_MAX_WORKERS;
    h->n_workers = n;
    h->workers = calloc((size_t)n, sizeof *h->workers);
    h->memory_limit = cfg->memory_limit ? cfg->memory_limit : LUNNEL_HOST_DEFAULT_MEMORY_LIMIT;

    size_t len = 0;
    char *src = host_read_file(h->script_path, &len, err, cap);
    if (!src || !h->workers) goto fail;
    script_version *v = calloc(1, sizeof *v);
    if (!v) {
        free(src);
        goto fail;
    }
    v->gen = 1;
    v->source = src;
    v->len = len;
    v->hash = lunnel_host_hash(src, len);
    v->refs = 1;
    h->current = v;
    h->gen = h->acked_gen = 1;
    h->acked_hash = v->hash;

    /* States are built here, on the caller's thread, so a script that does not load is a
     * plain error return; each is then handed to its worker thread for good. */
    for (int i = 0; i < n; i++)
        /* the first worker's load records the user modules the script requires: they are
         * part of version 1, and every other worker loads exactly those bytes */
        if (!(h->workers[i] = worker_create(h, i, i == 0, err, cap))) goto fail;
    for (int i = 0; i < n; i++) {
        if (worker_start(h->workers[i]) != 0) {
            snprintf(err, cap, "cannot start worker thread: %s", strerror(errno));
            goto fail;
        }
    }
    if (cfg->process_timeout_s > 0) {
        if (pthread_create(&h->watchdog, NULL, watchdog_main, h) != 0) {
            snprintf(err, cap, "cannot start watchdog thread");
            goto fail;
        }
        h->watchdog_started = 1;
    }
    if (reload_start(h, err, cap) != 0) goto fail; /* inotify only when cfg->watch */
    if (cfg->tick_interval_s > 0) ev_timer_start(h->loop, &h->tick_timer);
    char nbuf[16];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    host_log(h, LUNNEL_LOG_INFO, "lua host started", "script", h->script_path, "workers", nbuf,
             "watch", cfg->watch ? "true" : "false", NULL);
    return h;
fail:
    lunnel_host_free(h);
    return NULL;
}

void lunnel_host_free(lunnel_host *h)
{
    if (!h) return;
    reload_stop(h);
    if (h->watchdog_started) {
        pthread_mutex_lock(&h->wd_mu);
        h->wd_stop = 1;
        pthread_cond_signal(&h->wd_cv);
        pthread_mutex_unlock(&h->wd_mu);
        pthread_join(h->watchdog, NULL);
    }
    /* all threads first: a worker's reload acknowledgement reads the other slots */
    for (int i = 0; h->workers && i < h->n_workers; i++)
        if (h->workers[i]) worker_stop(h->workers[i]);
    for (host_worker *w = h->retired; w; w = w->retired_next)
        worker_stop(w);
    for (int i = 0; h->workers && i < h->n_workers; i++)
        if (h->workers[i]) worker_destroy(h->workers[i]);
    while (h->retired) {
        host_worker *w = h->retired;
        h->retired = w->retired_next;
        worker_destroy(w);
    }
    ev_async_stop(h->loop, &h->async);
    ev_timer_stop(h->loop, &h->tick_timer);
    host_done *d = h->done_head;
    while (d) {
        host_done *next = d->next;
        free(d->error);
        free(d->traceback);
        free(d);
        d = next;
    }
    lunnel_host_channel *ch = h->channels;
    while (ch) {
        lunnel_host_channel *next = ch->next;
        free_channel(ch);
        ch = next;
    }
    script_version_free(h->current);
    free(h->workers);
    free(h->script_path);
    free(h->script_dir);
    free(h->script_base);
    free(h->custom_json);
    free(h->lua_dir);
    free(h->user_dirs);
    pthread_mutex_destroy(&h->done_mu);
    pthread_mutex_destroy(&h->script_mu);
    pthread_mutex_destroy(&h->wd_mu);
    pthread_cond_destroy(&h->wd_cv);
    free(h);
}

/* ---- channels and batches ----------------------------------------------------------- */

lunnel_host_channel *lunnel_host_channel_open(lunnel_host *h, const lunnel_host_channel_info *info)
{
    if (!h || !info) return NULL;
    lunnel_host_channel *ch = calloc(1, sizeof *ch);
    host_job *j = calloc(1, sizeof *j);
    if (!ch || !j) {
        free(ch);
        free(j);
        return NULL;
    }
    host_worker *best = h->workers[0];
    for (int i = 1; i < h->n_workers; i++)
        if (h->workers[i]->n_channels < best->n_channels) best = h->workers[i];
    ch->h = h;
    ch->w = best;
    ch->key = ++h->next_key;
    ch->user = info->user;
    ch->tunnel_id = dupstr(info->tunnel_id);
    ch->client_id = dupstr(info->client_id);
    ch->channel_id = dupstr(info->channel_id);
    ch->trace_id = dupstr(info->trace_id);
    ch->is_stream = info->is_stream;
    best->n_channels++;
    ch->next = h->channels;
    if (h->channels) h->channels->prev = ch;
    h->channels = ch;
    j->kind = JOB_OPEN;
    j->ch = ch;
    push_job(best, j);
    return ch;
}

const char *lunnel_host_channel_id(const lunnel_host_channel *ch)
{
    return ch ? ch->channel_id : NULL;
}

int lunnel_host_channel_worker(const lunnel_host_channel *ch)
{
    return ch ? ch->w->index : -1;
}

int lunnel_host_submit(lunnel_host_channel *ch, const lunnel_host_batch *b)
{
    if (!ch || !b || (!b->data && b->len)) return LUNNEL_HOST_EINVAL;
    if (b->kind == LUNNEL_HOST_PAYLOAD_RANGES && b->n_ranges && !b->ranges)
        return LUNNEL_HOST_EINVAL;
    if (ch->shut) return LUNNEL_HOST_ESTATE;
    host_job *j = calloc(1, sizeof *j);
    if (!j) return LUNNEL_HOST_ESYSTEM;
    j->kind = JOB_BATCH;
    j->ch = ch;
    j->batch = *b;
    j->batch.next_token = NULL;
    j->batch.trace_id = NULL;
    if ((b->next_token && !(j->batch.next_token = strdup(b->next_token))) ||
        (b->trace_id && !(j->batch.trace_id = strdup(b->trace_id)))) {
        free((char *)j->batch.next_token);
        free(j);
        return LUNNEL_HOST_ESYSTEM;
    }
    push_job(ch->w, j);
    return 0;
}

int lunnel_host_channel_shutdown(lunnel_host_channel *ch)
{
    if (!ch) return LUNNEL_HOST_EINVAL;
    if (ch->shut) return LUNNEL_HOST_ESTATE;
    host_job *j = calloc(1, sizeof *j);
    if (!j) return LUNNEL_HOST_ESYSTEM;
    ch->shut = 1;
    j->kind = JOB_SHUTDOWN;
    j->ch = ch;
    push_job(ch->w, j);
    return 0;
}

void lunnel_host_get_stats(lunnel_host *h, lunnel_host_stats *out)
{
    memset(out, 0, sizeof *out);
    out->workers = h->n_workers;
    pthread_mutex_lock(&h->script_mu);
    out->script_version = h->acked_gen;
    out->script_hash = h->acked_hash;
    pthread_mutex_unlock(&h->script_mu);
    out->reloads_ok = ATOMIC_LOAD(&h->reloads_ok);
    out->reloads_failed = ATOMIC_LOAD(&h->reloads_failed);
    out->batches_ok = ATOMIC_LOAD(&h->batches_ok);
    out->batches_failed = ATOMIC_LOAD(&h->batches_failed);
    out->timeouts = ATOMIC_LOAD(&h->timeouts);
    out->memory_errors = ATOMIC_LOAD(&h->memory_errors);
    out->state_rebuilds = ATOMIC_LOAD(&h->state_rebuilds);
    out->worker_replacements = ATOMIC_LOAD(&h->worker_replacements);
    out->stuck_calls =
        host_stuck_calls(h, &out->oldest_stuck_s, out->stuck_channel, sizeof out->stuck_channel);
}

size_t lunnel_host_worker_memory(lunnel_host *h, int worker)
{
    if (!h || worker < 0 || worker >= h->n_workers) return 0;
    pthread_mutex_lock(&h->script_mu);
    size_t used = __atomic_load_n(&h->workers[worker]->st.used, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&h->script_mu);
    return used;
}
