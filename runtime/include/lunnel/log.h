/* log.h: levelled, structured logging shared by every subsystem (and Lua's ctx.log).
 * One line per event on stderr (or a sink set by tests), as text or JSON lines.
 * Thread-safe: a line is formatted on the caller's stack/heap and written whole under a
 * mutex, so lines from the loop thread and Lua workers never interleave.
 *
 * Secrets never reach the output: every secret handed to lunnel_log_add_secret() (the
 * credentials code registers access key secrets and STS tokens as soon as it learns them)
 * is replaced by "***" in each formatted line, message and fields alike. Code should still
 * never pass a secret on purpose; the registry is the safety net. */
#ifndef LUNNEL_LOG_H
#define LUNNEL_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum lunnel_log_level {
    LUNNEL_LOG_TRACE = 0,
    LUNNEL_LOG_DEBUG,
    LUNNEL_LOG_INFO,
    LUNNEL_LOG_WARN,
    LUNNEL_LOG_ERROR,
    LUNNEL_LOG_OFF /* as a threshold: log nothing */
} lunnel_log_level;

typedef enum lunnel_log_format {
    LUNNEL_LOG_FORMAT_TEXT = 0,
    LUNNEL_LOG_FORMAT_JSON
} lunnel_log_format;

/* Threshold (default INFO) and format (default TEXT); safe to call from any thread. */
void lunnel_log_set_level(lunnel_log_level level);
lunnel_log_level lunnel_log_get_level(void);
void lunnel_log_set_format(lunnel_log_format format);
lunnel_log_format lunnel_log_get_format(void);
/* "trace"|"debug"|"info"|"warn"|"error"|"off" (case-insensitive); 0 ok, -1 unknown. */
int lunnel_log_parse_level(const char *s, lunnel_log_level *out);
/* "text"|"json"; 0 ok, -1 unknown. */
int lunnel_log_parse_format(const char *s, lunnel_log_format *out);
/* "info" etc.; static string. */
const char *lunnel_log_level_name(lunnel_log_level level);
/* 1 when a line at `level` would be written (cheap; check before costly formatting). */
int lunnel_log_enabled(lunnel_log_level level);

/* Where whole lines go (each ends in '\n'); NULL restores stderr. The sink is called under
 * the log mutex: it must not log. `line` is valid only during the call. */
typedef void (*lunnel_log_sink)(const char *line, size_t len, void *ud);
void lunnel_log_set_sink(lunnel_log_sink sink, void *ud);

/* Registers a secret to mask in all later lines (copied; strings shorter than 4 bytes are
 * ignored, they would mask ordinary text). Up to 32 secrets, oldest dropped first. */
void lunnel_log_add_secret(const char *secret);
/* Forgets every registered secret (tests). */
void lunnel_log_clear_secrets(void);

/* Writes a masked form of `secret` for display: "" -> "(none)", else "****" followed by
 * nothing of the secret (length hidden too). Always NUL-terminates within cap. */
void lunnel_log_redact(const char *secret, char *out, size_t cap);
/* Copies `in` to `out` (cap bytes, NUL-terminated, truncated) with every registered secret
 * replaced by "***". Returns the length written. */
size_t lunnel_log_mask(const char *in, char *out, size_t cap);

/* A structured event: `component` names the subsystem ("http", "worker", "channel"...),
 * `msg` is a fixed human sentence, then key/value string pairs terminated by a NULL key:
 *   lunnel_log_kv(LUNNEL_LOG_WARN, "http", "retrying", "path", p, "attempt", "2", NULL);
 * A NULL value prints as null. */
void lunnel_log_kv(lunnel_log_level level, const char *component, const char *msg, ...);
void lunnel_log_kvv(lunnel_log_level level, const char *component, const char *msg, va_list ap);

/* printf-style message without fields. */
void lunnel_logf(lunnel_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Pairs passed as arrays (for bindings such as Lua's ctx.log). */
typedef struct lunnel_log_field {
    const char *key;
    const char *value;
} lunnel_log_field;
void lunnel_log_fields(lunnel_log_level level, const char *component, const char *msg,
                       const lunnel_log_field *fields, size_t n_fields);

#define LUNNEL_LOG(level, component, ...)                                                          \
    do {                                                                                           \
        if (lunnel_log_enabled(level)) lunnel_logf(level, component, __VA_ARGS__);                 \
    } while (0)

#endif
