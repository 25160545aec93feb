/* sink_redis.c: the C half of lunnel.sinks.redis, built as its own module
 * (build/lib/lunnel_sink_redis.so, the only part of lunnel that links hiredis) and loaded by
 * the Lua sink with ffi.load when a script first requires it.
 *
 * One lunnel_redis is one connection. A batch is one MULTI ... EXEC transaction sent as a
 * single pipeline: per record (straight from the record view, in stream order)
 *   PUT    -> DEL key, HSET key col value ...   (the hash is replaced)
 *   UPDATE -> HSET key col value ... for put cells, HDEL key col ... for deleted ones
 *   DELETE -> DEL key
 * and the batch counts as written only when every reply (MULTI, each QUEUED, every element
 * of EXEC's array) was OK. Values are stored as text: INTEGER in decimal, DOUBLE with 17
 * significant digits, BOOLEAN as true/false, STRING and BINARY as their bytes. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "lunnel/record.h"

typedef struct lunnel_redis {
    redisContext *c;
    uint32_t queued; /* commands appended since MULTI (EXEC not counted) */
    int in_multi;
    /* argument vectors of the command being built */
    const char **argv;
    size_t *argvlen;
    size_t argc, argcap;
    char *nums; /* text of numeric values of the current command, 32 bytes per argument */
    char err[1024];
} lunnel_redis;

lunnel_redis *lunnel_redis_new(void)
{
    return calloc(1, sizeof(lunnel_redis));
}

static void disconnect(lunnel_redis *r)
{
    if (r->c) redisFree(r->c);
    r->c = NULL;
    r->queued = 0;
    r->in_multi = 0;
}

void lunnel_redis_free(lunnel_redis *r)
{
    if (!r) return;
    disconnect(r);
    free(r->argv);
    free(r->argvlen);
    free(r->nums);
    free(r);
}

const char *lunnel_redis_error(const lunnel_redis *r)
{
    return r->err;
}
int lunnel_redis_connected(const lunnel_redis *r)
{
    return r->c != NULL && r->c->err == 0;
}

