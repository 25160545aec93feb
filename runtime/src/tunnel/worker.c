/* worker.c: the client side of the Tunnel Service on the libev loop thread: Connect,
 * the heartbeat timer, the channel table (heartbeat contract: channel_table.c), the periodic
 * checkpoint timer, graceful drain and the daemon loop (on a lost client: stop every channel,
 * Shutdown, wait a random delay, Connect again with a new client id), the same duties as the
 * official TunnelWorker + TunnelWorkerDaemon. Lua never runs here (host.h): a slow script
 * cannot delay a heartbeat. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/log.h"
#include "lunnel/metrics.h"
#include "lunnel/retry.h"
#include "lunnel/timeutil.h"
#include "run_internal.h"

static void heartbeat_now(run_worker *w);
static void begin_reconnect(run_worker *w, const char *why);
static void check_drained(run_worker *w);
static void do_connect(run_worker *w);

static void finish(run_worker *w, int status)
{
    if (w->state == W_EXITED) return;
    w->state = W_EXITED;
    run_timer_stop(w, w->hb_timer);
    run_timer_stop(w, w->cp_timer);
    run_timer_stop(w, w->delay_timer);
    run_timer_stop(w, w->drain_timer);
    run_timer_stop(w, w->start_timer);
    char st[16], b[24], r[24], cp[24], hb[24], rc[24];
    snprintf(st, sizeof st, "%d", status);
    snprintf(b, sizeof b, "%llu", (unsigned long long)w->stats.batches);
    snprintf(r, sizeof r, "%llu", (unsigned long long)w->stats.records);
    snprintf(cp, sizeof cp, "%llu", (unsigned long long)w->stats.checkpoints);
    snprintf(hb, sizeof hb, "%llu", (unsigned long long)w->stats.heartbeats);
    snprintf(rc, sizeof rc, "%llu", (unsigned long long)w->stats.reconnects);
    lunnel_log_kv(LUNNEL_LOG_INFO, "worker", "worker stopped", "status", st, "batches", b,
                  "records", r, "checkpoints", cp, "heartbeats", hb, "reconnects", rc, NULL);
    if (w->cfg.on_exit) w->cfg.on_exit(w->cfg.ud, status);
}

/* Whether any channel is not done; stops at the first (check_drained runs per channel end:
 * a count would make a drain of n channels cost n^2). */
static int any_live_channel(const run_worker *w)
{
    for (run_channel *ch = w->channels; ch; ch = ch->next)
        if (ch->state != CH_DONE) return 1;
    return 0;
}

/* ---- timers ------------------------------------------------------------------------- */

static void hb_cb(void *ud)
{
    run_worker *w = ud;
    if (w->hb_inflight) {
        if (run_now(w) - w->last_hb_ok > w->cfg.heartbeat_timeout_s)
            begin_reconnect(w, "heartbeat timeout");
        return;
    }
    heartbeat_now(w);
}

static void cp_cb(void *ud)
{
    run_worker *w = ud;
    run_channel *next;
    for (run_channel *ch = w->channels; ch; ch = next) {
        next = ch->next;
        if (ch->state == CH_RUNNING) run_checkpoint_flush(ch);
    }
}

static void delay_cb(void *ud)
{
    run_worker *w = ud;
    if (w->state == W_RECONNECT_WAIT) do_connect(w);
}

static void drain_timeout_cb(void *ud)
{
    run_worker *w = ud;
    lunnel_log_kv(LUNNEL_LOG_ERROR, "worker", "drain timed out, exiting", NULL);
    w->drain_timed_out = 1;
    finish(w, w->outcome ? w->outcome : LUNNEL_OUTCOME_FAILED);
}

int lunnel_worker_drain_timed_out(const lunnel_worker *w)
{
    return w->drain_timed_out;
}

/* ---- connect ------------------------------------------------------------------------- */

static void reset_client(run_worker *w)
{
    /* a heartbeat of the old client still in flight would be stale: abandon it */
    run_call_cancel(w, &w->hb_call);
    free(w->hb_ctx);
    w->hb_ctx = NULL;
    free(w->client_id);
    w->client_id = NULL;
    lunnel_chtable_free(&w->table);
    lunnel_chtable_init(&w->table);
    w->hb_inflight = 0;
}

