/* fuzz_emulator_filter.c: libFuzzer target for lunnel-emulator's column filters and column
 * conditions (filter.c) on outside bytes: the Filter protobuf with its nested single-column,
 * composite and pagination messages and the serialized value inside. Whatever parses is
 * evaluated against a small row and against no row; whatever fails must say why. Seeds:
 * fuzz/corpus/emulator_filter (filters the official Node SDK encodes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data_api/filter.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lunnel_emu_store *st;
    static lunnel_emu_table *t;
    if (!st) {
        st = lunnel_emu_store_new(1);
        lunnel_emu_pk_schema pk[1] = {{"id", LUNNEL_EMU_PK_INTEGER}};
        lunnel_emu_table_options o = {.max_versions = 3, .time_to_live = -1};
        char msg[128];
        lunnel_emu_store_create_table(st, "f", pk, 1, &o, msg, sizeof msg);
        t = lunnel_emu_store_table(st, "f");
        lunnel_emu_value id = {.type = LUNNEL_EMU_V_INTEGER, .i = 1};
        lunnel_emu_cell cells[3] = {
            {(const uint8_t *)"n",
             1,
             LUNNEL_EMU_OP_PUT,
             {.type = LUNNEL_EMU_V_INTEGER, .i = 5},
             true,
             10},
            {(const uint8_t *)"s",
             1,
             LUNNEL_EMU_OP_PUT,
             {.type = LUNNEL_EMU_V_STRING, .ptr = (const uint8_t *)"abc", .len = 3},
             true,
             10},
            {(const uint8_t *)"n",
             1,
             LUNNEL_EMU_OP_PUT,
             {.type = LUNNEL_EMU_V_INTEGER, .i = 7},
             true,
             20}};
        lunnel_emu_store_write(st, t, LUNNEL_EMU_ACTION_PUT, LUNNEL_EMU_COND_IGNORE, &id, 1, cells,
                               3, 100, msg, sizeof msg);
    }
    emu_filter *f = NULL;
    char err[256];
    err[0] = 0;
    if (emu_filter_parse(data, size, &f, err, sizeof err) != 0) {
        if (!err[0] || f) abort(); /* a refusal must say why and hand nothing out */
        return 0;
    }
    lunnel_emu_value id = {.type = LUNNEL_EMU_V_INTEGER, .i = 1};
    const lunnel_emu_row *r = lunnel_emu_table_get(t, &id, 1);
    int a = emu_filter_match(f, r, INT64_MIN), b = emu_filter_match(f, NULL, 0);
    if ((a != 0 && a != 1) || (b != 0 && b != 1)) abort();
    int32_t off, lim;
    if (emu_filter_pagination(f, &off, &lim) && (off < 0 || lim <= 0)) abort();
    emu_filter_free(f);
    return 0;
}
