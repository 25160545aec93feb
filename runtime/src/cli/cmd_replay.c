/* cmd_replay.c: `lunnel replay --script S [options] FILE...`: feeds recorded ReadRecords
 * response bodies (or bare PlainBuffer files) to a script through the very same Lua host
 * `lunnel run` uses, without any network: for debugging a transform on captured traffic and
 * for benchmarking the host (--workers, --channels, --repeat). Each channel gets every FILE
 * in order, --repeat times, one batch per file, a window of batches in flight; failures print
 * their error and Lua traceback. The last line on stdout is a summary:
 *   replay: batches=N records=N failed=N seconds=S records_per_s=R workers=W channels=C
 * Exit status 0 when every batch succeeded, 1 when any failed, 2 on usage errors. */
#include <ev.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lunnel/host.h"
#include "lunnel/log.h"
#include "lunnel/readrecords.h"

int lunnel_cmd_replay(int argc, char **argv);

typedef enum { R_STR, R_INT, R_NUM, R_BOOL } ropt_type;

typedef struct replay_opts {
    const char *script, *custom, *format, *log_level;
    double workers, channels, repeat, window, memory_limit, process_timeout;
    int stream, quiet, help;
} replay_opts;

typedef struct ropt {
    const char *name;
    ropt_type type;
    size_t offset;
    const char *def;
    const char *help;
} ropt;

#define O(f) offsetof(replay_opts, f)
static const ropt OPTS[] = {
    {"script", R_STR, O(script), NULL, "the Lua script (module returning process/open/shutdown)"},
    {"custom", R_STR, O(custom), NULL, "CustomValue as JSON (ctx.custom)"},
    {"format", R_STR, O(format), "auto", "auto | response (ReadRecordsResponse) | plainbuffer"},
    {"workers", R_INT, O(workers), "0", "Lua worker threads (0: one per CPU)"},
    {"channels", R_INT, O(channels), "1", "channels replaying the files in parallel"},
    {"repeat", R_INT, O(repeat), "1", "times each channel replays the file list"},
    {"window", R_INT, O(window), "4", "batches in flight per channel"},
    {"memory-limit", R_INT, O(memory_limit), "0", "bytes per Lua state (0: 1 GiB)"},
    {"process-timeout", R_NUM, O(process_timeout), "0", "warn when process() runs longer (0: off)"},
    {"stream", R_BOOL, O(stream), NULL, "ctx.is_stream = true"},
    {"quiet", R_BOOL, O(quiet), NULL, "print only the summary line"},
    {"log-level", R_STR, O(log_level), "info", "trace|debug|info|warn|error|off"},
    {"help", R_BOOL, O(help), NULL, "this help"},
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

static void usage(FILE *f) {
    fprintf(f, "usage: lunnel replay --script S [options] FILE...\n\n"
               "Feeds recorded ReadRecords responses (or PlainBuffer files) to a script through "
               "the Lua host.\n\noptions:\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", OPTS[i].name,
                 OPTS[i].type == R_BOOL ? "" : OPTS[i].type == R_STR ? " S" : " N");
        fprintf(f, "  %-24s %s", left, OPTS[i].help);
        if (OPTS[i].def) fprintf(f, " [%s]", OPTS[i].def);
        fputc('\n', f);
    }
}

