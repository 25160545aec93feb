/* dead_letter.h: the dead-letter file of `lunnel run --on-error skip` (tunnel subsystem).
 *
 * A batch whose process() call failed is written here, durably (write + fsync), by the Lua
 * worker that ran it (from the records it decoded, through the batch's dead_letter hook of
 * host_queue.h, error_policy.c) before its completion is posted, so before it counts as
 * handled and may be checkpointed (DESIGN.md: a checkpoint records only tokens of
 * handled batches). The file is JSON Lines, appended, one line per record of the batch:
 *
 *   {"time":"2026-11-22T00:10:00.123Z","tunnel_id":"..","client_id":"..","channel_id":"..",
 *    "batch_token":"..","index":0,"count":2,"attempts":1,"error":"x.lua:3: boom",
 *    "traceback":"..","record":{"action":"PUT","pk":{..},"cols":{..},..}}
 *
 * "record" is lunnel_record_tojson's exact form (record.h). When the batch bytes do not
 * decode (the poison is in the bytes), each line carries "record_base64" (the Record.record
 * PlainBuffer bytes) and "decode_error" instead. A batch with no records writes one line
 * with "count":0 and no record. Lines are written with one write() per batch, then fsync.
 *
 * Threading: a writer may be shared by threads (the Lua workers in `lunnel run`): each call
 * renders on its own thread, appends + fsyncs under the writer's lock; one batch's lines are
 * never interleaved with another's. */
#ifndef LUNNEL_DEAD_LETTER_H
#define LUNNEL_DEAD_LETTER_H

#include <stddef.h>
#include <stdint.h>

#include "lunnel/codec.h"

struct lunnel_batch;

typedef struct lunnel_dead_letter lunnel_dead_letter; /* opaque */

/* Opens (creates, mode 0644) `path` for appending. NULL with a one-line reason in err. */
lunnel_dead_letter *lunnel_dead_letter_open(const char *path, char *err, size_t err_cap);
/* Closes the file (NULL is fine). */
void lunnel_dead_letter_close(lunnel_dead_letter *d);

/* One failed batch: the ReadRecords response bytes and the record ranges the scanner found
 * (as handed to the host), and what went wrong. Strings may be NULL (written as null). */
typedef struct lunnel_dead_letter_batch {
    const char *tunnel_id, *client_id, *channel_id;
    const char *batch_token; /* the batch's next_token (ctx.next_token) */
    const char *error, *traceback;
    int attempts; /* process() calls made for this batch */
    const uint8_t *data;
    size_t len;
    const lunnel_record_range *ranges;
    size_t n_ranges;
} lunnel_dead_letter_batch;

/* Appends the batch's lines and fsyncs, decoding b's ranges itself. 0 when the lines are
 * durable; -1 with a one-line reason in err (the batch must then NOT be treated as handled). */
int lunnel_dead_letter_write(lunnel_dead_letter *d, const lunnel_dead_letter_batch *b, char *err,
                             size_t err_cap);
/* The same from records already decoded from b's ranges (record.h view, one record per
 * range), as the Lua worker holds them; records NULL: the bytes do not decode, decode_error
 * says why (each line then carries record_base64 + decode_error). */
int lunnel_dead_letter_write_records(lunnel_dead_letter *d, const lunnel_dead_letter_batch *b,
                                     const struct lunnel_batch *records, const char *decode_error,
                                     char *err, size_t err_cap);

/* Lines written so far by this writer (any thread). */
uint64_t lunnel_dead_letter_lines(lunnel_dead_letter *d);

#endif