/* The delay before the next Connect: random in [0, --reconnect-delay-max) like the official
 * daemon (a fleet must not reconnect in lockstep), and when the client fails again without a
 * healthy run in between (Connect refused, a Heartbeat unparseable every time), at least the
 * failure pacing's 1 s doubling to 60 s. */
static double reconnect_delay(run_worker *w)
{
    double max = w->cfg.reconnect_delay_max_s;
    double d = max > 0 ? max * run_rand01(w) : 0;
    double now = run_now(w);
    double healthy_ms = w->connected_at > 0 ? (now - w->connected_at) * 1000.0 : 0;
    double paced = lunnel_pace_fail(&w->reconnect_pace, healthy_ms, run_rand01(w));
    w->connected_at = 0;
    if (w->reconnect_pace.step > 1 && paced / 1000.0 > d) d = paced / 1000.0;
    return d;
}

static void schedule_reconnect(run_worker *w)
{
    reset_client(w);
    w->state = W_RECONNECT_WAIT;
    double d = reconnect_delay(w);
    char s[32];
    snprintf(s, sizeof s, "%.3f", d);
    lunnel_log_kv(LUNNEL_LOG_INFO, "worker", "reconnecting", "delay_s", s, NULL);
    w->stats.reconnects++;
    run_timer_start(w, w->delay_timer, d, 0.);
}

static void on_connect(void *ud, const lunnel_error *err, const char *client_id)
{
    run_worker *w = ud;
    w->connect_call = NULL;
    if (w->state != W_CONNECTING) return;
    if (err) {
        char line[1024];
        lunnel_error_format(err, line, sizeof line);
        lunnel_error_class cls = lunnel_error_classify(err, LUNNEL_SCOPE_CLIENT);
        if (err->kind == LUNNEL_NET_CANCELLED) return;
        lunnel_metrics_api_error(w->cfg.metrics, err);
        if (cls == LUNNEL_ERRCLASS_FATAL) {
            lunnel_log_kv(LUNNEL_LOG_ERROR, "worker", "connect failed", "error", line, NULL);
            run_set_exit_reason(w, "connect", err);
            finish(w, lunnel_error_outcome(err));
            return;
        }
        if (!w->ever_connected && lunnel_error_not_tablestore(err)) {
            /* the very first answer is not Tablestore's: a wrong endpoint, not an outage */
            lunnel_log_kv(LUNNEL_LOG_ERROR, "worker", "the endpoint does not look like Tablestore",
                          "error", line, NULL);
            snprintf(w->exit_reason, sizeof w->exit_reason,
                     "the endpoint does not look like Tablestore (no OTS error body): %s", line);
            finish(w, LUNNEL_OUTCOME_FAILED);
            return;
        }
        if (run_connect_give_up(w, line)) return;
        lunnel_log_kv(LUNNEL_LOG_WARN, "worker", "connect failed, will retry", "error", line, NULL);
        schedule_reconnect(w);
        return;
    }
    w->connect_failing_since = 0;
    w->ever_connected = 1;
    w->connected_at = run_now(w);
    w->client_id = strdup(client_id);
    w->state = W_RUNNING;
    w->last_hb_ok = run_now(w);
    lunnel_log_kv(LUNNEL_LOG_INFO, "worker", "connected", "tunnel_id", w->tunnel_id, "client_id",
                  w->client_id, NULL);
    run_timer_start(w, w->hb_timer, w->cfg.heartbeat_interval_s, w->cfg.heartbeat_interval_s);
    run_timer_start(w, w->cp_timer, w->cfg.checkpoint_interval_s, w->cfg.checkpoint_interval_s);
    heartbeat_now(w);
}

static void do_connect(run_worker *w)
{
    w->state = W_CONNECTING;
    w->generation++;
    int64_t timeout = (int64_t)ceil(w->cfg.heartbeat_timeout_s);
    if (timeout < 1) timeout = 1;
    w->connect_call =
        w->calls.connect(w->calls.impl, w->tunnel_id, timeout, w->client_tag, on_connect, w);
    if (!w->connect_call) {
        lunnel_error e = run_unsent_error("/tunnel/connect");
        on_connect(w, &e, NULL);
    }
}

/* ---- heartbeat ----------------------------------------------------------------------- */

