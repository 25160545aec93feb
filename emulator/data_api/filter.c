/* filter.c: column filters and conditions of lunnel-emulator (see filter.h): protobuf-c
 * unpacks each level, a small reader takes the serialized value apart, and evaluation walks
 * the tree over a row's cells (sorted by name, newest version first). */
#include "data_api/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <proto/table_store_filter.pb-c.h>

typedef enum node_kind { N_SINGLE = 1, N_COMPOSITE = 2, N_PAGINATION = 3 } node_kind;

struct emu_filter {
    node_kind kind;
    /* single */
    int comparator; /* CT_* */
    char *column;
    size_t column_len;
    lunnel_emu_value value; /* bytes in `value_bytes` */
    uint8_t *value_bytes;
    int filter_if_missing, latest_only;
    /* composite */
    int combinator; /* LO_* */
    emu_filter **subs;
    size_t n_subs;
    /* pagination */
    int32_t offset, limit;
};

void emu_filter_free(emu_filter *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n_subs; i++)
        emu_filter_free(f->subs[i]);
    free(f->subs);
    free(f->column);
    free(f->value_bytes);
    free(f);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The SDKs' single-value serialization: type byte, then the value. */
static int parse_value(const uint8_t *p, size_t n, lunnel_emu_value *v, uint8_t **owned)
{
    memset(v, 0, sizeof *v);
    if (n < 1) return -1;
    uint8_t t = p[0];
    p++;
    n--;
    switch (t) {
    case LUNNEL_EMU_V_INTEGER:
    case LUNNEL_EMU_V_DOUBLE: {
        if (n != 8) return -1;
        uint64_t u = le64(p);
        v->type = (lunnel_emu_vtype)t;
        if (t == LUNNEL_EMU_V_INTEGER)
            v->i = (int64_t)u;
        else
            memcpy(&v->d, &u, sizeof v->d);
        return 0;
    }
    case LUNNEL_EMU_V_BOOLEAN:
        if (n != 1) return -1;
        v->type = LUNNEL_EMU_V_BOOLEAN;
        v->b = p[0] != 0;
        return 0;
    case LUNNEL_EMU_V_STRING:
    case LUNNEL_EMU_V_BINARY: {
        if (n < 4) return -1;
        uint32_t len =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        if (len != n - 4) return -1;
        *owned = malloc(len ? len : 1);
        if (!*owned) return -1;
        if (len) memcpy(*owned, p + 4, len);
        v->type = (lunnel_emu_vtype)t;
        v->ptr = *owned;
        v->len = len;
        return 0;
    }
    default:
        return -1;
    }
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        goto fail;                                                                                 \
    } while (0)

