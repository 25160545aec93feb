/* test_tunnel_worker_flow.c: the worker + channel pipeline + checkpointer as a state machine,
 * without network or wall-clock time: the worker's environment (worker_env.h) is a fake
 * calls vtable that records each request and lets the test answer it, a fake clock that moves
 * only when the test lets time pass, and a fixed random sequence; the processor (Lua host) is
 * a fake that records opens, batches and shutdowns. Nothing sleeps. Covers: connect + first
 * heartbeat, GetCheckpoint -> open -> ReadRecords with prefetch bounds, checkpoints of the newest
 * contiguous handled token with sequence numbers, OTSSequenceNumberNotMatch re-read, CLOSING ->
 * drain -> final checkpoint
 * -> shutdown -> CLOSE at version + 1, `finished` -> TERMINATED, dropped channels (no
 * checkpoint, no report), --max-channels, --commit manual, reconnect on OTSResourceGone and
 * the graceful stop. Every wait is bounded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <proto/tunnel_service_api.pb-c.h>

#include "lunnel/log.h"
#include "lunnel/worker.h"
#include "lunnel/worker_env.h"
#include "test_errors_util.h"
#include "testutil.h"

/* ---- fake clock and random source ------------------------------------------------------- */

/* Time moves only when the test lets it (advance / the waits below): every timer fires at its
 * exact due time, in due order, so a run is the same on a loaded machine as on an idle one. */
struct lunnel_worker_timer {
    lunnel_worker_timer_fn fire;
    void *ud;
    int active, heap; /* heap: made by timer_new (freed by timer_free); else the test's own */
    double due, repeat;
    struct lunnel_worker_timer *next; /* every timer that exists */
};

static double fake_time = 1000.0;
static lunnel_worker_timer *timers;
static int live_timers; /* made by the worker and not freed yet */

static double fake_now(void *impl)
{
    (void)impl;
    return fake_time;
}
static void timer_link(lunnel_worker_timer *t)
{
    t->next = timers;
    timers = t;
}
static lunnel_worker_timer *fake_timer_new(void *impl, lunnel_worker_timer_fn fire, void *ud)
{
    (void)impl;
    lunnel_worker_timer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->fire = fire;
    t->ud = ud;
    t->heap = 1;
    timer_link(t);
    live_timers++;
    return t;
}
static void fake_timer_start(void *impl, lunnel_worker_timer *t, double after_s, double repeat_s)
{
    (void)impl;
    t->active = 1;
    t->due = fake_time + (after_s > 0 ? after_s : 0);
    t->repeat = repeat_s;
}
static void fake_timer_stop(void *impl, lunnel_worker_timer *t)
{
    (void)impl;
    t->active = 0;
}
static int fake_timer_active(void *impl, const lunnel_worker_timer *t)
{
    (void)impl;
    return t->active;
}
static void fake_timer_free(void *impl, lunnel_worker_timer *t)
{
    (void)impl;
    if (!t) return;
    for (lunnel_worker_timer **p = &timers; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    live_timers--;
    free(t);
}
static const lunnel_worker_clock fake_clock = {
    .now = fake_now,
    .timer_new = fake_timer_new,
    .timer_start = fake_timer_start,
    .timer_stop = fake_timer_stop,
    .timer_active = fake_timer_active,
    .timer_free = fake_timer_free,
};

/* Fires the earliest timer due by `until` (time jumps to its due time) and returns 1; with
 * none, time moves to `until` and 0 comes back. */
static int step_until(double until)
{
    lunnel_worker_timer *first = NULL;
    for (lunnel_worker_timer *t = timers; t; t = t->next)
        if (t->active && t->due <= until && (!first || t->due < first->due)) first = t;
    if (!first) {
        if (until > fake_time) fake_time = until;
        return 0;
    }
    if (first->due > fake_time) fake_time = first->due;
    if (first->repeat > 0)
        first->due += first->repeat;
    else
        first->active = 0;
    first->fire(first->ud);
    return 1;
}

/* Lets `s` seconds pass, firing every timer due on the way. */
static void advance(double s)
{
    double until = fake_time + s;
    while (step_until(until)) {
    }
}

/* A fixed sequence (LCG), so jitter and reconnect delays are the same on every run. */
static double fake_rand01(void *ud)
{
    uint64_t *x = ud;
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*x >> 11) / 9007199254740992.0;
}
static uint64_t rand_state = 42;

/* ---- fake tunnel calls ------------------------------------------------------------------ */

enum { C_CONNECT = 1, C_HEARTBEAT, C_SHUTDOWN, C_GETCP, C_CHECKPOINT, C_READ, C_DESCRIBE };

typedef struct call {
    int kind;
    char channel[64];
    char token[128];
    int64_t seq;
    lunnel_channel_view views[16];
    char view_ids[16][64];
    size_t n_views;
    void (*cb)(void);
    void *ud;
    int answered;  /* the callback ran (or the call was cancelled) */
    int cancelled; /* the worker cancelled it (lunnel_worker_calls.cancel) */
} call;

#define MAX_CALLS 512
static call calls[MAX_CALLS];
static int n_calls;
static int n_cancelled;

static call *record(int kind, const char *channel, void (*cb)(void), void *ud)
{
    if (n_calls >= MAX_CALLS) {
        fprintf(stderr, "too many calls\n");
        exit(2);
    }
    call *c = &calls[n_calls++];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    if (channel) snprintf(c->channel, sizeof c->channel, "%s", channel);
    c->cb = cb;
    c->ud = ud;
    return c;
}

