/* test_tunnel_metrics.c: the metrics registry of `lunnel run` (metrics.h) without a worker:
 * histogram bucket placement, per-action counting from record ranges, the bounded error-code
 * label set, NULL-safety of the hooks (metrics off), and the Prometheus text it renders
 * (every sample line well-formed, counters equal to what was fed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/metrics.h"
#include "lunnel/record.h"
#include "testutil.h"

/* Value of the sample line starting with `key ` in text; -1 when absent. */
static double sample(const char *text, const char *key)
{
    size_t k = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, k) == 0 && p[k] == ' ') return strtod(p + k + 1, NULL);
    }
    return -1;
}

/* Every non-comment line is `name{labels} value` or `name value`. */
static int well_formed(const char *text)
{
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        if (!e) return 0; /* the format ends every line with \n */
        if (*p != '#') {
            const char *sp = memchr(p, ' ', (size_t)(e - p));
            if (!sp || sp == p || sp + 1 >= e) return 0;
            char *end;
            strtod(sp + 1, &end);
            if (end != e) return 0;
        }
        p = e + 1;
    }
    return 1;
}

int main(void)
{
    /* histogram: a value equal to a bound goes in that bucket (le), above the last in +Inf */
    lunnel_metrics_histogram h;
    memset(&h, 0, sizeof h);
    lunnel_metrics_histogram_observe(&h, 0.0005);
    lunnel_metrics_histogram_observe(&h, 0.0006);
    lunnel_metrics_histogram_observe(&h, 100);
    CHECK_INT(h.counts[0], 1);
    CHECK_INT(h.counts[1], 1);
    CHECK_INT(h.counts[LUNNEL_METRICS_BUCKETS], 1);
    CHECK_INT(h.count, 3);

    /* metrics off: every hook takes NULL */
    CHECK(lunnel_metrics_channel_get(NULL, "x") == NULL);
    lunnel_metrics_read_start(NULL, 1);
    lunnel_metrics_read_done(NULL, 1, 10, 1, 1);
    lunnel_metrics_checkpoint(NULL, 1, 1);
    lunnel_metrics_error(NULL, "c", "t");
    lunnel_metrics_channel_error(NULL, "c", "t");

    lunnel_metrics *m = lunnel_metrics_new();
    CHECK(m != NULL);
    lunnel_metrics_channel *a = lunnel_metrics_channel_get(m, "BaseData_p0");
    lunnel_metrics_channel *b = lunnel_metrics_channel_get(m, "stream-1");
    CHECK(a && b && a != b);
    CHECK(lunnel_metrics_channel_get(m, "BaseData_p0") == a); /* same id, same counters */

    lunnel_record_range r[5];
    memset(r, 0, sizeof r);
    r[0].action = LUNNEL_ACTION_PUT;
    r[1].action = LUNNEL_ACTION_PUT;
    r[2].action = LUNNEL_ACTION_UPDATE;
    r[3].action = LUNNEL_ACTION_DELETE;
    r[4].action = LUNNEL_ACTION_PUT;
    lunnel_host_completion ok = {.event = LUNNEL_HOST_EV_BATCH,
                                 .status = LUNNEL_HOST_OK,
                                 .elapsed_s = 0.003,
                                 .record_count = 5,
                                 .newest_timestamp_us = 1000000};
    lunnel_host_completion bad = ok;
    bad.status = LUNNEL_HOST_ESCRIPT;
    bad.error = "t.lua:3: boom";
    lunnel_metrics_read_start(b, 10.0);
    lunnel_metrics_read_done(b, 10.25, 4096, 5, 1);
    lunnel_metrics_batch_done(b, &ok, r, 5, 11.0);
    lunnel_metrics_batch_done(b, &bad, r, 5, 11.0); /* failed: no records counted */
    lunnel_metrics_batch_done(a, &ok, r, 2, 11.0);
    lunnel_metrics_checkpoint(a, 12.0, 1);
    lunnel_metrics_checkpoint(a, 13.0, 0);

    /* error codes: a bounded label set, the overflow counts as "other" */
    char code[32];
    for (int i = 0; i < 40; i++) {
        snprintf(code, sizeof code, "Code%d", i);
        lunnel_metrics_error(m, code, "x");
    }
    lunnel_metrics_error(m, "Code0", "last one");

    lunnel_metrics_summary s;
    lunnel_metrics_summarize(m, NULL, 20.0, &s);
    CHECK_INT(s.records, 7);
    CHECK_INT(s.batches, 2);
    CHECK_INT(s.batches_failed, 1);
    CHECK_INT(s.checkpoints, 1);
    CHECK_INT(s.errors, 42); /* 40 + 1 + the failed batch */
    CHECK_STR(s.last_error, "last one");

    lunnel_metrics_buf out = {0};
    lunnel_metrics_render(m, NULL, 20.0, &out);
    CHECK(!out.oom && out.p);
    const char *t = out.p ? out.p : "";
    CHECK(well_formed(t));
    CHECK_INT(sample(t, "lunnel_records_processed_total{channel=\"stream-1\",action=\"PUT\"}"), 3);
    CHECK_INT(sample(t, "lunnel_records_processed_total{channel=\"stream-1\",action=\"UPDATE\"}"),
              1);
    CHECK_INT(sample(t, "lunnel_records_processed_total{channel=\"stream-1\",action=\"DELETE\"}"),
              1);
    CHECK_INT(sample(t, "lunnel_records_processed_total{channel=\"BaseData_p0\",action=\"PUT\"}"),
              2);
    CHECK_INT(sample(t, "lunnel_batches_processed_total{channel=\"stream-1\",result=\"failed\"}"),
              1);
    CHECK_INT(sample(t, "lunnel_process_seconds_count"), 3);
    CHECK_INT(sample(t, "lunnel_process_seconds_bucket{le=\"0.0025\"}"), 0);
    CHECK_INT(sample(t, "lunnel_process_seconds_bucket{le=\"0.005\"}"), 3);
    CHECK_INT(sample(t, "lunnel_read_records_seconds_bucket{le=\"0.1\"}"), 0);
    CHECK_INT(sample(t, "lunnel_read_records_seconds_bucket{le=\"0.25\"}"), 1);
    CHECK_INT(sample(t, "lunnel_read_bytes_total{channel=\"stream-1\"}"), 4096);
    CHECK_INT(sample(t, "lunnel_checkpoints_total{channel=\"BaseData_p0\",result=\"failed\"}"), 1);
    CHECK_INT(sample(t, "lunnel_errors_total{code=\"Code0\"}"), 2);
    CHECK_INT(sample(t, "lunnel_errors_total{code=\"script_error\"}"), 1);
    CHECK(sample(t, "lunnel_errors_total{code=\"other\"}") >= 1);
    CHECK(sample(t, "lunnel_errors_total{code=\"Code39\"}") < 0);
    free(out.p);

    char why[64];
    CHECK_INT(lunnel_metrics_ready(NULL, 1.0, why, sizeof why), 0);
    lunnel_metrics_free(m);

    /* 100,000 channels (ten times the 10,000 of a large tunnel): each id added once, found
     * again as the same counters through the hash index across its growths, and rendered in
     * first-seen order. */
    enum { MANY = 100000 };
    m = lunnel_metrics_new();
    lunnel_metrics_channel **seen = calloc(MANY, sizeof *seen);
    CHECK(m && seen);
    int distinct = 1, same = 1;
    char id[32];
    for (int i = 0; seen && i < MANY; i++) {
        snprintf(id, sizeof id, "ch-%d", i);
        seen[i] = lunnel_metrics_channel_get(m, id);
        if (!seen[i] || (i && seen[i] == seen[i - 1])) distinct = 0;
    }
    for (int i = 0; seen && i < MANY; i++) {
        snprintf(id, sizeof id, "ch-%d", i);
        if (lunnel_metrics_channel_get(m, id) != seen[i]) same = 0;
    }
    CHECK(distinct);
    CHECK(same);
    lunnel_metrics_read_done(seen ? seen[MANY - 1] : NULL, 1.0, 7, 1, 1);
    lunnel_metrics_buf many = {0};
    lunnel_metrics_render(m, NULL, 2.0, &many);
    CHECK(!many.oom && many.p);
    const char *first = many.p ? strstr(many.p, "channel=\"ch-0\"") : NULL;
    const char *last = many.p ? strstr(many.p, "channel=\"ch-99999\"") : NULL;
    CHECK(first && last && first < last);
    CHECK_INT(sample(many.p ? many.p : "", "lunnel_read_bytes_total{channel=\"ch-99999\"}"), 7);
    free(many.p);
    free(seen);
    lunnel_metrics_free(m);
    TEST_DONE();
}