typedef struct hb_ctx {
    run_worker *w;
    int generation;
} hb_ctx;

typedef struct decline_list {
    lunnel_channel_view v[64];
    size_t n;
} decline_list;

/* One line per channel decision for the first MERGE_LOG_LINES of a heartbeat, then one
 * summary: a heartbeat of 50,000 new channels must not write 50,000 lines (log volume is
 * bounded, and writing them blocked the loop for seconds). */
#define MERGE_LOG_LINES 32
/* Channels started per loop turn: a heartbeat adding 50,000 channels is started in slices
 * (start_timer), so signals and heartbeats are served between them. */
#define STARTS_PER_TURN 512

typedef struct merge_ctx {
    run_worker *w;
    decline_list declines;
    size_t decisions;
    size_t by_action[8];
    size_t starts;
} merge_ctx;

static void on_merge(void *ud, lunnel_merge_action a, lunnel_chtable_entry *e,
                     const lunnel_channel_view *s)
{
    merge_ctx *m = ud;
    run_worker *w = m->w;
    if (m->decisions++ < MERGE_LOG_LINES) {
        char ver[24];
        snprintf(ver, sizeof ver, "%lld", (long long)(s ? s->version : e->view.version));
        lunnel_log_kv(LUNNEL_LOG_INFO, "worker", "channel update", "channel",
                      e ? e->view.id : s->id, "action", lunnel_merge_action_str(a), "status",
                      s ? lunnel_channel_status_str(s->status) : "missing", "version", ver, NULL);
    } else if ((unsigned)a < sizeof m->by_action / sizeof m->by_action[0]) {
        m->by_action[a]++;
    }
    run_channel *owner = e ? e->owner : NULL;
    switch (a) {
    case LUNNEL_MERGE_START: {
        if (w->state != W_RUNNING) {
            /* draining: hold it at its view; Shutdown hands it back */
            return;
        }
        run_channel *ch = run_channel_new(w, e->view.id, e->view.version);
        if (!ch) {
            e->view.version++;
            e->view.status = LUNNEL_CHANNEL_CLOSE;
            return;
        }
        e->owner = ch;
        if (m->starts++ < STARTS_PER_TURN)
            run_channel_start(ch);
        else if (!run_timer_active(w, w->start_timer)) /* the rest: later turns (CH_QUEUED) */
            run_timer_start(w, w->start_timer, 0., 0.);
        return;
    }
    case LUNNEL_MERGE_DECLINE:
        if (m->declines.n < sizeof m->declines.v / sizeof m->declines.v[0])
            m->declines.v[m->declines.n++] =
                (lunnel_channel_view){s->id, s->version + 1, LUNNEL_CHANNEL_CLOSE};
        return;
    case LUNNEL_MERGE_DRAIN:
        if (owner) {
            run_channel_stop(owner, END_CLOSE);
        } else {
            e->view.version++;
            e->view.status = LUNNEL_CHANNEL_CLOSE;
        }
        return;
    case LUNNEL_MERGE_STOP:
        if (owner) {
            e->owner = NULL; /* the entry goes; the object winds down on its own */
            run_channel_stop(owner, END_SILENT);
        }
        return;
    case LUNNEL_MERGE_ADOPT:
    case LUNNEL_MERGE_NONE:
        return;
    }
}

/* The next slice of channels a merge left queued (see STARTS_PER_TURN). */
static void start_more_cb(void *ud)
{
    run_worker *w = ud;
    if (w->state != W_RUNNING) return; /* queued channels are ended by the drain */
    int started = 0, more = 0;
    run_channel *next;
    for (run_channel *ch = w->channels; ch; ch = next) {
        next = ch->next;
        if (ch->state != CH_QUEUED) continue;
        if (started >= STARTS_PER_TURN) {
            more = 1;
            break;
        }
        if (w->cfg.max_channels > 0 && w->running >= w->cfg.max_channels)
            break; /* the rest start as slots free (run_worker_slot_freed) */
        run_channel_start(ch);
        started++;
    }
    if (more) run_timer_start(w, w->start_timer, 0., 0.);
}

static void exit_when_done_check(run_worker *w);

