/* fuzz_emulator_tunnel.c: untrusted bytes into the emulator's Tunnel Service request
 * handler (emulator/tunnel/tunnel_api.c). Byte 0 picks the call: 0-12 send the rest as the
 * protobuf body of one of the 13 /tunnel/... paths; 13 and 14 send the rest as the token of
 * a ReadRecords / Checkpoint by the real owner of a real channel (so token parsing, offsets
 * and batch framing are reached, not just "unknown tunnel"). Each input gets a fresh
 * registry with a tunnel, a client holding its channels and some stream data. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <proto/tunnel_service_api.pb-c.h>

#include "tunnel/tunnel.h"

static const char *const paths[] = {
    "/tunnel/create",     "/tunnel/delete",      "/tunnel/list",     "/tunnel/describe",
    "/tunnel/connect",    "/tunnel/heartbeat",   "/tunnel/shutdown", "/tunnel/getcheckpoint",
    "/tunnel/checkpoint", "/tunnel/readrecords", "/tunnel/getrpo",   "/tunnel/getrpobyoffset",
    "/tunnel/schedule"};

static int exists(void *ctx, const char *table)
{
    (void)ctx;
    return strcmp(table, "t") == 0;
}
static int snapshot(void *ctx, const char *table, emu_tunnel_row_fn fn, void *arg)
{
    (void)ctx;
    (void)table;
    emu_tunnel_row r = {(const uint8_t *)"row", 3, (const uint8_t *)"k", 1};
    return fn(arg, &r);
}
static const emu_tunnel_source src = {NULL, exists, snapshot};

static lunnel_emu_reply call(lunnel_emu_tunnels *t, const char *path, const ProtobufCMessage *m)
{
    uint8_t buf[4096];
    size_t n = protobuf_c_message_pack(m, buf);
    lunnel_emu_reply r;
    lunnel_emu_tunnels_handle(t, path, buf, n, &r);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    lunnel_emu_tunnel_opts o;
    lunnel_emu_tunnel_opts_default(&o);
    o.partitions = 1;
    o.batch_records = 3;
    lunnel_emu_tunnels *t = lunnel_emu_tunnels_new(&o, &src);
    for (int i = 0; i < 5; i++) {
        emu_tunnel_change c = {"t", 1, (const uint8_t *)"chg", 3, NULL, 0, (const uint8_t *)"k",
                               1,   1};
        lunnel_emu_tunnels_on_change(t, &c);
    }
    Lunnel__Tunnel__Tunnel tu = LUNNEL__TUNNEL__TUNNEL__INIT;
    tu.table_name = "t";
    tu.tunnel_name = "n";
    tu.tunnel_type = LUNNEL__TUNNEL__TUNNEL_TYPE__BaseAndStream;
    Lunnel__Tunnel__CreateTunnelRequest cq = LUNNEL__TUNNEL__CREATE_TUNNEL_REQUEST__INIT;
    cq.tunnel = &tu;
    lunnel_emu_reply r = call(t, "/tunnel/create", &cq.base);
    Lunnel__Tunnel__CreateTunnelResponse *cr =
        lunnel__tunnel__create_tunnel_response__unpack(NULL, r.len, r.body);
    lunnel_emu_reply_free(&r);
    Lunnel__Tunnel__ConnectRequest kq = LUNNEL__TUNNEL__CONNECT_REQUEST__INIT;
    kq.tunnel_id = cr->tunnel_id;
    r = call(t, "/tunnel/connect", &kq.base);
    Lunnel__Tunnel__ConnectResponse *kr =
        lunnel__tunnel__connect_response__unpack(NULL, r.len, r.body);
    lunnel_emu_reply_free(&r);
    Lunnel__Tunnel__HeartbeatRequest hq = LUNNEL__TUNNEL__HEARTBEAT_REQUEST__INIT;
    hq.tunnel_id = cr->tunnel_id;
    hq.client_id = kr->client_id;
    r = call(t, "/tunnel/heartbeat", &hq.base);
    lunnel_emu_reply_free(&r);

    uint8_t mode = data[0];
    if (mode % 16 < 13) {
        lunnel_emu_tunnels_handle(t, paths[mode % 16], data + 1, size - 1, &r);
        lunnel_emu_reply_free(&r);
    } else {
        char *tok = malloc(size);
        memcpy(tok, data + 1, size - 1);
        tok[size - 1] = 0;
        if (mode % 16 == 13) {
            Lunnel__Tunnel__ReadRecordsRequest q = LUNNEL__TUNNEL__READ_RECORDS_REQUEST__INIT;
            q.tunnel_id = cr->tunnel_id;
            q.client_id = kr->client_id;
            q.channel_id = "BaseData_p0";
            q.token = tok;
            r = call(t, "/tunnel/readrecords", &q.base);
        } else {
            Lunnel__Tunnel__CheckpointRequest q = LUNNEL__TUNNEL__CHECKPOINT_REQUEST__INIT;
            q.tunnel_id = cr->tunnel_id;
            q.client_id = kr->client_id;
            q.channel_id = mode % 16 == 14 ? "BaseData_p0" : "p0";
            q.checkpoint = tok;
            q.sequence_number = 1;
            r = call(t, "/tunnel/checkpoint", &q.base);
        }
        lunnel_emu_reply_free(&r);
        free(tok);
    }
    lunnel__tunnel__connect_response__free_unpacked(kr, NULL);
    lunnel__tunnel__create_tunnel_response__free_unpacked(cr, NULL);
    lunnel_emu_tunnels_free(t);
    return 0;
}
