/* tunnel_test_client.h: a tiny in-process client of the tunnel registry for the tunnel
 * tests: packs requests with protobuf-c, calls lunnel_emu_tunnels_handle() (no HTTP), and
 * unpacks replies. It also simulates a worker the way the official Go client behaves
 * (tunnel/state.go, channel.go): on each heartbeat it opens new channels with
 * GetCheckpoint, reads them, checkpoints, answers CLOSING with CLOSE and finished channels
 * with TERMINATED at version + 1. Header-only: each test includes it once. */
#ifndef TUNNEL_TEST_CLIENT_H
#define TUNNEL_TEST_CLIENT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <proto/tunnel_service_api.pb-c.h>

#include "tunnel/tunnel.h"

/* How requests travel: NULL = straight into lunnel_emu_tunnels_handle(); a test may set
 * an HTTP transport (test_tunnel_http.c) so the same worker simulation runs over the wire. */
typedef void (*tc_transport_fn)(void *arg, const char *path, const uint8_t *body, size_t len,
                                lunnel_emu_reply *out);
static tc_transport_fn tc_transport;
static void *tc_transport_arg;

/* Calls `path` with message `m`; returns the reply (caller frees body). */
static inline lunnel_emu_reply tc_call(lunnel_emu_tunnels *t, const char *path,
                                       const ProtobufCMessage *m)
{
    uint8_t buf[65536];
    size_t n = protobuf_c_message_pack(m, buf);
    lunnel_emu_reply r;
    if (tc_transport)
        tc_transport(tc_transport_arg, path, buf, n, &r);
    else
        lunnel_emu_tunnels_handle(t, path, buf, n, &r);
    return r;
}

static inline char *tc_create(lunnel_emu_tunnels *t, const char *table, const char *name, int type)
{
    Lunnel__Tunnel__Tunnel tu = LUNNEL__TUNNEL__TUNNEL__INIT;
    tu.table_name = (char *)table;
    tu.tunnel_name = (char *)name;
    tu.tunnel_type = (Lunnel__Tunnel__TunnelType)type;
    Lunnel__Tunnel__CreateTunnelRequest q = LUNNEL__TUNNEL__CREATE_TUNNEL_REQUEST__INIT;
    q.tunnel = &tu;
    lunnel_emu_reply r = tc_call(t, "/tunnel/create", &q.base);
    char *id = NULL;
    if (r.status == 200) {
        Lunnel__Tunnel__CreateTunnelResponse *p =
            lunnel__tunnel__create_tunnel_response__unpack(NULL, r.len, r.body);
        if (p) {
            id = strdup(p->tunnel_id);
            lunnel__tunnel__create_tunnel_response__free_unpacked(p, NULL);
        }
    }
    lunnel_emu_reply_free(&r);
    return id;
}

static inline char *tc_connect(lunnel_emu_tunnels *t, const char *tid, int64_t timeout_s,
                               const char *tag)
{
    Lunnel__Tunnel__ClientConfig cc = LUNNEL__TUNNEL__CLIENT_CONFIG__INIT;
    cc.has_timeout = 1;
    cc.timeout = timeout_s;
    cc.client_tag = (char *)tag;
    Lunnel__Tunnel__ConnectRequest q = LUNNEL__TUNNEL__CONNECT_REQUEST__INIT;
    q.tunnel_id = (char *)tid;
    q.client_config = &cc;
    lunnel_emu_reply r = tc_call(t, "/tunnel/connect", &q.base);
    char *id = NULL;
    if (r.status == 200) {
        Lunnel__Tunnel__ConnectResponse *p =
            lunnel__tunnel__connect_response__unpack(NULL, r.len, r.body);
        if (p) {
            id = strdup(p->client_id);
            lunnel__tunnel__connect_response__free_unpacked(p, NULL);
        }
    }
    lunnel_emu_reply_free(&r);
    return id;
}

typedef struct tc_chan {
    char id[48];
    int64_t version;
    int status; /* 1 OPEN 2 CLOSING 3 CLOSE 4 TERMINATED */
    char token[512];
    int64_t seq;  /* next checkpoint sequence number to send */
    int open;     /* we hold a "connection" (checkpoint fetched) */
    int finished; /* read "finished" */
} tc_chan;

typedef struct tc_client {
    lunnel_emu_tunnels *t;
    char tid[64], cid[64];
    tc_chan ch[64];
    int nch;
    int gone; /* got OTSResourceGone */
    const char *last_error;
    /* Delivered records: callback per record (channel id, record bytes). */
    void (*on_record)(void *arg, const char *channel, const uint8_t *row, size_t len, int action);
    void *arg;
} tc_client;

