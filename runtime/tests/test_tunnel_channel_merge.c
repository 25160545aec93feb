/* test_tunnel_channel_merge.c: the heartbeat contract as pure table logic (channel.h):
 * higher version wins (server on a tie), missing channels stop, CLOSING drains, CLOSE and
 * TERMINATED stop, new OPEN starts, new CLOSING is declined, re-offers restart; at scale
 * (200,000 channels, the table sorted for O(n log n) merges) every decision is counted
 * exactly and duplicate listings are decided once. */
#include <stdlib.h>

#include "lunnel/channel.h"
#include "testutil.h"

#define V(id_, ver_, st_) ((lunnel_channel_view){(char *)(id_), (ver_), LUNNEL_CHANNEL_##st_})

typedef struct rec {
    int n;
    lunnel_merge_action action[16];
    char id[16][32];
} rec;

static void on_merge(void *ud, lunnel_merge_action a, lunnel_chtable_entry *e,
                     const lunnel_channel_view *s)
{
    rec *r = ud;
    if (r->n >= 16) return;
    r->action[r->n] = a;
    snprintf(r->id[r->n], sizeof r->id[0], "%s", e ? e->view.id : s->id);
    r->n++;
}

static lunnel_merge_action find(const rec *r, const char *id)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->id[i], id) == 0) return r->action[i];
    return (lunnel_merge_action)-1;
}

static void test_merge_one(void)
{
    lunnel_channel_view l, s;
    /* unknown channel */
    s = V("a", 1, OPEN);
    CHECK_INT(lunnel_channel_merge_one(NULL, &s), LUNNEL_MERGE_START);
    s = V("a", 3, CLOSING);
    CHECK_INT(lunnel_channel_merge_one(NULL, &s), LUNNEL_MERGE_DECLINE);
    s = V("a", 3, TERMINATED);
    CHECK_INT(lunnel_channel_merge_one(NULL, &s), LUNNEL_MERGE_NONE);
    /* dropped from the response */
    l = V("a", 1, OPEN);
    CHECK_INT(lunnel_channel_merge_one(&l, NULL), LUNNEL_MERGE_STOP);
    CHECK_INT(lunnel_channel_merge_one(NULL, NULL), LUNNEL_MERGE_NONE);
    /* same view: nothing */
    l = V("a", 1, OPEN), s = V("a", 1, OPEN);
    CHECK_INT(lunnel_channel_merge_one(&l, &s), LUNNEL_MERGE_NONE);
    /* local newer (our CLOSE/TERMINATED report not seen yet by the server): keep ours */
    l = V("a", 2, TERMINATED), s = V("a", 1, OPEN);
    CHECK_INT(lunnel_channel_merge_one(&l, &s), LUNNEL_MERGE_NONE);
    l = V("a", 4, CLOSE), s = V("a", 3, CLOSING);
    CHECK_INT(lunnel_channel_merge_one(&l, &s), LUNNEL_MERGE_NONE);
    /* server newer */
    l = V("a", 1, OPEN), s = V("a", 2, CLOSING);
    CHECK_INT(lunnel_channel_merge_one(&l, &s), LUNNEL_MERGE_DRAIN);
    l = V("a", 2, CLOSING), s = V("a", 2, CLOSING);
    CHECK_INT(lunnel_channel_merge_one(&l, &s), LUNNEL_MERGE_NONE);
    l = V("a", 1, OPEN), s = V("a", 5, CLOSE);
    CHECK_INT(lunnel_channel_merge_one(&l, &s), LUNNEL_MERGE_STOP);
    l = V("a", 1, OPEN), s = V("a", 5, TERMINATED);
    CHECK_INT(lunnel_channel_merge_one(&l, &s), LUNNEL_MERGE_STOP);
    l = V("a", 1, OPEN), s = V("a", 4, OPEN);
    CHECK_INT(lunnel_channel_merge_one(&l, &s), LUNNEL_MERGE_ADOPT);
    /* a tie goes to the server (official client: >=) */
    l = V("a", 3, CLOSE), s = V("a", 3, CLOSE);
    CHECK_INT(lunnel_channel_merge_one(&l, &s), LUNNEL_MERGE_STOP);
    /* we had stopped it; offered again at a higher version: restart */
    l = V("a", 3, CLOSE), s = V("a", 5, OPEN);
    CHECK_INT(lunnel_channel_merge_one(&l, &s), LUNNEL_MERGE_START);
}

