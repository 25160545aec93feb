/* metrics.c: the loop-thread counters of `lunnel run` (metrics.h) and their Prometheus text
 * rendering. Per-channel counters are kept by channel id in a list in first-seen order (the
 * render order) with a hash index beside it, so that a client holding tens of thousands of
 * channels finds or adds one in O(1), not by walking the list; the hooks are O(1) per response /
 * completion plus one byte read per record range to count actions. The live channel objects
 * (run_internal.h) are walked only at render / summary time, for gauges (channels by state,
 * checkpoint lag, readiness). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lunnel/metrics.h"
#include "lunnel/record.h"
#include "run_internal.h"

const double lunnel_metrics_bucket_bounds[LUNNEL_METRICS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

const char *const lunnel_metrics_state_names[6] = {"queued",  "getcheckpoint", "opening",
                                                   "running", "draining",      "closing"};

#define MAX_ERROR_CODES 32

struct lunnel_metrics_channel {
    lunnel_metrics *m;
    char *id;
    int is_stream;
    double read_started;
    uint64_t reads, read_errors, read_bytes, read_records;
    uint64_t batches, batches_failed, records_by_action[4]; /* index LUNNEL_ACTION_* */
    uint64_t checkpoints, checkpoint_failures, errors;
    double last_checkpoint_at; /* 0: none yet */
    int64_t newest_ts_us;      /* newest record timestamp processed; 0: none */
    lunnel_metrics_channel *next;
};

typedef struct err_count {
    char code[64];
    uint64_t n;
} err_count;

struct lunnel_metrics {
    lunnel_metrics_channel *channels, *tail; /* in first-seen order */
    lunnel_metrics_channel **index;          /* open addressing by id hash; NULL = empty */
    size_t index_cap, n_channels;            /* index_cap: 0 or a power of two >= 2 * n */
    lunnel_metrics_histogram process, read;
    err_count errors[MAX_ERROR_CODES];
    int n_errors;
    uint64_t errors_total;
    char last_error[256];
    double last_error_at;
    int tunnel_channels, tunnel_terminated;
};

void lunnel_metrics_histogram_observe(lunnel_metrics_histogram *h, double v)
{
    int i = 0;
    while (i < LUNNEL_METRICS_BUCKETS && v > lunnel_metrics_bucket_bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

lunnel_metrics *lunnel_metrics_new(void)
{
    lunnel_metrics *m = calloc(1, sizeof *m);
    if (m) m->tunnel_channels = m->tunnel_terminated = -1;
    return m;
}

void lunnel_metrics_free(lunnel_metrics *m)
{
    if (!m) return;
    for (lunnel_metrics_channel *c = m->channels, *n; c; c = n) {
        n = c->next;
        free(c->id);
        free(c);
    }
    free(m->index);
    free(m);
}

static size_t id_hash(const char *id)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)h;
}

/* The slot of `id` in the index: where it is, or the empty slot where it would go. */
static size_t index_slot(const lunnel_metrics *m, const char *id)
{
    size_t mask = m->index_cap - 1, i = id_hash(id) & mask;
    while (m->index[i] && strcmp(m->index[i]->id, id) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Keeps the index at most half full; 0 on success, -1 out of memory (index unchanged). */
static int index_grow(lunnel_metrics *m)
{
    if (2 * (m->n_channels + 1) <= m->index_cap) return 0;
    size_t cap = m->index_cap ? 2 * m->index_cap : 64;
    lunnel_metrics_channel **old = m->index;
    size_t old_cap = m->index_cap;
    m->index = calloc(cap, sizeof *m->index);
    if (!m->index) {
        m->index = old;
        return -1;
    }
    m->index_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i]) m->index[index_slot(m, old[i]->id)] = old[i];
    free(old);
    return 0;
}

lunnel_metrics_channel *lunnel_metrics_channel_get(lunnel_metrics *m, const char *id)
{
    if (!m || !id) return NULL;
    if (m->index_cap) {
        lunnel_metrics_channel *found = m->index[index_slot(m, id)];
        if (found) return found;
    }
    if (index_grow(m) != 0) return NULL;
    lunnel_metrics_channel *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->id = strdup(id);
    if (!c->id) {
        free(c);
        return NULL;
    }
    c->m = m;
    c->is_stream = strncmp(id, "BaseData_", 9) != 0;
    if (m->tail)
        m->tail->next = c;
    else
        m->channels = c;
    m->tail = c;
    m->index[index_slot(m, id)] = c;
    m->n_channels++;
    return c;
}