static inline tc_chan *tc_find(tc_client *c, const char *id)
{
    for (int i = 0; i < c->nch; i++)
        if (strcmp(c->ch[i].id, id) == 0) return &c->ch[i];
    return NULL;
}

/* Sends a heartbeat with our view; applies the contract to the response. Returns the
 * reply status. */
static inline int tc_heartbeat(tc_client *c)
{
    Lunnel__Tunnel__Channel pc[64], *pp[64];
    Lunnel__Tunnel__HeartbeatRequest q = LUNNEL__TUNNEL__HEARTBEAT_REQUEST__INIT;
    q.tunnel_id = c->tid;
    q.client_id = c->cid;
    for (int i = 0; i < c->nch; i++) {
        lunnel__tunnel__channel__init(&pc[i]);
        pc[i].channel_id = c->ch[i].id;
        pc[i].version = c->ch[i].version;
        pc[i].status = (Lunnel__Tunnel__ChannelStatus)c->ch[i].status;
        pp[i] = &pc[i];
    }
    q.n_channels = (size_t)c->nch;
    q.channels = pp;
    lunnel_emu_reply r = tc_call(c->t, "/tunnel/heartbeat", &q.base);
    int status = r.status;
    c->last_error = r.error_code;
    if (status == 410) c->gone = 1;
    if (status == 200) {
        Lunnel__Tunnel__HeartbeatResponse *p =
            lunnel__tunnel__heartbeat_response__unpack(NULL, r.len, r.body);
        tc_chan next[64];
        int nn = 0;
        for (size_t i = 0; p && i < p->n_channels && nn < 64; i++) {
            Lunnel__Tunnel__Channel *s = p->channels[i];
            tc_chan *old = tc_find(c, s->channel_id);
            if (old && old->version > s->version) {
                next[nn++] = *old;
                continue;
            }
            tc_chan n;
            if (old)
                n = *old;
            else {
                memset(&n, 0, sizeof n);
                snprintf(n.id, sizeof n.id, "%s", s->channel_id);
            }
            n.version = s->version;
            n.status = (int)s->status;
            next[nn++] = n;
        }
        memcpy(c->ch, next, sizeof(tc_chan) * (size_t)nn);
        c->nch = nn;
        if (p) lunnel__tunnel__heartbeat_response__free_unpacked(p, NULL);
    }
    lunnel_emu_reply_free(&r);
    return status;
}

static inline int tc_getcheckpoint(tc_client *c, tc_chan *ch)
{
    Lunnel__Tunnel__GetCheckpointRequest q = LUNNEL__TUNNEL__GET_CHECKPOINT_REQUEST__INIT;
    q.tunnel_id = c->tid;
    q.client_id = c->cid;
    q.channel_id = ch->id;
    lunnel_emu_reply r = tc_call(c->t, "/tunnel/getcheckpoint", &q.base);
    int status = r.status;
    c->last_error = r.error_code;
    if (status == 200) {
        Lunnel__Tunnel__GetCheckpointResponse *p =
            lunnel__tunnel__get_checkpoint_response__unpack(NULL, r.len, r.body);
        snprintf(ch->token, sizeof ch->token, "%s", p->checkpoint);
        ch->seq = p->sequence_number + 1;
        ch->finished = strcmp(ch->token, "finished") == 0;
        lunnel__tunnel__get_checkpoint_response__free_unpacked(p, NULL);
    }
    lunnel_emu_reply_free(&r);
    return status;
}

static inline int tc_checkpoint(tc_client *c, tc_chan *ch, const char *token, int64_t seq)
{
    Lunnel__Tunnel__CheckpointRequest q = LUNNEL__TUNNEL__CHECKPOINT_REQUEST__INIT;
    q.tunnel_id = c->tid;
    q.client_id = c->cid;
    q.channel_id = ch->id;
    q.checkpoint = (char *)token;
    q.sequence_number = seq;
    lunnel_emu_reply r = tc_call(c->t, "/tunnel/checkpoint", &q.base);
    int status = r.status;
    c->last_error = r.error_code;
    lunnel_emu_reply_free(&r);
    return status;
}

/* One ReadRecords; delivers records to the callback. Returns status; sets *n, next token
 * (into ch->token when `advance`), *more. */