static int set_opt(replay_opts *o, const ropt *d, const char *val) {
    char *p = (char *)o + d->offset;
    switch (d->type) {
    case R_STR:
        *(const char **)p = val;
        return 0;
    case R_INT:
    case R_NUM: {
        char *end;
        double v = strtod(val, &end);
        if (end == val || *end || v < 0 || (d->type == R_INT && v != (double)(long long)v)) {
            fprintf(stderr, "lunnel replay: --%s: not a valid %s: '%s'\n", d->name,
                    d->type == R_INT ? "non-negative integer" : "non-negative number", val);
            return -1;
        }
        *(double *)p = v;
        return 0;
    }
    case R_BOOL:
        *(int *)p = 1;
        return 0;
    }
    return -1;
}

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
    double t0;
} replay;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int load_file(rfile *f, const char *format) {
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
    if (strcmp(format, "plainbuffer") == 0)
        pb = 1;
    else if (strcmp(format, "response") == 0)
        pb = 0;
    else if (strcmp(format, "auto") != 0) {
        fprintf(stderr, "lunnel replay: --format must be auto, response or plainbuffer\n");
        return -1;
    }
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

static void submit_more(replay *r, int c) {
    rchan *rc = &r->chans[c];
    while (rc->next < rc->total && rc->next - rc->done < (long)r->o.window) {
        rfile *f = &r->files[rc->next % r->nfiles];
        lunnel_host_batch b = {f->kind,     f->data,  f->len, f->rr.records, f->rr.count,
                               f->token, (void *)(intptr_t)rc->next};
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

static void on_done(const lunnel_host_completion *c, void *ud) {
    replay *r = ud;
    int ci = (int)(intptr_t)c->channel_user;
    rchan *rc = &r->chans[ci];
    const char *what = c->event == LUNNEL_HOST_EV_OPENED ? "open"
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

int lunnel_cmd_replay(int argc, char **argv) {
    replay r;
    memset(&r, 0, sizeof r);
    for (size_t i = 0; i < N_OPTS; i++)
        if (OPTS[i].def && OPTS[i].type != R_BOOL) set_opt(&r.o, &OPTS[i], OPTS[i].def);
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "--") == 0) {
            if (strcmp(a, "--") == 0) {
                while (++i < argc) files[nfiles++] = argv[i];
                break;
            }
            files[nfiles++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const ropt *d = NULL;
        for (size_t k = 0; k < N_OPTS; k++)
            if (strlen(OPTS[k].name) == nl && strncmp(OPTS[k].name, name, nl) == 0) d = &OPTS[k];
        if (!d) {
            fprintf(stderr, "lunnel replay: unknown option %s (see --help)\n", a);
            free(files);
            return 2;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val && d->type != R_BOOL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "lunnel replay: --%s needs a value\n", d->name);
                free(files);
                return 2;
            }
            val = argv[++i];
        }
        if (set_opt(&r.o, d, val ? val : "true") != 0) {
            free(files);
            return 2;
        }
    }
    if (r.o.help) {
        usage(stdout);
        free(files);
        return 0;
    }
    if (!r.o.script || nfiles == 0) {
        usage(stderr);
        fprintf(stderr, "\nlunnel replay: --script and at least one FILE are required\n");
        free(files);
        return 2;
    }
    lunnel_log_level lvl;
    if (lunnel_log_parse_level(r.o.log_level, &lvl) != 0) {
        fprintf(stderr, "lunnel replay: --log-level: unknown level '%s'\n", r.o.log_level);
        free(files);
        return 2;
    }
    lunnel_log_set_level(lvl);
    if (r.o.channels < 1) r.o.channels = 1;
    if (r.o.window < 1) r.o.window = 1;

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
    const char *lua_dir = getenv("LUNNEL_LUA_DIR");
    lunnel_host_config hc = {
        .script_path = r.o.script,
        .workers = (int)r.o.workers,
        .custom_json = r.o.custom,
        .lua_dir = lua_dir && *lua_dir ? lua_dir : LUNNEL_SOURCE_DIR "/lua",
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
    for (int c = 0; c < r.nchans; c++) {
        char id[32];
        snprintf(id, sizeof id, "replay-%d", c);
        lunnel_host_channel_info info = {"replay", "replay", id, NULL, r.o.stream,
                                         (void *)(intptr_t)c};
        r.chans[c].total = (long)r.o.repeat * nfiles;
        r.chans[c].ch = lunnel_host_channel_open(r.host, &info);
        if (!r.chans[c].ch) {
            fprintf(stderr, "lunnel replay: cannot open a channel\n");
            goto out;
        }
    }
    ev_run(r.loop, 0);
    double secs = now_s() - r.t0;
    lunnel_host_stats st;
    lunnel_host_get_stats(r.host, &st);
    printf("replay: batches=%ld records=%ld failed=%ld seconds=%.3f records_per_s=%.0f "
           "workers=%d channels=%d\n",
           r.batches, r.records, r.failed + r.open_failed, secs,
           secs > 0 ? (double)r.records / secs : 0.0, st.workers, r.nchans);
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
    return status;
}
