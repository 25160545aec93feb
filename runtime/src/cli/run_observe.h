/* run_observe.h: the observability of `lunnel run` in one place, so cmd_run.c only calls
 * three functions: the metrics registry (metrics.h) fed by the worker, the /metrics /healthz
 * /readyz server (metrics_http.h, --metrics-listen) and the live status line (status_tty.h,
 * on a TTY with text logs unless --no-status). With both off nothing is created and the
 * worker's hooks see a NULL registry (no cost at all). */
#ifndef LUNNEL_CLI_RUN_OBSERVE_H
#define LUNNEL_CLI_RUN_OBSERVE_H

#include <stddef.h>

struct ev_loop;
struct lunnel_worker;
struct lunnel_host;
struct lunnel_metrics;
struct lunnel_opt_values;
struct lunnel_client;

typedef struct run_observe run_observe;

/* Reads --metrics-listen, --metrics-port-file, --no-status, --log-format. Returns NULL when
 * everything is off (or out of memory: then metrics are simply off). */
run_observe *run_observe_new(const struct lunnel_opt_values *v);
/* The registry to put in lunnel_worker_config.metrics (NULL when off). */
struct lunnel_metrics *run_observe_metrics(run_observe *o);

typedef struct run_observe_target {
    struct ev_loop *loop;
    struct lunnel_worker *worker;
    struct lunnel_host *host;
    const struct lunnel_client *client;
    const char *table_name, *tunnel_name, *tunnel_id;
} run_observe_target;

/* Binds the metrics server (logging and writing the port), starts the status line.
 * 0, or -1 with a one-line message in err (bad or busy address, port file not writable). */
int run_observe_start(run_observe *o, const run_observe_target *t, char *err, size_t cap);
/* Stops everything and frees o (NULL is fine). */
void run_observe_free(run_observe *o);

#endif
