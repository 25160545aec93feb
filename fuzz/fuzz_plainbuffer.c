/* fuzz_plainbuffer.c: libFuzzer target for the PlainBuffer decoder (untrusted bytes from the
 * network in the client, from any HTTP client in the emulator). Decodes strict and lenient;
 * whatever decodes must re-encode, decode again to the same shape, and render as JSON. Seeds:
 * fuzz/corpus/plainbuffer (the golden vectors). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/plainbuffer.h"

static void check_roundtrip(lunnel_arena *a, const lunnel_record *rows, uint32_t n)
{
    if (n == 0) return; /* ALLOW_EMPTY: nothing to re-encode */
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    lunnel_pb_write_header(&w);
    char json[256];
    for (uint32_t i = 0; i < n; i++) {
        lunnel_pb_write_record(&w, &rows[i]);
        lunnel_record_tojson(&rows[i], json, sizeof json);
    }
    if (w.error) abort(); /* a decoded view must always be writable */
    const lunnel_record *again;
    uint32_t m;
    if (lunnel_pb_decode_rows(a, w.buf, w.len, LUNNEL_PB_STRICT, &again, &m, NULL) != 0 || m != n)
        abort();
    for (uint32_t i = 0; i < n; i++)
        if (again[i].pk_count != rows[i].pk_count || again[i].col_count != rows[i].col_count ||
            again[i].delete_marker != rows[i].delete_marker || again[i].has_seq != rows[i].has_seq)
            abort();
    lunnel_pb_writer_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned modes[] = {LUNNEL_PB_STRICT, LUNNEL_PB_LENIENT,
                                     LUNNEL_PB_LENIENT | LUNNEL_PB_ALLOW_EMPTY};
    lunnel_arena *a = lunnel_arena_new();
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        const lunnel_record *rows;
        uint32_t n;
        lunnel_codec_error err;
        if (lunnel_pb_decode_rows(a, data, size, modes[k], &rows, &n, &err) == 0)
            check_roundtrip(a, rows, n);
        else if (err.offset > size)
            abort();
        lunnel_arena_reset(a);
    }
    lunnel_arena_free(a);
    return 0;
}
