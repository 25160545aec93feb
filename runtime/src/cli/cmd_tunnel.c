/* cmd_tunnel.c: `lunnel tunnel create|list|describe|delete|rpo|schedule`, tunnel management
 * from the shell. Each subcommand is one option table (options.h) plus a function that
 * builds the request, runs it synchronously on a private loop (api.h) and prints a table for
 * humans or JSON (--json) for scripts. Failures print one line naming the problem with the
 * server's code and request id, and exit with the shared statuses (errors.h). */
#include <ev.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/client_options.h"
#include "cli/exit_status.h"
#include "lunnel/api.h"
#include "lunnel/buf.h"
#include "lunnel/errors.h"
#include "lunnel/json.h"
#include "lunnel/log.h"
#include "lunnel/options.h"
#include "lunnel/timeutil.h"

int lunnel_cmd_tunnel(int argc, char **argv);
void lunnel_cmd_tunnel_markdown(FILE *f);

/* ---- option tables ---- */

static const lunnel_opt output_opts[] = {
    {"json", LUNNEL_OPT_BOOL, NULL, NULL, NULL, NULL, 0, "print JSON instead of a table"},
};
static const lunnel_opt_set output_set = LUNNEL_OPT_SET("Output", output_opts);

static const lunnel_opt create_opts[] = {
    {"table", LUNNEL_OPT_STRING, NULL, NULL, NULL, "T", 1, "table to stream"},
    {"tunnel", LUNNEL_OPT_STRING, NULL, NULL, NULL, "NAME", 1, "name of the new tunnel"},
    {"type", LUNNEL_OPT_ENUM, NULL, NULL, "BaseData|Stream|BaseAndStream", NULL, 1,
     "full data, changes, or full data then changes"},
    {"start-time", LUNNEL_OPT_TIME, NULL, NULL, NULL, NULL, 0,
     "Stream tunnels: first change to deliver (backfill from this time)"},
    {"end-time", LUNNEL_OPT_TIME, NULL, NULL, NULL, NULL, 0, "Stream tunnels: stop at this time"},
    {"start-from", LUNNEL_OPT_ENUM, NULL, NULL, "latest|earliest", NULL, 0,
     "Stream tunnels without --start-time: begin at the latest or earliest retained change"},
};
static const lunnel_opt table_only_opts[] = {
    {"table", LUNNEL_OPT_STRING, NULL, NULL, NULL, "T", 0, "only tunnels of this table"},
};
static const lunnel_opt named_opts[] = {
    {"table", LUNNEL_OPT_STRING, NULL, NULL, NULL, "T", 1, "table of the tunnel"},
    {"tunnel", LUNNEL_OPT_STRING, NULL, NULL, NULL, "NAME", 1, "tunnel name"},
};
static const lunnel_opt rpo_opts[] = {
    {"table", LUNNEL_OPT_STRING, NULL, NULL, NULL, "T", 0, "table of the tunnel (with --tunnel)"},
    {"tunnel", LUNNEL_OPT_STRING, NULL, NULL, NULL, "NAME", 0, "tunnel name (with --table)"},
    {"tunnel-id", LUNNEL_OPT_STRING, NULL, NULL, NULL, "ID", 0,
     "tunnel id (instead of --table/--tunnel)"},
    {"by-offset", LUNNEL_OPT_BOOL, NULL, NULL, NULL, NULL, 0,
     "ask getrpobyoffset instead of getrpo"},
};
static const lunnel_opt schedule_opts[] = {
    {"table", LUNNEL_OPT_STRING, NULL, NULL, NULL, "T", 0, "table of the tunnel (with --tunnel)"},
    {"tunnel", LUNNEL_OPT_STRING, NULL, NULL, NULL, "NAME", 0, "tunnel name (with --table)"},
    {"tunnel-id", LUNNEL_OPT_STRING, NULL, NULL, NULL, "ID", 0,
     "tunnel id (instead of --table/--tunnel)"},
    {"channel", LUNNEL_OPT_STRING, NULL, NULL, NULL, "ID", 1, "channel id"},
    {"status", LUNNEL_OPT_ENUM, NULL, NULL, "OPEN|CLOSING|TERMINATED", NULL, 1, "status to set"},
    {"version", LUNNEL_OPT_INT, "0", NULL, NULL, NULL, 0,
     "channel version to send (the server decides)"},
};
static const lunnel_opt_set create_set = LUNNEL_OPT_SET("Create", create_opts);
static const lunnel_opt_set list_set = LUNNEL_OPT_SET("List", table_only_opts);
static const lunnel_opt_set named_set = LUNNEL_OPT_SET("Tunnel", named_opts);
static const lunnel_opt_set rpo_set = LUNNEL_OPT_SET("Tunnel", rpo_opts);
static const lunnel_opt_set schedule_set = LUNNEL_OPT_SET("Schedule", schedule_opts);
static const lunnel_opt watch_opts[] = {
    {"watch", LUNNEL_OPT_BOOL, NULL, NULL, NULL, NULL, 0,
     "refresh the description every --interval (in place on a terminal) until interrupted"},
    {"interval", LUNNEL_OPT_DURATION, "2s", NULL, NULL, NULL, 0, "--watch refresh period"},
    {"iterations", LUNNEL_OPT_INT, "0", NULL, NULL, "N", 0,
     "--watch: stop after N refreshes (0: until interrupted)"},
};
static const lunnel_opt_set watch_set = LUNNEL_OPT_SET("Watch", watch_opts);

