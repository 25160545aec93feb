/* cmd_replay.c: `lunnel replay --script S [options] FILE...`: feeds recorded batches to a
 * script through the very same Lua host `lunnel run` uses, without any network: for
 * debugging a transform on captured traffic and for benchmarking the host (--workers,
 * --channels, --repeat). FILEs are what lunnel writes or receives: `lunnel run --capture`
 * files (every ReadRecords response of a run, capture.h), dead-letter files of
 * `--on-error skip` and r:tojson() JSON Lines (re-encoded as PlainBuffer by lunnel.json),
 * ReadRecordsResponse bodies, or bare PlainBuffer files. Each channel gets every batch in
 * order, --repeat times, a window of batches in flight; failures print their error and Lua
 * traceback. The last line on stdout is a summary:
 *   replay: batches=N records=N failed=N seconds=S records_per_s=R cpu_seconds=S
 *           records_per_cpu_s=R workers=W channels=C
 * Exit status 0 when every batch succeeded, 1 when any failed, 2 on usage errors. */
#include <ev.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cli/capture.h"
#include "cli/client_options.h"
#include "cli/lua_dir.h"
#include "lunnel/buf.h"
#include "lunnel/host.h"
#include "lunnel/log.h"
#include "lunnel/options.h"
#include "lunnel/readrecords.h"

int lunnel_cmd_replay(int argc, char **argv);
void lunnel_cmd_replay_markdown(FILE *f);

static const lunnel_opt replay_opts_table[] = {
    {"script", LUNNEL_OPT_STRING, NULL, NULL, NULL, "FILE", 1,
     "the Lua script (a module returning process, open?, shutdown?)"},
    {"custom", LUNNEL_OPT_STRING, NULL, NULL, NULL, "JSON", 0, "CustomValue as JSON (ctx.custom)"},
    {"format", LUNNEL_OPT_ENUM, "auto", NULL, "auto|capture|jsonl|response|plainbuffer", NULL, 0,
     "what FILEs hold: lunnel run --capture files, dead-letter or r:tojson() JSON Lines, "
     "ReadRecordsResponse bodies or bare PlainBuffer (auto: by the first bytes)"},
    {"workers", LUNNEL_OPT_INT, "0", NULL, NULL, "N", 0, "Lua worker threads (0: one per CPU)"},
    {"channels", LUNNEL_OPT_INT, "1", NULL, NULL, "N", 0,
     "channels replaying the files in parallel"},
    {"repeat", LUNNEL_OPT_INT, "1", NULL, NULL, "N", 0, "times each channel replays the file list"},
    {"window", LUNNEL_OPT_INT, "4", NULL, NULL, "N", 0, "batches in flight per channel"},
    {"memory-limit", LUNNEL_OPT_BYTES, "0", NULL, NULL, "BYTES", 0, "per Lua state (0: 1 GiB)"},
    {"lua-path", LUNNEL_OPT_STRING, NULL, NULL, NULL, "DIRS", 0,
     "';'-separated directories of the script's own modules (as for lunnel run)"},
    {"process-timeout", LUNNEL_OPT_DURATION, "0", NULL, NULL, NULL, 0,
     "warn when one process() call runs longer (0: off)"},
    {"stream", LUNNEL_OPT_BOOL, NULL, NULL, NULL, NULL, 0, "ctx.is_stream = true"},
    {"quiet", LUNNEL_OPT_BOOL, NULL, NULL, NULL, NULL, 0, "report only the first failure"},
};
static const lunnel_opt_set replay_set = LUNNEL_OPT_SET("Replay", replay_opts_table);

static const lunnel_command_spec lunnel_cmd_replay_spec = {
    "replay",
    "lunnel replay --script S [--custom JSON] [options] FILE...",
    "feed recorded ReadRecords responses (or PlainBuffer files) to a script, no network",
    {&replay_set, &lunnel_opts_logging},
    2,
    1,
    1 << 30,
};

/* The README's option reference (main.c's `help --markdown`). */
void lunnel_cmd_replay_markdown(FILE *f)
{
    lunnel_opts_print_markdown(&lunnel_cmd_replay_spec, f);
}

