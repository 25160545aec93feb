/* retry.c: backoff arithmetic of retry.h (policies, jittered delays, window check). */
#include "lunnel/retry.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

const lunnel_retry_policy lunnel_retry_read_records = {16.0, 3000.0, 75000.0, 0.33};
const lunnel_retry_policy lunnel_retry_default = {100.0, 2000.0, 35000.0, 0.33};
const lunnel_retry_policy lunnel_retry_none = {0.0, 0.0, 0.0, 0.0};

double lunnel_retry_base_ms(const lunnel_retry_policy *p, int retry)
{
    double d = p->initial_ms;
    for (int i = 0; i < retry && d < p->max_ms; i++)
        d *= 2.0;
    return d > p->max_ms ? p->max_ms : d;
}

double lunnel_retry_delay_ms(const lunnel_retry_policy *p, int retry, double rand01)
{
    double j = p->jitter < 0 ? 0 : (p->jitter > 1 ? 1 : p->jitter);
    if (rand01 < 0) rand01 = 0;
    if (rand01 >= 1) rand01 = 0.999999;
    return lunnel_retry_base_ms(p, retry) * (1.0 - j + 2.0 * j * rand01);
}

int lunnel_retry_allowed(const lunnel_retry_policy *p, double elapsed_ms, double delay_ms)
{
    return p->window_ms > 0 && elapsed_ms + delay_ms <= p->window_ms;
}

double lunnel_retry_rand01(void)
{
    /* xorshift per thread, seeded from the clock and the thread's stack address. */
    static __thread uint64_t s;
    if (s == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
        if (s == 0) s = 0x9e3779b97f4a7c15ULL;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (double)(s >> 11) / 9007199254740992.0;
}