/* ---- hooks ----------------------------------------------------------------------------- */

void lunnel_metrics_read_start(lunnel_metrics_channel *c, double now)
{
    if (c) c->read_started = now;
}

void lunnel_metrics_read_done(lunnel_metrics_channel *c, double now, size_t bytes, size_t n, int ok)
{
    if (!c) return;
    c->reads++;
    if (!ok) c->read_errors++;
    c->read_bytes += bytes;
    c->read_records += n;
    if (c->read_started > 0) {
        double d = now - c->read_started;
        lunnel_metrics_histogram_observe(&c->m->read, d < 0 ? 0 : d);
        c->read_started = 0;
    }
}

void lunnel_metrics_batch_done(lunnel_metrics_channel *c, const lunnel_host_completion *comp,
                               const lunnel_record_range *ranges, size_t n, double now)
{
    (void)now;
    if (!c) return;
    lunnel_metrics_histogram_observe(&c->m->process, comp->elapsed_s);
    if (comp->status != LUNNEL_HOST_OK) {
        c->batches_failed++;
        lunnel_metrics_channel_error(c, lunnel_host_code_label(comp->status), comp->error);
        return;
    }
    c->batches++;
    uint64_t by[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++)
        by[ranges[i].action & 3]++;
    for (int i = 0; i < 4; i++)
        c->records_by_action[i] += by[i];
    if (comp->newest_timestamp_us > c->newest_ts_us) c->newest_ts_us = comp->newest_timestamp_us;
}

void lunnel_metrics_checkpoint(lunnel_metrics_channel *c, double now, int ok)
{
    if (!c) return;
    if (ok) {
        c->checkpoints++;
        c->last_checkpoint_at = now;
    } else {
        c->checkpoint_failures++;
    }
}

void lunnel_metrics_error(lunnel_metrics *m, const char *code, const char *text)
{
    if (!m) return;
    if (!code || !*code) code = "unknown";
    m->errors_total++;
    snprintf(m->last_error, sizeof m->last_error, "%s", text && *text ? text : code);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->last_error_at = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    for (int i = 0; i < m->n_errors; i++) {
        if (strcmp(m->errors[i].code, code) == 0) {
            m->errors[i].n++;
            return;
        }
    }
    /* a bounded label set: past MAX_ERROR_CODES - 1 codes, the rest count as "other" */
    int i = m->n_errors;
    if (i >= MAX_ERROR_CODES - 1) {
        i = MAX_ERROR_CODES - 1;
        snprintf(m->errors[i].code, sizeof m->errors[i].code, "other");
        m->n_errors = MAX_ERROR_CODES;
    } else {
        snprintf(m->errors[i].code, sizeof m->errors[i].code, "%s", code);
        m->n_errors++;
    }
    m->errors[i].n++;
}

void lunnel_metrics_channel_error(lunnel_metrics_channel *c, const char *code, const char *text)
{
    if (!c) return;
    c->errors++;
    lunnel_metrics_error(c->m, code, text);
}

static const char *api_code(const lunnel_error *err)
{
    return err->code[0] ? err->code : lunnel_net_code_str(err->kind);
}

void lunnel_metrics_api_error(lunnel_metrics *m, const lunnel_error *err)
{
    if (!m || !err) return;
    char line[512];
    lunnel_error_format(err, line, sizeof line);
    lunnel_metrics_error(m, api_code(err), line);
}

void lunnel_metrics_channel_api_error(lunnel_metrics_channel *c, const lunnel_error *err)
{
    if (!c || !err) return;
    char line[512];
    lunnel_error_format(err, line, sizeof line);
    lunnel_metrics_channel_error(c, api_code(err), line);
}

void lunnel_metrics_tunnel_counts(lunnel_metrics *m, int n_channels, int n_terminated)
{
    if (!m) return;
    m->tunnel_channels = n_channels;
    m->tunnel_terminated = n_terminated;
}

/* ---- readers ----------------------------------------------------------------------------- */

static int state_index(ch_state s)
{
    switch (s) {
    case CH_QUEUED:
        return 0;
    case CH_GETCP:
        return 1;
    case CH_OPENING:
        return 2;
    case CH_RUNNING:
        return 3;
    case CH_DRAINING:
        return 4;
    case CH_CLOSING:
        return 5;
    case CH_DONE:
        return -1;
    }
    return -1;
}

