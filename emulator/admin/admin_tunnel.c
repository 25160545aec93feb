/* admin_tunnel.c: the tunnel module's admin actions (POST /_emulator/<action>, JSON in and
 * out), the test controls of DESIGN.md's emulator section. Shapes (all fields optional
 * unless marked):
 *   faults        {"path":"/tunnel/readrecords"|"/PutRow"|"*", "error_rate":0..1,
 *                  "drop_rate":0..1, "delay_ms":N, "count":N (-1 = until cleared),
 *                  "code":"OTSPermissionDenied" (injected error's code; default 503
 *                  OTSTunnelServerUnavailable / data API OTSServerUnavailable),
 *                  "status":N (its HTTP status; default from the code, 500 if unknown),
 *                  "clear":bool}
 *                  -> {"faults":[{path,error_rate,drop_rate,delay_ms,remaining,code,status}]}
 *                  A "code" without "error_rate" means error_rate 1 (every request).
 *   split         {"table"*, "partition":"p1" | index}  -> {"table","parent","children":[..]}
 *   expire_client {"client_id"} | {"tunnel_id"} (every client of it) -> {"expired":N}
 *   expire_tunnel {"tunnel_id"} | {"table","tunnel_name"}, {"expired":false} revives
 *                 -> {"tunnel_id","expired":bool}
 *   rebalance     {"tunnel_id"} (default: all), {"move_all":bool} -> {"changed":N}
 *   retention     {"retention_ms":N} -> {"retention_ms","trimmed":N}
 *   tunnel_config {"heartbeat_scale":x,"default_timeout_ms":N,"batch_records":N,
 *                  "batch_bytes":N} -> the current values
 *   tunnel_stats  {"reset":bool} -> {"paths":{"/tunnel/x":{requests,errors,records,bytes}},
 *                  "records_served","bytes_served","tunnels","clients"}
 *   tunnels       {} -> full state dump: tunnels (channels, owners, versions) and partitions */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tunnel/tunnel_internal.h"

const char *const lunnel_emu_tunnels_admin_actions[] = {
    "faults",    "split",         "expire_client", "expire_tunnel", "rebalance",
    "retention", "tunnel_config", "tunnel_stats",  "tunnels",       NULL};

static const char *jstr(const cJSON *b, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jnum(const cJSON *b, const char *k, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, k);
    if (!cJSON_IsNumber(v)) return 0;
    *out = v->valuedouble;
    return 1;
}

static int jbool(const cJSON *b, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, k));
}

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        *status = code;                                                                            \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return NULL;                                                                               \
    } while (0)

static cJSON *a_faults(lunnel_emu_tunnels *t, const cJSON *b, int *status, char *err, size_t errlen)
{
    if (jbool(b, "clear")) t->nfaults = 0;
    const char *path = jstr(b, "path");
    if (path) {
        if (strlen(path) >= sizeof t->faults[0].path) FAIL(400, "path too long");
        const char *code = jstr(b, "code");
        double er = code ? 1 : 0, dr = 0, delay = 0, count = -1, st = 0;
        jnum(b, "error_rate", &er);
        jnum(b, "drop_rate", &dr);
        jnum(b, "delay_ms", &delay);
        jnum(b, "count", &count);
        jnum(b, "status", &st);
        if (er < 0 || er > 1 || dr < 0 || dr > 1 || delay < 0)
            FAIL(400, "error_rate/drop_rate must be in [0,1] and delay_ms >= 0");
        if (code && (!code[0] || strlen(code) >= sizeof t->faults[0].code))
            FAIL(400, "code must be 1..%zu characters", sizeof t->faults[0].code - 1);
        /* 200 injects a success status whose body is not the call's message (another web
         * server's page): the client must treat it like any unparseable reply */
        if (st != 0 && st != 200 && (st < 400 || st > 599 || st != (int)st))
            FAIL(400,
                 "status must be 200 (an unparseable success) or an HTTP error status (400..599)");
        emu_fault *f = realloc(t->faults, (size_t)(t->nfaults + 1) * sizeof *f);
        if (!f) FAIL(500, "out of memory");
        t->faults = f;
        f = &t->faults[t->nfaults++];
        memset(f, 0, sizeof *f);
        strcpy(f->path, path);
        f->error_rate = er;
        f->drop_rate = dr;
        f->delay_ms = (int64_t)delay;
        f->remaining = (int64_t)count;
        if (code) strcpy(f->code, code);
        f->status = (int)st;
    }
    cJSON *r = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(r, "faults");
    for (int i = 0; i < t->nfaults; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "path", t->faults[i].path);
        cJSON_AddNumberToObject(o, "error_rate", t->faults[i].error_rate);
        cJSON_AddNumberToObject(o, "drop_rate", t->faults[i].drop_rate);
        cJSON_AddNumberToObject(o, "delay_ms", (double)t->faults[i].delay_ms);
        cJSON_AddNumberToObject(o, "remaining", (double)t->faults[i].remaining);
        const emu_fault *f = &t->faults[i];
        cJSON_AddStringToObject(o, "code", f->code[0] ? f->code : "default");
        cJSON_AddNumberToObject(o, "status",
                                f->status    ? f->status
                                : f->code[0] ? emu_code_status(f->code)
                                             : 503);
        cJSON_AddItemToArray(arr, o);
    }
    return r;
}

