/* test_tunnel_dead_letter.c: the dead-letter writer of --on-error skip (dead_letter.h):
 * two records written as two exact JSON lines with the batch's error and token; a batch whose
 * bytes do not decode keeps its raw bytes in base64 with the decode error; an empty batch
 * writes one line; lines append across writes; an unwritable path is a clear error. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lunnel/dead_letter.h"
#include "lunnel/plainbuffer.h"
#include "lunnel/record.h"
#include "testutil.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

/* Two rows back to back, each its own buffer (the ReadRecords layout), and their ranges. */
static void two_rows(lunnel_pb_writer *w, lunnel_record_range r[2])
{
    for (int i = 0; i < 2; i++) {
        size_t start = w->len;
        lunnel_pb_write_header(w);
        lunnel_pb_begin_row(w);
        lunnel_value id = lunnel_value_int(40 + i);
        lunnel_pb_write_pk(w, "id", 2, &id);
        lunnel_value s = lunnel_value_bytes(LUNNEL_VT_STRING, "q\"x\n", 4);
        lunnel_pb_write_cell(w, "name", 4, &s, LUNNEL_OP_PUT, 0, 0);
        lunnel_pb_end_row(w);
        r[i] = (lunnel_record_range){.offset = (uint32_t)start,
                                     .len = (uint32_t)(w->len - start),
                                     .action = LUNNEL_ACTION_PUT};
    }
}

int main(void)
{
    char path[] = "/tmp/lunnel-dl-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    char err[512] = "";
    lunnel_dead_letter *d = lunnel_dead_letter_open(path, err, sizeof err);
    CHECK(d != NULL);

    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    lunnel_record_range r[2];
    two_rows(&w, r);
    CHECK_INT(w.error, 0);
    lunnel_dead_letter_batch b = {
        .tunnel_id = "tun",
        .client_id = "cli",
        .channel_id = "p0",
        .batch_token = "tok1",
        .error = "x.lua:3: boom \"quoted\"",
        .traceback = "stack\n\tx.lua:3",
        .attempts = 1,
        .data = w.buf,
        .len = w.len,
        .ranges = r,
        .n_ranges = 2,
    };
    CHECK_INT(lunnel_dead_letter_write(d, &b, err, sizeof err), 0);
    const char *text = slurp(path);
    CHECK_INT(count_lines(text), 2);
    CHECK(strstr(text, "\"channel_id\":\"p0\",\"batch_token\":\"tok1\",\"index\":0,\"count\":2,"
                       "\"attempts\":1,\"error\":\"x.lua:3: boom \\\"quoted\\\"\"") != NULL);
    CHECK(strstr(text, "\"traceback\":\"stack\\n\\tx.lua:3\"") != NULL);
    CHECK(strstr(text, "\"record\":{\"action\":\"PUT\",\"pk\":{\"id\":40}") != NULL);
    CHECK(strstr(text, "\"pk\":{\"id\":41}") != NULL);
    CHECK(strstr(text, "\"name\":\"q\\\"x\\n\"") != NULL);
    CHECK(strstr(text, "\"time\":\"20") != NULL);
    CHECK_INT(lunnel_dead_letter_lines(d), 2);

    /* a corrupted row: the raw bytes in base64 and the decoder's message */
    w.buf[r[1].offset + r[1].len - 1] ^= 0x5a; /* the row checksum */
    b.attempts = 2;
    b.traceback = "";
    CHECK_INT(lunnel_dead_letter_write(d, &b, err, sizeof err), 0);
    text = slurp(path);
    CHECK_INT(count_lines(text), 4);
    CHECK(strstr(text, "\"record_base64\":\"") != NULL);
    CHECK(strstr(text, "\"decode_error\":\"") != NULL);
    CHECK(strstr(text, "\"attempts\":2,") != NULL);
    CHECK(strstr(text, "\"traceback\":null") != NULL);

    /* an empty batch: one line, no record */
    lunnel_dead_letter_batch e = {.channel_id = "p1", .error = "empty", .attempts = 1};
    CHECK_INT(lunnel_dead_letter_write(d, &e, err, sizeof err), 0);
    text = slurp(path);
    CHECK_INT(count_lines(text), 5);
    CHECK(strstr(text, "\"channel_id\":\"p1\",\"batch_token\":null,\"index\":0,\"count\":0") !=
          NULL);
    CHECK_INT(lunnel_dead_letter_lines(d), 5);
    lunnel_dead_letter_close(d);

    /* reopening appends */
    d = lunnel_dead_letter_open(path, err, sizeof err);
    CHECK(d != NULL);
    CHECK_INT(lunnel_dead_letter_write(d, &e, err, sizeof err), 0);
    CHECK_INT(count_lines(slurp(path)), 6);
    lunnel_dead_letter_close(d);
    unlink(path);

    /* a path that cannot be opened names the path and the reason */
    CHECK(lunnel_dead_letter_open("/nonexistent-dir/x/dead.jsonl", err, sizeof err) == NULL);
    CHECK(strstr(err, "/nonexistent-dir/x/dead.jsonl") != NULL);
    CHECK(strstr(err, "No such file") != NULL);
    lunnel_pb_writer_free(&w);
    TEST_DONE();
}
