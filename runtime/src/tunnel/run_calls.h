/* run_calls.h: the tunnel calls the worker makes, in the shape the worker wants (plain
 * strings and channel views in, one callback out on the loop thread). run_calls.c maps them
 * onto api.h; keeping this seam narrow lets worker.c / channel.c stay independent of the
 * protobuf types. A NULL `err` in a callback means success. */
#ifndef LUNNEL_RUN_CALLS_H
#define LUNNEL_RUN_CALLS_H

#include <stddef.h>
#include <stdint.h>

#include "lunnel/channel.h"
#include "lunnel/error_class.h"
#include "lunnel/errors.h"

struct lunnel_api;

typedef void (*rc_connect_cb)(void *ud, const lunnel_error *err, const char *client_id);
typedef void (*rc_heartbeat_cb)(void *ud, const lunnel_error *err, const lunnel_channel_view *v,
                                size_t n);
typedef void (*rc_getcp_cb)(void *ud, const lunnel_error *err, const char *token, int64_t seq);
typedef void (*rc_status_cb)(void *ud, const lunnel_error *err);
/* `body` is the raw ReadRecordsResponse; ownership passes to the callback (free()).
 * trace_id: the call's x-ots-trace-id (borrowed for the callback; may be NULL). */
typedef void (*rc_read_cb)(void *ud, const lunnel_error *err, uint8_t *body, size_t len,
                           const char *trace_id);
/* Channel counts of DescribeTunnel: how many exist, how many are TERMINATED. */
typedef void (*rc_describe_cb)(void *ud, const lunnel_error *err, int n_channels, int n_terminated);

void rc_connect(struct lunnel_api *api, const char *tunnel_id, int64_t timeout_s,
                const char *client_tag, rc_connect_cb cb, void *ud);
void rc_heartbeat(struct lunnel_api *api, const char *tunnel_id, const char *client_id,
                  const lunnel_channel_view *v, size_t n, rc_heartbeat_cb cb, void *ud);
void rc_shutdown(struct lunnel_api *api, const char *tunnel_id, const char *client_id,
                 rc_status_cb cb, void *ud);
void rc_getcheckpoint(struct lunnel_api *api, const char *tunnel_id, const char *client_id,
                      const char *channel_id, rc_getcp_cb cb, void *ud);
void rc_checkpoint(struct lunnel_api *api, const char *tunnel_id, const char *client_id,
                   const char *channel_id, const char *token, int64_t seq, rc_status_cb cb,
                   void *ud);
void rc_readrecords(struct lunnel_api *api, const char *tunnel_id, const char *client_id,
                    const char *channel_id, const char *token, rc_read_cb cb, void *ud);
void rc_describe(struct lunnel_api *api, const char *table_name, const char *tunnel_name,
                 const char *tunnel_id, rc_describe_cb cb, void *ud);

#endif
