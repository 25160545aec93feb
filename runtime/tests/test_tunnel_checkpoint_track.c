/* test_tunnel_checkpoint_track.c: the checkpointer stores only the token of the newest batch
 * that, with every batch before it, was handled; manual commit marks a prefix; sequence
 * numbers start at GetCheckpoint + 1, advance per accepted checkpoint, resync on mismatch. */
#include "lunnel/channel.h"
#include "testutil.h"

int main(void)
{
    lunnel_cptrack t;
    lunnel_cptrack_init(&t, 8); /* GetCheckpoint said 7 */
    CHECK_INT(t.sequence, 8);
    CHECK(lunnel_cptrack_pending(&t) == NULL);

    uint64_t b0 = lunnel_cptrack_add(&t, "t0");
    uint64_t b1 = lunnel_cptrack_add(&t, "t1");
    uint64_t b2 = lunnel_cptrack_add(&t, "t2");
    CHECK_INT(b0, 0);
    CHECK_INT(b2, 2);
    CHECK_INT(lunnel_cptrack_outstanding(&t), 3);

    /* out of order: b1 handled before b0 -> nothing committable yet */
    CHECK_INT(lunnel_cptrack_mark(&t, b1), 0);
    CHECK(lunnel_cptrack_pending(&t) == NULL);
    /* b0 handled -> b0 and b1 fold, t1 committable */
    CHECK_INT(lunnel_cptrack_mark(&t, b0), 1);
    CHECK_STR(lunnel_cptrack_pending(&t), "t1");
    CHECK_INT(lunnel_cptrack_outstanding(&t), 1);
    /* marking again / unknown numbers are ignored */
    CHECK_INT(lunnel_cptrack_mark(&t, b0), 0);
    CHECK_INT(lunnel_cptrack_mark(&t, 99), 0);

    /* checkpoint accepted: sequence moves, nothing pending */
    lunnel_cptrack_accepted(&t, "t1");
    CHECK_INT(t.sequence, 9);
    CHECK(lunnel_cptrack_pending(&t) == NULL);
    CHECK_STR(t.checkpointed, "t1");

    /* a checkpoint call in flight while the next batch completes: pending moves on */
    CHECK_INT(lunnel_cptrack_mark(&t, b2), 1);
    CHECK_STR(lunnel_cptrack_pending(&t), "t2");
    lunnel_cptrack_resync(&t, 20);
    CHECK_INT(t.sequence, 21);

    /* many batches: ring growth keeps order */
    uint64_t nos[40];
    char tok[16];
    for (int i = 0; i < 40; i++) {
        snprintf(tok, sizeof tok, "k%d", i);
        nos[i] = lunnel_cptrack_add(&t, tok);
    }
    for (int i = 39; i >= 1; i--)
        lunnel_cptrack_mark(&t, nos[i]);
    CHECK_STR(lunnel_cptrack_pending(&t), "t2"); /* k0 not handled: nothing past t2 */
    lunnel_cptrack_mark(&t, nos[0]);
    CHECK_STR(lunnel_cptrack_pending(&t), "k39");
    CHECK_INT(lunnel_cptrack_outstanding(&t), 0);

    /* manual commit: commit of batch k marks every batch up to k */
    uint64_t m0 = lunnel_cptrack_add(&t, "m0");
    uint64_t m1 = lunnel_cptrack_add(&t, "m1");
    uint64_t m2 = lunnel_cptrack_add(&t, "m2");
    (void)m0;
    CHECK_INT(lunnel_cptrack_mark_through(&t, m1), 1);
    CHECK_STR(lunnel_cptrack_pending(&t), "m1");
    CHECK_INT(lunnel_cptrack_outstanding(&t), 1);
    CHECK_INT(lunnel_cptrack_mark_through(&t, m0), 0); /* older than what is folded */
    CHECK_INT(lunnel_cptrack_mark_through(&t, m2), 1);
    CHECK_STR(lunnel_cptrack_pending(&t), "m2");
    lunnel_cptrack_free(&t);

    /* an interleaving with wrap-around of the ring */
    lunnel_cptrack_init(&t, 1);
    for (int round = 0; round < 100; round++) {
        snprintf(tok, sizeof tok, "r%d", round);
        uint64_t n = lunnel_cptrack_add(&t, tok);
        if (round % 3 == 2) {
            lunnel_cptrack_mark_through(&t, n);
            CHECK_STR(lunnel_cptrack_pending(&t), tok);
        }
    }
    CHECK_INT(lunnel_cptrack_outstanding(&t), 1); /* r99 not marked */
    CHECK_STR(lunnel_cptrack_pending(&t), "r98");
    lunnel_cptrack_free(&t);
    TEST_DONE();
}
