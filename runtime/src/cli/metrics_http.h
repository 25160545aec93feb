/* metrics_http.h: the observability endpoints of `lunnel run --metrics-listen ADDR`, a small
 * HTTP/1.1 server on the run's libev loop (one request per connection, Connection: close):
 *   GET /metrics  Prometheus text format 0.0.4 (tunnel counters of metrics.h, Lua host,
 *                 http client, process CPU)
 *   GET /healthz  200 while the loop turns: answered by the loop itself, and 503 when its
 *                 1 s tick is stale (the loop was blocked)
 *   GET /readyz   200 when connected with a fresh heartbeat, else 503 with the reason
 * Everything runs on the loop thread, so rendering reads the loop's counters directly. */
#ifndef LUNNEL_CLI_METRICS_HTTP_H
#define LUNNEL_CLI_METRICS_HTTP_H

#include <stddef.h>

struct ev_loop;
struct lunnel_worker;
struct lunnel_host;
struct lunnel_http;
struct lunnel_metrics;

typedef struct metrics_http metrics_http;

typedef struct metrics_http_config {
    struct ev_loop *loop;
    const char *listen; /* "HOST:PORT" (PORT 0 = any free port); "[::1]:PORT" for IPv6 */
    struct lunnel_metrics *metrics; /* borrowed */
    struct lunnel_worker *worker;   /* borrowed; may be set later with metrics_http_set_worker */
    struct lunnel_host *host;       /* borrowed; NULL: no host metrics */
    struct lunnel_http *http;       /* borrowed; NULL: no http client metrics */
} metrics_http_config;

/* Binds and listens; NULL with a one-line message in err when the address is bad or
 * taken. The bound port is in metrics_http_port(). */
metrics_http *metrics_http_start(const metrics_http_config *cfg, char *err, size_t err_cap);
int metrics_http_port(const metrics_http *s);
void metrics_http_set_worker(metrics_http *s, struct lunnel_worker *w);
/* Closes the listener and open connections. */
void metrics_http_stop(metrics_http *s);

#endif