static emu_filter *parse_node(const uint8_t *bytes, size_t len, int depth, int *budget, char *err,
                              size_t errlen)
{
    Lunnel__Table__Filter__Filter *m = NULL;
    Lunnel__Table__Filter__SingleColumnValueFilter *sm = NULL;
    Lunnel__Table__Filter__CompositeColumnValueFilter *cm = NULL;
    Lunnel__Table__Filter__ColumnPaginationFilter *pm = NULL;
    emu_filter *f = calloc(1, sizeof *f);
    if (!f) FAIL("out of memory");
    if (--*budget < 0 || depth > 8)
        FAIL("The count of filter exceeds the max: %d.", EMU_FILTER_MAX_NODES);
    m = lunnel__table__filter__filter__unpack(NULL, len, bytes);
    if (!m) FAIL("Deserialize filter failed.");
    f->kind = (node_kind)m->type;
    switch (m->type) {
    case LUNNEL__TABLE__FILTER__FILTER_TYPE__FT_SINGLE_COLUMN_VALUE:
        sm = lunnel__table__filter__single_column_value_filter__unpack(NULL, m->filter.len,
                                                                       m->filter.data);
        if (!sm) FAIL("Deserialize relation filter failed.");
        if (sm->comparator < 1 || sm->comparator > 6)
            FAIL("Invalid relation operator: %d.", (int)sm->comparator);
        if (!sm->column_name[0]) FAIL("Invalid column name: ''.");
        f->comparator = sm->comparator;
        f->column = strdup(sm->column_name);
        if (!f->column) FAIL("out of memory");
        f->column_len = strlen(f->column);
        if (parse_value(sm->column_value.data, sm->column_value.len, &f->value, &f->value_bytes) !=
            0)
            FAIL("Deserialize relation filter failed: column_value of '%.64s' is not a value.",
                 sm->column_name);
        f->filter_if_missing = sm->filter_if_missing;
        f->latest_only = sm->latest_version_only;
        break;
    case LUNNEL__TABLE__FILTER__FILTER_TYPE__FT_COMPOSITE_COLUMN_VALUE:
        cm = lunnel__table__filter__composite_column_value_filter__unpack(NULL, m->filter.len,
                                                                          m->filter.data);
        if (!cm) FAIL("Deserialize composite filter failed.");
        f->combinator = cm->combinator;
        if (cm->combinator == LUNNEL__TABLE__FILTER__LOGICAL_OPERATOR__LO_NOT) {
            if (cm->n_sub_filters != 1)
                FAIL("Invalid NOT operator: the number of sub-filters must be 1.");
        } else if (cm->combinator == LUNNEL__TABLE__FILTER__LOGICAL_OPERATOR__LO_AND ||
                   cm->combinator == LUNNEL__TABLE__FILTER__LOGICAL_OPERATOR__LO_OR) {
            if (cm->n_sub_filters < 2)
                FAIL("Invalid AND/OR operator: the number of sub-filters must be at least 2.");
        } else {
            FAIL("Invalid logical operator: %d.", (int)cm->combinator);
        }
        f->subs = calloc(cm->n_sub_filters, sizeof *f->subs);
        if (!f->subs) FAIL("out of memory");
        for (size_t i = 0; i < cm->n_sub_filters; i++) {
            /* sub-filters arrive as messages: re-pack each to parse it like a top level */
            const Lunnel__Table__Filter__Filter *sub = cm->sub_filters[i];
            if (sub->type == LUNNEL__TABLE__FILTER__FILTER_TYPE__FT_COLUMN_PAGINATION)
                FAIL("Invalid type of sub-filter: FT_COLUMN_PAGINATION.");
            size_t sl = lunnel__table__filter__filter__get_packed_size(sub);
            uint8_t *sb = malloc(sl ? sl : 1);
            if (!sb) FAIL("out of memory");
            lunnel__table__filter__filter__pack(sub, sb);
            f->subs[i] = parse_node(sb, sl, depth + 1, budget, err, errlen);
            free(sb);
            if (!f->subs[i]) goto fail_quiet;
            f->n_subs++;
        }
        break;
    case LUNNEL__TABLE__FILTER__FILTER_TYPE__FT_COLUMN_PAGINATION:
        pm = lunnel__table__filter__column_pagination_filter__unpack(NULL, m->filter.len,
                                                                     m->filter.data);
        if (!pm) FAIL("Deserialize column pagination filter failed.");
        if (pm->offset < 0)
            FAIL("Offset in ColumnPaginationFilter must be greater than or equal to 0.");
        if (pm->limit <= 0) FAIL("Limit in ColumnPaginationFilter must be greater than 0.");
        f->offset = pm->offset;
        f->limit = pm->limit;
        break;
    default:
        FAIL("Invalid type of filter: %d.", (int)m->type);
    }
    if (sm) lunnel__table__filter__single_column_value_filter__free_unpacked(sm, NULL);
    if (cm) lunnel__table__filter__composite_column_value_filter__free_unpacked(cm, NULL);
    if (pm) lunnel__table__filter__column_pagination_filter__free_unpacked(pm, NULL);
    lunnel__table__filter__filter__free_unpacked(m, NULL);
    return f;
fail:
fail_quiet:
    if (sm) lunnel__table__filter__single_column_value_filter__free_unpacked(sm, NULL);
    if (cm) lunnel__table__filter__composite_column_value_filter__free_unpacked(cm, NULL);
    if (pm) lunnel__table__filter__column_pagination_filter__free_unpacked(pm, NULL);
    if (m) lunnel__table__filter__filter__free_unpacked(m, NULL);
    emu_filter_free(f);
    return NULL;
}

