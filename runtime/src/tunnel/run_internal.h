/* run_internal.h: the state shared by worker.c (client: connect, heartbeat, daemon),
 * channel.c (per-channel read pipeline) and checkpointer.c (checkpoint calls). All of it is
 * owned by the loop thread; nothing here is touched by Lua workers. Calls, time, timers and
 * randomness come only through the worker's environment (worker_env.h): the run_* helpers
 * below, never libev or api.h directly. */
#ifndef LUNNEL_RUN_INTERNAL_H
#define LUNNEL_RUN_INTERNAL_H

#include "lunnel/channel.h"
#include "lunnel/error_class.h"
#include "lunnel/readrecords.h"
#include "lunnel/worker.h"
#include "lunnel/worker_env.h"

#define FINISH_TOKEN "finished"

/* Life of one channel object on this client. */
typedef enum ch_state {
    CH_QUEUED = 0, /* OPEN here, waiting for a --max-channels slot or its failure backoff */
    CH_GETCP,      /* GetCheckpoint in flight */
    CH_OPENING,    /* open(ctx) queued on the host: nothing is read before it succeeded */
    CH_RUNNING,    /* open(ctx) succeeded: reading and processing */
    CH_DRAINING,   /* no new reads; waiting for in-flight batches, then final checkpoint */
    CH_CLOSING,    /* shutdown(ctx) queued on the host */
    CH_DONE,       /* stopped; freed once no call is in flight */
} ch_state;

/* The read side of a channel (one ReadRecords at a time). */
typedef enum ch_read {
    RD_IDLE = 0, /* may read when the pipeline has room */
    RD_READING,  /* a ReadRecords is in flight */
    RD_BACKOFF,  /* timer armed: a stream channel's idle wait, or (QUEUED) the failure pacing */
    RD_BUDGET,   /* waiting for --max-inflight-bytes room */
    RD_FINISHED, /* `finished` was read: no more reads */
} ch_read;

/* The checkpoint side of a channel. */
typedef enum ch_cp {
    CP_IDLE = 0, /* no call in flight */
    CP_INFLIGHT, /* a Checkpoint call is in flight */
    CP_RESYNC,   /* OTSSequenceNumberNotMatch: the GetCheckpoint re-read is in flight */
    CP_FAILED,   /* refused for good on this object: no more checkpoints (re-read later) */
} ch_cp;

/* How a stop ends: what the next heartbeat reports (version + 1), and whether the final
 * checkpoint is attempted (not when we are no longer the owner). */
typedef enum ch_end {
    END_NONE = 0,
    END_CLOSE,      /* report CLOSE (CLOSING answered, error, drain) */
    END_TERMINATED, /* read to `finished`: report TERMINATED */
    END_SILENT,     /* server dropped / closed it: report nothing, no checkpoint */
} ch_end;

typedef struct run_batch run_batch;
typedef struct run_channel run_channel;
typedef struct lunnel_worker run_worker; /* worker.h's opaque handle */

/* One ReadRecords response handed to the host; owns the bytes until its completion. */
struct run_batch {
    run_channel *ch;
    uint8_t *body;
    size_t len;
    lunnel_record_range *ranges;
    size_t n_ranges;
    char *next_token;
    char *trace_id; /* x-ots-trace-id of the ReadRecords call that read it (may be NULL) */
    uint64_t no;    /* checkpoint tracker number */
    int attempts;   /* process() calls made (error_policy.c) */
    run_batch *next;
};

struct run_channel {
    run_worker *w;
    char *id;
    ch_state state;
    ch_end end;
    ch_read rd;
    ch_cp cps;
    int is_stream;
    void *host_ch;      /* processor channel handle (after open) */
    char *token;        /* token of the next ReadRecords */
    int submitted;      /* batches handed to the host, not completed (0 or 1) */
    run_batch *on_host; /* that batch (freed by lunnel_worker_free if never completed) */
    int calls;          /* API calls in flight referencing this object */
    /* the handles of those calls (at most one of each), cancelled by lunnel_worker_free */
    lunnel_worker_call *getcp_call; /* the GetCheckpoint of CH_GETCP */
    lunnel_worker_call *read_call;  /* the ReadRecords of RD_READING */
    lunnel_worker_call *cp_call; /* the Checkpoint of CP_INFLIGHT or GetCheckpoint of CP_RESYNC */
    struct run_cp_req *cp_req;   /* CP_INFLIGHT: the token being stored (checkpointer.c) */
    size_t read_reserved;        /* budget reserved for the response of its ReadRecords in flight */
    int has_slot;                /* counts against --max-channels */
    int cp_resyncs;              /* OTSSequenceNumberNotMatch re-reads in a row */
    int failed;                  /* run_channel_fail() ran: this object counted its failure */
    double running_since;        /* open(ctx) succeeded at (0: never): the healthy time */
    int64_t version;             /* the view version this object was started at */
    lunnel_backoff backoff;
    lunnel_worker_timer *backoff_timer;
    lunnel_cptrack cp;
    uint64_t delivered_no; /* newest batch whose process() returned: what ctx:commit() in
                              tick/shutdown covers (--commit manual) */
    int script_closed;     /* shutdown(ctx) has run (manual commit: before the final checkpoint) */
    /* error_policy.c: read batches not on the host yet, submitted one at a time so a retried
     * batch is never overtaken by the one after it; the head may wait on retry_timer */
    run_batch *held_head, *held_tail;
    int held;
    lunnel_worker_timer *retry_timer;
    struct lunnel_metrics_channel *mx; /* metrics.h counters of this id; NULL: metrics off */
    run_channel *next;                 /* worker's list of live objects */
    run_channel *prev;                 /* (doubly linked: unlinking is O(1) with 50,000 channels) */
};

