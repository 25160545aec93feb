/* tunnel_api.c: the 13 /tunnel/... calls. Each handler unpacks its request (protobuf-c),
 * checks who is asking (tunnel, client, channel ownership), runs the state machine in
 * tunnel_core.c and packs the response. Errors become the tunnel Error message with the
 * status of PROTOCOL.md's table. ReadRecords is the hot path: it copies a contiguous range
 * of pre-encoded records from the channel's log and appends next_token / may_more_record
 * by hand -- no protobuf-c on the records. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <proto/tunnel_service_api.pb-c.h>

#include "tunnel/tunnel_internal.h"

void lunnel_emu_reply_free(lunnel_emu_reply *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

void emu_reply_error(lunnel_emu_reply *r, const char *code, const char *tunnel_id, const char *fmt,
                     ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    Lunnel__Tunnel__Error e = LUNNEL__TUNNEL__ERROR__INIT;
    e.code = (char *)code;
    e.message = msg;
    e.tunnel_id = (char *)tunnel_id;
    free(r->body);
    r->len = lunnel__tunnel__error__get_packed_size(&e);
    r->body = malloc(r->len ? r->len : 1);
    if (r->body)
        lunnel__tunnel__error__pack(&e, r->body);
    else
        r->len = 0;
    r->status = emu_code_status(code);
    r->error_code = code;
}

/* A 200 whose body is not the call's message but a web page (an injected fault: a proxy or
 * another server answering in the service's place). '<' starts an end-group tag that closes
 * no group, so no protobuf message parses from it. */
void emu_reply_garbage(lunnel_emu_reply *r)
{
    static const char page[] = "<html><body>injected fault: not a Tablestore reply</body></html>";
    free(r->body);
    r->body = malloc(sizeof page - 1);
    r->len = r->body ? sizeof page - 1 : 0;
    if (r->body) memcpy(r->body, page, r->len);
    r->status = 200;
    r->error_code = NULL;
}

/* Packs any response message into the reply (200). */
static void reply_msg(lunnel_emu_reply *r, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    r->body = malloc(n ? n : 1);
    if (!r->body) {
        emu_reply_error(r, "OTSInternalServerError", NULL, "out of memory");
        return;
    }
    r->len = protobuf_c_message_pack(m, r->body);
    r->status = 200;
}

#define BAD_BODY(r, what)                                                                          \
    emu_reply_error(r, "OTSParameterInvalid", NULL, "malformed %s body (protobuf)", what)

/* Unpacks a request body as message `d`, or answers "malformed <Message> body" and returns
 * NULL. The caller frees the message (its typed free_unpacked). */
static void *unpack_req(const ProtobufCMessageDescriptor *d, const uint8_t *b, size_t len,
                        lunnel_emu_reply *r)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, b);
    if (!m) BAD_BODY(r, d->short_name);
    return m;
}

/* The tunnel `id` (may be NULL: an optional field) names, or NULL after answering that it
 * does not exist. */
static emu_tunnel *find_tunnel(lunnel_emu_tunnels *t, const char *id, lunnel_emu_reply *r)
{
    emu_tunnel *tu = emu_tunnel_find(t, id);
    if (!tu)
        emu_reply_error(r, "OTSParameterInvalid", id, "tunnel %s does not exist",
                        id ? id : "(none)");
    return tu;
}

/* find_tunnel, and the tunnel is not expired. */
static emu_tunnel *live_tunnel(lunnel_emu_tunnels *t, const char *id, lunnel_emu_reply *r)
{
    emu_tunnel *tu = find_tunnel(t, id, r);
    if (tu && tu->expired) {
        emu_reply_error(r, "OTSTunnelExpired", id,
                        "tunnel %s is expired: stream data it needs is past retention", id);
        tu = NULL;
    }
    return tu;
}

/* The client `id` connected to tunnel `tu`, or NULL after answering OTSResourceGone. */
static emu_client *tunnel_client(lunnel_emu_tunnels *t, emu_tunnel *tu, const char *id,
                                 lunnel_emu_reply *r)
{
    emu_client *c = emu_client_find(t, id);
    if (!c || c->tunnel != tu) {
        emu_reply_error(r, "OTSResourceGone", tu->id,
                        "client %s is unknown or timed out on tunnel %s", id, tu->id);
        return NULL;
    }
    return c;
}

/* The shared prologue of channel calls: tunnel exists and is alive, client is connected to
 * it, channel exists and this client owns it. Returns the channel or NULL (reply set). */
static emu_channel *channel_call(lunnel_emu_tunnels *t, const char *tunnel_id,
                                 const char *client_id, const char *channel_id, lunnel_emu_reply *r,
                                 emu_tunnel **tu_out)
{
    emu_tunnel *tu = live_tunnel(t, tunnel_id, r);
    emu_client *c = tu ? tunnel_client(t, tu, client_id, r) : NULL;
    if (!c) return NULL;
    int idx = emu_tunnel_channel_index(tu, channel_id);
    if (idx < 0) {
        emu_reply_error(r, "OTSParameterInvalid", tunnel_id,
                        "channel %s does not exist in tunnel %s", channel_id, tunnel_id);
        return NULL;
    }
    emu_channel *ch = tu->ch[idx];
    if (ch->owner != c) {
        emu_reply_error(r, "OTSParameterInvalid", tunnel_id,
                        "client %s does not own channel %s (owner %s, status %s)", client_id,
                        channel_id, ch->owner ? ch->owner->id : "none",
                        emu_status_name(ch->status));
        return NULL;
    }
    if (tu_out) *tu_out = tu;
    return ch;
}

