/* cmd_replay.c: `lunnel replay --script S [options] FILE...`: feeds recorded ReadRecords
 * response bodies (or bare PlainBuffer files) to a script through the very same Lua host
 * `lunnel run` uses, without any network: for debugging a transform on captured traffic and
 * for benchmarking the host (--workers, --channels, --repeat). Each channel gets every FILE
 * in order, --repeat times, one batch per file, a window of batches in flight; failures print
 * their error and Lua traceback. The last line on stdout is a summary:
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

#include "cli/lua_dir.h"
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
    {"format", LUNNEL_OPT_ENUM, "auto", NULL, "auto|response|plainbuffer", NULL, 0,
     "what FILEs hold: ReadRecordsResponse bodies or bare PlainBuffer (auto: by the header)"},
    {"workers", LUNNEL_OPT_INT, "0", NULL, NULL, "N", 0, "Lua worker threads (0: one per CPU)"},
    {"channels", LUNNEL_OPT_INT, "1", NULL, NULL, "N", 0,
     "channels replaying the files in parallel"},
    {"repeat", LUNNEL_OPT_INT, "1", NULL, NULL, "N", 0, "times each channel replays the file list"},
    {"window", LUNNEL_OPT_INT, "4", NULL, NULL, "N", 0, "batches in flight per channel"},
    {"memory-limit", LUNNEL_OPT_INT, "0", NULL, NULL, "BYTES", 0, "per Lua state (0: 1 GiB)"},
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

typedef struct rfile {
    const char *path;
    uint8_t *data;
    size_t len;
    lunnel_host_payload kind;
    lunnel_rr_response rr; /* response: scanned once here, like the loop thread does */
    char *token;           /* next_token of the response, or "path#" for PlainBuffer */
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

static int load_file(rfile *f, const char *format)
{
    FILE *fp = fopen(f->path, "rb");
    if (!fp) {
        fprintf(stderr, "lunnel replay: cannot open %s\n", f->path);
        return -1;
    }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f->data = malloc(n > 0 ? (size_t)n : 1);
    f->len = n > 0 ? (size_t)n : 0;
    if (!f->data || fread(f->data, 1, f->len, fp) != f->len) {
        fclose(fp);
        fprintf(stderr, "lunnel replay: cannot read %s\n", f->path);
        return -1;
    }
    fclose(fp);
    int pb = f->len >= 4 && f->data[0] == 0x75 && !f->data[1] && !f->data[2] && !f->data[3];
    if (strcasecmp(format, "plainbuffer") == 0)
        pb = 1;
    else if (strcasecmp(format, "response") == 0)
        pb = 0;
    lunnel_rr_init(&f->rr);
    if (pb) {
        f->kind = LUNNEL_HOST_PAYLOAD_PLAINBUFFER;
        size_t tl = strlen(f->path) + 2;
        f->token = malloc(tl);
        snprintf(f->token, tl, "%s#", f->path);
        return 0;
    }
    lunnel_codec_error e;
    memset(&e, 0, sizeof e);
    if (lunnel_rr_scan(&f->rr, f->data, f->len, &e) != LUNNEL_CODEC_OK) {
        fprintf(stderr, "lunnel replay: %s is not a ReadRecordsResponse: %s\n", f->path,
                e.message[0] ? e.message : lunnel_codec_strerror(e.code));
        return -1;
    }
    f->kind = LUNNEL_HOST_PAYLOAD_RANGES;
    f->token = strndup((const char *)f->rr.next_token, f->rr.next_token_len);
    return 0;
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
                               NULL};
        if (f->kind != LUNNEL_HOST_PAYLOAD_RANGES) {
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
    r.nfiles = nfiles;
    r.files = calloc((size_t)nfiles, sizeof *r.files);
    for (int i = 0; i < nfiles; i++) {
        r.files[i].path = files[i];
        if (load_file(&r.files[i], r.o.format) != 0) {
            status = 2;
            goto out;
        }
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
        r.chans[c].total = (long)r.o.repeat * nfiles;
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
    for (int i = 0; r.files && i < nfiles; i++) {
        free(r.files[i].data);
        free(r.files[i].token);
        lunnel_rr_free(&r.files[i].rr);
    }
    free(r.files);
    free(r.chans);
    free(files);
    lunnel_opts_free(v);
    return status;
}