static lunnel_worker_call *fake_connect(void *impl, const char *tunnel_id, int64_t timeout_s,
                                        const char *client_tag, lunnel_worker_connect_cb cb,
                                        void *ud)
{
    (void)impl, (void)tunnel_id, (void)timeout_s, (void)client_tag;
    return (lunnel_worker_call *)record(C_CONNECT, NULL, (void (*)(void))cb, ud);
}
static lunnel_worker_call *fake_heartbeat(void *impl, const char *tunnel_id, const char *client_id,
                                          const lunnel_channel_view *v, size_t n,
                                          lunnel_worker_heartbeat_cb cb, void *ud)
{
    (void)impl, (void)tunnel_id, (void)client_id;
    call *c = record(C_HEARTBEAT, NULL, (void (*)(void))cb, ud);
    for (size_t i = 0; i < n && i < 16; i++) {
        snprintf(c->view_ids[i], sizeof c->view_ids[i], "%s", v[i].id);
        c->views[i] = v[i];
        c->views[i].id = c->view_ids[i];
    }
    c->n_views = n < 16 ? n : 16;
    return (lunnel_worker_call *)c;
}
static lunnel_worker_call *fake_shutdown_call(void *impl, const char *tunnel_id,
                                              const char *client_id, lunnel_worker_status_cb cb,
                                              void *ud)
{
    (void)impl, (void)tunnel_id, (void)client_id;
    return (lunnel_worker_call *)record(C_SHUTDOWN, NULL, (void (*)(void))cb, ud);
}
static lunnel_worker_call *fake_getcheckpoint(void *impl, const char *tunnel_id,
                                              const char *client_id, const char *channel_id,
                                              lunnel_worker_getcp_cb cb, void *ud)
{
    (void)impl, (void)tunnel_id, (void)client_id;
    return (lunnel_worker_call *)record(C_GETCP, channel_id, (void (*)(void))cb, ud);
}
static lunnel_worker_call *fake_checkpoint(void *impl, const char *tunnel_id, const char *client_id,
                                           const char *channel_id, const char *token, int64_t seq,
                                           lunnel_worker_status_cb cb, void *ud)
{
    (void)impl, (void)tunnel_id, (void)client_id;
    call *c = record(C_CHECKPOINT, channel_id, (void (*)(void))cb, ud);
    snprintf(c->token, sizeof c->token, "%s", token);
    c->seq = seq;
    return (lunnel_worker_call *)c;
}
static lunnel_worker_call *fake_readrecords(void *impl, const char *tunnel_id,
                                            const char *client_id, const char *channel_id,
                                            const char *token, lunnel_worker_read_cb cb, void *ud)
{
    (void)impl, (void)tunnel_id, (void)client_id;
    call *c = record(C_READ, channel_id, (void (*)(void))cb, ud);
    snprintf(c->token, sizeof c->token, "%s", token);
    return (lunnel_worker_call *)c;
}
static lunnel_worker_call *fake_describe(void *impl, const char *table_name,
                                         const char *tunnel_name, const char *tunnel_id,
                                         lunnel_worker_describe_cb cb, void *ud)
{
    (void)impl, (void)table_name, (void)tunnel_name, (void)tunnel_id;
    return (lunnel_worker_call *)record(C_DESCRIBE, NULL, (void (*)(void))cb, ud);
}
static void fake_cancel(void *impl, lunnel_worker_call *handle)
{
    (void)impl;
    call *c = (call *)handle;
    if (c->answered) {
        fprintf(stderr, "cancel of a call already answered\n");
        exit(2);
    }
    c->answered = c->cancelled = 1;
    n_cancelled++;
}
static const lunnel_worker_calls fake_calls = {
    .connect = fake_connect,
    .heartbeat = fake_heartbeat,
    .shutdown = fake_shutdown_call,
    .get_checkpoint = fake_getcheckpoint,
    .checkpoint = fake_checkpoint,
    .read_records = fake_readrecords,
    .describe = fake_describe,
    .cancel = fake_cancel,
};

static call *find_call(int kind, const char *channel)
{
    for (int i = 0; i < n_calls; i++) {
        call *c = &calls[i];
        if (!c->answered && c->kind == kind && (!channel || strcmp(c->channel, channel) == 0))
            return c;
    }
    return NULL;
}

/* Lets time pass (timers firing) until an unanswered call of `kind` (and channel, when given)
 * exists; at most 10 simulated seconds. Returns it or NULL. */
static call *wait_call(int kind, const char *channel)
{
    double until = fake_time + 10;
    for (;;) {
        call *c = find_call(kind, channel);
        if (c || !step_until(until)) return c ? c : find_call(kind, channel);
    }
}

/* Answers every call still open with LUNNEL_NET_CANCELLED, as the transport does when it is
 * torn down under a call (lunnel_http_free): the worker must take it as a failure, not a
 * verdict of the service. */
static void cancel_all(void)
{
    lunnel_error e;
    lunnel_error_clear(&e);
    e.kind = LUNNEL_NET_CANCELLED;
    for (int i = 0; i < n_calls; i++) {
        call *c = &calls[i];
        if (c->answered) continue;
        c->answered = 1;
        switch (c->kind) {
        case C_CONNECT:
            ((lunnel_worker_connect_cb)c->cb)(c->ud, &e, NULL);
            break;
        case C_HEARTBEAT:
            ((lunnel_worker_heartbeat_cb)c->cb)(c->ud, &e, NULL, 0);
            break;
        case C_SHUTDOWN:
        case C_CHECKPOINT:
            ((lunnel_worker_status_cb)c->cb)(c->ud, &e);
            break;
        case C_GETCP:
            ((lunnel_worker_getcp_cb)c->cb)(c->ud, &e, NULL, 0);
            break;
        case C_READ:
            ((lunnel_worker_read_cb)c->cb)(c->ud, &e, NULL, 0, NULL);
            break;
        case C_DESCRIBE:
            ((lunnel_worker_describe_cb)c->cb)(c->ud, &e, 0, 0);
            break;
        }
    }
}

/* Whether an unanswered call of this kind exists after `settle_ms` of simulated time. */
static int pending(int kind, const char *channel, int settle_ms)
{
    advance(settle_ms / 1000.0);
    return find_call(kind, channel) != NULL;
}

