/* data_api.c: the table data API of lunnel-emulator, table operations (CreateTable,
 * ListTable, DescribeTable, UpdateTable, DeleteTable) and the helpers the row operations share
 * (data_api_rows.c). Messages are unpacked with protobuf-c from proto/table_store.proto. */
#include "data_api/data_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data_api/data_api_internal.h"

int64_t data_api_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void data_api_store_error(lunnel_emu_response *resp, lunnel_emu_store_err e, const char *msg)
{
    lunnel_emu_respond_error(resp, lunnel_emu_store_status(e), lunnel_emu_store_strerror(e), "%s",
                             msg);
}

void *data_api_unpack(const ProtobufCMessageDescriptor *d, const lunnel_emu_request *req,
                      lunnel_emu_response *resp)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, req->body_len, req->body);
    if (!m)
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid", "%s does not parse as protobuf.",
                                 d->short_name);
    return m;
}

lunnel_emu_table *data_api_table(data_api *api, const char *name, lunnel_emu_response *resp)
{
    lunnel_emu_table *t = lunnel_emu_store_table(api->store, name);
    if (!t)
        lunnel_emu_respond_error(resp, 404, "OTSObjectNotExist",
                                 "Requested table does not exist: '%s'.", name);
    return t;
}

static int conv_value(const lunnel_value *in, lunnel_emu_value *out)
{
    memset(out, 0, sizeof *out);
    switch (in->type) {
    case LUNNEL_VT_INTEGER:
        out->type = LUNNEL_EMU_V_INTEGER;
        out->i = in->u.i;
        return 0;
    case LUNNEL_VT_DOUBLE:
        out->type = LUNNEL_EMU_V_DOUBLE;
        out->d = in->u.d;
        return 0;
    case LUNNEL_VT_BOOLEAN:
        out->type = LUNNEL_EMU_V_BOOLEAN;
        out->b = in->u.i != 0;
        return 0;
    case LUNNEL_VT_STRING:
    case LUNNEL_VT_BINARY:
        out->type = in->type == LUNNEL_VT_STRING ? LUNNEL_EMU_V_STRING : LUNNEL_EMU_V_BINARY;
        out->ptr = in->u.ptr;
        out->len = in->len;
        return 0;
    case LUNNEL_VT_INF_MIN:
        out->type = LUNNEL_EMU_V_INF_MIN;
        return 0;
    case LUNNEL_VT_INF_MAX:
        out->type = LUNNEL_EMU_V_INF_MAX;
        return 0;
    case LUNNEL_VT_NULL:
        out->type = LUNNEL_EMU_V_NULL;
        return 0;
    case LUNNEL_VT_AUTO_INCREMENT:
        out->type = LUNNEL_EMU_V_AUTO_INCREMENT;
        return 0;
    default:
        return -1;
    }
}

int data_api_decode_row(data_api *api, const uint8_t *bytes, size_t len, const char *what,
                        req_row *out, lunnel_emu_response *resp)
{
    memset(out, 0, sizeof *out);
    const lunnel_record *rows;
    uint32_t n;
    lunnel_codec_error err;
    int rc = lunnel_pb_decode_rows(api->arena, bytes, len, LUNNEL_PB_LENIENT, &rows, &n, &err);
    if (rc != LUNNEL_CODEC_OK) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid", "Invalid %s (PlainBuffer): %s",
                                 what, err.message);
        return -1;
    }
    if (n != 1) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "Invalid %s: expected exactly one row, got %u.", what, n);
        return -1;
    }
    const lunnel_record *r = &rows[0];
    if (r->pk_count > LUNNEL_EMU_MAX_PK) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "Invalid %s: %u primary key columns (at most %d).", what,
                                 r->pk_count, LUNNEL_EMU_MAX_PK);
        return -1;
    }
    if (r->col_count > DATA_API_MAX_CELLS) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "Invalid %s: %u columns (the emulator accepts at most %d).", what,
                                 r->col_count, DATA_API_MAX_CELLS);
        return -1;
    }
    for (uint32_t i = 0; i < r->pk_count; i++) {
        if (conv_value(&r->pk[i].value, &out->pk[i]) != 0) {
            lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                     "Invalid %s: primary key column %u has no usable value.", what,
                                     i);
            return -1;
        }
    }
    out->n_pk = r->pk_count;
    out->cells =
        r->col_count ? lunnel_arena_alloc(api->arena, r->col_count * sizeof *out->cells) : NULL;
    if (r->col_count && !out->cells) {
        lunnel_emu_respond_error(resp, 500, "OTSInternalServerError", "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < r->col_count; i++) {
        const lunnel_column *c = &r->cols[i];
        lunnel_emu_cell *o = &out->cells[i];
        memset(o, 0, sizeof *o);
        o->name = c->name;
        o->name_len = c->name_len;
        o->has_ts = c->has_timestamp != 0;
        o->ts = c->timestamp;
        switch (c->op) {
        case LUNNEL_OP_PUT:
            o->op = LUNNEL_EMU_OP_PUT;
            break;
        case LUNNEL_OP_DELETE_ONE_VERSION:
            o->op = LUNNEL_EMU_OP_DELETE_ONE_VERSION;
            break;
        case LUNNEL_OP_DELETE_ALL_VERSIONS:
            o->op = LUNNEL_EMU_OP_DELETE_ALL_VERSIONS;
            break;
        case LUNNEL_OP_INCREMENT:
            o->op = LUNNEL_EMU_OP_INCREMENT;
            break;
        default:
            lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                     "Invalid %s: column '%.*s' uses operation %s, which "
                                     "lunnel-emulator does not support.",
                                     what, (int)c->name_len, (const char *)c->name,
                                     lunnel_record_op_name(c->op));
            return -1;
        }
        if ((o->op == LUNNEL_EMU_OP_PUT || o->op == LUNNEL_EMU_OP_INCREMENT) &&
            conv_value(&c->value, &o->value) != 0) {
            lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                     "Invalid %s: column '%.*s' has no value.", what,
                                     (int)c->name_len, (const char *)c->name);
            return -1;
        }
    }
    out->n_cells = r->col_count;
    out->delete_marker = r->delete_marker != 0;
    return 0;
}

