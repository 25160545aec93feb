/* test_net_credentials.c: static and command credentials: JSON parsing (nested, escapes,
 * missing fields named, values never echoed), refresh timing, a fake credentials command
 * whose key expires in the past (refreshed promptly by the loop, off the loop thread) or in
 * the future (not refreshed), on-demand refresh, failures keeping the old key, secrets
 * registered for log masking; plus the time and duration parsers. */
#include <ev.h>
#include <stdlib.h>
#include <unistd.h>

#include "lunnel/credentials.h"
#include "lunnel/http.h"
#include "lunnel/log.h"
#include "lunnel/timeutil.h"
#include "testutil.h"

static char dir[] = "/tmp/lunnel-cred-XXXXXX";

/* Writes a credentials script printing a key numbered by how often it ran, expiring at
 * `expiration` (an RFC 3339 string), or failing when `fail` is set. */
static void write_script(const char *expiration, int fail)
{
    char path[256];
    snprintf(path, sizeof path, "%s/creds.sh", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "n=$(cat %s/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s/n\n", dir, dir);
    if (fail) fprintf(f, "echo oops >&2; exit 3\n");
    fprintf(f,
            "printf '{\"Credentials\": {\"AccessKeyId\": \"ak-%%s\", \"AccessKeySecret\": "
            "\"sk-secret-%%s\", "
            "\"SecurityToken\": \"tok\\\\/en-%%s\", \"Expiration\": \"%s\"}, \"Other\": [1, true, "
            "null]}' $n $n $n\n",
            expiration);
    fclose(f);
}

static int runs(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/n", dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = 0;
        fclose(f);
    }
    return n;
}

typedef struct {
    int done, ok;
    lunnel_error err;
} refresh_out;

static void on_refresh(int ok, const lunnel_error *err, void *ud)
{
    refresh_out *o = ud;
    o->done = 1;
    o->ok = ok;
    if (err) o->err = *err;
}

static char logged[8192];
static void sink(const char *line, size_t len, void *ud)
{
    (void)ud;
    size_t l = strlen(logged);
    if (l + len < sizeof logged) memcpy(logged + l, line, len + 0), logged[l + len] = '\0';
}