static void answer_connect(call *c, const char *client_id)
{
    c->answered = 1;
    ((lunnel_worker_connect_cb)c->cb)(c->ud, NULL, client_id);
}
static void answer_heartbeat(call *c, const lunnel_channel_view *v, size_t n)
{
    c->answered = 1;
    ((lunnel_worker_heartbeat_cb)c->cb)(c->ud, NULL, v, n);
}
static void answer_heartbeat_error(call *c, const lunnel_error *e)
{
    c->answered = 1;
    ((lunnel_worker_heartbeat_cb)c->cb)(c->ud, e, NULL, 0);
}
static void answer_status(call *c, const lunnel_error *e)
{
    c->answered = 1;
    ((lunnel_worker_status_cb)c->cb)(c->ud, e);
}
static void answer_getcp(call *c, const char *token, int64_t seq)
{
    c->answered = 1;
    ((lunnel_worker_getcp_cb)c->cb)(c->ud, NULL, token, seq);
}
/* A ReadRecordsResponse with n records (arbitrary bytes: the host decodes, not the worker). */
static void answer_read(call *c, int n, const char *next, int may_more)
{
    Lunnel__Tunnel__Record recs[8], *ptrs[8];
    static uint8_t row[4] = {0x75, 0, 0, 0};
    for (int i = 0; i < n; i++) {
        Lunnel__Tunnel__Record r = LUNNEL__TUNNEL__RECORD__INIT;
        r.action_type = LUNNEL__TUNNEL__ACTION_TYPE__PUT_ROW;
        r.record.data = row;
        r.record.len = sizeof row;
        recs[i] = r;
        ptrs[i] = &recs[i];
    }
    Lunnel__Tunnel__ReadRecordsResponse m = LUNNEL__TUNNEL__READ_RECORDS_RESPONSE__INIT;
    m.n_records = (size_t)n;
    m.records = ptrs;
    m.next_token = (char *)next;
    if (may_more >= 0) {
        m.has_may_more_record = 1;
        m.may_more_record = may_more;
    }
    size_t len = lunnel__tunnel__read_records_response__get_packed_size(&m);
    uint8_t *buf = malloc(len ? len : 1);
    lunnel__tunnel__read_records_response__pack(&m, buf);
    c->answered = 1;
    char trace[160];
    snprintf(trace, sizeof trace, "trace-%s", next); /* borrowed: the worker must copy it */
    ((lunnel_worker_read_cb)c->cb)(c->ud, NULL, buf, len, trace);
    memset(trace, 0, sizeof trace);
}

/* A heartbeat sent after everything so far: a pending (older) one is answered first with the
 * server's current list `v`, so its snapshot cannot be mistaken for the current state. */
static call *fresh_heartbeat(const lunnel_channel_view *v, size_t n)
{
    call *old = find_call(C_HEARTBEAT, NULL);
    if (old) answer_heartbeat(old, v, n);
    return wait_call(C_HEARTBEAT, NULL);
}

/* ---- fake processor ------------------------------------------------------------------------ */

typedef struct fake_ch {
    char id[64];
    void *user;
    int shutdown;
    int open_fails;                   /* EV_OPENED reports a script error */
    lunnel_worker_timer opened_timer; /* EV_OPENED comes back later, as from the host */
} fake_ch;

typedef struct fake_batch {
    fake_ch *ch;
    void *user;
    lunnel_host_batch hb; /* as submitted (for the dead_letter hook) */
    char token[128];
    char trace[160]; /* x-ots-trace-id handed with the batch (answer_read: "trace-<token>") */
    size_t n;
    int done;
} fake_batch;

static fake_ch chans[64];
static int n_chans;
static fake_batch batches[256];
static int n_batches;
static int opens;
static int fail_opens; /* the next n open(ctx) calls fail */
static lunnel_worker *W;

static void opened_cb(void *ud)
{
    fake_ch *ch = ud;
    lunnel_host_completion c = {0};
    c.event = LUNNEL_HOST_EV_OPENED;
    c.channel = (lunnel_host_channel *)ch;
    c.channel_user = ch->user;
    c.status = ch->open_fails ? LUNNEL_HOST_ESCRIPT : LUNNEL_HOST_OK;
    c.error = ch->open_fails ? "database is down" : "";
    c.traceback = "";
    lunnel_worker_on_done(W, &c);
}

static void *fake_open(void *ud, const lunnel_host_channel_info *info)
{
    (void)ud;
    fake_ch *c = &chans[n_chans++];
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", info->channel_id);
    c->user = info->user;
    if (fail_opens > 0) {
        fail_opens--;
        c->open_fails = 1;
    }
    opens++;
    c->opened_timer.fire = opened_cb;
    c->opened_timer.ud = c;
    timer_link(&c->opened_timer);
    fake_timer_start(NULL, &c->opened_timer, 0.001, 0.);
    return c;
}
static int fake_submit(void *ch, const lunnel_host_batch *b)
{
    fake_batch *x = &batches[n_batches++];
    memset(x, 0, sizeof *x);
    x->ch = ch;
    x->user = b->user;
    x->hb = *b;
    x->n = b->n_ranges;
    snprintf(x->token, sizeof x->token, "%s", b->next_token ? b->next_token : "");
    snprintf(x->trace, sizeof x->trace, "%s", b->trace_id ? b->trace_id : "");
    return 0;
}
static int fake_shutdown(void *ch)
{
    ((fake_ch *)ch)->shutdown = 1;
    return 0;
}

static fake_batch *batch_of(const char *channel, const char *token)
{
    for (int i = 0; i < n_batches; i++)
        if (!batches[i].done && strcmp(batches[i].ch->id, channel) == 0 &&
            strcmp(batches[i].token, token) == 0)
            return &batches[i];
    return NULL;
}

static void complete(fake_batch *b, int ok, int committed)
{
    lunnel_host_completion c = {0};
    c.event = LUNNEL_HOST_EV_BATCH;
    c.channel = (lunnel_host_channel *)b->ch;
    c.channel_user = b->ch->user;
    c.batch_user = b->user;
    c.status = ok ? LUNNEL_HOST_OK : LUNNEL_HOST_ESCRIPT;
    c.error = ok ? "" : "boom";
    c.traceback = "";
    c.committed = committed;
    c.dead_letter_error = "";
    char dl_err[256] = "";
    if (!ok && b->hb.dead_letter) { /* as the host does: before the completion, on its worker */
        c.dead_lettered = b->hb.dead_letter->write(b->hb.dead_letter->ud, &b->hb, NULL,
                                                   "not decoded by the fake host", c.error,
                                                   c.traceback, dl_err, sizeof dl_err) == 0;
        c.dead_letter_error = dl_err;
    }
    b->done = 1;
    lunnel_worker_on_done(W, &c);
}

static fake_ch *chan(const char *id)
{
    for (int i = n_chans - 1; i >= 0; i--)
        if (strcmp(chans[i].id, id) == 0) return &chans[i];
    return NULL;
}

static void closed(fake_ch *ch)
{
    lunnel_host_completion c = {0};
    c.event = LUNNEL_HOST_EV_CLOSED;
    c.channel = (lunnel_host_channel *)ch;
    c.channel_user = ch->user;
    c.error = c.traceback = "";
    lunnel_worker_on_done(W, &c);
}