typedef int (*sub_fn)(lunnel_api *api, struct ev_loop *loop, const lunnel_opt_values *v, int json);

static int do_create(lunnel_api *, struct ev_loop *, const lunnel_opt_values *, int);
static int do_list(lunnel_api *, struct ev_loop *, const lunnel_opt_values *, int);
static int do_describe(lunnel_api *, struct ev_loop *, const lunnel_opt_values *, int);
static int do_delete(lunnel_api *, struct ev_loop *, const lunnel_opt_values *, int);
static int do_rpo(lunnel_api *, struct ev_loop *, const lunnel_opt_values *, int);
static int do_schedule(lunnel_api *, struct ev_loop *, const lunnel_opt_values *, int);

typedef struct {
    lunnel_command_spec spec;
    sub_fn fn;
} subcommand;

#define COMMON &lunnel_opts_connection, &lunnel_opts_logging, &output_set
static const subcommand SUBS[] = {
    {{"tunnel create",
      "lunnel tunnel create --table T --tunnel NAME --type BaseData|Stream|BaseAndStream "
      "[--start-time TIME --end-time TIME]",
      "Creates a tunnel on a table and prints its id.",
      {&create_set, COMMON},
      4,
      0,
      0},
     do_create},
    {{"tunnel list",
      "lunnel tunnel list [--table T]",
      "Lists the tunnels of the instance (or of one table).",
      {&list_set, COMMON},
      4,
      0,
      0},
     do_list},
    {{"tunnel describe",
      "lunnel tunnel describe --table T --tunnel NAME [--watch [--interval 2s]]",
      "Shows a tunnel: id, type, stage, expiry, RPO and its channels (id, type, status, client, "
      "RPO); --watch refreshes it.",
      {&named_set, &watch_set, COMMON},
      5,
      0,
      0},
     do_describe},
    {{"tunnel delete",
      "lunnel tunnel delete --table T --tunnel NAME",
      "Deletes a tunnel.",
      {&named_set, COMMON},
      4,
      0,
      0},
     do_delete},
    {{"tunnel rpo",
      "lunnel tunnel rpo (--table T --tunnel NAME | --tunnel-id ID) [--by-offset]",
      "Prints the recovery point (consumption progress) of a tunnel's channels: a table of "
      "channel, type, status, total count, RPO time and access time (RFC 3339 UTC), then the "
      "tunnel's line; --json prints the server's two JSON documents as they are.",
      {&rpo_set, COMMON},
      4,
      0,
      0},
     do_rpo},
    {{"tunnel schedule",
      "lunnel tunnel schedule (--table T --tunnel NAME | --tunnel-id ID) --channel ID --status "
      "OPEN|CLOSING|TERMINATED",
      "Sets a channel's status (admin: reopen, move or finish a channel).",
      {&schedule_set, COMMON},
      4,
      0,
      0},
     do_schedule},
};
#define N_SUBS (sizeof SUBS / sizeof SUBS[0])

/* ---- output helpers ---- */

/* --json output: one document built with the JSON writer, printed on one line. */
typedef struct json_out {
    lunnel_buf b;
    lunnel_jw w;
} json_out;

static void json_begin(json_out *o)
{
    o->b = (lunnel_buf)LUNNEL_BUF_INIT;
    lunnel_jw_init(&o->w, &o->b);
}

static void json_print(json_out *o)
{
    if (o->b.p) fwrite(o->b.p, 1, o->b.len, stdout); /* a server document may hold any byte */
    fputs("\n", stdout);
    lunnel_buf_free(&o->b);
}

