/* run_observe.c: wiring of metrics registry, metrics server and live status for `lunnel run`
 * (run_observe.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/client_options.h"
#include "cli/metrics_http.h"
#include "cli/run_observe.h"
#include "cli/status_tty.h"
#include "lunnel/log.h"
#include "lunnel/metrics.h"
#include "lunnel/options.h"

struct run_observe {
    lunnel_metrics *metrics;
    char *listen, *port_file;
    int status_on;
    metrics_http *server;
    status_tty *status;
};

run_observe *run_observe_new(const lunnel_opt_values *v)
{
    const char *listen = lunnel_opts_str(v, "metrics-listen");
    const char *fmt = lunnel_opts_str(v, "log-format");
    int status_on =
        !lunnel_opts_bool(v, "no-status") && isatty(2) && (!fmt || strcasecmp(fmt, "text") == 0);
    if (!listen && !status_on) return NULL;
    run_observe *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->metrics = lunnel_metrics_new();
    o->listen = listen ? strdup(listen) : NULL;
    const char *pf = lunnel_opts_str(v, "metrics-port-file");
    o->port_file = pf ? strdup(pf) : NULL;
    o->status_on = status_on;
    if (!o->metrics || (listen && !o->listen) || (pf && !o->port_file)) {
        run_observe_free(o);
        return NULL;
    }
    return o;
}

lunnel_metrics *run_observe_metrics(run_observe *o)
{
    return o ? o->metrics : NULL;
}

/* Written to a temporary name and renamed: a reader never sees a half-written port. */
static int write_port_file(const char *path, int port)
{
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n);
    if (!tmp) return -1;
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f) {
        fprintf(f, "%d\n", port);
        rc = fclose(f) == 0 && rename(tmp, path) == 0 ? 0 : -1;
    }
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}

int run_observe_start(run_observe *o, const run_observe_target *t, char *err, size_t cap)
{
    if (!o) return 0;
    if (o->listen) {
        metrics_http_config mc = {
            .loop = t->loop,
            .listen = o->listen,
            .metrics = o->metrics,
            .worker = t->worker,
            .host = t->host,
            .http = t->client ? t->client->http : NULL,
        };
        o->server = metrics_http_start(&mc, err, cap);
        if (!o->server) return -1;
        int port = metrics_http_port(o->server);
        char url[320], ps[16];
        const char *colon = strrchr(o->listen, ':');
        snprintf(url, sizeof url, "http://%.*s:%d/metrics", (int)(colon - o->listen), o->listen,
                 port);
        snprintf(ps, sizeof ps, "%d", port);
        lunnel_log_kv(LUNNEL_LOG_INFO, "metrics", "metrics listening", "url", url, "port", ps,
                      NULL);
        if (o->port_file && write_port_file(o->port_file, port) != 0) {
            snprintf(err, cap, "--metrics-port-file %s: cannot write", o->port_file);
            return -1;
        }
    }
    if (o->status_on) {
        status_tty_config sc = {
            .loop = t->loop,
            .metrics = o->metrics,
            .worker = t->worker,
            .api = t->client ? t->client->api : NULL,
            .table_name = t->table_name,
            .tunnel_name = t->tunnel_name,
            .tunnel_id = t->tunnel_id,
            .host = t->host,
            .fd = 2,
            .interval_s = 0.5,
        };
        o->status = status_tty_start(&sc);
    }
    return 0;
}

void run_observe_free(run_observe *o)
{
    if (!o) return;
    status_tty_stop(o->status);
    metrics_http_stop(o->server);
    lunnel_metrics_free(o->metrics);
    free(o->listen);
    free(o->port_file);
    free(o);
}
