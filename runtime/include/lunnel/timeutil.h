/* timeutil.h: clock reads and the time formats lunnel accepts (RFC 3339 / ISO-8601 and
 * milliseconds since the epoch), shared by credentials (Expiration) and the CLI options. */
#ifndef LUNNEL_TIMEUTIL_H
#define LUNNEL_TIMEUTIL_H

#include <stdint.h>

int64_t lunnel_time_now_ms(void); /* wall clock, ms since the epoch */
double lunnel_time_mono_ms(void); /* monotonic clock, ms */

/* Parses "2026-11-21T10:00:00Z", "2026-11-21T10:00:00.123+08:00", "2026-11-21 10:00:00Z"
 * (lower-case t/z too). Returns 0 and ms since the epoch, or -1 (bad syntax or range). */
int lunnel_time_parse_rfc3339(const char *s, int64_t *out_ms);

/* RFC 3339 or a bare integer of milliseconds since the epoch. 0 ok, -1 invalid. */
int lunnel_time_parse(const char *s, int64_t *out_ms);

/* Formats ms since the epoch as UTC "2026-11-21T10:00:00.000Z" (the one format of log lines,
 * dead letters, x-ots-date and the CLI's times); negative ms round down to the second before. */
#define LUNNEL_TIME_MS_LEN 25 /* "2026-11-21T10:00:00.000Z" plus NUL */
void lunnel_time_format_ms(int64_t epoch_ms, char out[LUNNEL_TIME_MS_LEN]);

/* Durations: "500ms", "5s", "2m", "1h", "1.5s"; a bare number is seconds. 0 ok, -1 bad. */
int lunnel_duration_parse(const char *s, double *out_seconds);

#endif
