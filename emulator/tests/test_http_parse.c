/* test_http_parse.c: the emulator's HTTP request-head parser: complete and partial heads,
 * framing, keep-alive, limits and every rejection with its status. */
#include <stdio.h>
#include <string.h>

#include "http/http_parse.h"
#include "testutil.h"

static lunnel_emu_http_result parse(const char *s, size_t max_body, lunnel_emu_http_req *r,
                                    int *status, char *err)
{
    return lunnel_emu_http_parse(s, strlen(s), max_body, r, status, err, 256);
}

int main(void)
{
    lunnel_emu_http_req r;
    int st;
    char err[256];

    const char *ok = "POST /PutRow?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
                     "x-ots-date:  2026-11-21T10:00:00.000Z \r\n\r\nhello";
    CHECK_INT(parse(ok, 100, &r, &st, err), LUNNEL_EMU_HTTP_HEAD_DONE);
    CHECK_INT(r.path.len, 7);
    CHECK(memcmp(r.path.p, "/PutRow", 7) == 0);
    CHECK_INT(r.content_length, 5);
    CHECK_INT(r.head_len, strlen(ok) - 5);
    CHECK(r.keep_alive);
    CHECK_INT(r.n_headers, 3);
    const lunnel_emu_span *d = lunnel_emu_http_header(&r, "X-OTS-DATE");
    CHECK(d && d->len == 24 && memcmp(d->p, "2026-11-21T10:00:00.000Z", 24) == 0);

    /* every proper prefix of the head is incomplete, never an error */
    size_t head = strlen(ok) - 5;
    int bad_prefix = 0;
    for (size_t n = 0; n < head; n++)
        if (lunnel_emu_http_parse(ok, n, 100, &r, &st, err, sizeof err) !=
            LUNNEL_EMU_HTTP_INCOMPLETE)
            bad_prefix++;
    CHECK_INT(bad_prefix, 0);

    CHECK_INT(parse("POST / HTTP/1.0\r\n\r\n", 10, &r, &st, err), LUNNEL_EMU_HTTP_HEAD_DONE);
    CHECK(!r.keep_alive);
    CHECK_INT(parse("POST / HTTP/1.1\r\nConnection: close\r\n\r\n", 10, &r, &st, err),
              LUNNEL_EMU_HTTP_HEAD_DONE);
    CHECK(!r.keep_alive);
    CHECK_INT(parse("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", 10, &r,
                    &st, err),
              LUNNEL_EMU_HTTP_HEAD_DONE);
    CHECK(r.expect_continue);

    /* rejections */
    CHECK_INT(parse("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10, &r, &st, err),
              LUNNEL_EMU_HTTP_ERROR);
    CHECK_INT(st, 413);
    CHECK(strstr(err, "11 bytes exceeds the limit of 10") != NULL);
    CHECK_INT(parse("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 10, &r, &st, err),
              LUNNEL_EMU_HTTP_ERROR);
    CHECK_INT(st, 400);
    CHECK(strstr(err, "Content-Length at byte 33") != NULL);
    CHECK_INT(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 10, &r,
                    &st, err),
              LUNNEL_EMU_HTTP_ERROR);
    CHECK_INT(st, 400);
    CHECK_INT(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 10, &r, &st, err),
              LUNNEL_EMU_HTTP_ERROR);
    CHECK_INT(st, 501);
    CHECK_INT(parse("POST / HTTP/2.0\r\n\r\n", 10, &r, &st, err), LUNNEL_EMU_HTTP_ERROR);
    CHECK_INT(st, 400);
    CHECK_INT(parse("POST / HTTP/1.9\r\n\r\n", 10, &r, &st, err), LUNNEL_EMU_HTTP_ERROR);
    CHECK_INT(st, 505);
    CHECK_INT(parse("POST / HTTP/1.1\r\n folded\r\n\r\n", 10, &r, &st, err), LUNNEL_EMU_HTTP_ERROR);
    CHECK_INT(parse("POST / HTTP/1.1\r\nbad name: x\r\n\r\n", 10, &r, &st, err),
              LUNNEL_EMU_HTTP_ERROR);
    CHECK_INT(parse("POST / HTTP/1.1\r\nA: x\x01y\r\n\r\n", 10, &r, &st, err),
              LUNNEL_EMU_HTTP_ERROR);
    CHECK_INT(parse("POST  HTTP/1.1\r\n\r\n", 10, &r, &st, err), LUNNEL_EMU_HTTP_ERROR);
    CHECK_INT(parse("\r\n\r\nPOST /a HTTP/1.1\r\n\r\n", 10, &r, &st, err),
              LUNNEL_EMU_HTTP_HEAD_DONE);

    /* too many headers */
    char many[8192] = "POST / HTTP/1.1\r\n";
    for (int i = 0; i < LUNNEL_EMU_HTTP_MAX_HEADERS + 1; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "h%d: v\r\n", i);
    strcat(many, "\r\n");
    CHECK_INT(parse(many, 10, &r, &st, err), LUNNEL_EMU_HTTP_ERROR);
    CHECK_INT(st, 431);

    /* a head that never ends stops at the bound */
    static char endless[LUNNEL_EMU_HTTP_MAX_HEAD + 10];
    memset(endless, 'a', sizeof endless);
    memcpy(endless, "POST / HTTP/1.1\r\nX: ", 20);
    CHECK_INT(lunnel_emu_http_parse(endless, sizeof endless, 10, &r, &st, err, sizeof err),
              LUNNEL_EMU_HTTP_ERROR);
    CHECK_INT(st, 431);
    TEST_DONE();
}
