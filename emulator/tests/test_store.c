/* test_store.c: the emulator's tables and change streams: primary-key order (integers
 * signed, strings bytewise, INF_MIN/INF_MAX bounds), conditions, versions, change records
 * decoded back with the runtime's strict decoder, partitions, trimming, snapshots. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/plainbuffer.h"
#include "store/store.h"
#include "testutil.h"

static lunnel_emu_value vint(int64_t i)
{
    lunnel_emu_value v = {.type = LUNNEL_EMU_V_INTEGER, .i = i};
    return v;
}
static lunnel_emu_value vstr(const char *s)
{
    lunnel_emu_value v = {
        .type = LUNNEL_EMU_V_STRING, .ptr = (const uint8_t *)s, .len = (uint32_t)strlen(s)};
    return v;
}
static lunnel_emu_cell put(const char *name, lunnel_emu_value v, int64_t ts)
{
    lunnel_emu_cell c = {.name = (const uint8_t *)name,
                         .name_len = (uint32_t)strlen(name),
                         .op = LUNNEL_EMU_OP_PUT,
                         .value = v,
                         .has_ts = ts >= 0,
                         .ts = ts};
    return c;
}

typedef struct collect {
    int64_t ids[64];
    char ks[64][8];
    int n;
} collect;

static int collect_row(void *ud, const lunnel_emu_row *r)
{
    collect *c = ud;
    const lunnel_emu_value *pk;
    lunnel_emu_row_pk(r, &pk);
    c->ids[c->n] = pk[0].i;
    snprintf(c->ks[c->n], sizeof c->ks[0], "%.*s", (int)pk[1].len, (const char *)pk[1].ptr);
    c->n++;
    return c->n == 64;
}

static int events;
static void on_event(void *ud, lunnel_emu_store_event ev, const lunnel_emu_table *t,
                     const lunnel_emu_change *c)
{
    (void)ud;
    (void)t;
    if (ev == LUNNEL_EMU_EV_CHANGE_APPENDED && c) events++;
}

int main(void)
{
    lunnel_emu_store *st = lunnel_emu_store_new(4);
    CHECK(st != NULL);
    CHECK_INT(lunnel_emu_store_listen(st, on_event, NULL), 0);
    lunnel_emu_pk_schema pk[2] = {{.name = "id", .type = LUNNEL_EMU_PK_INTEGER},
                                  {.name = "k", .type = LUNNEL_EMU_PK_STRING}};
    lunnel_emu_table_options o = {.max_versions = 2, .time_to_live = -1};
    char msg[512];
    CHECK_INT(lunnel_emu_store_create_table(st, "t", pk, 2, &o, msg, sizeof msg),
              LUNNEL_EMU_STORE_OK);
    CHECK_INT(lunnel_emu_store_create_table(st, "t", pk, 2, &o, msg, sizeof msg),
              LUNNEL_EMU_STORE_TABLE_EXISTS);
    CHECK_STR(lunnel_emu_store_strerror(LUNNEL_EMU_STORE_TABLE_EXISTS), "OTSObjectAlreadyExist");
    lunnel_emu_table *t = lunnel_emu_store_table(st, "t");
    CHECK(t != NULL);

    /* rows in scrambled order; key order must come out */
    int64_t ids[] = {5, -3, 0, 5, 5, INT64_MIN, INT64_MAX, -3};
    const char *ks[] = {"b", "z", "", "a", "a\x01", "m", "m", "y"};
    for (int i = 0; i < 8; i++) {
        lunnel_emu_value key[2] = {vint(ids[i]), vstr(ks[i])};
        lunnel_emu_cell c = put("n", vint(i), -1);
        CHECK_INT(lunnel_emu_store_write(st, t, LUNNEL_EMU_ACTION_PUT,
                                         LUNNEL_EMU_COND_EXPECT_NOT_EXIST, key, 2, &c, 1, 1000 + i,
                                         msg, sizeof msg),
                  LUNNEL_EMU_STORE_OK);
    }
    CHECK_INT(lunnel_emu_table_row_count(t), 8);
    CHECK_INT(events, 8);
    lunnel_emu_value lo[2] = {{.type = LUNNEL_EMU_V_INF_MIN}, {.type = LUNNEL_EMU_V_INF_MIN}};
    lunnel_emu_value hi[2] = {{.type = LUNNEL_EMU_V_INF_MAX}, {.type = LUNNEL_EMU_V_INF_MAX}};
    collect c = {0};
    lunnel_emu_table_range(t, false, lo, hi, 2, collect_row, &c);
    CHECK_INT(c.n, 8);
    int64_t want_ids[] = {INT64_MIN, -3, -3, 0, 5, 5, 5, INT64_MAX};
    const char *want_ks[] = {"m", "y", "z", "", "a", "a\x01", "b", "m"};
    for (int i = 0; i < 8 && i < c.n; i++) {
        CHECK_INT(c.ids[i], want_ids[i]);
        CHECK_STR(c.ks[i], want_ks[i]);
    }
    /* bounds: [(5, INF_MIN), (5, INF_MAX)) and backward from (5,"b") down to (0, INF_MAX) */
    lunnel_emu_value s5[2] = {vint(5), {.type = LUNNEL_EMU_V_INF_MIN}};
    lunnel_emu_value e5[2] = {vint(5), {.type = LUNNEL_EMU_V_INF_MAX}};
    memset(&c, 0, sizeof c);
    lunnel_emu_table_range(t, false, s5, e5, 2, collect_row, &c);
    CHECK_INT(c.n, 3);
    lunnel_emu_value bs[2] = {vint(5), vstr("b")};
    lunnel_emu_value be[2] = {vint(0), {.type = LUNNEL_EMU_V_INF_MAX}};
    memset(&c, 0, sizeof c);
    lunnel_emu_table_range(t, true, bs, be, 2, collect_row, &c);
    CHECK_INT(c.n, 3);
    CHECK_STR(c.ks[0], "b");
    CHECK_STR(c.ks[2], "a");

    /* conditions */
    lunnel_emu_value k1[2] = {vint(5), vstr("a")};
    lunnel_emu_cell cv = put("v", vstr("x"), 10);
    CHECK_INT(lunnel_emu_store_write(st, t, LUNNEL_EMU_ACTION_PUT, LUNNEL_EMU_COND_EXPECT_NOT_EXIST,
                                     k1, 2, &cv, 1, 1, msg, sizeof msg),
              LUNNEL_EMU_STORE_CONDITION_FAILED);
    CHECK_INT(lunnel_emu_store_status(LUNNEL_EMU_STORE_CONDITION_FAILED), 403);
    lunnel_emu_value k404[2] = {vint(404), vstr("a")};
    CHECK_INT(lunnel_emu_store_write(st, t, LUNNEL_EMU_ACTION_DELETE, LUNNEL_EMU_COND_EXPECT_EXIST,
                                     k404, 2, NULL, 0, 1, msg, sizeof msg),
              LUNNEL_EMU_STORE_CONDITION_FAILED);
    lunnel_emu_value badk[2] = {vstr("x"), vstr("a")};
    CHECK_INT(lunnel_emu_store_write(st, t, LUNNEL_EMU_ACTION_PUT, LUNNEL_EMU_COND_IGNORE, badk, 2,
                                     &cv, 1, 1, msg, sizeof msg),
              LUNNEL_EMU_STORE_BAD_PK);
    CHECK(strstr(msg, "'id'") != NULL);
    uint64_t end_before = lunnel_emu_table_changes_end(t);
    CHECK_INT(end_before, 8); /* failed writes leave no change */

    /* versions: three updates of v, max_versions 2 keeps the newest two */
    for (int i = 0; i < 3; i++) {
        lunnel_emu_cell u = put("v", vint(100 + i), 50 + i);
        CHECK_INT(lunnel_emu_store_write(st, t, LUNNEL_EMU_ACTION_UPDATE,
                                         LUNNEL_EMU_COND_EXPECT_EXIST, k1, 2, &u, 1, 1, msg,
                                         sizeof msg),
                  LUNNEL_EMU_STORE_OK);
    }
    const lunnel_emu_row *row = lunnel_emu_table_get(t, k1, 2);
    CHECK(row != NULL);
    const lunnel_emu_cell *cells;
    size_t n = lunnel_emu_row_cells(row, &cells);
    CHECK_INT(n, 3); /* n, v@52, v@51 */
    if (n == 3) {
        CHECK_INT(cells[0].name_len, 1);
        CHECK(cells[0].name[0] == 'n');
        CHECK_INT(cells[1].ts, 52);
        CHECK_INT(cells[1].value.i, 102);
        CHECK_INT(cells[2].ts, 51);
    }
    /* delete one version, then all */
    lunnel_emu_cell d1 = {.name = (const uint8_t *)"v",
                          .name_len = 1,
                          .op = LUNNEL_EMU_OP_DELETE_ONE_VERSION,
                          .has_ts = true,
                          .ts = 52};
    CHECK_INT(lunnel_emu_store_write(st, t, LUNNEL_EMU_ACTION_UPDATE, LUNNEL_EMU_COND_IGNORE, k1, 2,
                                     &d1, 1, 1, msg, sizeof msg),
              LUNNEL_EMU_STORE_OK);
    n = lunnel_emu_row_cells(lunnel_emu_table_get(t, k1, 2), &cells);
    CHECK_INT(n, 2);
    lunnel_emu_cell da = {
        .name = (const uint8_t *)"v", .name_len = 1, .op = LUNNEL_EMU_OP_DELETE_ALL_VERSIONS};
    CHECK_INT(lunnel_emu_store_write(st, t, LUNNEL_EMU_ACTION_UPDATE, LUNNEL_EMU_COND_IGNORE, k1, 2,
                                     &da, 1, 1, msg, sizeof msg),
              LUNNEL_EMU_STORE_OK);
    n = lunnel_emu_row_cells(lunnel_emu_table_get(t, k1, 2), &cells);
    CHECK_INT(n, 1);
    CHECK_INT(lunnel_emu_store_write(st, t, LUNNEL_EMU_ACTION_DELETE, LUNNEL_EMU_COND_EXPECT_EXIST,
                                     k1, 2, NULL, 0, 1, msg, sizeof msg),
              LUNNEL_EMU_STORE_OK);
    CHECK(lunnel_emu_table_get(t, k1, 2) == NULL);
    CHECK_INT(lunnel_emu_table_row_count(t), 7);

    /* every change decodes strictly, carries seq info in order, pk partition is stable */
    uint64_t end = lunnel_emu_table_changes_end(t);
    CHECK_INT(end, 8 + 3 + 2 + 1);
    lunnel_arena *arena = lunnel_arena_new();
    int64_t prev_ts = 0;
    int32_t prev_ri = -1;
    int decoded = 0, ordered = 0, parts_ok = 0;
    for (uint64_t i = 0; i < end; i++) {
        const lunnel_emu_change *ch = lunnel_emu_table_change_at(t, i);
        if (!ch || ch->index != i) continue;
        const lunnel_record *rows;
        uint32_t nr;
        lunnel_codec_error e;
        lunnel_arena_reset(arena);
        if (lunnel_pb_decode_rows(arena, ch->row, ch->row_len, LUNNEL_PB_STRICT, &rows, &nr, &e) ==
                0 &&
            nr == 1 && rows[0].has_seq && rows[0].seq_timestamp == ch->timestamp_us &&
            rows[0].seq_row_index == ch->row_index && rows[0].pk_count == 2)
            decoded++;
        if (ch->timestamp_us > prev_ts || (ch->timestamp_us == prev_ts && ch->row_index > prev_ri))
            ordered++;
        prev_ts = ch->timestamp_us;
        prev_ri = ch->row_index;
        if (ch->partition == lunnel_emu_partition_of(ch->pk, ch->pk_len, 4)) parts_ok++;
    }
    CHECK_INT(decoded, (int)end);
    CHECK_INT(ordered, (int)end);
    CHECK_INT(parts_ok, (int)end);
    const lunnel_emu_change *last = lunnel_emu_table_change_at(t, end - 1);
    CHECK_INT(last->action, LUNNEL_EMU_ACTION_DELETE);
    {
        const lunnel_record *rows;
        uint32_t nr;
        lunnel_arena_reset(arena);
        CHECK_INT(lunnel_pb_decode_rows(arena, last->row, last->row_len, LUNNEL_PB_STRICT, &rows,
                                        &nr, NULL),
                  0);
        CHECK(nr == 1 && rows[0].delete_marker);
    }
    /* the same key always lands in the same partition (changes 8.. are all key k1) */
    CHECK_INT(lunnel_emu_table_change_at(t, 8)->partition,
              lunnel_emu_table_change_at(t, 13)->partition);
    CHECK_INT(lunnel_emu_partition_of((const uint8_t *)"abc", 3, 4),
              lunnel_emu_partition_of((const uint8_t *)"abc", 3, 4));

    /* snapshot: current rows, newest versions, no extension */
    lunnel_emu_snapshot *snap = lunnel_emu_table_snapshot(t);
    CHECK(snap && snap->n_rows == 7 && snap->change_index == end);
    int snap_ok = 0;
    for (size_t i = 0; snap && i < snap->n_rows; i++) {
        const lunnel_record *rows;
        uint32_t nr;
        lunnel_arena_reset(arena);
        if (lunnel_pb_decode_rows(arena, snap->rows[i].row, snap->rows[i].row_len, LUNNEL_PB_STRICT,
                                  &rows, &nr, NULL) == 0 &&
            nr == 1 && !rows[0].has_seq && rows[0].col_count == 1)
            snap_ok++;
    }
    CHECK_INT(snap_ok, 7);
    lunnel_emu_snapshot_free(snap);

    /* trimming */
    CHECK_INT(lunnel_emu_store_trim_changes(st, t, 5), 5);
    CHECK_INT(lunnel_emu_table_changes_begin(t), 5);
    CHECK(lunnel_emu_table_change_at(t, 4) == NULL);
    CHECK(lunnel_emu_table_change_at(t, 5) != NULL && lunnel_emu_table_change_at(t, 5)->index == 5);
    CHECK(lunnel_emu_table_change_at(t, end) == NULL);

    CHECK_INT(lunnel_emu_store_delete_table(st, "t"), LUNNEL_EMU_STORE_OK);
    CHECK_INT(lunnel_emu_store_delete_table(st, "t"), LUNNEL_EMU_STORE_NO_TABLE);
    lunnel_arena_free(arena);
    lunnel_emu_store_free(st);
    TEST_DONE();
}
