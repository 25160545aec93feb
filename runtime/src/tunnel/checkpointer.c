/* checkpointer.c: the Checkpoint calls of a channel. Every --checkpoint-interval (worker.c's
 * timer) and once more when a channel stops, the token the tracker says is committable
 * (checkpoint_track.c: newest token whose batch and all before it were handled) is sent with
 * the channel's sequence number. On OTSSequenceNumberNotMatch the sequence is re-read with
 * GetCheckpoint and the checkpoint retried (a few times in a row at most). Other failures
 * concern this channel only (PROTOCOL.md 1, error scope): it is failed (run_channel_fail:
 * reopened after its backoff) and re-read from the last accepted checkpoint, except fatal
 * ones (expired tunnel, no permission). The side's states are ch_cp: idle -> in flight ->
 * (resync -> in flight)* -> idle, or failed (no more checkpoints on this object). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/log.h"
#include "lunnel/metrics.h"
#include "run_internal.h"

#define MAX_RESYNCS 3

/* A Checkpoint call's context: the token it stores (ch->cp_req while in flight). */
typedef struct run_cp_req {
    run_channel *ch;
    char *token;
} cp_req;

int run_checkpoint_settled(const run_channel *ch)
{
    return (ch->cps == CP_IDLE || ch->cps == CP_FAILED) && lunnel_cptrack_pending(&ch->cp) == NULL;
}

static void log_cp_error(run_channel *ch, const char *what, const lunnel_error *err)
{
    char line[1024];
    lunnel_error_format(err, line, sizeof line);
    lunnel_log_kv(LUNNEL_LOG_WARN, "checkpoint", what, "channel", ch->id, "error", line, NULL);
    lunnel_metrics_channel_api_error(ch->mx, err);
}

/* Refused for good on this object: no more checkpoints; a running channel fails (paced). */
static void cp_fail(run_channel *ch, const char *what, const lunnel_error *err)
{
    char line[1024];
    lunnel_error_format(err, line, sizeof line);
    lunnel_metrics_channel_api_error(ch->mx, err);
    ch->cps = CP_FAILED;
    if (ch->state == CH_RUNNING)
        run_channel_fail(ch, what, line);
    else
        lunnel_log_kv(LUNNEL_LOG_WARN, "checkpoint", "final checkpoint failed", "channel", ch->id,
                      "error", line, NULL);
}

static void on_resync(void *ud, const lunnel_error *err, const char *token, int64_t seq)
{
    (void)token;
    run_channel *ch = ud;
    ch->cp_call = NULL;
    ch->cps = CP_IDLE;
    if (err) {
        cp_fail(ch, "checkpoint sequence re-read", err);
        run_checkpoint_done_hook(ch);
        run_channel_release(ch);
        return;
    }
    lunnel_cptrack_resync(&ch->cp, seq);
    char s[24];
    snprintf(s, sizeof s, "%lld", (long long)ch->cp.sequence);
    lunnel_log_kv(LUNNEL_LOG_INFO, "checkpoint", "sequence re-read, retrying", "channel", ch->id,
                  "sequence", s, NULL);
    run_checkpoint_flush(ch);
    if (ch->cps == CP_IDLE) run_checkpoint_done_hook(ch);
    run_channel_release(ch);
}

static void on_checkpoint(void *ud, const lunnel_error *err)
{
    cp_req *call = ud;
    run_channel *ch = call->ch;
    run_worker *w = ch->w;
    ch->cp_call = NULL;
    ch->cp_req = NULL;
    ch->cps = CP_IDLE;
    lunnel_metrics_checkpoint(ch->mx, run_now(w), err == NULL);
    if (!err) {
        lunnel_cptrack_accepted(&ch->cp, call->token);
        ch->cp_resyncs = 0;
        w->stats.checkpoints++;
        lunnel_log_kv(LUNNEL_LOG_DEBUG, "checkpoint", "checkpoint stored", "channel", ch->id,
                      "token", call->token, NULL);
        free(call->token);
        free(call);
        run_checkpoint_done_hook(ch);
        run_channel_release(ch);
        return;
    }
    free(call->token);
    free(call);
    w->stats.checkpoint_failures++;
    if (strcmp(err->code, "OTSSequenceNumberNotMatch") == 0 && ch->cp_resyncs < MAX_RESYNCS &&
        ch->state != CH_DONE) {
        ch->cp_resyncs++;
        log_cp_error(ch, "checkpoint sequence mismatch, re-reading", err);
        ch->cps = CP_RESYNC; /* the call's hold on the object passes to the re-read */
        ch->cp_call = w->calls.get_checkpoint(w->calls.impl, w->tunnel_id, w->client_id, ch->id,
                                              on_resync, ch);
        if (!ch->cp_call) {
            lunnel_error e = run_unsent_error("/tunnel/getcheckpoint");
            on_resync(ch, &e, NULL, 0);
        }
        return;
    }
    lunnel_error_class cls = lunnel_error_classify(err, LUNNEL_SCOPE_CHANNEL);
    if (cls == LUNNEL_ERRCLASS_FATAL) {
        log_cp_error(ch, "checkpoint failed", err);
        ch->cps = CP_FAILED;
        run_worker_fatal(w, err, "checkpoint");
    } else if (cls == LUNNEL_ERRCLASS_RETRY && ch->state == CH_RUNNING) {
        /* transient past the call's retry window: try again at the next interval */
        log_cp_error(ch, "checkpoint failed, will retry at the next interval", err);
    } else {
        cp_fail(ch, "checkpoint", err);
    }
    run_checkpoint_done_hook(ch);
    run_channel_release(ch);
}

void run_checkpoint_flush(run_channel *ch)
{
    run_worker *w = ch->w;
    if (ch->cps != CP_IDLE || ch->state == CH_DONE) return;
    const char *tok = lunnel_cptrack_pending(&ch->cp);
    if (!tok) return;
    cp_req *call = calloc(1, sizeof *call);
    if (!call) return;
    call->ch = ch;
    call->token = strdup(tok);
    if (!call->token) {
        free(call);
        return;
    }
    ch->cps = CP_INFLIGHT;
    ch->calls++;
    ch->cp_req = call;
    ch->cp_call = w->calls.checkpoint(w->calls.impl, w->tunnel_id, w->client_id, ch->id,
                                      call->token, ch->cp.sequence, on_checkpoint, call);
    if (!ch->cp_call) {
        lunnel_error e = run_unsent_error("/tunnel/checkpoint");
        on_checkpoint(call, &e);
    }
}

void run_checkpoint_cancel(run_channel *ch)
{
    run_call_cancel(ch->w, &ch->cp_call);
    if (ch->cp_req) free(ch->cp_req->token);
    free(ch->cp_req);
    ch->cp_req = NULL;
}
