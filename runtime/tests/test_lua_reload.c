/* test_lua_reload.c: hot reload under load. Batches flow continuously on two channels (two
 * workers) while the script is rewritten valid -> broken -> valid, twice, each cycle within
 * one second, by in-place writes and by rename-replace. Asserts: every batch completes exactly
 * once, in channel order, and is processed exactly once; no broken version ever processes a
 * batch; ctx.state survives every swap; after the acknowledgement (waited on through the
 * stats, never on time) every batch runs the last version. Then the SIGHUP path
 * (lunnel_host_reload) on a host without inotify. */
#include <sys/stat.h>

#include "test_lua_util.h"
#include "testutil.h"

#define NCH 2
#define MAX_B 4000

static const char *VALID_FMT =
    "local V = '%s'\n"
    "local M = {}\n"
    "function M.process(ctx, batch)\n"
    "  ctx.state.n = (ctx.state.n or 0) + 1\n"
    "  ctx.log.info('ran', {token = ctx.next_token, v = V, n = '#' .. ctx.state.n .. '#'})\n"
    "end\n"
    "return M\n";

static const char *BROKEN_SYNTAX = "local V = 'broken1'\n"
                                   "local M = {\n"
                                   "function M.process(ctx) ctx.log.info('ran', {v = V}) end\n"
                                   "return M\n";

static const char *BROKEN_NO_PROCESS =
    "local M = {}\n"
    "function M.proces(ctx) ctx.log.info('ran', {v = 'broken2'}) end\n"
    "return M\n";

static struct ev_loop *loop;
static lunnel_host *host;
static lunnel_host_channel *chans[NCH];
static uint8_t *rows;
static size_t rows_len;
static int submitted[NCH]; /* batches submitted per channel */
static int completed[NCH]; /* EV_BATCH completions per channel */
static int order_errors, failures;
static char tokens[NCH][MAX_B][24];
static int feeding = 1;

static char valid_text[6][512];

static void on_done(const lunnel_host_completion *c, void *ud)
{
    tl_on_done(c, ud);
    if (c->event != LUNNEL_HOST_EV_BATCH) return;
    int ch = (int)(intptr_t)c->channel_user;
    int k = (int)(intptr_t)c->batch_user;
    if (k != completed[ch]) order_errors++;
    if (c->status != LUNNEL_HOST_OK) {
        failures++;
        fprintf(stderr, "failed: %s\n", c->error);
    }
    completed[ch]++;
}

static void feed(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
    if (!feeding) return;
    for (int i = 0; i < NCH; i++) {
        if (submitted[i] - completed[i] >= 3 || submitted[i] >= MAX_B) continue;
        int k = submitted[i];
        snprintf(tokens[i][k], sizeof tokens[i][k], "<c%d-%d>", i, k + 1);
        lunnel_host_batch b = {LUNNEL_HOST_PAYLOAD_PLAINBUFFER,
                               rows,
                               rows_len,
                               NULL,
                               0,
                               tokens[i][k],
                               (void *)(intptr_t)k,
                               NULL,
                               NULL};
        if (lunnel_host_submit(chans[i], &b) == 0) submitted[i]++;
    }
}

/* The rewrite schedule: two cycles valid -> broken -> valid, each within one second. */
static struct {
    double at;
    const char *text;
    int by_rename;
} plan[] = {
    {0.10, NULL, 1}, /* v2 */
    {0.30, NULL, 0}, /* broken: syntax */
    {0.50, NULL, 1}, /* v3 */
    {0.70, NULL, 0}, /* v4 */
    {0.90, NULL, 1}, /* broken: no process() */
    {1.10, NULL, 0}, /* v5 */
};
static int plan_next;
static double t_start;

static void rewrite(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
    while (plan_next < 6 && tl_now() - t_start >= plan[plan_next].at) {
        tl_write("script.lua", plan[plan_next].text, plan[plan_next].by_rename);
        plan_next++;
    }
}

static uint64_t want_hash;
static int cond_acked(void *arg)
{
    (void)arg;
    lunnel_host_stats st;
    lunnel_host_get_stats(host, &st);
    return plan_next == 6 && st.script_hash == want_hash;
}

static int cond_all_done(void *arg)
{
    (void)arg;
    for (int i = 0; i < NCH; i++)
        if (completed[i] != submitted[i]) return 0;
    return 1;
}

static int cond_reached(void *arg)
{
    int *target = arg;
    for (int i = 0; i < NCH; i++)
        if (submitted[i] < target[i]) return 0;
    return 1;
}