typedef struct replay_opts {
    const char *script, *custom, *format;
    long workers, channels, repeat, window;
    size_t memory_limit;
    double process_timeout;
    int stream, quiet;
} replay_opts;

/* ---- the replay itself ---- */

/* One batch to replay (a file, a capture frame, or a group of JSON lines). */
typedef struct rfile {
    char *path; /* for messages: "file", "file#frame" or "file:line" */
    uint8_t *data;
    size_t len;
    lunnel_host_payload kind;
    lunnel_rr_response rr;       /* response: scanned once here, like the loop thread does */
    lunnel_record_range *ranges; /* JSON lines: the ranges of the re-encoded records */
    size_t n_ranges;
    char *token; /* next_token of the response, the dead-letter batch token, or "path#" */
} rfile;

typedef struct rchan {
    lunnel_host_channel *ch;
    long next, done, total; /* batch indexes: next to submit, completed, all */
    int closed;
} rchan;

typedef struct replay {
    replay_opts o;
    rfile *files;
    int nfiles;
    size_t cap_files;
    rchan *chans;
    int nchans;
    lunnel_host *host;
    struct ev_loop *loop;
    long batches, records, failed, open_failed;
    int closed;
    double t0, cpu0;
} replay;

/* CPU seconds (user + system) of the whole process so far. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static rfile *add_batch(replay *r)
{
    if (lunnel_vec_reserve(&r->files, &r->cap_files, (size_t)r->nfiles + 1, 16) != 0) return NULL;
    rfile *f = &r->files[r->nfiles++];
    memset(f, 0, sizeof *f);
    lunnel_rr_init(&f->rr);
    return f;
}

static char *fmt_label(const char *path, const char *sep, long n)
{
    size_t l = strlen(path) + 32;
    char *s = malloc(l);
    if (s) snprintf(s, l, "%s%s%ld", path, sep, n);
    return s;
}

/* A ReadRecordsResponse body -> a RANGES batch (scanned here, like the loop thread does). */
static int add_response(replay *r, const char *label, uint8_t *body, size_t len)
{
    rfile *f = add_batch(r);
    if (!f) return -1;
    f->path = strdup(label);
    f->data = body;
    f->len = len;
    lunnel_codec_error e;
    memset(&e, 0, sizeof e);
    if (lunnel_rr_scan(&f->rr, f->data, f->len, &e) != LUNNEL_CODEC_OK) {
        fprintf(stderr, "lunnel replay: %s is not a ReadRecordsResponse: %s\n", label,
                e.message[0] ? e.message : lunnel_codec_strerror(e.code));
        return -1;
    }
    f->kind = LUNNEL_HOST_PAYLOAD_RANGES;
    f->token = strndup((const char *)f->rr.next_token, f->rr.next_token_len);
    return 0;
}

typedef struct frame_ctx {
    replay *r;
    const char *path;
    long n;
} frame_ctx;

static int on_frame(void *ud, const char *channel, size_t channel_len, const uint8_t *body,
                    size_t body_len)
{
    frame_ctx *fc = ud;
    (void)channel, (void)channel_len;
    uint8_t *copy = malloc(body_len ? body_len : 1);
    if (!copy) return -1;
    memcpy(copy, body, body_len);
    char *label = fmt_label(fc->path, "#", fc->n++);
    int rc = add_response(fc->r, label ? label : fc->path, copy, body_len);
    free(label);
    return rc;
}

/* JSON Lines (dead-letter files, r:tojson() files) -> batches, through lunnel.json in a
 * throwaway Lua state: the records are re-encoded by lunnel's own PlainBuffer writer. */
