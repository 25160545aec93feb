/* readrecords_bench.c: ReadRecords throughput of lunnel-emulator on loopback, one client.
 * Loads N rows through the admin bulk loader, then drains (1) a BaseData tunnel and (2) a
 * Stream tunnel from EARLIEST with one keep-alive connection, sequentially channel by
 * channel, exactly like a single worker would (GetCheckpoint, then ReadRecords with each
 * next_token). Reports records/s, MB/s of response bytes, average record size, and the
 * emulator's CPU use over the read phase (from /proc/<pid>/stat) to show it is one core.
 * The client only scans the top-level protobuf fields (no per-record decode), so the figure
 * is the server's, not the client's decoder's.
 * Usage: readrecords_bench PORT EMULATOR_PID ROWS VALUE_BYTES [REPEAT] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <proto/tunnel_service_api.pb-c.h>

#include "tunnel_http_client.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int call(th_client *h, const char *path, const ProtobufCMessage *m)
{
    uint8_t buf[4096];
    size_t n = protobuf_c_message_pack(m, buf);
    return th_post(h, path, buf, n);
}

static uint64_t varint(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    int s = 0;
    while (*p < end && s < 64) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) break;
        s += 7;
    }
    return v;
}

/* Top-level scan of a ReadRecordsResponse: counts records, copies next_token. */
static int scan(const uint8_t *p, size_t len, char *token, size_t toklen, int *more,
                size_t *recbytes)
{
    const uint8_t *end = p + len;
    int n = 0;
    *more = 0;
    *recbytes = 0;
    token[0] = 0;
    while (p < end) {
        uint64_t key = varint(&p, end);
        if ((key & 7) == 2) {
            uint64_t l = varint(&p, end);
            if (l > (uint64_t)(end - p)) return -1;
            if (key >> 3 == 1) {
                n++;
                *recbytes += l;
            } else if (key >> 3 == 2) {
                size_t c = l < toklen - 1 ? l : toklen - 1;
                memcpy(token, p, c);
                token[c] = 0;
            }
            p += l;
        } else if ((key & 7) == 0) {
            uint64_t v = varint(&p, end);
            if (key >> 3 == 3) *more = (int)v;
        } else {
            return -1;
        }
    }
    return n;
}

typedef struct result {
    long records, requests;
    double bytes, recbytes, secs, cpu;
} result;