int emu_filter_parse(const uint8_t *bytes, size_t len, emu_filter **out, char *err, size_t errlen)
{
    int budget = EMU_FILTER_MAX_NODES;
    *out = parse_node(bytes, len, 0, &budget, err, errlen);
    return *out ? 0 : -1;
}

/* -1, 0, 1 as a <=> b for values of one type; 2 when the types differ. */
static int compare(const lunnel_emu_value *a, const lunnel_emu_value *b)
{
    bool abytes = a->type == LUNNEL_EMU_V_STRING || a->type == LUNNEL_EMU_V_BINARY;
    if (a->type != b->type) return 2;
    if (a->type == LUNNEL_EMU_V_INTEGER) return (a->i > b->i) - (a->i < b->i);
    if (a->type == LUNNEL_EMU_V_DOUBLE) return (a->d > b->d) - (a->d < b->d);
    if (a->type == LUNNEL_EMU_V_BOOLEAN) return (a->b > b->b) - (a->b < b->b);
    if (abytes) {
        uint32_t n = a->len < b->len ? a->len : b->len;
        int c = n ? memcmp(a->ptr, b->ptr, n) : 0;
        if (c) return c > 0 ? 1 : -1;
        return (a->len > b->len) - (a->len < b->len);
    }
    return 2;
}

static int holds(int comparator, int c)
{
    if (c == 2) return comparator == LUNNEL__TABLE__FILTER__COMPARATOR_TYPE__CT_NOT_EQUAL;
    switch (comparator) {
    case LUNNEL__TABLE__FILTER__COMPARATOR_TYPE__CT_EQUAL:
        return c == 0;
    case LUNNEL__TABLE__FILTER__COMPARATOR_TYPE__CT_NOT_EQUAL:
        return c != 0;
    case LUNNEL__TABLE__FILTER__COMPARATOR_TYPE__CT_GREATER_THAN:
        return c > 0;
    case LUNNEL__TABLE__FILTER__COMPARATOR_TYPE__CT_GREATER_EQUAL:
        return c >= 0;
    case LUNNEL__TABLE__FILTER__COMPARATOR_TYPE__CT_LESS_THAN:
        return c < 0;
    default:
        return c <= 0;
    }
}

int emu_filter_match(const emu_filter *f, const lunnel_emu_row *row, int64_t min_ts)
{
    switch (f->kind) {
    case N_SINGLE: {
        const lunnel_emu_cell *cells = NULL;
        size_t n = row ? lunnel_emu_row_cells(row, &cells) : 0;
        int seen = 0;
        for (size_t i = 0; i < n; i++) {
            const lunnel_emu_cell *c = &cells[i];
            if (c->name_len != f->column_len || memcmp(c->name, f->column, f->column_len) != 0 ||
                c->ts < min_ts)
                continue;
            if (holds(f->comparator, compare(&c->value, &f->value))) return 1;
            seen = 1;
            if (f->latest_only) return 0; /* the newest visible version decided */
        }
        return seen ? 0 : !f->filter_if_missing;
    }
    case N_COMPOSITE:
        if (f->combinator == LUNNEL__TABLE__FILTER__LOGICAL_OPERATOR__LO_NOT)
            return !emu_filter_match(f->subs[0], row, min_ts);
        for (size_t i = 0; i < f->n_subs; i++) {
            int m = emu_filter_match(f->subs[i], row, min_ts);
            if (f->combinator == LUNNEL__TABLE__FILTER__LOGICAL_OPERATOR__LO_AND && !m) return 0;
            if (f->combinator == LUNNEL__TABLE__FILTER__LOGICAL_OPERATOR__LO_OR && m) return 1;
        }
        return f->combinator == LUNNEL__TABLE__FILTER__LOGICAL_OPERATOR__LO_AND;
    default:
        return 1; /* pagination keeps every row */
    }
}

int emu_filter_pagination(const emu_filter *f, int32_t *offset, int32_t *limit)
{
    if (f->kind != N_PAGINATION) return 0;
    *offset = f->offset;
    *limit = f->limit;
    return 1;
}

int emu_filter_is_pagination(const emu_filter *f)
{
    return f->kind == N_PAGINATION;
}
