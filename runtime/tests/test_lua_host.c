/* test_lua_host.c: the Lua host without any network: per-channel ordering under parallel
 * workers, open/shutdown and ctx fields, ctx.state persistence, script error -> failed batch
 * with traceback (and the next batch runs), memory limit -> failed batch and recovery, huge
 * outputs, bad bytes, manual commit marks, the process-timeout watchdog, the dead_letter hook
 * of failed batches (on the worker, with the decoded records, before the completion). */
#include <pthread.h>

#include "lunnel/readrecords.h"
#include "lunnel/record.h"
#include "test_lua_util.h"
#include "testutil.h"

static const char *SCRIPT =
    "local M = {}\n"
    "function M.open(ctx)\n"
    "  ctx.state.opened = true\n"
    "  ctx.state.n = 0\n"
    "  ctx.log.info('opened', {tunnel = ctx.tunnel_id, client = ctx.client_id,\n"
    "    stream = ctx.is_stream, trace = ctx.trace_id, sink = ctx.custom and ctx.custom.sink})\n"
    "end\n"
    "local function explode(t)\n"
    "  error('exploded at ' .. t)\n"
    "end\n"
    "function M.process(ctx, batch)\n"
    "  assert(ctx.state.opened, 'open() did not run first')\n"
    "  local t = ctx.next_token\n"
    "  ctx.state.n = ctx.state.n + 1\n"
    "  local seq = tonumber(t:match('^b(%d+)$'))\n"
    "  if seq and seq ~= ctx.state.n then\n"
    "    error('out of order: got ' .. seq .. ' expected ' .. ctx.state.n)\n"
    "  end\n"
    "  if #batch ~= ctx.record_count then error('batch length mismatch') end\n"
    "  for i, r in batch:iter() do\n"
    "    local id = r.pk.id\n"
    "    if r:get('v') ~= 'val-' .. id or r:get('n') ~= id * 10 then error('bad record') end\n"
    "  end\n"
    "  if t:find('boom') then explode(t) end\n"
    "  if t:find('hog') then\n"
    "    local keep = {}\n"
    "    for i = 1, 1e9 do keep[i] = string.rep('x', 1000) .. i end\n"
    "  end\n"
    "  if t:find('huge') then\n"
    "    ctx.log.info(string.rep('y', 5e6), {big = string.rep('z', 3e6)})\n"
    "    error(string.rep('e', 1e6))\n"
    "  end\n"
    "  if t:find('commit') then ctx:commit() end\n"
    "  if t:find('slow') then local t0 = os.clock() while os.clock() - t0 < 0.4 do end end\n"
    "  ctx.log.debug('seen', {token = t, worker = ctx.worker, n = ctx.state.n})\n"
    "end\n"
    "function M.shutdown(ctx)\n"
    "  ctx.log.info('closing', {count = ctx.state.n})\n"
    "end\n"
    "return M\n";

static struct ev_loop *loop;

/* ---- ordering under parallel workers ---- */

#define NCH 6
#define NB 60

