/* dead_letter.c: the dead-letter writer of `--on-error skip` (dead_letter.h): renders one JSON
 * line per record of a failed batch (the exact lunnel_record_tojson form, or the raw bytes in
 * base64 when they do not decode) from the records the Lua worker already decoded (or decodes
 * them itself: lunnel_dead_letter_write), appends all lines with one write loop and fsyncs,
 * so "written" means "durable" before the batch may be checkpointed. Rendering runs on the
 * calling thread; the append + fsync is serialised by the writer's lock (several Lua workers
 * may write at once). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lunnel/dead_letter.h"
#include "lunnel/json.h"
#include "lunnel/plainbuffer.h"
#include "lunnel/record.h"
#include "lunnel/timeutil.h"

struct lunnel_dead_letter {
    int fd;
    char *path;
    pthread_mutex_t mu; /* one batch's write + fsync at a time; guards lines */
    uint64_t lines;
};

lunnel_dead_letter *lunnel_dead_letter_open(const char *path, char *err, size_t err_cap)
{
    lunnel_dead_letter *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        snprintf(err, err_cap, "--dead-letter %s: out of memory", path);
        free(d);
        return NULL;
    }
    d->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (d->fd < 0) {
        snprintf(err, err_cap, "--dead-letter %s: %s", path, strerror(errno));
        free(d->path);
        free(d);
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

void lunnel_dead_letter_close(lunnel_dead_letter *d)
{
    if (!d) return;
    close(d->fd);
    pthread_mutex_destroy(&d->mu);
    free(d->path);
    free(d);
}

uint64_t lunnel_dead_letter_lines(lunnel_dead_letter *d)
{
    if (!d) return 0;
    pthread_mutex_lock(&d->mu);
    uint64_t n = d->lines;
    pthread_mutex_unlock(&d->mu);
    return n;
}

/* ---- rendering: one JSON object per line through the JSON writer (lunnel/json.h) -------- */

static void jw_base64(lunnel_jw *w, const uint8_t *p, size_t n)
{
    size_t need = 4 * ((n + 2) / 3);
    lunnel_jw_value(w);
    char *dst = lunnel_buf_reserve(w->b, need + 2);
    if (!dst) return;
    dst[0] = '"';
    int k = n ? EVP_EncodeBlock((unsigned char *)dst + 1, p, (int)n) : 0;
    dst[1 + k] = '"';
    w->b->len += (size_t)k + 2;
    w->b->p[w->b->len] = 0;
}

static void line_head(lunnel_jw *w, const lunnel_dead_letter_batch *b, const char *time, size_t i)
{
    lunnel_jw_object(w);
    lunnel_jw_key(w, "time");
    lunnel_jw_str(w, time);
    lunnel_jw_key(w, "tunnel_id");
    lunnel_jw_str(w, b->tunnel_id);
    lunnel_jw_key(w, "client_id");
    lunnel_jw_str(w, b->client_id);
    lunnel_jw_key(w, "channel_id");
    lunnel_jw_str(w, b->channel_id);
    lunnel_jw_key(w, "batch_token");
    lunnel_jw_str(w, b->batch_token);
    lunnel_jw_key(w, "index");
    lunnel_jw_uint(w, i);
    lunnel_jw_key(w, "count");
    lunnel_jw_uint(w, b->n_ranges);
    lunnel_jw_key(w, "attempts");
    lunnel_jw_int(w, b->attempts);
    lunnel_jw_key(w, "error");
    lunnel_jw_str(w, b->error);
    lunnel_jw_key(w, "traceback");
    lunnel_jw_str(w, b->traceback && *b->traceback ? b->traceback : NULL);
}

static void line_end(lunnel_jw *w)
{
    lunnel_jw_end_object(w);
    lunnel_buf_char(w->b, '\n');
}

/* The lines of batch b: from `batch` (its decoded records, one per range), or, when NULL (the
 * bytes do not decode), the raw bytes of each range with decode_error. */
static int render(const lunnel_dead_letter_batch *b, const lunnel_batch *batch,
                  const char *decode_error, lunnel_buf *o)
{
    char time[LUNNEL_TIME_MS_LEN];
    lunnel_time_format_ms(lunnel_time_now_ms(), time);
    lunnel_jw w;
    lunnel_jw_init(&w, o);
    if (b->n_ranges == 0) {
        line_head(&w, b, time, 0);
        line_end(&w);
        return 0;
    }
    if (batch && batch->count != b->n_ranges) batch = NULL; /* not these ranges: raw bytes */
    char small[4096];
    for (size_t i = 0; i < b->n_ranges; i++) {
        line_head(&w, b, time, i);
        if (batch) {
            lunnel_jw_key(&w, "record");
            size_t need = lunnel_record_tojson(&batch->records[i], small, sizeof small);
            if (need < sizeof small) {
                lunnel_jw_raw(&w, small, need);
            } else {
                lunnel_jw_value(&w);
                char *dst = lunnel_buf_reserve(o, need + 1);
                if (dst) {
                    lunnel_record_tojson(&batch->records[i], dst, need + 1);
                    o->len += need;
                }
            }
        } else {
            const lunnel_record_range *r = &b->ranges[i];
            lunnel_jw_key(&w, "record_base64");
            if ((size_t)r->offset + r->len <= b->len)
                jw_base64(&w, b->data + r->offset, r->len);
            else
                lunnel_jw_null(&w);
            lunnel_jw_key(&w, "decode_error");
            lunnel_jw_str(&w, decode_error);
        }
        line_end(&w);
    }
    return o->oom ? -1 : 0;
}

/* Appends the rendered lines with one write loop and fsyncs, under the writer's lock. */
static int append(lunnel_dead_letter *d, const lunnel_dead_letter_batch *b, const lunnel_buf *o,
                  char *err, size_t err_cap)
{
    pthread_mutex_lock(&d->mu);
    int rc = -1;
    size_t off = 0;
    while (off < o->len) {
        ssize_t w = write(d->fd, o->p + off, o->len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(err, err_cap, "dead letter %s: write: %s", d->path,
                     w < 0 ? strerror(errno) : "no progress");
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(d->fd) != 0) {
        snprintf(err, err_cap, "dead letter %s: fsync: %s", d->path, strerror(errno));
        goto out;
    }
    d->lines += b->n_ranges ? b->n_ranges : 1;
    rc = 0;
out:
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int lunnel_dead_letter_write_records(lunnel_dead_letter *d, const lunnel_dead_letter_batch *b,
                                     const lunnel_batch *records, const char *decode_error,
                                     char *err, size_t err_cap)
{
    lunnel_buf o = LUNNEL_BUF_INIT;
    if (render(b, records, decode_error, &o) != 0 || o.oom) {
        lunnel_buf_free(&o);
        snprintf(err, err_cap, "dead letter %s: out of memory", d->path);
        return -1;
    }
    int rc = append(d, b, &o, err, err_cap);
    lunnel_buf_free(&o);
    return rc;
}

int lunnel_dead_letter_write(lunnel_dead_letter *d, const lunnel_dead_letter_batch *b, char *err,
                             size_t err_cap)
{
    const lunnel_batch *batch = NULL;
    lunnel_codec_error cerr;
    memset(&cerr, 0, sizeof cerr);
    lunnel_arena *arena = NULL;
    if (b->n_ranges > 0) {
        arena = lunnel_arena_new();
        if (!arena) {
            snprintf(err, err_cap, "dead letter %s: out of memory", d->path);
            return -1;
        }
        if (lunnel_pb_decode_batch(arena, b->data, b->len, b->ranges, (uint32_t)b->n_ranges,
                                   LUNNEL_PB_STRICT, &batch, &cerr) != LUNNEL_CODEC_OK)
            batch = NULL;
    }
    int rc = lunnel_dead_letter_write_records(d, b, batch, cerr.message, err, err_cap);
    lunnel_arena_free(arena);
    return rc;
}
