/* host_internal.h: the structures shared by the Lua host's parts (host.c: queues, workers,
 * completions; state.c: one worker's lua_State; reload.c: watcher + validation; decode.c:
 * batch bytes -> record view). Not a public header. */
#ifndef LUNNEL_HOST_INTERNAL_H
#define LUNNEL_HOST_INTERNAL_H

#include <ev.h>
#include <pthread.h>
#include <stdint.h>

#include "lunnel/host.h"

typedef struct lua_State lua_State;
typedef struct lunnel_arena lunnel_arena;
typedef struct lunnel_batch lunnel_batch;

enum { JOB_OPEN = 1, JOB_BATCH, JOB_SHUTDOWN, JOB_TICK };

/* One queued unit of work for a worker. */
typedef struct host_job {
    int kind;
    lunnel_host_channel *ch;
    lunnel_host_batch batch; /* JOB_BATCH: data/ranges borrowed, next_token owned (copied) */
    struct host_job *next;
} host_job;

/* One user module of a version: a file the script required from its own directory or a
 * --lua-path directory, with the exact bytes that were validated. */
typedef struct script_module {
    char *name; /* require() name, e.g. "helpers.fmt" */
    char *path; /* the file it came from */
    char *source;
    size_t len;
    uint64_t hash;
} script_module;

/* A validated version: the script's source plus its user modules, swapped in as one unit;
 * shared by the workers (refcounted under h->script_mu). */
typedef struct script_version {
    int gen; /* 1 = the source loaded at start, +1 per validated reload */
    char *source;
    size_t len;
    uint64_t hash; /* of the script's own bytes */
    script_module *mods;
    int n_mods;
    int refs;
} script_version;

/* A lua_State plus its allocation limiter (state.c). */
typedef struct host_state {
    lua_State *L;
    size_t used;      /* bytes currently allocated by this state */
    size_t limit;     /* refuse growth past this while armed */
    int armed;        /* 1 only while user code runs (C-side bookkeeping never fails) */
    int hit_limit;    /* the memory hook raised "not enough memory" since the last clear */
    int hook_set;     /* the memory hook is installed (crossed the limit while armed) */
    size_t peak;      /* largest `used` seen (diagnostics, tests) */
    void *orig_alloc; /* LuaJIT's own allocator, wrapped */
    void *orig_ud;
    int runner_ref;  /* registry ref of the lunnel.host runner table */
    uint64_t serial; /* unique per state ever opened (channels remember where open() ran) */
    struct lunnel_host *h;
    int worker; /* worker index, -1 for the validation scratch state */
} host_state;

/* Outcome of one call into the script. */
typedef struct call_result {
    int status;      /* lunnel_host_code */
    char *error;     /* malloc'd or NULL */
    char *traceback; /* malloc'd or NULL */
    int committed;
    uint32_t records;
    int64_t newest_ts_us;        /* largest seq_timestamp of the batch (metrics: stream lag) */
    int dead_lettered;           /* a failed batch's dead_letter hook set it aside */
    char dead_letter_error[512]; /* "" or why the hook failed */
} call_result;

typedef struct host_worker {
    struct lunnel_host *h;
    int index;
    pthread_t thread;
    int started;
    pthread_mutex_t mu; /* guards the queue and stop */
    pthread_cond_t cv;
    host_job *head, *tail;
    int stop;
    host_state st;
    lunnel_arena *arena;
    uint64_t hash;  /* hash of that version (under script_mu) */
    int version;    /* script generation loaded in st (worker thread; read under script_mu) */
    int n_channels; /* loop thread only: channels pinned here */
    int replaced;   /* loop thread: a replacement took this worker's slot (stuck call) */
    struct host_worker *retired_next; /* h->retired list (under script_mu) */
    /* watchdog view of the running call, guarded by busy_mu */
    pthread_mutex_t busy_mu;
    int64_t busy_since_ns;      /* 0: idle */
    uint64_t busy_seq;          /* increments per call */
    uint64_t reported_seq;      /* last call reported by the watchdog */
    uint64_t exit_reported_seq; /* last call reported past cfg.stuck_exit_s */
    lunnel_host_channel *busy_ch;
    void *busy_user;
} host_worker;

struct lunnel_host_channel {
    struct lunnel_host *h;
    host_worker *w;
    uint64_t key; /* the runner's key for this channel's ctx */
    void *user;
    char *tunnel_id, *client_id, *channel_id, *trace_id;
    int is_stream;
    uint64_t state_serial; /* worker thread: serial of the state where open() last ran */
    int shut;              /* shutdown queued (loop thread) */
    int tick_pending;      /* a tick job is queued or running (loop thread) */
    int tick_failing;      /* the last tick raised (worker thread: log pacing) */
    struct lunnel_host_channel *prev, *next; /* h->channels list (loop thread) */
};

/* A completion on its way to the loop thread. */
typedef struct host_done {
    lunnel_host_completion c;
    char *error, *traceback; /* owned */
    char dead_letter_error[512];
    struct host_done *next;
} host_done;

