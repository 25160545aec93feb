/* sink_mysql.c: the C half of lunnel.sinks.mysql, built as its own module
 * (build/lib/lunnel_sink_mysql.so, the only part of lunnel that links libmariadb, which also
 * speaks to MySQL servers) and loaded by the Lua sink with ffi.load when a script first
 * requires it.
 *
 * One lunnel_my is one connection (utf8mb4, multi-statements on) plus the statement buffer
 * the Lua side fills with a whole batch (START TRANSACTION; DELETE ...; INSERT ... VALUES
 * (...),(...) ...; COMMIT) and sends in one round trip. String literals are escaped by the
 * client library for the connection's character set and SQL mode; binaries are X'..'. */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql_text.h"

typedef struct lunnel_my {
    MYSQL *conn;
    sql_text sql;
    sql_text result;
    char err[1024];
} lunnel_my;

lunnel_my *lunnel_my_new(void)
{
    lunnel_my *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    sql_text_init(&m->sql);
    sql_text_init(&m->result);
    return m;
}

static void disconnect(lunnel_my *m)
{
    if (m->conn) mysql_close(m->conn);
    m->conn = NULL;
}

void lunnel_my_free(lunnel_my *m)
{
    if (!m) return;
    disconnect(m);
    sql_text_free(&m->sql);
    sql_text_free(&m->result);
    free(m);
}

/* libmariadb keeps library-wide state from its first mysql_init() until mysql_library_end().
 * This module (and with it libmariadb) is unloaded when the Lua state that loaded it closes:
 * free that state then, or it is memory no one can reach (LeakSanitizer reports it). */
__attribute__((destructor)) static void library_end(void)
{
    mysql_library_end();
}

const char *lunnel_my_error(const lunnel_my *m)
{
    return m->err;
}
sql_text *lunnel_my_buf(lunnel_my *m)
{
    return &m->sql;
}
void lunnel_my_sql_reset(lunnel_my *m)
{
    sql_text_reset(&m->sql);
}
int lunnel_my_connected(const lunnel_my *m)
{
    return m->conn != NULL;
}