/* ---- table operations ---------------------------------------------------------------- */

/* Applies the fields a CreateTable/UpdateTable request gives of its TableOptions to `o`,
 * checked the way the service checks them. Answers 400 and returns -1 on a bad value. */
static int apply_table_options(lunnel_emu_table_options *o, const Lunnel__Table__TableOptions *to,
                               lunnel_emu_response *resp)
{
    if (!to) return 0;
    if (to->has_time_to_live && (to->time_to_live == 0 || to->time_to_live < -1)) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "TimeToLive cannot be 0 or less than -1.");
        return -1;
    }
    if (to->has_max_versions && to->max_versions <= 0) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "The maximum versions cannot be less than or equal to 0.");
        return -1;
    }
    if (to->has_deviation_cell_version_in_sec && to->deviation_cell_version_in_sec <= 0) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "The max time deviation must be greater than 0, got %lld.",
                                 (long long)to->deviation_cell_version_in_sec);
        return -1;
    }
    if (to->has_allow_update && !to->allow_update) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "allow_update false (a table that refuses UpdateRow) is not "
                                 "supported by lunnel-emulator.");
        return -1;
    }
    if (to->has_time_to_live) o->time_to_live = to->time_to_live;
    if (to->has_max_versions) o->max_versions = to->max_versions;
    if (to->has_deviation_cell_version_in_sec) o->deviation_s = to->deviation_cell_version_in_sec;
    return 0;
}

/* The stream specification replaces the table's: on or off, its expiration (168 hours when
 * not given) and the columns whose previous values changes carry. */
static void apply_stream_spec(lunnel_emu_table_options *o,
                              const Lunnel__Table__StreamSpecification *ss)
{
    o->stream_enabled = ss->enable_stream;
    o->stream_expiration_hours = ss->has_expiration_time ? ss->expiration_time : 168;
    o->origin_columns = (const char *const *)ss->columns_to_get;
    o->n_origin_columns = ss->n_columns_to_get;
}

/* What DescribeTable and UpdateTable report of a table's options and stream; `sid` holds the
 * stream id the details point to. */
typedef struct table_state {
    Lunnel__Table__CapacityUnit cu;
    Lunnel__Table__ReservedThroughputDetails rtd;
    Lunnel__Table__TableOptions to;
    Lunnel__Table__StreamDetails sd;
    char sid[300];
} table_state;

static void table_state_of(const lunnel_emu_table *t, table_state *s)
{
    const lunnel_emu_table_options *o = lunnel_emu_table_options_of(t);
    lunnel__table__capacity_unit__init(&s->cu);
    s->cu.has_read = s->cu.has_write = 1;
    lunnel__table__reserved_throughput_details__init(&s->rtd);
    s->rtd.capacity_unit = &s->cu;
    s->rtd.last_increase_time = lunnel_emu_table_created_ms(t) / 1000;
    lunnel__table__table_options__init(&s->to);
    s->to.has_max_versions = s->to.has_time_to_live = 1;
    s->to.max_versions = o->max_versions;
    s->to.time_to_live = o->time_to_live;
    s->to.has_deviation_cell_version_in_sec = 1;
    s->to.deviation_cell_version_in_sec = o->deviation_s;
    lunnel__table__stream_details__init(&s->sd);
    s->sd.enable_stream = o->stream_enabled;
    if (o->stream_enabled) {
        snprintf(s->sid, sizeof s->sid, "%s_%lld", lunnel_emu_table_name(t),
                 (long long)lunnel_emu_table_created_ms(t));
        s->sd.stream_id = s->sid;
        s->sd.has_expiration_time = 1;
        s->sd.expiration_time = o->stream_expiration_hours;
        s->sd.has_last_enable_time = 1;
        s->sd.last_enable_time = lunnel_emu_table_created_ms(t);
        s->sd.n_columns_to_get = o->n_origin_columns;
        s->sd.columns_to_get = (char **)o->origin_columns;
    }
}

