/* channel.c: the read pipeline of one channel on the loop thread (DESIGN.md "Data flow").
 *
 *   GetCheckpoint -> open(ctx) on the host -> ReadRecords(token) -> scan the response ->
 *   submit the batch to the host -> next read (prefetch: up to 1 + --prefetch batches read or
 *   processing at once, and only while the global --max-inflight-bytes budget has room) ->
 *   stream channels back off after a non-full batch (backoff.c), base channels never do.
 *
 * The object is an explicit state machine: a lifecycle (ch_state: queued, getcheckpoint,
 * opening, running, draining, closing, done), a read side (ch_read: idle, reading, backoff,
 * waiting for budget, finished) and a checkpoint side (ch_cp, checkpointer.c: idle, in
 * flight, resync, failed). Nothing is read, so no batch reaches process(), before open(ctx)
 * succeeded on the host (EV_OPENED ok moves opening -> running). Every persistent failure
 * goes through run_channel_fail() (a paced reopen, channel_pace.c) and every stop through
 * run_channel_stop() -> check_drain(): the one teardown path.
 *
 * A read returning `finished` ends the channel: once its batches are handled and the token
 * `finished` is checkpointed, shutdown(ctx) runs and the next heartbeat reports TERMINATED.
 * A stop (server CLOSING, a channel-scoped error, graceful drain) stops reading, lets
 * submitted batches finish, flushes the checkpoint, runs shutdown(ctx) and reports CLOSE; a
 * channel the server dropped is stopped the same way but without a checkpoint (we are no
 * longer its owner). The object lives until its last API call has called back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/log.h"
#include "lunnel/metrics.h"
#include "lunnel/retry.h"
#include "run_internal.h"

/* What a read reserves of --max-inflight-bytes before any response was seen. */
#define READ_RESERVE_MIN ((size_t)256 << 10)

static const char *state_name(ch_state s)
{
    switch (s) {
    case CH_QUEUED:
        return "queued";
    case CH_GETCP:
        return "getcheckpoint";
    case CH_OPENING:
        return "opening";
    case CH_RUNNING:
        return "running";
    case CH_DRAINING:
        return "draining";
    case CH_CLOSING:
        return "closing";
    case CH_DONE:
        return "done";
    }
    return "?";
}

static const char *end_name(ch_end e)
{
    switch (e) {
    case END_NONE:
        return "none";
    case END_CLOSE:
        return "close";
    case END_TERMINATED:
        return "terminated";
    case END_SILENT:
        return "dropped";
    }
    return "?";
}

/* One log line per state change (the "one line per channel state change"). */
static void set_state(run_channel *ch, ch_state s)
{
    if (ch->state == s) return;
    char ver[24];
    snprintf(ver, sizeof ver, "%lld", (long long)ch->version);
    lunnel_log_kv(s == CH_RUNNING || s == CH_DONE || s == CH_DRAINING ? LUNNEL_LOG_INFO
                                                                      : LUNNEL_LOG_DEBUG,
                  "channel", "channel state", "channel", ch->id, "from", state_name(ch->state),
                  "to", state_name(s), "end", end_name(ch->end), "version", ver, NULL);
    ch->state = s;
}

static const char *read_name(ch_read r)
{
    switch (r) {
    case RD_IDLE:
        return "idle";
    case RD_READING:
        return "reading";
    case RD_BACKOFF:
        return "backoff";
    case RD_BUDGET:
        return "waiting-for-budget";
    case RD_FINISHED:
        return "finished";
    }
    return "?";
}

static void set_read(run_channel *ch, ch_read r)
{
    if (ch->rd == r || (ch->rd == RD_FINISHED && r != RD_FINISHED))
        return; /* finished is final for the object */
    if (r == RD_FINISHED || r == RD_BACKOFF || ch->rd == RD_BACKOFF) {
        lunnel_log_kv(LUNNEL_LOG_DEBUG, "channel", "channel read state", "channel", ch->id, "from",
                      read_name(ch->rd), "to", read_name(r), NULL);
    }
    ch->rd = r;
}

/* The one timer of the read side: a stream channel's idle wait while running, or the
 * failure backoff before the first GetCheckpoint while queued. */
static void backoff_cb(void *ud)
{
    run_channel *ch = ud;
    if (ch->rd == RD_BACKOFF) set_read(ch, RD_IDLE);
    if (ch->state == CH_QUEUED)
        run_channel_start(ch);
    else
        run_channel_pump(ch);
}