/* A string member; NULL shows as "" (the tunnel listings always show a string). */
static void json_str(lunnel_jw *w, const char *key, const char *s)
{
    lunnel_jw_key(w, key);
    lunnel_jw_str(w, s ? s : "");
}

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

/* Formats a nanosecond or millisecond epoch as RFC 3339 (heuristic on magnitude). */
static void fmt_time(int64_t t, char *out, size_t cap)
{
    if (t <= 0) {
        snprintf(out, cap, "-");
        return;
    }
    int64_t ms = t > 100000000000000LL ? t / 1000000 : t; /* > ~1973 in ms means ns */
    char when[LUNNEL_TIME_MS_LEN];
    lunnel_time_format_ms(ms, when);
    snprintf(out, cap, "%s", when);
}

static const char *endpoint_in_use; /* --endpoint of this command, for the line below */

static int report(const char *sub, const lunnel_api_sync_result *r)
{
    char line[1200];
    lunnel_error_format(&r->err, line, sizeof line);
    if (lunnel_error_not_tablestore(&r->err)) {
        /* another web server, a proxy's error page: say so instead of a bare HTTP status */
        fprintf(stderr,
                "lunnel %s: %s does not look like a Tablestore endpoint (a reply without "
                "an OTS error body): %s\n",
                sub, endpoint_in_use ? endpoint_in_use : "the endpoint", line);
        return LUNNEL_EXIT_RUNTIME;
    }
    fprintf(stderr, "lunnel %s: %s\n", sub, line);
    return lunnel_error_exit_status(&r->err);
}

/* ---- subcommands ---- */

static int do_create(lunnel_api *api, struct ev_loop *loop, const lunnel_opt_values *v, int json)
{
    Lunnel__Tunnel__CreateTunnelRequest req = LUNNEL__TUNNEL__CREATE_TUNNEL_REQUEST__INIT;
    Lunnel__Tunnel__Tunnel t = LUNNEL__TUNNEL__TUNNEL__INIT;
    Lunnel__Tunnel__StreamTunnelConfig sc = LUNNEL__TUNNEL__STREAM_TUNNEL_CONFIG__INIT;
    t.table_name = (char *)lunnel_opts_str(v, "table");
    t.tunnel_name = (char *)lunnel_opts_str(v, "tunnel");
    const char *type = lunnel_opts_str(v, "type");
    t.tunnel_type = strcmp(type, "BaseData") == 0 ? LUNNEL__TUNNEL__TUNNEL_TYPE__BaseData
                    : strcmp(type, "Stream") == 0 ? LUNNEL__TUNNEL__TUNNEL_TYPE__Stream
                                                  : LUNNEL__TUNNEL__TUNNEL_TYPE__BaseAndStream;
    int has_start = lunnel_opts_has(v, "start-time"), has_end = lunnel_opts_has(v, "end-time");
    int has_from = lunnel_opts_has(v, "start-from");
    if ((has_start || has_end || has_from) &&
        t.tunnel_type != LUNNEL__TUNNEL__TUNNEL_TYPE__Stream) {
        fprintf(stderr, "lunnel tunnel create: --start-time/--end-time/--start-from apply to "
                        "--type Stream only\n");
        return LUNNEL_EXIT_USAGE;
    }
    if (has_start && has_end &&
        lunnel_opts_time(v, "end-time") <= lunnel_opts_time(v, "start-time")) {
        fprintf(stderr, "lunnel tunnel create: --end-time must be after --start-time\n");
        return LUNNEL_EXIT_USAGE;
    }
    if ((has_start || has_end) &&
        (lunnel_opts_time(v, "start-time") < 0 || lunnel_opts_time(v, "end-time") < 0)) {
        fprintf(stderr, "lunnel tunnel create: times before 1970 are not accepted\n");
        return LUNNEL_EXIT_USAGE;
    }
    if (has_start || has_end || has_from) {
        if (has_from) {
            sc.has_flag = 1;
            sc.flag = strcmp(lunnel_opts_str(v, "start-from"), "earliest") == 0
                          ? LUNNEL__TUNNEL__START_OFFSET_FLAG__EARLIEST
                          : LUNNEL__TUNNEL__START_OFFSET_FLAG__LATEST;
        }
        /* The service takes offsets in nanoseconds since the epoch (PROTOCOL.md section 2). */
        if (has_start)
            sc.has_start_offset = 1,
            sc.start_offset = (uint64_t)lunnel_opts_time(v, "start-time") * 1000000u;
        if (has_end)
            sc.has_end_offset = 1,
            sc.end_offset = (uint64_t)lunnel_opts_time(v, "end-time") * 1000000u;
        t.stream_tunnel_config = &sc;
    }
    req.tunnel = &t;
    lunnel_api_sync_result r;
    if (lunnel_api_call_sync(api, loop, LUNNEL_API_CREATE, &req.base, 0, &r) != 0) {
        int rc = report("tunnel create", &r);
        lunnel_api_sync_result_free(&r);
        return rc;
    }
    Lunnel__Tunnel__CreateTunnelResponse *resp = (Lunnel__Tunnel__CreateTunnelResponse *)r.msg;
    if (json) {
        json_out o;
        json_begin(&o);
        lunnel_jw_object(&o.w);
        json_str(&o.w, "tunnel_id", resp->tunnel_id);
        json_str(&o.w, "table", t.table_name);
        json_str(&o.w, "tunnel", t.tunnel_name);
        json_str(&o.w, "type", type);
        lunnel_jw_end_object(&o.w);
        json_print(&o);
    } else {
        printf("created tunnel %s on table %s (%s): id %s\n", t.tunnel_name, t.table_name, type,
               resp->tunnel_id);
    }
    lunnel_api_sync_result_free(&r);
    return LUNNEL_EXIT_OK;
}

