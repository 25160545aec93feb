/* hooks_bench.c: the loop-thread cost of the metrics hooks per batch, measured directly
 * (built by CMake from the tunnel archive, run by bench/metrics/run.sh): the calls channel.c makes
 * for one ReadRecords response of 500 records and its completion, repeated; and one /metrics render
 * of 16 channels. Whole-process CPU comparisons of `lunnel run` are noisy to a few percent
 * on a shared machine; this shows the part metrics can add at all. Prints two lines:
 *   hook_ns_per_batch=N  render_us=N */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lunnel/metrics.h"
#include "lunnel/record.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    enum { BATCH = 500, CHANNELS = 16, ROUNDS = 200000 };
    static lunnel_record_range r[BATCH];
    for (int i = 0; i < BATCH; i++)
        r[i].action = (uint8_t)(1 + i % 3);
    lunnel_metrics *m = lunnel_metrics_new();
    lunnel_metrics_channel *ch[CHANNELS];
    char id[32];
    for (int i = 0; i < CHANNELS; i++) {
        snprintf(id, sizeof id, "BaseData_p%d", i);
        ch[i] = lunnel_metrics_channel_get(m, id);
    }
    lunnel_host_completion c;
    memset(&c, 0, sizeof c);
    c.event = LUNNEL_HOST_EV_BATCH;
    c.record_count = BATCH;
    double t0 = now_s();
    for (int k = 0; k < ROUNDS; k++) {
        lunnel_metrics_channel *x = ch[k % CHANNELS];
        double t = 1000.0 + k * 1e-4;
        c.elapsed_s = 0.001 + (k % 7) * 1e-3;
        lunnel_metrics_read_start(x, t);
        lunnel_metrics_read_done(x, t + 0.002, 180000, BATCH, 1);
        lunnel_metrics_batch_done(x, &c, r, BATCH, t + 0.003);
    }
    double t1 = now_s();
    lunnel_metrics_buf b = {0};
    int renders = 2000;
    for (int i = 0; i < renders; i++) {
        lunnel_buf_reset(&b);
        lunnel_metrics_render(m, NULL, 2000.0, &b);
    }
    double t2 = now_s();
    printf("hook_ns_per_batch=%.0f render_us=%.1f render_bytes=%zu\n", (t1 - t0) / ROUNDS * 1e9,
           (t2 - t1) / renders * 1e6, b.len);
    lunnel_buf_free(&b);
    lunnel_metrics_free(m);
    return 0;
}
