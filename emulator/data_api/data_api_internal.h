/* data_api_internal.h: what the data API's files share: the module state, decoding of request
 * rows (PlainBuffer, lenient: the Node SDK pads its rows) into store values, and replies. */
#ifndef LUNNEL_EMU_DATA_API_INTERNAL_H
#define LUNNEL_EMU_DATA_API_INTERNAL_H

#include <proto/table_store.pb-c.h>

#include "http/server.h"
#include "lunnel/plainbuffer.h"
#include "store/store.h"

#define DATA_API_MAX_CELLS 1024 /* attribute columns per row in one request */

typedef struct data_api {
    lunnel_emu_server *srv;
    lunnel_emu_store *store;
    lunnel_arena *arena; /* decoded request rows; reset per request */
    lunnel_pb_writer w;  /* response rows */
} data_api;

/* One request row converted to store values; pointers into the request bytes. */
typedef struct req_row {
    lunnel_emu_value pk[LUNNEL_EMU_MAX_PK];
    size_t n_pk;
    lunnel_emu_cell *cells; /* arena memory */
    size_t n_cells;
    bool delete_marker;
} req_row;

/* Decodes exactly one row from `bytes` into `out` (arena memory of `api`). On error answers
 * 400 OTSParameterInvalid naming `what` and the codec's message, and returns -1. */
int data_api_decode_row(data_api *api, const uint8_t *bytes, size_t len, const char *what,
                        req_row *out, lunnel_emu_response *resp);

/* Looks a table up; answers 404 OTSObjectNotExist and returns NULL when absent. */
lunnel_emu_table *data_api_table(data_api *api, const char *name, lunnel_emu_response *resp);

/* Unpacks a request body as message `d` (heap memory; free with
 * protobuf_c_message_free_unpacked(msg, NULL)). On failure answers 400 OTSParameterInvalid
 * "<Message> does not parse as protobuf." and returns NULL. */
void *data_api_unpack(const ProtobufCMessageDescriptor *d, const lunnel_emu_request *req,
                      lunnel_emu_response *resp);

/* Answers a store error. */
void data_api_store_error(lunnel_emu_response *resp, lunnel_emu_store_err e, const char *msg);

/* Server time in milliseconds. */
int64_t data_api_now_ms(void);

void data_api_register_rows(data_api *api);

#endif