/* The live channel object of counters `c`, if any. */
static const run_channel *live_of(const run_worker *w, const lunnel_metrics_channel *c)
{
    if (!w) return NULL;
    for (const run_channel *ch = w->channels; ch; ch = ch->next)
        if (ch->state != CH_DONE && strcmp(ch->id, c->id) == 0) return ch;
    return NULL;
}

static double lag_of(const lunnel_metrics_channel *c, double now)
{
    if (!c->is_stream || c->newest_ts_us <= 0) return -1;
    double lag = now - (double)c->newest_ts_us / 1e6;
    return lag < 0 ? 0 : lag;
}

int lunnel_metrics_ready(const struct lunnel_worker *w, double now, char *why, size_t cap)
{
    if (!w) {
        snprintf(why, cap, "no worker");
        return 0;
    }
    if (w->state != W_RUNNING && w->state != W_DRAINING) {
        snprintf(why, cap, "not connected");
        return 0;
    }
    double age = now - w->last_hb_ok;
    double limit = w->cfg.heartbeat_timeout_s;
    /* fresh = within two heartbeat intervals (plus a little), never beyond the timeout */
    double fresh = 2.5 * w->cfg.heartbeat_interval_s;
    if (fresh < limit) limit = fresh;
    if (age > limit) {
        snprintf(why, cap, "last heartbeat %.1fs ago", age);
        return 0;
    }
    snprintf(why, cap, "ok");
    return 1;
}

void lunnel_metrics_summarize(lunnel_metrics *m, const struct lunnel_worker *w, double now,
                              lunnel_metrics_summary *out)
{
    memset(out, 0, sizeof *out);
    out->slowest_lag_s = -1;
    out->tunnel_channels = out->tunnel_terminated = -1;
    if (!m) return;
    out->tunnel_channels = m->tunnel_channels;
    out->tunnel_terminated = m->tunnel_terminated;
    out->errors = m->errors_total;
    snprintf(out->last_error, sizeof out->last_error, "%s", m->last_error);
    out->last_error_at = m->last_error_at;
    for (lunnel_metrics_channel *c = m->channels; c; c = c->next) {
        out->batches += c->batches;
        out->batches_failed += c->batches_failed;
        out->checkpoints += c->checkpoints;
        for (int i = 0; i < 4; i++)
            out->records += c->records_by_action[i];
    }
    if (!w) return;
    char why[64];
    out->connected = lunnel_metrics_ready(w, now, why, sizeof why);
    out->heartbeat_age_s = now - w->last_hb_ok;
    for (const run_channel *ch = w->channels; ch; ch = ch->next) {
        int si = state_index(ch->state);
        if (si < 0) {
            if (ch->end == END_TERMINATED) out->channels_terminated++;
            continue;
        }
        out->channels_by_state[si]++;
        out->channels_live++;
        if (ch->mx) {
            double lag = lag_of(ch->mx, now);
            if (lag > out->slowest_lag_s) {
                out->slowest_lag_s = lag;
                out->slowest_channel = ch->mx->id;
            }
        }
    }
}

/* ---- Prometheus text ------------------------------------------------------------------ */

static void render_hist(lunnel_metrics_buf *b, const char *name, const char *help,
                        const lunnel_metrics_histogram *h)
{
    lunnel_metrics_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < LUNNEL_METRICS_BUCKETS; i++) {
        cum += h->counts[i];
        lunnel_metrics_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name,
                                  lunnel_metrics_bucket_bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[LUNNEL_METRICS_BUCKETS];
    lunnel_metrics_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name,
                              (unsigned long long)cum, name, h->sum, name,
                              (unsigned long long)h->count);
}

/* Label values: channel ids and error codes are plain ASCII in practice; escape anyway. */
static void label_value(char *out, size_t cap, const char *s)
{
    size_t j = 0;
    for (; *s && j + 3 < cap; s++) {
        if (*s == '"' || *s == '\\') {
            out[j++] = '\\';
            out[j++] = *s;
        } else if (*s == '\n') {
            out[j++] = '\\';
            out[j++] = 'n';
        } else {
            out[j++] = *s;
        }
    }
    out[j] = 0;
}

