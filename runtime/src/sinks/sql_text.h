/* sql_text.h: the statement buffer the SQL sink modules (lunnel_sink_postgres.so,
 * lunnel_sink_mysql.so) build their multi-row statements in, and the value literals they
 * share. Each module compiles sql_text.c into itself (the modules are loaded separately and
 * link nothing of each other); the dialect-specific literals (strings, binaries) stay in the
 * module. */
#ifndef LUNNEL_SINKS_SQL_TEXT_H
#define LUNNEL_SINKS_SQL_TEXT_H
#include <stddef.h>
#include <stdint.h>

#include "lunnel/record.h"

typedef struct sql_text {
    char *p;
    size_t len, cap;
    char err[512]; /* why the last append failed */
} sql_text;

enum { SQL_DIALECT_POSTGRES = 0, SQL_DIALECT_MYSQL = 1 };

void sql_text_init(sql_text *t);
void sql_text_free(sql_text *t);
void sql_text_reset(sql_text *t);
/* Makes room for n more bytes plus a NUL; -1 (and err set) on out of memory. */
int sql_text_reserve(sql_text *t, size_t n);
int sql_text_append(sql_text *t, const char *s, size_t n);
/* An identifier in double quotes (PostgreSQL) or backquotes (MySQL), the quote doubled. */
int sql_text_ident(sql_text *t, const char *s, size_t n, int dialect);
/* The literal of an INTEGER, DOUBLE or BOOLEAN value (0), or 1 when the value is of another
 * type (the module writes those), or -1 with err set (a double MySQL cannot store). */
int sql_text_scalar(sql_text *t, const lunnel_column *c, int dialect);
/* Lower-case hex of n bytes. */
int sql_text_hex(sql_text *t, const uint8_t *p, size_t n);
/* PostgreSQL: the SQL literal of a cell (standard-conforming strings, bytea as '\x..',
 * NULL for a deleted cell), and the cell in COPY text format (backslash, tab, newline, CR
 * escaped; bytea as \\x..; \N for a deleted cell). -1 with err for a NUL byte in text. */
int sql_text_pg_literal(sql_text *t, const lunnel_column *c);
int sql_text_pg_copy_value(sql_text *t, const lunnel_column *c);
/* Exported for the Lua side (the same in each module that compiles this file): the
 * statement text of a module's connection, reached through its lunnel_<x>_buf(). */
void lunnel_sql_reset(sql_text *t);
size_t lunnel_sql_len(const sql_text *t);
int lunnel_sql_append(sql_text *t, const char *s, size_t n);
int lunnel_sql_ident(sql_text *t, const char *s, size_t n, int dialect);
const char *lunnel_sql_error(const sql_text *t);
const char *lunnel_sql_text(const sql_text *t);
/* Names the column in err: "column 'name': what". Returns -1. */
int sql_text_fail(sql_text *t, const lunnel_column *c, const char *what);
#endif