static void test_table_merge(void)
{
    lunnel_chtable t;
    lunnel_chtable_init(&t);
    rec r = {0};

    /* first heartbeat: two OPEN, one CLOSING offered fresh (declined, not added) */
    lunnel_channel_view s1[] = {V("a", 1, OPEN), V("b", 1, OPEN), V("c", 2, CLOSING)};
    CHECK_INT(lunnel_chtable_merge(&t, s1, 3, on_merge, &r), 0);
    CHECK_INT(r.n, 3);
    CHECK_INT(find(&r, "a"), LUNNEL_MERGE_START);
    CHECK_INT(find(&r, "b"), LUNNEL_MERGE_START);
    CHECK_INT(find(&r, "c"), LUNNEL_MERGE_DECLINE);
    CHECK_INT(t.n, 2);
    CHECK(lunnel_chtable_find(&t, "c") == NULL);

    /* a finishes locally: reports TERMINATED at version 2; server still says OPEN 1 */
    lunnel_chtable_find(&t, "a")->view =
        (lunnel_channel_view){lunnel_chtable_find(&t, "a")->view.id, 2, LUNNEL_CHANNEL_TERMINATED};
    memset(&r, 0, sizeof r);
    lunnel_channel_view s2[] = {V("a", 1, OPEN), V("b", 2, CLOSING)};
    CHECK_INT(lunnel_chtable_merge(&t, s2, 2, on_merge, &r), 0);
    CHECK_INT(r.n, 1);
    CHECK_INT(find(&r, "b"), LUNNEL_MERGE_DRAIN);
    CHECK_INT(lunnel_chtable_find(&t, "a")->view.version, 2);
    CHECK_INT(lunnel_chtable_find(&t, "a")->view.status, LUNNEL_CHANNEL_TERMINATED);
    CHECK_INT(lunnel_chtable_find(&t, "b")->view.version, 2);
    CHECK_INT(lunnel_chtable_find(&t, "b")->view.status, LUNNEL_CHANNEL_CLOSING);

    /* server accepted: a no longer listed (dropped), b listed CLOSE (server ended it),
     * d is new */
    memset(&r, 0, sizeof r);
    lunnel_channel_view s3[] = {V("b", 3, CLOSE), V("d", 7, OPEN)};
    CHECK_INT(lunnel_chtable_merge(&t, s3, 2, on_merge, &r), 0);
    CHECK_INT(r.n, 3);
    CHECK_INT(find(&r, "a"), LUNNEL_MERGE_STOP);
    CHECK_INT(find(&r, "b"), LUNNEL_MERGE_STOP);
    CHECK_INT(find(&r, "d"), LUNNEL_MERGE_START);
    CHECK_INT(t.n, 1);
    CHECK(lunnel_chtable_find(&t, "d") != NULL);
    CHECK_INT(lunnel_chtable_find(&t, "d")->view.version, 7);

    /* duplicate ids in a response: first wins, no double start */
    memset(&r, 0, sizeof r);
    lunnel_channel_view s4[] = {V("d", 7, OPEN), V("e", 1, OPEN), V("e", 1, OPEN)};
    CHECK_INT(lunnel_chtable_merge(&t, s4, 3, on_merge, &r), 0);
    CHECK_INT(r.n, 1);
    CHECK_INT(find(&r, "e"), LUNNEL_MERGE_START);
    CHECK_INT(t.n, 2);

    /* empty response: everything stops, table empties */
    memset(&r, 0, sizeof r);
    CHECK_INT(lunnel_chtable_merge(&t, NULL, 0, on_merge, &r), 0);
    CHECK_INT(r.n, 2);
    CHECK_INT(t.n, 0);

    /* add / remove */
    lunnel_channel_view x = V("x", 1, OPEN);
    CHECK(lunnel_chtable_add(&t, &x) != NULL);
    lunnel_chtable_remove(&t, "x");
    CHECK_INT(t.n, 0);
    lunnel_chtable_free(&t);
}