static inline int tc_read(tc_client *c, const char *chid, const char *token, int *n, char *next,
                          size_t nextlen, int *more)
{
    Lunnel__Tunnel__ReadRecordsRequest q = LUNNEL__TUNNEL__READ_RECORDS_REQUEST__INIT;
    q.tunnel_id = c->tid;
    q.client_id = c->cid;
    q.channel_id = (char *)chid;
    q.token = (char *)token;
    lunnel_emu_reply r = tc_call(c->t, "/tunnel/readrecords", &q.base);
    int status = r.status;
    c->last_error = r.error_code;
    *n = 0;
    if (status == 200) {
        Lunnel__Tunnel__ReadRecordsResponse *p =
            lunnel__tunnel__read_records_response__unpack(NULL, r.len, r.body);
        if (!p) {
            status = -1;
        } else {
            *n = (int)p->n_records;
            for (size_t i = 0; i < p->n_records && c->on_record; i++)
                c->on_record(c->arg, chid, p->records[i]->record.data, p->records[i]->record.len,
                             (int)p->records[i]->action_type);
            snprintf(next, nextlen, "%s", p->next_token);
            *more = p->has_may_more_record && p->may_more_record;
            lunnel__tunnel__read_records_response__free_unpacked(p, NULL);
        }
    }
    lunnel_emu_reply_free(&r);
    return status;
}

/* Works every held channel like a worker: open (GetCheckpoint) new ones, read up to
 * `max_batches` batches each with a checkpoint after every batch, and turn CLOSING into
 * CLOSE and finished into TERMINATED at version + 1 (reported by the next heartbeat). */
static inline void tc_work(tc_client *c, int max_batches)
{
    for (int i = 0; i < c->nch; i++) {
        tc_chan *ch = &c->ch[i];
        if (ch->status == 3 || ch->status == 4) continue;
        if (!ch->open) {
            if (tc_getcheckpoint(c, ch) != 200) continue;
            ch->open = 1;
        }
        for (int b = 0; b < max_batches && !ch->finished; b++) {
            int n = 0, more = 0;
            char next[512];
            if (tc_read(c, ch->id, ch->token, &n, next, sizeof next, &more) != 200) break;
            if (tc_checkpoint(c, ch, next, ch->seq) == 200) ch->seq++;
            snprintf(ch->token, sizeof ch->token, "%s", next);
            if (strcmp(next, "finished") == 0) ch->finished = 1;
            if (!more) break;
        }
        if (ch->finished) {
            ch->status = 4;
            ch->version++;
        } else if (ch->status == 2) {
            ch->status = 3;
            ch->version++;
        }
    }
}

/* Drops channels we reported CLOSE/TERMINATED once the server stopped listing them. */
static inline int tc_count(const tc_client *c, int status)
{
    int n = 0;
    for (int i = 0; i < c->nch; i++)
        n += c->ch[i].status == status;
    return n;
}

static inline void tc_init(tc_client *c, lunnel_emu_tunnels *t, const char *tid, const char *cid)
{
    memset(c, 0, sizeof *c);
    c->t = t;
    snprintf(c->tid, sizeof c->tid, "%s", tid);
    snprintf(c->cid, sizeof c->cid, "%s", cid ? cid : "");
}

/* Describe: fills status strings and owners by channel id; returns channel count or -1. */
typedef struct tc_desc_ch {
    char id[48], status[16], owner[64], type[16];
    int64_t count, rpo;
} tc_desc_ch;

static inline int tc_describe(lunnel_emu_tunnels *t, const char *table, const char *name,
                              tc_desc_ch *out, int max, char *stage, int *expired)
{
    Lunnel__Tunnel__DescribeTunnelRequest q = LUNNEL__TUNNEL__DESCRIBE_TUNNEL_REQUEST__INIT;
    q.table_name = (char *)table;
    q.tunnel_name = (char *)name;
    lunnel_emu_reply r = tc_call(t, "/tunnel/describe", &q.base);
    int n = -1;
    if (r.status == 200) {
        Lunnel__Tunnel__DescribeTunnelResponse *p =
            lunnel__tunnel__describe_tunnel_response__unpack(NULL, r.len, r.body);
        n = 0;
        for (size_t i = 0; i < p->n_channels && n < max; i++, n++) {
            Lunnel__Tunnel__ChannelInfo *ci = p->channels[i];
            snprintf(out[n].id, sizeof out[n].id, "%s", ci->channel_id);
            snprintf(out[n].status, sizeof out[n].status, "%s", ci->channel_status);
            snprintf(out[n].owner, sizeof out[n].owner, "%s", ci->client_id ? ci->client_id : "");
            snprintf(out[n].type, sizeof out[n].type, "%s", ci->channel_type);
            out[n].count = ci->channel_count;
            out[n].rpo = ci->channel_rpo;
        }
        if (stage) snprintf(stage, 64, "%s", p->tunnel->stage);
        if (expired) *expired = p->tunnel->has_expired && p->tunnel->expired;
        lunnel__tunnel__describe_tunnel_response__free_unpacked(p, NULL);
    }
    lunnel_emu_reply_free(&r);
    return n;
}

#endif