run_channel *run_channel_new(run_worker *w, const char *id, int64_t version)
{
    run_channel *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    ch->id = strdup(id);
    if (!ch->id) {
        free(ch);
        return NULL;
    }
    ch->w = w;
    ch->version = version;
    ch->state = CH_QUEUED;
    /* PROTOCOL.md 3: base-data channel ids start with BaseData_; everything else streams. */
    ch->is_stream = strncmp(id, "BaseData_", 9) != 0;
    lunnel_backoff_init(&ch->backoff, w->cfg.max_backoff_s * 1000.0);
    ch->backoff_timer = w->clock.timer_new(w->clock.impl, backoff_cb, ch);
    if (!ch->backoff_timer || run_policy_channel_init(ch) != 0) {
        w->clock.timer_free(w->clock.impl, ch->backoff_timer);
        free(ch->id);
        free(ch);
        return NULL;
    }
    ch->mx = lunnel_metrics_channel_get(w->cfg.metrics, id); /* NULL: metrics off */
    lunnel_cptrack_init(&ch->cp, 0);
    ch->next = w->channels;
    if (w->channels) w->channels->prev = ch;
    w->channels = ch;
    return ch;
}

int run_channel_active(const run_channel *ch)
{
    return ch->state != CH_QUEUED && ch->state != CH_DONE;
}

void run_batch_free(run_batch *b)
{
    free(b->body);
    free(b->ranges);
    free(b->next_token);
    free(b->trace_id);
    free(b);
}

void run_channel_release(run_channel *ch)
{
    ch->calls--;
    run_channel_maybe_free(ch);
}

void run_channel_maybe_free(run_channel *ch)
{
    if (ch->state != CH_DONE || ch->calls > 0 || ch->host_ch || ch->submitted > 0) return;
    run_worker *w = ch->w;
    if (ch->prev)
        ch->prev->next = ch->next;
    else
        w->channels = ch->next;
    if (ch->next) ch->next->prev = ch->prev;
    run_channel_destroy(ch);
}

void run_channel_destroy(run_channel *ch)
{
    run_worker *w = ch->w;
    w->clock.timer_free(w->clock.impl, ch->backoff_timer);
    run_policy_channel_free(ch);
    lunnel_cptrack_free(&ch->cp);
    free(ch->token);
    free(ch->id);
    free(ch);
}

static void check_drain(run_channel *ch);

static void getcheckpoint_result(run_channel *ch, const lunnel_error *err, const char *token,
                                 int64_t seq);

/* The object stays alive while a callback works on it: `calls` drops at the very end. */
static void on_getcheckpoint(void *ud, const lunnel_error *err, const char *token, int64_t seq)
{
    run_channel *ch = ud;
    ch->getcp_call = NULL;
    if (ch->state == CH_GETCP) getcheckpoint_result(ch, err, token, seq);
    run_channel_release(ch);
}

static void getcheckpoint_result(run_channel *ch, const lunnel_error *err, const char *token,
                                 int64_t seq)
{
    run_worker *w = ch->w;
    if (err) {
        lunnel_error_class cls = lunnel_error_classify(err, LUNNEL_SCOPE_CHANNEL);
        lunnel_metrics_channel_api_error(ch->mx, err);
        if (cls == LUNNEL_ERRCLASS_FATAL) {
            run_worker_fatal(w, err, "get checkpoint");
            return;
        }
        char line[1024];
        lunnel_error_format(err, line, sizeof line);
        ch->cps = CP_FAILED; /* nothing read, nothing to checkpoint */
        run_channel_fail(ch, "get checkpoint", line);
        return;
    }
    lunnel_cptrack_free(&ch->cp);
    lunnel_cptrack_init(&ch->cp, seq + 1);
    ch->cp.checkpointed = strdup(token); /* what the service holds: nothing to re-send */
    free(ch->token);
    ch->token = strdup(token);
    if (!ch->token || !ch->cp.checkpointed) {
        ch->cps = CP_FAILED;
        run_channel_fail(ch, "get checkpoint", "out of memory");
        return;
    }
    if (strcmp(token, FINISH_TOKEN) == 0) set_read(ch, RD_FINISHED);
    lunnel_host_channel_info info = {
        .tunnel_id = w->tunnel_id,
        .client_id = w->client_id,
        .channel_id = ch->id,
        .trace_id = NULL,
        .is_stream = ch->is_stream,
        .user = ch,
    };
    set_state(ch, CH_OPENING);
    ch->host_ch = w->cfg.proc.open(w->cfg.proc.ud, &info);
    if (!ch->host_ch) {
        run_channel_fail(ch, "open(ctx)", "the processor refused the channel");
        return;
    }
    /* reading starts when open(ctx) succeeded: host_done(EV_OPENED) -> opened() */
}

