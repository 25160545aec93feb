/* fuzz_readrecords.c: libFuzzer target for the ReadRecordsResponse scanner followed by the
 * batch decoder, i.e. everything the client does with a response body before Lua sees it.
 * Seeds: fuzz/corpus/readrecords (responses built around the golden vectors). */
#include <stdint.h>
#include <stdlib.h>

#include "lunnel/plainbuffer.h"
#include "lunnel/readrecords.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lunnel_rr_response r;
    lunnel_rr_init(&r);
    lunnel_codec_error err;
    if (lunnel_rr_scan(&r, data, size, &err) == 0) {
        if (r.next_token_len > size) abort();
        for (uint32_t i = 0; i < r.count; i++) {
            const lunnel_record_range *g = &r.records[i];
            if ((uint64_t)g->offset + g->len > size) abort();
            if (g->has_origin && (uint64_t)g->origin_offset + g->origin_len > size) abort();
        }
        lunnel_arena *a = lunnel_arena_new();
        const lunnel_batch *b;
        if (lunnel_pb_decode_batch(a, data, size, r.records, r.count, LUNNEL_PB_STRICT, &b, &err) ==
            0) {
            char json[512];
            for (uint32_t i = 0; i < b->count; i++)
                lunnel_record_tojson(&b->records[i], json, sizeof json);
        } else if (err.offset > size) {
            abort();
        }
        lunnel_arena_free(a);
    } else if (err.offset > size) {
        abort();
    }
    lunnel_rr_free(&r);
    return 0;
}
