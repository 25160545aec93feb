/* retry.h: retry windows with exponential backoff and jitter for protocol calls
 * (PROTOCOL.md section 1: ReadRecords 16 ms..3 s within 75 s, others 100 ms..2 s within
 * 35 s, jitter 0.33). Pure arithmetic: the HTTP layer supplies time and randomness. */
#ifndef LUNNEL_RETRY_H
#define LUNNEL_RETRY_H

#include <stdint.h>

typedef struct lunnel_retry_policy {
    double initial_ms; /* delay before the first retry (before jitter) */
    double max_ms;     /* cap of the doubling delay (before jitter) */
    double window_ms; /* no retry starts later than this after the first attempt; 0 = never retry */
    double jitter;    /* 0..1: the delay is uniformly spread over base*(1-j) .. base*(1+j) */
} lunnel_retry_policy;

/* The official client's numbers. */
extern const lunnel_retry_policy lunnel_retry_read_records; /* 16, 3000, 75000, 0.33 */
extern const lunnel_retry_policy lunnel_retry_default;      /* 100, 2000, 35000, 0.33 */
extern const lunnel_retry_policy lunnel_retry_none;         /* single attempt */

/* Base delay before retry number `retry` (0 = first retry): min(initial * 2^retry, max). */
double lunnel_retry_base_ms(const lunnel_retry_policy *p, int retry);

/* Jittered delay: base * (1 - jitter + 2 * jitter * rand01), rand01 in [0, 1). */
double lunnel_retry_delay_ms(const lunnel_retry_policy *p, int retry, double rand01);

/* 1 when a retry waiting `delay_ms` may still start: elapsed_ms + delay_ms <= window_ms. */
int lunnel_retry_allowed(const lunnel_retry_policy *p, double elapsed_ms, double delay_ms);

/* A uniform double in [0, 1) for jitter: thread-safe, seeded per process from the kernel
 * (never the same sequence in two processes). */
double lunnel_retry_rand01(void);
/* 64 random bits from the same source (seeds of the Lua states' math.random). */
uint64_t lunnel_random_u64(void);

#endif