static int add_jsonl(replay *r, const char *path, const uint8_t *text, size_t len)
{
    lua_State *L = luaL_newstate();
    if (!L) return -1;
    luaL_openlibs(L);
    const char *dir = lunnel_cli_lua_dir();
    if (!dir) dir = getenv("LUNNEL_LUA_DIR");
    if (dir && *dir) {
        lua_getglobal(L, "package");
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
        lua_getfield(L, -2, "path");
        lua_concat(L, 2);
        lua_setfield(L, -2, "path");
        lua_pop(L, 1);
    }
    int rc = -1;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "lunnel.json");
    if (lua_pcall(L, 1, 1, 0) != 0) goto fail;
    lua_getfield(L, -1, "encode_lines");
    lua_pushlstring(L, (const char *)text, len);
    if (lua_pcall(L, 1, 1, 0) != 0) goto fail;
    int n = (int)lua_objlen(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        rfile *f = add_batch(r);
        if (!f) goto fail;
        lua_getfield(L, -1, "line");
        f->path = fmt_label(path, ":", (long)lua_tointeger(L, -1));
        lua_pop(L, 1);
        lua_getfield(L, -1, "data");
        size_t dl = 0;
        const char *d = lua_tolstring(L, -1, &dl);
        f->data = malloc(dl ? dl : 1);
        if (!f->data) goto fail;
        if (dl) memcpy(f->data, d, dl);
        f->len = dl;
        lua_pop(L, 1);
        lua_getfield(L, -1, "n");
        f->n_ranges = (size_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
        f->ranges = calloc(f->n_ranges ? f->n_ranges : 1, sizeof *f->ranges);
        if (!f->ranges) goto fail;
        lua_getfield(L, -1, "ranges");
        for (size_t k = 0; k < f->n_ranges; k++) {
            uint32_t v[6];
            for (int m = 0; m < 6; m++) {
                lua_rawgeti(L, -1, (int)(k * 6) + m + 1);
                v[m] = (uint32_t)lua_tonumber(L, -1);
                lua_pop(L, 1);
            }
            f->ranges[k] = (lunnel_record_range){.offset = v[0],
                                                 .len = v[1],
                                                 .action = (uint8_t)v[2],
                                                 .has_origin = (uint8_t)v[3],
                                                 .origin_offset = v[4],
                                                 .origin_len = v[5]};
        }
        lua_pop(L, 1);
        lua_getfield(L, -1, "token");
        f->token = strdup(lua_isstring(L, -1) ? lua_tostring(L, -1) : f->path ? f->path : path);
        lua_pop(L, 2);
        f->kind = LUNNEL_HOST_PAYLOAD_RANGES;
    }
    rc = 0;
    lua_close(L);
    return rc;
fail:
    fprintf(stderr, "lunnel replay: %s: %s\n", path,
            lua_isstring(L, -1) ? lua_tostring(L, -1) : "out of memory");
    lua_close(L);
    return -1;
}

static int load_file(replay *r, const char *path, const char *format)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "lunnel replay: cannot open %s\n", path);
        return -1;
    }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    size_t len = n > 0 ? (size_t)n : 0;
    uint8_t *data = malloc(len ? len : 1);
    if (!data || fread(data, 1, len, fp) != len) {
        fclose(fp);
        free(data);
        fprintf(stderr, "lunnel replay: cannot read %s\n", path);
        return -1;
    }
    fclose(fp);
    size_t first = 0;
    while (first < len && (data[first] == ' ' || data[first] == '\n' || data[first] == '\t' ||
                           data[first] == '\r'))
        first++;
    const char *kind = format;
    if (strcasecmp(format, "auto") == 0) {
        if (lunnel_capture_is(data, len))
            kind = "capture";
        else if (first < len && data[first] == '{')
            kind = "jsonl";
        else if (len >= 4 && data[0] == 0x75 && !data[1] && !data[2] && !data[3])
            kind = "plainbuffer";
        else
            kind = "response";
    }
    if (strcasecmp(kind, "capture") == 0) {
        frame_ctx fc = {r, path, 0};
        char err[256];
        int rc = lunnel_capture_frames(data, len, on_frame, &fc, err, sizeof err);
        free(data);
        if (rc != 0) fprintf(stderr, "lunnel replay: %s: %s\n", path, err);
        return rc;
    }
    if (strcasecmp(kind, "jsonl") == 0) {
        int rc = add_jsonl(r, path, data, len);
        free(data);
        return rc;
    }
    if (strcasecmp(kind, "plainbuffer") == 0) {
        rfile *f = add_batch(r);
        if (!f) {
            free(data);
            return -1;
        }
        f->path = strdup(path);
        f->data = data;
        f->len = len;
        f->kind = LUNNEL_HOST_PAYLOAD_PLAINBUFFER;
        f->token = fmt_label(path, "#", 0);
        return 0;
    }
    return add_response(r, path, data, len);
}

