/* test_errors_util.h: a server error as the transport would report it (kind, HTTP status,
 * Tablestore code, message), for the tests that classify errors or map them to outcomes and
 * exit statuses without a server. */
#ifndef LUNNEL_TEST_ERRORS_UTIL_H
#define LUNNEL_TEST_ERRORS_UTIL_H

#include <stdio.h>

#include "lunnel/errors.h"

static inline lunnel_error tu_server_error(int status, const char *code, const char *msg)
{
    lunnel_error e;
    lunnel_error_clear(&e);
    e.kind = LUNNEL_NET_SERVER;
    e.http_status = status;
    snprintf(e.code, sizeof e.code, "%s", code);
    snprintf(e.message, sizeof e.message, "%s", msg);
    return e;
}

#endif