static int exit_status = -1;
static void on_exit_cb(void *ud, int status)
{
    (void)ud;
    exit_status = status;
}

static const lunnel_channel_view *view_in(const call *hb, const char *id)
{
    for (size_t i = 0; i < hb->n_views; i++)
        if (strcmp(hb->views[i].id, id) == 0) return &hb->views[i];
    return NULL;
}

#define V(id_, ver_, st_) ((lunnel_channel_view){(char *)(id_), (ver_), LUNNEL_CHANNEL_##st_})

static size_t budget = 1 << 20;
static int on_error = LUNNEL_ON_ERROR_RETRY;
static const char *dead_letter_path;

static lunnel_worker *new_worker(int manual, int max_channels)
{
    lunnel_worker_config cfg = {
        .calls = &fake_calls,
        .clock = &fake_clock,
        .rand01 = fake_rand01,
        .rand_ud = &rand_state,
        .tunnel_id = "tid",
        .table_name = "t",
        .tunnel_name = "tn",
        .heartbeat_interval_s = 0.02,
        .heartbeat_timeout_s = 30,
        .prefetch = 1,
        .max_inflight_bytes = budget,
        .max_backoff_s = 0.05,
        .checkpoint_interval_s = 0.02,
        .manual_commit = manual,
        .max_channels = max_channels,
        .drain_timeout_s = 5,
        .reconnect_delay_max_s = 0,
        .on_error = on_error,
        .max_retries = 2,
        .retry_backoff_max_s = 0.01,
        .dead_letter_path = dead_letter_path,
        .proc = {.open = fake_open, .submit = fake_submit, .shutdown = fake_shutdown},
        .on_exit = on_exit_cb,
    };
    return lunnel_worker_new(&cfg);
}

