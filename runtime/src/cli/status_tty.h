/* status_tty.h: the live status line of `lunnel run` on a terminal: records/s, channels by
 * state, the slowest channel's stream lag, BaseData progress (channels done / all, records
 * checkpointed, from DescribeTunnel) and the last error, redrawn in place on stderr twice a
 * second. Log lines keep working: a log sink clears the status line, writes the log line
 * and redraws the status under it. Enabled by `lunnel run` only when stderr is a TTY, the
 * log format is text and --no-status is absent. Loop thread only (the log sink is
 * thread-safe). */
#ifndef LUNNEL_CLI_STATUS_TTY_H
#define LUNNEL_CLI_STATUS_TTY_H

struct ev_loop;
struct lunnel_worker;
struct lunnel_metrics;
struct lunnel_api;
struct lunnel_host;

typedef struct status_tty status_tty;

typedef struct status_tty_config {
    struct ev_loop *loop;
    struct lunnel_metrics *metrics; /* borrowed */
    struct lunnel_worker *worker;   /* borrowed */
    struct lunnel_api *api;         /* borrowed: DescribeTunnel for BaseData progress; NULL off */
    const char *table_name, *tunnel_name, *tunnel_id; /* copied */
    struct lunnel_host *host; /* borrowed: stuck script calls lead the line; NULL off */
    int fd;                   /* where to draw (2) */
    double interval_s;        /* redraw period (0.5) */
} status_tty_config;

status_tty *status_tty_start(const status_tty_config *cfg);
/* Clears the line, restores the log sink, prints a final summary line. */
void status_tty_stop(status_tty *s);

/* One status line for the numbers given (pure; exposed for tests and for the final line). */
struct lunnel_metrics_summary;
void status_tty_format(const struct lunnel_metrics_summary *sum, double records_per_s,
                       long long base_records, int width, char *out, unsigned long cap);

#endif