static cJSON *a_split(lunnel_emu_tunnels *t, const cJSON *b, int *status, char *err, size_t errlen)
{
    const char *table = jstr(b, "table");
    if (!table) FAIL(400, "split needs \"table\"");
    emu_table *tb = emu_table_get(t, table, 0);
    if (!tb) {
        if (t->src && t->src->table_exists && !t->src->table_exists(t->src->ctx, table))
            FAIL(404, "table %s does not exist", table);
        tb = emu_table_get(t, table, 1);
        if (!tb) FAIL(500, "out of memory");
    }
    int idx = -1;
    double d;
    const char *p = jstr(b, "partition");
    if (p) {
        for (int i = 0; i < tb->nshards; i++)
            if (strcmp(tb->shards[i]->id, p) == 0) idx = i;
    } else if (jnum(b, "partition", &d)) {
        idx = (int)d;
    } else {
        idx = 0;
        while (idx < tb->nshards && tb->shards[idx]->closed)
            idx++;
    }
    if (idx < 0 || idx >= tb->nshards) FAIL(404, "partition not found in table %s", table);
    if (tb->shards[idx]->closed) FAIL(400, "partition %s is already split", tb->shards[idx]->id);
    int first = emu_table_split(t, tb, idx);
    if (first < 0) FAIL(400, "partition %s cannot be split", tb->shards[idx]->id);
    for (int i = 0; i < t->ntunnels; i++)
        if (t->tunnels[i]->table == tb) emu_tunnel_schedule(t, t->tunnels[i]);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "table", table);
    cJSON_AddStringToObject(r, "parent", tb->shards[idx]->id);
    cJSON *c = cJSON_AddArrayToObject(r, "children");
    cJSON_AddItemToArray(c, cJSON_CreateString(tb->shards[first]->id));
    cJSON_AddItemToArray(c, cJSON_CreateString(tb->shards[first + 1]->id));
    return r;
}

static cJSON *a_expire_client(lunnel_emu_tunnels *t, const cJSON *b, int *status, char *err,
                              size_t errlen)
{
    const char *cid = jstr(b, "client_id"), *tid = jstr(b, "tunnel_id");
    int n = 0;
    if (cid) {
        emu_client *c = emu_client_find(t, cid);
        if (!c) FAIL(404, "client %s not found", cid);
        emu_client_drop(t, c);
        n = 1;
    } else if (tid) {
        emu_tunnel *tu = emu_tunnel_find(t, tid);
        if (!tu) FAIL(404, "tunnel %s not found", tid);
        for (int i = t->nclients - 1; i >= 0; i--) {
            if (i < t->nclients && t->clients[i]->tunnel == tu) {
                emu_client_drop(t, t->clients[i]);
                n++;
            }
        }
    } else {
        FAIL(400, "expire_client needs \"client_id\" or \"tunnel_id\"");
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "expired", n);
    return r;
}

static emu_tunnel *tunnel_arg(lunnel_emu_tunnels *t, const cJSON *b)
{
    const char *tid = jstr(b, "tunnel_id");
    if (tid) return emu_tunnel_find(t, tid);
    return emu_tunnel_find_name(t, jstr(b, "table"), jstr(b, "tunnel_name"));
}

static cJSON *a_expire_tunnel(lunnel_emu_tunnels *t, const cJSON *b, int *status, char *err,
                              size_t errlen)
{
    emu_tunnel *tu = tunnel_arg(t, b);
    if (!tu) FAIL(404, "tunnel not found (give \"tunnel_id\" or \"table\"+\"tunnel_name\")");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(b, "expired");
    tu->expired = cJSON_IsFalse(e) ? 0 : 1; /* {"expired": false} revives it (tests) */
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "tunnel_id", tu->id);
    cJSON_AddBoolToObject(r, "expired", tu->expired);
    return r;
}

