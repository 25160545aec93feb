/* capture.h: `lunnel run --capture FILE`: the raw ReadRecords responses a run hands to the
 * script, appended to FILE so `lunnel replay` can feed the very same batches to a new script
 * version or a busted spec. Bounded by --capture-max-bytes: once the next batch would pass it
 * capturing stops (one log line); the run goes on.
 *
 * File format: the 8 bytes "LNLCAP01", then one frame per batch:
 *   u32 LE channel id length, the channel id, u32 LE body length, the ReadRecordsResponse
 *   body exactly as received (its next_token inside). A batch re-submitted after a script
 *   error (--on-error retry) is captured once. Loop thread only (one write per batch). */
#ifndef LUNNEL_CLI_CAPTURE_H
#define LUNNEL_CLI_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#define LUNNEL_CAPTURE_MAGIC "LNLCAP01"

typedef struct lunnel_capture lunnel_capture;

/* Opens (truncates) path. NULL + err on failure. */
lunnel_capture *lunnel_capture_open(const char *path, uint64_t max_bytes, char *err, size_t cap);
/* Appends one batch of `channel`; next_token identifies a re-submission of the last batch. */
void lunnel_capture_batch(lunnel_capture *c, const char *channel, const char *next_token,
                          const uint8_t *body, size_t len);
void lunnel_capture_close(lunnel_capture *c);

/* Reader (lunnel replay): is this a capture file? */
int lunnel_capture_is(const uint8_t *data, size_t len);
/* Walks the frames: calls fn for each (channel, body); -1 + err on a malformed file (a
 * frame cut short by a kill is reported, the frames before it are delivered). */
int lunnel_capture_frames(const uint8_t *data, size_t len,
                          int (*fn)(void *ud, const char *channel, size_t channel_len,
                                    const uint8_t *body, size_t body_len),
                          void *ud, char *err, size_t cap);

#endif
