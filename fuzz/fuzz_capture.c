/* fuzz_capture.c: libFuzzer target for the `lunnel run --capture` file reader that
 * `lunnel replay` uses (runtime/src/cli/capture.c; a capture file may come from anywhere).
 * Walks the frames and scans each body as a ReadRecordsResponse, as replay does; nothing may
 * read outside the input. Seeds: fuzz/corpus/capture. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/src/cli/capture.c"
#include "lunnel/readrecords.h"

static int on_frame(void *ud, const char *channel, size_t channel_len, const uint8_t *body,
                    size_t body_len)
{
    (void)ud;
    /* touch every byte of the channel name: the sanitizers check its bounds */
    size_t sum = 0;
    for (size_t i = 0; i < channel_len; i++)
        sum += (uint8_t)channel[i];
    if (sum == (size_t)-1) abort();
    uint8_t *copy = malloc(body_len ? body_len : 1); /* exact bounds for the sanitizers */
    if (!copy) return -1;
    memcpy(copy, body, body_len);
    lunnel_rr_response rr;
    lunnel_rr_init(&rr);
    lunnel_codec_error e;
    memset(&e, 0, sizeof e);
    (void)lunnel_rr_scan(&rr, copy, body_len, &e);
    lunnel_rr_free(&rr);
    free(copy);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    char err[256];
    (void)lunnel_capture_frames(copy, size, on_frame, NULL, err, sizeof err);
    free(copy);
    return 0;
}