static void test_reload_under_load(void)
{
    for (int v = 1; v <= 5; v++) {
        char name[8];
        snprintf(name, sizeof name, "v%d", v);
        snprintf(valid_text[v], sizeof valid_text[v], VALID_FMT, name);
    }
    plan[0].text = valid_text[2];
    plan[1].text = BROKEN_SYNTAX;
    plan[2].text = valid_text[3];
    plan[3].text = valid_text[4];
    plan[4].text = BROKEN_NO_PROCESS;
    plan[5].text = valid_text[5];
    want_hash = lunnel_host_hash(valid_text[5], strlen(valid_text[5]));

    const char *p = tl_write("script.lua", valid_text[1], 0);
    char path[512];
    snprintf(path, sizeof path, "%s", p);
    lunnel_host_config c = tl_config(loop, path, 2);
    c.on_done = on_done;
    c.watch = 1;
    char err[512] = "";
    host = lunnel_host_new(&c, err, sizeof err);
    CHECK(host != NULL);
    if (!host) {
        fprintf(stderr, "host: %s\n", err);
        return;
    }
    for (int i = 0; i < NCH; i++) {
        char id[16];
        snprintf(id, sizeof id, "ch%d", i);
        lunnel_host_channel_info info = {"t", "c", id, NULL, 1, (void *)(intptr_t)i};
        chans[i] = lunnel_host_channel_open(host, &info);
    }
    CHECK(lunnel_host_channel_worker(chans[0]) != lunnel_host_channel_worker(chans[1]));

    ev_timer feeder, writer;
    ev_timer_init(&feeder, feed, 0.001, 0.002);
    ev_timer_init(&writer, rewrite, 0.01, 0.01);
    t_start = tl_now();
    ev_timer_start(loop, &feeder);
    ev_timer_start(loop, &writer);

    /* wait for the acknowledgement of the last version */
    CHECK(tl_run_until(loop, cond_acked, NULL, 15));
    double t_ack = tl_now() - t_start;
    ev_timer_stop(loop, &writer);
    int after_ack[NCH];
    for (int i = 0; i < NCH; i++)
        after_ack[i] = submitted[i];
    /* keep feeding 30 more batches per channel, then drain */
    int target[NCH];
    for (int i = 0; i < NCH; i++)
        target[i] = submitted[i] + 30;
    CHECK(tl_run_until(loop, cond_reached, target, 15));
    feeding = 0;
    ev_timer_stop(loop, &feeder);
    CHECK(tl_run_until(loop, cond_all_done, NULL, 15));

    lunnel_host_stats st;
    lunnel_host_get_stats(host, &st);
    printf(
        "reload test: %d+%d batches, ack after %.3f s, reloads ok=%llu failed=%llu, version=%d\n",
        submitted[0], submitted[1], t_ack, (unsigned long long)st.reloads_ok,
        (unsigned long long)st.reloads_failed, st.script_version);
    CHECK_INT(order_errors, 0);
    CHECK_INT(failures, 0);
    CHECK(st.reloads_ok >= 2);     /* v2..v5 seen, at least two of them acknowledged */
    CHECK(st.reloads_failed >= 1); /* the broken versions were rejected */
    CHECK(tl_log_count("host|script reloaded", "version=") >= 2);
    CHECK(tl_log_count("host|script reload rejected", "script.lua:") >= 1);
    CHECK(t_ack < 1.1 + 5); /* acknowledged promptly (bounded, generous under sanitizers) */

    /* every batch processed exactly once, in order, ctx.state continuous across swaps */
    int exact = 1, state_ok = 1, last_ok = 1;
    char a[48], b[48];
    for (int i = 0; i < NCH; i++) {
        for (int k = 0; k < submitted[i]; k++) {
            snprintf(a, sizeof a, "token=%s", tokens[i][k]);
            snprintf(b, sizeof b, "n=#%d#", k + 1);
            if (tl_log_count(a, "script|ran") != 1) exact = 0;
            if (tl_log_count(a, b) != 1) state_ok = 0;
            if (k >= after_ack[i] && tl_log_count(a, "v=v5") != 1) last_ok = 0;
        }
    }
    CHECK(exact);
    CHECK(state_ok);
    CHECK(last_ok);
    /* the broken versions never processed anything */
    CHECK_INT(tl_log_count("v=broken", NULL), 0);
    CHECK_INT(tl_log_count("script|ran", NULL), submitted[0] + submitted[1]);
    /* versions in effect over time: the first and the last both ran */
    CHECK(tl_log_count("script|ran", "v=v1") > 0);
    CHECK(tl_log_count("script|ran", "v=v5") >= 60);
    /* the SIGHUP trigger with unchanged bytes changes nothing */
    uint64_t before = st.reloads_ok;
    CHECK_INT(lunnel_host_reload(host), 0);
    lunnel_host_get_stats(host, &st);
    CHECK(st.reloads_ok == before);
    lunnel_host_free(host);
    host = NULL;
}

static uint64_t sighup_hash;
static lunnel_host *sighup_host;
static int cond_sighup(void *arg)
{
    (void)arg;
    lunnel_host_stats st;
    lunnel_host_get_stats(sighup_host, &st);
    return st.script_hash == sighup_hash && st.reloads_ok == 1;
}

static int cond_failed_once(void *arg)
{
    (void)arg;
    lunnel_host_stats st;
    lunnel_host_get_stats(sighup_host, &st);
    return st.reloads_failed == 1;
}