static cJSON *a_rebalance(lunnel_emu_tunnels *t, const cJSON *b, int *status, char *err,
                          size_t errlen)
{
    int n = 0;
    emu_tunnel *only = NULL;
    if (jstr(b, "tunnel_id") && !(only = emu_tunnel_find(t, jstr(b, "tunnel_id"))))
        FAIL(404, "tunnel %s not found", jstr(b, "tunnel_id"));
    for (int i = 0; i < t->ntunnels; i++) {
        emu_tunnel *tu = t->tunnels[i];
        if (only && tu != only) continue;
        if (jbool(b, "move_all")) {
            for (int c = 0; c < tu->nch; c++) {
                if (tu->ch[c]->status == CH_OPEN) {
                    tu->ch[c]->status = CH_CLOSING;
                    tu->ch[c]->version++;
                    n++;
                }
            }
        }
        n += emu_tunnel_schedule(t, tu);
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "changed", n);
    return r;
}

static cJSON *a_retention(lunnel_emu_tunnels *t, const cJSON *b, int *status, char *err,
                          size_t errlen)
{
    double ms;
    if (jnum(b, "retention_ms", &ms)) {
        if (ms < 0) FAIL(400, "retention_ms must be >= 0");
        t->o.retention_ms = (int64_t)ms;
    }
    uint64_t before = 0, after = 0;
    for (int i = 0; i < t->ntables; i++)
        for (int s = 0; s < t->tables[i]->nshards; s++)
            before += emu_reclog_first(&t->tables[i]->shards[s]->log);
    lunnel_emu_tunnels_tick(t);
    for (int i = 0; i < t->ntables; i++)
        for (int s = 0; s < t->tables[i]->nshards; s++)
            after += emu_reclog_first(&t->tables[i]->shards[s]->log);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "retention_ms", (double)t->o.retention_ms);
    cJSON_AddNumberToObject(r, "trimmed", (double)(after - before));
    return r;
}

static cJSON *a_config(lunnel_emu_tunnels *t, const cJSON *b, int *status, char *err, size_t errlen)
{
    double v;
    if (jnum(b, "heartbeat_scale", &v)) {
        if (v <= 0) FAIL(400, "heartbeat_scale must be > 0");
        t->o.heartbeat_scale = v;
    }
    if (jnum(b, "default_timeout_ms", &v)) t->o.default_timeout_ms = v < 1 ? 1 : (int64_t)v;
    if (jnum(b, "batch_records", &v)) t->o.batch_records = v < 1 ? 1 : (int)v;
    if (jnum(b, "batch_bytes", &v)) t->o.batch_bytes = v < 1 ? 1 : (size_t)v;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "heartbeat_scale", t->o.heartbeat_scale);
    cJSON_AddNumberToObject(r, "default_timeout_ms", (double)t->o.default_timeout_ms);
    cJSON_AddNumberToObject(r, "batch_records", t->o.batch_records);
    cJSON_AddNumberToObject(r, "batch_bytes", (double)t->o.batch_bytes);
    cJSON_AddNumberToObject(r, "partitions", t->o.partitions);
    cJSON_AddNumberToObject(r, "retention_ms", (double)t->o.retention_ms);
    return r;
}

static cJSON *a_stats(lunnel_emu_tunnels *t, const cJSON *b)
{
    cJSON *r = cJSON_CreateObject(), *paths = cJSON_AddObjectToObject(r, "paths");
    for (int i = 0; i < t->nstats; i++) {
        emu_path_stat *s = &t->stats[i];
        cJSON *o = cJSON_AddObjectToObject(paths, s->path);
        cJSON_AddNumberToObject(o, "requests", (double)s->requests);
        cJSON_AddNumberToObject(o, "errors", (double)s->errors);
        cJSON_AddNumberToObject(o, "records", (double)s->records);
        cJSON_AddNumberToObject(o, "bytes", (double)s->bytes);
    }
    cJSON_AddNumberToObject(r, "records_served", (double)t->records_served);
    cJSON_AddNumberToObject(r, "bytes_served", (double)t->bytes_served);
    cJSON_AddNumberToObject(r, "tunnels", t->ntunnels);
    cJSON_AddNumberToObject(r, "clients", t->nclients);
    if (jbool(b, "reset")) {
        t->nstats = 0;
        t->records_served = t->bytes_served = 0;
    }
    return r;
}