/* open(ctx) succeeded on the host: the channel may read and process. */
static void opened(run_channel *ch)
{
    set_state(ch, CH_RUNNING);
    ch->running_since = run_now(ch->w);
    if (ch->rd == RD_FINISHED) { /* consumed earlier: open + shutdown, then TERMINATED */
        run_channel_stop(ch, END_TERMINATED);
        return;
    }
    run_channel_pump(ch);
}

void run_channel_start(run_channel *ch)
{
    run_worker *w = ch->w;
    if (ch->state != CH_QUEUED) return;
    if (run_timer_active(w, ch->backoff_timer))
        return; /* its failure backoff runs: backoff_cb starts it */
    double wait = run_pace_wait(w, ch->id);
    if (wait > 0) { /* failed lately: GetCheckpoint, open, reads wait for the backoff */
        set_read(ch, RD_BACKOFF);
        run_timer_start(w, ch->backoff_timer, wait, 0.);
        return;
    }
    if (w->cfg.max_channels > 0 && w->running >= w->cfg.max_channels)
        return; /* stays queued until a slot frees */
    ch->has_slot = 1;
    w->running++;
    set_state(ch, CH_GETCP);
    ch->calls++;
    ch->getcp_call = w->calls.get_checkpoint(w->calls.impl, w->tunnel_id, w->client_id, ch->id,
                                             on_getcheckpoint, ch);
    if (!ch->getcp_call) {
        lunnel_error e = run_unsent_error("/tunnel/getcheckpoint");
        on_getcheckpoint(ch, &e, NULL, 0);
    }
}

static int outstanding(const run_channel *ch)
{
    return ch->submitted + (ch->rd == RD_READING) + ch->held;
}

static void maybe_finish(run_channel *ch)
{
    if (ch->state == CH_RUNNING && ch->rd == RD_FINISHED && ch->submitted == 0 && ch->held == 0)
        run_channel_stop(ch, END_TERMINATED);
}

static void on_read(void *ud, const lunnel_error *err, uint8_t *body, size_t len,
                    const char *trace_id);

void run_channel_pump(run_channel *ch)
{
    run_worker *w = ch->w;
    if (ch->state != CH_RUNNING || ch->rd == RD_FINISHED || ch->rd == RD_READING ||
        ch->rd == RD_BACKOFF)
        return;
    if (w->state != W_RUNNING) return;
    int depth = 1 + (w->cfg.prefetch > 0 ? w->cfg.prefetch : 0);
    if (outstanding(ch) >= depth) return;
    /* One budget for held batches and responses being downloaded: a read reserves the
     * largest response seen so far (at least READ_RESERVE_MIN) until its reply is in. With
     * nothing held or reserved a read always starts, so a response larger than the whole
     * budget still gets through, one at a time. */
    size_t reserve = w->largest_read > READ_RESERVE_MIN ? w->largest_read : READ_RESERVE_MIN;
    size_t used = w->inflight_bytes + w->read_reserved;
    if (w->cfg.max_inflight_bytes > 0 && used > 0 && used + reserve > w->cfg.max_inflight_bytes) {
        set_read(ch, RD_BUDGET);
        w->budget_waiters = 1;
        return;
    }
    ch->read_reserved = reserve;
    w->read_reserved += reserve;
    set_read(ch, RD_READING);
    ch->calls++;
    lunnel_metrics_read_start(ch->mx, run_now(w));
    ch->read_call = w->calls.read_records(w->calls.impl, w->tunnel_id, w->client_id, ch->id,
                                          ch->token, on_read, ch);
    if (!ch->read_call) {
        lunnel_error e = run_unsent_error("/tunnel/readrecords");
        on_read(ch, &e, NULL, 0, NULL);
    }
}

static void read_result(run_channel *ch, const lunnel_error *err, uint8_t *body, size_t len,
                        const char *trace_id);