typedef enum w_state {
    W_IDLE = 0,
    W_CONNECTING,
    W_RUNNING,
    W_RECONNECT_DRAIN, /* client lost: stopping channels before reconnecting */
    W_RECONNECT_WAIT,  /* random delay before the next Connect */
    W_DRAINING,        /* graceful stop */
    W_SHUTDOWN,        /* Shutdown call in flight */
    W_EXITED,
} w_state;

struct lunnel_worker {
    lunnel_worker_config cfg; /* strings below are our copies */
    char *tunnel_id, *table_name, *tunnel_name, *client_tag;
    w_state state;
    char *client_id;
    int generation; /* bumped per Connect: stale callbacks are recognised */
    lunnel_chtable table;
    run_channel *channels;
    int budget_waiters;        /* some channel went waiting-for-budget (RD_BUDGET) since the last
                                  budget_freed scan */
    lunnel_worker_calls calls; /* cfg.calls, or the real ones on cfg.api */
    lunnel_worker_clock clock; /* cfg.clock, or cfg.loop's */
    lunnel_worker_timer *hb_timer, *cp_timer, *delay_timer, *drain_timer;
    lunnel_worker_timer *start_timer; /* starts the channels a big heartbeat added, a slice per
                                         turn */
    /* client-level calls in flight (at most one of each), cancelled by lunnel_worker_free */
    lunnel_worker_call *connect_call, *hb_call, *describe_call, *shutdown_call;
    struct hb_ctx *hb_ctx; /* hb_call's context */
    int hb_inflight;
    int drain_timed_out; /* the drain hit --drain-timeout: a process() call may never return */
    int hb_again;        /* a channel ended while a heartbeat was in flight: report it at once */
    double last_hb_ok;
    int describe_inflight;
    int running; /* channels holding a --max-channels slot */
    size_t inflight_bytes;
    size_t read_reserved;  /* bytes reserved by ReadRecords calls in flight (being downloaded) */
    size_t largest_read;   /* largest ReadRecords response so far: what a new read reserves */
    lunnel_rr_response rr; /* scanner output, reused by every response */
    int outcome;           /* lunnel_outcome to report when the drain completes */
    int exit_after_drain;
    lunnel_worker_stats stats;
    struct lunnel_dead_letter *dead_letter;   /* --on-error skip, opened before the first batch */
    lunnel_host_dead_letter dead_letter_hook; /* what the Lua workers write it through */
    int dead_letter_tried; /* an opening was tried since the last batch that failed unwritten */
    double connect_failing_since; /* first Connect failure of a row; 0: none */
    double connected_at;          /* last successful Connect; 0: none yet */
    int ever_connected;           /* a Connect succeeded in this process */
    lunnel_pace reconnect_pace;   /* reconnects in a row without a healthy run */
    struct run_pace_entry *pace;  /* channel_pace.c: failure backoff per channel id */
    size_t n_pace, cap_pace;
    char exit_reason[1200]; /* why a non-zero exit (one line); "" */
};

/* channel.c */
run_channel *run_channel_new(run_worker *w, const char *id, int64_t version);
void run_channel_start(run_channel *ch); /* QUEUED -> GETCP when a slot is free */
void run_channel_stop(run_channel *ch, ch_end end);
void run_channel_pump(run_channel *ch); /* issue the next read if allowed */
void run_channel_on_done(run_channel *ch, const lunnel_host_completion *c);
void run_channel_maybe_free(run_channel *ch);
void run_channel_destroy(run_channel *ch);     /* frees the object (unlinked or the whole list) */
void run_channel_release(run_channel *ch);     /* calls--, then maybe free */
int run_channel_active(const run_channel *ch); /* holds a slot (not queued, not done) */
/* The one path of a persistent failure (failed open, refused or unparseable reply, retries
 * exhausted, dead letter not writable, undecodable batch): counts one failure for the
 * channel id (channel_pace.c: the next start waits its backoff; one log line) and stops the
 * object with END_CLOSE (drain, checkpoint of what was handled, shutdown). */