static void test_ordering(const char *script)
{
    tl_ndone = 0;
    tl_log_clear();
    lunnel_host_config c = tl_config(loop, script, 3);
    c.custom_json = "{\"sink\":\"/tmp/x.jsonl\"}";
    char err[512] = "";
    lunnel_host *h = lunnel_host_new(&c, err, sizeof err);
    CHECK(h != NULL);
    if (!h) {
        fprintf(stderr, "host: %s\n", err);
        return;
    }
    size_t len = 0;
    uint8_t *rows = tl_make_rows(1, 4, &len);
    lunnel_host_channel *ch[NCH];
    int workers_used[3] = {0};
    for (int i = 0; i < NCH; i++) {
        char id[32];
        snprintf(id, sizeof id, "ch-%d", i);
        lunnel_host_channel_info info = {"tun-1",   "cli-1", id,
                                         "trace-9", 1,       (void *)(intptr_t)(i + 1)};
        ch[i] = lunnel_host_channel_open(h, &info);
        CHECK(ch[i] != NULL);
        workers_used[lunnel_host_channel_worker(ch[i])]++;
    }
    /* channels spread over every worker */
    CHECK_INT(workers_used[0], 2);
    CHECK_INT(workers_used[1], 2);
    CHECK_INT(workers_used[2], 2);
    for (int b = 1; b <= NB; b++) {
        for (int i = 0; i < NCH; i++) {
            char tok[32];
            snprintf(tok, sizeof tok, "b%d", b);
            lunnel_host_batch batch = {LUNNEL_HOST_PAYLOAD_PLAINBUFFER,
                                       rows,
                                       len,
                                       NULL,
                                       0,
                                       tok,
                                       (void *)(intptr_t)b,
                                       NULL,
                                       NULL};
            CHECK_INT(lunnel_host_submit(ch[i], &batch), 0);
        }
    }
    for (int i = 0; i < NCH; i++)
        CHECK_INT(lunnel_host_channel_shutdown(ch[i]), 0);
    /* after shutdown is queued, more batches are refused */
    lunnel_host_batch late = {
        LUNNEL_HOST_PAYLOAD_PLAINBUFFER, rows, len, NULL, 0, "late", NULL, NULL, NULL};
    CHECK_INT(lunnel_host_submit(ch[0], &late), LUNNEL_HOST_ESTATE);
    int want = NCH * (NB + 2);
    CHECK(tl_run_until(loop, tl_cond_ndone, &want, 30));
    CHECK_INT(tl_ndone, want);

    /* per channel: OPENED, batches 1..NB in order, all ok, then CLOSED */
    int ok_all = 1, order_ok = 1;
    for (int i = 0; i < NCH; i++) {
        int next = 0; /* 0: expect OPENED */
        for (int k = 0; k < tl_ndone; k++) {
            tl_done *d = &tl_dones[k];
            if ((intptr_t)d->channel_user != i + 1) continue;
            if (d->status != LUNNEL_HOST_OK) {
                ok_all = 0;
                fprintf(stderr, "unexpected failure: %s\n%s\n", d->error, d->traceback);
            }
            if (next == 0) {
                if (d->event != LUNNEL_HOST_EV_OPENED) order_ok = 0;
                next = 1;
            } else if (next <= NB) {
                if (d->event != LUNNEL_HOST_EV_BATCH || (intptr_t)d->batch_user != next)
                    order_ok = 0;
                if (d->records != 4) order_ok = 0;
                next++;
            } else {
                if (d->event != LUNNEL_HOST_EV_CLOSED) order_ok = 0;
                next++;
            }
        }
        if (next != NB + 2) order_ok = 0;
    }
    CHECK(ok_all);
    CHECK(order_ok);
    /* ctx fields and custom reached the script; shutdown saw ctx.state.n of every batch */
    CHECK_INT(tl_log_count("script|opened|channel=ch-", "tunnel=tun-1"), NCH);
    CHECK_INT(tl_log_count("client=cli-1", "sink=/tmp/x.jsonl"), NCH);
    CHECK_INT(tl_log_count("stream=true", "trace=trace-9"), NCH);
    CHECK_INT(tl_log_count("script|closing", "count=60"), NCH);
    CHECK_INT(tl_log_count("script|seen", NULL), NCH * NB);
    /* the three workers really ran scripts */
    CHECK(tl_log_count("script|seen", "worker=0") > 0);
    CHECK(tl_log_count("script|seen", "worker=1") > 0);
    CHECK(tl_log_count("script|seen", "worker=2") > 0);
    lunnel_host_stats st;
    lunnel_host_get_stats(h, &st);
    CHECK_INT(st.batches_ok, NCH * NB);
    CHECK_INT(st.batches_failed, 0);
    CHECK_INT(st.workers, 3);
    CHECK_INT(st.script_version, 1);
    lunnel_host_free(h);
    free(rows);
}

