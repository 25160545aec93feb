/* sink_postgres.c: the C half of lunnel.sinks.postgres, built as its own module
 * (build/lib/lunnel_sink_postgres.so, the only part of lunnel that links libpq) and loaded
 * by the Lua sink with ffi.load when a script first requires it.
 *
 * One lunnel_pg is one connection plus the statement buffer the Lua side fills with a whole
 * batch (BEGIN; DELETE ...; INSERT ... VALUES (...),(...); ...; COMMIT) and runs in one round
 * trip. Values are written as literals straight from the record view's cells, so no Lua string
 * is made for a value. The connection belongs to the worker thread that made it. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql_text.h"

typedef struct lunnel_pg {
    PGconn *conn;
    sql_text sql;
    sql_text result; /* rows of the last query, one per line, columns separated by tabs */
    char err[1024];
} lunnel_pg;

lunnel_pg *lunnel_pg_new(void)
{
    lunnel_pg *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    sql_text_init(&p->sql);
    sql_text_init(&p->result);
    return p;
}

static void disconnect(lunnel_pg *p)
{
    if (p->conn) PQfinish(p->conn);
    p->conn = NULL;
}

void lunnel_pg_free(lunnel_pg *p)
{
    if (!p) return;
    disconnect(p);
    sql_text_free(&p->sql);
    sql_text_free(&p->result);
    free(p);
}

const char *lunnel_pg_error(const lunnel_pg *p) { return p->err; }

/* Copies a server or libpq message into err on one line (libpq ends them with newlines). */
static void set_error(lunnel_pg *p, const char *prefix, const char *msg)
{
    snprintf(p->err, sizeof p->err, "%s%s", prefix, msg ? msg : "");
    for (char *c = p->err; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t') *c = ' ';
    size_t n = strlen(p->err);
    while (n > 0 && p->err[n - 1] == ' ') p->err[--n] = 0;
}

int lunnel_pg_connected(const lunnel_pg *p) { return p->conn && PQstatus(p->conn) == CONNECTION_OK; }

/* Connects with conninfo (a URI or key=value string). Our defaults come first so the user's
 * own settings in conninfo win. Returns 0, or -1 with the reason in lunnel_pg_error (libpq's
 * messages name host and port, never the password). */
int lunnel_pg_connect(lunnel_pg *p, const char *conninfo, int timeout_s)
{
    disconnect(p);
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", timeout_s > 0 ? timeout_s : 10);
    const char *keys[] = {"connect_timeout", "application_name", "client_encoding", "dbname", NULL};
    const char *vals[] = {timeout, "lunnel", "UTF8", conninfo, NULL};
    p->conn = PQconnectdbParams(keys, vals, 1);
    if (!p->conn) {
        set_error(p, "", "out of memory for a connection");
        return -1;
    }
    if (PQstatus(p->conn) != CONNECTION_OK) {
        set_error(p, "", PQerrorMessage(p->conn));
        disconnect(p);
        return -1;
    }
    /* Literals are written with standard string syntax: a backslash is an ordinary character. */
    PGresult *r = PQexec(p->conn, "SET standard_conforming_strings = on");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) set_error(p, "", PQresultErrorMessage(r));
    PQclear(r);
    if (!ok) disconnect(p);
    return ok ? 0 : -1;
}

void lunnel_pg_sql_reset(lunnel_pg *p) { sql_text_reset(&p->sql); }
size_t lunnel_pg_sql_len(const lunnel_pg *p) { return p->sql.len; }
int lunnel_pg_sql(lunnel_pg *p, const char *s, size_t n) { return sql_text_append(&p->sql, s, n); }
int lunnel_pg_ident(lunnel_pg *p, const char *s, size_t n) { return sql_text_ident(&p->sql, s, n, SQL_DIALECT_POSTGRES); }
const char *lunnel_pg_sql_error(const lunnel_pg *p) { return p->sql.err; }
/* The statement text so far (specs, debugging). */
const char *lunnel_pg_sql_text(const lunnel_pg *p) { return p->sql.p ? p->sql.p : ""; }

