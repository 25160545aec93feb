/* buf.c: the growable byte buffer and array growth of buf.h. */
#include "lunnel/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lunnel_buf_init_on(lunnel_buf *b, char *storage, size_t cap)
{
    b->p = storage;
    b->len = 0;
    b->cap = cap;
    b->oom = 0;
    b->on_heap = 0;
    if (cap) storage[0] = '\0';
}

void lunnel_buf_free(lunnel_buf *b)
{
    if (b->on_heap) free(b->p);
    *b = (lunnel_buf)LUNNEL_BUF_INIT;
}

void lunnel_buf_reset(lunnel_buf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->p) b->p[0] = '\0';
}

char *lunnel_buf_reserve(lunnel_buf *b, size_t extra)
{
    if (b->oom) return NULL;
    if (extra > ((size_t)-1) / 4 - b->len) {
        b->oom = 1;
        return NULL;
    }
    size_t need = b->len + extra + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < need)
            cap *= 2;
        char *p = b->on_heap ? realloc(b->p, cap) : malloc(cap);
        if (!p) {
            b->oom = 1;
            return NULL;
        }
        if (!b->on_heap && b->len) memcpy(p, b->p, b->len);
        b->p = p;
        b->cap = cap;
        b->on_heap = 1;
    }
    return b->p + b->len;
}

void lunnel_buf_add(lunnel_buf *b, const void *data, size_t n)
{
    char *dst = lunnel_buf_reserve(b, n);
    if (!dst) return;
    if (n) memcpy(dst, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void lunnel_buf_str(lunnel_buf *b, const char *s)
{
    lunnel_buf_add(b, s, strlen(s));
}

void lunnel_buf_char(lunnel_buf *b, char c)
{
    lunnel_buf_add(b, &c, 1);
}

void lunnel_buf_vprintf(lunnel_buf *b, const char *fmt, va_list ap)
{
    if (b->oom) return;
    va_list cp;
    va_copy(cp, ap);
    size_t room = b->p ? b->cap - b->len : 0;
    int k = vsnprintf(room ? b->p + b->len : NULL, room, fmt, cp);
    va_end(cp);
    if (k < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)k < room) {
        b->len += (size_t)k;
        return;
    }
    char *dst = lunnel_buf_reserve(b, (size_t)k);
    if (!dst) return;
    vsnprintf(dst, (size_t)k + 1, fmt, ap);
    b->len += (size_t)k;
}

void lunnel_buf_printf(lunnel_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lunnel_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void lunnel_buf_write_cb(void *ctx, const char *p, size_t n)
{
    lunnel_buf_add(ctx, p, n);
}

int lunnel_vec_reserve_(void **items, size_t *cap, size_t need, size_t elem_size, size_t min_cap)
{
    if (need <= *cap) return 0;
    if (need > ((size_t)-1) / 2) return -1; /* the doubling below would wrap */
    size_t c = *cap ? *cap : (min_cap ? min_cap : 8);
    while (c < need)
        c *= 2;
    if (elem_size && c > ((size_t)-1) / elem_size) return -1;
    void *p = realloc(*items, c * elem_size);
    if (!p) return -1;
    *items = p;
    *cap = c;
    return 0;
}
