/* client_options.h: the option sets every lunnel command shares (connection, logging), on
 * the option-table machinery of lunnel/options.h, and what they turn into: the log settings
 * and a protocol client (credentials + http + api). */
#ifndef LUNNEL_CLI_CLIENT_OPTIONS_H
#define LUNNEL_CLI_CLIENT_OPTIONS_H

#include <stddef.h>

#include "lunnel/options.h"

/* Shared sets: endpoint, instance, access-key-id, access-key-secret, security-token,
 * credentials-command, ca-file, request-timeout, retry-window, read-retry-window,
 * max-connections; and log-level, log-format. */
extern const lunnel_opt_set lunnel_opts_connection;
extern const lunnel_opt_set lunnel_opts_logging;

/* Applies log-level / log-format (lunnel_opts_logging). 0 ok. */
int lunnel_opts_apply_logging(const lunnel_opt_values *v);

/* Builds credentials, http client and api from lunnel_opts_connection on `loop`
 * (credentials started on the loop, so OTSAuthFailed refresh works). Returns 0, or an
 * exit status (2 config, 3 credentials) with a one-line message in err. Release with
 * lunnel_opts_close_client(). */
struct ev_loop;
struct lunnel_credentials;
struct lunnel_http;
struct lunnel_api;
typedef struct lunnel_client {
    struct lunnel_credentials *creds;
    struct lunnel_http *http;
    struct lunnel_api *api;
} lunnel_client;
int lunnel_opts_open_client(const lunnel_opt_values *v, struct ev_loop *loop, lunnel_client *out,
                            char *err, size_t err_cap);
void lunnel_opts_close_client(lunnel_client *c);

#endif
