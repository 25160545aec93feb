/* admin.c: lunnel-emulator's admin actions stats, changes and load (see admin.h). */
#include "admin/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "lunnel/plainbuffer.h"

typedef struct admin {
    lunnel_emu_server *srv;
    lunnel_emu_store *store;
    lunnel_arena *arena;
} admin;

static double num(const cJSON *body, const char *name, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static const char *str(const cJSON *body, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void stats(void *ud, const cJSON *body, const lunnel_emu_request *req,
                  lunnel_emu_response *resp)
{
    (void)body;
    (void)req;
    admin *a = ud;
    cJSON *out = cJSON_CreateObject();
    cJSON *reqs = cJSON_AddObjectToObject(out, "requests");
    const lunnel_emu_path_stat *ps;
    size_t n = lunnel_emu_server_path_stats(a->srv, &ps);
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_AddObjectToObject(reqs, ps[i].path);
        cJSON_AddNumberToObject(o, "requests", (double)ps[i].requests);
        cJSON_AddNumberToObject(o, "errors", (double)ps[i].errors);
    }
    cJSON *tables = cJSON_AddArrayToObject(out, "tables");
    for (size_t i = 0; i < lunnel_emu_store_table_count(a->store); i++) {
        const lunnel_emu_table *t = lunnel_emu_store_table_at(a->store, i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", lunnel_emu_table_name(t));
        cJSON_AddNumberToObject(o, "rows", (double)lunnel_emu_table_row_count(t));
        cJSON_AddNumberToObject(o, "changes_begin", (double)lunnel_emu_table_changes_begin(t));
        cJSON_AddNumberToObject(o, "changes_end", (double)lunnel_emu_table_changes_end(t));
        cJSON_AddItemToArray(tables, o);
    }
    lunnel_emu_server_fill_stats(a->srv, out);
    lunnel_emu_respond_json(resp, out);
}

static const char *action_name(lunnel_emu_action a)
{
    return a == LUNNEL_EMU_ACTION_PUT ? "PUT" : a == LUNNEL_EMU_ACTION_UPDATE ? "UPDATE" : "DELETE";
}

static void changes(void *ud, const cJSON *body, const lunnel_emu_request *req,
                    lunnel_emu_response *resp)
{
    (void)req;
    admin *a = ud;
    const char *name = str(body, "table");
    if (!name) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "changes: \"table\" is required");
        return;
    }
    const lunnel_emu_table *t = lunnel_emu_store_table(a->store, name);
    if (!t) {
        lunnel_emu_respond_error(resp, 404, "OTSObjectNotExist", "changes: no table '%s'", name);
        return;
    }
    double from = num(body, "from", 0), limit = num(body, "limit", 1000);
    if (from < 0 || limit < 0 || limit > 100000) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "changes: from >= 0 and 0 <= limit <= 100000");
        return;
    }
    uint64_t begin = lunnel_emu_table_changes_begin(t), end = lunnel_emu_table_changes_end(t);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "table", name);
    cJSON_AddNumberToObject(out, "begin", (double)begin);
    cJSON_AddNumberToObject(out, "end", (double)end);
    cJSON *arr = cJSON_AddArrayToObject(out, "changes");
    uint64_t i = (uint64_t)from < begin ? begin : (uint64_t)from;
    char *json = NULL;
    size_t json_cap = 0;
    for (uint64_t k = 0; i < end && k < (uint64_t)limit; i++, k++) {
        const lunnel_emu_change *c = lunnel_emu_table_change_at(t, i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", (double)c->index);
        cJSON_AddStringToObject(o, "action", action_name(c->action));
        cJSON_AddNumberToObject(o, "epoch", c->epoch);
        cJSON_AddNumberToObject(o, "timestamp_us", (double)c->timestamp_us);
        cJSON_AddNumberToObject(o, "row_index", c->row_index);
        cJSON_AddNumberToObject(o, "partition", c->partition);
        /* decode our own bytes strictly: also proves they are what a client accepts */
        lunnel_arena_reset(a->arena);
        const lunnel_record *rows;
        uint32_t n;
        lunnel_codec_error err;
        if (lunnel_pb_decode_rows(a->arena, c->row, c->row_len, LUNNEL_PB_STRICT, &rows, &n,
                                  &err) == LUNNEL_CODEC_OK &&
            n == 1) {
            size_t need = lunnel_record_tojson(&rows[0], json, json_cap);
            if (need >= json_cap) {
                free(json);
                json_cap = need + 1;
                json = malloc(json_cap);
                if (json) lunnel_record_tojson(&rows[0], json, json_cap);
            }
            if (json) cJSON_AddRawToObject(o, "record", json);
        } else {
            cJSON_AddStringToObject(o, "decode_error", err.message);
        }
        char *b64 = malloc(4 * ((c->row_len + 2) / 3) + 1);
        if (b64) {
            EVP_EncodeBlock((unsigned char *)b64, c->row, (int)c->row_len);
            cJSON_AddStringToObject(o, "row_b64", b64);
            free(b64);
        }
        cJSON_AddItemToArray(arr, o);
    }
    free(json);
    lunnel_emu_respond_json(resp, out);
}

