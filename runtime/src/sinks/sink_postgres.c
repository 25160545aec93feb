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
    sql_text copy;   /* COPY ... FROM STDIN data (text format) run by lunnel_pg_exec_copy */
    char err[1024];
} lunnel_pg;

lunnel_pg *lunnel_pg_new(void)
{
    lunnel_pg *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    sql_text_init(&p->sql);
    sql_text_init(&p->result);
    sql_text_init(&p->copy);
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
    sql_text_free(&p->copy);
    free(p);
}

const char *lunnel_pg_error(const lunnel_pg *p)
{
    return p->err;
}

/* Copies a server or libpq message into err on one line (libpq ends them with newlines). */
static void set_error(lunnel_pg *p, const char *prefix, const char *msg)
{
    snprintf(p->err, sizeof p->err, "%s%s", prefix, msg ? msg : "");
    for (char *c = p->err; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t') *c = ' ';
    size_t n = strlen(p->err);
    while (n > 0 && p->err[n - 1] == ' ')
        p->err[--n] = 0;
}

int lunnel_pg_connected(const lunnel_pg *p)
{
    return p->conn && PQstatus(p->conn) == CONNECTION_OK;
}

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

/* The statement text (lunnel_sql_* in sql_text.c); a reset also empties the COPY data. */
sql_text *lunnel_pg_buf(lunnel_pg *p)
{
    return &p->sql;
}
void lunnel_pg_sql_reset(lunnel_pg *p)
{
    sql_text_reset(&p->sql);
    sql_text_reset(&p->copy);
}

/* Appends the literal of one cell (sql_text_pg_literal). */
int lunnel_pg_value(lunnel_pg *p, const lunnel_column *c)
{
    return sql_text_pg_literal(&p->sql, c);
}

/* COPY text format: raw separators ("\t", "\n", "\\N" for NULL) and cells
 * (sql_text_pg_copy_value) for the data of lunnel_pg_exec_copy. */
int lunnel_pg_copy_raw(lunnel_pg *p, const char *s, size_t n)
{
    return sql_text_append(&p->copy, s, n);
}
int lunnel_pg_copy_value(lunnel_pg *p, const lunnel_column *c)
{
    return sql_text_pg_copy_value(&p->copy, c);
}
const char *lunnel_pg_copy_error(const lunnel_pg *p)
{
    return p->copy.err;
}

/* Names the failure: SQLSTATE and the server's primary message (and detail). */
static void result_error(lunnel_pg *p, PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
    char buf[900];
    if (msg)
        snprintf(buf, sizeof buf, "%s (SQLSTATE %s)%s%s", msg, state ? state : "?",
                 detail ? ": " : "", detail ? detail : "");
    else
        snprintf(buf, sizeof buf, "%s", PQerrorMessage(p->conn));
    set_error(p, "", buf);
}

/* Sends text (one or more statements) and reads every result. Returns 0; -1 when the
 * server refused it; -2 when the connection is gone. A COPY FROM STDIN among them gets the
 * copy buffer as its data. */
static int run_text(lunnel_pg *p, const char *text)
{
    if (!PQsendQuery(p->conn, text)) {
        set_error(p, "", PQerrorMessage(p->conn));
        return PQstatus(p->conn) == CONNECTION_OK ? -1 : -2;
    }
    int failed = 0;
    PGresult *r;
    while ((r = PQgetResult(p->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COPY_IN) {
            PQclear(r);
            int ok = (p->copy.len == 0 || PQputCopyData(p->conn, p->copy.p, (int)p->copy.len) == 1);
            if (PQputCopyEnd(p->conn, ok ? NULL : "lunnel: cannot send the COPY data") != 1 &&
                !failed) {
                set_error(p, "", PQerrorMessage(p->conn));
                failed = 1;
            }
            continue;
        }
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
    return failed ? -1 : 0;
}

/* After a failure: leaves no transaction open on the connection. */
static int after(lunnel_pg *p, int rc)
{
    if (rc == -1 && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
        PQclear(PQexec(p->conn, "ROLLBACK"));
    return rc;
}

static int check_connected(lunnel_pg *p)
{
    if (lunnel_pg_connected(p)) {
        p->err[0] = 0;
        return 0;
    }
    if (!p->err[0]) set_error(p, "", "not connected");
    return -2;
}

/* Runs the statement buffer (one or more statements, one round trip). Returns 0; -1 when the
 * server refused it (the open transaction, if any, is rolled back); -2 when the connection is
 * gone (the Lua side reconnects before the next batch). */
int lunnel_pg_exec(lunnel_pg *p)
{
    if (check_connected(p) != 0) return -2;
    return after(p, run_text(p, p->sql.p ? p->sql.p : ""));
}

/* Runs the statement buffer's first `split` bytes, then `copy_cmd` (a COPY ... FROM STDIN)
 * with the copy buffer as its data, then the rest of the buffer: three round trips, one
 * transaction when the buffer opens one before split. Same return codes as lunnel_pg_exec. */
int lunnel_pg_exec_copy(lunnel_pg *p, size_t split, const char *copy_cmd)
{
    if (check_connected(p) != 0) return -2;
    if (split > p->sql.len) split = p->sql.len;
    char keep = p->sql.p[split];
    p->sql.p[split] = 0;
    int rc = run_text(p, p->sql.p);
    p->sql.p[split] = keep;
    if (rc == 0) rc = run_text(p, copy_cmd);
    if (rc == 0 && split < p->sql.len) rc = run_text(p, p->sql.p + split);
    return after(p, rc);
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
            if (rc == 0)
                rc = sql_text_append(&p->result, PQgetvalue(r, i, j), (size_t)PQgetlength(r, i, j));
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
