/* sql_text.c: growable statement text and the scalar literals both SQL sinks write
 * (see sql_text.h). Doubles are written with 17 significant digits so the server's
 * conversion gives back the very same double. */
#include "sql_text.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/buf.h"

void sql_text_init(sql_text *t)
{
    memset(t, 0, sizeof *t);
}

void sql_text_free(sql_text *t)
{
    free(t->p);
    sql_text_init(t);
}

void sql_text_reset(sql_text *t)
{
    t->len = 0;
    if (t->p) t->p[0] = 0;
    t->err[0] = 0;
}

int sql_text_reserve(sql_text *t, size_t n)
{
    if (t->len + n + 1 <= t->cap) return 0;
    if (lunnel_vec_reserve(&t->p, &t->cap, t->len + n + 1, 4096) != 0) {
        snprintf(t->err, sizeof t->err, "out of memory for a %zu-byte statement", t->len + n);
        return -1;
    }
    return 0;
}

int sql_text_append(sql_text *t, const char *s, size_t n)
{
    if (sql_text_reserve(t, n) != 0) return -1;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
    return 0;
}

int sql_text_ident(sql_text *t, const char *s, size_t n, int dialect)
{
    char q = dialect == SQL_DIALECT_MYSQL ? '`' : '"';
    if (sql_text_reserve(t, 2 * n + 2) != 0) return -1;
    char *o = t->p + t->len;
    *o++ = q;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0) {
            snprintf(t->err, sizeof t->err, "identifier '%.*s' holds a NUL byte",
                     (int)(n > 100 ? 100 : n), s);
            return -1;
        }
        if (s[i] == q) *o++ = q;
        *o++ = s[i];
    }
    *o++ = q;
    t->len = (size_t)(o - t->p);
    t->p[t->len] = 0;
    return 0;
}

int sql_text_fail(sql_text *t, const lunnel_column *c, const char *what)
{
    int n = c ? (int)(c->name_len > 200 ? 200 : c->name_len) : 0;
    snprintf(t->err, sizeof t->err, "column '%.*s': %s", n, c ? (const char *)c->name : "", what);
    return -1;
}

int sql_text_scalar(sql_text *t, const lunnel_column *c, int dialect)
{
    char buf[64];
    int n;
    switch (c->value.type) {
    case LUNNEL_VT_INTEGER:
        n = snprintf(buf, sizeof buf, "%" PRId64, c->value.u.i);
        break;
    case LUNNEL_VT_BOOLEAN:
        n = snprintf(buf, sizeof buf, "%s", c->value.u.i ? "TRUE" : "FALSE");
        break;
    case LUNNEL_VT_DOUBLE: {
        double d = c->value.u.d;
        if (isfinite(d)) {
            n = snprintf(buf, sizeof buf, "%.17g", d);
        } else if (dialect == SQL_DIALECT_MYSQL) {
            return sql_text_fail(t, c, "MySQL cannot store NaN or infinity in a DOUBLE");
        } else {
            n = snprintf(buf, sizeof buf, "'%s'::float8",
                         isnan(d) ? "NaN"
                         : d > 0  ? "Infinity"
                                  : "-Infinity");
        }
        break;
    }
    case LUNNEL_VT_NONE:
    case LUNNEL_VT_NULL:
        n = snprintf(buf, sizeof buf, "NULL");
        break;
    default:
        return 1;
    }
    return sql_text_append(t, buf, (size_t)n);
}

int sql_text_hex(sql_text *t, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    if (sql_text_reserve(t, 2 * n) != 0) return -1;
    char *o = t->p + t->len;
    for (size_t i = 0; i < n; i++) {
        *o++ = digits[p[i] >> 4];
        *o++ = digits[p[i] & 15];
    }
    t->len += 2 * n;
    t->p[t->len] = 0;
    return 0;
}

/* ---- PostgreSQL text forms (sink_postgres.c) ---- */

/* Appends the literal of one cell: text in standard quotes, bytea as '\x..', NULL for a
 * deleted cell; -1 (err) for text PostgreSQL cannot hold (a NUL byte). */