/* Main flow: stream channel p0 and base channel BaseData_b0. */
static void test_main_flow(void)
{
    W = new_worker(0, 0);
    lunnel_worker_start(W);
    call *c = wait_call(C_CONNECT, NULL);
    CHECK(c != NULL);
    answer_connect(c, "client-1");
    call *hb = wait_call(C_HEARTBEAT, NULL);
    CHECK(hb != NULL);
    CHECK_INT(hb->n_views, 0);
    lunnel_channel_view open2[] = {V("p0", 1, OPEN), V("BaseData_b0", 1, OPEN)};
    answer_heartbeat(hb, open2, 2);

    /* both channels ask for their checkpoint */
    call *g0 = wait_call(C_GETCP, "p0"), *gb = wait_call(C_GETCP, "BaseData_b0");
    CHECK(g0 && gb);
    answer_getcp(g0, "t0", 5);
    CHECK(chan("p0") != NULL); /* open(ctx) queued */
    call *r = wait_call(C_READ, "p0");
    CHECK(r != NULL);
    CHECK_STR(r->token, "t0");

    /* a full batch: read again at once (prefetch 1: one more read, then stop) */
    answer_read(r, 2, "t1", 1);
    CHECK(batch_of("p0", "t1") != NULL);
    CHECK_INT(batch_of("p0", "t1")->n, 2);
    r = wait_call(C_READ, "p0");
    CHECK(r != NULL);
    CHECK_STR(r->token, "t1");
    answer_read(r, 1, "t2", 0); /* not full: the stream channel backs off */
    /* read ahead, but held until t1 is done: one batch of a channel on the processor at a
     * time, so a retried batch is never overtaken (error_policy.c) */
    CHECK(batch_of("p0", "t2") == NULL);
    /* two batches outstanding = 1 + prefetch: no third read even after the backoff */
    CHECK(!pending(C_READ, "p0", 80));

    /* nothing handled yet: no checkpoint */
    CHECK(!pending(C_CHECKPOINT, "p0", 40));
    complete(batch_of("p0", "t1"), 1, 0);
    CHECK(batch_of("p0", "t2") != NULL);                /* submitted as t1 completed */
    CHECK_STR(batch_of("p0", "t2")->trace, "trace-t2"); /* its ReadRecords call's trace id */
    call *cp = wait_call(C_CHECKPOINT, "p0");
    CHECK(cp != NULL);
    CHECK_STR(cp->token, "t1");
    CHECK_INT(cp->seq, 6); /* GetCheckpoint's 5 + 1 */
    /* the sequence number does not match: re-read and retry with the server's + 1 */
    lunnel_error mismatch = tu_server_error(400, "OTSSequenceNumberNotMatch", "");
    answer_status(cp, &mismatch);
    call *g = wait_call(C_GETCP, "p0");
    CHECK(g != NULL);
    answer_getcp(g, "t0", 20);
    cp = wait_call(C_CHECKPOINT, "p0");
    CHECK(cp != NULL);
    CHECK_STR(cp->token, "t1");
    CHECK_INT(cp->seq, 21);
    answer_status(cp, NULL);

    /* after the batch completes, reading resumes (after the backoff) */
    complete(batch_of("p0", "t2"), 1, 0);
    r = wait_call(C_READ, "p0");
    CHECK(r != NULL);
    CHECK_STR(r->token, "t2");
    cp = wait_call(C_CHECKPOINT, "p0");
    CHECK(cp != NULL);
    CHECK_STR(cp->token, "t2");
    CHECK_INT(cp->seq, 22);
    answer_status(cp, NULL);

    /* base channel: one batch then `finished` */
    answer_getcp(gb, "b-start", 0);
    call *rb = wait_call(C_READ, "BaseData_b0");
    CHECK(rb != NULL);
    answer_read(rb, 3, "finished", -1);
    CHECK(!pending(C_READ, "BaseData_b0", 20)); /* finished: no more reads */
    complete(batch_of("BaseData_b0", "finished"), 1, 0);
    cp = wait_call(C_CHECKPOINT, "BaseData_b0");
    CHECK(cp != NULL);
    CHECK_STR(cp->token, "finished");
    CHECK_INT(cp->seq, 1);
    CHECK(!chan("BaseData_b0")->shutdown); /* not before the final checkpoint is stored */
    answer_status(cp, NULL);
    CHECK(chan("BaseData_b0")->shutdown);
    closed(chan("BaseData_b0"));

    /* server moves p0: CLOSING at version 2 while a read is in flight */
    lunnel_channel_view cur[] = {V("p0", 1, OPEN), V("BaseData_b0", 1, OPEN)};
    hb = fresh_heartbeat(cur, 2);
    CHECK(hb != NULL);
    const lunnel_channel_view *bv = view_in(hb, "BaseData_b0");
    CHECK(bv && bv->version == 2 && bv->status == LUNNEL_CHANNEL_TERMINATED);
    lunnel_channel_view closing[] = {V("p0", 2, CLOSING), V("BaseData_b0", 1, OPEN)};
    answer_heartbeat(hb, closing, 2);
    /* the in-flight read's answer is dropped: not submitted, not checkpointed */
    answer_read(r, 1, "t3", 0);
    CHECK(batch_of("p0", "t3") == NULL);
    CHECK(!pending(C_CHECKPOINT, "p0", 20)); /* t2 already stored */
    CHECK(chan("p0")->shutdown);
    closed(chan("p0"));
    hb = fresh_heartbeat(closing, 2);
    CHECK(hb != NULL);
    const lunnel_channel_view *pv = view_in(hb, "p0");
    CHECK(pv && pv->version == 3 && pv->status == LUNNEL_CHANNEL_CLOSE);
    bv = view_in(hb, "BaseData_b0");
    CHECK(bv && bv->version == 2); /* our TERMINATED report stays until the server drops it */

    /* the server accepted both: empty list -> nothing left to report */
    answer_heartbeat(hb, NULL, 0);
    hb = fresh_heartbeat(NULL, 0);
    CHECK(hb != NULL);
    CHECK_INT(hb->n_views, 0);

    /* a new channel, then dropped by the server mid-batch: shutdown without checkpoint */
    lunnel_channel_view p5[] = {V("p5", 9, OPEN)};
    answer_heartbeat(hb, p5, 1);
    g = wait_call(C_GETCP, "p5");
    CHECK(g != NULL);
    answer_getcp(g, "s0", 0);
    r = wait_call(C_READ, "p5");
    answer_read(r, 1, "s1", 1);
    r = wait_call(C_READ, "p5");
    CHECK(r != NULL);
    hb = fresh_heartbeat(p5, 1);
    CHECK(view_in(hb, "p5") && view_in(hb, "p5")->version == 9);
    answer_heartbeat(hb, NULL, 0); /* dropped */
    answer_read(r, 1, "s2", 0);
    complete(batch_of("p5", "s1"), 1, 0);
    CHECK(!pending(C_CHECKPOINT, "p5", 40));
    CHECK(chan("p5")->shutdown);
    closed(chan("p5"));
    hb = fresh_heartbeat(NULL, 0);
    CHECK(hb && view_in(hb, "p5") == NULL);

    /* a new CLOSING channel we never had: declined with CLOSE at version + 1, never opened */
    int opens_before = opens;
    lunnel_channel_view q[] = {V("q", 4, CLOSING)};
    answer_heartbeat(hb, q, 1);
    hb = fresh_heartbeat(q, 1);
    CHECK(hb && view_in(hb, "q") && view_in(hb, "q")->version == 5 &&
          view_in(hb, "q")->status == LUNNEL_CHANNEL_CLOSE);
    CHECK_INT(opens, opens_before);

    /* OTSResourceGone: stop channels, Shutdown, Connect again with a new client */
    lunnel_error gone = tu_server_error(410, "OTSResourceGone", "");
    answer_heartbeat_error(hb, &gone);
    call *sd = wait_call(C_SHUTDOWN, NULL);
    CHECK(sd != NULL);
    answer_status(sd, &gone);
    c = wait_call(C_CONNECT, NULL);
    CHECK(c != NULL);
    answer_connect(c, "client-2");
    hb = wait_call(C_HEARTBEAT, NULL);
    CHECK(hb && hb->n_views == 0); /* a new client starts with an empty table */

    /* graceful stop: drain a running channel (final checkpoint), Shutdown, exit 0 */
    lunnel_channel_view z[] = {V("z", 1, OPEN)};
    answer_heartbeat(hb, z, 1);
    g = wait_call(C_GETCP, "z");
    answer_getcp(g, "z0", 3);
    r = wait_call(C_READ, "z");
    answer_read(r, 1, "z1", 0);
    lunnel_worker_stop(W);
    CHECK_INT(exit_status, -1);
    complete(batch_of("z", "z1"), 1, 0);
    cp = wait_call(C_CHECKPOINT, "z");
    CHECK(cp && strcmp(cp->token, "z1") == 0 && cp->seq == 4);
    answer_status(cp, NULL);
    CHECK(chan("z")->shutdown);
    closed(chan("z"));
    sd = wait_call(C_SHUTDOWN, NULL);
    CHECK(sd != NULL);
    answer_status(sd, NULL);
    CHECK_INT(exit_status, 0);
    cancel_all();
    lunnel_worker_free(W);
}

/* --commit manual and --max-channels 1. */
static void test_manual_and_max_channels(void)
{
    exit_status = -1;
    W = new_worker(1, 1);
    lunnel_worker_start(W);
    answer_connect(wait_call(C_CONNECT, NULL), "client-m");
    lunnel_channel_view two[] = {V("m0", 1, OPEN), V("m1", 1, OPEN)};
    answer_heartbeat(wait_call(C_HEARTBEAT, NULL), two, 2);
    call *g0 = wait_call(C_GETCP, "m0");
    CHECK(g0 != NULL);
    CHECK(!pending(C_GETCP, "m1", 20)); /* one slot only */
    answer_getcp(g0, "a0", 0);
    call *r = wait_call(C_READ, "m0");
    answer_read(r, 1, "a1", 1);
    r = wait_call(C_READ, "m0");
    answer_read(r, 1, "a2", 0);
    /* processed but not committed: no checkpoint */
    complete(batch_of("m0", "a1"), 1, 0);
    CHECK(!pending(C_CHECKPOINT, "m0", 50));
    /* committed: this batch and everything before it */
    complete(batch_of("m0", "a2"), 1, 1);
    call *cp = wait_call(C_CHECKPOINT, "m0");
    CHECK(cp && strcmp(cp->token, "a2") == 0);
    answer_status(cp, NULL);
    /* m0 moves away: its slot goes to m1 */
    call *hb = wait_call(C_HEARTBEAT, NULL);
    lunnel_channel_view moved[] = {V("m0", 2, CLOSING), V("m1", 1, OPEN)};
    answer_heartbeat(hb, moved, 2);
    r = find_call(C_READ, "m0"); /* the backoff read may already be in flight */
    if (r) answer_read(r, 0, "a2", 0);
    CHECK(chan("m0")->shutdown);
    CHECK(!pending(C_GETCP, "m1", 10)); /* still held by m0 until its shutdown(ctx) ran */
    closed(chan("m0"));
    CHECK(wait_call(C_GETCP, "m1") != NULL);
    lunnel_worker_stop(W); /* m1's GetCheckpoint is still out: ignored when it returns */
    call *sd = wait_call(C_SHUTDOWN, NULL);
    CHECK(sd != NULL);
    if (sd) answer_status(sd, NULL);
    CHECK_INT(exit_status, 0);
    CHECK(chan("m1") == NULL);
    cancel_all();
    lunnel_worker_free(W);
}