static int drain(th_client *h, int pid, int type, long want, result *r)
{
    static int seq;
    char name[32];
    snprintf(name, sizeof name, "bench%d", ++seq);
    Lunnel__Tunnel__StreamTunnelConfig cfg = LUNNEL__TUNNEL__STREAM_TUNNEL_CONFIG__INIT;
    cfg.has_flag = 1;
    cfg.flag = LUNNEL__TUNNEL__START_OFFSET_FLAG__EARLIEST;
    Lunnel__Tunnel__Tunnel tu = LUNNEL__TUNNEL__TUNNEL__INIT;
    tu.table_name = "bench";
    tu.tunnel_name = name;
    tu.tunnel_type = (Lunnel__Tunnel__TunnelType)type;
    if (type == 2) tu.stream_tunnel_config = &cfg;
    Lunnel__Tunnel__CreateTunnelRequest cq = LUNNEL__TUNNEL__CREATE_TUNNEL_REQUEST__INIT;
    cq.tunnel = &tu;
    if (call(h, "/tunnel/create", &cq.base) != 200) return -1;
    Lunnel__Tunnel__CreateTunnelResponse *cr =
        lunnel__tunnel__create_tunnel_response__unpack(NULL, h->len, h->buf);
    char tid[64], cid[64];
    snprintf(tid, sizeof tid, "%s", cr->tunnel_id);
    lunnel__tunnel__create_tunnel_response__free_unpacked(cr, NULL);
    Lunnel__Tunnel__ConnectRequest kq = LUNNEL__TUNNEL__CONNECT_REQUEST__INIT;
    kq.tunnel_id = tid;
    if (call(h, "/tunnel/connect", &kq.base) != 200) return -1;
    Lunnel__Tunnel__ConnectResponse *kr =
        lunnel__tunnel__connect_response__unpack(NULL, h->len, h->buf);
    snprintf(cid, sizeof cid, "%s", kr->client_id);
    lunnel__tunnel__connect_response__free_unpacked(kr, NULL);
    Lunnel__Tunnel__HeartbeatRequest hq = LUNNEL__TUNNEL__HEARTBEAT_REQUEST__INIT;
    hq.tunnel_id = tid;
    hq.client_id = cid;
    if (call(h, "/tunnel/heartbeat", &hq.base) != 200) return -1;
    Lunnel__Tunnel__HeartbeatResponse *hr =
        lunnel__tunnel__heartbeat_response__unpack(NULL, h->len, h->buf);
    memset(r, 0, sizeof *r);
    double t0 = now_s(), c0 = cpu_s(pid);
    char token[1024];
    for (size_t i = 0; i < hr->n_channels; i++) {
        Lunnel__Tunnel__GetCheckpointRequest gq = LUNNEL__TUNNEL__GET_CHECKPOINT_REQUEST__INIT;
        gq.tunnel_id = tid;
        gq.client_id = cid;
        gq.channel_id = hr->channels[i]->channel_id;
        if (call(h, "/tunnel/getcheckpoint", &gq.base) != 200) return -1;
        Lunnel__Tunnel__GetCheckpointResponse *gr =
            lunnel__tunnel__get_checkpoint_response__unpack(NULL, h->len, h->buf);
        snprintf(token, sizeof token, "%s", gr->checkpoint);
        lunnel__tunnel__get_checkpoint_response__free_unpacked(gr, NULL);
        for (;;) {
            Lunnel__Tunnel__ReadRecordsRequest rq = LUNNEL__TUNNEL__READ_RECORDS_REQUEST__INIT;
            rq.tunnel_id = tid;
            rq.client_id = cid;
            rq.channel_id = hr->channels[i]->channel_id;
            rq.token = token;
            if (call(h, "/tunnel/readrecords", &rq.base) != 200) return -1;
            int more;
            size_t rb;
            int n = scan(h->buf, h->len, token, sizeof token, &more, &rb);
            if (n < 0) return -1;
            r->records += n;
            r->requests++;
            r->bytes += (double)h->len;
            r->recbytes += (double)rb;
            if (!strcmp(token, "finished") || (!more && n == 0) || (type == 2 && !more)) break;
        }
    }
    r->secs = now_s() - t0;
    r->cpu = cpu_s(pid) - c0;
    lunnel__tunnel__heartbeat_response__free_unpacked(hr, NULL);
    return r->records == want ? 0 : -2;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s PORT EMULATOR_PID ROWS VALUE_BYTES\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]), pid = atoi(argv[2]);
    long rows = atol(argv[3]);
    int vb = atoi(argv[4]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    th_client h;
    th_init(&h, port);
    char body[256];
    snprintf(body, sizeof body, "{\"table\":\"bench\",\"rows\":%ld,\"value_bytes\":%d}", rows, vb);
    double t0 = now_s();
    if (th_admin(&h, "load", body) != 200) {
        fprintf(stderr, "load failed: %.*s\n", (int)h.len, (const char *)h.buf);
        return 1;
    }
    double load_s = now_s() - t0;
    printf("loaded %ld rows (value %d bytes) in %.2f s (%.0f rows/s)\n", rows, vb, load_s,
           rows / load_s);
    const char *names[] = {"BaseData", "Stream"};
    int types[] = {1, 2};
    int rc = 0, repeat = argc > 5 ? atoi(argv[5]) : 1;
    for (int k = 0; k < 2 * repeat; k++) {
        result r;
        int d = drain(&h, pid, types[k % 2], rows, &r);
        if (d != 0) {
            fprintf(stderr, "%s drain failed (%d): %ld records\n", names[k % 2], d, r.records);
            rc = 1;
            continue;
        }
        /* each record field adds ~4 bytes of framing around the PlainBuffer row */
        printf("RESULT %s records=%ld requests=%ld secs=%.3f records_per_s=%.0f MB_per_s=%.1f "
               "avg_record_bytes=%.1f emulator_cpu_s=%.3f emulator_cpu_util=%.2f "
               "records_per_emulator_cpu_s=%.0f\n",
               names[k % 2], r.records, r.requests, r.secs, r.records / r.secs,
               r.bytes / r.secs / 1e6, r.recbytes / (double)r.records, r.cpu, r.cpu / r.secs,
               r.cpu > 0 ? r.records / r.cpu : 0.0);
    }
    th_free(&h);
    curl_global_cleanup();
    return rc;
}