static void head(lunnel_metrics_buf *b, const char *name, const char *type, const char *help)
{
    lunnel_metrics_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A per-channel counter: for every channel, one sample per value of its second label (or
 * one sample with the channel label only when label is NULL). */
typedef struct channel_counter {
    const char *name, *help;
    const char *label;     /* "action", "result", or NULL */
    const char *values[3]; /* the label's values, NULL-terminated when fewer than 3 */
    uint64_t (*count)(const lunnel_metrics_channel *c, int value_index);
} channel_counter;

static uint64_t count_processed(const lunnel_metrics_channel *c, int i)
{
    return c->records_by_action[LUNNEL_ACTION_PUT + i];
}
static uint64_t count_batches(const lunnel_metrics_channel *c, int i)
{
    return i == 0 ? c->batches : c->batches_failed;
}
static uint64_t count_reads(const lunnel_metrics_channel *c, int i)
{
    return i == 0 ? c->reads - c->read_errors : c->read_errors;
}
static uint64_t count_read_bytes(const lunnel_metrics_channel *c, int i)
{
    (void)i;
    return c->read_bytes;
}
static uint64_t count_records_read(const lunnel_metrics_channel *c, int i)
{
    (void)i;
    return c->read_records;
}
static uint64_t count_checkpoints(const lunnel_metrics_channel *c, int i)
{
    return i == 0 ? c->checkpoints : c->checkpoint_failures;
}

static const channel_counter records_processed = {
    "lunnel_records_processed_total",
    "records of batches whose process() returned, by channel and action",
    "action",
    {"PUT", "UPDATE", "DELETE"},
    count_processed};
static const channel_counter batches_processed = {
    "lunnel_batches_processed_total",
    "batches by channel and result (ok: process() returned)",
    "result",
    {"ok", "failed"},
    count_batches};
static const channel_counter read_records = {"lunnel_read_records_total",
                                             "ReadRecords responses by channel and result",
                                             "result",
                                             {"ok", "error"},
                                             count_reads};
static const channel_counter read_bytes = {"lunnel_read_bytes_total",
                                           "ReadRecords response bytes by channel",
                                           NULL,
                                           {NULL},
                                           count_read_bytes};
static const channel_counter records_read = {
    "lunnel_records_read_total", "records received by channel", NULL, {NULL}, count_records_read};
static const channel_counter checkpoints = {"lunnel_checkpoints_total",
                                            "Checkpoint calls by channel and result",
                                            "result",
                                            {"ok", "failed"},
                                            count_checkpoints};

static void render_counter(lunnel_metrics_buf *b, const lunnel_metrics *m, const channel_counter *k)
{
    char id[256];
    head(b, k->name, "counter", k->help);
    for (lunnel_metrics_channel *c = m->channels; c; c = c->next) {
        label_value(id, sizeof id, c->id);
        if (!k->label) {
            lunnel_metrics_buf_printf(b, "%s{channel=\"%s\"} %llu\n", k->name, id,
                                      (unsigned long long)k->count(c, 0));
            continue;
        }
        for (int i = 0; i < 3 && k->values[i]; i++)
            lunnel_metrics_buf_printf(b, "%s{channel=\"%s\",%s=\"%s\"} %llu\n", k->name, id,
                                      k->label, k->values[i], (unsigned long long)k->count(c, i));
    }
}

/* A per-channel gauge of the live channels: value() returns 0 to leave a channel out. */
typedef struct channel_gauge {
    const char *name, *help;
    int decimals; /* printed with this many digits after the point */
    int (*value)(const lunnel_metrics_channel *c, const run_channel *live, double now, double *out);
} channel_gauge;

static int checkpoint_age(const lunnel_metrics_channel *c, const run_channel *live, double now,
                          double *out)
{
    (void)live;
    *out = now - c->last_checkpoint_at;
    return c->last_checkpoint_at > 0;
}
static int pending_batches(const lunnel_metrics_channel *c, const run_channel *live, double now,
                           double *out)
{
    (void)c, (void)now;
    *out = (double)(lunnel_cptrack_outstanding(&live->cp) +
                    (lunnel_cptrack_pending(&live->cp) != NULL ? 1 : 0));
    return 1;
}
static int stream_lag(const lunnel_metrics_channel *c, const run_channel *live, double now,
                      double *out)
{
    (void)live;
    *out = lag_of(c, now);
    return *out >= 0;
}

static const channel_gauge gauges[] = {
    {"lunnel_checkpoint_age_seconds",
     "seconds since the last accepted checkpoint, live channels that have one", 3, checkpoint_age},
    {"lunnel_checkpoint_pending_batches",
     "batches read but not yet covered by an accepted checkpoint, live channels", 0,
     pending_batches},
    {"lunnel_stream_lag_seconds",
     "now minus the newest processed record timestamp, live stream channels", 3, stream_lag},
};

static void render_gauge(lunnel_metrics_buf *b, const lunnel_metrics *m,
                         const struct lunnel_worker *w, double now, const channel_gauge *g)
{
    char id[256];
    head(b, g->name, "gauge", g->help);
    for (lunnel_metrics_channel *c = m->channels; c; c = c->next) {
        const run_channel *live = live_of(w, c);
        double v;
        if (!live || !g->value(c, live, now, &v)) continue;
        label_value(id, sizeof id, c->id);
        lunnel_metrics_buf_printf(b, "%s{channel=\"%s\"} %.*f\n", g->name, id, g->decimals, v);
    }
}

/* One worker-wide counter: the HELP/TYPE head and its single sample. */
static void render_total(lunnel_metrics_buf *b, const char *name, const char *help, uint64_t n)
{
    head(b, name, "counter", help);
    lunnel_metrics_buf_printf(b, "%s %llu\n", name, (unsigned long long)n);
}

void lunnel_metrics_render(lunnel_metrics *m, const struct lunnel_worker *w, double now,
                           lunnel_metrics_buf *b)
{
    if (!m) return;
    char id[256];

    render_counter(b, m, &records_processed);
    render_counter(b, m, &batches_processed);
    render_hist(b, "lunnel_process_seconds", "duration of process(ctx, batch) calls", &m->process);
    render_hist(b, "lunnel_read_records_seconds", "ReadRecords call latency (with retries)",
                &m->read);
    render_counter(b, m, &read_records);
    render_counter(b, m, &read_bytes);
    render_counter(b, m, &records_read);
    head(b, "lunnel_errors_total", "counter",
         "errors by code (server error code, transport kind, or host error)");
    for (int i = 0; i < m->n_errors; i++) {
        label_value(id, sizeof id, m->errors[i].code);
        lunnel_metrics_buf_printf(b, "lunnel_errors_total{code=\"%s\"} %llu\n", id,
                                  (unsigned long long)m->errors[i].n);
    }
    render_counter(b, m, &checkpoints);
    for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++)
        render_gauge(b, m, w, now, &gauges[i]);

    lunnel_metrics_summary s;
    lunnel_metrics_summarize(m, w, now, &s);
    head(b, "lunnel_channels", "gauge", "channel objects on this client by state");
    for (int i = 0; i < 6; i++)
        lunnel_metrics_buf_printf(b, "lunnel_channels{state=\"%s\"} %d\n",
                                  lunnel_metrics_state_names[i], s.channels_by_state[i]);
    head(b, "lunnel_tunnel_channels", "gauge",
         "channels of the tunnel by DescribeTunnel (BaseData progress), -1 unknown");
    lunnel_metrics_buf_printf(b,
                              "lunnel_tunnel_channels{status=\"all\"} %d\n"
                              "lunnel_tunnel_channels{status=\"TERMINATED\"} %d\n",
                              m->tunnel_channels, m->tunnel_terminated);
    if (!w) return;
    head(b, "lunnel_connected", "gauge", "1 when connected with a fresh heartbeat (= /readyz)");
    lunnel_metrics_buf_printf(b, "lunnel_connected %d\n", s.connected);
    head(b, "lunnel_heartbeat_age_seconds", "gauge", "seconds since the last good heartbeat");
    lunnel_metrics_buf_printf(b, "lunnel_heartbeat_age_seconds %.3f\n", s.heartbeat_age_s);
    render_total(b, "lunnel_heartbeats_total", "successful heartbeats", w->stats.heartbeats);
    render_total(b, "lunnel_reconnects_total", "reconnects after a lost client",
                 w->stats.reconnects);
    render_total(b, "lunnel_batch_retries_total",
                 "failed batches submitted again (--on-error retry)", w->stats.batch_retries);
    render_total(b, "lunnel_dead_lettered_batches_total",
                 "failed batches written to the dead-letter file (--on-error skip)",
                 w->stats.dead_lettered);
    head(b, "lunnel_inflight_bytes", "gauge", "response bytes held by unfinished batches");
    lunnel_metrics_buf_printf(b, "lunnel_inflight_bytes %zu\n", w->inflight_bytes);
}