/* --max-inflight-bytes: with a budget smaller than one response, a full batch read ahead
 * waits until the submitted one completes, across channels; a reply being downloaded counts
 * too (one read at a time). */
static void test_inflight_budget(void)
{
    exit_status = -1;
    budget = 10; /* one response of our fake is larger */
    W = new_worker(0, 0);
    budget = 1 << 20;
    lunnel_worker_start(W);
    answer_connect(wait_call(C_CONNECT, NULL), "client-b");
    lunnel_channel_view two[] = {V("BaseData_x", 1, OPEN), V("BaseData_y", 1, OPEN)};
    answer_heartbeat(wait_call(C_HEARTBEAT, NULL), two, 2);
    answer_getcp(wait_call(C_GETCP, "BaseData_x"), "x0", 0);
    answer_read(wait_call(C_READ, "BaseData_x"), 1, "x1", 1); /* full: would read again now */
    CHECK(batch_of("BaseData_x", "x1") != NULL);
    CHECK(!pending(C_READ, "BaseData_x", 30)); /* budget spent */
    answer_getcp(wait_call(C_GETCP, "BaseData_y"), "y0", 0);
    CHECK(!pending(C_READ, "BaseData_y", 30)); /* the other channel waits too */
    complete(batch_of("BaseData_x", "x1"), 1, 0);
    /* budget back: a read in flight reserves its reply's bytes, so with a budget smaller
     * than one reply the channels read one at a time */
    call *first = wait_call(C_READ, NULL);
    CHECK(first != NULL);
    const char *other =
        first && strcmp(first->channel, "BaseData_x") == 0 ? "BaseData_y" : "BaseData_x";
    CHECK(!pending(C_READ, other, 30));
    answer_read(first, 0, "z1", 0); /* an empty reply: the reservation is released */
    CHECK(wait_call(C_READ, other) != NULL);
    lunnel_worker_stop(W);
    cancel_all(); /* reads and the drain's calls fail: channels close, Shutdown fails */
    for (int i = 0; i < 5; i++) {
        advance(0);
        cancel_all();
    }
    CHECK(chan("BaseData_x")->shutdown);
    CHECK(chan("BaseData_y")->shutdown);
    closed(chan("BaseData_x"));
    closed(chan("BaseData_y"));
    cancel_all();
    CHECK_INT(exit_status, 0);
    lunnel_worker_free(W);
}

/* Lets time pass until batch (channel, token) is on the processor; at most 10 simulated s. */
static fake_batch *wait_batch(const char *channel, const char *token)
{
    double until = fake_time + 10;
    for (;;) {
        fake_batch *b = batch_of(channel, token);
        if (b || !step_until(until)) return b ? b : batch_of(channel, token);
    }
}

/* One BaseData channel "BaseData_<id>" opened at token <id>0 with batches <id>1 (submitted)
 * and <id>2 (read ahead). */
static void policy_setup(const char *client, const char *chan_id, const char *t0, const char *t1,
                         const char *t2)
{
    exit_status = -1;
    W = new_worker(0, 0);
    lunnel_worker_start(W);
    answer_connect(wait_call(C_CONNECT, NULL), client);
    lunnel_channel_view one[] = {V(chan_id, 1, OPEN)};
    answer_heartbeat(wait_call(C_HEARTBEAT, NULL), one, 1);
    answer_getcp(wait_call(C_GETCP, chan_id), t0, 0);
    answer_read(wait_call(C_READ, chan_id), 2, t1, 1);
    answer_read(wait_call(C_READ, chan_id), 1, t2, 1);
}

static void policy_teardown(void)
{
    lunnel_worker_stop(W);
    for (int i = 0; i < 5; i++) {
        cancel_all();
        advance(0);
    }
    cancel_all();
    lunnel_worker_free(W);
}

/* --on-error: retry re-submits the same batch (the read-ahead one waits), exhausted retries
 * close the channel; skip dead-letters the batch and checkpoints past it; stop drains and
 * exits 1 without checkpointing the failed batch. */
