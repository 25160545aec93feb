/* admin.h: lunnel-emulator's own admin actions (POST /_emulator/<action>, JSON, signed):
 *   stats    {} -> {"requests":{path:{"requests":n,"errors":n}}, "tables":[{"name","rows",
 *               "changes_begin","changes_end"}], ...module figures (lunnel_emu_server_add_stats)}
 *   changes  {"table":T, "from":0, "limit":1000} -> {"table","begin","end","changes":[{"index",
 *               "action":"PUT|UPDATE|DELETE","epoch","timestamp_us","row_index","partition",
 *               "record":{decoded row JSON, see lunnel_record_tojson},"row_b64"}]}  (test-only)
 *   load     {"table":T, "rows":N, "columns":1, "value_bytes":200, "start":0,
 *             "pk_type":"INTEGER"|"STRING", "create":true} -> {"rows","changes_end","ms"}
 *             writes N generated rows (pk "id" = start..start+N-1, string columns c0..cK of
 *             value_bytes bytes) through the normal write path: every row is a change record.
 * The framework itself (routing, JSON parsing, signing) is in server.h. */
#ifndef LUNNEL_EMU_ADMIN_H
#define LUNNEL_EMU_ADMIN_H

#include "http/server.h"
#include "store/store.h"

int lunnel_emu_admin_register(lunnel_emu_server *srv, lunnel_emu_store *store);

#endif
