/* json_write.c: the JSON document writer of json.h (commas and nesting over a lunnel_buf;
 * strings through the one escaper in json_escape.c). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lunnel/json.h"

void lunnel_jw_init(lunnel_jw *w, lunnel_buf *b)
{
    w->b = b;
    w->depth = 0;
    w->has_item = 0;
    w->after_key = 0;
}

static uint64_t depth_bit(const lunnel_jw *w)
{
    return w->depth < 64 ? (uint64_t)1 << w->depth : 0;
}

/* Before any value or key: a comma when the current container already holds an item. */
static void before_item(lunnel_jw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth && (w->has_item & depth_bit(w))) lunnel_buf_char(w->b, ',');
    w->has_item |= depth_bit(w);
}

static void open_container(lunnel_jw *w, char c)
{
    before_item(w);
    lunnel_buf_char(w->b, c);
    w->depth++;
    w->has_item &= ~depth_bit(w);
}

static void close_container(lunnel_jw *w, char c)
{
    if (w->depth) w->depth--;
    w->after_key = 0;
    lunnel_buf_char(w->b, c);
}

void lunnel_jw_object(lunnel_jw *w)
{
    open_container(w, '{');
}

void lunnel_jw_array(lunnel_jw *w)
{
    open_container(w, '[');
}

void lunnel_jw_end_object(lunnel_jw *w)
{
    close_container(w, '}');
}

void lunnel_jw_end_array(lunnel_jw *w)
{
    close_container(w, ']');
}

void lunnel_jw_keyn(lunnel_jw *w, const char *key, size_t n)
{
    before_item(w);
    lunnel_json_write_string(key, n, lunnel_buf_write_cb, w->b);
    lunnel_buf_char(w->b, ':');
    w->after_key = 1;
}

void lunnel_jw_key(lunnel_jw *w, const char *key)
{
    lunnel_jw_keyn(w, key, strlen(key));
}

void lunnel_jw_strn(lunnel_jw *w, const char *s, size_t n)
{
    before_item(w);
    lunnel_json_write_string(s, n, lunnel_buf_write_cb, w->b);
}

void lunnel_jw_str(lunnel_jw *w, const char *s)
{
    if (!s) {
        lunnel_jw_null(w);
        return;
    }
    lunnel_jw_strn(w, s, strlen(s));
}

void lunnel_jw_value(lunnel_jw *w)
{
    before_item(w);
}

void lunnel_jw_raw(lunnel_jw *w, const char *json, size_t n)
{
    before_item(w);
    lunnel_buf_add(w->b, json, n);
}

void lunnel_jw_int(lunnel_jw *w, int64_t v)
{
    char num[32];
    int k = snprintf(num, sizeof num, "%" PRId64, v);
    lunnel_jw_raw(w, num, (size_t)k);
}

void lunnel_jw_uint(lunnel_jw *w, uint64_t v)
{
    char num[32];
    int k = snprintf(num, sizeof num, "%" PRIu64, v);
    lunnel_jw_raw(w, num, (size_t)k);
}

void lunnel_jw_bool(lunnel_jw *w, int v)
{
    lunnel_jw_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void lunnel_jw_null(lunnel_jw *w)
{
    lunnel_jw_raw(w, "null", 4);
}
