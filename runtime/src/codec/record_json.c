/* record_json.c: r:tojson() in C, exact: every fact of the record survives (value types
 * including BINARY, each cell's op and timestamp, the old row, the sequence), so lunnel.json
 * (lua/lunnel/json.lua) reads a line back into the very record lunnel.testing builds.
 * 64-bit integers keep every digit, doubles print the shortest form that reads back
 * identically (always with '.' or an exponent), binaries and non-UTF-8 strings are tagged
 * base64. Shape documented in record.h and docs/scripts.md.
 *
 * Why not the JSON writer of base (lunnel_jw on a lunnel_buf): this runs once per record on
 * the record path (r:tojson, the jsonl sinks) and writes snprintf-style into the caller's
 * fixed buffer, measuring when it does not fit, so a record costs no allocation. Strings go
 * through the same escaper (lunnel_json_write_string), so the bytes agree with every other
 * JSON lunnel writes. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec/codec_internal.h"
#include "lunnel/json.h"
#include "lunnel/record.h"

typedef struct out {
    char *buf;
    size_t cap;
    size_t n; /* bytes the full output needs so far */
} out;

static void put(out *o, const char *s, size_t len)
{
    if (o->n < o->cap) {
        size_t room = o->cap - o->n;
        memcpy(o->buf + o->n, s, len < room ? len : room);
    }
    o->n += len;
}
static void puts_(out *o, const char *s)
{
    put(o, s, strlen(s));
}
static void putc_(out *o, char c)
{
    put(o, &c, 1);
}

static void put_cb(void *ctx, const char *p, size_t n)
{
    put(ctx, p, n);
}

static void put_jstr(out *o, const uint8_t *s, size_t len)
{
    lunnel_json_write_string((const char *)s, len, put_cb, o);
}

static void put_base64(out *o, const uint8_t *p, size_t n)
{
    static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    putc_(o, '"');
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        char q[4] = {tb[(v >> 18) & 63], tb[(v >> 12) & 63], i + 1 < n ? tb[(v >> 6) & 63] : '=',
                     i + 2 < n ? tb[v & 63] : '='};
        put(o, q, 4);
    }
    putc_(o, '"');
}

/* DOUBLE: the shortest form that reads back identically, always with a '.' or an exponent
 * so a reader tells it from an INTEGER; non-finite values are tagged objects. */
static void put_double(out *o, double d)
{
    if (isnan(d)) {
        puts_(o, "{\"double\":\"NaN\"}");
        return;
    }
    if (isinf(d)) {
        puts_(o, d > 0 ? "{\"double\":\"Infinity\"}" : "{\"double\":\"-Infinity\"}");
        return;
    }
    char b[48];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, d);
        if (strtod(b, NULL) == d) break;
    }
    puts_(o, b);
    if (!strpbrk(b, ".eEni")) puts_(o, ".0");
}

/* Typed where plain JSON would be ambiguous or lossy (record.h documents the forms). */
static void put_value(out *o, const lunnel_value *v)
{
    char b[32];
    switch (v->type) {
    case LUNNEL_VT_INTEGER:
        snprintf(b, sizeof b, "%" PRId64, v->u.i);
        puts_(o, b);
        break;
    case LUNNEL_VT_DOUBLE:
        put_double(o, v->u.d);
        break;
    case LUNNEL_VT_BOOLEAN:
        puts_(o, v->u.i ? "true" : "false");
        break;
    case LUNNEL_VT_STRING:
        if (lunnel_json_is_utf8((const char *)v->u.ptr, v->len)) {
            put_jstr(o, v->u.ptr, v->len);
        } else { /* not UTF-8: the exact bytes, base64 */
            puts_(o, "{\"string_base64\":");
            put_base64(o, v->u.ptr, v->len);
            putc_(o, '}');
        }
        break;
    case LUNNEL_VT_BINARY:
        puts_(o, "{\"binary\":");
        put_base64(o, v->u.ptr, v->len);
        putc_(o, '}');
        break;
    case LUNNEL_VT_INF_MIN:
        puts_(o, "{\"inf\":\"MIN\"}");
        break;
    case LUNNEL_VT_INF_MAX:
        puts_(o, "{\"inf\":\"MAX\"}");
        break;
    case LUNNEL_VT_AUTO_INCREMENT:
        puts_(o, "{\"auto_increment\":true}");
        break;
    default:
        puts_(o, "null");
        break;
    }
}

/* {"name":value,...} over the cells that carry a value. */
static void put_object(out *o, const lunnel_column *c, uint32_t n)
{
    putc_(o, '{');
    int first = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (c[i].value.type == LUNNEL_VT_NONE) continue;
        if (!first) putc_(o, ',');
        first = 0;
        put_jstr(o, c[i].name, c[i].name_len);
        putc_(o, ':');
        put_value(o, &c[i].value);
    }
    putc_(o, '}');
}