static void json_tunnel_info(lunnel_jw *w, const Lunnel__Tunnel__TunnelInfo *ti)
{
    lunnel_jw_object(w);
    json_str(w, "tunnel_id", ti->tunnel_id);
    json_str(w, "tunnel_name", ti->tunnel_name);
    json_str(w, "table", ti->table_name);
    json_str(w, "instance", ti->instance_name);
    json_str(w, "type", ti->tunnel_type);
    json_str(w, "stage", ti->stage);
    json_str(w, "stream_id", ti->stream_id);
    lunnel_jw_key(w, "expired");
    lunnel_jw_bool(w, ti->has_expired && ti->expired);
    if (ti->has_create_time) {
        lunnel_jw_key(w, "create_time_ns");
        lunnel_jw_int(w, ti->create_time);
    }
    lunnel_jw_end_object(w);
}

static int do_list(lunnel_api *api, struct ev_loop *loop, const lunnel_opt_values *v, int json)
{
    Lunnel__Tunnel__ListTunnelRequest req = LUNNEL__TUNNEL__LIST_TUNNEL_REQUEST__INIT;
    req.table_name = (char *)lunnel_opts_str(v, "table");
    lunnel_api_sync_result r;
    if (lunnel_api_call_sync(api, loop, LUNNEL_API_LIST, &req.base, 0, &r) != 0) {
        int rc = report("tunnel list", &r);
        lunnel_api_sync_result_free(&r);
        return rc;
    }
    Lunnel__Tunnel__ListTunnelResponse *resp = (Lunnel__Tunnel__ListTunnelResponse *)r.msg;
    if (json) {
        json_out o;
        json_begin(&o);
        lunnel_jw_array(&o.w);
        for (size_t i = 0; i < resp->n_tunnels; i++)
            json_tunnel_info(&o.w, resp->tunnels[i]);
        lunnel_jw_end_array(&o.w);
        json_print(&o);
    } else if (resp->n_tunnels == 0) {
        printf("no tunnels%s%s\n", req.table_name ? " on table " : "",
               req.table_name ? req.table_name : "");
    } else {
        printf("%-24s %-38s %-20s %-14s %-28s %s\n", "TUNNEL", "ID", "TABLE", "TYPE", "STAGE",
               "EXPIRED");
        for (size_t i = 0; i < resp->n_tunnels; i++) {
            Lunnel__Tunnel__TunnelInfo *ti = resp->tunnels[i];
            printf("%-24s %-38s %-20s %-14s %-28s %s\n", or_dash(ti->tunnel_name),
                   or_dash(ti->tunnel_id), or_dash(ti->table_name), or_dash(ti->tunnel_type),
                   or_dash(ti->stage), ti->has_expired && ti->expired ? "yes" : "no");
        }
    }
    lunnel_api_sync_result_free(&r);
    return LUNNEL_EXIT_OK;
}

