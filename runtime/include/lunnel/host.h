/* host.h: the Lua host, the processor behind the one queue between the tunnel side (libev
 * loop thread) and the user's script (DESIGN.md "Data flow and threads", "Hot reload"). The
 * queue's contract (batch, completion, codes) is host_queue.h; this header adds the host.
 *
 * N worker threads each own a LuaJIT lua_State running the script. A channel is pinned to one
 * worker at open; its jobs (open, batches, shutdown) run strictly in submission order;
 * different channels run in parallel. PlainBuffer decoding happens on the worker. Results
 * come back to the loop thread as completions: the host owns an ev_async on the loop given
 * in the config and calls `on_done` from that loop's thread, one completion at a time.
 *
 * Threading rule: every function here is called from the loop thread (the thread running
 * cfg.loop), except lunnel_host_reload() (any thread, async-signal-safe) and
 * lunnel_host_get_stats() (any thread).
 *
 * Script contract: the script is a module returning a table with `process(ctx, batch)`
 * (required), `open(ctx)`, `reload(ctx, old_version)`, `tick(ctx)` and `shutdown(ctx)`
 * (optional; docs/scripts.md says when each runs). ctx fields: tunnel_id, client_id,
 * channel_id, is_stream, trace_id, next_token, record_count, custom, state, log,
 * script_version, commit(). A version is the script plus the modules it requires from its
 * own directory and cfg.lua_path: a change to any of them reloads the whole set.
 *
 * Limits: a per-lua_State memory limit (cfg.memory_limit) makes an allocation past it fail
 * inside the script call (the batch fails with LUNNEL_HOST_EMEMORY, garbage is collected and
 * the state goes on); a watchdog reports a process() call running past
 * cfg.process_timeout_s with a LUNNEL_HOST_EV_TIMEOUT completion (LuaJIT cannot preempt
 * compiled code: the documented remedy is to checkpoint what succeeded and exit). */
#ifndef LUNNEL_HOST_H
#define LUNNEL_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "lunnel/host_queue.h"
#include "lunnel/log.h"

struct ev_loop;

typedef struct lunnel_host lunnel_host; /* opaque */

/* Built-in defaults. */
#define LUNNEL_HOST_DEFAULT_MEMORY_LIMIT ((size_t)1 << 30) /* 1 GiB per lua_State */
#define LUNNEL_HOST_MAX_WORKERS 256

/* May call channel_open / submit / channel_shutdown / reload; must not call lunnel_host_free
 * (stop the loop with ev_break and free the host after ev_run returns). */
typedef void (*lunnel_host_done_fn)(const lunnel_host_completion *c, void *ud);

/* Log sink for script logs (ctx.log) and the host's own lines, same shape as
 * lunnel_log_fields(). Called from worker threads; must be thread-safe. */
typedef void (*lunnel_host_log_fn)(lunnel_log_level level, const char *component, const char *msg,
                                   const lunnel_log_field *fields, size_t n_fields);

typedef struct lunnel_host_config {
    const char *script_path;  /* required; the module file */
    int workers;              /* <= 0: the number of online CPUs */
    const char *custom_json;  /* CustomValue as JSON (ctx.custom), NULL: ctx.custom = nil */
    const char *lua_dir;      /* directory holding lunnel/<module>.lua, put first in package.path;
                                 NULL: $LUNNEL_LUA_DIR, else LuaJIT's default package.path
                                 (an installed lunnel's share/lua/5.1) */
    size_t memory_limit;      /* bytes per lua_State; 0: LUNNEL_HOST_DEFAULT_MEMORY_LIMIT */
    double process_timeout_s; /* watchdog threshold; <= 0: off */
    double stuck_exit_s;      /* EV_STUCK threshold (with the watchdog on); <= 0: never */
    int watch;                /* 1: watch the script's directory (inotify) and hot reload */
    const char *lua_path;     /* ';'-separated directories whose modules belong to the script's
                                 version (besides its own directory); NULL: none */
    double tick_interval_s;   /* > 0: tick(ctx) on every open channel this often (EV_TICK) */
    struct ev_loop *loop;     /* required; completions are delivered on this loop */
    lunnel_host_done_fn on_done; /* required */
    void *ud;                    /* passed to on_done */
    lunnel_host_log_fn log;      /* NULL: lunnel_log_fields() when linked, else stderr */
} lunnel_host_config;

