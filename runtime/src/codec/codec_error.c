/* codec_error.c: the codec's error names and the one formatter every decoder uses, so all
 * messages read "record N at byte M: what". */
#include <stdarg.h>
#include <stdio.h>

#include "codec/codec_internal.h"

const char *lunnel_codec_strerror(int code)
{
    switch (code) {
    case LUNNEL_CODEC_OK:
        return "ok";
    case LUNNEL_CODEC_TRUNCATED:
        return "truncated";
    case LUNNEL_CODEC_BAD_HEADER:
        return "bad header";
    case LUNNEL_CODEC_BAD_TAG:
        return "bad tag";
    case LUNNEL_CODEC_BAD_LENGTH:
        return "bad length";
    case LUNNEL_CODEC_BAD_VALUE:
        return "bad value";
    case LUNNEL_CODEC_CHECKSUM:
        return "checksum mismatch";
    case LUNNEL_CODEC_TRAILING:
        return "trailing bytes";
    case LUNNEL_CODEC_EMPTY:
        return "no row";
    case LUNNEL_CODEC_PROTOBUF:
        return "malformed protobuf";
    case LUNNEL_CODEC_MISSING:
        return "missing required field";
    case LUNNEL_CODEC_TOO_LARGE:
        return "too large";
    case LUNNEL_CODEC_NOMEM:
        return "out of memory";
    case LUNNEL_CODEC_USAGE:
        return "API misuse";
    default:
        return "unknown codec error";
    }
}

int codec_fail(lunnel_codec_error *err, int code, int32_t record, uint64_t offset, const char *fmt,
               ...)
{
    if (!err) return code;
    err->code = code;
    err->record_index = record;
    err->offset = offset;
    int n;
    if (record >= 0)
        n = snprintf(err->message, sizeof err->message, "record %d at byte %llu: %s: ", (int)record,
                     (unsigned long long)offset, lunnel_codec_strerror(code));
    else
        n = snprintf(err->message, sizeof err->message,
                     "at byte %llu: %s: ", (unsigned long long)offset, lunnel_codec_strerror(code));
    if (n < 0) n = 0;
    if ((size_t)n < sizeof err->message) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message + n, sizeof err->message - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}
