/* test_base_buf.c: the base buffer (buf.h) and JSON writer (json.h): growth from caller
 * storage to the heap, printf past the capacity, array growth keeping elements, and the
 * writer's commas, nesting, keys and escaping. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/buf.h"
#include "lunnel/json.h"
#include "testutil.h"

static void test_buf(void)
{
    char stack[8];
    lunnel_buf b;
    lunnel_buf_init_on(&b, stack, sizeof stack);
    lunnel_buf_str(&b, "abc");
    CHECK(b.p == stack);
    CHECK_STR(b.p, "abc");
    lunnel_buf_str(&b, "defghij"); /* outgrows the stack array */
    CHECK(b.p != stack && b.on_heap);
    CHECK_STR(b.p, "abcdefghij");
    CHECK_INT(b.len, 10);
    lunnel_buf_printf(&b, "-%d-%s", 42, "x");
    CHECK_STR(b.p, "abcdefghij-42-x");
    lunnel_buf_reset(&b);
    CHECK_INT(b.len, 0);
    CHECK_STR(b.p, "");
    lunnel_buf_free(&b);
    CHECK(b.p == NULL && b.len == 0 && b.cap == 0);

    /* printf of a long text into an empty buffer, then raw bytes with a NUL */
    lunnel_buf h = LUNNEL_BUF_INIT;
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    lunnel_buf_printf(&h, "%s|", big);
    CHECK_INT(h.len, sizeof big);
    CHECK(h.p[h.len - 1] == '|' && h.p[h.len] == 0);
    lunnel_buf_add(&h, "a\0b", 3);
    CHECK_INT(h.len, sizeof big + 3);
    CHECK(!h.oom);
    lunnel_buf_free(&h);
}

static void test_vec(void)
{
    int *v = NULL;
    size_t cap = 0;
    CHECK_INT(lunnel_vec_reserve(&v, &cap, 1, 4), 0);
    CHECK_INT(cap, 4);
    for (int i = 0; i < 4; i++)
        v[i] = i;
    CHECK_INT(lunnel_vec_reserve(&v, &cap, 9, 4), 0);
    CHECK_INT(cap, 16);
    CHECK(v[0] == 0 && v[3] == 3);
    CHECK_INT(lunnel_vec_reserve(&v, &cap, 16, 4), 0); /* fits: unchanged */
    CHECK_INT(cap, 16);
    size_t huge = cap;
    CHECK_INT(lunnel_vec_reserve(&v, &huge, SIZE_MAX / 2, 4), -1); /* overflow refused */
    CHECK_INT(huge, 16);
    free(v);
}

static void test_json_writer(void)
{
    lunnel_buf b = LUNNEL_BUF_INIT;
    lunnel_jw w;
    lunnel_jw_init(&w, &b);
    lunnel_jw_object(&w);
    lunnel_jw_key(&w, "s");
    lunnel_jw_str(&w, "a\"b\n");
    lunnel_jw_key(&w, "n");
    lunnel_jw_int(&w, -5);
    lunnel_jw_key(&w, "u");
    lunnel_jw_uint(&w, 18446744073709551615ULL);
    lunnel_jw_key(&w, "none");
    lunnel_jw_str(&w, NULL);
    lunnel_jw_key(&w, "list");
    lunnel_jw_array(&w);
    lunnel_jw_bool(&w, 1);
    lunnel_jw_bool(&w, 0);
    lunnel_jw_object(&w);
    lunnel_jw_end_object(&w);
    lunnel_jw_array(&w);
    lunnel_jw_end_array(&w);
    lunnel_jw_raw(&w, "1.5", 3);
    lunnel_jw_end_array(&w);
    lunnel_jw_keyn(&w, "k\0x", 3);
    lunnel_jw_strn(&w, "\xff", 1);
    lunnel_jw_end_object(&w);
    CHECK_STR(b.p, "{\"s\":\"a\\\"b\\n\",\"n\":-5,\"u\":18446744073709551615,\"none\":null,"
                   "\"list\":[true,false,{},[],1.5],\"k\\u0000x\":\"\\ufffd\"}");
    lunnel_buf_free(&b);

    /* a top-level array of objects: commas between siblings only */
    lunnel_jw_init(&w, &b);
    lunnel_jw_array(&w);
    for (int i = 0; i < 3; i++) {
        lunnel_jw_object(&w);
        lunnel_jw_key(&w, "i");
        lunnel_jw_int(&w, i);
        lunnel_jw_end_object(&w);
    }
    lunnel_jw_end_array(&w);
    CHECK_STR(b.p, "[{\"i\":0},{\"i\":1},{\"i\":2}]");
    lunnel_buf_free(&b);
}

int main(void)
{
    test_buf();
    test_vec();
    test_json_writer();
    TEST_DONE();
}
