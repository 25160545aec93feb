/* test_net_log.c: logger levels, text/JSON shapes, secret masking (message, fields, JSON
 * escaping) and whole lines under concurrent writers. */
#include <pthread.h>
#include <stdlib.h>

#include "lunnel/log.h"
#include "testutil.h"

static char captured[1 << 16];
static size_t cap_len;
static int lines;

static void sink(const char *line, size_t len, void *ud)
{
    (void)ud;
    lines++;
    if (cap_len + len < sizeof captured) {
        memcpy(captured + cap_len, line, len);
        cap_len += len;
        captured[cap_len] = '\0';
    }
}

static void reset(void)
{
    cap_len = 0;
    captured[0] = '\0';
    lines = 0;
}

static int bad_lines;
static void *writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++)
        lunnel_log_kv(LUNNEL_LOG_INFO, "t", "tick", "i", "x", NULL);
    return NULL;
}
static void check_sink(const char *line, size_t len, void *ud)
{
    (void)ud;
    lines++;
    /* Each line must be exactly one event: one newline, at the end. */
    if (len == 0 || line[len - 1] != '\n' || memchr(line, '\n', len - 1)) bad_lines++;
}

int main(void)
{
    lunnel_log_set_sink(sink, NULL);
    lunnel_log_set_level(LUNNEL_LOG_INFO);

    reset();
    lunnel_logf(LUNNEL_LOG_DEBUG, "http", "hidden %d", 1);
    CHECK_INT(lines, 0);
    lunnel_logf(LUNNEL_LOG_WARN, "http", "shown %d", 2);
    CHECK_INT(lines, 1);
    CHECK(strstr(captured, " WARN  [http] shown 2\n") != NULL);

    lunnel_log_level lv;
    CHECK_INT(lunnel_log_parse_level("DEBUG", &lv), 0);
    CHECK_INT(lv, LUNNEL_LOG_DEBUG);
    CHECK_INT(lunnel_log_parse_level("loud", &lv), -1);
    lunnel_log_format fm;
    CHECK_INT(lunnel_log_parse_format("json", &fm), 0);
    CHECK_INT(fm, LUNNEL_LOG_FORMAT_JSON);
    CHECK_INT(lunnel_log_parse_format("xml", &fm), -1);

    /* Text fields, quoting when needed. */
    reset();
    lunnel_log_kv(LUNNEL_LOG_INFO, "worker", "connected", "client", "c-1", "note", "two words",
                  "nil", NULL, NULL);
    CHECK(strstr(captured, "[worker] connected client=c-1 note=\"two words\" nil=null\n") != NULL);

    /* Secrets: masked in message and fields, in text and JSON. */
    lunnel_log_add_secret("SuperSecret-123");
    lunnel_log_add_secret("STS\"tok\\en");
    lunnel_log_add_secret("ab"); /* too short: ignored */
    reset();
    lunnel_logf(LUNNEL_LOG_ERROR, "cred", "bad secret SuperSecret-123 here");
    lunnel_log_kv(LUNNEL_LOG_ERROR, "cred", "x", "token", "STS\"tok\\en", "k", "ab", NULL);
    CHECK(strstr(captured, "SuperSecret") == NULL);
    CHECK(strstr(captured, "STS") == NULL);
    CHECK(strstr(captured, "bad secret *** here") != NULL);
    CHECK(strstr(captured, "token=*** k=ab") != NULL);

    lunnel_log_set_format(LUNNEL_LOG_FORMAT_JSON);
    reset();
    lunnel_log_kv(LUNNEL_LOG_WARN, "cred", "say \"hi\"\n", "token", "xSTS\"tok\\eny", "n", NULL,
                  NULL);
    CHECK(strstr(captured, "\"level\":\"warn\",\"component\":\"cred\",\"msg\":\"say "
                           "\\\"hi\\\"\\n\",\"token\":\"x***y\",\"n\":null}\n") != NULL);
    CHECK(captured[0] == '{');
    lunnel_log_field f[] = {{"a", "SuperSecret-123"}, {"b", "1"}};
    reset();
    lunnel_log_fields(LUNNEL_LOG_INFO, "lua", "m", f, 2);
    CHECK(strstr(captured, "\"a\":\"***\",\"b\":1}") != NULL);
    /* numbers are JSON numbers; ids, tokens and near-numbers stay strings */
    reset();
    lunnel_log_kv(LUNNEL_LOG_INFO, "w", "m", "records", "1000", "delay_s", "0.250", "neg", "-3e2",
                  "client_id", "12", "token", "5", "lead", "007", "half", "1.", "big",
                  "123456789012345678901234567890123", NULL);
    CHECK(strstr(captured, "\"records\":1000,\"delay_s\":0.250,\"neg\":-3e2,"
                           "\"client_id\":\"12\",\"token\":\"5\",\"lead\":\"007\","
                           "\"half\":\"1.\",\"big\":\"1234") != NULL);
    CHECK_INT(lunnel_log_get_format(), LUNNEL_LOG_FORMAT_JSON);
    lunnel_log_set_format(LUNNEL_LOG_FORMAT_TEXT);

    char out[64];
    lunnel_log_mask("k=SuperSecret-123;", out, sizeof out);
    CHECK_STR(out, "k=***;");
    lunnel_log_redact("SuperSecret-123", out, sizeof out);
    CHECK_STR(out, "****");
    lunnel_log_redact("", out, sizeof out);
    CHECK_STR(out, "(none)");
    lunnel_log_clear_secrets();
    lunnel_log_mask("SuperSecret-123", out, sizeof out);
    CHECK_STR(out, "SuperSecret-123");

    /* Long message beyond the stack buffer. */
    reset();
    char big[3000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    lunnel_logf(LUNNEL_LOG_INFO, "x", "%s", big);
    CHECK(strstr(captured, big) != NULL);

    /* Concurrent writers: every line whole. */
    lines = 0;
    lunnel_log_set_sink(check_sink, NULL);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, writer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_INT(lines, 8000);
    CHECK_INT(bad_lines, 0);
    lunnel_log_set_sink(NULL, NULL);
    TEST_DONE();
}
