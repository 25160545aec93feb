/* test_sinks_sql_text.c: the value forms the SQL sinks write into statements (sql_text.c,
 * linked into lunnel_sink_postgres.so and lunnel_sink_mysql.so): exact integers at both ends
 * of int64, doubles that read back as the same double, quoting of identifiers and strings,
 * PostgreSQL's bytea and COPY escapes, and the clear refusals (NUL in PostgreSQL text, NaN for
 * MySQL) naming the column. */
#include <math.h>
#include <stdlib.h>

#include "sinks/sql_text.h"
#include "testutil.h"

static lunnel_column col(const char *name, uint8_t type)
{
    lunnel_column c;
    memset(&c, 0, sizeof c);
    c.name = (const uint8_t *)name;
    c.name_len = (uint32_t)strlen(name);
    c.value.type = type;
    return c;
}

static lunnel_column str(const char *name, uint8_t type, const char *s, size_t n)
{
    lunnel_column c = col(name, type);
    c.value.u.ptr = (const uint8_t *)s;
    c.value.len = (uint32_t)n;
    return c;
}

/* The text one append produced (from a reset buffer). */
#define FORM(call, want)                                                                           \
    do {                                                                                           \
        sql_text_reset(&t);                                                                        \
        CHECK_INT((call), 0);                                                                      \
        CHECK_STR(t.p ? t.p : "", (want));                                                         \
    } while (0)

int main(void)
{
    sql_text t;
    sql_text_init(&t);

    lunnel_column i = col("n", LUNNEL_VT_INTEGER);
    i.value.u.i = INT64_MIN;
    FORM(sql_text_scalar(&t, &i, SQL_DIALECT_POSTGRES), "-9223372036854775808");
    i.value.u.i = INT64_MAX;
    FORM(sql_text_pg_copy_value(&t, &i), "9223372036854775807");

    lunnel_column d = col("d", LUNNEL_VT_DOUBLE);
    d.value.u.d = 1.0 / 3.0;
    FORM(sql_text_scalar(&t, &d, SQL_DIALECT_MYSQL), "0.33333333333333331");
    CHECK(strtod(t.p, NULL) == 1.0 / 3.0);
    d.value.u.d = NAN;
    FORM(sql_text_scalar(&t, &d, SQL_DIALECT_POSTGRES), "'NaN'::float8");
    FORM(sql_text_pg_copy_value(&t, &d), "NaN");
    d.value.u.d = -INFINITY;
    FORM(sql_text_scalar(&t, &d, SQL_DIALECT_POSTGRES), "'-Infinity'::float8");
    sql_text_reset(&t);
    CHECK_INT(sql_text_scalar(&t, &d, SQL_DIALECT_MYSQL), -1);
    CHECK(strstr(t.err, "column 'd'") && strstr(t.err, "NaN or infinity"));

    lunnel_column b = col("b", LUNNEL_VT_BOOLEAN);
    b.value.u.i = 1;
    FORM(sql_text_scalar(&t, &b, SQL_DIALECT_MYSQL), "TRUE");
    FORM(sql_text_pg_copy_value(&t, &b), "t");

    lunnel_column del = col("gone", LUNNEL_VT_NONE);
    FORM(sql_text_pg_literal(&t, &del), "NULL");
    FORM(sql_text_pg_copy_value(&t, &del), "\\N");

    /* strings: standard-conforming quotes (a backslash is ordinary), COPY escapes */
    const char raw[] = "it's a\\b\tc\nd\re";
    lunnel_column s = str("s", LUNNEL_VT_STRING, raw, sizeof raw - 1);
    FORM(sql_text_pg_literal(&t, &s), "'it''s a\\b\tc\nd\re'");
    FORM(sql_text_pg_copy_value(&t, &s), "it's a\\\\b\\tc\\nd\\re");
    lunnel_column nul = str("bad", LUNNEL_VT_STRING, "a\0b", 3);
    sql_text_reset(&t);
    CHECK_INT(sql_text_pg_literal(&t, &nul), -1);
    CHECK(strstr(t.err, "column 'bad'") && strstr(t.err, "NUL"));
    sql_text_reset(&t);
    CHECK_INT(sql_text_pg_copy_value(&t, &nul), -1);

    /* binaries: every byte, as hex */
    lunnel_column x = str("x", LUNNEL_VT_BINARY, "\0\377\\'", 4);
    FORM(sql_text_pg_literal(&t, &x), "'\\x00ff5c27'");
    FORM(sql_text_pg_copy_value(&t, &x), "\\\\x00ff5c27");

    /* identifiers: the quote character doubled; a NUL refused */
    FORM(sql_text_ident(&t, "we\"ird", 6, SQL_DIALECT_POSTGRES), "\"we\"\"ird\"");
    FORM(sql_text_ident(&t, "we`ird", 6, SQL_DIALECT_MYSQL), "`we``ird`");
    sql_text_reset(&t);
    CHECK_INT(sql_text_ident(&t, "a\0b", 3, SQL_DIALECT_POSTGRES), -1);

    /* growth: a long statement stays exact */
    sql_text_reset(&t);
    for (int k = 0; k < 100000; k++)
        CHECK_INT(sql_text_append(&t, "ab", 2), 0);
    CHECK_INT(t.len, 200000);
    CHECK(t.p[199999] == 'b' && t.p[200000] == 0);

    sql_text_free(&t);
    TEST_DONE();
}