void run_channel_fail(run_channel *ch, const char *what, const char *error);
void run_checkpoint_done_hook(run_channel *ch); /* a checkpoint call finished: drain goes on */

/* error_policy.c: the --on-error policies and the one-at-a-time submission of batches */
typedef enum run_policy_verdict {
    POLICY_KEPT = 0, /* retry scheduled: the policy holds the batch again */
    POLICY_HANDLED,  /* skip: dead-lettered durably; mark it handled */
    POLICY_CLOSE,    /* not handled: close the channel (re-read from its checkpoint) */
    POLICY_STOP,     /* not handled: stop the whole worker with exit 1 */
} run_policy_verdict;
int run_policy_channel_init(run_channel *ch);          /* 0, or -1 out of memory */
void run_policy_channel_free(run_channel *ch);         /* drops held batches, stops the timer */
int run_policy_enqueue(run_channel *ch, run_batch *b); /* hold + pump; -1: submit refused */
int run_policy_pump(run_channel *ch);                  /* submit the head when the host is idle */
void run_policy_drop_held(run_channel *ch);            /* stopping: unsubmitted batches go */
run_policy_verdict run_policy_on_failure(run_channel *ch, run_batch *b,
                                         const lunnel_host_completion *c);
void run_policy_worker_free(run_worker *w);
/* daemon.c: Connect failed with a retriable error; 1 when the retry window is used up (the
 * worker has then finished with exit 1 and one clear line). */
int run_connect_give_up(run_worker *w, const char *error_line);
void run_worker_finish(run_worker *w, int status); /* worker.c: stop for good now */
/* daemon.c: remembers the first fatal cause for lunnel_worker_exit_reason() */
void run_set_exit_reason(run_worker *w, const char *what, const lunnel_error *err);
void run_batch_free(run_batch *b); /* channel.c */

/* channel_pace.c: failure backoff per channel id, kept across channel objects */
typedef struct run_pace_entry {
    char *id;
    lunnel_pace pace;
    double not_before; /* the next start of this channel waits until then */
    double last_fail;
    char last_error[256]; /* the previous failure's text: identical ones are counted */
    unsigned repeats;     /* the same failure again, in a row */
} run_pace_entry;
double run_pace_wait(run_worker *w, const char *id); /* seconds before it may start; 0: now */
void run_pace_failed(run_worker *w, const char *id, double healthy_s, const char *what,
                     const char *error);
void run_pace_free(run_worker *w);

/* The worker's environment (worker_env.h), for every file of the worker. */
static inline double run_now(const run_worker *w)
{
    return w->clock.now(w->clock.impl);
}
static inline double run_rand01(const run_worker *w)
{
    return w->cfg.rand01(w->cfg.rand_ud);
}
static inline void run_timer_start(run_worker *w, lunnel_worker_timer *t, double after_s,
                                   double repeat_s)
{
    w->clock.timer_start(w->clock.impl, t, after_s, repeat_s);
}
static inline void run_timer_stop(run_worker *w, lunnel_worker_timer *t)
{
    if (t) w->clock.timer_stop(w->clock.impl, t);
}
static inline int run_timer_active(const run_worker *w, const lunnel_worker_timer *t)
{
    return t && w->clock.timer_active(w->clock.impl, t);
}
/* Cancels *call when in flight and clears it (teardown: its callback will not run). */
static inline void run_call_cancel(run_worker *w, lunnel_worker_call **call)
{
    if (*call) w->calls.cancel(w->calls.impl, *call);
    *call = NULL;
}
/* The error a callback is given when its call could not be made (a NULL handle). */
lunnel_error run_unsent_error(const char *path);

/* checkpointer.c */
void run_checkpoint_cancel(run_channel *ch); /* teardown: cancels and frees the call in flight */
void run_checkpoint_flush(run_channel *ch);  /* send the pending token if any */
int run_checkpoint_settled(const run_channel *ch); /* nothing pending, nothing in flight */

/* worker.c, used by channels */
void run_worker_channel_ended(run_worker *w, run_channel *ch); /* after shutdown(ctx) */
void run_worker_budget_freed(run_worker *w);
void run_worker_fatal(run_worker *w, const lunnel_error *err, const char *what);
void run_worker_slot_freed(run_worker *w);

#endif
