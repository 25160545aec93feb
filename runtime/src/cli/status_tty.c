/* status_tty.c: the live status line of `lunnel run` (status_tty.h). A redraw timer on the
 * loop summarizes the metrics registry (metrics.h) into one line that fits the terminal
 * width; a log sink keeps log lines above it. BaseData progress comes from a
 * DescribeTunnel every few seconds: channels TERMINATED / all and the records the service
 * has counted as consumed (channel_count). */
#include <ev.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/status_tty.h"
#include "lunnel/api.h"
#include "lunnel/host.h"
#include "lunnel/log.h"
#include "lunnel/metrics.h"

#define DESCRIBE_EVERY_S 2.0

struct status_tty {
    status_tty_config cfg;
    char *table_name, *tunnel_name, *tunnel_id;
    ev_timer timer;
    pthread_mutex_t mu; /* guards line/line_len: the log sink runs on any thread */
    char line[600];
    size_t line_len;
    double started, last_t, rate;
    int final; /* the last redraw shows the average rate of the whole run */
    uint64_t last_records;
    int have_rate;
    lunnel_api_call *describe;
    double last_describe;
    long long base_records; /* channel_count sum of BaseData channels; -1 unknown */
};

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k <= 0) return;
        p += k;
        n -= (size_t)k;
    }
}

static void log_sink(const char *line, size_t len, void *ud)
{
    status_tty *s = ud;
    pthread_mutex_lock(&s->mu);
    write_all(s->cfg.fd, "\r\033[K", 4);
    write_all(s->cfg.fd, line, len);
    write_all(s->cfg.fd, s->line, s->line_len);
    pthread_mutex_unlock(&s->mu);
}

static void human(char *out, size_t cap, double v)
{
    if (v >= 1e6)
        snprintf(out, cap, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(out, cap, "%.1fk", v / 1e3);
    else
        snprintf(out, cap, "%.0f", v);
}

void status_tty_format(const lunnel_metrics_summary *sum, double records_per_s,
                       long long base_records, int width, char *out, unsigned long cap)
{
    char rate[32], total[32], buf[1024];
    human(rate, sizeof rate, records_per_s);
    human(total, sizeof total, (double)sum->records);
    int n = snprintf(buf, sizeof buf, "%s rec/s | %s records | %s", rate, total,
                     sum->connected ? "connected" : "NOT READY");
    /* channels by state: only the non-zero ones, running first */
    static const int order[6] = {3, 0, 1, 2, 4, 5};
    n += snprintf(buf + n, sizeof buf - (size_t)n, " | channels");
    int any = 0;
    for (int k = 0; k < 6; k++) {
        int i = order[k];
        if (sum->channels_by_state[i] == 0) continue;
        n += snprintf(buf + n, sizeof buf - (size_t)n, " %s %d", lunnel_metrics_state_names[i],
                      sum->channels_by_state[i]);
        any = 1;
    }
    if (!any) n += snprintf(buf + n, sizeof buf - (size_t)n, " none");
    if (sum->tunnel_channels > 0)
        n += snprintf(buf + n, sizeof buf - (size_t)n, " | done %d/%d (%.0f%%)",
                      sum->tunnel_terminated, sum->tunnel_channels,
                      100.0 * sum->tunnel_terminated / sum->tunnel_channels);
    if (base_records >= 0) {
        char br[32];
        human(br, sizeof br, (double)base_records);
        n += snprintf(buf + n, sizeof buf - (size_t)n, " | base %s checkpointed", br);
    }
    if (sum->slowest_lag_s >= 0)
        n += snprintf(buf + n, sizeof buf - (size_t)n, " | max lag %.1fs (%s)", sum->slowest_lag_s,
                      sum->slowest_channel ? sum->slowest_channel : "?");
    if (sum->last_error[0])
        n += snprintf(buf + n, sizeof buf - (size_t)n, " | last error: %s", sum->last_error);
    /* one terminal line: cut at the width (the line must never wrap, or \r cannot erase it) */
    size_t len = strlen(buf);
    if (width > 1 && len > (size_t)(width - 1)) len = (size_t)(width - 1);
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\033') buf[i] = ' ';
    if (len >= cap) len = cap - 1;
    memcpy(out, buf, len);
    out[len] = 0;
}

static int term_width(int fd)
{
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10) return ws.ws_col;
    return 120;
}