/* ---- different channels really run at the same time ---- */

static void test_parallel(void)
{
    tl_ndone = 0;
    tl_barrier_need = 2;
    tl_barrier_seen = tl_barrier_timeouts = 0;
    const char *p =
        tl_write("par.lua", "return {process = function(ctx) ctx.log.info('barrier') end}\n", 0);
    char path[512];
    snprintf(path, sizeof path, "%s", p);
    lunnel_host_config c = tl_config(loop, path, 2);
    char err[512] = "";
    lunnel_host *h = lunnel_host_new(&c, err, sizeof err);
    CHECK(h != NULL);
    if (!h) return;
    size_t len = 0;
    uint8_t *rows = tl_make_rows(1, 1, &len);
    lunnel_host_channel_info i1 = {"t", "c", "p1", NULL, 0, NULL},
                             i2 = {"t", "c", "p2", NULL, 0, NULL};
    lunnel_host_channel *a = lunnel_host_channel_open(h, &i1),
                        *b = lunnel_host_channel_open(h, &i2);
    CHECK(lunnel_host_channel_worker(a) != lunnel_host_channel_worker(b));
    lunnel_host_batch batch = {
        LUNNEL_HOST_PAYLOAD_PLAINBUFFER, rows, len, NULL, 0, "x", NULL, NULL, NULL};
    CHECK_INT(lunnel_host_submit(a, &batch), 0);
    CHECK_INT(lunnel_host_submit(b, &batch), 0);
    int want = 4;
    CHECK(tl_run_until(loop, tl_cond_ndone, &want, 15));
    /* both process() calls were inside the script at the same moment */
    CHECK_INT(tl_barrier_seen, 2);
    CHECK_INT(tl_barrier_timeouts, 0);
    lunnel_host_free(h);
    free(rows);
}

/* ---- failures: error, memory, huge output, bad bytes; then recovery ---- */