static void on_read(void *ud, const lunnel_error *err, uint8_t *body, size_t len,
                    const char *trace_id)
{
    run_channel *ch = ud;
    ch->read_call = NULL;
    set_read(ch, RD_IDLE);
    run_worker *w = ch->w;
    w->read_reserved -= ch->read_reserved;
    ch->read_reserved = 0;
    if (!err && len > w->largest_read) w->largest_read = len;
    /* channels waiting for budget go first (this one pumps again in read_result), so a budget
     * smaller than one reply still serves every channel in turn; meanwhile this reply is not
     * counted: the peak is the budget plus this one reply */
    run_worker_budget_freed(w);
    if (ch->state != CH_RUNNING) { /* stopping: the response is not ours to process */
        free(body);
        check_drain(ch);
    } else {
        read_result(ch, err, body, len, trace_id);
    }
    run_channel_release(ch);
}

static void read_result(run_channel *ch, const lunnel_error *err, uint8_t *body, size_t len,
                        const char *trace_id)
{
    run_worker *w = ch->w;
    if (err) {
        free(body);
        lunnel_metrics_read_done(ch->mx, run_now(w), 0, 0, 0);
        lunnel_error_class cls = lunnel_error_classify(err, LUNNEL_SCOPE_CHANNEL);
        lunnel_metrics_channel_api_error(ch->mx, err);
        if (cls == LUNNEL_ERRCLASS_FATAL) {
            run_worker_fatal(w, err, "read records");
            return;
        }
        char line[1024];
        lunnel_error_format(err, line, sizeof line);
        run_channel_fail(ch, "read records", line);
        return;
    }
    lunnel_codec_error cerr;
    memset(&cerr, 0, sizeof cerr);
    if (lunnel_rr_scan(&w->rr, body, len, &cerr) != LUNNEL_CODEC_OK) {
        free(body);
        run_channel_fail(ch, "read records: unparseable response", cerr.message);
        return;
    }
    char *next = strndup((const char *)w->rr.next_token, w->rr.next_token_len);
    if (!next) {
        free(body);
        run_channel_fail(ch, "read records", "out of memory");
        return;
    }
    size_t n = w->rr.count;
    lunnel_metrics_read_done(ch->mx, run_now(w), len, n, 1);
    int full = lunnel_batch_is_full(w->rr.may_more_record >= 0, w->rr.may_more_record > 0, n, len);
    uint64_t no = lunnel_cptrack_add(&ch->cp, next);
    if (no == UINT64_MAX) {
        free(body);
        free(next);
        run_channel_fail(ch, "read records", "out of memory");
        return;
    }
    free(ch->token);
    ch->token = strdup(next);
    if (strcmp(next, FINISH_TOKEN) == 0) set_read(ch, RD_FINISHED);
    if (n == 0) { /* nothing to process: handled as soon as it is read */
        free(body);
        free(next);
        lunnel_cptrack_mark(&ch->cp, no);
    } else {
        run_batch *b = calloc(1, sizeof *b);
        lunnel_record_range *ranges = malloc(n * sizeof *ranges);
        if (!b || !ranges) {
            free(b);
            free(ranges);
            free(body);
            free(next);
            run_channel_fail(ch, "read records", "out of memory");
            return;
        }
        memcpy(ranges, w->rr.records, n * sizeof *ranges);
        *b = (run_batch){.ch = ch,
                         .body = body,
                         .len = len,
                         .ranges = ranges,
                         .n_ranges = n,
                         .next_token = next,
                         .no = no};
        /* ctx.trace_id of this batch; without it (out of memory) the channel's stays */
        if (trace_id && *trace_id) b->trace_id = strdup(trace_id);
        w->inflight_bytes += len;
        /* error_policy.c submits it when the previous batch is done (order under retries) */
        if (run_policy_enqueue(ch, b) != 0) {
            run_channel_fail(ch, "submit", "the processor refused a batch");
            return;
        }
        w->stats.batches++;
        w->stats.records += n;
    }
    if (ch->rd == RD_FINISHED) {
        maybe_finish(ch);
        return;
    }
    if (ch->is_stream && !full) {
        double ms = lunnel_backoff_next(&ch->backoff, run_rand01(w));
        set_read(ch, RD_BACKOFF);
        run_timer_start(w, ch->backoff_timer, ms / 1000.0, 0.);
    } else {
        lunnel_backoff_reset(&ch->backoff);
        run_channel_pump(ch);
    }
}

static void host_done(run_channel *ch, const lunnel_host_completion *c);

void run_channel_on_done(run_channel *ch, const lunnel_host_completion *c)
{
    ch->calls++; /* hold the object while the completion is applied */
    host_done(ch, c);
    run_channel_release(ch);
}

/* ctx:commit() in tick(ctx) or shutdown(ctx) (--commit manual): every batch delivered to the
 * channel so far is handled. Completions arrive in job order, so delivered_no is exactly the
 * last batch processed before that call. */