/* DescribeTunnel by table + name; on success *out holds the response (caller frees). */
static int describe(lunnel_api *api, struct ev_loop *loop, const char *sub, const char *table,
                    const char *tunnel, lunnel_api_sync_result *out)
{
    Lunnel__Tunnel__DescribeTunnelRequest req = LUNNEL__TUNNEL__DESCRIBE_TUNNEL_REQUEST__INIT;
    req.table_name = (char *)table;
    req.tunnel_name = (char *)tunnel;
    if (lunnel_api_call_sync(api, loop, LUNNEL_API_DESCRIBE, &req.base, 0, out) != 0) {
        int rc = report(sub, out);
        lunnel_api_sync_result_free(out);
        return rc;
    }
    return LUNNEL_EXIT_OK;
}

static int describe_once(lunnel_api *api, struct ev_loop *loop, const lunnel_opt_values *v,
                         int json)
{
    lunnel_api_sync_result r;
    int rc = describe(api, loop, "tunnel describe", lunnel_opts_str(v, "table"),
                      lunnel_opts_str(v, "tunnel"), &r);
    if (rc) return rc;
    Lunnel__Tunnel__DescribeTunnelResponse *d = (Lunnel__Tunnel__DescribeTunnelResponse *)r.msg;
    Lunnel__Tunnel__TunnelInfo *ti = d->tunnel;
    if (json) {
        json_out o;
        json_begin(&o);
        lunnel_jw_object(&o.w);
        lunnel_jw_key(&o.w, "tunnel");
        json_tunnel_info(&o.w, ti);
        if (d->has_tunnel_rpo) {
            lunnel_jw_key(&o.w, "tunnel_rpo");
            lunnel_jw_int(&o.w, d->tunnel_rpo);
        }
        lunnel_jw_key(&o.w, "channels");
        lunnel_jw_array(&o.w);
        for (size_t i = 0; i < d->n_channels; i++) {
            Lunnel__Tunnel__ChannelInfo *c = d->channels[i];
            lunnel_jw_object(&o.w);
            json_str(&o.w, "channel_id", c->channel_id);
            json_str(&o.w, "type", c->channel_type);
            json_str(&o.w, "status", c->channel_status);
            json_str(&o.w, "client_id", c->client_id);
            lunnel_jw_key(&o.w, "rpo");
            lunnel_jw_int(&o.w, c->has_channel_rpo ? c->channel_rpo : 0);
            lunnel_jw_key(&o.w, "count");
            lunnel_jw_int(&o.w, c->has_channel_count ? c->channel_count : 0);
            lunnel_jw_end_object(&o.w);
        }
        lunnel_jw_end_array(&o.w);
        lunnel_jw_end_object(&o.w);
        json_print(&o);
    } else {
        char ct[96], rpo[96];
        fmt_time(ti->has_create_time ? ti->create_time : 0, ct, sizeof ct);
        fmt_time(d->has_tunnel_rpo ? d->tunnel_rpo : 0, rpo, sizeof rpo);
        printf(
            "tunnel    %s\nid        %s\ntable     %s\ninstance  %s\ntype      %s\nstage     %s\n"
            "expired   %s\ncreated   %s\nrpo       %s\nstream    %s\n",
            or_dash(ti->tunnel_name), or_dash(ti->tunnel_id), or_dash(ti->table_name),
            or_dash(ti->instance_name), or_dash(ti->tunnel_type), or_dash(ti->stage),
            ti->has_expired && ti->expired ? "yes" : "no", ct, rpo, or_dash(ti->stream_id));
        printf("\n%zu channel%s\n", d->n_channels, d->n_channels == 1 ? "" : "s");
        if (d->n_channels) {
            printf("%-44s %-9s %-11s %-40s %s\n", "CHANNEL", "TYPE", "STATUS", "CLIENT", "RPO");
            for (size_t i = 0; i < d->n_channels; i++) {
                Lunnel__Tunnel__ChannelInfo *c = d->channels[i];
                char crpo[96];
                fmt_time(c->has_channel_rpo ? c->channel_rpo : 0, crpo, sizeof crpo);
                printf("%-44s %-9s %-11s %-40s %s\n", or_dash(c->channel_id),
                       or_dash(c->channel_type), or_dash(c->channel_status), or_dash(c->client_id),
                       crpo);
            }
        }
    }
    lunnel_api_sync_result_free(&r);
    return LUNNEL_EXIT_OK;
}

/* --watch: one describe per --interval. On a terminal each refresh homes the cursor and
 * clears the screen first (the table is redrawn in place); otherwise the snapshots follow
 * each other, separated by a blank line. An error ends the watch with its status. */