static void submit_more(replay *r, int c)
{
    rchan *rc = &r->chans[c];
    while (rc->next < rc->total && rc->next - rc->done < (long)r->o.window) {
        rfile *f = &r->files[rc->next % r->nfiles];
        lunnel_host_batch b = {f->kind,
                               f->data,
                               f->len,
                               f->rr.records,
                               f->rr.count,
                               f->token,
                               (void *)(intptr_t)rc->next,
                               NULL,
                               NULL};
        if (f->ranges) {
            b.ranges = f->ranges;
            b.n_ranges = f->n_ranges;
        } else if (f->kind != LUNNEL_HOST_PAYLOAD_RANGES) {
            b.ranges = NULL;
            b.n_ranges = 0;
        }
        if (lunnel_host_submit(rc->ch, &b) != 0) {
            fprintf(stderr, "lunnel replay: submit failed\n");
            r->failed++;
            rc->done = rc->total = rc->next; /* give up on this channel */
            break;
        }
        rc->next++;
    }
    if (rc->done == rc->total && !rc->closed) {
        rc->closed = 1;
        lunnel_host_channel_shutdown(rc->ch);
    }
}

static void on_done(const lunnel_host_completion *c, void *ud)
{
    replay *r = ud;
    int ci = (int)(intptr_t)c->channel_user;
    rchan *rc = &r->chans[ci];
    const char *what = c->event == LUNNEL_HOST_EV_OPENED   ? "open"
                       : c->event == LUNNEL_HOST_EV_CLOSED ? "shutdown"
                                                           : "process";
    if (c->event == LUNNEL_HOST_EV_TIMEOUT) return; /* the host logged it */
    if (c->status != LUNNEL_HOST_OK) {
        if (c->event == LUNNEL_HOST_EV_BATCH) r->failed++;
        if (c->event == LUNNEL_HOST_EV_OPENED) r->open_failed++;
        if (!r->o.quiet || r->failed + r->open_failed <= 1) {
            const char *file = c->event == LUNNEL_HOST_EV_BATCH
                                   ? r->files[(intptr_t)c->batch_user % r->nfiles].path
                                   : "-";
            fprintf(stderr, "lunnel replay: %s failed (channel replay-%d, file %s): %s: %s\n%s%s",
                    what, ci, file, lunnel_host_strerror(c->status), c->error, c->traceback,
                    c->traceback[0] ? "\n" : "");
        }
    }
    switch (c->event) {
    case LUNNEL_HOST_EV_OPENED:
        submit_more(r, ci);
        break;
    case LUNNEL_HOST_EV_BATCH:
        r->batches++;
        r->records += c->record_count;
        rc->done++;
        submit_more(r, ci);
        break;
    case LUNNEL_HOST_EV_CLOSED:
        if (++r->closed == r->nchans) ev_break(r->loop, EVBREAK_ALL);
        break;
    default:
        break;
    }
}

