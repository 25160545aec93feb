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
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lunnel/dead_letter.h"
#include "lunnel/json.h"
#include "lunnel/plainbuffer.h"
#include "lunnel/record.h"

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

/* ---- a growing text buffer ------------------------------------------------------------ */

typedef struct dbuf {
    char *p;
    size_t n, cap;
    int oom;
} dbuf;

static char *db_reserve(dbuf *b, size_t extra)
{
    if (b->oom) return NULL;
    if (b->n + extra + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + extra + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->n;
}

static void db_add(dbuf *b, const char *s, size_t n)
{
    char *dst = db_reserve(b, n);
    if (!dst) return;
    memcpy(dst, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void db_str(dbuf *b, const char *s)
{
    db_add(b, s, strlen(s));
}

/* A JSON string (escaping rules in lunnel/json.h); NULL becomes null. */
static void db_add_cb(void *ctx, const char *p, size_t n)
{
    db_add(ctx, p, n);
}

static void db_json(dbuf *b, const char *s)
{
    if (!s) {
        db_str(b, "null");
        return;
    }
    lunnel_json_write_string(s, strlen(s), db_add_cb, b);
}

static void db_base64(dbuf *b, const uint8_t *p, size_t n)
{
    size_t need = 4 * ((n + 2) / 3);
    char *dst = db_reserve(b, need + 2);
    if (!dst) return;
    dst[0] = '"';
    int w = n ? EVP_EncodeBlock((unsigned char *)dst + 1, p, (int)n) : 0;
    dst[1 + w] = '"';
    b->n += (size_t)w + 2;
    b->p[b->n] = 0;
}

static void now_iso(char *out, size_t cap)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char s[32];
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03dZ", s, (int)(tv.tv_usec / 1000));
}

static void line_head(dbuf *o, const lunnel_dead_letter_batch *b, const char *time, size_t i)
{
    char num[64];
    db_str(o, "{\"time\":");
    db_json(o, time);
    db_str(o, ",\"tunnel_id\":");
    db_json(o, b->tunnel_id);
    db_str(o, ",\"client_id\":");
    db_json(o, b->client_id);
    db_str(o, ",\"channel_id\":");
    db_json(o, b->channel_id);
    db_str(o, ",\"batch_token\":");
    db_json(o, b->batch_token);
    snprintf(num, sizeof num, ",\"index\":%zu,\"count\":%zu,\"attempts\":%d", i, b->n_ranges,
             b->attempts);
    db_str(o, num);
    db_str(o, ",\"error\":");
    db_json(o, b->error);
    db_str(o, ",\"traceback\":");
    db_json(o, b->traceback && *b->traceback ? b->traceback : NULL);
}

/* The lines of batch b: from `batch` (its decoded records, one per range), or, when NULL (the
 * bytes do not decode), the raw bytes of each range with decode_error. */
static int render(const lunnel_dead_letter_batch *b, const lunnel_batch *batch,
                  const char *decode_error, dbuf *o)
{
    char time[40];
    now_iso(time, sizeof time);
    if (b->n_ranges == 0) {
        line_head(o, b, time, 0);
        db_str(o, "}\n");
        return 0;
    }
    if (batch && batch->count != b->n_ranges) batch = NULL; /* not these ranges: raw bytes */
    char small[4096];
    for (size_t i = 0; i < b->n_ranges; i++) {
        line_head(o, b, time, i);
        if (batch) {
            db_str(o, ",\"record\":");
            size_t need = lunnel_record_tojson(&batch->records[i], small, sizeof small);
            if (need < sizeof small) {
                db_add(o, small, need);
            } else {
                char *dst = db_reserve(o, need + 1);
                if (dst) {
                    lunnel_record_tojson(&batch->records[i], dst, need + 1);
                    o->n += need;
                }
            }
        } else {
            const lunnel_record_range *r = &b->ranges[i];
            db_str(o, ",\"record_base64\":");
            if ((size_t)r->offset + r->len <= b->len)
                db_base64(o, b->data + r->offset, r->len);
            else
                db_str(o, "null");
            db_str(o, ",\"decode_error\":");
            db_json(o, decode_error);
        }
        db_str(o, "}\n");
    }
    return o->oom ? -1 : 0;
}

/* Appends the rendered lines with one write loop and fsyncs, under the writer's lock. */
static int append(lunnel_dead_letter *d, const lunnel_dead_letter_batch *b, const dbuf *o,
                  char *err, size_t err_cap)
{
    pthread_mutex_lock(&d->mu);
    int rc = -1;
    size_t off = 0;
    while (off < o->n) {
        ssize_t w = write(d->fd, o->p + off, o->n - off);
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
    dbuf o = {0};
    if (render(b, records, decode_error, &o) != 0 || o.oom) {
        free(o.p);
        snprintf(err, err_cap, "dead letter %s: out of memory", d->path);
        return -1;
    }
    int rc = append(d, b, &o, err, err_cap);
    free(o.p);
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
