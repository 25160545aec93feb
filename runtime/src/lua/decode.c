/* decode.c: turns a submitted batch into the record view on the worker thread (so decoding
 * scales with the workers): pre-scanned ranges go straight to the strict batch decoder; a
 * whole ReadRecordsResponse is scanned here first; a bare PlainBuffer (replay, tests) is
 * decoded row by row with actions inferred. Everything lands in the worker's arena, which the
 * worker resets after the process() call. */
#include <stdio.h>
#include <string.h>

#include "lua/host_internal.h"
#include "lunnel/plainbuffer.h"
#include "lunnel/readrecords.h"
#include "lunnel/record.h"

/* A record is an UPDATE when it deletes cells but not the row, a DELETE with the marker. */
static uint8_t infer_action(const lunnel_record *r)
{
    if (r->delete_marker) return LUNNEL_ACTION_DELETE;
    for (uint32_t i = 0; i < r->col_count; i++)
        if (r->cols[i].op != LUNNEL_OP_PUT) return LUNNEL_ACTION_UPDATE;
    return LUNNEL_ACTION_PUT;
}

static int decode_plainbuffer(lunnel_arena *arena, const lunnel_host_batch *b,
                              const lunnel_batch **out, lunnel_codec_error *e)
{
    const lunnel_record *rows = NULL;
    uint32_t n = 0;
    int rc = lunnel_pb_decode_rows(arena, b->data, b->len, LUNNEL_PB_STRICT | LUNNEL_PB_ALLOW_EMPTY,
                                   &rows, &n, e);
    if (rc != LUNNEL_CODEC_OK) return rc;
    lunnel_batch *batch = lunnel_arena_alloc(arena, sizeof *batch);
    lunnel_record *recs = n ? lunnel_arena_alloc(arena, sizeof *recs * n) : NULL;
    if (!batch || (n && !recs)) {
        e->code = LUNNEL_CODEC_NOMEM;
        snprintf(e->message, sizeof e->message, "out of memory");
        return LUNNEL_CODEC_NOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        recs[i] = rows[i];
        recs[i].action = infer_action(&rows[i]);
    }
    memset(batch, 0, sizeof *batch);
    batch->records = recs;
    batch->count = n;
    batch->generation = lunnel_arena_generation(arena);
    batch->live_generation = lunnel_arena_live(arena);
    batch->data = b->data;
    batch->size = b->len;
    *out = batch;
    return LUNNEL_CODEC_OK;
}

int host_decode(lunnel_arena *arena, const lunnel_host_batch *b, const lunnel_batch **out,
                char *err, size_t cap, char *why, size_t why_cap)
{
    if (why_cap) why[0] = '\0';
    lunnel_codec_error e;
    memset(&e, 0, sizeof e);
    int rc;
    switch (b->kind) {
    case LUNNEL_HOST_PAYLOAD_RANGES:
        if (b->n_ranges > UINT32_MAX) {
            snprintf(err, cap, "too many records in one batch (%zu)", b->n_ranges);
            snprintf(why, why_cap, "%s", err);
            return LUNNEL_HOST_EDECODE;
        }
        rc = lunnel_pb_decode_batch(arena, b->data, b->len, b->ranges, (uint32_t)b->n_ranges,
                                    LUNNEL_PB_STRICT, out, &e);
        break;
    case LUNNEL_HOST_PAYLOAD_RESPONSE: {
        lunnel_rr_response rr;
        lunnel_rr_init(&rr);
        rc = lunnel_rr_scan(&rr, b->data, b->len, &e);
        if (rc == LUNNEL_CODEC_OK)
            rc = lunnel_pb_decode_batch(arena, b->data, b->len, rr.records, rr.count,
                                        LUNNEL_PB_STRICT, out, &e);
        lunnel_rr_free(&rr);
        break;
    }
    case LUNNEL_HOST_PAYLOAD_PLAINBUFFER:
        rc = decode_plainbuffer(arena, b, out, &e);
        break;
    default:
        snprintf(err, cap, "unknown batch payload kind %d", (int)b->kind);
        snprintf(why, why_cap, "%s", err);
        return LUNNEL_HOST_EDECODE;
    }
    if (rc != LUNNEL_CODEC_OK) {
        snprintf(err, cap, "batch does not decode: %s",
                 e.message[0] ? e.message : lunnel_codec_strerror(rc));
        snprintf(why, why_cap, "%s", e.message);
        return LUNNEL_HOST_EDECODE;
    }
    return 0;
}