/* Do the "cols" object and the "deleted" list say everything about these cells? Not when a
 * cell has a timestamp, an op other than PUT / DELETE_ALL_VERSIONS, a value cell comes after
 * a delete cell, or a name repeats: then the "cells" list carries them exactly. */
static int cells_needed(const lunnel_column *c, uint32_t n)
{
    int seen_delete = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (c[i].has_timestamp) return 1;
        if (c[i].op == LUNNEL_OP_PUT) {
            if (seen_delete || c[i].value.type == LUNNEL_VT_NONE) return 1;
        } else if (c[i].op == LUNNEL_OP_DELETE_ALL_VERSIONS) {
            if (c[i].value.type != LUNNEL_VT_NONE) return 1;
            seen_delete = 1;
        } else {
            return 1;
        }
        for (uint32_t k = 0; k < i; k++)
            if (c[k].name_len == c[i].name_len && memcmp(c[k].name, c[i].name, c[i].name_len) == 0)
                return 1;
    }
    return 0;
}

/* [["name","OP",value|null,timestamp_ms|null],...] in wire order. */
static void put_cells(out *o, const lunnel_column *c, uint32_t n)
{
    char b[32];
    putc_(o, '[');
    for (uint32_t i = 0; i < n; i++) {
        if (i) putc_(o, ',');
        putc_(o, '[');
        put_jstr(o, c[i].name, c[i].name_len);
        puts_(o, ",\"");
        puts_(o, lunnel_record_op_name(c[i].op));
        puts_(o, "\",");
        put_value(o, &c[i].value); /* null for a delete op */
        putc_(o, ',');
        if (c[i].has_timestamp) {
            snprintf(b, sizeof b, "%" PRId64, c[i].timestamp);
            puts_(o, b);
        } else {
            puts_(o, "null");
        }
        putc_(o, ']');
    }
    putc_(o, ']');
}

static void put_deleted(out *o, const lunnel_column *c, uint32_t n)
{
    int any = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (c[i].value.type != LUNNEL_VT_NONE || c[i].op != LUNNEL_OP_DELETE_ALL_VERSIONS) continue;
        puts_(o, any ? "," : ",\"deleted\":[");
        any = 1;
        put_jstr(o, c[i].name, c[i].name_len);
    }
    if (any) putc_(o, ']');
}

size_t lunnel_record_tojson(const lunnel_record *r, char *buf, size_t cap)
{
    out o = {buf, cap ? cap - 1 : 0, 0};
    puts_(&o, "{\"action\":\"");
    puts_(&o, lunnel_record_action_name(r->action));
    puts_(&o, "\",\"pk\":");
    put_object(&o, r->pk, r->pk_count);
    puts_(&o, ",\"cols\":");
    put_object(&o, r->cols, r->col_count);
    put_deleted(&o, r->cols, r->col_count);
    if (cells_needed(r->cols, r->col_count)) {
        puts_(&o, ",\"cells\":");
        put_cells(&o, r->cols, r->col_count);
    }
    if (r->has_old) {
        puts_(&o, ",\"old\":");
        put_object(&o, r->old, r->old_count);
        if (cells_needed(r->old, r->old_count)) {
            puts_(&o, ",\"old_cells\":");
            put_cells(&o, r->old, r->old_count);
        }
    }
    if (r->has_seq) {
        char b[96];
        snprintf(b, sizeof b,
                 ",\"seq\":{\"epoch\":%" PRId32 ",\"timestamp\":%" PRId64 ",\"row_index\":%" PRId32
                 "}",
                 r->seq_epoch, r->seq_timestamp, r->seq_row_index);
        puts_(&o, b);
    }
    if (r->delete_marker) puts_(&o, ",\"delete_marker\":true");
    putc_(&o, '}');
    if (cap) buf[o.n < cap ? o.n : cap - 1] = '\0';
    return o.n;
}

size_t lunnel_record_key(const lunnel_record *r, char *buf, size_t cap)
{
    out o = {buf, cap ? cap - 1 : 0, 0};
    char b[32];
    for (uint32_t i = 0; i < r->pk_count; i++) {
        const lunnel_value *v = &r->pk[i].value;
        switch (v->type) {
        case LUNNEL_VT_INTEGER:
            snprintf(b, sizeof b, "i%" PRId64, v->u.i);
            puts_(&o, b);
            break;
        case LUNNEL_VT_STRING:
        case LUNNEL_VT_BINARY:
            snprintf(b, sizeof b, "%c%" PRIu32 ":", v->type == LUNNEL_VT_STRING ? 's' : 'b',
                     v->len);
            puts_(&o, b);
            put(&o, (const char *)v->u.ptr, v->len);
            break;
        case LUNNEL_VT_INF_MIN:
            putc_(&o, '<');
            break;
        case LUNNEL_VT_INF_MAX:
            putc_(&o, '>');
            break;
        default:
            putc_(&o, '?');
            break;
        }
    }
    if (cap) buf[o.n < cap ? o.n : cap - 1] = '\0';
    return o.n;
}