static void test_failures(const char *script)
{
    tl_ndone = 0;
    tl_log_clear();
    lunnel_host_config c = tl_config(loop, script, 1);
    c.memory_limit = 64u << 20;
    char err[512] = "";
    lunnel_host *h = lunnel_host_new(&c, err, sizeof err);
    CHECK(h != NULL);
    if (!h) {
        fprintf(stderr, "host: %s\n", err);
        return;
    }
    size_t len = 0;
    uint8_t *rows = tl_make_rows(100, 2, &len);
    uint8_t garbage[] = {0x75, 0, 0, 0, 0x01, 0x03, 0x04, 0xff, 0xff, 0xff, 0x7f};
    lunnel_host_channel_info info = {"t", "c", "chan", NULL, 0, (void *)1};
    lunnel_host_channel *ch = lunnel_host_channel_open(h, &info);
    const char *toks[] = {"b1",      "b2-boom",   "b3", "b4-hog", "b5",
                          "b6-huge", "b7-commit", "g8", "last"};
    int n = (int)(sizeof toks / sizeof *toks);
    for (int i = 0; i < n; i++) {
        lunnel_host_batch b = {LUNNEL_HOST_PAYLOAD_PLAINBUFFER, rows, len, NULL, 0, toks[i],
                               (void *)(intptr_t)(i + 1),       NULL, NULL};
        if (i == 7) { /* g8: bytes that do not decode */
            b.data = garbage;
            b.len = sizeof garbage;
        }
        CHECK_INT(lunnel_host_submit(ch, &b), 0);
    }
    int want = n + 1;
    CHECK(tl_run_until(loop, tl_cond_ndone, &want, 30));
    CHECK_INT(tl_ndone, want);
    tl_done *d = &tl_dones[1]; /* b1 */
    CHECK_INT(d->status, LUNNEL_HOST_OK);
    CHECK_INT(d->committed, 0);
    d = &tl_dones[2]; /* b2-boom: script error with file:line and traceback */
    CHECK_INT(d->status, LUNNEL_HOST_ESCRIPT);
    CHECK(strstr(d->error, "script.lua:9: exploded at b2-boom") != NULL);
    CHECK(strstr(d->traceback, "stack traceback") != NULL);
    CHECK(strstr(d->traceback, "explode") != NULL);
    CHECK(strstr(d->traceback, "script.lua:24") != NULL);
    CHECK(lunnel_host_code_is_retriable(d->status));
    /* b3 runs after the error: ctx.state kept counting across the failure */
    CHECK_INT(tl_dones[3].status, LUNNEL_HOST_OK);
    d = &tl_dones[4]; /* b4-hog: memory limit */
    CHECK_INT(d->status, LUNNEL_HOST_EMEMORY);
    CHECK(strstr(d->error, "memory limit") != NULL);
    CHECK_INT(tl_dones[5].status, LUNNEL_HOST_OK); /* b5: the state recovered */
    d = &tl_dones[6];                              /* b6-huge: huge log + huge error */
    CHECK_INT(d->status, LUNNEL_HOST_ESCRIPT);
    CHECK(d->error_len < 5000);
    CHECK(strstr(d->error_tail, "bytes cut)") != NULL);
    CHECK_INT(tl_dones[7].status, LUNNEL_HOST_OK);
    CHECK_INT(tl_dones[7].committed, 1); /* b7-commit: ctx:commit() */
    d = &tl_dones[8];                    /* g8: bad bytes */
    CHECK_INT(d->status, LUNNEL_HOST_EDECODE);
    CHECK(strstr(d->error, "does not decode") != NULL);
    CHECK(!lunnel_host_code_is_retriable(d->status));
    CHECK_INT(tl_dones[9].status, LUNNEL_HOST_OK); /* last */
    CHECK_INT(tl_dones[9].committed, 0);
    /* ctx.state persisted through the failures: 9 batches minus g8 (not decoded, process not
     * called) = 8 process calls counted in ctx.state.n */
    CHECK_INT(tl_log_count("token=last", "n=8"), 1);
    /* the 5 MB message and 3 MB field reached the logger cut to 16 KiB each */
    CHECK_INT(tl_log_count("script|yyyy", "len=16407 tail=y... (4983616 bytes cut)>"), 1);
    CHECK_INT(tl_log_count("big=zzz", "len=16407 tail=z... (2983616 bytes cut)>"), 1);
    lunnel_host_stats st;
    lunnel_host_get_stats(h, &st);
    CHECK_INT(st.memory_errors, 1);
    CHECK_INT(st.batches_failed, 4);
    CHECK_INT(st.batches_ok, 5);
    lunnel_host_free(h); /* with the channel still open: freed by the host */
    free(rows);
}

/* ---- dead_letter hook ---- */

/* What the hook saw, per call (written on the worker thread, read after the completions). */
typedef struct dl_seen {
    int calls, on_main_thread;
    char token[32], error[128], decode_error[128];
    long records, first_id;
    int had_records;
} dl_seen;
static dl_seen dl_log[8];
static pthread_t main_thread;

static int dl_write(void *ud, const lunnel_host_batch *batch, const lunnel_batch *records,
                    const char *decode_error, const char *error, const char *traceback, char *err,
                    size_t err_cap)
{
    (void)ud, (void)traceback;
    dl_seen *s = &dl_log[(intptr_t)batch->user];
    s->calls++;
    s->on_main_thread = pthread_equal(pthread_self(), main_thread);
    snprintf(s->token, sizeof s->token, "%s", batch->next_token ? batch->next_token : "");
    snprintf(s->error, sizeof s->error, "%s", error);
    snprintf(s->decode_error, sizeof s->decode_error, "%s", decode_error ? decode_error : "");
    s->had_records = records != NULL;
    if (records) {
        s->records = (long)records->count;
        const lunnel_record *r0 = records->count ? &records->records[0] : NULL;
        const lunnel_value *id = r0 && r0->pk_count ? &r0->pk[0].value : NULL; /* pk "id" */
        s->first_id = id && id->type == LUNNEL_VT_INTEGER ? (long)id->u.i : -1;
    }
    if (strstr(batch->next_token, "refuse")) { /* the writer fails: not set aside */
        snprintf(err, err_cap, "disk full");
        return -1;
    }
    return 0;
}

