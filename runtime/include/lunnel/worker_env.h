/* worker_env.h: what the tunnel worker (worker.h) takes from outside, injected so that the
 * worker runs the same against the real service and against fakes in tests:
 *   - the tunnel calls it makes, through a vtable whose calls return cancellable handles
 *     (lunnel_worker_calls_api(): the real ones on api.h);
 *   - the clock: the time read for timeouts and pacing, and the timers (heartbeat,
 *     checkpoint, backoffs, drain bound) (lunnel_worker_clock_ev(): a libev loop's);
 *   - the random source of jitter and reconnect delays (worker config: rand01).
 * A fake of each (runtime/tests/test_tunnel_worker_flow.c) makes the worker's state machine
 * deterministic: every reply is given by the test, time moves only when the test says so.
 *
 * Threading: everything here is used on the worker's loop thread only. */
#ifndef LUNNEL_WORKER_ENV_H
#define LUNNEL_WORKER_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "lunnel/channel.h"
#include "lunnel/errors.h"

struct ev_loop;
struct lunnel_api;

/* ---- tunnel calls ----------------------------------------------------------------------- */

/* A call in flight (opaque to the worker). Valid from the call's return until its callback
 * returns or it is cancelled, whichever comes first. */
typedef struct lunnel_worker_call lunnel_worker_call;

/* Callbacks: a NULL `err` means success; every pointer argument is valid only during the
 * callback. Each is called exactly once per handle returned, never from inside the call that
 * returned the handle, and never after lunnel_worker_calls.cancel on that handle. */
typedef void (*lunnel_worker_connect_cb)(void *ud, const lunnel_error *err, const char *client_id);
typedef void (*lunnel_worker_heartbeat_cb)(void *ud, const lunnel_error *err,
                                           const lunnel_channel_view *v, size_t n);
typedef void (*lunnel_worker_getcp_cb)(void *ud, const lunnel_error *err, const char *token,
                                       int64_t seq);
typedef void (*lunnel_worker_status_cb)(void *ud, const lunnel_error *err);
/* `body` is the raw ReadRecordsResponse; ownership passes to the callback (free()).
 * trace_id: the call's x-ots-trace-id (may be NULL). */
typedef void (*lunnel_worker_read_cb)(void *ud, const lunnel_error *err, uint8_t *body, size_t len,
                                      const char *trace_id);
/* Channel counts of DescribeTunnel: how many exist, how many are TERMINATED. */
typedef void (*lunnel_worker_describe_cb)(void *ud, const lunnel_error *err, int n_channels,
                                          int n_terminated);

/* The calls the worker issues. Arguments are borrowed only during the call (requests are
 * encoded before it returns). Each returns the call's handle, or NULL when the call could not
 * be made (out of memory): then its callback is never called and the worker treats it as a
 * failed call. */
typedef struct lunnel_worker_calls {
    lunnel_worker_call *(*connect)(void *impl, const char *tunnel_id, int64_t timeout_s,
                                   const char *client_tag, lunnel_worker_connect_cb cb, void *ud);
    lunnel_worker_call *(*heartbeat)(void *impl, const char *tunnel_id, const char *client_id,
                                     const lunnel_channel_view *v, size_t n,
                                     lunnel_worker_heartbeat_cb cb, void *ud);
    lunnel_worker_call *(*shutdown)(void *impl, const char *tunnel_id, const char *client_id,
                                    lunnel_worker_status_cb cb, void *ud);
    lunnel_worker_call *(*get_checkpoint)(void *impl, const char *tunnel_id, const char *client_id,
                                          const char *channel_id, lunnel_worker_getcp_cb cb,
                                          void *ud);
    lunnel_worker_call *(*checkpoint)(void *impl, const char *tunnel_id, const char *client_id,
                                      const char *channel_id, const char *token, int64_t seq,
                                      lunnel_worker_status_cb cb, void *ud);
    lunnel_worker_call *(*read_records)(void *impl, const char *tunnel_id, const char *client_id,
                                        const char *channel_id, const char *token,
                                        lunnel_worker_read_cb cb, void *ud);
    lunnel_worker_call *(*describe)(void *impl, const char *table_name, const char *tunnel_name,
                                    const char *tunnel_id, lunnel_worker_describe_cb cb, void *ud);
    /* Abandons a call in flight: its callback is not called, its resources are released.
     * Never from inside that call's own callback. */
    void (*cancel)(void *impl, lunnel_worker_call *call);
    void *impl;
} lunnel_worker_calls;

/* The real calls, on api.h (run_calls.c): requests built with protobuf-c, each api result
 * turned back into strings, channel views or the raw ReadRecords body. `api` is borrowed. */
lunnel_worker_calls lunnel_worker_calls_api(struct lunnel_api *api);

/* ---- clock ---------------------------------------------------------------------------------- */

typedef struct lunnel_worker_timer lunnel_worker_timer; /* opaque, made by the clock */
typedef void (*lunnel_worker_timer_fn)(void *ud);

/* Time and timers. `now` is in seconds on a monotonic scale (only differences matter); a
 * timer fires `fire(ud)` `after_s` from now, then every `repeat_s` when > 0; starting an
 * active timer re-arms it. */
typedef struct lunnel_worker_clock {
    double (*now)(void *impl);
    lunnel_worker_timer *(*timer_new)(void *impl, lunnel_worker_timer_fn fire, void *ud); /* NULL:
                                                                                     OOM */
    void (*timer_start)(void *impl, lunnel_worker_timer *t, double after_s, double repeat_s);
    void (*timer_stop)(void *impl, lunnel_worker_timer *t);
    int (*timer_active)(void *impl, const lunnel_worker_timer *t);
    void (*timer_free)(void *impl, lunnel_worker_timer *t); /* stops it first; NULL is a no-op */
    void *impl;
} lunnel_worker_clock;

/* The clock of a libev loop (run_clock.c): now = ev_now(loop), timers are ev_timers. */
lunnel_worker_clock lunnel_worker_clock_ev(struct ev_loop *loop);

#endif
