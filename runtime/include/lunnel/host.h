/* host.h: the Lua host, the one queue interface between the tunnel side (libev loop thread)
 * and the user's script (DESIGN.md "Data flow and threads", "Hot reload").
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

#include "lunnel/log.h"

struct ev_loop;

typedef struct lunnel_host lunnel_host;                 /* opaque */
typedef struct lunnel_host_channel lunnel_host_channel; /* opaque, see channel_open */

/* Error codes of the host subsystem (completion status and return values). */
typedef enum lunnel_host_code {
    LUNNEL_HOST_OK = 0,
    LUNNEL_HOST_ESCRIPT, /* the script raised an error (error + traceback set) */
    LUNNEL_HOST_EMEMORY, /* the state's memory limit was hit during the call */
    LUNNEL_HOST_EDECODE, /* the batch bytes are not a valid response / PlainBuffer */
    LUNNEL_HOST_ELOAD,   /* the script cannot be loaded (compile, run, no process()) */
    LUNNEL_HOST_EINVAL,  /* bad argument or config */
    LUNNEL_HOST_ESTATE,  /* call not allowed now (channel shut down, host stopping) */
    LUNNEL_HOST_ESYSTEM, /* thread / inotify / allocation failure */
} lunnel_host_code;

/* Static description of a code, e.g. "script error". */
const char *lunnel_host_strerror(int code);
/* Retriable means "the same batch may succeed if submitted again" (script errors and memory
 * are, decode errors are not: the bytes will not change). */
int lunnel_host_code_is_retriable(int code);

/* Built-in defaults. */
#define LUNNEL_HOST_DEFAULT_MEMORY_LIMIT ((size_t)1 << 30) /* 1 GiB per lua_State */
#define LUNNEL_HOST_MAX_WORKERS 256

/* What a completion reports. */
typedef enum lunnel_host_event {
    LUNNEL_HOST_EV_OPENED = 1, /* open(ctx) ran (or the script has none); status tells how */
    LUNNEL_HOST_EV_BATCH,      /* a submitted batch is done: ok or failed */
    LUNNEL_HOST_EV_CLOSED,     /* shutdown(ctx) ran; the channel handle is freed right after
                                  this completion's callback returns */
    LUNNEL_HOST_EV_TIMEOUT,    /* watchdog: the batch (batch_user) has been running longer
                                  than process_timeout_s; it is still running (its EV_BATCH
                                  follows if it ever returns). Reported once per call. The
                                  restart hook: checkpoint what completed, then _exit() (not
                                  lunnel_host_free, which would wait for the stuck call) and
                                  let the supervisor restart; the batch is read again.
                                  On delivery the host has already moved the stuck worker's
                                  other channels to a replacement worker (their next batch
                                  runs open(ctx) first, in a fresh state). */
    LUNNEL_HOST_EV_STUCK,      /* watchdog: the call has been running longer than
                                  stuck_exit_s (once per call): exit and let the supervisor
                                  restart (nothing past the stuck batch was handled). */
    LUNNEL_HOST_EV_TICK,       /* tick(ctx) ran (cfg.tick_interval_s); `committed`: the script
                                  called ctx:commit() in it, i.e. every batch of this channel
                                  whose EV_BATCH completion came before this one is handled.
                                  A failed tick changes nothing (logged by the host). */
} lunnel_host_event;

/* Delivered to on_done on the loop thread. All pointers are valid only during the call. */
typedef struct lunnel_host_completion {
    lunnel_host_event event;
    lunnel_host_channel *channel; /* the handle returned by channel_open */
    void *channel_user;           /* lunnel_host_channel_info.user */
    void *batch_user;             /* lunnel_host_batch.user (EV_BATCH, EV_TIMEOUT), else NULL */
    int status;                   /* lunnel_host_code; EV_TIMEOUT: LUNNEL_HOST_OK */
    const char *error;            /* "" when ok; else the error text (file:line: message) */
    const char *traceback;        /* "" when none; the Lua traceback of a script error */
    int committed;                /* EV_BATCH: ctx:commit() was called during this process
                                     call (manual-commit mode: this batch's token and all
                                     before it may be checkpointed); EV_TICK, EV_CLOSED: it was
                                     called in tick / shutdown (every batch completed before
                                     may be checkpointed) */
    uint32_t record_count;        /* EV_BATCH: records decoded in the batch */
    double elapsed_s;             /* time spent in the job (EV_TIMEOUT: so far) */
    int script_version;           /* version of the script that ran it (1 = the first) */
    int64_t newest_timestamp_us;  /* EV_BATCH: largest record sequence timestamp (stream
                                     records, microseconds since the epoch); 0: none */
} lunnel_host_completion;

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

/* Channel identity, copied at open (strings may be NULL: ctx field is nil). */
typedef struct lunnel_host_channel_info {
    const char *tunnel_id;
    const char *client_id;
    const char *channel_id;
    const char *trace_id;
    int is_stream;
    void *user; /* returned in every completion of this channel */
} lunnel_host_channel_info;

/* Pins a new channel to the least loaded worker and queues open(ctx) there (an EV_OPENED
 * completion follows). The handle stays valid until its EV_CLOSED completion returns (or
 * lunnel_host_free). NULL on bad argument or out of memory. */
lunnel_host_channel *lunnel_host_channel_open(lunnel_host *h, const lunnel_host_channel_info *info);

/* The channel id given at open (NULL when none). */
const char *lunnel_host_channel_id(const lunnel_host_channel *ch);

/* The worker (0-based) a channel is pinned to. */
int lunnel_host_channel_worker(const lunnel_host_channel *ch);

/* What the batch bytes are. */
typedef enum lunnel_host_payload {
    LUNNEL_HOST_PAYLOAD_RANGES = 0,  /* response bytes + record ranges already scanned */
    LUNNEL_HOST_PAYLOAD_RESPONSE,    /* a whole ReadRecordsResponse: scanned on the worker */
    LUNNEL_HOST_PAYLOAD_PLAINBUFFER, /* one PlainBuffer with rows (replay, tests); actions are
                                        DELETE for rows with the delete marker, else PUT */
} lunnel_host_payload;

/* One batch. `data` (and `ranges`) are BORROWED: the caller keeps them alive and unchanged
 * until this batch's EV_BATCH completion is delivered (a retried batch is the same bytes
 * submitted again). next_token and trace_id are copied. */
typedef struct lunnel_host_batch {
    lunnel_host_payload kind;
    const uint8_t *data;
    size_t len;
    const void *ranges; /* PAYLOAD_RANGES: const lunnel_record_range[n_ranges] (codec.h) */
    size_t n_ranges;
    const char *next_token; /* ctx.next_token during this batch (NULL: nil) */
    void *user;             /* returned in the completion */
    const char *trace_id;   /* ctx.trace_id during this batch: the x-ots-trace-id of the
                               ReadRecords call that read it (NULL: ctx.trace_id unchanged) */
} lunnel_host_batch;

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