/* ---- tunnel management ---- */

static void fill_info(lunnel_emu_tunnels *t, emu_tunnel *tu, Lunnel__Tunnel__TunnelInfo *info,
                      Lunnel__Tunnel__StreamTunnelConfig *cfg)
{
    lunnel__tunnel__tunnel_info__init(info);
    info->tunnel_id = tu->id;
    info->tunnel_type = tu->type == TT_BASE     ? "BaseData"
                        : tu->type == TT_STREAM ? "Stream"
                                                : "BaseAndStream";
    info->table_name = tu->table->name;
    info->instance_name = t->instance;
    info->stream_id = tu->table->name; /* one stream per table in the emulator */
    info->stage = (char *)emu_stage_name(tu->stage);
    info->has_expired = 1;
    info->expired = tu->expired;
    info->tunnel_name = tu->name;
    info->has_create_time = 1;
    info->create_time = tu->create_ns;
    if (tu->has_config) {
        lunnel__tunnel__stream_tunnel_config__init(cfg);
        cfg->has_flag = 1;
        cfg->flag = tu->start_flag ? LUNNEL__TUNNEL__START_OFFSET_FLAG__EARLIEST
                                   : LUNNEL__TUNNEL__START_OFFSET_FLAG__LATEST;
        if (tu->start_ns) {
            cfg->has_start_offset = 1;
            cfg->start_offset = tu->start_ns;
        }
        if (tu->end_ns) {
            cfg->has_end_offset = 1;
            cfg->end_offset = tu->end_ns;
        }
        info->stream_tunnel_config = cfg;
    }
}

typedef struct snap_ctx {
    emu_tunnel *tu;
    emu_table *tb;
    int first_base;
} snap_ctx;

static int snap_row(void *arg, const emu_tunnel_row *row)
{
    snap_ctx *s = arg;
    emu_shard *sh = emu_table_route(s->tb, emu_key_hash(row->pk, row->pk_len));
    if (!sh) return 0;
    for (int i = s->first_base; i < s->tu->nch; i++) {
        emu_channel *ch = s->tu->ch[i];
        if (ch->is_base && strcmp(ch->id + 9, sh->id) == 0)
            return emu_reclog_append(ch->base, EMU_TUNNEL_PUT, row->row, row->row_len, NULL, 0, 0)
                       ? 1
                       : 0;
    }
    return 0;
}

void emu_tunnel_fill_base(lunnel_emu_tunnels *t, emu_tunnel *tu)
{
    snap_ctx sc = {tu, tu->table, 0};
    if (t->src && t->src->snapshot) t->src->snapshot(t->src->ctx, tu->table->name, snap_row, &sc);
}

static uint64_t first_at_or_after(const emu_reclog *l, uint64_t ts)
{
    for (size_t i = l->dead; i < l->n; i++)
        if ((uint64_t)l->ts[i] >= ts) return l->base + i;
    return emu_reclog_end(l);
}