/* Runs the loop until the credentials generation reaches `gen` or timeout. */
typedef struct {
    lunnel_credentials *c;
    uint64_t gen;
    int reached;
    ev_timer poll;
} gen_wait;
static void on_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    gen_wait *g = w->data;
    lunnel_cred_snapshot s;
    lunnel_credentials_get(g->c, &s);
    if (s.generation >= g->gen) g->reached = 1;
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    lunnel_log_set_sink(sink, NULL);
    lunnel_error err;
    lunnel_cred_snapshot s;

    /* Static. */
    lunnel_credentials *c = lunnel_credentials_new_static("id", "static-secret-1", NULL, &err);
    CHECK(c != NULL);
    lunnel_credentials_get(c, &s);
    CHECK_STR(s.access_key_id, "id");
    CHECK_STR(s.security_token, "");
    CHECK(!lunnel_credentials_refreshable(c));
    CHECK_INT(lunnel_credentials_refresh(c, on_refresh, NULL), -1);
    lunnel_credentials_free(c);
    CHECK(lunnel_credentials_new_static("id", "", NULL, &err) == NULL);
    CHECK_INT(err.kind, LUNNEL_NET_CREDENTIALS);
    CHECK(strstr(err.message, "TABLESTORE_ACCESS_KEY_ID") != NULL);

    /* JSON parsing. */
    memset(&s, 0, sizeof s);
    CHECK_INT(lunnel_credentials_parse_json("{\"AccessKeyId\":\"a\",\"AccessKeySecret\":"
                                            "\"b\\u0041\",\"Expiration\":\"2026-11-21T10:00:00Z\"}",
                                            &s, &err),
              0);
    CHECK_STR(s.access_key_secret, "bA");
    CHECK(s.expiration_ms == 1795255200000LL);
    CHECK_INT(lunnel_credentials_parse_json("{\"AccessKeyId\":\"a\"}", &s, &err), -1);
    CHECK(strstr(err.message, "AccessKeySecret") != NULL);
    CHECK_INT(lunnel_credentials_parse_json("{\"AccessKeyId\":\"a\",\"AccessKeySecret\":\"hidden-"
                                            "value\",\"Expiration\":\"tomorrow\"}",
                                            &s, &err),
              -1);
    CHECK(strstr(err.message, "Expiration") != NULL);
    CHECK(strstr(err.message, "hidden-value") == NULL);
    CHECK_INT(
        lunnel_credentials_parse_json("{\"AccessKeyId\":\"a\",\"AccessKeySecret\":\"x\"", &s, &err),
        -1);
    CHECK(strstr(err.message, "malformed") != NULL);
    CHECK_INT(lunnel_credentials_parse_json("not json", &s, &err), -1);
    CHECK_INT(lunnel_credentials_parse_json("{\"AccessKeyId\":\"a\",\"AccessKeySecret\":\"x\"} x",
                                            &s, &err),
              -1);

    /* Refresh timing. */
    int64_t now = 1000000000000LL;
    CHECK(lunnel_credentials_refresh_delay_s(now, 0) == -1);
    CHECK(lunnel_credentials_refresh_delay_s(now, now - 5000) == 0);
    CHECK(lunnel_credentials_refresh_delay_s(now, now + 3600000) == 3300);
    CHECK(lunnel_credentials_refresh_delay_s(now, now + 60000) == 30);

    /* Command, expiry in the future: one run, no refresh while the loop runs briefly. */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "sh %s/creds.sh", dir);
    write_script("2099-01-01T00:00:00Z", 0);
    c = lunnel_credentials_new_command(cmd, 5, &err);
    CHECK(c != NULL);
    CHECK_INT(runs(), 1);
    lunnel_credentials_get(c, &s);
    CHECK_STR(s.access_key_id, "ak-1");
    CHECK_STR(s.security_token, "tok/en-1");
    CHECK_INT(s.generation, 1);
    CHECK(lunnel_credentials_refreshable(c));
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    lunnel_credentials_start(c, loop);
    gen_wait g = {.c = c, .gen = 2};
    ev_timer_init(&g.poll, on_poll, 0.01, 0.01);
    g.poll.data = &g;
    ev_timer_start(loop, &g.poll);
    /* Bounded wait that must NOT see a refresh (the key is good until 2099). */
    CHECK_INT(lunnel_http_run_until(loop, &g.reached, 0.3), -1);
    CHECK_INT(runs(), 1);

    /* On-demand refresh (as after OTSAuthFailed): runs off the loop thread; the loop keeps
     * turning meanwhile (the poll timer fires while we wait). */
    refresh_out ro = {0};
    CHECK_INT(lunnel_credentials_refresh(c, on_refresh, &ro), 0);
    CHECK_INT(ro.done, 0);
    CHECK_INT(lunnel_http_run_until(loop, &ro.done, 10), 0);
    CHECK(ro.ok);
    lunnel_credentials_get(c, &s);
    CHECK_STR(s.access_key_id, "ak-2");
    CHECK_INT(s.generation, 2);

    /* A failing command keeps the old key and reports the exit status. */
    write_script("2099-01-01T00:00:00Z", 1);
    memset(&ro, 0, sizeof ro);
    CHECK_INT(lunnel_credentials_refresh(c, on_refresh, &ro), 0);
    CHECK_INT(lunnel_http_run_until(loop, &ro.done, 10), 0);
    CHECK(!ro.ok);
    CHECK(strstr(ro.err.message, "exit status 3") != NULL);
    lunnel_credentials_get(c, &s);
    CHECK_STR(s.access_key_id, "ak-2");
    lunnel_credentials_stop(c);
    lunnel_credentials_free(c);

    /* Command, expiry in the past: started on the loop, it is re-run promptly. */
    snprintf(cmd, sizeof cmd, "rm -f %s/n", dir);
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "sh %s/creds.sh", dir);
    write_script("2020-01-01T00:00:00Z", 0);
    c = lunnel_credentials_new_command(cmd, 5, &err);
    CHECK(c != NULL);
    lunnel_credentials_start(c, loop);
    g.c = c;
    g.gen = 2;
    g.reached = 0;
    CHECK_INT(lunnel_http_run_until(loop, &g.reached, 10), 0);
    lunnel_credentials_get(c, &s);
    CHECK_STR(s.access_key_id, "ak-2");
    CHECK(runs() >= 2);
    lunnel_credentials_free(c);

    /* A command that fails at startup names the failure. */
    CHECK(lunnel_credentials_new_command("exit 7", 5, &err) == NULL);
    CHECK(strstr(err.message, "exit status 7") != NULL);
    CHECK(lunnel_credentials_new_command("echo '{}'", 5, &err) == NULL);
    CHECK(strstr(err.message, "AccessKeyId") != NULL);
    CHECK(lunnel_credentials_new_command("sleep 5", 0.2, &err) == NULL);
    CHECK(strstr(err.message, "timed out") != NULL);

    /* Every secret learnt is masked in logs. */
    logged[0] = '\0';
    lunnel_log_kv(LUNNEL_LOG_ERROR, "t", "oops sk-secret-1 static-secret-1", "tok", "tok/en-2",
                  NULL);
    CHECK(strstr(logged, "sk-secret") == NULL);
    CHECK(strstr(logged, "static-secret") == NULL);
    CHECK(strstr(logged, "tok/en") == NULL);
    CHECK(strstr(logged, "oops *** ***") != NULL);

    ev_timer_stop(loop, &g.poll);
    ev_loop_destroy(loop);
    lunnel_log_set_sink(NULL, NULL);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);

    /* Time and duration parsing (shared with the CLI options). */
    int64_t ms;
    CHECK_INT(lunnel_time_parse("2026-11-21T10:00:00.5+08:00", &ms), 0);
    CHECK(ms == 1795255200000LL - 8 * 3600000LL + 500);
    CHECK_INT(lunnel_time_parse("1795255200000", &ms), 0);
    CHECK(ms == 1795255200000LL);
    CHECK_INT(lunnel_time_parse("2026-13-01T00:00:00Z", &ms), -1);
    CHECK_INT(lunnel_time_parse("2026-11-21T10:00:00", &ms), -1);
    CHECK_INT(lunnel_time_parse("", &ms), -1);
    double d;
    CHECK_INT(lunnel_duration_parse("500ms", &d), 0);
    CHECK(d == 0.5);
    CHECK_INT(lunnel_duration_parse("5s", &d), 0);
    CHECK(d == 5);
    CHECK_INT(lunnel_duration_parse("2m", &d), 0);
    CHECK(d == 120);
    CHECK_INT(lunnel_duration_parse("7", &d), 0);
    CHECK(d == 7);
    CHECK_INT(lunnel_duration_parse("1.5s", &d), 0);
    CHECK(d == 1.5);
    CHECK_INT(lunnel_duration_parse("5x", &d), -1);
    CHECK_INT(lunnel_duration_parse("-1s", &d), -1);
    CHECK_INT(lunnel_duration_parse("0x10", &d), -1);
    CHECK_INT(lunnel_duration_parse("inf", &d), -1);
    TEST_DONE();
}