int sql_text_pg_literal(sql_text *t, const lunnel_column *c)
{
    int rc = sql_text_scalar(t, c, SQL_DIALECT_POSTGRES);
    if (rc <= 0) return rc;
    const uint8_t *s = c->value.u.ptr;
    size_t n = c->value.len;
    if (c->value.type == LUNNEL_VT_BINARY) {
        if (sql_text_append(t, "'\\x", 3) != 0 || sql_text_hex(t, s, n) != 0) return -1;
        return sql_text_append(t, "'", 1);
    }
    if (c->value.type != LUNNEL_VT_STRING)
        return sql_text_fail(t, c, "a value of this type cannot be stored");
    if (memchr(s, 0, n)) return sql_text_fail(t, c, "PostgreSQL text cannot hold a NUL byte");
    if (sql_text_reserve(t, 2 * n + 2) != 0) return -1;
    char *o = t->p + t->len;
    *o++ = '\'';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\'') *o++ = '\'';
        *o++ = (char)s[i];
    }
    *o++ = '\'';
    t->len = (size_t)(o - t->p);
    t->p[t->len] = 0;
    return 0;
}

/* Appends one cell in COPY text format: backslash, tab, newline and carriage return escaped;
 * bytea as \\x<hex>; a deleted cell as \N. */
int sql_text_pg_copy_value(sql_text *t, const lunnel_column *c)
{
    const lunnel_value *v = &c->value;
    char buf[64];
    int n;
    switch (v->type) {
    case LUNNEL_VT_INTEGER:
        n = snprintf(buf, sizeof buf, "%lld", (long long)v->u.i);
        return sql_text_append(t, buf, (size_t)n);
    case LUNNEL_VT_BOOLEAN:
        return sql_text_append(t, v->u.i ? "t" : "f", 1);
    case LUNNEL_VT_DOUBLE:
        if (v->u.d != v->u.d)
            n = snprintf(buf, sizeof buf, "NaN");
        else if (v->u.d > 1.7976931348623157e308)
            n = snprintf(buf, sizeof buf, "Infinity");
        else if (v->u.d < -1.7976931348623157e308)
            n = snprintf(buf, sizeof buf, "-Infinity");
        else
            n = snprintf(buf, sizeof buf, "%.17g", v->u.d);
        return sql_text_append(t, buf, (size_t)n);
    case LUNNEL_VT_BINARY:
        if (sql_text_append(t, "\\\\x", 3) != 0) return -1;
        return sql_text_hex(t, v->u.ptr, v->len);
    case LUNNEL_VT_STRING: {
        const uint8_t *s = v->u.ptr;
        if (memchr(s, 0, v->len))
            return sql_text_fail(t, c, "PostgreSQL text cannot hold a NUL byte");
        if (sql_text_reserve(t, 2 * (size_t)v->len) != 0) return -1;
        char *o = t->p + t->len;
        for (uint32_t i = 0; i < v->len; i++) {
            switch (s[i]) {
            case '\\':
                *o++ = '\\';
                *o++ = '\\';
                break;
            case '\t':
                *o++ = '\\';
                *o++ = 't';
                break;
            case '\n':
                *o++ = '\\';
                *o++ = 'n';
                break;
            case '\r':
                *o++ = '\\';
                *o++ = 'r';
                break;
            default:
                *o++ = (char)s[i];
            }
        }
        t->len = (size_t)(o - t->p);
        t->p[t->len] = 0;
        return 0;
    }
    case LUNNEL_VT_NONE:
    case LUNNEL_VT_NULL:
        return sql_text_append(t, "\\N", 2);
    default:
        return sql_text_fail(t, c, "a value of this type cannot be stored");
    }
}

void lunnel_sql_reset(sql_text *t)
{
    sql_text_reset(t);
}
size_t lunnel_sql_len(const sql_text *t)
{
    return t->len;
}
int lunnel_sql_append(sql_text *t, const char *s, size_t n)
{
    return sql_text_append(t, s, n);
}
int lunnel_sql_ident(sql_text *t, const char *s, size_t n, int dialect)
{
    return sql_text_ident(t, s, n, dialect);
}
const char *lunnel_sql_error(const sql_text *t)
{
    return t->err;
}
const char *lunnel_sql_text(const sql_text *t)
{
    return t->p ? t->p : "";
}
