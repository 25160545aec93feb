/* bench_codec.c: codec throughput on the issue-3 corpus: records of 1 INTEGER pk + 10
 * attribute columns (5 STRING of 20 bytes, 5 INTEGER) with sequence info, laid out like a
 * ReadRecords response (header + row per record, wrapped in protobuf Records).
 * Measures per core (one thread): CRC-8 slice-by-8 vs byte-at-a-time, the ReadRecords scan,
 * and decode-with-checksum-verification in GB/s of PlainBuffer bytes and records/s.
 * Usage: bench_codec [records] [seconds-per-measurement] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lunnel/plainbuffer.h"
#include "lunnel/readrecords.h"

/* Per-core figures: the thread's CPU time, so other processes on a shared machine do not
 * count against us (wall-clock figures would mostly measure the scheduler). */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

int main(int argc, char **argv)
{
    int nrec = argc > 1 ? atoi(argv[1]) : 1000;
    double secs = argc > 2 ? atof(argv[2]) : 1.0;

    /* Corpus rows. */
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    size_t *off = calloc((size_t)nrec + 1, sizeof *off);
    for (int i = 0; i < nrec; i++) {
        off[i] = w.len;
        char name[4], val[32];
        lunnel_value v = lunnel_value_int(i);
        lunnel_pb_write_header(&w);
        lunnel_pb_begin_row(&w);
        lunnel_pb_write_pk(&w, "id", 2, &v);
        for (int c = 0; c < 5; c++) {
            snprintf(name, sizeof name, "s%d", c);
            snprintf(val, sizeof val, "value-%02d-%011d", c, i); /* 20 bytes */
            v = lunnel_value_bytes(LUNNEL_VT_STRING, val, 20);
            lunnel_pb_write_cell(&w, name, 2, &v, LUNNEL_OP_PUT, 0, 0);
        }
        for (int c = 0; c < 5; c++) {
            snprintf(name, sizeof name, "i%d", c);
            v = lunnel_value_int((int64_t)i * 1000 + c);
            lunnel_pb_write_cell(&w, name, 2, &v, LUNNEL_OP_PUT, 0, 0);
        }
        lunnel_pb_write_seq(&w, 0, 1700000000000000LL + i, i);
        lunnel_pb_end_row(&w);
    }
    off[nrec] = w.len;
    if (w.error) return fprintf(stderr, "writer error %d\n", w.error), 1;
    size_t pb_bytes = w.len;

    /* Wrap as a ReadRecordsResponse. */
    uint8_t *resp = malloc(pb_bytes + (size_t)nrec * 16 + 64);
    size_t rl = 0;
    for (int i = 0; i < nrec; i++) {
        size_t len = off[i + 1] - off[i];
        uint8_t inner[16];
        size_t il = 0;
        inner[il++] = 0x08;
        inner[il++] = 0x01;
        inner[il++] = 0x12;
        il += put_varint(inner + il, len);
        resp[rl++] = 0x0A;
        rl += put_varint(resp + rl, il + len);
        memcpy(resp + rl, inner, il);
        rl += il;
        memcpy(resp + rl, w.buf + off[i], len);
        rl += len;
    }
    resp[rl++] = 0x12;
    resp[rl++] = 5;
    memcpy(resp + rl, "token", 5);
    rl += 5;

    printf("corpus: %d records, %zu PlainBuffer bytes (%.1f bytes/record), response %zu bytes\n",
           nrec, pb_bytes, (double)pb_bytes / nrec, rl);

    /* CRC-8 over the corpus bytes. */
    volatile uint8_t sink = 0;
    long it = 0;
    double t0 = now(), t;
    do {
        sink ^= lunnel_crc8(0, w.buf, pb_bytes);
        it++;
    } while ((t = now()) - t0 < secs);
    double crc_fast = it * (double)pb_bytes / (t - t0) / 1e9;
    it = 0;
    t0 = now();
    do {
        sink ^= lunnel_crc8_bytewise(0, w.buf, pb_bytes);
        it++;
    } while ((t = now()) - t0 < secs);
    double crc_slow = it * (double)pb_bytes / (t - t0) / 1e9;
    printf("crc8 slice-by-8:      %.2f GB/s\ncrc8 byte-at-a-time:  %.2f GB/s\n", crc_fast,
           crc_slow);

    /* Scan. */
    lunnel_rr_response rr;
    lunnel_rr_init(&rr);
    lunnel_codec_error err;
    it = 0;
    t0 = now();
    do {
        if (lunnel_rr_scan(&rr, resp, rl, &err)) return fprintf(stderr, "%s\n", err.message), 1;
        it++;
    } while ((t = now()) - t0 < secs);
    printf("readrecords scan:     %.2f GB/s (%.1f M records/s)\n", it * (double)rl / (t - t0) / 1e9,
           it * (double)nrec / (t - t0) / 1e6);

    /* Decode with checksum verification (strict), arena reused like a Lua worker does. */
    lunnel_arena *a = lunnel_arena_new();
    const lunnel_batch *b = NULL;
    it = 0;
    double w0 = wall();
    t0 = now();
    do {
        if (lunnel_pb_decode_batch(a, resp, rl, rr.records, rr.count, LUNNEL_PB_STRICT, &b, &err))
            return fprintf(stderr, "%s\n", err.message), 1;
        lunnel_arena_reset(a);
        it++;
    } while ((t = now()) - t0 < secs);
    double dec_gbs = it * (double)pb_bytes / (t - t0) / 1e9;
    double dec_wall = it * (double)pb_bytes / (wall() - w0) / 1e9;
    printf("decode+verify:        %.2f GB/s of PlainBuffer bytes (%.2f M records/s), arena %zu "
           "bytes\n",
           dec_gbs, it * (double)nrec / (t - t0) / 1e6, lunnel_arena_capacity(a));

    /* Scan + decode together, as one batch goes from response bytes to views. */
    it = 0;
    t0 = now();
    do {
        lunnel_rr_scan(&rr, resp, rl, &err);
        lunnel_pb_decode_batch(a, resp, rl, rr.records, rr.count, LUNNEL_PB_STRICT, &b, &err);
        lunnel_arena_reset(a);
        it++;
    } while ((t = now()) - t0 < secs);
    printf("scan+decode+verify:   %.2f GB/s of response bytes\n", it * (double)rl / (t - t0) / 1e9);
    printf("decode+verify (wall clock, includes time other processes took): %.2f GB/s\n", dec_wall);
    printf(
        "RESULT decode_gbps=%.3f decode_wall_gbps=%.3f crc_fast_gbps=%.3f crc_bytewise_gbps=%.3f\n",
        dec_gbs, dec_wall, crc_fast, crc_slow);
    lunnel_arena_free(a);
    lunnel_rr_free(&rr);
    lunnel_pb_writer_free(&w);
    free(resp);
    free(off);
    return sink == 0 ? 0 : 0; /* reads sink: the CRC loops cannot be optimised away */
}