/* The server's message with its error number and SQLSTATE, on one line. */
static void server_error(lunnel_my *m)
{
    snprintf(m->err, sizeof m->err, "%s (error %u, SQLSTATE %s)", mysql_error(m->conn),
             mysql_errno(m->conn), mysql_sqlstate(m->conn));
    for (char *c = m->err; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
}

/* Whether the last error is the client's own (CR_*: 2000-2999, e.g. 2006 server gone away,
 * 2013 lost connection): then the connection is dropped and made again for the next batch. */
static int lost(lunnel_my *m)
{
    unsigned e = mysql_errno(m->conn);
    return e >= 2000 && e < 3000;
}

/* Connects (host, port, user, password, database; NULL/0 for defaults). 0, or -1 with the
 * reason in lunnel_my_error (the client library's message, never the password). */
int lunnel_my_connect(lunnel_my *m, const char *host, unsigned port, const char *user,
                      const char *password, const char *db, unsigned timeout_s)
{
    disconnect(m);
    m->err[0] = 0;
    m->conn = mysql_init(NULL);
    if (!m->conn) {
        snprintf(m->err, sizeof m->err, "out of memory for a connection");
        return -1;
    }
    unsigned t = timeout_s ? timeout_s : 10;
    mysql_options(m->conn, MYSQL_OPT_CONNECT_TIMEOUT, &t);
    unsigned rw = t * 3;
    mysql_options(m->conn, MYSQL_OPT_READ_TIMEOUT, &rw);
    mysql_options(m->conn, MYSQL_OPT_WRITE_TIMEOUT, &rw);
    mysql_options(m->conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(m->conn, host, user, password, db && *db ? db : NULL, port, NULL,
                            CLIENT_MULTI_STATEMENTS | CLIENT_FOUND_ROWS)) {
        server_error(m);
        disconnect(m);
        return -1;
    }
    return 0;
}

/* Appends the literal of one cell: strings escaped by the client library, X'..' binaries,
 * NULL for a deleted cell. -1 (lunnel_sql_error of the buffer) when the value cannot be
 * stored (a non-finite double). */
int lunnel_my_value(lunnel_my *m, const lunnel_column *c)
{
    sql_text *t = &m->sql;
    int rc = sql_text_scalar(t, c, SQL_DIALECT_MYSQL);
    if (rc <= 0) return rc;
    const char *s = (const char *)c->value.u.ptr;
    size_t n = c->value.len;
    if (c->value.type == LUNNEL_VT_BINARY) {
        if (sql_text_append(t, "X'", 2) != 0 || sql_text_hex(t, (const uint8_t *)s, n) != 0)
            return -1;
        return sql_text_append(t, "'", 1);
    }
    if (c->value.type != LUNNEL_VT_STRING)
        return sql_text_fail(t, c, "a value of this type cannot be stored");
    if (!m->conn) return sql_text_fail(t, c, "not connected");
    if (sql_text_reserve(t, 2 * n + 3) != 0) return -1;
    t->p[t->len++] = '\'';
    t->len += mysql_real_escape_string(m->conn, t->p + t->len, s, (unsigned long)n);
    t->p[t->len++] = '\'';
    t->p[t->len] = 0;
    return 0;
}

/* Sends the buffer (all its statements at once) and reads every result. 0; -1 when the
 * server refused a statement (the open transaction is rolled back); -2 when the connection
 * is gone. */
int lunnel_my_exec(lunnel_my *m)
{
    if (!m->conn) {
        if (!m->err[0]) snprintf(m->err, sizeof m->err, "not connected");
        return -2;
    }
    m->err[0] = 0;
    int failed = 0;
    if (mysql_real_query(m->conn, m->sql.p ? m->sql.p : "", (unsigned long)m->sql.len) != 0) {
        failed = 1;
    } else {
        for (;;) {
            MYSQL_RES *res = mysql_store_result(m->conn);
            if (res)
                mysql_free_result(res);
            else if (mysql_field_count(m->conn) != 0) {
                failed = 1;
                break;
            }
            int next = mysql_next_result(m->conn);
            if (next < 0) break; /* no more results */
            if (next > 0) {
                failed = 1;
                break;
            }
        }
    }
    if (!failed) return 0;
    server_error(m);
    if (lost(m)) {
        disconnect(m);
        return -2;
    }
    /* drain whatever is left, then leave no transaction open */
    while (mysql_more_results(m->conn) && mysql_next_result(m->conn) == 0) {
        MYSQL_RES *res = mysql_store_result(m->conn);
        if (res) mysql_free_result(res);
    }
    if (mysql_query(m->conn, "ROLLBACK") != 0) {
        disconnect(m);
        return -2;
    }
    return -1;
}

/* Runs one query and keeps its rows as text (tab-separated columns, newline-ended rows).
 * Same return codes as lunnel_my_exec. */
int lunnel_my_query(lunnel_my *m, const char *sql)
{
    sql_text_reset(&m->result);
    if (!m->conn) {
        if (!m->err[0]) snprintf(m->err, sizeof m->err, "not connected");
        return -2;
    }
    if (mysql_query(m->conn, sql) != 0) {
        server_error(m);
        if (lost(m)) {
            disconnect(m);
            return -2;
        }
        return -1;
    }
    MYSQL_RES *res = mysql_store_result(m->conn);
    if (!res) return 0;
    unsigned cols = mysql_num_fields(res);
    MYSQL_ROW row;
    int rc = 0;
    while (rc == 0 && (row = mysql_fetch_row(res)) != NULL) {
        unsigned long *lens = mysql_fetch_lengths(res);
        for (unsigned j = 0; j < cols && rc == 0; j++) {
            if (j > 0) rc = sql_text_append(&m->result, "\t", 1);
            if (rc == 0 && row[j]) rc = sql_text_append(&m->result, row[j], lens[j]);
        }
        if (rc == 0) rc = sql_text_append(&m->result, "\n", 1);
    }
    mysql_free_result(res);
    if (rc != 0) snprintf(m->err, sizeof m->err, "%s", m->result.err);
    return rc;
}

const char *lunnel_my_result(const lunnel_my *m, size_t *len)
{
    *len = m->result.len;
    return m->result.p ? m->result.p : "";
}
