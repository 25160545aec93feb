/* capture.c: the --capture file of `lunnel run` and its reader for `lunnel replay`
 * (format in capture.h). */
#include "capture.h" /* same directory: fuzz/fuzz_capture.c compiles this file too */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lunnel/buf.h"
#include "lunnel/log.h"

typedef struct last_token {
    char *channel, *token;
} last_token;

struct lunnel_capture {
    int fd;
    char *path;
    uint64_t bytes, max_bytes;
    int full; /* the bound was reached: no more frames (logged once) */
    int failed;
    last_token *last; /* per channel: the token of its last captured batch */
    size_t n_last, cap_last;
};

lunnel_capture *lunnel_capture_open(const char *path, uint64_t max_bytes, char *err, size_t cap)
{
    lunnel_capture *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        snprintf(err, cap, "--capture %s: out of memory", path);
        return NULL;
    }
    c->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (c->fd < 0 || write(c->fd, LUNNEL_CAPTURE_MAGIC, 8) != 8) {
        snprintf(err, cap, "--capture %s: %s", path, strerror(errno));
        if (c->fd >= 0) close(c->fd);
        free(c->path);
        free(c);
        return NULL;
    }
    c->bytes = 8;
    c->max_bytes = max_bytes;
    return c;
}

/* 1 when this (channel, token) is the batch captured last for that channel. */
static int seen_again(lunnel_capture *c, const char *channel, const char *token)
{
    for (size_t i = 0; i < c->n_last; i++) {
        if (strcmp(c->last[i].channel, channel) != 0) continue;
        if (token && c->last[i].token && strcmp(c->last[i].token, token) == 0) return 1;
        free(c->last[i].token);
        c->last[i].token = token ? strdup(token) : NULL;
        return 0;
    }
    if (lunnel_vec_reserve(&c->last, &c->cap_last, c->n_last + 1, 16) != 0) return 0;
    c->last[c->n_last].channel = strdup(channel);
    c->last[c->n_last].token = token ? strdup(token) : NULL;
    if (c->last[c->n_last].channel) c->n_last++;
    return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

void lunnel_capture_batch(lunnel_capture *c, const char *channel, const char *next_token,
                          const uint8_t *body, size_t len)
{
    if (!c || c->full || c->failed || !channel) return;
    if (seen_again(c, channel, next_token)) return;
    size_t cl = strlen(channel);
    uint64_t frame = 8 + (uint64_t)cl + len;
    if (c->bytes + frame > c->max_bytes || len > UINT32_MAX) {
        c->full = 1;
        char b[32];
        snprintf(b, sizeof b, "%llu", (unsigned long long)c->max_bytes);
        lunnel_log_kv(LUNNEL_LOG_WARN, "capture",
                      "capture file reached --capture-max-bytes, later batches are not captured",
                      "path", c->path, "max_bytes", b, NULL);
        return;
    }
    /* one write per batch: a frame is whole unless the process dies mid-write */
    uint8_t *buf = malloc((size_t)frame);
    if (!buf) return;
    put_u32(buf, (uint32_t)cl);
    memcpy(buf + 4, channel, cl);
    put_u32(buf + 4 + cl, (uint32_t)len);
    if (len) memcpy(buf + 8 + cl, body, len);
    if (write_all(c->fd, buf, (size_t)frame) != 0) {
        c->failed = 1;
        lunnel_log_kv(LUNNEL_LOG_ERROR, "capture", "cannot write the capture file, capture stops",
                      "path", c->path, "error", strerror(errno), NULL);
    } else {
        c->bytes += frame;
    }
    free(buf);
}

void lunnel_capture_close(lunnel_capture *c)
{
    if (!c) return;
    close(c->fd);
    for (size_t i = 0; i < c->n_last; i++) {
        free(c->last[i].channel);
        free(c->last[i].token);
    }
    free(c->last);
    free(c->path);
    free(c);
}

int lunnel_capture_is(const uint8_t *data, size_t len)
{
    return len >= 8 && memcmp(data, LUNNEL_CAPTURE_MAGIC, 8) == 0;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int lunnel_capture_frames(const uint8_t *data, size_t len,
                          int (*fn)(void *ud, const char *channel, size_t channel_len,
                                    const uint8_t *body, size_t body_len),
                          void *ud, char *err, size_t cap)
{
    if (!lunnel_capture_is(data, len)) {
        snprintf(err, cap, "not a capture file (no %s header)", LUNNEL_CAPTURE_MAGIC);
        return -1;
    }
    size_t off = 8;
    int n = 0;
    while (off < len) {
        if (len - off < 4 || (uint64_t)(len - off - 4) < (uint64_t)get_u32(data + off) + 4) {
            snprintf(err, cap, "frame %d at byte %zu is cut short (a run killed mid-write?)", n,
                     off);
            return -1;
        }
        uint32_t cl = get_u32(data + off);
        const char *ch = (const char *)data + off + 4;
        size_t boff = off + 4 + cl;
        uint32_t bl = get_u32(data + boff);
        if ((uint64_t)(len - boff - 4) < (uint64_t)bl) {
            snprintf(err, cap, "frame %d at byte %zu is cut short (a run killed mid-write?)", n,
                     off);
            return -1;
        }
        if (fn(ud, ch, cl, data + boff + 4, bl) != 0) return -1;
        off = boff + 4 + bl;
        n++;
    }
    return 0;
}
