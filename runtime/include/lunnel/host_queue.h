/* host_queue.h: the contract of the queue between the tunnel side (libev loop thread,
 * runtime/src/tunnel/) and the Lua host (worker threads, runtime/src/lua/): what a batch is,
 * what comes back as a completion, the codes and the rules read from them (retriable, label),
 * and the processor vtable through which the tunnel worker opens channels, submits batches
 * and shuts channels down. DESIGN.md "Who may include whom": the tunnel side includes this
 * header, never host.h, so it is built and tested without the host (a fake processor in
 * runtime/tests/test_tunnel_worker_flow.c); host.h builds the host on this contract.
 *
 * The helpers are static inline on purpose: one definition that both sides compile in,
 * without the tunnel library linking the host or the host linking the tunnel library.
 *
 * Threading: batches are submitted and completions delivered on the loop thread; the host's
 * worker threads see a batch only between the two (its bytes are borrowed meanwhile). */
#ifndef LUNNEL_HOST_QUEUE_H
#define LUNNEL_HOST_QUEUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct lunnel_host_channel lunnel_host_channel; /* opaque: one channel on the host */
struct lunnel_batch;                                    /* the record view (record.h) */
struct lunnel_host_dead_letter;

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

/* Static description of a code, e.g. "script error" (logs, `lunnel replay`). */
static inline const char *lunnel_host_strerror(int code)
{
    switch (code) {
    case LUNNEL_HOST_OK:
        return "ok";
    case LUNNEL_HOST_ESCRIPT:
        return "script error";
    case LUNNEL_HOST_EMEMORY:
        return "memory limit reached";
    case LUNNEL_HOST_EDECODE:
        return "bad batch bytes";
    case LUNNEL_HOST_ELOAD:
        return "script does not load";
    case LUNNEL_HOST_EINVAL:
        return "invalid argument";
    case LUNNEL_HOST_ESTATE:
        return "not allowed in this state";
    case LUNNEL_HOST_ESYSTEM:
        return "system error";
    default:
        return "unknown host error";
    }
}

/* The code as a stable label value of the failed-batch metrics (`code="script_error"`):
 * identifiers, unlike lunnel_host_strerror's prose; codes a batch cannot fail with share
 * "host_error". */
static inline const char *lunnel_host_code_label(int code)
{
    switch (code) {
    case LUNNEL_HOST_ESCRIPT:
        return "script_error";
    case LUNNEL_HOST_EMEMORY:
        return "lua_memory_limit";
    case LUNNEL_HOST_EDECODE:
        return "bad_batch_bytes";
    default:
        return "host_error";
    }
}

/* Retriable means "the same batch may succeed if submitted again" (script errors and memory
 * are, decode errors are not: the bytes will not change). The tunnel side's --on-error retry
 * policy decides with this. */
static inline int lunnel_host_code_is_retriable(int code)
{
    return code == LUNNEL_HOST_ESCRIPT || code == LUNNEL_HOST_EMEMORY;
}

/* Channel identity, copied at open (strings may be NULL: ctx field is nil). */
typedef struct lunnel_host_channel_info {
    const char *tunnel_id;
    const char *client_id;
    const char *channel_id;
    const char *trace_id;
    int is_stream;
    void *user; /* returned in every completion of this channel */
} lunnel_host_channel_info;

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
    /* Sets the batch aside when it fails (the tunnel side's dead-letter file, --on-error
     * skip); NULL: nothing. See lunnel_host_dead_letter below (borrowed: outlives the batch). */
    const struct lunnel_host_dead_letter *dead_letter;
} lunnel_host_batch;

/* The hook of a failing batch (one hook serves many batches: `batch` is the one that failed,
 * as submitted, its bytes still borrowed), called on the host's worker thread that ran it:
 * after the failure (process() or open(ctx) failed, the memory limit, bytes that do not
 * decode, ...) and BEFORE the batch's completion is posted, so whatever it writes is durable before
 * the tunnel side can treat the batch as handled and checkpoint past it. `records` is the batch
 * decoded by the host (valid during the call), NULL when the bytes did not decode (`decode_error`
 * then says why, in the codec's words); `error` and `traceback` are the completion's. Returns
 * 0 when the batch is set aside (completion.dead_lettered = 1), else -1 with a one-line reason
 * in err (completion.dead_letter_error). It must be thread-safe: several workers may call it
 * at once. The tunnel side's implementation is error_policy.c + dead_letter.c. */
typedef struct lunnel_host_dead_letter {
    int (*write)(void *ud, const struct lunnel_host_batch *batch,
                 const struct lunnel_batch *records, const char *decode_error, const char *error,
                 const char *traceback, char *err, size_t err_cap);
    void *ud;
} lunnel_host_dead_letter;

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
    lunnel_host_channel *channel;  /* the handle returned by channel_open */
    void *channel_user;            /* lunnel_host_channel_info.user */
    void *batch_user;              /* lunnel_host_batch.user (EV_BATCH, EV_TIMEOUT), else NULL */
    int status;                    /* lunnel_host_code; EV_TIMEOUT: LUNNEL_HOST_OK */
    const char *error;             /* "" when ok; else the error text (file:line: message) */
    const char *traceback;         /* "" when none; the Lua traceback of a script error */
    int committed;                 /* EV_BATCH: ctx:commit() was called during this process
                                      call (manual-commit mode: this batch's token and all
                                      before it may be checkpointed); EV_TICK, EV_CLOSED: it was
                                      called in tick / shutdown (every batch completed before
                                      may be checkpointed) */
    uint32_t record_count;         /* EV_BATCH: records decoded in the batch */
    double elapsed_s;              /* time spent in the job (EV_TIMEOUT: so far) */
    int script_version;            /* version of the script that ran it (1 = the first) */
    int64_t newest_timestamp_us;   /* EV_BATCH: largest record sequence timestamp (stream
                                      records, microseconds since the epoch); 0: none */
    int dead_lettered;             /* EV_BATCH, failed: the batch's dead_letter hook set it
                                      aside (durably, before this completion was posted) */
    const char *dead_letter_error; /* EV_BATCH: "" or why the hook failed */
} lunnel_host_completion;

/* The processor side of the queue, as the tunnel worker sees it (the Lua host in
 * `lunnel run`: lunnel_host_channel_open / lunnel_host_submit / lunnel_host_channel_shutdown
 * of host.h; a fake in tests). Completions come back through lunnel_worker_on_done()
 * (worker.h), in the order the host posts them. */
typedef struct lunnel_worker_processor {
    void *(*open)(void *ud, const lunnel_host_channel_info *info); /* NULL on failure; else the
                                                                      channel handle */
    int (*submit)(void *channel, const lunnel_host_batch *b);      /* 0 = queued: exactly one
                                                                      EV_BATCH follows */
    int (*shutdown)(void *channel);                                /* 0 = queued: EV_CLOSED
                                                                      follows */
    void *ud;
} lunnel_worker_processor;

#endif