static void test_strings(void)
{
    CHECK_STR(lunnel_channel_status_str(LUNNEL_CHANNEL_CLOSING), "CLOSING");
    CHECK_STR(lunnel_channel_status_str(99), "UNKNOWN");
    CHECK_STR(lunnel_merge_action_str(LUNNEL_MERGE_DRAIN), "drain");
}

typedef struct counts {
    size_t by_action[8];
    size_t null_entry;
} counts;

static void count_merge(void *ud, lunnel_merge_action a, lunnel_chtable_entry *e,
                        const lunnel_channel_view *s)
{
    (void)s;
    counts *c = ud;
    c->by_action[a]++;
    if (!e) c->null_entry++;
}

static int sorted(const lunnel_chtable *t)
{
    for (size_t i = 1; i < t->n; i++)
        if (strcmp(t->entries[i - 1].view.id, t->entries[i].view.id) >= 0) return 0;
    return 1;
}

static void test_scale(void)
{
    enum { N = 200000 };
    lunnel_channel_view *v = calloc(N + 10, sizeof *v);
    char(*ids)[24] = calloc(N + 10, sizeof *ids);
    CHECK(v && ids);
    /* ids in a scrambled order: the response is not sorted */
    for (size_t k = 0; k < N; k++) {
        size_t i = (k * 7919) % N;
        snprintf(ids[k], sizeof ids[k], "ch-%06zu", i);
        v[k] = (lunnel_channel_view){ids[k], 1, LUNNEL_CHANNEL_OPEN};
    }
    lunnel_chtable t;
    lunnel_chtable_init(&t);
    counts c = {{0}, 0};
    CHECK_INT(lunnel_chtable_merge(&t, v, N, count_merge, &c), 0);
    CHECK_INT((int)c.by_action[LUNNEL_MERGE_START], N);
    CHECK_INT((int)t.n, N);
    CHECK(sorted(&t));
    CHECK(lunnel_chtable_find(&t, "ch-123456") != NULL);
    CHECK(lunnel_chtable_find(&t, "ch-999999") == NULL);

    /* the second heartbeat: the first half listed again (same version: nothing to do), a
     * quarter of them CLOSING, the second half missing (stopped), 5 new, one id twice */
    size_t m = 0;
    for (size_t k = 0; k < N; k++) {
        if (strcmp(ids[k], "ch-100000") >= 0) continue;
        v[m] = (lunnel_channel_view){ids[k], 1, LUNNEL_CHANNEL_OPEN};
        if (strcmp(ids[k], "ch-025000") < 0)
            v[m] = (lunnel_channel_view){ids[k], 2, LUNNEL_CHANNEL_CLOSING};
        m++;
    }
    CHECK_INT((int)m, N / 2);
    for (int i = 0; i < 5; i++) {
        snprintf(ids[N + i], sizeof ids[0], "new-%d", i);
        v[m++] = (lunnel_channel_view){ids[N + i], 1, LUNNEL_CHANNEL_OPEN};
    }
    v[m++] = (lunnel_channel_view){"new-0", 1, LUNNEL_CHANNEL_OPEN}; /* a duplicate listing */
    memset(&c, 0, sizeof c);
    CHECK_INT(lunnel_chtable_merge(&t, v, m, count_merge, &c), 0);
    CHECK_INT((int)c.by_action[LUNNEL_MERGE_START], 5);
    CHECK_INT((int)c.by_action[LUNNEL_MERGE_DRAIN], N / 8);
    CHECK_INT((int)c.by_action[LUNNEL_MERGE_STOP], N / 2);
    CHECK_INT((int)c.by_action[LUNNEL_MERGE_NONE], 0); /* NONE is never reported */
    CHECK_INT((int)t.n, N / 2 + 5);
    CHECK(sorted(&t));
    lunnel_chtable_entry *e = lunnel_chtable_find(&t, "ch-000001");
    CHECK(e && e->view.status == LUNNEL_CHANNEL_CLOSING && e->view.version == 2);
    lunnel_chtable_free(&t);
    free(v);
    free(ids);
}

int main(void)
{
    test_merge_one();
    test_scale();
    test_table_merge();
    test_strings();
    TEST_DONE();
}
