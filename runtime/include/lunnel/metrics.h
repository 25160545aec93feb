/* metrics.h: the counters of `lunnel run` (README "Metrics and health"), kept by the tunnel side
 * on the libev loop thread and rendered in the Prometheus text format by the CLI's /metrics
 * endpoint (src/cli/metrics_http.c) and read by the live status line (src/cli/status_tty.c).
 *
 * Cost model: the hot path (channel.c) calls these once per ReadRecords response and once per
 * batch completion, never per record except a byte read per record range to count actions.
 * Everything is owned by the loop thread: plain integers, no atomics, no locks. Counters
 * that live on other threads (Lua host, http) are read at render time through their own
 * thread-safe stats calls by the CLI.
 *
 * Every hook accepts a NULL channel/registry and does nothing then, so call sites need no
 * `if (metrics on)`. */
#ifndef LUNNEL_METRICS_H
#define LUNNEL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lunnel/buf.h"
#include "lunnel/codec.h"
#include "lunnel/errors.h"
#include "lunnel/host_queue.h"

struct lunnel_worker;

typedef struct lunnel_metrics lunnel_metrics;                 /* opaque registry */
typedef struct lunnel_metrics_channel lunnel_metrics_channel; /* one channel id's counters */

/* Latency histogram bucket bounds in seconds (Prometheus `le`), shared by every histogram. */
#define LUNNEL_METRICS_BUCKETS 14
extern const double lunnel_metrics_bucket_bounds[LUNNEL_METRICS_BUCKETS];

typedef struct lunnel_metrics_histogram {
    uint64_t counts[LUNNEL_METRICS_BUCKETS + 1]; /* per bucket (not cumulative); last = +Inf */
    uint64_t count;
    double sum;
} lunnel_metrics_histogram;

void lunnel_metrics_histogram_observe(lunnel_metrics_histogram *h, double v);

/* The renderers append to the base buffer (lunnel/buf.h; owned by the caller, free with
 * lunnel_buf_free). The old names stay as aliases for the renderers' many call sites. */
typedef lunnel_buf lunnel_metrics_buf;
#define lunnel_metrics_buf_printf lunnel_buf_printf

lunnel_metrics *lunnel_metrics_new(void); /* NULL when out of memory */
void lunnel_metrics_free(lunnel_metrics *m);

/* The counters of channel `id` (found or created; they outlive the channel object, so a
 * channel that comes back adds to the same counters). NULL when m is NULL or out of memory.
 * The pointer stays valid until lunnel_metrics_free. */
lunnel_metrics_channel *lunnel_metrics_channel_get(lunnel_metrics *m, const char *id);

/* ---- hooks (loop thread) ------------------------------------------------------------- */

/* A ReadRecords call is sent at `now` (ev_now seconds). */
void lunnel_metrics_read_start(lunnel_metrics_channel *c, double now);
/* Its response came back: `bytes` of body holding `n` records (n = 0 and ok = 0 on error). */
void lunnel_metrics_read_done(lunnel_metrics_channel *c, double now, size_t bytes, size_t n,
                              int ok);
/* A batch completion (EV_BATCH) with the ranges it was submitted with (actions counted on
 * success). Times are ev_now() values: seconds since the epoch. */
void lunnel_metrics_batch_done(lunnel_metrics_channel *c, const lunnel_host_completion *comp,
                               const lunnel_record_range *ranges, size_t n, double now);
/* A Checkpoint call finished at `now` (ok = accepted). */
void lunnel_metrics_checkpoint(lunnel_metrics_channel *c, double now, int ok);
/* An error by code ("OTSTunnelExpired", "script error", ...), with its formatted text (the
 * live status shows the last one). Works with a channel's registry via `c` or directly. */
void lunnel_metrics_error(lunnel_metrics *m, const char *code, const char *text);
void lunnel_metrics_channel_error(lunnel_metrics_channel *c, const char *code, const char *text);
/* Same for a failed API call: the server code, else the transport kind ("transport"). */
void lunnel_metrics_api_error(lunnel_metrics *m, const lunnel_error *err);
void lunnel_metrics_channel_api_error(lunnel_metrics_channel *c, const lunnel_error *err);
/* DescribeTunnel counts (BaseData progress). */
void lunnel_metrics_tunnel_counts(lunnel_metrics *m, int n_channels, int n_terminated);

/* ---- readers (loop thread) ----------------------------------------------------------- */

/* A snapshot for the live status line. */
typedef struct lunnel_metrics_summary {
    uint64_t records, batches, batches_failed, errors, checkpoints;
    int channels_by_state[8]; /* queued, getcheckpoint, opening, running, draining, closing */
    int channels_live;
    int channels_terminated;                /* channels this process read to the end */
    double slowest_lag_s;                   /* max stream lag over live stream channels; -1: none */
    const char *slowest_channel;            /* valid until the next call into the registry */
    int tunnel_channels, tunnel_terminated; /* from DescribeTunnel; -1 when unknown */
    char last_error[256];                   /* "" when none */
    double last_error_at;                   /* ev_now of it */
    int connected;
    double heartbeat_age_s; /* since the last good heartbeat (or Connect) */
} lunnel_metrics_summary;

/* Names of channels_by_state indices ("queued", ...). */
extern const char *const lunnel_metrics_state_names[6];

void lunnel_metrics_summarize(lunnel_metrics *m, const struct lunnel_worker *w, double now,
                              lunnel_metrics_summary *out);

/* Ready = connected and the last heartbeat is fresher than the heartbeat timeout. Returns 1
 * or 0 with a reason in why. */
int lunnel_metrics_ready(const struct lunnel_worker *w, double now, char *why, size_t cap);

/* Appends the tunnel-side metrics (per channel and global) in Prometheus text format. */
void lunnel_metrics_render(lunnel_metrics *m, const struct lunnel_worker *w, double now,
                           lunnel_metrics_buf *out);

#endif