/* A failing batch reaches the hook on the worker thread with its decoded records (or, bytes
 * that do not decode, none and the codec's reason) before its completion, which carries the
 * hook's verdict; a batch that succeeds never reaches it. */
static void test_dead_letter_hook(const char *script)
{
    tl_ndone = 0;
    memset(dl_log, 0, sizeof dl_log);
    main_thread = pthread_self();
    lunnel_host_config c = tl_config(loop, script, 2);
    char err[512] = "";
    lunnel_host *h = lunnel_host_new(&c, err, sizeof err);
    CHECK(h != NULL);
    if (!h) return;
    size_t len = 0;
    uint8_t *rows = tl_make_rows(500, 3, &len);
    uint8_t garbage[] = {0x75, 0, 0, 0, 0x01, 0x03, 0x04, 0xff, 0xff, 0xff, 0x7f};
    lunnel_host_dead_letter hook = {.write = dl_write};
    lunnel_host_channel_info info = {"t", "c", "chan", NULL, 0, (void *)1};
    lunnel_host_channel *ch = lunnel_host_channel_open(h, &info);
    const char *toks[] = {"b1", "b2-boom", "g3", "b4-boom-refuse"};
    for (int i = 0; i < 4; i++) {
        lunnel_host_batch b = {LUNNEL_HOST_PAYLOAD_PLAINBUFFER, rows, len,  NULL, 0, toks[i],
                               (void *)(intptr_t)(i + 1),       NULL, &hook};
        if (i == 2) {
            b.data = garbage;
            b.len = sizeof garbage;
        }
        CHECK_INT(lunnel_host_submit(ch, &b), 0);
    }
    int want = 5;
    CHECK(tl_run_until(loop, tl_cond_ndone, &want, 30));
    CHECK_INT(tl_dones[1].status, LUNNEL_HOST_OK); /* b1: no hook */
    CHECK_INT(dl_log[1].calls, 0);
    CHECK_INT(tl_dones[1].dead_lettered, 0);
    /* b2-boom: the script failed; the hook had the 3 decoded records, off the loop thread */
    CHECK_INT(tl_dones[2].status, LUNNEL_HOST_ESCRIPT);
    CHECK_INT(dl_log[2].calls, 1);
    CHECK_INT(dl_log[2].on_main_thread, 0);
    CHECK_STR(dl_log[2].token, "b2-boom");
    CHECK(strstr(dl_log[2].error, "exploded at b2-boom") != NULL);
    CHECK(dl_log[2].had_records);
    CHECK_INT(dl_log[2].records, 3);
    CHECK_INT(dl_log[2].first_id, 500);
    CHECK_INT(tl_dones[2].dead_lettered, 1);
    CHECK_STR(tl_dones[2].dead_letter_error, "");
    /* g3: bytes that do not decode: no records, the codec's words */
    CHECK_INT(tl_dones[3].status, LUNNEL_HOST_EDECODE);
    CHECK_INT(dl_log[3].calls, 1);
    CHECK(!dl_log[3].had_records);
    CHECK(dl_log[3].decode_error[0] != '\0');
    CHECK(strstr(tl_dones[3].error, dl_log[3].decode_error) != NULL);
    CHECK_INT(tl_dones[3].dead_lettered, 1);
    /* b4: the writer failed: the completion says not set aside, and why */
    CHECK_INT(dl_log[4].calls, 1);
    CHECK_INT(tl_dones[4].dead_lettered, 0);
    CHECK_STR(tl_dones[4].dead_letter_error, "disk full");
    lunnel_host_free(h);
    free(rows);
}