static void on_describe(lunnel_api_result *r, void *ud)
{
    status_tty *s = ud;
    s->describe = NULL;
    if (r->err || !r->msg) return;
    Lunnel__Tunnel__DescribeTunnelResponse *m = (Lunnel__Tunnel__DescribeTunnelResponse *)r->msg;
    int all = (int)m->n_channels, done = 0, base = 0;
    long long base_records = 0;
    for (size_t i = 0; i < m->n_channels; i++) {
        Lunnel__Tunnel__ChannelInfo *c = m->channels[i];
        if (c->channel_status && strcmp(c->channel_status, "TERMINATED") == 0) done++;
        int is_base = (c->channel_type && strcmp(c->channel_type, "BaseData") == 0) ||
                      (c->channel_id && strncmp(c->channel_id, "BaseData_", 9) == 0);
        if (is_base) {
            base++;
            if (c->has_channel_count) base_records += c->channel_count;
        }
    }
    /* progress toward completion is only meaningful for channels that end (BaseData) */
    if (base > 0) {
        lunnel_metrics_tunnel_counts(s->cfg.metrics, all, done);
        s->base_records = base_records;
    }
}

static void ask_describe(status_tty *s, double now)
{
    if (!s->cfg.api || s->describe || now - s->last_describe < DESCRIBE_EVERY_S) return;
    s->last_describe = now;
    Lunnel__Tunnel__DescribeTunnelRequest req = LUNNEL__TUNNEL__DESCRIBE_TUNNEL_REQUEST__INIT;
    req.table_name = s->table_name;
    req.tunnel_name = s->tunnel_name;
    req.tunnel_id = s->tunnel_id;
    s->describe = lunnel_api_describe_tunnel(s->cfg.api, &req, on_describe, s);
}

static void redraw(status_tty *s)
{
    double now = ev_time();
    lunnel_metrics_summary sum;
    lunnel_metrics_summarize(s->cfg.metrics, s->cfg.worker, now, &sum);
    if (s->final && now > s->started) {
        s->rate = (double)sum.records / (now - s->started);
    } else if (s->last_t > 0 && now > s->last_t) {
        double inst = (double)(sum.records - s->last_records) / (now - s->last_t);
        s->rate = s->have_rate ? 0.5 * s->rate + 0.5 * inst : inst;
        s->have_rate = 1;
    }
    s->last_t = now;
    s->last_records = sum.records;
    char text[512];
    int width = term_width(s->cfg.fd);
    status_tty_format(&sum, s->rate, s->base_records, width, text, sizeof text);
    if (s->cfg.host) {
        lunnel_host_stats hs;
        lunnel_host_get_stats(s->cfg.host, &hs);
        if (hs.stuck_calls > 0) { /* the most urgent news goes first */
            char with[700];
            int k = snprintf(with, sizeof with, "STUCK: %s for %.0fs (%d call%s) | %s",
                             hs.stuck_channel, hs.oldest_stuck_s, hs.stuck_calls,
                             hs.stuck_calls > 1 ? "s" : "", text);
            if (k > width - 1 && width > 1) k = width - 1;
            if (k >= (int)sizeof text) k = (int)sizeof text - 1;
            if (k < 0) k = 0;
            memcpy(text, with, (size_t)k);
            text[k] = 0;
        }
    }
    pthread_mutex_lock(&s->mu);
    s->line_len = (size_t)snprintf(s->line, sizeof s->line, "%s", text);
    write_all(s->cfg.fd, "\r\033[K", 4);
    write_all(s->cfg.fd, s->line, s->line_len);
    pthread_mutex_unlock(&s->mu);
    ask_describe(s, now);
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    redraw(t->data);
}

status_tty *status_tty_start(const status_tty_config *cfg)
{
    status_tty *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cfg = *cfg;
    if (s->cfg.interval_s <= 0) s->cfg.interval_s = 0.5;
    s->table_name = cfg->table_name ? strdup(cfg->table_name) : NULL;
    s->tunnel_name = cfg->tunnel_name ? strdup(cfg->tunnel_name) : NULL;
    s->tunnel_id = cfg->tunnel_id ? strdup(cfg->tunnel_id) : NULL;
    s->base_records = -1;
    s->started = ev_time();
    pthread_mutex_init(&s->mu, NULL);
    ev_timer_init(&s->timer, timer_cb, s->cfg.interval_s, s->cfg.interval_s);
    s->timer.data = s;
    ev_timer_start(cfg->loop, &s->timer);
    lunnel_log_set_sink(log_sink, s);
    return s;
}

void status_tty_stop(status_tty *s)
{
    if (!s) return;
    ev_timer_stop(s->cfg.loop, &s->timer);
    if (s->describe) lunnel_api_cancel(s->describe);
    s->describe = NULL;
    s->cfg.api = NULL; /* no new DescribeTunnel from the last redraw */
    s->final = 1;
    redraw(s); /* the final numbers stay on screen, ended by a newline */
    lunnel_log_set_sink(NULL, NULL);
    pthread_mutex_lock(&s->mu);
    write_all(s->cfg.fd, "\n", 1);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_destroy(&s->mu);
    free(s->table_name);
    free(s->tunnel_name);
    free(s->tunnel_id);
    free(s);
}