static void test_sighup_path(void)
{
    tl_ndone = 0;
    const char *p =
        tl_write("hup.lua", "return {process = function(ctx) ctx.log.info('hup1') end}\n", 0);
    char path[512];
    snprintf(path, sizeof path, "%s", p);
    lunnel_host_config c = tl_config(loop, path, 2);
    char err[512] = "";
    sighup_host = lunnel_host_new(&c, err, sizeof err);
    CHECK(sighup_host != NULL);
    if (!sighup_host) return;
    const char *v2 = "return {process = function(ctx) ctx.log.info('hup2') end}\n";
    tl_write("hup.lua", v2, 1);
    sighup_hash = lunnel_host_hash(v2, strlen(v2));
    /* no inotify on this host: nothing changes until the trigger */
    CHECK_INT(lunnel_host_reload(sighup_host), 0);
    CHECK(tl_run_until(loop, cond_sighup, NULL, 10));
    lunnel_host_channel_info info = {"t", "c", "h", NULL, 0, NULL};
    lunnel_host_channel *ch = lunnel_host_channel_open(sighup_host, &info);
    lunnel_host_batch b = {
        LUNNEL_HOST_PAYLOAD_PLAINBUFFER, rows, rows_len, NULL, 0, "x", NULL, NULL, NULL};
    CHECK_INT(lunnel_host_submit(ch, &b), 0);
    int want = 2;
    CHECK(tl_run_until(loop, tl_cond_ndone, &want, 10));
    CHECK_INT(tl_dones[1].status, LUNNEL_HOST_OK);
    CHECK_INT(tl_dones[1].version, 2);
    CHECK_INT(tl_log_count("script|hup2", NULL), 1);
    CHECK_INT(tl_log_count("script|hup1", NULL), 0);
    /* a broken rewrite is rejected (counted, logged with file:line), v2 keeps running */
    tl_write("hup.lua", "return {process = function(ctx) ctx.log.info('hup3') end\n", 1);
    CHECK_INT(lunnel_host_reload(sighup_host), 0);
    CHECK(tl_run_until(loop, cond_failed_once, NULL, 10));
    CHECK_INT(tl_log_count("host|script reload rejected", "hup.lua:2:"), 1);
    CHECK_INT(lunnel_host_submit(ch, &b), 0);
    want = 3;
    CHECK(tl_run_until(loop, tl_cond_ndone, &want, 10));
    CHECK_INT(tl_dones[2].status, LUNNEL_HOST_OK);
    CHECK_INT(tl_dones[2].version, 2);
    CHECK_INT(tl_log_count("script|hup2", NULL), 2);
    CHECK_INT(tl_log_count("script|hup3", NULL), 0);
    lunnel_host_stats st;
    lunnel_host_get_stats(sighup_host, &st);
    CHECK_INT(st.script_version, 2);
    CHECK_INT(st.reloads_ok, 1);
    lunnel_host_free(sighup_host);
}

/* A ConfigMap-style script: link.lua -> ..data/s.lua, ..data -> a versioned directory; an
 * update swaps ..data by rename. No event names link.lua, yet the reload happens. */
static lunnel_host *link_host;
static uint64_t link_hash;
static int cond_link(void *arg)
{
    (void)arg;
    lunnel_host_stats st;
    lunnel_host_get_stats(link_host, &st);
    return st.script_hash == link_hash;
}

static void test_symlink_swap(void)
{
    char p[600], q[600], path[600];
    const char *v1 = "return {process = function(ctx) ctx.log.info('link1') end}\n";
    const char *v2 = "return {process = function(ctx) ctx.log.info('link2') end}\n";
    snprintf(p, sizeof p, "%s/cm", tl_dir);
    CHECK(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/cm/.v1", tl_dir);
    CHECK(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/cm/.v2", tl_dir);
    CHECK(mkdir(p, 0755) == 0);
    tl_write("cm/.v1/s.lua", v1, 0);
    tl_write("cm/.v2/s.lua", v2, 0);
    snprintf(p, sizeof p, "%s/cm/..data", tl_dir);
    CHECK(symlink(".v1", p) == 0);
    snprintf(path, sizeof path, "%s/cm/link.lua", tl_dir);
    CHECK(symlink("..data/s.lua", path) == 0);
    lunnel_host_config c = tl_config(loop, path, 1);
    c.watch = 1;
    char err[512] = "";
    link_host = lunnel_host_new(&c, err, sizeof err);
    CHECK(link_host != NULL);
    if (!link_host) {
        fprintf(stderr, "host: %s\n", err);
        return;
    }
    link_hash = lunnel_host_hash(v2, strlen(v2));
    snprintf(q, sizeof q, "%s/cm/..data_tmp", tl_dir);
    CHECK(symlink(".v2", q) == 0);
    CHECK(rename(q, p) == 0);
    CHECK(tl_run_until(loop, cond_link, NULL, 10));
    lunnel_host_free(link_host);
}

int main(void)
{
    tl_setup_env();
    loop = ev_loop_new(EVFLAG_AUTO);
    tl_mkdir();
    rows = tl_make_rows(1, 2, &rows_len);
    test_reload_under_load();
    test_sighup_path();
    test_symlink_swap();
    free(rows);
    tl_log_clear();
    tl_rmdir();
    ev_loop_destroy(loop);
    TEST_DONE();
}