/* ---- watchdog ---- */

static void test_watchdog(const char *script)
{
    tl_ndone = 0;
    tl_log_clear();
    lunnel_host_config c = tl_config(loop, script, 1);
    c.process_timeout_s = 0.1;
    char err[512] = "";
    lunnel_host *h = lunnel_host_new(&c, err, sizeof err);
    CHECK(h != NULL);
    if (!h) return;
    size_t len = 0;
    uint8_t *rows = tl_make_rows(1, 1, &len);
    lunnel_host_channel_info info = {"t", "c", "slowchan", NULL, 0, (void *)7};
    lunnel_host_channel *ch = lunnel_host_channel_open(h, &info);
    lunnel_host_batch b = {
        LUNNEL_HOST_PAYLOAD_PLAINBUFFER, rows, len, NULL, 0, "b1-slow", (void *)42, NULL, NULL};
    CHECK_INT(lunnel_host_submit(ch, &b), 0);
    lunnel_host_batch b2 = {
        LUNNEL_HOST_PAYLOAD_PLAINBUFFER, rows, len, NULL, 0, "b2", (void *)43, NULL, NULL};
    CHECK_INT(lunnel_host_submit(ch, &b2), 0);
    int want = 4; /* opened, timeout, batch, batch */
    CHECK(tl_run_until(loop, tl_cond_ndone, &want, 10));
    CHECK_INT(tl_ndone, 4);
    CHECK_INT(tl_dones[1].event, LUNNEL_HOST_EV_TIMEOUT);
    CHECK((intptr_t)tl_dones[1].batch_user == 42);
    CHECK_INT(tl_dones[2].event, LUNNEL_HOST_EV_BATCH);
    CHECK_INT(tl_dones[2].status, LUNNEL_HOST_OK); /* the slow call still finishes */
    CHECK_INT(tl_dones[3].event, LUNNEL_HOST_EV_BATCH);
    CHECK_INT(tl_count_event(LUNNEL_HOST_EV_TIMEOUT), 1); /* reported once per call */
    CHECK_INT(tl_log_count("host|script call runs past", "channel=slowchan"), 1);
    lunnel_host_stats st;
    lunnel_host_get_stats(h, &st);
    CHECK_INT(st.timeouts, 1);
    lunnel_host_free(h);
    free(rows);
}

/* ---- payload kinds: whole response (scanned on the worker), pre-scanned ranges ---- */