/* Creates the host: starts the workers, loads the script in each (a script that does not
 * load is an error: NULL and a message in err), starts the watcher and watchdog. The config
 * strings are copied. Free with lunnel_host_free. */
lunnel_host *lunnel_host_new(const lunnel_host_config *cfg, char *err, size_t err_cap);

/* Stops the watcher and workers and frees everything. A worker finishes the job it is
 * running; queued jobs are dropped without completion. Every open channel handle becomes
 * invalid. Blocks while a script call is running (see the watchdog note above). */
void lunnel_host_free(lunnel_host *h);

/* Pins a new channel to the least loaded worker and queues open(ctx) there (an EV_OPENED
 * completion follows). The handle stays valid until its EV_CLOSED completion returns (or
 * lunnel_host_free). NULL on bad argument or out of memory. */
lunnel_host_channel *lunnel_host_channel_open(lunnel_host *h, const lunnel_host_channel_info *info);

/* The channel id given at open (NULL when none). */
const char *lunnel_host_channel_id(const lunnel_host_channel *ch);

/* The worker (0-based) a channel is pinned to. */
int lunnel_host_channel_worker(const lunnel_host_channel *ch);

/* Queues a batch behind the channel's earlier jobs. 0 or a lunnel_host_code (ESTATE after
 * channel_shutdown). Exactly one EV_BATCH completion follows a 0 return. */
int lunnel_host_submit(lunnel_host_channel *ch, const lunnel_host_batch *b);

/* Queues shutdown(ctx) behind the channel's jobs; EV_CLOSED follows, then the handle is
 * freed. The channel's ctx.state is dropped. 0 or ESTATE if already shut down. */
int lunnel_host_channel_shutdown(lunnel_host_channel *ch);

/* Asks the watcher thread to check the script now (the SIGHUP path; works with or without
 * cfg.watch): async-signal-safe, callable from any thread or a signal handler. The check
 * reloads only if the bytes changed; progress shows in lunnel_host_get_stats. 0 or -1. */
int lunnel_host_reload(lunnel_host *h);

/* Counters, readable from any thread. */
typedef struct lunnel_host_stats {
    int workers;
    int script_version;      /* acknowledged version: every worker runs it (1 = initial) */
    uint64_t script_hash;    /* FNV-1a 64 of that version's source bytes */
    uint64_t reloads_ok;     /* acknowledged reloads (each: all workers swapped) */
    uint64_t reloads_failed; /* new sources rejected by validation (old version kept) */
    uint64_t batches_ok;
    uint64_t batches_failed;
    uint64_t timeouts;            /* watchdog reports */
    uint64_t memory_errors;       /* calls failed on the memory limit */
    uint64_t state_rebuilds;      /* states rebuilt after the script kept its memory */
    uint64_t worker_replacements; /* workers replaced because of a stuck call */
    int stuck_calls;              /* calls running past process_timeout_s now */
    double oldest_stuck_s;        /* the longest of them, seconds */
    char stuck_channel[128];      /* its channel id */
} lunnel_host_stats;

void lunnel_host_get_stats(lunnel_host *h, lunnel_host_stats *out);

/* Bytes currently allocated by the lua_State in worker slot `worker` (0-based; 0 when out of
 * range). Any thread; a relaxed read of a counter the worker updates (metrics, not accounting). */
size_t lunnel_host_worker_memory(lunnel_host *h, int worker);

/* FNV-1a 64 over bytes (what script_hash holds), for tests and tools. */
uint64_t lunnel_host_hash(const void *data, size_t len);

#endif