static int do_describe(lunnel_api *api, struct ev_loop *loop, const lunnel_opt_values *v, int json)
{
    if (!lunnel_opts_bool(v, "watch")) return describe_once(api, loop, v, json);
    double interval = lunnel_opts_num(v, "interval");
    int64_t iterations = lunnel_opts_int(v, "iterations");
    if (interval < 0.1 || iterations < 0) {
        fprintf(stderr, "lunnel tunnel describe: --interval must be at least 100ms and "
                        "--iterations not negative\n");
        return LUNNEL_EXIT_USAGE;
    }
    int tty = isatty(1) && !json;
    for (int64_t n = 0; iterations == 0 || n < iterations; n++) {
        if (n > 0) {
            struct timespec ts = {(time_t)interval,
                                  (long)((interval - (double)(time_t)interval) * 1e9)};
            while (nanosleep(&ts, &ts) != 0) {
            }
        }
        if (tty) {
            time_t now = time(NULL);
            struct tm tm;
            char when[32];
            strftime(when, sizeof when, "%H:%M:%S", localtime_r(&now, &tm));
            printf("\033[H\033[2Jevery %gs, %s (Ctrl-C to stop)\n\n", interval, when);
        } else if (n > 0 && !json) {
            printf("\n");
        }
        int rc = describe_once(api, loop, v, json);
        fflush(stdout);
        if (rc) return rc;
    }
    return LUNNEL_EXIT_OK;
}

static int do_delete(lunnel_api *api, struct ev_loop *loop, const lunnel_opt_values *v, int json)
{
    Lunnel__Tunnel__DeleteTunnelRequest req = LUNNEL__TUNNEL__DELETE_TUNNEL_REQUEST__INIT;
    req.table_name = (char *)lunnel_opts_str(v, "table");
    req.tunnel_name = (char *)lunnel_opts_str(v, "tunnel");
    lunnel_api_sync_result r;
    if (lunnel_api_call_sync(api, loop, LUNNEL_API_DELETE, &req.base, 0, &r) != 0) {
        int rc = report("tunnel delete", &r);
        lunnel_api_sync_result_free(&r);
        return rc;
    }
    if (json) {
        json_out o;
        json_begin(&o);
        lunnel_jw_object(&o.w);
        lunnel_jw_key(&o.w, "deleted");
        lunnel_jw_bool(&o.w, 1);
        json_str(&o.w, "table", req.table_name);
        json_str(&o.w, "tunnel", req.tunnel_name);
        lunnel_jw_end_object(&o.w);
        json_print(&o);
    } else {
        printf("deleted tunnel %s on table %s\n", req.tunnel_name, req.table_name);
    }
    lunnel_api_sync_result_free(&r);
    return LUNNEL_EXIT_OK;
}

/* --tunnel-id, or DescribeTunnel by --table/--tunnel; writes a malloc'd id to *id. */
static int resolve_id(lunnel_api *api, struct ev_loop *loop, const lunnel_opt_values *v,
                      const char *sub, char **id)
{
    const char *given = lunnel_opts_str(v, "tunnel-id");
    if (given) {
        *id = strdup(given);
        return *id ? 0 : LUNNEL_EXIT_RUNTIME;
    }
    const char *table = lunnel_opts_str(v, "table"), *tunnel = lunnel_opts_str(v, "tunnel");
    if (!table || !tunnel) {
        fprintf(stderr, "lunnel %s: give --tunnel-id, or --table and --tunnel\n", sub);
        return LUNNEL_EXIT_USAGE;
    }
    lunnel_api_sync_result r;
    int rc = describe(api, loop, sub, table, tunnel, &r);
    if (rc) return rc;
    *id = strdup(((Lunnel__Tunnel__DescribeTunnelResponse *)r.msg)->tunnel->tunnel_id);
    lunnel_api_sync_result_free(&r);
    return *id ? 0 : LUNNEL_EXIT_RUNTIME;
}

/* A server JSON document passed through as it is; null when absent. */
static void json_raw_doc(lunnel_jw *w, const ProtobufCBinaryData *b, int has)
{
    if (has && b->len)
        lunnel_jw_raw(w, (const char *)b->data, b->len);
    else
        lunnel_jw_null(w);
}

static void print_bytes_json(const ProtobufCBinaryData *b, int has)
{
    if (has && b->len)
        fwrite(b->data, 1, b->len, stdout);
    else
        printf("null");
}

/* A number member of a GetRpo JSON entry, 0 when absent (the SDK's int64 zero value). */
static int64_t rpo_num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key); /* case-insensitive, like Go's json */
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static const char *rpo_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? or_dash(v->valuestring) : "-";
}