static void h_create(lunnel_emu_tunnels *t, const uint8_t *b, size_t len, lunnel_emu_reply *r)
{
    Lunnel__Tunnel__CreateTunnelRequest *q =
        unpack_req(&lunnel__tunnel__create_tunnel_request__descriptor, b, len, r);
    if (!q) return;
    Lunnel__Tunnel__Tunnel *in = q->tunnel;
    int type = (int)in->tunnel_type;
    if (t->src && t->src->table_exists && !t->src->table_exists(t->src->ctx, in->table_name)) {
        emu_reply_error(r, "OTSParameterInvalid", NULL, "table %s does not exist", in->table_name);
    } else if (type < TT_BASE || type > TT_BOTH) {
        emu_reply_error(r, "OTSParameterInvalid", NULL, "unknown tunnel type %d", type);
    } else if (!in->tunnel_name[0]) {
        emu_reply_error(r, "OTSParameterInvalid", NULL, "tunnel_name is empty");
    } else if (emu_tunnel_find_name(t, in->table_name, in->tunnel_name)) {
        emu_reply_error(r, "OTSTunnelExist", NULL, "tunnel %s already exists on table %s",
                        in->tunnel_name, in->table_name);
    } else {
        emu_table *tb = emu_table_get(t, in->table_name, 1);
        emu_tunnel *tu = calloc(1, sizeof *tu);
        emu_tunnel **arr =
            t->ntunnels == t->tucap
                ? realloc(t->tunnels, (size_t)(t->tucap ? t->tucap * 2 : 8) * sizeof *arr)
                : t->tunnels;
        if (!tb || !tu || !arr || !(tu->name = strdup(in->tunnel_name))) {
            free(tu);
            emu_reply_error(r, "OTSInternalServerError", NULL, "out of memory");
            goto done;
        }
        if (arr != t->tunnels) {
            t->tunnels = arr;
            t->tucap = t->tucap ? t->tucap * 2 : 8;
        }
        uint64_t a = emu_rand(t), c = emu_rand(t);
        snprintf(tu->id, sizeof tu->id, "%08x-%04x-%04x-%04x-%012" PRIx64, (unsigned)(a >> 32),
                 (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff, (unsigned)(c >> 48),
                 (uint64_t)(c & 0xffffffffffffULL));
        tu->table = tb;
        tu->type = type;
        tu->stage = STAGE_INIT;
        tu->create_ns = emu_now_ns(t);
        Lunnel__Tunnel__StreamTunnelConfig *cfg = in->stream_tunnel_config;
        if (cfg) {
            tu->has_config = 1;
            tu->start_flag =
                cfg->has_flag && cfg->flag == LUNNEL__TUNNEL__START_OFFSET_FLAG__EARLIEST;
            tu->start_ns = cfg->has_start_offset ? cfg->start_offset : 0;
            tu->end_ns = cfg->has_end_offset ? cfg->end_offset : 0;
        }
        if (type != TT_STREAM) {
            /* One base channel per live partition, filled from a snapshot taken now. */
            for (int s = 0; s < tb->nshards; s++) {
                if (tb->shards[s]->closed) continue;
                emu_channel *ch = emu_tunnel_add_channel(tu, tb->shards[s]->id, 1);
                if (ch) ch->base = calloc(1, sizeof *ch->base);
            }
            emu_tunnel_fill_base(t, tu);
        }
        if (type != TT_BASE) {
            int nbase = tu->nch;
            for (int s = 0; s < tb->nshards; s++) {
                emu_shard *sh = tb->shards[s];
                uint64_t start;
                if (type == TT_BOTH)
                    start = emu_reclog_end(&sh->log);
                else if (tu->start_ns)
                    start = first_at_or_after(&sh->log, tu->start_ns);
                else if (tu->start_flag)
                    start = emu_reclog_first(&sh->log);
                else
                    start = emu_reclog_end(&sh->log);
                /* A closed partition with nothing left to deliver gets no channel; its
                 * children then have no parent to wait for. */
                if (sh->closed && start == emu_reclog_end(&sh->log)) continue;
                emu_channel *ch = emu_tunnel_add_channel(tu, sh->id, 0);
                if (!ch) continue;
                ch->shard = sh;
                ch->start = ch->ck_offset = start;
                if (sh->parent >= 0) {
                    int pi = emu_tunnel_channel_index(tu, tb->shards[sh->parent]->id);
                    ch->parent = pi >= nbase ? pi : -1;
                }
            }
        }
        t->tunnels[t->ntunnels++] = tu;
        Lunnel__Tunnel__CreateTunnelResponse resp = LUNNEL__TUNNEL__CREATE_TUNNEL_RESPONSE__INIT;
        resp.tunnel_id = tu->id;
        reply_msg(r, &resp.base);
    }
done:
    lunnel__tunnel__create_tunnel_request__free_unpacked(q, NULL);
}

static emu_tunnel *find_named(lunnel_emu_tunnels *t, const char *table, const char *name,
                              const char *id, lunnel_emu_reply *r)
{
    emu_tunnel *tu = id && id[0] ? emu_tunnel_find(t, id) : emu_tunnel_find_name(t, table, name);
    if (!tu || (id && id[0] && (strcmp(tu->table->name, table) || strcmp(tu->name, name))))
        tu = NULL;
    if (!tu)
        emu_reply_error(r, "OTSParameterInvalid", id, "tunnel %s does not exist on table %s", name,
                        table);
    return tu;
}

static void h_delete(lunnel_emu_tunnels *t, const uint8_t *b, size_t len, lunnel_emu_reply *r)
{
    Lunnel__Tunnel__DeleteTunnelRequest *q =
        unpack_req(&lunnel__tunnel__delete_tunnel_request__descriptor, b, len, r);
    if (!q) return;
    emu_tunnel *tu = find_named(t, q->table_name, q->tunnel_name, q->tunnel_id, r);
    if (tu) {
        emu_tunnel_delete(t, tu);
        Lunnel__Tunnel__DeleteTunnelResponse resp = LUNNEL__TUNNEL__DELETE_TUNNEL_RESPONSE__INIT;
        reply_msg(r, &resp.base);
    }
    lunnel__tunnel__delete_tunnel_request__free_unpacked(q, NULL);
}

static void h_list(lunnel_emu_tunnels *t, const uint8_t *b, size_t len, lunnel_emu_reply *r)
{
    Lunnel__Tunnel__ListTunnelRequest *q =
        unpack_req(&lunnel__tunnel__list_tunnel_request__descriptor, b, len, r);
    if (!q) return;
    int n = t->ntunnels;
    Lunnel__Tunnel__TunnelInfo *infos = calloc((size_t)n + 1, sizeof *infos);
    Lunnel__Tunnel__StreamTunnelConfig *cfgs = calloc((size_t)n + 1, sizeof *cfgs);
    Lunnel__Tunnel__TunnelInfo **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    Lunnel__Tunnel__ListTunnelResponse resp = LUNNEL__TUNNEL__LIST_TUNNEL_RESPONSE__INIT;
    if (infos && cfgs && ptrs) {
        for (int i = 0; i < n; i++) {
            emu_tunnel *tu = t->tunnels[i];
            if (q->table_name && q->table_name[0] && strcmp(q->table_name, tu->table->name))
                continue;
            fill_info(t, tu, &infos[resp.n_tunnels], &cfgs[resp.n_tunnels]);
            ptrs[resp.n_tunnels] = &infos[resp.n_tunnels];
            resp.n_tunnels++;
        }
        resp.tunnels = ptrs;
        reply_msg(r, &resp.base);
    } else {
        emu_reply_error(r, "OTSInternalServerError", NULL, "out of memory");
    }
    free(infos);
    free(cfgs);
    free(ptrs);
    lunnel__tunnel__list_tunnel_request__free_unpacked(q, NULL);
}

/* RPO of a stream channel: commit time of the last record it consumed (checkpoint). */
static int64_t tunnel_rpo(emu_tunnel *tu)
{
    int64_t min = 0;
    for (int i = 0; i < tu->nch; i++) {
        emu_channel *ch = tu->ch[i];
        if (ch->is_base || ch->status == CH_TERMINATED || ch->status == CH_WAIT) continue;
        if (min == 0 || (ch->rpo_ns && ch->rpo_ns < min)) min = ch->rpo_ns;
    }
    return min;
}

static void h_describe(lunnel_emu_tunnels *t, const uint8_t *b, size_t len, lunnel_emu_reply *r)
{
    Lunnel__Tunnel__DescribeTunnelRequest *q =
        unpack_req(&lunnel__tunnel__describe_tunnel_request__descriptor, b, len, r);
    if (!q) return;
    emu_tunnel *tu = find_named(t, q->table_name, q->tunnel_name, q->tunnel_id, r);
    if (tu) {
        Lunnel__Tunnel__TunnelInfo info;
        Lunnel__Tunnel__StreamTunnelConfig cfg;
        fill_info(t, tu, &info, &cfg);
        Lunnel__Tunnel__ChannelInfo *ci = calloc((size_t)tu->nch + 1, sizeof *ci);
        Lunnel__Tunnel__ChannelInfo **cp = calloc((size_t)tu->nch + 1, sizeof *cp);
        if (ci && cp) {
            for (int i = 0; i < tu->nch; i++) {
                emu_channel *ch = tu->ch[i];
                lunnel__tunnel__channel_info__init(&ci[i]);
                ci[i].channel_id = ch->id;
                ci[i].channel_type = ch->is_base ? "BaseData" : "Stream";
                ci[i].channel_status = (char *)emu_status_name(ch->status);
                ci[i].client_id = ch->owner ? ch->owner->id : "";
                ci[i].has_channel_rpo = 1;
                ci[i].channel_rpo = ch->is_base ? 0 : ch->rpo_ns;
                ci[i].has_channel_count = 1;
                ci[i].channel_count = ch->count;
                cp[i] = &ci[i];
            }
            Lunnel__Tunnel__DescribeTunnelResponse resp =
                LUNNEL__TUNNEL__DESCRIBE_TUNNEL_RESPONSE__INIT;
            resp.tunnel = &info;
            resp.n_channels = (size_t)tu->nch;
            resp.channels = cp;
            resp.has_tunnel_rpo = 1;
            resp.tunnel_rpo = tunnel_rpo(tu);
            reply_msg(r, &resp.base);
        } else {
            emu_reply_error(r, "OTSInternalServerError", NULL, "out of memory");
        }
        free(ci);
        free(cp);
    }
    lunnel__tunnel__describe_tunnel_request__free_unpacked(q, NULL);
}

/* ---- clients ---- */

static void h_connect(lunnel_emu_tunnels *t, const uint8_t *b, size_t len, lunnel_emu_reply *r)
{
    Lunnel__Tunnel__ConnectRequest *q =
        unpack_req(&lunnel__tunnel__connect_request__descriptor, b, len, r);
    if (!q) return;
    emu_tunnel *tu = live_tunnel(t, q->tunnel_id, r);
    emu_client *c = NULL;
    emu_client **arr = t->clients;
    if (tu && t->nclients == t->ccap)
        arr = realloc(t->clients, (size_t)(t->ccap ? t->ccap * 2 : 16) * sizeof *arr);
    if (tu && (!arr || !(c = calloc(1, sizeof *c)))) {
        emu_reply_error(r, "OTSInternalServerError", NULL, "out of memory");
        tu = NULL;
    }
    if (arr != t->clients) {
        t->clients = arr;
        t->ccap = t->ccap ? t->ccap * 2 : 16;
    }
    if (tu) {
        int64_t timeout_ms = t->o.default_timeout_ms;
        Lunnel__Tunnel__ClientConfig *cc = q->client_config;
        if (cc && cc->has_timeout && cc->timeout > 0) timeout_ms = cc->timeout * 1000;
        timeout_ms = (int64_t)((double)timeout_ms * t->o.heartbeat_scale);
        /* Sub-second timeouts: the proto carries whole seconds, so a client may put
         * "timeout_ms=N" in its tag (lunnel's tests do). */
        const char *tag = cc && cc->client_tag ? cc->client_tag : "";
        const char *ms = strstr(tag, "timeout_ms=");
        if (ms) timeout_ms = strtoll(ms + 11, NULL, 10);
        if (timeout_ms < 1) timeout_ms = 1;
        c->timeout_ns = timeout_ms * 1000000LL;
        c->tunnel = tu;
        c->last_ns = emu_now_ns(t);
        c->tag = strdup(tag);
        snprintf(c->id, sizeof c->id, "%s-%" PRIu64 "-%06x",
                 tag[0] && strlen(tag) < 16 && !ms ? tag : "client", ++t->next_client,
                 (unsigned)(emu_rand(t) & 0xffffff));
        t->clients[t->nclients++] = c;
        emu_tunnel_schedule(t, tu);
        Lunnel__Tunnel__ConnectResponse resp = LUNNEL__TUNNEL__CONNECT_RESPONSE__INIT;
        resp.client_id = c->id;
        reply_msg(r, &resp.base);
    }
    lunnel__tunnel__connect_request__free_unpacked(q, NULL);
}

static void h_heartbeat(lunnel_emu_tunnels *t, const uint8_t *b, size_t len, lunnel_emu_reply *r)
{
    Lunnel__Tunnel__HeartbeatRequest *q =
        unpack_req(&lunnel__tunnel__heartbeat_request__descriptor, b, len, r);
    if (!q) return;
    emu_tunnel *tu = live_tunnel(t, q->tunnel_id, r);
    emu_client *c = tu ? tunnel_client(t, tu, q->client_id, r) : NULL;
    if (c) {
        c->last_ns = emu_now_ns(t);
        /* The client's view wins only with a higher version, and only from the owner. */
        for (size_t i = 0; i < q->n_channels; i++) {
            Lunnel__Tunnel__Channel *rc = q->channels[i];
            int idx = emu_tunnel_channel_index(tu, rc->channel_id);
            if (idx < 0) continue;
            emu_channel *ch = tu->ch[idx];
            if (ch->owner != c || rc->version <= ch->version) continue;
            if (rc->status == LUNNEL__TUNNEL__CHANNEL_STATUS__CLOSE) {
                ch->status = CH_CLOSE;
                ch->owner = NULL;
                ch->version = rc->version;
            } else if (rc->status == LUNNEL__TUNNEL__CHANNEL_STATUS__TERMINATED) {
                ch->status = CH_TERMINATED;
                ch->owner = NULL;
                ch->version = rc->version;
            }
        }
        emu_tunnel_schedule(t, tu);
        Lunnel__Tunnel__Channel *cs = calloc((size_t)tu->nch + 1, sizeof *cs);
        Lunnel__Tunnel__Channel **cp = calloc((size_t)tu->nch + 1, sizeof *cp);
        Lunnel__Tunnel__HeartbeatResponse resp = LUNNEL__TUNNEL__HEARTBEAT_RESPONSE__INIT;
        if (cs && cp) {
            for (int i = 0; i < tu->nch; i++) {
                emu_channel *ch = tu->ch[i];
                if (ch->owner != c || (ch->status != CH_OPEN && ch->status != CH_CLOSING)) continue;
                Lunnel__Tunnel__Channel *o = &cs[resp.n_channels];
                lunnel__tunnel__channel__init(o);
                o->channel_id = ch->id;
                o->version = ch->version;
                o->status = ch->status == CH_OPEN ? LUNNEL__TUNNEL__CHANNEL_STATUS__OPEN
                                                  : LUNNEL__TUNNEL__CHANNEL_STATUS__CLOSING;
                cp[resp.n_channels++] = o;
            }
            resp.channels = cp;
            reply_msg(r, &resp.base);
        } else {
            emu_reply_error(r, "OTSInternalServerError", NULL, "out of memory");
        }
        free(cs);
        free(cp);
    }
    lunnel__tunnel__heartbeat_request__free_unpacked(q, NULL);
}

static void h_shutdown(lunnel_emu_tunnels *t, const uint8_t *b, size_t len, lunnel_emu_reply *r)
{
    Lunnel__Tunnel__ShutdownRequest *q =
        unpack_req(&lunnel__tunnel__shutdown_request__descriptor, b, len, r);
    if (!q) return;
    emu_tunnel *tu = find_tunnel(t, q->tunnel_id, r);
    emu_client *c = tu ? tunnel_client(t, tu, q->client_id, r) : NULL;
    if (c) {
        emu_client_drop(t, c);
        Lunnel__Tunnel__ShutdownResponse resp = LUNNEL__TUNNEL__SHUTDOWN_RESPONSE__INIT;
        reply_msg(r, &resp.base);
    }
    lunnel__tunnel__shutdown_request__free_unpacked(q, NULL);
}

/* ---- channel calls ---- */

static char *start_token(emu_channel *ch)
{
    return emu_token_make(ch, ch->is_base ? 0 : ch->start, 0);
}

static void h_getcheckpoint(lunnel_emu_tunnels *t, const uint8_t *b, size_t len,
                            lunnel_emu_reply *r)
{
    Lunnel__Tunnel__GetCheckpointRequest *q =
        unpack_req(&lunnel__tunnel__get_checkpoint_request__descriptor, b, len, r);
    if (!q) return;
    emu_channel *ch = channel_call(t, q->tunnel_id, q->client_id, q->channel_id, r, NULL);
    if (ch) {
        char *tok = ch->checkpoint ? strdup(ch->checkpoint) : start_token(ch);
        Lunnel__Tunnel__GetCheckpointResponse resp = LUNNEL__TUNNEL__GET_CHECKPOINT_RESPONSE__INIT;
        resp.checkpoint = tok ? tok : "";
        resp.sequence_number = ch->seq;
        reply_msg(r, &resp.base);
        free(tok);
    }
    lunnel__tunnel__get_checkpoint_request__free_unpacked(q, NULL);
}

static void h_checkpoint(lunnel_emu_tunnels *t, const uint8_t *b, size_t len, lunnel_emu_reply *r)
{
    Lunnel__Tunnel__CheckpointRequest *q =
        unpack_req(&lunnel__tunnel__checkpoint_request__descriptor, b, len, r);
    if (!q) return;
    emu_tunnel *tu = NULL;
    emu_channel *ch = channel_call(t, q->tunnel_id, q->client_id, q->channel_id, r, &tu);
    uint64_t off = 0;
    int64_t ts = 0;
    char err[160];
    int finished = ch && strcmp(q->checkpoint, "finished") == 0;
    if (!ch) {
    } else if (q->sequence_number <= ch->seq) {
        emu_reply_error(r, "OTSSequenceNumberNotMatch", tu->id,
                        "checkpoint sequence %" PRId64 " of channel %s is not after %" PRId64,
                        q->sequence_number, ch->id, ch->seq);
    } else if (!finished && emu_token_parse(ch, q->checkpoint, &off, &ts, err, sizeof err) != 0) {
        emu_reply_error(r, "OTSParameterInvalid", tu->id, "checkpoint of channel %s: %s", ch->id,
                        err);
    } else {
        char *dup = strdup(q->checkpoint);
        if (!dup) {
            emu_reply_error(r, "OTSInternalServerError", NULL, "out of memory");
        } else {
            free(ch->checkpoint);
            ch->checkpoint = dup;
            ch->seq = q->sequence_number;
            if (finished) {
                ch->count = ch->is_base ? (int64_t)(ch->base->n) : ch->count;
            } else {
                ch->ck_offset = off;
                ch->count = ch->is_base ? (int64_t)off : (int64_t)(off - ch->start);
                if (!ch->is_base && ts) ch->rpo_ns = ts;
            }
            ch->access_ns = emu_now_ns(t);
            Lunnel__Tunnel__CheckpointResponse resp = LUNNEL__TUNNEL__CHECKPOINT_RESPONSE__INIT;
            reply_msg(r, &resp.base);
        }
    }
    lunnel__tunnel__checkpoint_request__free_unpacked(q, NULL);
}

/* Writes "finished"/token + may_more after `rec` bytes of records. */
static void rr_reply(lunnel_emu_reply *r, const uint8_t *rec, size_t reclen, const char *token,
                     int may_more)
{
    size_t tl = strlen(token);
    uint8_t *p = malloc(reclen + tl + 16);
    if (!p) {
        emu_reply_error(r, "OTSInternalServerError", NULL, "out of memory");
        return;
    }
    if (reclen) memcpy(p, rec, reclen);
    size_t n = reclen;
    p[n++] = 0x12;
    n += emu_pb_varint(p + n, tl);
    memcpy(p + n, token, tl);
    n += tl;
    p[n++] = 0x18;
    p[n++] = may_more ? 1 : 0;
    r->body = p;
    r->len = n;
    r->status = 200;
}

static void h_readrecords(lunnel_emu_tunnels *t, const uint8_t *b, size_t len, lunnel_emu_reply *r,
                          int64_t *served)
{
    Lunnel__Tunnel__ReadRecordsRequest *q =
        unpack_req(&lunnel__tunnel__read_records_request__descriptor, b, len, r);
    if (!q) return;
    emu_tunnel *tu = NULL;
    emu_channel *ch = channel_call(t, q->tunnel_id, q->client_id, q->channel_id, r, &tu);
    uint64_t off = 0;
    int64_t ts = 0;
    char err[160];
    if (!ch) {
    } else if (strcmp(q->token, "finished") == 0) {
        rr_reply(r, NULL, 0, "finished", 0);
    } else if (emu_token_parse(ch, q->token, &off, &ts, err, sizeof err) != 0) {
        emu_reply_error(r, "OTSParameterInvalid", tu->id, "ReadRecords on channel %s: %s", ch->id,
                        err);
    } else {
        const emu_reclog *l = ch->is_base ? ch->base : &ch->shard->log;
        uint64_t end = emu_reclog_end(l);
        if (off < emu_reclog_first(l)) {
            tu->expired = 1;
            emu_reply_error(r, "OTSTunnelExpired", tu->id,
                            "channel %s position %" PRIu64
                            " was trimmed by retention (first kept %" PRIu64 ")",
                            ch->id, off, emu_reclog_first(l));
        } else if (off > end) {
            emu_reply_error(r, "OTSParameterInvalid", tu->id,
                            "token position %" PRIu64 " of channel %s is past its end %" PRIu64,
                            off, ch->id, end);
        } else {
            uint64_t i = off;
            size_t bytes = 0, maxb = t->o.batch_bytes;
            uint64_t maxn = (uint64_t)t->o.batch_records;
            int past_end_time = 0;
            while (i < end && i - off < maxn) {
                size_t sz = emu_reclog_entry_end(l, i) - emu_reclog_entry_start(l, i);
                if (!ch->is_base && tu->end_ns && (uint64_t)l->ts[i - l->base] > tu->end_ns) {
                    past_end_time = 1;
                    break;
                }
                if (i > off && bytes + sz > maxb) break;
                bytes += sz;
                i++;
            }
            int finished;
            if (ch->is_base)
                finished = i == end;
            else
                finished = past_end_time || (i == end && ch->shard->closed) ||
                           (i == end && tu->end_ns && (uint64_t)emu_now_ns(t) > tu->end_ns);
            if (i > off) ts = l->ts[i - 1 - l->base];
            char *tok = finished ? NULL : emu_token_make(ch, i, ts);
            if (!finished && !tok) {
                emu_reply_error(r, "OTSInternalServerError", NULL, "token encoding failed");
            } else {
                const uint8_t *start = i > off ? l->buf + emu_reclog_entry_start(l, off) : NULL;
                rr_reply(r, start, bytes, finished ? "finished" : tok, !finished && i < end);
                *served += (int64_t)(i - off);
                ch->access_ns = emu_now_ns(t);
            }
            free(tok);
        }
    }
    lunnel__tunnel__read_records_request__free_unpacked(q, NULL);
}

/* ---- RPO and scheduling ---- */

static void h_getrpo(lunnel_emu_tunnels *t, const uint8_t *b, size_t len, lunnel_emu_reply *r)
{
    Lunnel__Tunnel__GetRpoRequest *q =
        unpack_req(&lunnel__tunnel__get_rpo_request__descriptor, b, len, r);
    if (!q) return;
    emu_tunnel *tu = find_tunnel(t, q->tunnel_id, r);
    if (tu) {
        /* The shape the official Go SDK unmarshals (tunnel/types.go GetRpoResponse):
         * rpo_infos: {"<tunnel_id>": {"<channel_id>": {"ChannelTyp":"BaseData"|"Stream",
         *   "Status":..,"TotalCount":n,"AccessTime":ms,"RpoTime":ms}, ...}};
         * tunnel_rpo_infos: {"<tunnel_id>":
         * {"Status":..,"TotalCount":n,"AccessTime":ms,"RpoTime":ms}}. The SDK declares the times as
         * bare int64s; milliseconds since the epoch is inferred (the unit of the service's other
         * RPO timestamps), not documented. RpoTime = commit time of the newest record consumed per
         * the checkpoint (0 for base data / never), AccessTime = last ReadRecords/Checkpoint on the
         * channel (0 = never). The tunnel's Status is its stage; its TotalCount the sum, AccessTime
         * the latest, RpoTime the oldest live stream channel's (as DescribeTunnel's tunnel_rpo).
         * Owners stay in DescribeTunnel. */
        size_t cap = 256 + (size_t)tu->nch * 320;
        char *js = malloc(cap), *jt = malloc(384);
        if (js && jt) {
            size_t n = (size_t)snprintf(js, cap, "{\"%s\":{", tu->id);
            int64_t total = 0, access = 0;
            for (int i = 0; i < tu->nch; i++) {
                emu_channel *ch = tu->ch[i];
                total += ch->count;
                if (ch->access_ns > access) access = ch->access_ns;
                n += (size_t)snprintf(
                    js + n, cap - n,
                    "%s\"%s\":{\"ChannelTyp\":\"%s\",\"Status\":\"%s\",\"TotalCount\":%" PRId64
                    ",\"AccessTime\":%" PRId64 ",\"RpoTime\":%" PRId64 "}",
                    i ? "," : "", ch->id, ch->is_base ? "BaseData" : "Stream",
                    emu_status_name(ch->status), ch->count, ch->access_ns / 1000000,
                    ch->is_base ? 0 : ch->rpo_ns / 1000000);
            }
            n += (size_t)snprintf(js + n, cap - n, "}}");
            int m = snprintf(jt, 384,
                             "{\"%s\":{\"Status\":\"%s\",\"TotalCount\":%" PRId64
                             ",\"AccessTime\":%" PRId64 ",\"RpoTime\":%" PRId64 "}}",
                             tu->id, emu_stage_name(tu->stage), total, access / 1000000,
                             tunnel_rpo(tu) / 1000000);
            Lunnel__Tunnel__GetRpoResponse resp = LUNNEL__TUNNEL__GET_RPO_RESPONSE__INIT;
            resp.has_rpo_infos = 1;
            resp.rpo_infos.data = (uint8_t *)js;
            resp.rpo_infos.len = n;
            resp.has_tunnel_rpo_infos = 1;
            resp.tunnel_rpo_infos.data = (uint8_t *)jt;
            resp.tunnel_rpo_infos.len = (size_t)m;
            resp.tunnel_id = tu->id;
            reply_msg(r, &resp.base);
        } else {
            emu_reply_error(r, "OTSInternalServerError", NULL, "out of memory");
        }
        free(js);
        free(jt);
    }
    lunnel__tunnel__get_rpo_request__free_unpacked(q, NULL);
}

/* Schedule: an operator's override of channel statuses. OPEN re-opens a channel for the
 * scheduler (even a TERMINATED one), CLOSING asks its owner to release it, CLOSE takes it
 * from its owner at once (back to the pool), TERMINATED ends it. */
static void h_schedule(lunnel_emu_tunnels *t, const uint8_t *b, size_t len, lunnel_emu_reply *r)
{
    Lunnel__Tunnel__ScheduleRequest *q =
        unpack_req(&lunnel__tunnel__schedule_request__descriptor, b, len, r);
    if (!q) return;
    /* Channels travel in field 3. A request carrying field 2 was built from a misread schema
     * (as lunnel's own once was): refuse it rather than answer a silent success that changed
     * nothing. */
    for (size_t i = 0; i < q->base.n_unknown_fields; i++) {
        if (q->base.unknown_fields[i].tag == 2) {
            emu_reply_error(
                r, "OTSParameterInvalid", q->tunnel_id,
                "ScheduleRequest field 2 is not part of the schema: channels are field 3");
            goto done;
        }
    }
    emu_tunnel *tu = find_tunnel(t, q->tunnel_id, r);
    if (!tu) goto done;
    for (size_t i = 0; i < q->n_channels; i++) {
        if (emu_tunnel_channel_index(tu, q->channels[i]->channel_id) < 0) {
            emu_reply_error(r, "OTSParameterInvalid", tu->id, "channel %s does not exist",
                            q->channels[i]->channel_id);
            goto done;
        }
    }
    for (size_t i = 0; i < q->n_channels; i++) {
        Lunnel__Tunnel__Channel *rc = q->channels[i];
        emu_channel *ch = tu->ch[emu_tunnel_channel_index(tu, rc->channel_id)];
        int64_t v = rc->version > ch->version ? rc->version : ch->version + 1;
        switch (rc->status) {
        case LUNNEL__TUNNEL__CHANNEL_STATUS__OPEN:
            if (ch->status == CH_TERMINATED || (!ch->owner && ch->status != CH_WAIT)) {
                ch->status = CH_CLOSE; /* in the pool; the scheduler opens it */
                ch->version = v;
            }
            break;
        case LUNNEL__TUNNEL__CHANNEL_STATUS__CLOSING:
            if (ch->owner && ch->status == CH_OPEN) {
                ch->status = CH_CLOSING;
                ch->version = v;
            }
            break;
        case LUNNEL__TUNNEL__CHANNEL_STATUS__CLOSE:
            ch->owner = NULL;
            ch->status = CH_CLOSE;
            ch->version = v;
            break;
        case LUNNEL__TUNNEL__CHANNEL_STATUS__TERMINATED:
            ch->owner = NULL;
            ch->status = CH_TERMINATED;
            ch->version = v;
            break;
        default:
            break;
        }
    }
    emu_tunnel_schedule(t, tu);
    Lunnel__Tunnel__ScheduleResponse resp = LUNNEL__TUNNEL__SCHEDULE_RESPONSE__INIT;
    reply_msg(r, &resp.base);
done:
    lunnel__tunnel__schedule_request__free_unpacked(q, NULL);
}

int lunnel_emu_tunnels_handle(lunnel_emu_tunnels *t, const char *path, const uint8_t *body,
                              size_t len, lunnel_emu_reply *out)
{
    memset(out, 0, sizeof *out);
    if (strncmp(path, "/tunnel/", 8) != 0) return -1;
    const char *name = path + 8;
    emu_path_stat *st = emu_stat_for(t, path);
    if (st) st->requests++;
    /* Lazy housekeeping: timeouts and retention are due whatever the timer does. */
    if (emu_now_ns(t) - t->last_tick_ns > 5000000LL) lunnel_emu_tunnels_tick(t);
    emu_fault_hit hit;
    if (emu_fault_roll(t, path, &out->delay_ms, &out->drop, "OTSTunnelServerUnavailable", &hit)) {
        if (hit.status == 200) {
            emu_reply_garbage(out);
        } else {
            emu_reply_error(out, hit.code, NULL, "injected fault on %s", path);
            out->status = hit.status;
            out->error_code = emu_code_static(hit.code);
        }
    } else if (out->drop) {
        /* the server drops the connection; no reply body needed */
    } else if (!body && len) {
        BAD_BODY(out, name);
    } else {
        static const uint8_t empty[1];
        const uint8_t *b = body ? body : empty;
        int64_t served = 0;
        if (!strcmp(name, "readrecords"))
            h_readrecords(t, b, len, out, &served);
        else if (!strcmp(name, "heartbeat"))
            h_heartbeat(t, b, len, out);
        else if (!strcmp(name, "checkpoint"))
            h_checkpoint(t, b, len, out);
        else if (!strcmp(name, "getcheckpoint"))
            h_getcheckpoint(t, b, len, out);
        else if (!strcmp(name, "connect"))
            h_connect(t, b, len, out);
        else if (!strcmp(name, "shutdown"))
            h_shutdown(t, b, len, out);
        else if (!strcmp(name, "create"))
            h_create(t, b, len, out);
        else if (!strcmp(name, "delete"))
            h_delete(t, b, len, out);
        else if (!strcmp(name, "list"))
            h_list(t, b, len, out);
        else if (!strcmp(name, "describe"))
            h_describe(t, b, len, out);
        else if (!strcmp(name, "getrpo") || !strcmp(name, "getrpobyoffset"))
            h_getrpo(t, b, len, out);
        else if (!strcmp(name, "schedule"))
            h_schedule(t, b, len, out);
        else
            emu_reply_error(out, "OTSParameterInvalid", NULL, "unknown tunnel API path %s", path);
        if (st) {
            st->records += served;
            if (out->status == 200) st->bytes += (int64_t)out->len;
        }
        t->records_served += served;
        if (out->status == 200 && served) t->bytes_served += (int64_t)out->len;
    }
    if (st && out->status != 200) st->errors++;
    return 0;
}
