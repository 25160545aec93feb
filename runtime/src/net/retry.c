/* retry.c: backoff arithmetic of retry.h (policies, jittered delays, window check).
 *
 * It stays in net because what it knows is the transport's: http.c runs each call's retry
 * loop (attempts, delays, one window across them) and asks this file for the numbers. Which
 * policy a call gets, and which failures are retriable at all, the tunnel decides (api.c
 * picks the policy per operation; error_class.c supplies the retry rule). */
#include "lunnel/retry.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

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

/* The process seed comes from the kernel (getrandom), so two processes started at the same
 * moment draw different delays: a fleet must not reconnect in lockstep. Each thread then runs
 * its own xorshift stream, seeded from the process seed and a per-thread counter. */
static uint64_t seed_value;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void seed_init(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    }
    seed_value = v;
}

uint64_t lunnel_random_u64(void)
{
    static __thread uint64_t s;
    static uint64_t threads;
    if (s == 0) {
        pthread_once(&seed_once, seed_init);
        uint64_t x = seed_value ^ (__atomic_add_fetch(&threads, 1, __ATOMIC_RELAXED) << 32);
        s = splitmix64(&x);
        if (s == 0) s = 0x9e3779b97f4a7c15ULL;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

double lunnel_retry_rand01(void)
{
    return (double)(lunnel_random_u64() >> 11) / 9007199254740992.0;
}
