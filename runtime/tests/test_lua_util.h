/* test_lua_util.h: what the Lua host tests share: batches built with the real PlainBuffer
 * encoder, script files written into a temporary directory (in place or by rename, like
 * editors do), a completion collector, a captured log, and a bounded ev loop runner that
 * waits on a condition (never on time alone). */
#ifndef LUNNEL_TEST_LUA_UTIL_H
#define LUNNEL_TEST_LUA_UTIL_H

#include <ev.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lunnel/host.h"
#include "lunnel/plainbuffer.h"

/* ---- batches ---- */

/* A PlainBuffer holding `rows` rows: pk (id INTEGER first_id+i), cols v STRING "val-<id>",
 * n INTEGER id*10. Returns malloc'd bytes (caller frees) and their length. */
static inline uint8_t *tl_make_rows(int64_t first_id, int rows, size_t *len)
{
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    lunnel_pb_write_header(&w);
    for (int i = 0; i < rows; i++) {
        int64_t id = first_id + i;
        char s[64];
        int sl = snprintf(s, sizeof s, "val-%lld", (long long)id);
        lunnel_value pk = lunnel_value_int(id);
        lunnel_value v = lunnel_value_bytes(LUNNEL_VT_STRING, s, (uint32_t)sl);
        lunnel_value n = lunnel_value_int(id * 10);
        lunnel_pb_begin_row(&w);
        lunnel_pb_write_pk(&w, "id", 2, &pk);
        lunnel_pb_write_cell(&w, "v", 1, &v, LUNNEL_OP_PUT, 0, 0);
        lunnel_pb_write_cell(&w, "n", 1, &n, LUNNEL_OP_PUT, 0, 0);
        lunnel_pb_end_row(&w);
    }
    if (w.error) {
        fprintf(stderr, "encoder failed: %d\n", w.error);
        abort();
    }
    uint8_t *out = malloc(w.len);
    memcpy(out, w.buf, w.len);
    *len = w.len;
    lunnel_pb_writer_free(&w);
    return out;
}

static inline size_t tl_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* A ReadRecordsResponse (protobuf written by hand, PROTOCOL.md section 2): `n` PUT records
 * with ids first_id.., each Record.record one PlainBuffer row, then next_token and
 * may_more_record = true. Returns malloc'd bytes. */
static inline uint8_t *tl_make_response(int64_t first_id, int n, const char *token, size_t *len)
{
    size_t cap = 64 + strlen(token), off = 0;
    uint8_t *out = malloc(cap);
    for (int i = 0; i < n; i++) {
        size_t rl = 0;
        uint8_t *row = tl_make_rows(first_id + i, 1, &rl);
        uint8_t rec[32];
        size_t hl = 0;
        rec[hl++] = 0x08; /* action_type = PUT_ROW */
        rec[hl++] = 1;
        rec[hl++] = 0x12; /* record */
        hl += tl_varint(rec + hl, rl);
        cap += hl + rl + 16;
        out = realloc(out, cap);
        out[off++] = 0x0a; /* records */
        off += tl_varint(out + off, hl + rl);
        memcpy(out + off, rec, hl);
        off += hl;
        memcpy(out + off, row, rl);
        off += rl;
        free(row);
    }
    out[off++] = 0x12; /* next_token */
    off += tl_varint(out + off, strlen(token));
    memcpy(out + off, token, strlen(token));
    off += strlen(token);
    out[off++] = 0x18; /* may_more_record */
    out[off++] = 1;
    *len = off;
    return out;
}

/* ---- files ---- */

static char tl_dir[256];

static void tl_mkdir(void)
{
    snprintf(tl_dir, sizeof tl_dir, "/tmp/lunnel-hosttest-XXXXXX");
    if (!mkdtemp(tl_dir)) {
        perror("mkdtemp");
        abort();
    }
}

static void tl_rmdir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tl_dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", tl_dir);
}

/* Writes `text` to dir/name; by_rename: write name.tmp then rename over (vim, atomic
 * writers), else truncate and write in place. Returns the path (static buffer). */