static void test_payloads(void)
{
    tl_ndone = 0;
    tl_log_clear();
    const char *p = tl_write(
        "payload.lua",
        "return {process = function(ctx, batch)\n"
        "  if ctx.next_token == 'tok-F' then return ctx.state.saved.pk.id end\n"
        "  ctx.state.saved = batch[1]\n"
        "  local ids = {}\n"
        "  for i, r in batch:iter() do\n"
        "    ids[i] = r.pk.id .. ':' .. r:get('v') .. ':' .. r:get('n') .. ':' .. r.action\n"
        "  end\n"
        "  ctx.log.info('payload', {token = ctx.next_token,\n"
        "    n = '#' .. ctx.record_count .. '#', len = '#' .. #batch .. '#',\n"
        "    ids = '[' .. table.concat(ids, ',') .. ']'})\n"
        "end}\n",
        0);
    char path[512];
    snprintf(path, sizeof path, "%s", p);
    lunnel_host_config c = tl_config(loop, path, 2);
    char err[512] = "";
    lunnel_host *h = lunnel_host_new(&c, err, sizeof err);
    CHECK(h != NULL);
    if (!h) return;
    size_t len = 0;
    uint8_t *resp = tl_make_response(1000, 5, "srv-token", &len);
    lunnel_rr_response rr;
    lunnel_rr_init(&rr);
    lunnel_codec_error e;
    CHECK_INT(lunnel_rr_scan(&rr, resp, len, &e), LUNNEL_CODEC_OK);
    CHECK_INT(rr.count, 5);
    uint8_t junk[] = {0x0a, 0x7f, 0x01};
    lunnel_host_channel_info info = {"t", "c", "pay", NULL, 1, NULL};
    lunnel_host_channel *ch = lunnel_host_channel_open(h, &info);
    lunnel_host_batch b1 = {
        LUNNEL_HOST_PAYLOAD_RESPONSE, resp, len, NULL, 0, "tok-A", (void *)1, NULL, NULL};
    lunnel_host_batch b2 = {LUNNEL_HOST_PAYLOAD_RANGES,
                            resp,
                            len,
                            rr.records,
                            rr.count,
                            "tok-B",
                            (void *)2,
                            NULL,
                            NULL};
    lunnel_host_batch b3 = {
        LUNNEL_HOST_PAYLOAD_RESPONSE, junk, sizeof junk, NULL, 0, "tok-C", (void *)3, NULL, NULL};
    lunnel_host_batch b4 = {
        LUNNEL_HOST_PAYLOAD_RANGES, resp, len, NULL, 0, "tok-D", (void *)4, NULL, NULL};
    CHECK_INT(lunnel_host_submit(ch, &b1), 0);
    CHECK_INT(lunnel_host_submit(ch, &b2), 0);
    CHECK_INT(lunnel_host_submit(ch, &b3), 0);
    CHECK_INT(lunnel_host_submit(ch, &b4), 0); /* zero ranges: an empty batch */
    /* a record view kept in ctx.state past its batch is stale: using it is a Lua error */
    size_t rl = 0;
    uint8_t *rows = tl_make_rows(7, 1, &rl);
    lunnel_host_batch b5 = {
        LUNNEL_HOST_PAYLOAD_RESPONSE, resp, len, NULL, 0, "tok-E", (void *)5, NULL, NULL};
    lunnel_host_batch b6 = {
        LUNNEL_HOST_PAYLOAD_PLAINBUFFER, rows, rl, NULL, 0, "tok-F", (void *)6, NULL, NULL};
    CHECK_INT(lunnel_host_submit(ch, &b5), 0);
    CHECK_INT(lunnel_host_submit(ch, &b6), 0);
    lunnel_host_batch bad = {LUNNEL_HOST_PAYLOAD_RANGES, resp, len, NULL, 3, "x", NULL, NULL, NULL};
    CHECK_INT(lunnel_host_submit(ch, &bad), LUNNEL_HOST_EINVAL);
    CHECK_INT(lunnel_host_channel_shutdown(ch), 0);
    int want = 8;
    CHECK(tl_run_until(loop, tl_cond_ndone, &want, 10));
    CHECK_INT(tl_dones[1].status, LUNNEL_HOST_OK);
    CHECK_INT(tl_dones[1].records, 5);
    CHECK_INT(tl_dones[2].status, LUNNEL_HOST_OK);
    CHECK_INT(tl_dones[2].records, 5);
    CHECK_INT(tl_dones[3].status, LUNNEL_HOST_EDECODE);
    CHECK_INT(tl_dones[4].status, LUNNEL_HOST_OK);
    CHECK_INT(tl_dones[4].records, 0);
    CHECK_INT(tl_dones[5].status, LUNNEL_HOST_OK);
    CHECK_INT(tl_dones[6].status, LUNNEL_HOST_ESCRIPT);
    CHECK(strstr(tl_dones[6].error, "stale") != NULL);
    if (!strstr(tl_dones[6].error, "stale")) fprintf(stderr, "tok-F: %s\n", tl_dones[6].error);
    CHECK_INT(tl_dones[7].event, LUNNEL_HOST_EV_CLOSED);
    CHECK_INT(tl_log_count("token=tok-A", "len=#5#"), 1);
    /* the records themselves, decoded on the worker through the real view */
    CHECK_INT(tl_log_count("token=tok-A", "ids=[1000:val-1000:10000:PUT,1001:val-1001:10010:PUT,"
                                          "1002:val-1002:10020:PUT,1003:val-1003:10030:PUT,"
                                          "1004:val-1004:10040:PUT]"),
              1);
    CHECK_INT(tl_log_count("token=tok-B", "ids=[1000:val-1000:10000:PUT,"), 1);
    CHECK_INT(tl_log_count("token=tok-B", "n=#5#"), 1);
    CHECK_INT(tl_log_count("token=tok-D", "len=#0#"), 1);
    CHECK_INT(tl_log_count("token=tok-C", NULL), 0);
    lunnel_rr_free(&rr);
    free(rows);
    free(resp);
    lunnel_host_free(h);
}