static void apply_outside_commit(run_channel *ch, const lunnel_host_completion *c)
{
    if (ch->w->cfg.manual_commit && c->committed && c->status == LUNNEL_HOST_OK && ch->delivered_no)
        lunnel_cptrack_mark_through(&ch->cp, ch->delivered_no);
}

static void host_done(run_channel *ch, const lunnel_host_completion *c)
{
    run_worker *w = ch->w;
    switch (c->event) {
    case LUNNEL_HOST_EV_OPENED:
        if (ch->state != CH_OPENING) return; /* stopped while open(ctx) ran: the teardown goes on */
        if (c->status != LUNNEL_HOST_OK) {
            /* nothing was read: nothing is processed or checkpointed on this object */
            ch->cps = CP_FAILED;
            run_channel_fail(ch, "open(ctx)", c->error);
            return;
        }
        opened(ch);
        return;
    case LUNNEL_HOST_EV_TIMEOUT:
        lunnel_log_kv(LUNNEL_LOG_WARN, "channel", "process() is running long", "channel", ch->id,
                      NULL);
        return;
    case LUNNEL_HOST_EV_STUCK: /* the owner of the host exits (cmd_run) */
        return;
    case LUNNEL_HOST_EV_BATCH: {
        run_batch *b = c->batch_user;
        ch->submitted--;
        if (ch->on_host == b) ch->on_host = NULL;
        lunnel_metrics_batch_done(ch->mx, c, b->ranges, b->n_ranges, run_now(w));
        run_policy_verdict verdict = POLICY_HANDLED;
        if (c->status != LUNNEL_HOST_OK) {
            /* --on-error (error_policy.c): retry holds the batch again, skip dead-letters it */
            verdict = run_policy_on_failure(ch, b, c);
            if (verdict == POLICY_KEPT) return;
        }
        w->inflight_bytes -= b->len;
        if (c->status == LUNNEL_HOST_OK) {
            ch->delivered_no = b->no;
            if (!w->cfg.manual_commit)
                lunnel_cptrack_mark(&ch->cp, b->no);
            else if (c->committed)
                lunnel_cptrack_mark_through(&ch->cp, b->no);
        } else if (verdict == POLICY_HANDLED) {
            lunnel_cptrack_mark(&ch->cp, b->no);
        } else {
            /* Not handled: stop here; the channel is re-read from its checkpoint after its
             * failure backoff (--on-error stop drains the worker instead). */
            if (verdict == POLICY_STOP)
                run_channel_stop(ch, END_CLOSE);
            else if (ch->state == CH_RUNNING)
                run_channel_fail(ch, "process()", c->error);
            if (verdict == POLICY_STOP) lunnel_worker_stop(w);
        }
        run_batch_free(b);
        if (ch->state == CH_RUNNING) {
            maybe_finish(ch);
            if (run_policy_pump(ch) != 0) {
                run_channel_fail(ch, "submit", "the processor refused a batch");
            } else {
                run_channel_pump(ch);
            }
        } else {
            check_drain(ch);
        }
        run_worker_budget_freed(w);
        return;
    }
    case LUNNEL_HOST_EV_TICK:
        apply_outside_commit(ch, c);
        return;
    case LUNNEL_HOST_EV_CLOSED: {
        ch->host_ch = NULL;
        if (c->status != LUNNEL_HOST_OK && !ch->failed) {
            /* what was handled is checkpointed (or, --commit manual, is about to be); a
             * reopen still waits its backoff */
            ch->failed = 1;
            double healthy = ch->running_since > 0 ? run_now(w) - ch->running_since : 0;
            run_pace_failed(w, ch->id, healthy, "shutdown(ctx)", c->error);
        } else if (c->status != LUNNEL_HOST_OK) {
            /* the channel failed already (its backoff counted once): still say so */
            lunnel_log_kv(LUNNEL_LOG_WARN, "channel", "shutdown(ctx) failed", "channel", ch->id,
                          "error", c->error, NULL);
        }
        if (w->cfg.manual_commit) {
            /* shutdown(ctx) ran before the final checkpoint: what it committed goes in it */
            apply_outside_commit(ch, c);
            ch->script_closed = 1;
            check_drain(ch);
            return;
        }
        ch_end end = ch->end;
        if (end == END_TERMINATED &&
            !(ch->cp.checkpointed && strcmp(ch->cp.checkpointed, FINISH_TOKEN) == 0))
            ch->end = END_CLOSE; /* `finished` not stored (manual commit, failure): re-read */
        set_state(ch, CH_DONE);
        run_worker_channel_ended(w, ch);
        return;
    }
    }
}

