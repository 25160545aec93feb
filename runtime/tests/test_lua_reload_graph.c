/* test_lua_reload_graph.c: a version is the whole module graph. A script requiring two
 * helper modules (one beside it, one in a subdirectory) runs under continuous batches on two
 * channels (two workers) while each helper and then the script are edited good -> broken ->
 * good, a helper is deleted and restored. Asserts: every batch is processed exactly once and
 * in order; each by a version in effect (the helper tags a batch logs always match the
 * version number it logs; versions never go back on a channel); broken versions never run;
 * the script's reload(ctx, old_version) hook migrates ctx.state exactly once per channel and
 * version; changed files and the deletion are logged. Every step waits on the host's
 * counters or log lines, never on time alone. */
#include <sys/stat.h>

#include "test_lua_util.h"
#include "testutil.h"

#define NCH 2
#define MAX_B 6000

static const char *MAIN_V1 =
    "local a = require('helpa')\n"
    "local b = require('sub.helpb')\n"
    "local M = {}\n"
    "function M.open(ctx) ctx.state.count = 0 end\n"
    "function M.process(ctx, batch)\n"
    "  ctx.state.count = ctx.state.count + 1\n"
    "  ctx.log.info('ran', {token = ctx.next_token, m = 'm1', a = a.tag, b = b.tag,\n"
    "                       ver = '@' .. ctx.script_version .. '@', n = '#' .. ctx.state.count .. "
    "'#'})\n"
    "end\n"
    "return M\n";

/* m2/m3 keep the count in ctx.state.n: their reload hook migrates the old field */
static const char *MAIN_NEW_FMT =
    "local a = require('helpa')\n"
    "local b = require('sub.helpb')\n"
    "local M = {}\n"
    "function M.open(ctx) ctx.state.n = 0 end\n"
    "function M.reload(ctx, old)\n"
    "  if ctx.state.count then ctx.state.n, ctx.state.count = ctx.state.count, nil end\n"
    "  ctx.log.info('migrate', {m = '%s', old = old, ch = ctx.channel_id})\n"
    "end\n"
    "function M.process(ctx, batch)\n"
    "  ctx.state.n = ctx.state.n + 1\n"
    "  ctx.log.info('ran', {token = ctx.next_token, m = '%s', a = a.tag, b = b.tag,\n"
    "                       ver = '@' .. ctx.script_version .. '@', n = '#' .. ctx.state.n .. "
    "'#'})\n"
    "end\n"
    "return M\n";

static const char *MAIN_BROKEN = "local a = require('helpa')\n"
                                 "local M = {}\n"
                                 "function M.process(ctx) ctx.log.info('ran', {m = 'mbroken'})\n"
                                 "return M\n";

static struct ev_loop *loop;
static lunnel_host *host;
static lunnel_host_channel *chans[NCH];
static uint8_t *rows;
static size_t rows_len;
static int submitted[NCH], completed[NCH];
static int order_errors, failures;
static char tokens[NCH][MAX_B][24];
static int feeding = 1;

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
    (void)l, (void)w, (void)revents;
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

static uint64_t want_ok, want_failed;
static int cond_counts(void *arg)
{
    (void)arg;
    lunnel_host_stats st;
    lunnel_host_get_stats(host, &st);
    return st.reloads_ok == want_ok && st.reloads_failed == want_failed;
}

/* batches keep flowing past the current version: every channel ran `n` more of them */
static int cond_more(void *arg)
{
    int *target = arg;
    for (int i = 0; i < NCH; i++)
        if (completed[i] < target[i]) return 0;
    return 1;
}

static void let_batches_run(int n)
{
    int target[NCH];
    for (int i = 0; i < NCH; i++)
        target[i] = submitted[i] + n;
    CHECK(tl_run_until(loop, cond_more, target, 20));
}

static const char *log_needle_a, *log_needle_b;
static int cond_log(void *arg)
{
    (void)arg;
    return tl_log_count(log_needle_a, log_needle_b) > 0;
}

/* One step: write `text` to `name` (by rename on odd steps), then wait for the counters. */
static int step_no;
static void step(const char *name, const char *text, int ok_delta, int failed_delta)
{
    step_no++;
    tl_write(name, text, step_no % 2);
    want_ok += (uint64_t)ok_delta;
    want_failed += (uint64_t)failed_delta;
    if (!tl_run_until(loop, cond_counts, NULL, 20)) {
        lunnel_host_stats st;
        lunnel_host_get_stats(host, &st);
        fprintf(stderr, "step %d (%s): ok=%llu/%llu failed=%llu/%llu\n", step_no, name,
                (unsigned long long)st.reloads_ok, (unsigned long long)want_ok,
                (unsigned long long)st.reloads_failed, (unsigned long long)want_failed);
        CHECK(0);
    }
    let_batches_run(5);
}