static void on_heartbeat(void *ud, const lunnel_error *err, const lunnel_channel_view *v, size_t n)
{
    hb_ctx *ctx = ud;
    run_worker *w = ctx->w;
    int stale = ctx->generation != w->generation;
    if (w->hb_ctx == ctx) {
        w->hb_call = NULL;
        w->hb_ctx = NULL;
    }
    free(ctx);
    if (stale || !w->client_id) return;
    w->hb_inflight = 0;
    if (w->state != W_RUNNING && w->state != W_DRAINING) return;
    if (err) {
        char line[1024];
        lunnel_error_format(err, line, sizeof line);
        lunnel_error_class cls = lunnel_error_classify(err, LUNNEL_SCOPE_CLIENT);
        lunnel_log_kv(LUNNEL_LOG_WARN, "worker", "heartbeat failed", "error", line, "class",
                      lunnel_error_class_str(cls), NULL);
        lunnel_metrics_api_error(w->cfg.metrics, err);
        if (cls == LUNNEL_ERRCLASS_FATAL) {
            run_worker_fatal(w, err, "heartbeat");
        } else if (cls == LUNNEL_ERRCLASS_RECONNECT ||
                   run_now(w) - w->last_hb_ok > w->cfg.heartbeat_timeout_s) {
            begin_reconnect(w, "client lost");
        }
        return;
    }
    w->last_hb_ok = run_now(w);
    w->stats.heartbeats++;
    merge_ctx m = {.w = w};
    double t0 = lunnel_time_mono_ms();
    if (lunnel_chtable_merge(&w->table, v, n, on_merge, &m) != 0)
        lunnel_log_kv(LUNNEL_LOG_ERROR, "worker", "out of memory merging channels", NULL);
    double merge_ms = lunnel_time_mono_ms() - t0;
    if (m.decisions > MERGE_LOG_LINES) {
        char st[24], sp[24], dr[24], de[24], ad[24];
        snprintf(st, sizeof st, "%zu", m.by_action[LUNNEL_MERGE_START]);
        snprintf(sp, sizeof sp, "%zu", m.by_action[LUNNEL_MERGE_STOP]);
        snprintf(dr, sizeof dr, "%zu", m.by_action[LUNNEL_MERGE_DRAIN]);
        snprintf(de, sizeof de, "%zu", m.by_action[LUNNEL_MERGE_DECLINE]);
        snprintf(ad, sizeof ad, "%zu", m.by_action[LUNNEL_MERGE_ADOPT]);
        lunnel_log_kv(LUNNEL_LOG_INFO, "worker", "channel updates not logged one by one", "start",
                      st, "stop", sp, "drain", dr, "decline", de, "adopt", ad, NULL);
    }
    if (n >= 1000 || merge_ms >= 50) { /* big tables: the merge's cost, visible */
        char cn[24], ms[32];
        snprintf(cn, sizeof cn, "%zu", n);
        snprintf(ms, sizeof ms, "%.1f", merge_ms);
        lunnel_log_kv(LUNNEL_LOG_INFO, "worker", "heartbeat merged", "channels", cn, "ms", ms,
                      NULL);
    }
    for (size_t i = 0; i < m.declines.n; i++) {
        lunnel_chtable_entry *e = lunnel_chtable_add(&w->table, &m.declines.v[i]);
        (void)e;
    }
    if (w->state == W_DRAINING)
        check_drained(w);
    else
        exit_when_done_check(w);
    if (w->hb_again && w->state == W_RUNNING) {
        w->hb_again = 0;
        heartbeat_now(w);
    }
}

static void heartbeat_now(run_worker *w)
{
    if (w->hb_inflight || !w->client_id) return;
    hb_ctx *ctx = malloc(sizeof *ctx);
    lunnel_channel_view *views = malloc((w->table.n + 1) * sizeof *views);
    if (!ctx || !views) {
        free(ctx);
        free(views);
        return;
    }
    for (size_t i = 0; i < w->table.n; i++)
        views[i] = w->table.entries[i].view;
    ctx->w = w;
    ctx->generation = w->generation;
    w->hb_inflight = 1;
    w->hb_call = w->calls.heartbeat(w->calls.impl, w->tunnel_id, w->client_id, views, w->table.n,
                                    on_heartbeat, ctx);
    free(views); /* the call encodes the request before returning */
    if (w->hb_call) {
        w->hb_ctx = ctx;
    } else {
        lunnel_error e = run_unsent_error("/tunnel/heartbeat");
        on_heartbeat(ctx, &e, NULL, 0);
    }
}

