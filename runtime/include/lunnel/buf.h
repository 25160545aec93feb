/* buf.h: the one growable byte buffer and the one growable-array helper of lunnel (base).
 *
 * lunnel_buf is a text-or-bytes buffer that stays NUL-terminated, doubles its capacity when
 * it grows, and records an allocation failure instead of returning it at every call: after
 * the first failure `oom` is set, later appends do nothing, and the owner checks `oom` once
 * when the text is complete (a log line, a metrics page, a dead-letter entry). A buffer may
 * start on caller storage (a stack array) and moves to the heap only when it outgrows it.
 *
 * lunnel_vec_reserve grows any array of fixed-size elements (channel tables, record ranges,
 * file lists): capacity doubles from a minimum, old elements are kept, nothing is zeroed. */
#ifndef LUNNEL_BUF_H
#define LUNNEL_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct lunnel_buf {
    char *p;     /* NUL-terminated once anything was written; NULL while empty and unbacked */
    size_t len;  /* bytes written (excluding the NUL) */
    size_t cap;  /* bytes available at p */
    int oom;     /* an append failed: the content is incomplete */
    int on_heap; /* p was allocated here (0 while on caller storage) */
} lunnel_buf;

#define LUNNEL_BUF_INIT                                                                            \
    {                                                                                              \
        0                                                                                          \
    }

/* Starts `b` on caller storage (cap >= 1); appends move to the heap when it is full. */
void lunnel_buf_init_on(lunnel_buf *b, char *storage, size_t cap);
/* Frees heap storage and empties `b` (caller storage is left alone). */
void lunnel_buf_free(lunnel_buf *b);
/* len = 0, memory kept, oom cleared. */
void lunnel_buf_reset(lunnel_buf *b);

/* Makes room for `extra` more bytes plus the NUL: a pointer to the end of the content, or
 * NULL (and oom set) when memory ran out. The caller writes, then advances len. */
char *lunnel_buf_reserve(lunnel_buf *b, size_t extra);
void lunnel_buf_add(lunnel_buf *b, const void *data, size_t n);
void lunnel_buf_str(lunnel_buf *b, const char *s);
void lunnel_buf_char(lunnel_buf *b, char c);
void lunnel_buf_printf(lunnel_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lunnel_buf_vprintf(lunnel_buf *b, const char *fmt, va_list ap);
/* A lunnel_json_write_fn-compatible appender: ctx is the lunnel_buf. */
void lunnel_buf_write_cb(void *ctx, const char *p, size_t n);

/* Grows *items (elements of elem_size bytes, capacity *cap) to hold at least `need` elements:
 * 0 ok, -1 out of memory (the array is left as it was). Capacity doubles from min_cap. */
int lunnel_vec_reserve_(void **items, size_t *cap, size_t need, size_t elem_size, size_t min_cap);
#define lunnel_vec_reserve(items, cap, need, min_cap)                                              \
    lunnel_vec_reserve_((void **)(items), (cap), (need), sizeof **(items), (min_cap))

#endif