/* ---- freeing a busy host: queued jobs and undelivered completions are dropped cleanly
 * (the sanitizer build checks for leaks and use-after-free) ---- */

static void test_free_busy(const char *script)
{
    tl_ndone = 0;
    lunnel_host_config c = tl_config(loop, script, 2);
    char err[512] = "";
    lunnel_host *h = lunnel_host_new(&c, err, sizeof err);
    CHECK(h != NULL);
    if (!h) return;
    size_t len = 0;
    uint8_t *rows = tl_make_rows(1, 50, &len);
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "busy-%d", i);
        lunnel_host_channel_info info = {"t", "c", id, NULL, 0, NULL};
        lunnel_host_channel *ch = lunnel_host_channel_open(h, &info);
        for (int b = 1; b <= 200; b++) {
            char tok[16];
            snprintf(tok, sizeof tok, "b%d", b);
            lunnel_host_batch batch = {
                LUNNEL_HOST_PAYLOAD_PLAINBUFFER, rows, len, NULL, 0, tok, NULL, NULL, NULL};
            CHECK_INT(lunnel_host_submit(ch, &batch), 0);
        }
        if (i % 2) CHECK_INT(lunnel_host_channel_shutdown(ch), 0);
    }
    lunnel_host_free(h); /* without running the loop: nothing was delivered */
    CHECK_INT(tl_ndone, 0);
    free(rows);
}

/* ---- scripts that do not load ---- */

static void test_bad_scripts(void)
{
    struct {
        const char *text, *want;
    } cases[] = {
        {"local M = {\nreturn M\n", "bad.lua:2:"},
        {"return 42\n", "must return a table"},
        {"return {open = function() end}\n", "no process(ctx, batch)"},
        {"error('at load')\n", "bad.lua:1: at load"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *p = tl_write("bad.lua", cases[i].text, 0);
        lunnel_host_config c = tl_config(loop, p, 1);
        char err[512] = "";
        lunnel_host *h = lunnel_host_new(&c, err, sizeof err);
        CHECK(h == NULL);
        CHECK(strstr(err, cases[i].want) != NULL);
        if (!strstr(err, cases[i].want)) fprintf(stderr, "got: %s\n", err);
        lunnel_host_free(h);
    }
    /* invalid --custom JSON is an error too */
    const char *p = tl_write("ok.lua", "return {process = function() end}\n", 0);
    lunnel_host_config c = tl_config(loop, p, 1);
    c.custom_json = "{not json";
    char err[512] = "";
    lunnel_host *h = lunnel_host_new(&c, err, sizeof err);
    CHECK(h == NULL);
    CHECK(strstr(err, "--custom is not valid JSON") != NULL);
    lunnel_host_free(h);
}

int main(void)
{
    tl_setup_env();
    loop = ev_loop_new(EVFLAG_AUTO);
    tl_mkdir();
    const char *script = tl_write("script.lua", SCRIPT, 0);
    char path[512];
    snprintf(path, sizeof path, "%s", script);
    test_ordering(path);
    test_parallel();
    test_failures(path);
    test_dead_letter_hook(path);
    test_watchdog(path);
    test_payloads();
    test_free_busy(path);
    test_bad_scripts();
    tl_log_clear();
    tl_rmdir();
    ev_loop_destroy(loop);
    TEST_DONE();
}
