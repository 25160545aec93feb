/* test_lua_tick.c: tick(ctx) and ctx:commit() outside process. With a tick interval the host
 * calls tick(ctx) on every open channel also when no batch comes; a tick queued behind a
 * batch runs after it (so a commit there covers that batch); ctx:commit() in tick or
 * shutdown is reported in the completion; a failing tick is logged once, not per interval;
 * a script without tick gets no EV_TICK with committed set. Waits on completions. */
#include "test_lua_util.h"
#include "testutil.h"

static const char *SCRIPT =
    "local M = {}\n"
    "function M.open(ctx) ctx.state.buf = 0; ctx.state.ticks = 0 end\n"
    "function M.process(ctx, batch) ctx.state.buf = ctx.state.buf + #batch end\n"
    "function M.tick(ctx)\n"
    "  ctx.state.ticks = ctx.state.ticks + 1\n"
    "  if ctx.custom and ctx.custom.fail and ctx.state.ticks <= 4 then error('tick fails') end\n"
    "  if ctx.state.buf > 0 then\n"
    "    ctx.log.info('flush', {n = ctx.state.buf}); ctx.state.buf = 0; ctx:commit()\n"
    "  end\n"
    "end\n"
    "function M.shutdown(ctx) if ctx.state.buf > 0 then ctx:commit() end end\n"
    "return M\n";

static struct ev_loop *loop;

static int count_ticks(int committed)
{
    int n = 0;
    for (int i = 0; i < tl_ndone; i++)
        n += tl_dones[i].event == LUNNEL_HOST_EV_TICK && tl_dones[i].committed == committed &&
             tl_dones[i].status == LUNNEL_HOST_OK;
    return n;
}

static int cond_ticks(void *arg)
{
    return count_ticks(0) >= *(int *)arg;
}

static int cond_committed_tick(void *arg)
{
    return count_ticks(1) >= *(int *)arg;
}

static int cond_failed_ticks(void *arg)
{
    int n = 0;
    for (int i = 0; i < tl_ndone; i++)
        n += tl_dones[i].event == LUNNEL_HOST_EV_TICK && tl_dones[i].status != LUNNEL_HOST_OK;
    return n >= *(int *)arg;
}

static void test_ticks(const char *custom)
{
    tl_ndone = 0;
    tl_log_clear();
    char path[512];
    snprintf(path, sizeof path, "%s", tl_write("tick.lua", SCRIPT, 0));
    lunnel_host_config c = tl_config(loop, path, 1);
    c.tick_interval_s = 0.02;
    c.custom_json = custom;
    char err[512] = "";
    lunnel_host *h = lunnel_host_new(&c, err, sizeof err);
    CHECK(h != NULL);
    if (!h) {
        fprintf(stderr, "host: %s\n", err);
        return;
    }
    lunnel_host_channel_info info = {"t", "c", "ch", NULL, 1, NULL};
    lunnel_host_channel *ch = lunnel_host_channel_open(h, &info);
    if (custom) {
        /* four failing ticks: one error line, then one recovery line */
        int want = 4;
        CHECK(tl_run_until(loop, cond_failed_ticks, &want, 10));
        want = 1;
        CHECK(tl_run_until(loop, cond_ticks, &want, 10));
        CHECK_INT(tl_log_count("host|tick(ctx) failed", "tick fails"), 1);
        CHECK_INT(tl_log_count("host|tick(ctx) succeeds again", NULL), 1);
    }
    /* ticks with no batch at all, nothing to commit */
    int want = 3;
    CHECK(tl_run_until(loop, cond_ticks, &want, 10));
    CHECK_INT(count_ticks(1), 0);
    /* a batch, then a tick that flushes and commits */
    size_t len = 0;
    uint8_t *rows = tl_make_rows(1, 3, &len);
    lunnel_host_batch b = {
        LUNNEL_HOST_PAYLOAD_PLAINBUFFER, rows, len, NULL, 0, "t1", NULL, NULL, NULL};
    CHECK_INT(lunnel_host_submit(ch, &b), 0);
    want = 1;
    CHECK(tl_run_until(loop, cond_committed_tick, &want, 10));
    /* the committing tick came after the batch's completion */
    int batch_at = -1, commit_at = -1;
    for (int i = 0; i < tl_ndone; i++) {
        if (tl_dones[i].event == LUNNEL_HOST_EV_BATCH) batch_at = i;
        if (tl_dones[i].event == LUNNEL_HOST_EV_TICK && tl_dones[i].committed && commit_at < 0)
            commit_at = i;
    }
    CHECK(batch_at >= 0 && commit_at > batch_at);
    CHECK_INT(tl_log_count("script|flush", "n=3"), 1);
    /* a batch left buffered is committed by shutdown(ctx) */
    CHECK_INT(lunnel_host_submit(ch, &b), 0);
    CHECK_INT(lunnel_host_channel_shutdown(ch), 0);
    int closed_at = -1;
    for (double end = tl_now() + 10; closed_at < 0 && tl_now() < end;) {
        ev_run(loop, EVRUN_ONCE);
        for (int i = 0; i < tl_ndone; i++)
            if (tl_dones[i].event == LUNNEL_HOST_EV_CLOSED) closed_at = i;
    }
    CHECK(closed_at >= 0);
    if (closed_at >= 0) {
        /* committed unless a tick flushed the second batch first */
        int flushed_twice = tl_log_count("script|flush", "n=3") == 2;
        CHECK_INT(tl_dones[closed_at].committed, flushed_twice ? 0 : 1);
        CHECK_INT(tl_dones[closed_at].status, LUNNEL_HOST_OK);
    }
    lunnel_host_free(h);
    free(rows);
}

int main(void)
{
    tl_setup_env();
    loop = ev_loop_new(EVFLAG_AUTO);
    tl_mkdir();
    test_ticks(NULL);
    test_ticks("{\"fail\":true}");
    tl_log_clear();
    tl_rmdir();
    ev_loop_destroy(loop);
    TEST_DONE();
}