/* ---- exit when done -------------------------------------------------------------------- */

static void on_describe(void *ud, const lunnel_error *err, int n_channels, int n_terminated)
{
    run_worker *w = ud;
    w->describe_call = NULL;
    w->describe_inflight = 0;
    if (w->state != W_RUNNING) return;
    if (err) {
        char line[1024];
        lunnel_error_format(err, line, sizeof line);
        lunnel_log_kv(LUNNEL_LOG_WARN, "worker", "describe tunnel failed", "error", line, NULL);
        return;
    }
    lunnel_metrics_tunnel_counts(w->cfg.metrics, n_channels, n_terminated);
    if (n_channels > 0 && n_terminated == n_channels) {
        lunnel_log_kv(LUNNEL_LOG_INFO, "worker", "every channel is TERMINATED, exiting", NULL);
        w->outcome = 0;
        lunnel_worker_stop(w);
    }
}

static void exit_when_done_check(run_worker *w)
{
    if (!w->cfg.exit_when_done || w->describe_inflight || w->state != W_RUNNING) return;
    if (any_live_channel(w)) return;
    w->describe_inflight = 1;
    w->describe_call = w->calls.describe(w->calls.impl, w->table_name, w->tunnel_name, w->tunnel_id,
                                         on_describe, w);
    if (!w->describe_call) {
        lunnel_error e = run_unsent_error("/tunnel/describe");
        on_describe(w, &e, 0, 0);
    }
}

/* ---- stopping -------------------------------------------------------------------------- */

static void on_shutdown(void *ud, const lunnel_error *err)
{
    run_worker *w = ud;
    w->shutdown_call = NULL;
    if (err) {
        char line[1024];
        lunnel_error_format(err, line, sizeof line);
        lunnel_log_kv(LUNNEL_LOG_WARN, "worker", "shutdown call failed", "error", line, NULL);
    }
    if (w->state == W_SHUTDOWN)
        finish(w, w->outcome);
    else if (w->state == W_RECONNECT_DRAIN)
        schedule_reconnect(w);
}

static void stop_all_channels(run_worker *w, ch_end end)
{
    run_channel *next;
    for (run_channel *ch = w->channels; ch; ch = next) {
        next = ch->next;
        run_channel_stop(ch, end);
    }
}

/* Sends Shutdown for the current client; on_shutdown takes the next step. One call at a time:
 * a stop during a reconnect's Shutdown waits for that one (its answer ends the drain). */
static void send_shutdown(run_worker *w)
{
    if (w->shutdown_call) return;
    w->shutdown_call = w->calls.shutdown(w->calls.impl, w->tunnel_id, w->client_id, on_shutdown, w);
    if (!w->shutdown_call) {
        lunnel_error e = run_unsent_error("/tunnel/shutdown");
        on_shutdown(w, &e);
    }
}

/* All channel objects are done: the next step of a drain or a reconnect. */
static void check_drained(run_worker *w)
{
    if (any_live_channel(w)) return;
    if (w->state == W_DRAINING) {
        w->state = W_SHUTDOWN;
        run_timer_stop(w, w->hb_timer);
        run_timer_stop(w, w->cp_timer);
        if (w->client_id)
            send_shutdown(w);
        else
            finish(w, w->outcome);
    } else if (w->state == W_RECONNECT_DRAIN) {
        if (w->client_id) {
            w->generation++; /* the old client's heartbeat answers are stale from here */
            send_shutdown(w);
        } else {
            schedule_reconnect(w);
        }
    }
}

static void begin_reconnect(run_worker *w, const char *why)
{
    if (w->state != W_RUNNING) return;
    lunnel_log_kv(LUNNEL_LOG_WARN, "worker", "client lost, stopping channels", "reason", why, NULL);
    w->state = W_RECONNECT_DRAIN;
    run_timer_stop(w, w->hb_timer);
    run_timer_stop(w, w->cp_timer);
    stop_all_channels(w, END_CLOSE);
    check_drained(w);
}