static void create_table(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    data_api *api = ud;
    Lunnel__Table__CreateTableRequest *m =
        data_api_unpack(&lunnel__table__create_table_request__descriptor, req, resp);
    if (!m) return;
    lunnel_emu_pk_schema pk[LUNNEL_EMU_MAX_PK];
    lunnel_emu_table_options o = {.max_versions = 1, .time_to_live = -1};
    size_t n = m->table_meta->n_primary_key;
    if (n > LUNNEL_EMU_MAX_PK) n = LUNNEL_EMU_MAX_PK + 1; /* rejected by the store */
    memset(pk, 0, sizeof pk);
    for (size_t i = 0; i < n && i < LUNNEL_EMU_MAX_PK; i++) {
        const Lunnel__Table__PrimaryKeySchema *s = m->table_meta->primary_key[i];
        if (s->has_option && s->option == LUNNEL__TABLE__PRIMARY_KEY_OPTION__AUTO_INCREMENT) {
            if (o.auto_increment_pk) {
                lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                         "AUTO_INCREMENT primary key count must <= 1.");
                lunnel__table__create_table_request__free_unpacked(m, NULL);
                return;
            }
            o.auto_increment_pk = (uint8_t)(i + 1);
        }
        snprintf(pk[i].name, sizeof pk[i].name, "%s", s->name);
        pk[i].type = (lunnel_emu_pktype)s->type;
    }
    if (apply_table_options(&o, m->table_options, resp) != 0) {
        lunnel__table__create_table_request__free_unpacked(m, NULL);
        return;
    }
    if (m->stream_spec) apply_stream_spec(&o, m->stream_spec);
    char msg[512];
    lunnel_emu_store_err e = lunnel_emu_store_create_table(api->store, m->table_meta->table_name,
                                                           pk, n, &o, msg, sizeof msg);
    lunnel__table__create_table_request__free_unpacked(m, NULL);
    if (e) {
        data_api_store_error(resp, e, msg);
        return;
    }
    Lunnel__Table__CreateTableResponse r = LUNNEL__TABLE__CREATE_TABLE_RESPONSE__INIT;
    lunnel_emu_respond_pb(resp, &r.base);
}

