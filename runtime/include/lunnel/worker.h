/* worker.h: the tunnel worker of `lunnel run` (DESIGN.md "Data flow and threads"): what the
 * official TunnelWorker + TunnelDaemon do, on the libev loop thread. It connects, heartbeats
 * every interval (reporting every known channel), merges the response into its channel table
 * (heartbeat contract, channel.h), runs one read pipeline per channel (GetCheckpoint,
 * ReadRecords with prefetch, stream backoff, checkpoints) and hands batches to a processor
 * (the Lua host, host.h) through the processor vtable of host_queue.h; on a lost client it
 * reconnects after a random delay, on a fatal error or a finished BaseData tunnel (exit_when_done)
 * it stops.
 *
 * Threading: every function is called on the loop thread. Lua never runs on it, so heartbeats
 * are never delayed by a script. */
#ifndef LUNNEL_WORKER_H
#define LUNNEL_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "lunnel/host_queue.h"

struct ev_loop;
struct lunnel_api;
struct lunnel_worker_calls;
struct lunnel_worker_clock;

typedef struct lunnel_worker lunnel_worker; /* opaque */

/* Called once when the worker has stopped for good; `status` is a lunnel_outcome
 * (error_class.h): OK after a graceful drain or a finished tunnel, else the cause; the CLI
 * turns it into the exit status. */
typedef void (*lunnel_worker_exit_fn)(void *ud, int status);

/* What a failed process() batch leads to (`--on-error`, error_policy.c). */
typedef enum lunnel_on_error {
    LUNNEL_ON_ERROR_RETRY = 0, /* submit the same batch again with backoff, up to max_retries;
                                  then close the channel (re-read from its checkpoint) */
    LUNNEL_ON_ERROR_SKIP,      /* write it to the dead-letter file (fsync), then it is handled */
    LUNNEL_ON_ERROR_STOP,      /* checkpoint what was handled, drain, exit 1 */
} lunnel_on_error;

/* "retry" | "skip" | "stop" -> 0 with *out set; -1 for anything else. */
int lunnel_on_error_parse(const char *s, int *out);

typedef struct lunnel_worker_config {
    struct ev_loop *loop;   /* the loop whose clock the worker uses (unless `clock`) */
    struct lunnel_api *api; /* borrowed; the tunnel calls go to api.h (unless `calls`) */
    /* Injected environment (worker_env.h), all borrowed; NULL: the real one above. */
    const struct lunnel_worker_calls *calls; /* the tunnel calls (copied at new) */
    const struct lunnel_worker_clock *clock; /* time and timers (copied at new) */
    double (*rand01)(void *rand_ud);         /* uniform in [0, 1): jitter, reconnect delays;
                                                NULL: lunnel_retry_rand01 (seeded per process) */
    void *rand_ud;
    const char *tunnel_id;         /* required */
    const char *table_name;        /* for DescribeTunnel (exit_when_done); may be NULL */
    const char *tunnel_name;       /* likewise */
    const char *client_tag;        /* ClientConfig.client_tag; NULL: none */
    double heartbeat_interval_s;   /* > 0 (CLI enforces >= 0.1) */
    double heartbeat_timeout_s;    /* > interval; sent in Connect; local timeout too */
    int prefetch;                  /* batches read ahead of processing per channel (>= 0) */
    size_t max_inflight_bytes;     /* response bytes held by unfinished batches, all channels */
    double max_backoff_s;          /* cap of the stream read backoff */
    double checkpoint_interval_s;  /* periodic checkpoint flush */
    int manual_commit;             /* 1: only ctx:commit() marks batches handled */
    int max_channels;              /* channels processed at once; 0 = unlimited */
    double drain_timeout_s;        /* graceful stop bound */
    int exit_when_done;            /* stop with 0 once every channel of the tunnel TERMINATED */
    double reconnect_delay_max_s;  /* daemon: random 0..this before reconnecting (10 s) */
    double connect_retry_window_s; /* give up (exit 1) when Connect has failed with retriable
                                      errors for this long; <= 0: retry forever */
    int on_error;                  /* lunnel_on_error: what a failed process() batch does */
    int max_retries;               /* --on-error retry: re-submissions before closing */
    double retry_backoff_max_s;    /* cap of the delay between re-submissions (> 0) */
    const char *dead_letter_path;  /* --on-error skip: the JSON Lines file (dead_letter.h) */
    struct lunnel_dead_letter *dead_letter; /* opened at start-up (exit 2 when it cannot be);
                                             * the worker owns it; NULL: opened at first use */
    lunnel_worker_processor proc;           /* required */
    lunnel_worker_exit_fn on_exit;
    void *ud;
    struct lunnel_metrics *metrics; /* optional, borrowed (metrics.h): counters fed on the loop */
} lunnel_worker_config;

/* Creates the worker (strings copied); NULL when out of memory. Nothing runs until start. */
lunnel_worker *lunnel_worker_new(const lunnel_worker_config *cfg);
/* Connects and starts heartbeating. */
void lunnel_worker_start(lunnel_worker *w);
/* Graceful drain (first SIGINT/SIGTERM): stop reading, let in-flight batches finish, flush
 * checkpoints, shutdown(ctx) each channel, call Shutdown, then on_exit(0). Bounded by
 * drain_timeout_s (then on_exit(1)). Idempotent. */
void lunnel_worker_stop(lunnel_worker *w);
/* Host completions (forward lunnel_host_config.on_done here). */
void lunnel_worker_on_done(lunnel_worker *w, const lunnel_host_completion *c);
/* Why the worker stopped with a non-zero status, as one line naming the call, the server's
 * code and request id (e.g. "connect: /tunnel/connect failed: OTSTunnelExpired ..."); ""
 * when it did not. Valid until lunnel_worker_free. */
const char *lunnel_worker_exit_reason(const lunnel_worker *w);

/* 1 when the last stop ended because --drain-timeout passed (a process() call may still be
 * running and never return: the caller must not wait for the Lua workers). */
int lunnel_worker_drain_timed_out(const lunnel_worker *w);
/* Frees the worker and everything it holds: calls still in flight are cancelled (their
 * callbacks never run), channel objects and their batches are freed. Call after on_exit (or
 * with the loop stopped), and after the processor stopped delivering completions (free the
 * Lua host first: the batches it was given are freed here). */
void lunnel_worker_free(lunnel_worker *w);

/* Counters for logs and tests. */
typedef struct lunnel_worker_stats {
    uint64_t heartbeats, reconnects, batches, records, checkpoints, checkpoint_failures;
    uint64_t batch_failures, batch_retries, dead_lettered; /* --on-error counters */
    int channels_open;
    size_t inflight_bytes;
} lunnel_worker_stats;
void lunnel_worker_get_stats(const lunnel_worker *w, lunnel_worker_stats *out);

#endif