static void load(void *ud, const cJSON *body, const lunnel_emu_request *req,
                 lunnel_emu_response *resp)
{
    (void)req;
    admin *a = ud;
    const char *name = str(body, "table");
    double rows = num(body, "rows", -1), cols = num(body, "columns", 1),
           vbytes = num(body, "value_bytes", 200), start = num(body, "start", 0);
    const char *pk_type = str(body, "pk_type");
    bool string_pk = pk_type && strcmp(pk_type, "STRING") == 0;
    if (!name || rows < 0 || rows > 1e8 || cols < 0 || cols > 1000 || vbytes < 0 ||
        vbytes > (1 << 20) || (pk_type && !string_pk && strcmp(pk_type, "INTEGER") != 0)) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "load: needs \"table\" and \"rows\" (0..1e8); \"columns\" "
                                 "0..1000, \"value_bytes\" 0..1048576, \"pk_type\" INTEGER|STRING");
        return;
    }
    lunnel_emu_table *t = lunnel_emu_store_table(a->store, name);
    if (!t) {
        const cJSON *create = cJSON_GetObjectItemCaseSensitive(body, "create");
        if (create && cJSON_IsFalse(create)) {
            lunnel_emu_respond_error(resp, 404, "OTSObjectNotExist", "load: no table '%s'", name);
            return;
        }
        lunnel_emu_pk_schema pk = {
            .name = "id", .type = string_pk ? LUNNEL_EMU_PK_STRING : LUNNEL_EMU_PK_INTEGER};
        lunnel_emu_table_options o = {.max_versions = 1,
                                      .time_to_live = -1,
                                      .stream_enabled = true,
                                      .stream_expiration_hours = 168};
        char msg[256];
        lunnel_emu_store_err e =
            lunnel_emu_store_create_table(a->store, name, &pk, 1, &o, msg, sizeof msg);
        if (e) {
            lunnel_emu_respond_error(resp, lunnel_emu_store_status(e), lunnel_emu_store_strerror(e),
                                     "load: %s", msg);
            return;
        }
        t = lunnel_emu_store_table(a->store, name);
    }
    size_t nc = (size_t)cols, vb = (size_t)vbytes;
    uint8_t *value = malloc(vb + 1);
    lunnel_emu_cell *cells = calloc(nc + 1, sizeof *cells);
    char(*names)[24] = calloc(nc + 1, sizeof *names);
    if (!value || !cells || !names) {
        free(value);
        free(cells);
        free(names);
        lunnel_emu_respond_error(resp, 500, "OTSInternalServerError", "load: out of memory");
        return;
    }
    for (size_t i = 0; i < vb; i++)
        value[i] = (uint8_t)('a' + i % 26);
    for (size_t c = 0; c < nc; c++) {
        snprintf(names[c], sizeof names[c], "c%zu", c);
        cells[c].name = (const uint8_t *)names[c];
        cells[c].name_len = (uint32_t)strlen(names[c]);
        cells[c].op = LUNNEL_EMU_OP_PUT;
        cells[c].value.type = LUNNEL_EMU_V_STRING;
        cells[c].value.ptr = value;
        cells[c].value.len = (uint32_t)vb;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    uint64_t done = 0;
    char msg[512] = "";
    lunnel_emu_store_err e = LUNNEL_EMU_STORE_OK;
    for (uint64_t i = 0; i < (uint64_t)rows; i++) {
        char key[32];
        lunnel_emu_value pk = {0};
        int64_t id = (int64_t)start + (int64_t)i;
        if (string_pk) {
            snprintf(key, sizeof key, "%012lld", (long long)id);
            pk.type = LUNNEL_EMU_V_STRING;
            pk.ptr = (const uint8_t *)key;
            pk.len = (uint32_t)strlen(key);
        } else {
            pk.type = LUNNEL_EMU_V_INTEGER;
            pk.i = id;
        }
        e = lunnel_emu_store_write(a->store, t, LUNNEL_EMU_ACTION_PUT, LUNNEL_EMU_COND_IGNORE, &pk,
                                   1, cells, nc, now_ms, msg, sizeof msg);
        if (e) break;
        done++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(value);
    free(cells);
    free(names);
    if (e) {
        lunnel_emu_respond_error(resp, lunnel_emu_store_status(e), lunnel_emu_store_strerror(e),
                                 "load: row %llu: %s", (unsigned long long)done, msg);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "rows", (double)done);
    cJSON_AddNumberToObject(out, "changes_end", (double)lunnel_emu_table_changes_end(t));
    cJSON_AddNumberToObject(
        out, "ms", (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    lunnel_emu_respond_json(resp, out);
}

static void admin_free(void *ud)
{
    admin *a = ud;
    lunnel_arena_free(a->arena);
    free(a);
}

int lunnel_emu_admin_register(lunnel_emu_server *srv, lunnel_emu_store *store)
{
    admin *a = calloc(1, sizeof *a);
    if (!a) return -1;
    a->srv = srv;
    a->store = store;
    a->arena = lunnel_arena_new();
    if (!a->arena || lunnel_emu_server_on_free(srv, admin_free, a) != 0) {
        lunnel_arena_free(a->arena);
        free(a);
        return -1;
    }
    int rc = 0;
    rc |= lunnel_emu_admin_add(srv, "stats", stats, a);
    rc |= lunnel_emu_admin_add(srv, "changes", changes, a);
    rc |= lunnel_emu_admin_add(srv, "load", load, a);
    return rc ? -1 : 0;
}