static void test_error_policies(void)
{
    /* retry */
    on_error = LUNNEL_ON_ERROR_RETRY;
    policy_setup("client-r", "BaseData_r", "r0", "r1", "r2");
    CHECK(batch_of("BaseData_r", "r1") != NULL);
    CHECK(batch_of("BaseData_r", "r2") == NULL); /* held behind r1 */
    complete(batch_of("BaseData_r", "r1"), 0, 0);
    CHECK(batch_of("BaseData_r", "r2") == NULL); /* never overtakes the retried batch */
    fake_batch *b = wait_batch("BaseData_r", "r1");
    CHECK(b != NULL); /* the same batch again, after the backoff */
    CHECK(batch_of("BaseData_r", "r2") == NULL);
    if (b) complete(b, 1, 0);
    b = batch_of("BaseData_r", "r2");
    CHECK(b != NULL);
    call *cp = wait_call(C_CHECKPOINT, "BaseData_r");
    CHECK(cp && strcmp(cp->token, "r1") == 0);
    if (cp) answer_status(cp, NULL);
    /* r2 fails 1 + max_retries (2) times: the channel closes, r1 stays the checkpoint */
    for (int i = 0; i < 3 && b; i++) {
        complete(b, 0, 0);
        b = i < 2 ? wait_batch("BaseData_r", "r2") : NULL;
        CHECK(i == 2 || b != NULL);
    }
    call *rd = find_call(C_READ, "BaseData_r"); /* the read ahead in flight: the drain waits */
    if (rd) answer_read(rd, 0, "r3", 0);
    CHECK(!pending(C_CHECKPOINT, "BaseData_r", 30));
    CHECK(chan("BaseData_r")->shutdown);
    closed(chan("BaseData_r"));
    lunnel_worker_stats st;
    lunnel_worker_get_stats(W, &st);
    CHECK_INT(st.batch_failures, 4);
    CHECK_INT(st.batch_retries, 3);
    policy_teardown();

    /* skip */
    char path[] = "/tmp/lunnel-flow-dl-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    on_error = LUNNEL_ON_ERROR_SKIP;
    dead_letter_path = path;
    policy_setup("client-s", "BaseData_s", "s0", "s1", "s2");
    complete(batch_of("BaseData_s", "s1"), 0, 0);
    b = batch_of("BaseData_s", "s2"); /* s1 is handled: s2 goes at once */
    CHECK(b != NULL);
    if (b) complete(b, 1, 0);
    cp = wait_call(C_CHECKPOINT, "BaseData_s");
    CHECK(cp && strcmp(cp->token, "s2") == 0);
    if (cp) answer_status(cp, NULL);
    FILE *f = fopen(path, "r");
    int lines = 0;
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        lines++;
        CHECK(strstr(line, "\"channel_id\":\"BaseData_s\",\"batch_token\":\"s1\"") != NULL);
        CHECK(strstr(line, "\"error\":\"boom\"") != NULL);
        CHECK(strstr(line, "\"record_base64\":\"dQAAAA==\"") != NULL); /* a bare header */
        CHECK(strstr(line, "\"decode_error\":\"not decoded by the fake host\"") != NULL);
    }
    if (f) fclose(f);
    CHECK_INT(lines, 2); /* one per record of s1 */
    lunnel_worker_stats st2;
    lunnel_worker_get_stats(W, &st2);
    CHECK_INT(st2.dead_lettered, 1);
    policy_teardown();
    unlink(path);
    dead_letter_path = NULL;

    /* stop */
    on_error = LUNNEL_ON_ERROR_STOP;
    policy_setup("client-x", "BaseData_t", "t0", "t1", "t2");
    b = batch_of("BaseData_t", "t1");
    if (b) complete(b, 1, 0);
    b = batch_of("BaseData_t", "t2");
    CHECK(b != NULL);
    if (b) complete(b, 0, 0);
    rd = find_call(C_READ, "BaseData_t");
    if (rd) answer_read(rd, 0, "t3", 0);
    cp = wait_call(C_CHECKPOINT, "BaseData_t"); /* the drain stores what was handled */
    CHECK(cp && strcmp(cp->token, "t1") == 0);
    if (cp) answer_status(cp, NULL);
    CHECK(chan("BaseData_t")->shutdown);
    closed(chan("BaseData_t"));
    call *sd = wait_call(C_SHUTDOWN, NULL);
    CHECK(sd != NULL);
    if (sd) answer_status(sd, NULL);
    CHECK_INT(exit_status, 1);
    CHECK_STR(lunnel_worker_exit_reason(W), "--on-error stop: process() failed on channel "
                                            "BaseData_t: boom");
    cancel_all();
    lunnel_worker_free(W);
    on_error = LUNNEL_ON_ERROR_RETRY;
}

static void answer_read_error(call *c, const lunnel_error *e)
{
    c->answered = 1;
    ((lunnel_worker_read_cb)c->cb)(c->ud, e, NULL, 0, NULL);
}

/* Counts the calls of a kind for a channel made while `ms` of simulated time pass. */
static int calls_within(int kind, const char *channel, int ms)
{
    int before = 0;
    for (int i = 0; i < n_calls; i++)
        if (calls[i].kind == kind && strcmp(calls[i].channel, channel) == 0) before++;
    advance(ms / 1000.0);
    int after = 0;
    for (int i = 0; i < n_calls; i++)
        if (calls[i].kind == kind && strcmp(calls[i].channel, channel) == 0) after++;
    return after - before;
}

/* The channel state machine under persistent failures: a failed open(ctx) reads, processes
 * and checkpoints nothing and reports CLOSE; the channel handed straight back waits its
 * failure backoff (>= 1 s) before its GetCheckpoint; a refused ReadRecords fails it the same
 * way, with the next wait doubled. */
static void test_failure_pacing(void)
{
    exit_status = -1;
    W = new_worker(0, 0);
    lunnel_worker_start(W);
    answer_connect(wait_call(C_CONNECT, NULL), "client-f");
    lunnel_channel_view one[] = {V("f0", 1, OPEN)};
    answer_heartbeat(wait_call(C_HEARTBEAT, NULL), one, 1);
    fail_opens = 1;
    int batches_before = n_batches;
    answer_getcp(wait_call(C_GETCP, "f0"), "f-start", 3);
    fake_ch *f = chan("f0");
    CHECK(f != NULL && f->open_fails);
    /* open(ctx) fails: no read, no batch, no checkpoint; shutdown only releases the host */
    CHECK(f->shutdown || calls_within(C_READ, "f0", 30) == 0);
    CHECK(!pending(C_READ, "f0", 30));
    CHECK(!pending(C_CHECKPOINT, "f0", 1));
    CHECK_INT(n_batches, batches_before);
    CHECK(f->shutdown);
    closed(f);
    /* reported CLOSE */
    call *hb = fresh_heartbeat(one, 1);
    CHECK(hb != NULL);
    const lunnel_channel_view *v = view_in(hb, "f0");
    CHECK(v && v->version == 2 && v->status == LUNNEL_CHANNEL_CLOSE);
    /* the server hands it straight back: no GetCheckpoint before the backoff */
    lunnel_channel_view again[] = {V("f0", 3, OPEN)};
    answer_heartbeat(hb, again, 1);
    CHECK_INT(calls_within(C_GETCP, "f0", 800), 0);
    call *g = wait_call(C_GETCP, "f0");
    CHECK(g != NULL);
    answer_getcp(g, "f-start", 3);
    call *r = wait_call(C_READ, "f0"); /* open succeeded this time: reading starts */
    CHECK(r != NULL);
    /* a refused ReadRecords: failed, CLOSE, and a doubled wait (>= 2 s) before the next try */
    lunnel_error refused = tu_server_error(400, "OTSParameterInvalid", "");
    answer_read_error(r, &refused);
    f = chan("f0");
    CHECK(f && f->shutdown);
    closed(f);
    hb = fresh_heartbeat(again, 1);
    CHECK(hb != NULL);
    v = view_in(hb, "f0");
    CHECK(v && v->version == 4 && v->status == LUNNEL_CHANNEL_CLOSE);
    lunnel_channel_view back[] = {V("f0", 5, OPEN)};
    answer_heartbeat(hb, back, 1);
    CHECK_INT(calls_within(C_GETCP, "f0", 1500), 0);
    /* a stop during the backoff ends the object at once (nothing in flight) */
    lunnel_worker_stop(W);
    call *sd = wait_call(C_SHUTDOWN, NULL);
    CHECK(sd != NULL);
    if (sd) answer_status(sd, NULL);
    CHECK_INT(exit_status, 0);
    cancel_all();
    lunnel_worker_free(W);
}

