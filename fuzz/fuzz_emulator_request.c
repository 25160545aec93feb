/* fuzz_emulator_request.c: fuzz target for lunnel-emulator's request path: HTTP/1.1 parsing
 * (http_parse.c), connection handling (server.c), authentication (auth.c) and, with auth
 * skipped, the data API handlers and admin actions (protobuf + PlainBuffer + JSON bodies).
 *
 * Input: byte 0 = flags (bit 0: skip authentication so bodies reach the handlers), the rest
 * is written as-is to one end of a socketpair served by an in-process emulator, with a
 * table "t" (pk id INTEGER, s STRING) already there. The run ends when the server has closed
 * its end or answered everything and the client half-closed. Bounded in loop iterations. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "admin/admin.h"
#include "data_api/data_api.h"
#include "http/server.h"
#include "store/store.h"

static struct ev_loop *loop;
static lunnel_emu_server *srv;
static lunnel_emu_config cfg;

/* Bulk load would make single inputs arbitrarily slow: refuse it here. */
static int no_load(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    (void)ud;
    if (strcmp(req->path, "/_emulator/load") != 0) return 0;
    lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid", "load disabled in the fuzzer");
    return 1;
}

static void setup(void)
{
    lunnel_emu_config_defaults(&cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.max_request_bytes = 1 << 20;
    cfg.verbose = getenv("FUZZ_EMULATOR_VERBOSE") != NULL; /* see what the seeds reach */
    loop = ev_loop_new(EVFLAG_AUTO);
    char err[256];
    srv = lunnel_emu_server_new(loop, &cfg, err, sizeof err);
    if (!srv) abort();
    lunnel_emu_store *st = lunnel_emu_store_new(4);
    if (!st || lunnel_emu_data_api_register(srv, st) != 0 ||
        lunnel_emu_admin_register(srv, st) != 0)
        abort();
    lunnel_emu_server_set_filter(srv, no_load, NULL);
    lunnel_emu_pk_schema pk[2] = {{.name = "id", .type = LUNNEL_EMU_PK_INTEGER},
                                  {.name = "s", .type = LUNNEL_EMU_PK_STRING}};
    lunnel_emu_table_options o = {.max_versions = 2, .time_to_live = -1};
    char msg[128];
    if (lunnel_emu_store_create_table(st, "t", pk, 2, &o, msg, sizeof msg) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv) setup();
    if (size < 1) return 0;
    cfg.skip_auth = data[0] & 1;
    data++;
    size--;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    if (lunnel_emu_server_adopt(srv, sv[0]) != 0) {
        close(sv[1]);
        return 0;
    }
    size_t off = 0;
    bool half_closed = false;
    char sink[65536];
    for (int iter = 0; iter < 100000; iter++) {
        if (off < size) {
            ssize_t n = write(sv[1], data + off, size - off);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                break;
        } else if (!half_closed) {
            shutdown(sv[1], SHUT_WR);
            half_closed = true;
        }
        ev_run(loop, EVRUN_NOWAIT);
        ssize_t r = read(sv[1], sink, sizeof sink);
        if (r == 0) break; /* server closed its end */
        if (r < 0 && errno != EAGAIN && errno != EINTR) break;
    }
    close(sv[1]);
    /* let the server notice the close and free the connection */
    for (int i = 0; i < 8; i++)
        ev_run(loop, EVRUN_NOWAIT);
    return 0;
}