/* version -> the tags its batches must log */
static const char *expect[][3] = {
    {NULL, NULL, NULL}, {"m1", "a1", "b1"}, {"m1", "a2", "b1"}, {"m1", "a3", "b1"},
    {"m1", "a3", "b2"}, {"m1", "a3", "b3"}, {"m2", "a3", "b3"}, {"m3", "a3", "b3"},
};

static int field(const char *line, const char *key, char *out, size_t cap)
{
    char k[32];
    snprintf(k, sizeof k, "|%s=", key);
    const char *p = strstr(line, k);
    if (!p) return 0;
    p += strlen(k);
    size_t n = strcspn(p, "|");
    snprintf(out, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), p);
    return 1;
}

static void check_versions(void)
{
    int bad = 0, last_ver[NCH] = {0}, backwards = 0, ran = 0;
    pthread_mutex_lock(&tl_log_mu);
    for (int i = 0; i < tl_nlog; i++) {
        const char *l = tl_log[i];
        if (!strstr(l, "script|ran|")) continue;
        ran++;
        char ver[16], m[16], a[16], b[16], ch[16];
        if (!field(l, "ver", ver, sizeof ver) || !field(l, "m", m, sizeof m) ||
            !field(l, "a", a, sizeof a) || !field(l, "b", b, sizeof b) ||
            !field(l, "channel", ch, sizeof ch)) {
            bad++;
            continue;
        }
        int v = atoi(ver + 1), c = atoi(ch + 2);
        if (v < 1 || v > 7 || strcmp(m, expect[v][0]) || strcmp(a, expect[v][1]) ||
            strcmp(b, expect[v][2])) {
            if (bad++ < 5) fprintf(stderr, "version mismatch: %s\n", l);
        }
        if (c >= 0 && c < NCH) {
            if (v < last_ver[c]) backwards++;
            last_ver[c] = v;
        }
    }
    pthread_mutex_unlock(&tl_log_mu);
    CHECK_INT(bad, 0);
    CHECK_INT(backwards, 0);
    CHECK_INT(ran, submitted[0] + submitted[1]);
    for (int c = 0; c < NCH; c++)
        CHECK_INT(last_ver[c], 7);
}

static void test_graph_reload(void)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/sub", tl_dir);
    CHECK(mkdir(dir, 0755) == 0);
    tl_write("helpa.lua", "return {tag = 'a1'}\n", 0);
    tl_write("sub/helpb.lua", "return {tag = 'b1'}\n", 0);
    char path[512];
    snprintf(path, sizeof path, "%s", tl_write("main.lua", MAIN_V1, 0));
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
    ev_timer feeder;
    ev_timer_init(&feeder, feed, 0.001, 0.002);
    ev_timer_start(loop, &feeder);
    let_batches_run(5);

    char m2[1200], m3[1200];
    snprintf(m2, sizeof m2, MAIN_NEW_FMT, "m2", "m2");
    snprintf(m3, sizeof m3, MAIN_NEW_FMT, "m3", "m3");
    /* helper beside the script: good, broken (syntax), good */
    step("helpa.lua", "return {tag = 'a2'}\n", 1, 0);
    CHECK(tl_log_count("host|script files changed", "helpa.lua") == 1);
    step("helpa.lua", "return {tag = 'abroken'\n", 0, 1);
    CHECK(tl_log_count("host|script reload rejected", "helpa.lua:") >= 1);
    step("helpa.lua", "return {tag = 'a3'}\n", 1, 0);
    /* helper in a subdirectory: good, broken (raises while loading), good */
    step("sub/helpb.lua", "return {tag = 'b2'}\n", 1, 0);
    CHECK(tl_log_count("host|script files changed", "sub/helpb.lua") == 1);
    step("sub/helpb.lua", "error('helper b refuses to load')\nreturn {tag = 'bbroken'}\n", 0, 1);
    CHECK(tl_log_count("host|script reload rejected", "helper b refuses") >= 1);
    step("sub/helpb.lua", "return {tag = 'b3'}\n", 1, 0);
    /* the script: good (with a reload hook), broken, good */
    step("main.lua", m2, 1, 0);
    step("main.lua", MAIN_BROKEN, 0, 1);
    step("main.lua", m3, 1, 0);

    /* deleting a helper: logged, the old version keeps running (a rejected re-validation,
     * since the script still requires it) */
    char hp[600];
    snprintf(hp, sizeof hp, "%s/helpa.lua", tl_dir);
    CHECK(unlink(hp) == 0);
    log_needle_a = "host|script file deleted";
    log_needle_b = "helpa.lua";
    CHECK(tl_run_until(loop, cond_log, NULL, 20));
    let_batches_run(5);
    tl_write("helpa.lua", "return {tag = 'a3'}\n", 0); /* the same bytes back: no new version */
    log_needle_a = "host|deleted script files are back";
    log_needle_b = NULL;
    CHECK(tl_run_until(loop, cond_log, NULL, 20));
    let_batches_run(5);

    feeding = 0;
    ev_timer_stop(loop, &feeder);
    int all[NCH];
    for (int i = 0; i < NCH; i++)
        all[i] = submitted[i];
    CHECK(tl_run_until(loop, cond_more, all, 20));

    lunnel_host_stats st;
    lunnel_host_get_stats(host, &st);
    printf("graph reload: %d+%d batches, reloads ok=%llu failed=%llu version=%d\n", submitted[0],
           submitted[1], (unsigned long long)st.reloads_ok, (unsigned long long)st.reloads_failed,
           st.script_version);
    CHECK_INT(st.script_version, 7);
    CHECK_INT(order_errors, 0);
    CHECK_INT(failures, 0);

    /* every batch exactly once, with the count carried (and migrated) across versions */
    int exact = 1, counted = 1;
    for (int i = 0; i < NCH; i++) {
        for (int k = 0; k < submitted[i]; k++) {
            char a[48], b[48];
            snprintf(a, sizeof a, "token=%s", tokens[i][k]);
            snprintf(b, sizeof b, "n=#%d#", k + 1);
            if (tl_log_count(a, "script|ran") != 1) exact = 0;
            if (tl_log_count(a, b) != 1) counted = 0;
        }
    }
    CHECK(exact);
    CHECK(counted);
    check_versions();
    /* broken versions never ran a batch */
    CHECK_INT(tl_log_count("broken", "script|ran"), 0);
    /* the reload hook: once per channel for m2 and once for m3 */
    CHECK_INT(tl_log_count("script|migrate", "m=m2"), NCH);
    CHECK_INT(tl_log_count("script|migrate", "m=m3"), NCH);
    CHECK_INT(tl_log_count("script|migrate", "old=6"), NCH);
    lunnel_host_free(host);
    host = NULL;
}

