/* decode_rows.c: the public C API of liblunnel in one program. Reads a file of PlainBuffer
 * rows (a Tablestore row body: header + rows) and prints each row as the exact JSON that
 * r:tojson() gives a Lua script.
 *
 *   cc decode_rows.c -I PREFIX/include -L PREFIX/lib -llunnel -Wl,-rpath,PREFIX/lib
 *   ./a.out rows.bin
 *
 * tests/e2e/exports.sh builds and runs it against an installed prefix. */
#include <stdio.h>
#include <stdlib.h>

#include <lunnel/plainbuffer.h>
#include <lunnel/version.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    static uint8_t buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);

    lunnel_arena *arena = lunnel_arena_new();
    const lunnel_record *rows;
    uint32_t count;
    lunnel_codec_error err;
    int rc = lunnel_pb_decode_rows(arena, buf, len, LUNNEL_PB_LENIENT, &rows, &count, &err);
    if (rc != LUNNEL_CODEC_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], err.message);
        lunnel_arena_free(arena);
        return 1;
    }
    for (uint32_t i = 0; i < count; i++) {
        char json[4096];
        size_t n = lunnel_record_tojson(&rows[i], json, sizeof json);
        if (n >= sizeof json) {
            fprintf(stderr, "row %u: %zu bytes of JSON, more than this example's buffer\n", i, n);
            continue;
        }
        printf("%s\n", json);
    }
    lunnel_arena_free(arena); /* the views of rows[] end here */
    fprintf(stderr, "liblunnel %s: %u rows\n", lunnel_version(), count);
    return 0;
}