int lunnel_cmd_replay(int argc, char **argv)
{
    replay r;
    memset(&r, 0, sizeof r);
    lunnel_opt_values *v = NULL;
    char perr[512];
    int prc = lunnel_opts_parse(&lunnel_cmd_replay_spec, argc, argv, 1, &v, perr, sizeof perr);
    if (prc == LUNNEL_OPTS_HELP) {
        lunnel_opts_print_help(&lunnel_cmd_replay_spec, stdout);
        return 0;
    }
    if (prc != LUNNEL_OPTS_OK) {
        fprintf(stderr, "lunnel replay: %s (see --help)\n", perr);
        return 2;
    }
    if (lunnel_opts_apply_logging(v) != 0) {
        lunnel_opts_free(v);
        return 2;
    }
    r.o.script = lunnel_opts_str(v, "script");
    r.o.custom = lunnel_opts_str(v, "custom");
    r.o.format = lunnel_opts_str(v, "format");
    r.o.workers = (long)lunnel_opts_int(v, "workers");
    r.o.channels = (long)lunnel_opts_int(v, "channels");
    r.o.repeat = (long)lunnel_opts_int(v, "repeat");
    r.o.window = (long)lunnel_opts_int(v, "window");
    int64_t ml = lunnel_opts_int(v, "memory-limit");
    r.o.memory_limit = ml > 0 ? (size_t)ml : 0;
    r.o.process_timeout = lunnel_opts_num(v, "process-timeout");
    r.o.stream = lunnel_opts_bool(v, "stream");
    r.o.quiet = lunnel_opts_bool(v, "quiet");
    if (r.o.channels < 1) r.o.channels = 1;
    if (r.o.window < 1) r.o.window = 1;
    if (r.o.repeat < 0) r.o.repeat = 0;
    int nfiles = lunnel_opts_argc(v);
    const char **files = calloc((size_t)nfiles + 1, sizeof *files);
    for (int i = 0; i < nfiles; i++)
        files[i] = lunnel_opts_arg(v, i);

    int status = 1;
    for (int i = 0; i < nfiles; i++) {
        if (load_file(&r, files[i], r.o.format) != 0) {
            status = 2;
            goto out;
        }
    }
    if (r.nfiles == 0) {
        fprintf(stderr, "lunnel replay: no batch in the given files\n");
        status = 2;
        goto out;
    }

    r.loop = ev_loop_new(EVFLAG_AUTO);
    lunnel_host_config hc = {
        .script_path = r.o.script,
        .workers = (int)r.o.workers,
        .custom_json = r.o.custom,
        .lua_dir = lunnel_cli_lua_dir(),
        .lua_path = lunnel_opts_str(v, "lua-path"),
        .memory_limit = (size_t)r.o.memory_limit,
        .process_timeout_s = r.o.process_timeout,
        .watch = 0,
        .loop = r.loop,
        .on_done = on_done,
        .ud = &r,
    };
    char err[1024];
    r.host = lunnel_host_new(&hc, err, sizeof err);
    if (!r.host) {
        fprintf(stderr, "lunnel replay: %s\n", err);
        status = 2;
        goto out;
    }
    r.nchans = (int)r.o.channels;
    r.chans = calloc((size_t)r.nchans, sizeof *r.chans);
    r.t0 = now_s();
    r.cpu0 = cpu_s();
    for (int c = 0; c < r.nchans; c++) {
        char id[32];
        snprintf(id, sizeof id, "replay-%d", c);
        lunnel_host_channel_info info = {"replay", "replay",   id,
                                         NULL,     r.o.stream, (void *)(intptr_t)c};
        r.chans[c].total = (long)r.o.repeat * r.nfiles;
        r.chans[c].ch = lunnel_host_channel_open(r.host, &info);
        if (!r.chans[c].ch) {
            fprintf(stderr, "lunnel replay: cannot open a channel\n");
            goto out;
        }
    }
    ev_run(r.loop, 0);
    double secs = now_s() - r.t0, cpu = cpu_s() - r.cpu0;
    lunnel_host_stats st;
    lunnel_host_get_stats(r.host, &st);
    printf("replay: batches=%ld records=%ld failed=%ld seconds=%.3f records_per_s=%.0f "
           "cpu_seconds=%.3f records_per_cpu_s=%.0f workers=%d channels=%d\n",
           r.batches, r.records, r.failed + r.open_failed, secs,
           secs > 0 ? (double)r.records / secs : 0.0, cpu, cpu > 0 ? (double)r.records / cpu : 0.0,
           st.workers, r.nchans);
    status = r.failed || r.open_failed ? 1 : 0;
out:
    if (r.host) lunnel_host_free(r.host);
    if (r.loop) ev_loop_destroy(r.loop);
    for (int i = 0; r.files && i < r.nfiles; i++) {
        free(r.files[i].path);
        free(r.files[i].data);
        free(r.files[i].token);
        free(r.files[i].ranges);
        lunnel_rr_free(&r.files[i].rr);
    }
    free(r.files);
    free(r.chans);
    free(files);
    lunnel_opts_free(v);
    return status;
}