/* A module from a --lua-path directory (outside the script's own) is part of the version. */
static lunnel_host *lp_host;
static int cond_lp_reloaded(void *arg)
{
    (void)arg;
    lunnel_host_stats st;
    lunnel_host_get_stats(lp_host, &st);
    return st.reloads_ok == 1;
}

static void test_lua_path_module(void)
{
    char libdir[600], scriptdir[600];
    snprintf(libdir, sizeof libdir, "%s/lib", tl_dir);
    snprintf(scriptdir, sizeof scriptdir, "%s/app", tl_dir);
    CHECK(mkdir(libdir, 0755) == 0);
    CHECK(mkdir(scriptdir, 0755) == 0);
    tl_write("lib/extra.lua", "return {tag = 'e1'}\n", 0);
    char path[512];
    snprintf(path, sizeof path, "%s",
             tl_write("app/uses_extra.lua",
                      "local e = require('extra')\n"
                      "return {process = function(ctx) ctx.log.info('lp', {e = e.tag}) end}\n",
                      0));
    lunnel_host_config c = tl_config(loop, path, 1);
    c.watch = 1;
    c.lua_path = libdir;
    char err[512] = "";
    lp_host = lunnel_host_new(&c, err, sizeof err);
    CHECK(lp_host != NULL);
    if (!lp_host) {
        fprintf(stderr, "host: %s\n", err);
        return;
    }
    tl_write("lib/extra.lua", "return {tag = 'e2'}\n", 1);
    CHECK(tl_run_until(loop, cond_lp_reloaded, NULL, 20));
    CHECK(tl_log_count("host|script files changed", "lib/extra.lua") == 1);
    lunnel_host_channel_info info = {"t", "c", "lp", NULL, 1, NULL};
    lunnel_host_channel *ch = lunnel_host_channel_open(lp_host, &info);
    lunnel_host_batch b = {
        LUNNEL_HOST_PAYLOAD_PLAINBUFFER, rows, rows_len, NULL, 0, "x", NULL, NULL, NULL};
    int before = tl_ndone;
    CHECK_INT(lunnel_host_submit(ch, &b), 0);
    int want = before + 2; /* opened + batch */
    CHECK(tl_run_until(loop, tl_cond_ndone, &want, 20));
    CHECK_INT(tl_log_count("script|lp", "e=e2"), 1);
    CHECK_INT(tl_log_count("script|lp", "e=e1"), 0);
    lunnel_host_free(lp_host);
}

int main(void)
{
    tl_setup_env();
    loop = ev_loop_new(EVFLAG_AUTO);
    tl_mkdir();
    rows = tl_make_rows(1, 2, &rows_len);
    test_graph_reload();
    test_lua_path_module();
    free(rows);
    tl_log_clear();
    tl_rmdir();
    ev_loop_destroy(loop);
    TEST_DONE();
}
