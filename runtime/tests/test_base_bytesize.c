/* test_base_bytesize.c: the byte-size parser every bytes option uses (lunnel/bytesize.h):
 * binary and decimal units, spaces, fractions that are whole bytes, and refusals. */
#include "lunnel/bytesize.h"
#include "testutil.h"

static uint64_t ok(const char *s)
{
    uint64_t v = 0;
    CHECK_INT(lunnel_bytes_parse(s, &v), 0);
    return v;
}

static void bad(const char *s)
{
    uint64_t v = 12345;
    CHECK_INT(lunnel_bytes_parse(s, &v), -1);
    CHECK(v == 12345); /* untouched */
}

int main(void)
{
    CHECK(ok("67108864") == 67108864u);
    CHECK(ok("64MiB") == 64u << 20);
    CHECK(ok("64 MiB") == 64u << 20);
    CHECK(ok("64mib") == 64u << 20);
    CHECK(ok("64M") == 64u << 20);
    CHECK(ok("512KiB") == 512u << 10);
    CHECK(ok("1k") == 1024);
    CHECK(ok("1GiB") == 1u << 30);
    CHECK(ok("1.5GiB") == (3u << 30) / 2);
    CHECK(ok("2TiB") == 2ull << 40);
    CHECK(ok("1GB") == 1000000000u);
    CHECK(ok("64MB") == 64000000u);
    CHECK(ok("10KB") == 10000u);
    CHECK(ok("100B") == 100);
    CHECK(ok("0") == 0);
    bad("");
    bad("MiB");
    bad("-1");
    bad("64MQ");
    bad("1.5");    /* half a byte */
    bad("0.1KiB"); /* 102.4 bytes */
    bad("1e3");    /* no exponents */
    bad("0x10");   /* no hex */
    bad("1..2MiB");
    bad("8EiB");
    bad("9000000TiB"); /* past 2^63 */
    bad(NULL);
    TEST_DONE();
}
