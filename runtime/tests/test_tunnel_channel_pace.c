/* test_tunnel_channel_pace.c: the failure pacing of persistent failures (lunnel_pace): 1 s
 * doubling to 60 s with up to 25% jitter, never below the step; a healthy run as long as
 * the longest wait starts over; and the per-process randomness of the jitter source. */
#include <stdint.h>

#include "lunnel/channel.h"
#include "lunnel/retry.h"
#include "testutil.h"

int main(void)
{
    lunnel_pace p;
    lunnel_pace_init(&p, LUNNEL_PACE_BASE_MS, LUNNEL_PACE_MAX_MS);
    /* no jitter (rand 0): 1, 2, 4, 8, 16, 32, 60, 60 s */
    double expect[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
    for (int i = 0; i < 8; i++) {
        double d = lunnel_pace_fail(&p, 0, 0.0);
        CHECK(d > expect[i] - 1e-6 && d < expect[i] + 1e-6);
    }
    /* jitter: within [step, 1.25 step) */
    lunnel_pace_init(&p, 1000, 60000);
    double d = lunnel_pace_fail(&p, 0, 0.999999);
    CHECK(d >= 1000 && d < 1250);
    d = lunnel_pace_fail(&p, 0, 0.5);
    CHECK(d > 2249.9 && d < 2250.1);
    /* out-of-range randomness is clamped: never below the step, never above 1.25 x */
    d = lunnel_pace_fail(&p, 0, -3);
    CHECK(d > 3999.9 && d < 4000.1);
    d = lunnel_pace_fail(&p, 0, 7);
    CHECK(d >= 8000 && d < 10000);
    /* a short healthy run does not reset; a run as long as the longest wait does */
    d = lunnel_pace_fail(&p, 59999, 0);
    CHECK(d > 15999.9 && d < 16000.1);
    d = lunnel_pace_fail(&p, 60000, 0);
    CHECK(d > 999.9 && d < 1000.1);
    CHECK_INT(p.step, 1);
    /* the bound stated in README: at most one attempt per second per failing channel, and
     * over ten minutes of failure far fewer than one per second */
    lunnel_pace_init(&p, LUNNEL_PACE_BASE_MS, LUNNEL_PACE_MAX_MS);
    double t = 0;
    int attempts = 0;
    while (t < 600000) {
        double w = lunnel_pace_fail(&p, 0, lunnel_retry_rand01());
        CHECK(w >= 1000);
        t += w;
        attempts++;
    }
    CHECK(attempts <= 17); /* 1+2+...+32 = 63 s, then >= 60 s each: 6 + 537/60 */
    /* a degenerate configuration still paces */
    lunnel_pace_init(&p, 0, 0);
    CHECK(lunnel_pace_fail(&p, 0, 0) >= 1000);

    /* the jitter source: uniform-ish in [0,1), not stuck */
    double lo = 1, hi = 0, sum = 0;
    for (int i = 0; i < 10000; i++) {
        double r = lunnel_retry_rand01();
        CHECK(r >= 0 && r < 1);
        if (r < lo) lo = r;
        if (r > hi) hi = r;
        sum += r;
    }
    CHECK(lo < 0.01 && hi > 0.99);
    CHECK(sum / 10000 > 0.45 && sum / 10000 < 0.55);
    CHECK(lunnel_random_u64() != lunnel_random_u64());
    TEST_DONE();
}
