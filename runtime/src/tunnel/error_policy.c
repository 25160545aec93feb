/* error_policy.c: what a failed process() batch leads to (`lunnel run --on-error`,
 * DESIGN.md "Data flow": a checkpoint records only tokens of handled batches):
 *   retry (default): the same batch is submitted again after a backoff (100 ms doubling, capped
 *         by retry_backoff_max_s), up to max_retries times; then the channel is closed and
 *         re-read later from its checkpoint. Errors that cannot change on a re-run (the bytes
 *         do not decode) close at once.
 *   skip: the batch's records and the error go durably to the dead-letter file
 *         (dead_letter.h), written by the Lua worker that ran it (the batch's dead_letter hook,
 *         host_queue.h: the records are decoded there already, and the loop thread never
 *         renders or fsyncs); the batch counts as handled when its completion says so.
 *   stop: the batch stays unhandled; the worker drains (checkpointing what was handled) and
 *         exits 1.
 * To keep channel order under retries, a channel's batches go to the host one at a time:
 * read-ahead batches (--prefetch) wait here ("held") while the previous one is processed,
 * so a failed batch can be re-run before the next one without the host ever seeing the next
 * one first. Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lunnel/dead_letter.h"
#include "lunnel/log.h"
#include "lunnel/record.h"
#include "run_internal.h"

#define RETRY_BASE_S 0.1

int lunnel_on_error_parse(const char *s, int *out)
{
    if (!s) return -1;
    if (strcasecmp(s, "retry") == 0)
        *out = LUNNEL_ON_ERROR_RETRY;
    else if (strcasecmp(s, "skip") == 0)
        *out = LUNNEL_ON_ERROR_SKIP;
    else if (strcasecmp(s, "stop") == 0)
        *out = LUNNEL_ON_ERROR_STOP;
    else
        return -1;
    return 0;
}

static void retry_cb(void *ud)
{
    run_channel *ch = ud;
    if (ch->state != CH_RUNNING) {
        run_policy_drop_held(ch);
        return;
    }
    if (run_policy_pump(ch) != 0) run_channel_fail(ch, "submit", "the processor refused a batch");
}

int run_policy_channel_init(run_channel *ch)
{
    run_worker *w = ch->w;
    ch->retry_timer = w->clock.timer_new(w->clock.impl, retry_cb, ch);
    return ch->retry_timer ? 0 : -1;
}

void run_policy_drop_held(run_channel *ch)
{
    run_worker *w = ch->w;
    run_timer_stop(w, ch->retry_timer);
    if (!ch->held_head) return;
    while (ch->held_head) {
        run_batch *b = ch->held_head;
        ch->held_head = b->next;
        w->inflight_bytes -= b->len;
        run_batch_free(b);
    }
    ch->held_tail = NULL;
    ch->held = 0;
}

void run_policy_channel_free(run_channel *ch)
{
    run_policy_drop_held(ch);
    ch->w->clock.timer_free(ch->w->clock.impl, ch->retry_timer);
    ch->retry_timer = NULL;
}

/* The dead_letter hook of --on-error skip, on the Lua worker that ran the failed batch. It
 * reads only what does not change while the batch is on the host: the batch (b->attempts was
 * counted at submission), the channel id, the worker's ids (a client is replaced only after
 * every batch of it completed) and the writer (opened before the first submission). */
static int write_dead_letter(void *ud, const lunnel_host_batch *hb, const lunnel_batch *records,
                             const char *decode_error, const char *error, const char *traceback,
                             char *err, size_t err_cap)
{
    run_worker *w = ud;
    const run_batch *b = hb->user;
    lunnel_dead_letter_batch d = {
        .tunnel_id = w->tunnel_id,
        .client_id = w->client_id,
        .channel_id = b->ch->id,
        .batch_token = b->next_token,
        .error = error,
        .traceback = traceback,
        .attempts = b->attempts,
        .data = b->body,
        .len = b->len,
        .ranges = b->ranges,
        .n_ranges = b->n_ranges,
    };
    return lunnel_dead_letter_write_records(w->dead_letter, &d, records, decode_error, err,
                                            err_cap);
}

/* --on-error skip: the writer the hook uses, opened on the loop thread before a batch that may
 * need it is submitted (`lunnel run` opens it at start-up; exit 2 when it cannot). NULL: not
 * writable; opening is tried again (and logged) only after a batch failed unwritten, so a
 * path that stays unwritable costs one attempt per (paced) channel failure, not per batch. */
static lunnel_dead_letter *dead_letter_writer(run_channel *ch)
{
    run_worker *w = ch->w;
    if (w->cfg.on_error != LUNNEL_ON_ERROR_SKIP || !w->cfg.dead_letter_path) return NULL;
    if (!w->dead_letter && !w->dead_letter_tried) {
        w->dead_letter_tried = 1;
        char err[512];
        w->dead_letter = lunnel_dead_letter_open(w->cfg.dead_letter_path, err, sizeof err);
        if (!w->dead_letter)
            lunnel_log_kv(LUNNEL_LOG_ERROR, "policy", "cannot open the dead-letter file", "channel",
                          ch->id, "error", err, NULL);
    }
    if (w->dead_letter && !w->dead_letter_hook.write)
        w->dead_letter_hook = (lunnel_host_dead_letter){.write = write_dead_letter, .ud = w};
    return w->dead_letter;
}