/* Unparseable replies are treated alike on every call: an unparseable ReadRecords fails its
 * channel (paced, reported CLOSE), an unparseable Heartbeat loses the client (Shutdown, then
 * a new Connect) instead of ending the run. */
static void test_unparseable_alike(void)
{
    exit_status = -1;
    W = new_worker(0, 0);
    lunnel_worker_start(W);
    answer_connect(wait_call(C_CONNECT, NULL), "client-u");
    lunnel_channel_view one[] = {V("u0", 1, OPEN)};
    answer_heartbeat(wait_call(C_HEARTBEAT, NULL), one, 1);
    answer_getcp(wait_call(C_GETCP, "u0"), "u-start", 1);
    call *r = wait_call(C_READ, "u0");
    CHECK(r != NULL);
    lunnel_error garbled;
    lunnel_error_clear(&garbled);
    lunnel_error_set(&garbled, LUNNEL_NET_BAD_RESPONSE, "not a ReadRecordsResponse");
    answer_read_error(r, &garbled);
    fake_ch *u = chan("u0");
    CHECK(u && u->shutdown);
    closed(u);
    call *hb = fresh_heartbeat(one, 1);
    CHECK(hb != NULL);
    const lunnel_channel_view *v = view_in(hb, "u0");
    CHECK(v && v->version == 2 && v->status == LUNNEL_CHANNEL_CLOSE);
    /* the same kind of reply to a Heartbeat: the client is re-established, the run goes on */
    lunnel_error_set(&garbled, LUNNEL_NET_BAD_RESPONSE, "not a HeartbeatResponse");
    answer_heartbeat_error(hb, &garbled);
    call *sd = wait_call(C_SHUTDOWN, NULL);
    CHECK(sd != NULL);
    if (sd) answer_status(sd, NULL);
    CHECK(wait_call(C_CONNECT, NULL) != NULL);
    CHECK_INT(exit_status, -1);
    lunnel_worker_stop(W);
    CHECK_INT(exit_status, 0);
    cancel_all();
    lunnel_worker_free(W);
}

/* lunnel_worker_free in the middle of everything: calls of every kind in flight (Heartbeat,
 * GetCheckpoint, ReadRecords, Checkpoint), a batch on the processor and one held behind it.
 * Each call is cancelled (its callback never runs), and every object is freed: the ASan
 * build's leak check of this test (make test-asan) is the proof. */
static void test_free_with_calls_in_flight(void)
{
    exit_status = -1;
    W = new_worker(0, 0);
    lunnel_worker_start(W);
    answer_connect(wait_call(C_CONNECT, NULL), "client-t");
    lunnel_channel_view three[] = {V("BaseData_g", 1, OPEN), V("BaseData_r", 1, OPEN),
                                   V("BaseData_c", 1, OPEN)};
    answer_heartbeat(wait_call(C_HEARTBEAT, NULL), three, 3);
    /* _g: its GetCheckpoint stays in flight */
    CHECK(wait_call(C_GETCP, "BaseData_g") != NULL);
    /* _r: a batch on the processor and one read ahead, held (1 + prefetch: no more reads) */
    answer_getcp(wait_call(C_GETCP, "BaseData_r"), "r0", 0);
    answer_read(wait_call(C_READ, "BaseData_r"), 2, "r1", 1);
    answer_read(wait_call(C_READ, "BaseData_r"), 1, "r2", 1);
    CHECK(batch_of("BaseData_r", "r1") != NULL);
    CHECK(batch_of("BaseData_r", "r2") == NULL); /* held */
    /* _c: a batch handled, its Checkpoint in flight, the next read in flight */
    answer_getcp(wait_call(C_GETCP, "BaseData_c"), "c0", 0);
    answer_read(wait_call(C_READ, "BaseData_c"), 1, "c1", 1);
    complete(batch_of("BaseData_c", "c1"), 1, 0);
    CHECK(wait_call(C_CHECKPOINT, "BaseData_c") != NULL);
    CHECK(wait_call(C_READ, "BaseData_c") != NULL);
    CHECK(wait_call(C_HEARTBEAT, NULL) != NULL); /* the next heartbeat, unanswered */
    CHECK(find_call(C_GETCP, "BaseData_g") && find_call(C_CHECKPOINT, "BaseData_c") &&
          find_call(C_READ, "BaseData_c") && find_call(C_HEARTBEAT, NULL));
    int open_calls = 0;
    for (int i = 0; i < n_calls; i++)
        if (!calls[i].answered) open_calls++;
    int cancelled_before = n_cancelled;
    lunnel_worker_free(W);
    W = NULL;
    CHECK_INT(n_cancelled - cancelled_before, open_calls);
    for (int i = 0; i < n_calls; i++)
        CHECK(calls[i].answered); /* nothing left that could call back into a freed worker */
    CHECK_INT(exit_status, -1);   /* freed, not stopped: no exit callback */
}

int main(void)
{
    lunnel_log_set_level(LUNNEL_LOG_WARN);
    test_main_flow();
    test_manual_and_max_channels();
    test_inflight_budget();
    test_error_policies();
    test_failure_pacing();
    test_unparseable_alike();
    test_free_with_calls_in_flight();
    CHECK_INT(live_timers, 0); /* every worker freed its timers */
    TEST_DONE();
}
