/* daemon.c: the bounds of the daemon loop of `lunnel run` (worker.c reconnects a lost client
 * after a random delay, like the official TunnelWorkerDaemon). A real daemon keeps trying
 * while the service is down; but an endpoint that never answers (a typo, a firewall) would
 * then look like a hang. So Connect failures with retriable errors (unreachable, timeouts,
 * 503) are retried for --connect-retry-window (default 10 minutes; 0 = forever, for
 * supervisors that prefer that), then the worker stops with exit 1 and one clear line naming
 * the endpoint's last error. Any successful Connect resets the window. Loop thread only. */
#include <stdio.h>

#include "lunnel/log.h"
#include "run_internal.h"

int run_connect_give_up(run_worker *w, const char *error_line)
{
    double now = run_now(w);
    if (w->connect_failing_since == 0) w->connect_failing_since = now;
    double window = w->cfg.connect_retry_window_s;
    if (window <= 0 || now - w->connect_failing_since < window) return 0;
    char s[32];
    snprintf(s, sizeof s, "%.1f", now - w->connect_failing_since);
    lunnel_log_kv(LUNNEL_LOG_ERROR, "worker",
                  "giving up: cannot connect within --connect-retry-window", "failing_for_s", s,
                  "error", error_line, NULL);
    snprintf(w->exit_reason, sizeof w->exit_reason,
             "cannot connect for %s s (--connect-retry-window): %s", s, error_line);
    run_worker_finish(w, LUNNEL_OUTCOME_FAILED);
    return 1;
}

void run_set_exit_reason(run_worker *w, const char *what, const lunnel_error *err)
{
    if (w->exit_reason[0]) return; /* the first cause is the one worth reading */
    char line[1024];
    lunnel_error_format(err, line, sizeof line);
    snprintf(w->exit_reason, sizeof w->exit_reason, "%s: %s", what, line);
}