int run_policy_pump(run_channel *ch)
{
    run_worker *w = ch->w;
    if (ch->submitted > 0 || !ch->held_head || run_timer_active(w, ch->retry_timer)) return 0;
    if (ch->state != CH_RUNNING)
        return 0; /* batches reach process() only after open(ctx) succeeded */
    run_batch *b = ch->held_head;
    lunnel_host_batch hb = {
        .kind = LUNNEL_HOST_PAYLOAD_RANGES,
        .data = b->body,
        .len = b->len,
        .ranges = b->ranges,
        .n_ranges = b->n_ranges,
        .next_token = b->next_token,
        .trace_id = b->trace_id,
        .user = b,
    };
    if (dead_letter_writer(ch)) hb.dead_letter = &w->dead_letter_hook;
    if (w->cfg.proc.submit(ch->host_ch, &hb) != 0) {
        lunnel_log_kv(LUNNEL_LOG_ERROR, "channel", "processor refused a batch", "channel", ch->id,
                      NULL);
        return -1;
    }
    ch->held_head = b->next;
    if (!ch->held_head) ch->held_tail = NULL;
    ch->held--;
    b->next = NULL;
    b->attempts++;
    ch->submitted++;
    ch->on_host = b;
    return 0;
}

int run_policy_enqueue(run_channel *ch, run_batch *b)
{
    b->next = NULL;
    if (ch->held_tail)
        ch->held_tail->next = b;
    else
        ch->held_head = b;
    ch->held_tail = b;
    ch->held++;
    return run_policy_pump(ch);
}

/* Puts a failed batch back at the head and arms the retry timer. */
static void schedule_retry(run_channel *ch, run_batch *b)
{
    run_worker *w = ch->w;
    b->next = ch->held_head;
    ch->held_head = b;
    if (!ch->held_tail) ch->held_tail = b;
    ch->held++;
    double d = RETRY_BASE_S;
    for (int i = 1; i < b->attempts && d < w->cfg.retry_backoff_max_s; i++)
        d *= 2;
    if (w->cfg.retry_backoff_max_s > 0 && d > w->cfg.retry_backoff_max_s)
        d = w->cfg.retry_backoff_max_s;
    run_timer_start(w, ch->retry_timer, d, 0.);
}

/* Whether the Lua worker set the failed batch aside (its dead_letter hook); else why not. */
static int dead_lettered(run_channel *ch, const lunnel_host_completion *c)
{
    run_worker *w = ch->w;
    if (c->dead_lettered) return 1;
    if (!w->cfg.dead_letter_path)
        lunnel_log_kv(LUNNEL_LOG_ERROR, "policy", "--on-error skip without --dead-letter",
                      "channel", ch->id, NULL);
    else if (!w->dead_letter) /* the opening failure was logged at submission: try again */
        w->dead_letter_tried = 0;
    else
        lunnel_log_kv(
            LUNNEL_LOG_ERROR, "policy", "dead-letter write failed", "channel", ch->id, "error",
            c->dead_letter_error && *c->dead_letter_error ? c->dead_letter_error : "not written",
            NULL);
    return 0;
}

run_policy_verdict run_policy_on_failure(run_channel *ch, run_batch *b,
                                         const lunnel_host_completion *c)
{
    run_worker *w = ch->w;
    w->stats.batch_failures++;
    char att[16], recs[16];
    snprintf(att, sizeof att, "%d", b->attempts);
    snprintf(recs, sizeof recs, "%zu", b->n_ranges);
    const char *policy = w->cfg.on_error == LUNNEL_ON_ERROR_SKIP   ? "skip"
                         : w->cfg.on_error == LUNNEL_ON_ERROR_STOP ? "stop"
                                                                   : "retry";
    lunnel_log_kv(LUNNEL_LOG_ERROR, "channel", "process() failed", "channel", ch->id, "error",
                  c->error, "traceback", c->traceback, "attempt", att, "records", recs, "policy",
                  policy, NULL);
    switch (w->cfg.on_error) {
    case LUNNEL_ON_ERROR_SKIP:
        if (!dead_lettered(ch, c)) return POLICY_CLOSE;
        w->stats.dead_lettered++;
        lunnel_log_kv(LUNNEL_LOG_WARN, "policy", "batch written to the dead-letter file", "channel",
                      ch->id, "records", recs, "file", w->cfg.dead_letter_path, NULL);
        return POLICY_HANDLED;
    case LUNNEL_ON_ERROR_STOP:
        lunnel_log_kv(LUNNEL_LOG_ERROR, "policy", "--on-error stop: draining and exiting 1",
                      "channel", ch->id, NULL);
        if (w->outcome == 0) w->outcome = LUNNEL_OUTCOME_FAILED;
        if (!w->exit_reason[0])
            snprintf(w->exit_reason, sizeof w->exit_reason,
                     "--on-error stop: process() failed on channel %s: %s", ch->id,
                     c->error ? c->error : "");
        return POLICY_STOP;
    default:
        break;
    }
    if (ch->state != CH_RUNNING)
        return POLICY_CLOSE; /* stopping anyway: re-read from the checkpoint later */
    if (!lunnel_host_code_is_retriable(c->status)) {
        lunnel_log_kv(LUNNEL_LOG_WARN, "policy", "not retriable, closing the channel", "channel",
                      ch->id, NULL);
        return POLICY_CLOSE;
    }
    if (b->attempts > w->cfg.max_retries) {
        lunnel_log_kv(LUNNEL_LOG_WARN, "policy", "retries exhausted, closing the channel",
                      "channel", ch->id, "attempts", att, NULL);
        return POLICY_CLOSE;
    }
    w->stats.batch_retries++;
    schedule_retry(ch, b);
    return POLICY_KEPT;
}

void run_policy_worker_free(run_worker *w)
{
    lunnel_dead_letter_close(w->dead_letter);
    w->dead_letter = NULL;
}