static inline const char *tl_write(const char *name, const char *text, int by_rename)
{
    static char path[512];
    char tmp[520];
    snprintf(path, sizeof path, "%s/%s", tl_dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(by_rename ? tmp : path, "w");
    if (!f) {
        perror("fopen");
        abort();
    }
    fputs(text, f);
    fclose(f);
    if (by_rename && rename(tmp, path) != 0) {
        perror("rename");
        abort();
    }
    return path;
}

/* ---- completions and logs ---- */

typedef struct tl_done {
    int event, status, committed, version;
    uint32_t records;
    void *channel_user, *batch_user;
    char error[512];
    char traceback[2048];
    char error_tail[64]; /* last bytes of the error text */
    size_t error_len;
    int dead_lettered;
    char dead_letter_error[128];
} tl_done;

#define TL_MAX_DONE 20000
static tl_done tl_dones[TL_MAX_DONE];
static int tl_ndone;

static void tl_on_done(const lunnel_host_completion *c, void *ud)
{
    (void)ud;
    if (tl_ndone >= TL_MAX_DONE) return;
    tl_done *d = &tl_dones[tl_ndone++];
    memset(d, 0, sizeof *d);
    d->event = c->event;
    d->status = c->status;
    d->committed = c->committed;
    d->version = c->script_version;
    d->records = c->record_count;
    d->channel_user = c->channel_user;
    d->batch_user = c->batch_user;
    d->error_len = strlen(c->error);
    snprintf(d->error, sizeof d->error, "%s", c->error);
    snprintf(d->error_tail, sizeof d->error_tail, "%s",
             d->error_len > 40 ? c->error + d->error_len - 40 : c->error);
    snprintf(d->traceback, sizeof d->traceback, "%s", c->traceback);
    d->dead_lettered = c->dead_lettered;
    if (c->dead_letter_error)
        snprintf(d->dead_letter_error, sizeof d->dead_letter_error, "%s", c->dead_letter_error);
}

static inline int tl_count_event(int ev)
{
    int n = 0;
    for (int i = 0; i < tl_ndone; i++)
        n += tl_dones[i].event == ev;
    return n;
}

/* Captured log lines "component|msg|k=v|k=v" (worker threads write, under a mutex). */
#define TL_MAX_LOG 20000
static char *tl_log[TL_MAX_LOG];
static int tl_nlog;
static pthread_mutex_t tl_log_mu = PTHREAD_MUTEX_INITIALIZER;
static int tl_echo_log; /* print lines too (debugging) */

/* Long values are captured as "<first 20>...<len=N tail=<last 24>>". */
static const char *tl_short(const char *v, char *buf, size_t cap)
{
    size_t n = v ? strlen(v) : 0;
    if (!v) return "null";
    if (n <= 200) return v;
    snprintf(buf, cap, "%.20s...<len=%zu tail=%s>", v, n, v + n - 24);
    return buf;
}

/* A rendezvous for the parallelism test: a script line with msg "barrier" blocks its worker
 * until `tl_barrier_need` workers arrived (or 5 s passed: then tl_barrier_timeouts++). */
static pthread_mutex_t tl_bar_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tl_bar_cv = PTHREAD_COND_INITIALIZER;
static int tl_barrier_need, tl_barrier_seen, tl_barrier_timeouts;

static void tl_barrier(void)
{
    pthread_mutex_lock(&tl_bar_mu);
    tl_barrier_seen++;
    pthread_cond_broadcast(&tl_bar_cv);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    while (tl_barrier_seen < tl_barrier_need) {
        if (pthread_cond_timedwait(&tl_bar_cv, &tl_bar_mu, &ts) != 0) {
            tl_barrier_timeouts++;
            break;
        }
    }
    pthread_mutex_unlock(&tl_bar_mu);
}

static void tl_log_fn(lunnel_log_level level, const char *component, const char *msg,
                      const lunnel_log_field *f, size_t n)
{
    char line[4096], sb[128];
    if (strcmp(msg, "barrier") == 0) tl_barrier();
    int off = snprintf(line, sizeof line, "%s|%s", component, tl_short(msg, sb, sizeof sb));
    for (size_t i = 0; i < n && off > 0 && (size_t)off < sizeof line; i++)
        off += snprintf(line + off, sizeof line - off, "|%s=%s", f[i].key,
                        tl_short(f[i].value, sb, sizeof sb));
    if (tl_echo_log || level >= LUNNEL_LOG_WARN) fprintf(stderr, "log: %.300s\n", line);
    pthread_mutex_lock(&tl_log_mu);
    if (tl_nlog < TL_MAX_LOG) tl_log[tl_nlog++] = strdup(line);
    pthread_mutex_unlock(&tl_log_mu);
}

/* Number of captured lines containing every one of the given substrings (NULL-terminated). */
static inline int tl_log_count(const char *a, const char *b)
{
    int n = 0;
    pthread_mutex_lock(&tl_log_mu);
    for (int i = 0; i < tl_nlog; i++)
        if (strstr(tl_log[i], a) && (!b || strstr(tl_log[i], b))) n++;
    pthread_mutex_unlock(&tl_log_mu);
    return n;
}

static inline void tl_log_clear(void)
{
    pthread_mutex_lock(&tl_log_mu);
    for (int i = 0; i < tl_nlog; i++)
        free(tl_log[i]);
    tl_nlog = 0;
    pthread_mutex_unlock(&tl_log_mu);
}

/* ---- bounded waiting ---- */

static double tl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void tl_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* Runs the loop until cond(arg) holds or `timeout` seconds pass; returns cond's last value.
 * A 5 ms ticker bounds each ev_run(ONCE). */
static inline int tl_run_until(struct ev_loop *loop, int (*cond)(void *), void *arg, double timeout)
{
    ev_timer tick;
    ev_timer_init(&tick, tl_tick, 0.005, 0.005);
    ev_timer_start(loop, &tick);
    double end = tl_now() + timeout;
    int ok = cond(arg);
    while (!ok && tl_now() < end) {
        ev_run(loop, EVRUN_ONCE);
        ok = cond(arg);
    }
    ev_timer_stop(loop, &tick);
    return ok;
}

static inline int tl_cond_ndone(void *arg)
{
    return tl_ndone >= *(int *)arg;
}

/* lunnel.record finds the C library through ffi.C inside the lunnel binary; the test
 * executables do not export symbols, so point it at this build's liblunnel.so. */
static inline void tl_setup_env(void)
{
    const char *b = getenv("LUNNEL_BUILD_DIR");
    if (b && !getenv("LUNNEL_LIB")) {
        char lib[1024];
        snprintf(lib, sizeof lib, "%s/liblunnel.so", b);
        setenv("LUNNEL_LIB", lib, 1);
    }
}

static inline lunnel_host_config tl_config(struct ev_loop *loop, const char *script, int workers)
{
    lunnel_host_config c;
    memset(&c, 0, sizeof c);
    c.script_path = script;
    c.workers = workers;
    c.loop = loop;
    c.on_done = tl_on_done;
    c.log = tl_log_fn;
    const char *src = getenv("LUNNEL_SOURCE_DIR");
    static char lua_dir[1024];
    if (src) {
        snprintf(lua_dir, sizeof lua_dir, "%s/lua", src);
        c.lua_dir = lua_dir;
    }
    return c;
}

#endif