static void list_table(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    data_api *api = ud;
    (void)req;
    size_t n = lunnel_emu_store_table_count(api->store);
    char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) {
        lunnel_emu_respond_error(resp, 500, "OTSInternalServerError", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        names[i] = (char *)lunnel_emu_table_name(lunnel_emu_store_table_at(api->store, i));
    Lunnel__Table__ListTableResponse r = LUNNEL__TABLE__LIST_TABLE_RESPONSE__INIT;
    r.n_table_names = n;
    r.table_names = names;
    lunnel_emu_respond_pb(resp, &r.base);
    free(names);
}

static void describe_table(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    data_api *api = ud;
    Lunnel__Table__DescribeTableRequest *m =
        data_api_unpack(&lunnel__table__describe_table_request__descriptor, req, resp);
    if (!m) return;
    lunnel_emu_table *t = data_api_table(api, m->table_name, resp);
    lunnel__table__describe_table_request__free_unpacked(m, NULL);
    if (!t) return;
    const lunnel_emu_pk_schema *pk;
    size_t n = lunnel_emu_table_pk(t, &pk);
    Lunnel__Table__PrimaryKeySchema ps[LUNNEL_EMU_MAX_PK];
    Lunnel__Table__PrimaryKeySchema *pps[LUNNEL_EMU_MAX_PK];
    for (size_t i = 0; i < n; i++) {
        lunnel__table__primary_key_schema__init(&ps[i]);
        ps[i].name = (char *)pk[i].name;
        ps[i].type = (Lunnel__Table__PrimaryKeyType)pk[i].type;
        pps[i] = &ps[i];
    }
    const lunnel_emu_table_options *o = lunnel_emu_table_options_of(t);
    if (o->auto_increment_pk && o->auto_increment_pk <= n) {
        ps[o->auto_increment_pk - 1].has_option = 1;
        ps[o->auto_increment_pk - 1].option = LUNNEL__TABLE__PRIMARY_KEY_OPTION__AUTO_INCREMENT;
    }
    Lunnel__Table__TableMeta meta = LUNNEL__TABLE__TABLE_META__INIT;
    meta.table_name = (char *)lunnel_emu_table_name(t);
    meta.n_primary_key = n;
    meta.primary_key = pps;
    table_state ts;
    table_state_of(t, &ts);
    Lunnel__Table__DescribeTableResponse r = LUNNEL__TABLE__DESCRIBE_TABLE_RESPONSE__INIT;
    r.table_meta = &meta;
    r.reserved_throughput_details = &ts.rtd;
    r.table_options = &ts.to;
    r.table_status = LUNNEL__TABLE__TABLE_STATUS__ACTIVE;
    r.stream_details = &ts.sd;
    lunnel_emu_respond_pb(resp, &r.base);
}

static void update_table(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    data_api *api = ud;
    Lunnel__Table__UpdateTableRequest *m =
        data_api_unpack(&lunnel__table__update_table_request__descriptor, req, resp);
    if (!m) return;
    lunnel_emu_table *t = data_api_table(api, m->table_name, resp);
    lunnel_emu_table_options o =
        t ? *lunnel_emu_table_options_of(t) : (lunnel_emu_table_options){0};
    if (!t || apply_table_options(&o, m->table_options, resp) != 0) {
        lunnel__table__update_table_request__free_unpacked(m, NULL);
        return;
    }
    if (m->stream_spec) {
        if (m->stream_spec->enable_stream && m->stream_spec->has_expiration_time &&
            (m->stream_spec->expiration_time < 1 || m->stream_spec->expiration_time > 168)) {
            lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                     "The stream expiration time must be in [1, 168] hours, got "
                                     "%d.",
                                     m->stream_spec->expiration_time);
            lunnel__table__update_table_request__free_unpacked(m, NULL);
            return;
        }
        apply_stream_spec(&o, m->stream_spec);
    }
    char msg[256];
    lunnel_emu_store_err e = lunnel_emu_store_update_table(api->store, t, &o, msg, sizeof msg);
    lunnel__table__update_table_request__free_unpacked(m, NULL);
    if (e) {
        data_api_store_error(resp, e, msg);
        return;
    }
    table_state ts;
    table_state_of(t, &ts);
    Lunnel__Table__UpdateTableResponse r = LUNNEL__TABLE__UPDATE_TABLE_RESPONSE__INIT;
    r.reserved_throughput_details = &ts.rtd;
    r.table_options = &ts.to;
    r.stream_details = &ts.sd;
    lunnel_emu_respond_pb(resp, &r.base);
}

static void delete_table(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    data_api *api = ud;
    Lunnel__Table__DeleteTableRequest *m =
        data_api_unpack(&lunnel__table__delete_table_request__descriptor, req, resp);
    if (!m) return;
    lunnel_emu_store_err e = lunnel_emu_store_delete_table(api->store, m->table_name);
    if (e) {
        lunnel_emu_respond_error(resp, 404, "OTSObjectNotExist",
                                 "Requested table does not exist: '%s'.", m->table_name);
    } else {
        Lunnel__Table__DeleteTableResponse r = LUNNEL__TABLE__DELETE_TABLE_RESPONSE__INIT;
        lunnel_emu_respond_pb(resp, &r.base);
    }
    lunnel__table__delete_table_request__free_unpacked(m, NULL);
}

static void data_api_free(void *ud)
{
    data_api *api = ud;
    lunnel_arena_free(api->arena);
    lunnel_pb_writer_free(&api->w);
    free(api);
}

int lunnel_emu_data_api_register(lunnel_emu_server *srv, lunnel_emu_store *store)
{
    data_api *api = calloc(1, sizeof *api);
    if (!api) return -1;
    api->srv = srv;
    api->store = store;
    api->arena = lunnel_arena_new();
    lunnel_pb_writer_init(&api->w);
    if (!api->arena || lunnel_emu_server_on_free(srv, data_api_free, api) != 0) {
        lunnel_arena_free(api->arena);
        free(api);
        return -1;
    }
    int rc = 0;
    rc |= lunnel_emu_route_add(srv, "/CreateTable", create_table, api);
    rc |= lunnel_emu_route_add(srv, "/ListTable", list_table, api);
    rc |= lunnel_emu_route_add(srv, "/DescribeTable", describe_table, api);
    rc |= lunnel_emu_route_add(srv, "/UpdateTable", update_table, api);
    rc |= lunnel_emu_route_add(srv, "/DeleteTable", delete_table, api);
    data_api_register_rows(api);
    return rc ? -1 : 0;
}