void run_worker_fatal(run_worker *w, const lunnel_error *err, const char *what)
{
    if (err->kind == LUNNEL_NET_CANCELLED)
        return; /* the client is being torn down at exit: not the service's verdict */
    char line[1024];
    lunnel_error_format(err, line, sizeof line);
    lunnel_log_kv(LUNNEL_LOG_ERROR, "worker", "fatal error, stopping", "call", what, "error", line,
                  NULL);
    run_set_exit_reason(w, what, err);
    if (w->outcome == 0) w->outcome = lunnel_error_outcome(err);
    if (w->outcome == 0) w->outcome = LUNNEL_OUTCOME_FAILED;
    lunnel_worker_stop(w);
}

void run_worker_channel_ended(run_worker *w, run_channel *ch)
{
    if (ch->has_slot) {
        ch->has_slot = 0;
        w->running--;
    }
    lunnel_chtable_entry *e = lunnel_chtable_find(&w->table, ch->id);
    if (e && e->owner == ch) {
        e->owner = NULL;
        if (ch->end != END_SILENT) {
            e->view.version++;
            e->view.status =
                ch->end == END_TERMINATED ? LUNNEL_CHANNEL_TERMINATED : LUNNEL_CHANNEL_CLOSE;
            char ver[24];
            snprintf(ver, sizeof ver, "%lld", (long long)e->view.version);
            lunnel_log_kv(LUNNEL_LOG_INFO, "worker", "channel reported", "channel", ch->id,
                          "status", lunnel_channel_status_str(e->view.status), "version", ver,
                          NULL);
            /* Report the end now rather than at the next tick: stage changes, handoffs and
             * --exit-when-done then take one round trip instead of a heartbeat interval. */
            if (w->state == W_RUNNING) {
                if (w->hb_inflight)
                    w->hb_again = 1;
                else
                    heartbeat_now(w);
            }
        }
    }
    run_worker_slot_freed(w);
    if (w->state == W_DRAINING || w->state == W_RECONNECT_DRAIN) check_drained(w);
}

void run_worker_slot_freed(run_worker *w)
{
    /* channels wait (CH_QUEUED) only under --max-channels: without it, no scan per end */
    if (w->state != W_RUNNING || w->cfg.max_channels <= 0) return;
    run_channel *next;
    for (run_channel *ch = w->channels; ch; ch = next) {
        next = ch->next;
        if (ch->state == CH_QUEUED) run_channel_start(ch);
    }
}

void run_worker_budget_freed(run_worker *w)
{
    if (!w->budget_waiters) /* nobody waits: no scan per finished batch */
        return;
    w->budget_waiters = 0; /* set again by the pumps that still wait */
    run_channel *next;
    for (run_channel *ch = w->channels; ch; ch = next) {
        next = ch->next;
        if (ch->rd == RD_BUDGET) run_channel_pump(ch);
    }
}

/* ---- public ---------------------------------------------------------------------------- */

static double default_rand01(void *ud)
{
    (void)ud;
    return lunnel_retry_rand01();
}

lunnel_error run_unsent_error(const char *path)
{
    lunnel_error e;
    lunnel_error_clear(&e);
    lunnel_error_set(&e, LUNNEL_NET_NOMEM, "out of memory sending %s", path);
    return e;
}

static void free_worker_timers(run_worker *w)
{
    w->clock.timer_free(w->clock.impl, w->hb_timer);
    w->clock.timer_free(w->clock.impl, w->cp_timer);
    w->clock.timer_free(w->clock.impl, w->delay_timer);
    w->clock.timer_free(w->clock.impl, w->drain_timer);
    w->clock.timer_free(w->clock.impl, w->start_timer);
}