/* Human view of GetRpo. The documents have the official Go SDK's shape:
 * rpo_infos {"<tunnel>": {"<channel>": {ChannelTyp, Status, TotalCount, AccessTime, RpoTime}}},
 * tunnel_rpo_infos {"<tunnel>": {Status, TotalCount, AccessTime, RpoTime}}, times as epoch ms.
 * A document of another shape is shown raw after a note, never dropped. */
static void print_rpo_table(const Lunnel__Tunnel__GetRpoResponse *g, const char *id)
{
    const char *tid = g->tunnel_id && *g->tunnel_id ? g->tunnel_id : id;
    cJSON *ri = g->has_rpo_infos
                    ? cJSON_ParseWithLength((const char *)g->rpo_infos.data, g->rpo_infos.len)
                    : NULL;
    cJSON *ti =
        g->has_tunnel_rpo_infos
            ? cJSON_ParseWithLength((const char *)g->tunnel_rpo_infos.data, g->tunnel_rpo_infos.len)
            : NULL;
    printf("tunnel %s\n", tid);
    if (!cJSON_IsObject(ri) || !cJSON_IsObject(ti)) {
        fprintf(stderr, "lunnel tunnel rpo: the server's RPO documents are not JSON objects; "
                        "showing them raw\n");
        printf("channels: ");
        print_bytes_json(&g->rpo_infos, g->has_rpo_infos);
        printf("\ntunnel:   ");
        print_bytes_json(&g->tunnel_rpo_infos, g->has_tunnel_rpo_infos);
        printf("\n");
    } else {
        char rpo[96], acc[96];
        printf("%-44s %-9s %-11s %12s %-24s %s\n", "CHANNEL", "TYPE", "STATUS", "TOTAL_COUNT",
               "RPO_TIME", "ACCESS_TIME");
        const cJSON *tun, *ch;
        cJSON_ArrayForEach(tun, ri)
        {
            cJSON_ArrayForEach(ch, tun)
            {
                fmt_time(rpo_num(ch, "RpoTime"), rpo, sizeof rpo);
                fmt_time(rpo_num(ch, "AccessTime"), acc, sizeof acc);
                printf("%-44s %-9s %-11s %12" PRId64 " %-24s %s\n", or_dash(ch->string),
                       rpo_str(ch, "ChannelTyp"), rpo_str(ch, "Status"), rpo_num(ch, "TotalCount"),
                       rpo, acc);
            }
        }
        cJSON_ArrayForEach(tun, ti)
        {
            fmt_time(rpo_num(tun, "RpoTime"), rpo, sizeof rpo);
            fmt_time(rpo_num(tun, "AccessTime"), acc, sizeof acc);
            printf("tunnel %s: status %s, total count %" PRId64 ", rpo time %s, access time %s\n",
                   or_dash(tun->string), rpo_str(tun, "Status"), rpo_num(tun, "TotalCount"), rpo,
                   acc);
        }
    }
    cJSON_Delete(ri);
    cJSON_Delete(ti);
}

static int do_rpo(lunnel_api *api, struct ev_loop *loop, const lunnel_opt_values *v, int json)
{
    char *id = NULL;
    int rc = resolve_id(api, loop, v, "tunnel rpo", &id);
    if (rc) return rc;
    Lunnel__Tunnel__GetRpoRequest req = LUNNEL__TUNNEL__GET_RPO_REQUEST__INIT;
    req.tunnel_id = id;
    lunnel_api_op op =
        lunnel_opts_bool(v, "by-offset") ? LUNNEL_API_GETRPOBYOFFSET : LUNNEL_API_GETRPO;
    lunnel_api_sync_result r;
    if (lunnel_api_call_sync(api, loop, op, &req.base, 0, &r) != 0) {
        rc = report("tunnel rpo", &r);
    } else {
        Lunnel__Tunnel__GetRpoResponse *g = (Lunnel__Tunnel__GetRpoResponse *)r.msg;
        /* rpo_infos / tunnel_rpo_infos are JSON documents from the server: pass them through. */
        if (json) {
            json_out o;
            json_begin(&o);
            lunnel_jw_object(&o.w);
            json_str(&o.w, "tunnel_id", g->tunnel_id ? g->tunnel_id : id);
            lunnel_jw_key(&o.w, "rpo_infos");
            json_raw_doc(&o.w, &g->rpo_infos, g->has_rpo_infos);
            lunnel_jw_key(&o.w, "tunnel_rpo_infos");
            json_raw_doc(&o.w, &g->tunnel_rpo_infos, g->has_tunnel_rpo_infos);
            lunnel_jw_end_object(&o.w);
            json_print(&o);
        } else {
            print_rpo_table(g, id);
        }
    }
    lunnel_api_sync_result_free(&r);
    free(id);
    return rc;
}