/* Appends the literal of one cell: text in standard quotes, bytea as '\x..', NULL for a
 * deleted cell. -1 (lunnel_pg_sql_error) for text PostgreSQL cannot hold. */
int lunnel_pg_value(lunnel_pg *p, const lunnel_column *c)
{
    sql_text *t = &p->sql;
    int rc = sql_text_scalar(t, c, SQL_DIALECT_POSTGRES);
    if (rc <= 0) return rc;
    const uint8_t *s = c->value.u.ptr;
    size_t n = c->value.len;
    if (c->value.type == LUNNEL_VT_BINARY) {
        if (sql_text_append(t, "'\\x", 3) != 0 || sql_text_hex(t, s, n) != 0) return -1;
        return sql_text_append(t, "'", 1);
    }
    if (c->value.type != LUNNEL_VT_STRING) return sql_text_fail(t, c, "a value of this type cannot be stored");
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

/* Names the failure: SQLSTATE and the server's primary message (and detail). */
static void result_error(lunnel_pg *p, PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
    char buf[900];
    if (msg)
        snprintf(buf, sizeof buf, "%s (SQLSTATE %s)%s%s", msg, state ? state : "?", detail ? ": " : "", detail ? detail : "");
    else
        snprintf(buf, sizeof buf, "%s", PQerrorMessage(p->conn));
    set_error(p, "", buf);
}

/* Runs the statement buffer (one or more statements, one round trip). Returns 0; -1 when the
 * server refused it (the open transaction, if any, is rolled back); -2 when the connection is
 * gone (the Lua side reconnects before the next batch). */
int lunnel_pg_exec(lunnel_pg *p)
{
    if (!lunnel_pg_connected(p)) {
        if (!p->err[0]) set_error(p, "", "not connected");
        return -2;
    }
    p->err[0] = 0;
    if (!PQsendQuery(p->conn, p->sql.p ? p->sql.p : "")) {
        set_error(p, "", PQerrorMessage(p->conn));
        return PQstatus(p->conn) == CONNECTION_OK ? -1 : -2;
    }
    int failed = 0;
    PGresult *r;
    while ((r = PQgetResult(p->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (!failed && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
            result_error(p, r);
            failed = 1;
        }
        PQclear(r);
    }
    if (PQstatus(p->conn) != CONNECTION_OK) {
        if (!failed) set_error(p, "", PQerrorMessage(p->conn));
        return -2;
    }
    if (!failed) return 0;
    if (PQtransactionStatus(p->conn) != PQTRANS_IDLE) {
        r = PQexec(p->conn, "ROLLBACK");
        PQclear(r);
    }
    return -1;
}

/* Runs one query and keeps its rows as text (columns tab-separated, rows newline-ended; NULL
 * as an empty field). Same return codes as lunnel_pg_exec. */
int lunnel_pg_query(lunnel_pg *p, const char *sql)
{
    sql_text_reset(&p->result);
    if (!lunnel_pg_connected(p)) {
        if (!p->err[0]) set_error(p, "", "not connected");
        return -2;
    }
    PGresult *r = PQexec(p->conn, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        result_error(p, r);
        PQclear(r);
        return PQstatus(p->conn) == CONNECTION_OK ? -1 : -2;
    }
    int rows = PQntuples(r), cols = PQnfields(r), rc = 0;
    for (int i = 0; i < rows && rc == 0; i++) {
        for (int j = 0; j < cols && rc == 0; j++) {
            if (j > 0) rc = sql_text_append(&p->result, "\t", 1);
            if (rc == 0) rc = sql_text_append(&p->result, PQgetvalue(r, i, j), (size_t)PQgetlength(r, i, j));
        }
        if (rc == 0) rc = sql_text_append(&p->result, "\n", 1);
    }
    PQclear(r);
    if (rc != 0) set_error(p, "", p->result.err);
    return rc;
}

const char *lunnel_pg_result(const lunnel_pg *p, size_t *len)
{
    *len = p->result.len;
    return p->result.p ? p->result.p : "";
}