lunnel_worker *lunnel_worker_new(const lunnel_worker_config *cfg)
{
    if ((!cfg->calls && !cfg->api) || (!cfg->clock && !cfg->loop)) return NULL;
    run_worker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->cfg = *cfg;
    if (!w->cfg.rand01) w->cfg.rand01 = default_rand01;
    w->calls = cfg->calls ? *cfg->calls : lunnel_worker_calls_api(cfg->api);
    w->clock = cfg->clock ? *cfg->clock : lunnel_worker_clock_ev(cfg->loop);
    w->tunnel_id = strdup(cfg->tunnel_id);
    w->table_name = cfg->table_name ? strdup(cfg->table_name) : NULL;
    w->tunnel_name = cfg->tunnel_name ? strdup(cfg->tunnel_name) : NULL;
    w->client_tag = cfg->client_tag ? strdup(cfg->client_tag) : NULL;
    w->hb_timer = w->clock.timer_new(w->clock.impl, hb_cb, w);
    w->cp_timer = w->clock.timer_new(w->clock.impl, cp_cb, w);
    w->delay_timer = w->clock.timer_new(w->clock.impl, delay_cb, w);
    w->drain_timer = w->clock.timer_new(w->clock.impl, drain_timeout_cb, w);
    w->start_timer = w->clock.timer_new(w->clock.impl, start_more_cb, w);
    if (!w->tunnel_id || !w->hb_timer || !w->cp_timer || !w->delay_timer || !w->drain_timer ||
        !w->start_timer) {
        free_worker_timers(w);
        free(w->tunnel_id);
        free(w->table_name);
        free(w->tunnel_name);
        free(w->client_tag);
        free(w);
        return NULL;
    }
    lunnel_chtable_init(&w->table);
    lunnel_rr_init(&w->rr);
    lunnel_pace_init(&w->reconnect_pace, LUNNEL_PACE_BASE_MS, LUNNEL_PACE_MAX_MS);
    w->dead_letter = cfg->dead_letter;
    return w;
}

void lunnel_worker_start(lunnel_worker *lw)
{
    run_worker *w = lw;
    if (w->state == W_IDLE) do_connect(w);
}

void lunnel_worker_stop(lunnel_worker *lw)
{
    run_worker *w = lw;
    switch (w->state) {
    case W_IDLE:
    case W_CONNECTING:
    case W_RECONNECT_WAIT:
        w->state = W_DRAINING;
        finish(w, w->outcome);
        return;
    case W_RUNNING:
    case W_RECONNECT_DRAIN:
        lunnel_log_kv(LUNNEL_LOG_INFO, "worker", "draining: finishing in-flight batches", NULL);
        w->state = W_DRAINING;
        if (w->cfg.drain_timeout_s > 0)
            run_timer_start(w, w->drain_timer, w->cfg.drain_timeout_s, 0.);
        stop_all_channels(w, END_CLOSE);
        check_drained(w);
        return;
    case W_DRAINING:
    case W_SHUTDOWN:
    case W_EXITED:
        return;
    }
}

void lunnel_worker_on_done(lunnel_worker *lw, const lunnel_host_completion *c)
{
    (void)lw;
    run_channel *ch = c->channel_user;
    if (ch) run_channel_on_done(ch, c);
}

void lunnel_worker_get_stats(const lunnel_worker *lw, lunnel_worker_stats *out)
{
    const run_worker *w = lw;
    *out = w->stats;
    out->channels_open = w->running;
    out->inflight_bytes = w->inflight_bytes;
}

void lunnel_worker_free(lunnel_worker *lw)
{
    run_worker *w = lw;
    if (!w) return;
    free_worker_timers(w);
    /* Calls in flight are cancelled (their callbacks never run), so every channel object
     * can go, whatever it was waiting for. */
    run_call_cancel(w, &w->connect_call);
    run_call_cancel(w, &w->hb_call);
    free(w->hb_ctx);
    run_call_cancel(w, &w->describe_call);
    run_call_cancel(w, &w->shutdown_call);
    run_channel *next;
    for (run_channel *ch = w->channels; ch; ch = next) {
        next = ch->next;
        run_call_cancel(w, &ch->getcp_call);
        run_call_cancel(w, &ch->read_call);
        run_checkpoint_cancel(ch);
        if (ch->on_host) run_batch_free(ch->on_host); /* the host is gone: never completed */
        run_channel_destroy(ch);
    }
    lunnel_chtable_free(&w->table);
    lunnel_rr_free(&w->rr);
    run_policy_worker_free(w);
    run_pace_free(w);
    free(w->client_id);
    free(w->tunnel_id);
    free(w->table_name);
    free(w->tunnel_name);
    free(w->client_tag);
    free(w);
}

const char *lunnel_worker_exit_reason(const lunnel_worker *lw)
{
    return lw->exit_reason;
}

void run_worker_finish(run_worker *w, int status)
{
    finish(w, status);
}