struct lunnel_host {
    lunnel_host_config cfg; /* strings below are owned copies */
    char *script_path, *script_dir, *script_base, *custom_json, *lua_dir;
    char *user_dirs;     /* "script_dir;--lua-path dirs": where the version's modules come from */
    ev_timer tick_timer; /* cfg.tick_interval_s > 0: queues tick jobs (loop thread) */
    int n_workers;
    host_worker **workers;  /* slots; a stuck worker's slot gets a replacement (watchdog.c) */
    host_worker *retired;   /* replaced workers, freed with the host (under script_mu) */
    uint64_t state_serials; /* last host_state.serial handed out (atomic) */
    size_t memory_limit;    /* per state */
    struct ev_loop *loop;
    ev_async async;
    pthread_mutex_t done_mu;
    host_done *done_head, *done_tail;
    uint64_t next_key;
    lunnel_host_channel *channels;

    /* script versions and reload acknowledgement */
    pthread_mutex_t script_mu;
    script_version *current;
    int gen;       /* generation of current (atomic reads by workers) */
    int acked_gen; /* every worker runs >= this */
    uint64_t acked_hash;

    /* counters (atomics) */
    uint64_t reloads_ok, reloads_failed, batches_ok, batches_failed, timeouts, memory_errors;
    uint64_t state_rebuilds, worker_replacements;

    /* watcher (reload.c) */
    pthread_t watcher;
    int watcher_started;
    int inotify_fd, wake_fd; /* wake_fd: eventfd, written by lunnel_host_reload / free */
    int watcher_stop;
    int watch_any;        /* the script is a symlink: any event in its directory triggers a check */
    uint64_t missing_sig; /* which version files were missing at the last check (log once) */

    /* watchdog (host.c) */
    pthread_t watchdog;
    int watchdog_started;
    pthread_mutex_t wd_mu;
    pthread_cond_t wd_cv;
    int wd_stop;
};

/* watchdog.c: the thread reporting calls past cfg.process_timeout_s (and past
 * cfg.stuck_exit_s), the stuck-call view for stats, and the replacement of a stuck worker. */
void *watchdog_main(void *arg);
/* Loop thread, on a stuck call's EV_TIMEOUT: gives the worker's other channels and queued
 * jobs to a fresh worker (new state) in the same slot; the stuck channel stays behind. */
void host_replace_stuck_worker(struct lunnel_host *h, lunnel_host_channel *stuck);
/* Counts calls running past the timeout now; fills the oldest one's channel and seconds. */
int host_stuck_calls(struct lunnel_host *h, double *oldest_s, char *channel, size_t cap);

/* host.c */
/* A worker with its state (running the current script version), queue and arena, not yet
 * started; NULL + err. worker_start runs its thread. */
host_worker *worker_create(struct lunnel_host *h, int index, int record, char *err, size_t cap);
int worker_start(host_worker *w);
void worker_destroy(host_worker *w);
void post_done(struct lunnel_host *h, lunnel_host_event ev, lunnel_host_channel *ch,
               void *batch_user, call_result *r, double elapsed, int version);
void host_log(struct lunnel_host *h, lunnel_log_level level, const char *msg, ...);
void host_log_fields(struct lunnel_host *h, lunnel_log_level level, const char *component,
                     const char *msg, const lunnel_log_field *f, size_t n);
int host_log_enabled(struct lunnel_host *h, lunnel_log_level level);
int64_t host_now_ns(void);
void script_unref(struct lunnel_host *h, script_version *v);
void script_version_free(script_version *v);      /* source, modules and v */
void script_version_free_mods(script_version *v); /* modules only (v->mods = NULL) */
/* Called by the watcher after a successful validation: publishes v (source and modules set,
 * ownership moves) and wakes the workers. */
void host_publish(struct lunnel_host *h, script_version *v);

/* state.c */
int state_open(host_state *st, struct lunnel_host *h, int worker, size_t limit, char *err,
               size_t cap);
void state_close(host_state *st);
/* Compiles and runs v's source with v's modules served to require() (files on disk for
 * modules v does not hold), checks it returns process(); on success installs the handlers as
 * the state's active ones (install=1) or just validates (install=0). With record=1 the user
 * modules the load required (path and exact bytes) replace v->mods. 0 or ELOAD (+err). */
int state_load(host_state *st, script_version *v, int install, int record, char *err, size_t cap);
void state_open_channel(host_state *st, lunnel_host_channel *ch, call_result *r);
/* process(ctx, batch) with ctx.next_token / ctx.trace_id of this batch (NULL trace_id:
 * ctx.trace_id keeps its value). */
void state_process(host_state *st, lunnel_host_channel *ch, const lunnel_batch *b,
                   const char *next_token, const char *trace_id, call_result *r);
void state_shutdown_channel(host_state *st, lunnel_host_channel *ch, call_result *r);
void state_tick_channel(host_state *st, lunnel_host_channel *ch, call_result *r);

/* decode.c: the batch bytes -> a record view in the worker's arena. 0 or EDECODE + err (and
 * the codec's own words, without the prefix, in why: what a dead letter records). */
int host_decode(lunnel_arena *arena, const lunnel_host_batch *b, const lunnel_batch **out,
                char *err, size_t cap, char *why, size_t why_cap);

/* reload.c */
int reload_start(struct lunnel_host *h, char *err, size_t cap);
/* Watches the directories of v's module files too (watcher thread, or before it starts). */
void reload_watch_modules(struct lunnel_host *h, const script_version *v);
void reload_stop(struct lunnel_host *h);
/* Reads a whole file; NULL + err on failure. */
char *host_read_file(const char *path, size_t *len, char *err, size_t cap);

#endif