static void set_error(lunnel_redis *r, const char *prefix, const char *msg, size_t n)
{
    snprintf(r->err, sizeof r->err, "%s%.*s", prefix, (int)(n > 900 ? 900 : n), msg ? msg : "");
    for (char *p = r->err; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

static int conn_error(lunnel_redis *r)
{
    set_error(r, "", r->c ? r->c->errstr : "not connected",
              strlen(r->c ? r->c->errstr : "not connected"));
    disconnect(r);
    return -2;
}

/* Runs one command and checks its reply (not an error). 0, -1 (server error), -2 (lost). */
static int simple(lunnel_redis *r, int argc, const char **argv, const size_t *lens)
{
    redisReply *rep = redisCommandArgv(r->c, argc, argv, lens);
    if (!rep) return conn_error(r);
    int rc = 0;
    if (rep->type == REDIS_REPLY_ERROR) {
        set_error(r, "", rep->str, rep->len);
        rc = -1;
    }
    freeReplyObject(rep);
    return rc;
}

/* Connects to host:port (timeout for connect and every reply), then AUTH (password given,
 * user optional) and SELECT db. 0, or -1 with lunnel_redis_error (no password in it). */
int lunnel_redis_connect(lunnel_redis *r, const char *host, int port, int timeout_ms,
                         const char *user, const char *password, int db)
{
    disconnect(r);
    r->err[0] = 0;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    r->c = redisConnectWithTimeout(host, port, tv);
    if (!r->c) {
        set_error(r, "", "out of memory for a connection", 30);
        return -1;
    }
    if (r->c->err) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s:%d: %s", host, port, r->c->errstr);
        set_error(r, "", msg, strlen(msg));
        disconnect(r);
        return -1;
    }
    redisSetTimeout(r->c, tv);
    if (password && *password) {
        const char *argv[3] = {"AUTH", user && *user ? user : password, password};
        size_t lens[3] = {4, strlen(argv[1]), strlen(password)};
        if (simple(r, user && *user ? 3 : 2, argv, lens) != 0) {
            if (r->c) disconnect(r);
            return -1;
        }
    }
    if (db > 0) {
        char num[16];
        snprintf(num, sizeof num, "%d", db);
        const char *argv[2] = {"SELECT", num};
        size_t lens[2] = {6, strlen(num)};
        if (simple(r, 2, argv, lens) != 0) {
            if (r->c) disconnect(r);
            return -1;
        }
    }
    return 0;
}

/* Three parallel arrays (argv, argvlen, 32 bytes of number text per argument) share one
 * capacity, so they are grown together here rather than by lunnel_vec_reserve. */
static int reserve_args(lunnel_redis *r, size_t n)
{
    if (n <= r->argcap) return 0;
    size_t cap = r->argcap ? r->argcap : 16;
    while (cap < n)
        cap *= 2;
    const char **a = realloc(r->argv, cap * sizeof *a);
    if (!a) return -1;
    r->argv = a;
    size_t *l = realloc(r->argvlen, cap * sizeof *l);
    if (!l) return -1;
    r->argvlen = l;
    char *nums = realloc(r->nums, cap * 32);
    if (!nums) return -1;
    r->nums = nums;
    r->argcap = cap;
    return 0;
}

static void arg(lunnel_redis *r, const void *p, size_t n)
{
    r->argv[r->argc] = p;
    r->argvlen[r->argc] = n;
    r->argc++;
}

/* The text of a value as a command argument (numbers written into r->nums). */
static void value_arg(lunnel_redis *r, const lunnel_value *v)
{
    char *buf = r->nums + r->argc * 32;
    int n;
    switch (v->type) {
    case LUNNEL_VT_INTEGER:
        n = snprintf(buf, 32, "%" PRId64, v->u.i);
        break;
    case LUNNEL_VT_DOUBLE:
        n = snprintf(buf, 32, "%.17g", v->u.d);
        break;
    case LUNNEL_VT_BOOLEAN:
        n = snprintf(buf, 32, "%s", v->u.i ? "true" : "false");
        break;
    case LUNNEL_VT_STRING:
    case LUNNEL_VT_BINARY:
        arg(r, v->u.ptr, v->len);
        return;
    default:
        n = 0;
        break;
    }
    arg(r, buf, (size_t)n);
}

static int append(lunnel_redis *r)
{
    if (redisAppendCommandArgv(r->c, (int)r->argc, r->argv, r->argvlen) != REDIS_OK)
        return conn_error(r);
    r->queued++;
    return 0;
}

static int same_name(const lunnel_column *a, const lunnel_column *b)
{
    return a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0;
}

/* Whether cell i of rec is the one that decides its column: the last cell of that name in
 * wire order, except that a put older than an earlier put of the same name loses. */
static int decides(const lunnel_record *rec, uint32_t i)
{
    const lunnel_column *c = &rec->cols[i];
    for (uint32_t j = i + 1; j < rec->col_count; j++) {
        const lunnel_column *d = &rec->cols[j];
        if (!same_name(c, d)) continue;
        if (d->op == LUNNEL_OP_PUT && c->op == LUNNEL_OP_PUT && c->has_timestamp &&
            d->has_timestamp && d->timestamp < c->timestamp)
            continue;
        return 0;
    }
    for (uint32_t j = 0; j < i; j++) {
        const lunnel_column *d = &rec->cols[j];
        if (same_name(c, d) && d->op == LUNNEL_OP_PUT && c->op == LUNNEL_OP_PUT &&
            c->has_timestamp && d->has_timestamp && c->timestamp < d->timestamp)
            return 0;
    }
    return 1;
}

/* Starts the batch's transaction (MULTI). */
int lunnel_redis_begin(lunnel_redis *r)
{
    if (!lunnel_redis_connected(r)) {
        if (!r->err[0]) set_error(r, "", "not connected", 13);
        return -2;
    }
    r->err[0] = 0;
    r->queued = 0;
    if (reserve_args(r, 4) != 0) return -1;
    r->argc = 0;
    arg(r, "MULTI", 5);
    if (append(r) != 0) return -2;
    r->in_multi = 1;
    return 0;
}

/* Queues the commands of one record under key (prefix + r:key(), made by the Lua side). */
int lunnel_redis_add(lunnel_redis *r, const lunnel_record *rec, const char *key, size_t keylen)
{
    if (!r->in_multi) {
        set_error(r, "", "lunnel_redis_add outside a batch", 32);
        return -1;
    }
    if (reserve_args(r, 2 + 2 * (size_t)rec->col_count) != 0) {
        set_error(r, "", "out of memory", 13);
        return -1;
    }
    if (rec->action == LUNNEL_ACTION_DELETE || rec->action == LUNNEL_ACTION_PUT) {
        r->argc = 0;
        arg(r, "DEL", 3);
        arg(r, key, keylen);
        if (append(r) != 0) return -2;
        if (rec->action == LUNNEL_ACTION_DELETE) return 0;
    }
    /* HSET of the put cells */
    r->argc = 0;
    arg(r, "HSET", 4);
    arg(r, key, keylen);
    for (uint32_t i = 0; i < rec->col_count; i++) {
        const lunnel_column *c = &rec->cols[i];
        if (c->op != LUNNEL_OP_PUT || !decides(rec, i)) continue;
        arg(r, c->name, c->name_len);
        value_arg(r, &c->value);
    }
    if (r->argc > 2 && append(r) != 0) return -2;
    /* HDEL of the deleted ones */
    r->argc = 0;
    arg(r, "HDEL", 4);
    arg(r, key, keylen);
    for (uint32_t i = 0; i < rec->col_count; i++) {
        const lunnel_column *c = &rec->cols[i];
        if (c->op == LUNNEL_OP_PUT || !decides(rec, i)) continue;
        arg(r, c->name, c->name_len);
    }
    if (r->argc > 2 && append(r) != 0) return -2;
    return 0;
}

/* Sends EXEC and reads every reply of the pipeline. 0 when all were OK; -1 with the first
 * error reply (then nothing of the batch was applied if the error came before EXEC, else the
 * batch fails and is applied again when re-delivered); -2 when the connection is gone. */
int lunnel_redis_commit(lunnel_redis *r)
{
    if (!r->in_multi) return 0;
    r->in_multi = 0;
    r->argc = 0;
    arg(r, "EXEC", 4);
    if (append(r) != 0) return -2;
    uint32_t n = r->queued;
    int failed = 0;
    for (uint32_t i = 0; i < n; i++) {
        void *v = NULL;
        if (redisGetReply(r->c, &v) != REDIS_OK || !v) return conn_error(r);
        redisReply *rep = v;
        if (!failed && rep->type == REDIS_REPLY_ERROR) {
            set_error(r, "", rep->str, rep->len);
            failed = 1;
        }
        if (!failed && i == n - 1) {
            if (rep->type == REDIS_REPLY_NIL) {
                set_error(r, "", "EXEC: transaction discarded", 27);
                failed = 1;
            } else if (rep->type == REDIS_REPLY_ARRAY) {
                for (size_t j = 0; j < rep->elements && !failed; j++) {
                    redisReply *e = rep->element[j];
                    if (e->type == REDIS_REPLY_ERROR) {
                        char msg[700];
                        snprintf(msg, sizeof msg, "command %zu of the batch: %.*s", j + 1,
                                 (int)(e->len > 600 ? 600 : e->len), e->str);
                        set_error(r, "", msg, strlen(msg));
                        failed = 1;
                    }
                }
            }
        }
        freeReplyObject(rep);
    }
    return failed ? -1 : 0;
}

/* Drops a batch that failed before commit: the connection is closed (its pipeline may hold
 * queued commands); the next batch connects again. */
void lunnel_redis_abort(lunnel_redis *r)
{
    disconnect(r);
}
