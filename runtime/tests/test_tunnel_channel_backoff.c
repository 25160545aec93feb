/* test_tunnel_channel_backoff.c: stream read backoff bounds (20 ms x5, jitter 0.25, cap)
 * and the "full batch" rule (may_more_record, else > 500 records or > 900 KB). */
#include "lunnel/channel.h"
#include "testutil.h"

int main(void)
{
    lunnel_backoff b;
    lunnel_backoff_init(&b, 5000);
    /* un-jittered midpoint (rand 0.5): 20, 100, 500, 2500, 5000, 5000 */
    double expect[] = {20, 100, 500, 2500, 5000, 5000};
    for (int i = 0; i < 6; i++) {
        double d = lunnel_backoff_next(&b, 0.5);
        CHECK(d > expect[i] - 1e-9 && d < expect[i] + 1e-9);
    }
    /* reset goes back to the base */
    lunnel_backoff_reset(&b);
    double d = lunnel_backoff_next(&b, 0.5);
    CHECK(d > 19.999 && d < 20.001);
    /* jitter bounds: within +-25% and never above the cap */
    lunnel_backoff_reset(&b);
    d = lunnel_backoff_next(&b, 0.0);
    CHECK(d >= 15.0 - 1e-9 && d <= 15.0 + 1e-9);
    lunnel_backoff_reset(&b);
    d = lunnel_backoff_next(&b, 0.999999);
    CHECK(d < 25.0 && d > 24.99);
    for (int round = 0; round < 1000; round++) {
        double r = (double)((round * 7919) % 1000) / 1000.0;
        d = lunnel_backoff_next(&b, r);
        CHECK(d >= 0 && d <= 5000.0);
    }
    /* a small cap bounds everything, base included */
    lunnel_backoff_init(&b, 10);
    CHECK(lunnel_backoff_next(&b, 0.999) <= 10.0);
    CHECK(lunnel_backoff_next(&b, 0.999) <= 10.0);
    /* a non-positive cap means the default 5 s */
    lunnel_backoff_init(&b, 0);
    CHECK(b.max_ms > 4999 && b.max_ms < 5001);
    /* out-of-range randomness is clamped */
    lunnel_backoff_init(&b, 5000);
    d = lunnel_backoff_next(&b, -3);
    CHECK(d >= 15 - 1e-9 && d <= 25);
    d = lunnel_backoff_next(&b, 7);
    CHECK(d >= 75 - 1e-9 && d <= 125);

    /* full-batch rule */
    CHECK_INT(lunnel_batch_is_full(1, 1, 0, 0), 1);
    CHECK_INT(lunnel_batch_is_full(1, 0, 1000, 2000000), 0); /* the field decides when sent */
    CHECK_INT(lunnel_batch_is_full(0, 0, 500, 0), 0);
    CHECK_INT(lunnel_batch_is_full(0, 0, 501, 0), 1);
    CHECK_INT(lunnel_batch_is_full(0, 0, 1, 900 * 1024), 0);
    CHECK_INT(lunnel_batch_is_full(0, 0, 1, 900 * 1024 + 1), 1);
    TEST_DONE();
}