/* DRAINING -> (no read, no batch in flight) -> final checkpoint -> shutdown(ctx).
 * With --commit manual the script commits what it buffered in shutdown(ctx), so there it is
 * DRAINING -> shutdown(ctx) (CLOSING) -> final checkpoint -> DONE. */
static void check_drain(run_channel *ch)
{
    run_worker *w = ch->w;
    if (w->cfg.manual_commit && ch->state == CH_CLOSING && ch->script_closed) {
        if (ch->end != END_SILENT && ch->cps != CP_FAILED && !run_checkpoint_settled(ch)) {
            run_checkpoint_flush(ch);
            if (ch->cps == CP_INFLIGHT || ch->cps == CP_RESYNC)
                return; /* calls check_drain again when it completes */
        }
        if (ch->cps == CP_INFLIGHT || ch->cps == CP_RESYNC) return;
        if (ch->end == END_TERMINATED &&
            !(ch->cp.checkpointed && strcmp(ch->cp.checkpointed, FINISH_TOKEN) == 0))
            ch->end = END_CLOSE; /* `finished` not stored: re-read */
        set_state(ch, CH_DONE);
        run_worker_channel_ended(w, ch);
        run_channel_maybe_free(ch);
        return;
    }
    if (ch->state != CH_DRAINING || ch->rd == RD_READING || ch->submitted > 0) return;
    if (w->cfg.manual_commit && ch->host_ch) {
        set_state(ch, CH_CLOSING);
        if (w->cfg.proc.shutdown(ch->host_ch) == 0) return; /* EV_CLOSED continues */
        ch->host_ch = NULL;
        ch->script_closed = 1;
        check_drain(ch);
        return;
    }
    if (ch->end != END_SILENT && ch->cps != CP_FAILED && !run_checkpoint_settled(ch)) {
        run_checkpoint_flush(ch); /* calls check_drain again when it completes */
        return;
    }
    if (ch->cps == CP_INFLIGHT || ch->cps == CP_RESYNC) return;
    if (ch->host_ch) {
        set_state(ch, CH_CLOSING);
        if (w->cfg.proc.shutdown(ch->host_ch) == 0) return; /* EV_CLOSED continues */
        ch->host_ch = NULL;
    }
    set_state(ch, CH_DONE);
    run_worker_channel_ended(w, ch);
    run_channel_maybe_free(ch);
}

void run_checkpoint_done_hook(run_channel *ch)
{
    check_drain(ch);
}

void run_channel_stop(run_channel *ch, ch_end end)
{
    run_worker *w = ch->w;
    /* A drop by the server outranks everything: no checkpoint, no report. */
    if (ch->end == END_NONE || end == END_SILENT) ch->end = end;
    run_timer_stop(w, ch->backoff_timer);
    if (ch->rd == RD_BACKOFF || ch->rd == RD_BUDGET) set_read(ch, RD_IDLE);
    if (ch->held_head) { /* read but never submitted: not handled, re-read later */
        run_policy_drop_held(ch);
        run_worker_budget_freed(w);
    }
    switch (ch->state) {
    case CH_QUEUED:
    case CH_GETCP: /* a GetCheckpoint in flight is ignored when it returns */
        set_state(ch, CH_DONE);
        run_worker_channel_ended(w, ch);
        run_channel_maybe_free(ch);
        return;
    case CH_OPENING:
    case CH_RUNNING:
        set_state(ch, CH_DRAINING);
        check_drain(ch);
        return;
    case CH_DRAINING:
        check_drain(ch);
        return;
    case CH_CLOSING:
    case CH_DONE:
        return;
    }
}

void run_channel_fail(run_channel *ch, const char *what, const char *error)
{
    run_worker *w = ch->w;
    if (!ch->failed && ch->end != END_SILENT && ch->state != CH_DONE) {
        ch->failed = 1; /* one failure per object, however many calls it had refused */
        double healthy = ch->running_since > 0 ? run_now(w) - ch->running_since : 0;
        run_pace_failed(w, ch->id, healthy, what, error);
    } else {
        char line[512];
        snprintf(line, sizeof line, "%s: %s", what, error ? error : "");
        lunnel_log_kv(LUNNEL_LOG_DEBUG, "channel", "channel failed while stopping", "channel",
                      ch->id, "error", line, NULL);
    }
    run_channel_stop(ch, END_CLOSE);
}