static cJSON *a_dump(lunnel_emu_tunnels *t)
{
    cJSON *r = cJSON_CreateObject(), *tus = cJSON_AddArrayToObject(r, "tunnels");
    for (int i = 0; i < t->ntunnels; i++) {
        emu_tunnel *tu = t->tunnels[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "tunnel_id", tu->id);
        cJSON_AddStringToObject(o, "tunnel_name", tu->name);
        cJSON_AddStringToObject(o, "table", tu->table->name);
        cJSON_AddStringToObject(o, "stage", emu_stage_name(tu->stage));
        cJSON_AddBoolToObject(o, "expired", tu->expired);
        cJSON *cls = cJSON_AddArrayToObject(o, "clients");
        for (int c = 0; c < t->nclients; c++) {
            if (t->clients[c]->tunnel != tu) continue;
            cJSON *co = cJSON_CreateObject();
            cJSON_AddStringToObject(co, "client_id", t->clients[c]->id);
            cJSON_AddNumberToObject(co, "timeout_ms",
                                    (double)(t->clients[c]->timeout_ns / 1000000));
            cJSON_AddItemToArray(cls, co);
        }
        cJSON *chs = cJSON_AddArrayToObject(o, "channels");
        for (int c = 0; c < tu->nch; c++) {
            emu_channel *ch = tu->ch[c];
            cJSON *co = cJSON_CreateObject();
            cJSON_AddStringToObject(co, "channel_id", ch->id);
            cJSON_AddStringToObject(co, "type", ch->is_base ? "BaseData" : "Stream");
            cJSON_AddStringToObject(co, "status", emu_status_name(ch->status));
            cJSON_AddNumberToObject(co, "version", (double)ch->version);
            cJSON_AddStringToObject(co, "client_id", ch->owner ? ch->owner->id : "");
            cJSON_AddStringToObject(co, "parent", ch->parent >= 0 ? tu->ch[ch->parent]->id : "");
            cJSON_AddNumberToObject(co, "sequence_number", (double)ch->seq);
            cJSON_AddNumberToObject(co, "count", (double)ch->count);
            cJSON_AddItemToArray(chs, co);
        }
        cJSON_AddItemToArray(tus, o);
    }
    cJSON *tbs = cJSON_AddArrayToObject(r, "tables");
    for (int i = 0; i < t->ntables; i++) {
        emu_table *tb = t->tables[i];
        cJSON *o = cJSON_CreateObject(), *ps;
        cJSON_AddStringToObject(o, "table", tb->name);
        ps = cJSON_AddArrayToObject(o, "partitions");
        for (int s = 0; s < tb->nshards; s++) {
            emu_shard *sh = tb->shards[s];
            cJSON *so = cJSON_CreateObject();
            cJSON_AddStringToObject(so, "id", sh->id);
            cJSON_AddNumberToObject(so, "hash_lo", (double)sh->lo);
            cJSON_AddNumberToObject(so, "hash_hi", (double)sh->hi);
            cJSON_AddStringToObject(so, "parent",
                                    sh->parent >= 0 ? tb->shards[sh->parent]->id : "");
            cJSON_AddBoolToObject(so, "closed", sh->closed);
            cJSON_AddNumberToObject(so, "first", (double)emu_reclog_first(&sh->log));
            cJSON_AddNumberToObject(so, "end", (double)emu_reclog_end(&sh->log));
            cJSON_AddItemToArray(ps, so);
        }
        cJSON_AddItemToArray(tbs, o);
    }
    return r;
}

struct cJSON *lunnel_emu_tunnels_admin(lunnel_emu_tunnels *t, const char *action,
                                       const struct cJSON *body, int *status, char *err,
                                       size_t errlen)
{
    *status = 0;
    err[0] = 0;
    static const cJSON empty_obj = {.type = cJSON_Object};
    const cJSON *b = cJSON_IsObject(body) ? body : &empty_obj;
    cJSON *r = NULL;
    if (!strcmp(action, "faults"))
        r = a_faults(t, b, status, err, errlen);
    else if (!strcmp(action, "split"))
        r = a_split(t, b, status, err, errlen);
    else if (!strcmp(action, "expire_client"))
        r = a_expire_client(t, b, status, err, errlen);
    else if (!strcmp(action, "expire_tunnel"))
        r = a_expire_tunnel(t, b, status, err, errlen);
    else if (!strcmp(action, "rebalance"))
        r = a_rebalance(t, b, status, err, errlen);
    else if (!strcmp(action, "retention"))
        r = a_retention(t, b, status, err, errlen);
    else if (!strcmp(action, "tunnel_config"))
        r = a_config(t, b, status, err, errlen);
    else if (!strcmp(action, "tunnel_stats"))
        r = a_stats(t, b);
    else if (!strcmp(action, "tunnels"))
        r = a_dump(t);
    else
        return NULL;
    if (r) *status = 200;
    return r;
}