static int do_schedule(lunnel_api *api, struct ev_loop *loop, const lunnel_opt_values *v, int json)
{
    char *id = NULL;
    int rc = resolve_id(api, loop, v, "tunnel schedule", &id);
    if (rc) return rc;
    Lunnel__Tunnel__ScheduleRequest req = LUNNEL__TUNNEL__SCHEDULE_REQUEST__INIT;
    Lunnel__Tunnel__Channel ch = LUNNEL__TUNNEL__CHANNEL__INIT;
    Lunnel__Tunnel__Channel *chs[1] = {&ch};
    const char *st = lunnel_opts_str(v, "status");
    ch.channel_id = (char *)lunnel_opts_str(v, "channel");
    ch.version = lunnel_opts_int(v, "version");
    ch.status = strcmp(st, "OPEN") == 0      ? LUNNEL__TUNNEL__CHANNEL_STATUS__OPEN
                : strcmp(st, "CLOSING") == 0 ? LUNNEL__TUNNEL__CHANNEL_STATUS__CLOSING
                                             : LUNNEL__TUNNEL__CHANNEL_STATUS__TERMINATED;
    req.tunnel_id = id;
    req.n_channels = 1;
    req.channels = chs;
    lunnel_api_sync_result r;
    if (lunnel_api_call_sync(api, loop, LUNNEL_API_SCHEDULE, &req.base, 0, &r) != 0) {
        rc = report("tunnel schedule", &r);
    } else if (json) {
        json_out o;
        json_begin(&o);
        lunnel_jw_object(&o.w);
        json_str(&o.w, "tunnel_id", id);
        json_str(&o.w, "channel_id", ch.channel_id);
        json_str(&o.w, "status", st);
        lunnel_jw_end_object(&o.w);
        json_print(&o);
    } else {
        printf("channel %s of tunnel %s: status %s requested\n", ch.channel_id, id, st);
    }
    lunnel_api_sync_result_free(&r);
    free(id);
    return rc;
}

/* ---- dispatch ---- */

static void tunnel_usage(FILE *f)
{
    fprintf(f, "usage: lunnel tunnel SUBCOMMAND [options]\n\nsubcommands:\n");
    for (size_t i = 0; i < N_SUBS; i++)
        fprintf(f, "  %-9s %s\n", SUBS[i].spec.name + 7, SUBS[i].spec.summary);
    fprintf(f, "\nlunnel tunnel SUBCOMMAND --help shows its options.\n");
}

void lunnel_cmd_tunnel_markdown(FILE *f)
{
    for (size_t i = 0; i < N_SUBS; i++)
        lunnel_opts_print_markdown(&SUBS[i].spec, f);
}

int lunnel_cmd_tunnel(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        tunnel_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? LUNNEL_EXIT_USAGE : LUNNEL_EXIT_OK;
    }
    const subcommand *sc = NULL;
    for (size_t i = 0; i < N_SUBS; i++)
        if (strcmp(SUBS[i].spec.name + 7, argv[1]) == 0) sc = &SUBS[i];
    if (!sc) {
        fprintf(stderr,
                "lunnel tunnel: unknown subcommand \"%s\" (one of create, list, describe, delete, "
                "rpo, schedule)\n",
                argv[1]);
        return LUNNEL_EXIT_USAGE;
    }
    lunnel_opt_values *v = NULL;
    char err[512];
    int pr = lunnel_opts_parse(&sc->spec, argc, argv, 2, &v, err, sizeof err);
    if (pr == LUNNEL_OPTS_HELP) {
        lunnel_opts_print_help(&sc->spec, stdout);
        return LUNNEL_EXIT_OK;
    }
    if (pr != LUNNEL_OPTS_OK) {
        fprintf(stderr, "lunnel %s: %s\n", sc->spec.name, err);
        return LUNNEL_EXIT_USAGE;
    }
    lunnel_opts_apply_logging(v);
    endpoint_in_use = lunnel_opts_str(v, "endpoint");
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    lunnel_client client;
    int rc = lunnel_opts_open_client(v, loop, &client, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "lunnel %s: %s\n", sc->spec.name, err);
    } else {
        rc = sc->fn(client.api, loop, v, lunnel_opts_bool(v, "json"));
        lunnel_opts_close_client(&client);
    }
    ev_loop_destroy(loop);
    lunnel_opts_free(v);
    return rc;
}
