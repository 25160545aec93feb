/* log.c: the levelled, structured logger behind log.h. Lines are built in a private lunnel_buf
 * (no shared state while formatting; JSON lines through the one JSON writer), secrets are masked
 * value by value before escaping, and the finished line is handed to the sink under one mutex. */
#include "lunnel/log.h"
#include "lunnel/buf.h"
#include "lunnel/json.h"
#include "lunnel/timeutil.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_SECRETS 32

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int log_level = LUNNEL_LOG_INFO;
static volatile int log_format = LUNNEL_LOG_FORMAT_TEXT;
static lunnel_log_sink log_sink;
static void *log_sink_ud;
/* Registered secrets, guarded by secret_mu (separate so masking never waits on output). */
static pthread_mutex_t secret_mu = PTHREAD_MUTEX_INITIALIZER;
static char *secrets[MAX_SECRETS];
static size_t n_secrets;

static const char *level_names[] = {"trace", "debug", "info", "warn", "error", "off"};
static const char *level_upper[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF"};

void lunnel_log_set_level(lunnel_log_level level)
{
    __atomic_store_n(&log_level, (int)level, __ATOMIC_RELAXED);
}
lunnel_log_level lunnel_log_get_level(void)
{
    return (lunnel_log_level)__atomic_load_n(&log_level, __ATOMIC_RELAXED);
}
void lunnel_log_set_format(lunnel_log_format f)
{
    __atomic_store_n(&log_format, (int)f, __ATOMIC_RELAXED);
}
lunnel_log_format lunnel_log_get_format(void)
{
    return (lunnel_log_format)__atomic_load_n(&log_format, __ATOMIC_RELAXED);
}
int lunnel_log_enabled(lunnel_log_level level)
{
    return level < LUNNEL_LOG_OFF && (int)level >= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

const char *lunnel_log_level_name(lunnel_log_level level)
{
    return (unsigned)level <= LUNNEL_LOG_OFF ? level_names[level] : "?";
}

int lunnel_log_parse_level(const char *s, lunnel_log_level *out)
{
    for (int i = 0; i <= LUNNEL_LOG_OFF; i++) {
        if (s && strcasecmp(s, level_names[i]) == 0) {
            *out = (lunnel_log_level)i;
            return 0;
        }
    }
    if (s && strcasecmp(s, "warning") == 0) {
        *out = LUNNEL_LOG_WARN;
        return 0;
    }
    return -1;
}

int lunnel_log_parse_format(const char *s, lunnel_log_format *out)
{
    if (s && strcasecmp(s, "text") == 0)
        *out = LUNNEL_LOG_FORMAT_TEXT;
    else if (s && strcasecmp(s, "json") == 0)
        *out = LUNNEL_LOG_FORMAT_JSON;
    else
        return -1;
    return 0;
}

void lunnel_log_set_sink(lunnel_log_sink sink, void *ud)
{
    pthread_mutex_lock(&log_mu);
    log_sink = sink;
    log_sink_ud = ud;
    pthread_mutex_unlock(&log_mu);
}

void lunnel_log_add_secret(const char *secret)
{
    if (!secret || strlen(secret) < 4) return;
    pthread_mutex_lock(&secret_mu);
    for (size_t i = 0; i < n_secrets; i++) {
        if (strcmp(secrets[i], secret) == 0) {
            pthread_mutex_unlock(&secret_mu);
            return;
        }
    }
    char *copy = strdup(secret);
    if (copy) {
        if (n_secrets == MAX_SECRETS) {
            free(secrets[0]);
            memmove(secrets, secrets + 1, (MAX_SECRETS - 1) * sizeof secrets[0]);
            n_secrets--;
        }
        secrets[n_secrets++] = copy;
    }
    pthread_mutex_unlock(&secret_mu);
}

void lunnel_log_clear_secrets(void)
{
    pthread_mutex_lock(&secret_mu);
    for (size_t i = 0; i < n_secrets; i++)
        free(secrets[i]);
    n_secrets = 0;
    pthread_mutex_unlock(&secret_mu);
}

void lunnel_log_redact(const char *secret, char *out, size_t cap)
{
    if (cap == 0) return;
    snprintf(out, cap, "%s", (!secret || !*secret) ? "(none)" : "****");
}

/* Lines are built in a lunnel_buf on a stack array: most lines never touch the heap. On
 * allocation failure the buffer stops growing and the line is written truncated. */
typedef struct {
    lunnel_buf b;
    char stack[512];
} lbuf;

static void lb_init(lbuf *l)
{
    lunnel_buf_init_on(&l->b, l->stack, sizeof l->stack);
}
static void lb_free(lbuf *l)
{
    lunnel_buf_free(&l->b);
}

/* Appends `s` with every registered secret replaced by "***" (caller holds secret_mu). */
static void put_masked_locked(lunnel_buf *b, const char *s)
{
    while (*s) {
        size_t best = 0;
        for (size_t i = 0; i < n_secrets; i++) {
            size_t l = strlen(secrets[i]);
            if (l > best && strncmp(s, secrets[i], l) == 0) best = l;
        }
        if (best) {
            lunnel_buf_add(b, "***", 3);
            s += best;
        } else {
            lunnel_buf_add(b, s, 1);
            s++;
        }
    }
}

static void put_masked(lunnel_buf *out, const char *s)
{
    pthread_mutex_lock(&secret_mu);
    put_masked_locked(out, s);
    pthread_mutex_unlock(&secret_mu);
}

size_t lunnel_log_mask(const char *in, char *out, size_t cap)
{
    if (cap == 0) return 0;
    lbuf l;
    lb_init(&l);
    put_masked(&l.b, in ? in : "");
    size_t n = l.b.len < cap - 1 ? l.b.len : cap - 1;
    memcpy(out, l.b.p, n);
    out[n] = '\0';
    lb_free(&l);
    return n;
}

static void put_json_string(lunnel_buf *b, const char *s)
{
    lunnel_json_write_string(s, strlen(s), lunnel_buf_write_cb, b);
}

/* JSON lines carry numbers as JSON numbers: a value that is exactly a JSON number is written
 * bare, unless its key names an identifier or text (ids, tokens, names may look numeric). */
static int is_json_number(const char *s)
{
    const char *p = s;
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return 0;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0' && p - s < 32;
}

static int key_is_text(const char *k)
{
    static const char *const text_keys[] = {
        "channel", "tunnel", "table", "token", "error",   "path",   "file",     "script",
        "tag",     "name",   "msg",   "code",  "message", "reason", "endpoint", NULL};
    size_t n = strlen(k);
    if (n >= 2 && strcmp(k + n - 2, "id") == 0) return 1; /* tunnel_id, client_id, ... */
    for (int i = 0; text_keys[i]; i++)
        if (strcmp(k, text_keys[i]) == 0) return 1;
    return 0;
}

/* Text values are quoted only when they contain spaces, quotes, '=' or control bytes. */
static void put_text_value(lunnel_buf *b, const char *s)
{
    int quote = *s == '\0';
    for (const char *p = s; *p; p++) {
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20) quote = 1;
    }
    if (quote)
        put_json_string(b, s);
    else
        lunnel_buf_str(b, s);
}

static void now_stamp(char out[64])
{
    lunnel_time_format_ms(lunnel_time_now_ms(), out);
}

/* Source of key/value pairs: either a va_list or an array. */
typedef struct {
    va_list *ap;
    const lunnel_log_field *fields;
    size_t n, i;
} kv_iter;

static int kv_next(kv_iter *it, const char **k, const char **v)
{
    if (it->ap) {
        *k = va_arg(*it->ap, const char *);
        if (!*k) return 0;
        *v = va_arg(*it->ap, const char *);
        return 1;
    }
    if (it->i >= it->n) return 0;
    *k = it->fields[it->i].key;
    *v = it->fields[it->i].value;
    it->i++;
    return *k != NULL;
}

static void emit(lunnel_log_level level, const char *component, const char *msg, kv_iter *it)
{
    lbuf line, tmp;
    lb_init(&line);
    lunnel_buf *b = &line.b;
    lunnel_jw w;
    lunnel_jw_init(&w, b);
    char ts[64];
    now_stamp(ts);
    int json = __atomic_load_n(&log_format, __ATOMIC_RELAXED) == LUNNEL_LOG_FORMAT_JSON;
    const char *lname = lunnel_log_level_name(level);
    if (!component) component = "lunnel";
    if (!msg) msg = "";
    pthread_mutex_lock(&secret_mu);
    if (json) {
        lunnel_jw_object(&w);
        lunnel_jw_key(&w, "ts");
        lunnel_jw_str(&w, ts);
        lunnel_jw_key(&w, "level");
        lunnel_jw_str(&w, lname);
        lunnel_jw_key(&w, "component");
        lunnel_jw_str(&w, component);
        lunnel_jw_key(&w, "msg");
        lb_init(&tmp);
        put_masked_locked(&tmp.b, msg);
        lunnel_jw_str(&w, tmp.b.p);
        lb_free(&tmp);
    } else {
        lunnel_buf_printf(b, "%s %-5s [%s] ", ts, level_upper[level], component);
        put_masked_locked(b, msg);
    }
    const char *k, *v;
    while (kv_next(it, &k, &v)) {
        lb_init(&tmp);
        if (v) put_masked_locked(&tmp.b, v);
        const char *mv = tmp.b.p;
        if (json) {
            lunnel_jw_key(&w, k);
            if (v && is_json_number(mv) && !key_is_text(k))
                lunnel_jw_raw(&w, mv, tmp.b.len);
            else if (v)
                lunnel_jw_str(&w, mv);
            else
                lunnel_jw_null(&w);
        } else {
            lunnel_buf_char(b, ' ');
            lunnel_buf_str(b, k);
            lunnel_buf_char(b, '=');
            if (v)
                put_text_value(b, mv);
            else
                lunnel_buf_str(b, "null");
        }
        lb_free(&tmp);
    }
    pthread_mutex_unlock(&secret_mu);
    if (json) lunnel_jw_end_object(&w);
    lunnel_buf_char(b, '\n');

    pthread_mutex_lock(&log_mu);
    if (log_sink) {
        log_sink(b->p, b->len, log_sink_ud);
    } else {
        fwrite(b->p, 1, b->len, stderr);
        fflush(stderr);
    }
    pthread_mutex_unlock(&log_mu);
    lb_free(&line);
}

void lunnel_log_kvv(lunnel_log_level level, const char *component, const char *msg, va_list ap)
{
    if (!lunnel_log_enabled(level)) return;
    va_list cp;
    va_copy(cp, ap);
    kv_iter it = {.ap = &cp};
    emit(level, component, msg, &it);
    va_end(cp);
}

void lunnel_log_kv(lunnel_log_level level, const char *component, const char *msg, ...)
{
    if (!lunnel_log_enabled(level)) return;
    va_list ap;
    va_start(ap, msg);
    kv_iter it = {.ap = &ap};
    emit(level, component, msg, &it);
    va_end(ap);
}

void lunnel_log_fields(lunnel_log_level level, const char *component, const char *msg,
                       const lunnel_log_field *fields, size_t n_fields)
{
    if (!lunnel_log_enabled(level)) return;
    kv_iter it = {.fields = fields, .n = n_fields};
    emit(level, component, msg, &it);
}

void lunnel_logf(lunnel_log_level level, const char *component, const char *fmt, ...)
{
    if (!lunnel_log_enabled(level)) return;
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    char *msg = small;
    if (n >= (int)sizeof small) {
        msg = malloc((size_t)n + 1);
        if (msg) {
            va_start(ap, fmt);
            vsnprintf(msg, (size_t)n + 1, fmt, ap);
            va_end(ap);
        } else {
            msg = small;
        }
    }
    kv_iter it = {.n = 0};
    emit(level, component, msg, &it);
    if (msg != small) free(msg);
}
