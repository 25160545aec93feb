/* main.c: the lunnel-emulator program: options, the ready line, signals, the loop.
 * Every option is one row of the table below, which drives parsing and --help. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "admin/admin.h"
#include "config.h"
#include "data_api/data_api.h"
#include "durability/durable.h"
#include "http/server.h"
#include "lunnel/bytesize.h"
#include "store/store.h"
#include "tunnel/tunnel.h"

typedef enum opt_kind { OPT_STR, OPT_SIZE, OPT_U32, OPT_I64, OPT_SECS, OPT_FLAG } opt_kind;

typedef struct opt {
    const char *name;
    opt_kind kind;
    size_t offset;
    const char *help;
} opt;

#define F(field) offsetof(lunnel_emu_config, field)
static const opt options[] = {
    {"listen", OPT_STR, F(listen), "HOST:PORT to listen on; port 0 picks a free port"},
    {"port-file", OPT_STR, F(port_file), "also write the bound port to this file"},
    {"instance", OPT_STR, F(instance), "instance name"},
    {"access-key-id", OPT_STR, F(access_key_id), "access key id clients must use"},
    {"access-key-secret", OPT_STR, F(access_key_secret), "access key secret clients must use"},
    {"sts-token", OPT_STR, F(sts_token), "requests carrying x-ots-ststoken must carry this"},
    {"max-request-bytes", OPT_SIZE, F(max_request_bytes), "largest request body accepted"},
    {"max-connections", OPT_U32, F(max_connections),
     "connections open at once; past it the least recently active idle or half-open one is "
     "closed"},
    {"idle-timeout", OPT_SECS, F(idle_timeout_s),
     "close a keep-alive connection idle this many seconds"},
    {"header-timeout", OPT_SECS, F(header_timeout_s),
     "a request head not complete within this many seconds gets 408 OTSRequestTimeout"},
    {"body-timeout", OPT_SECS, F(body_timeout_s),
     "a body (or a reply) making no progress this many seconds: 408 and close"},
    {"max-buffered-bytes", OPT_SIZE, F(max_buffered_bytes),
     "request bytes all connections may hold together; past it 503 and close"},
    {"partitions", OPT_U32, F(partitions), "partitions rows hash to (tunnel channels)"},
    {"batch-records", OPT_U32, F(batch_records), "ReadRecords cap, records"},
    {"batch-bytes", OPT_SIZE, F(batch_bytes), "ReadRecords cap, bytes"},
    {"retention", OPT_I64, F(retention_s), "stream retention in seconds"},
    {"data-dir", OPT_STR, F(data_dir),
     "keep all state in this directory (write-ahead log + snapshot); default: in memory"},
    {"fsync", OPT_STR, F(fsync),
     "with --data-dir: always (fsync before acknowledging) | batch (every 100 ms) | never"},
    {"compact-bytes", OPT_SIZE, F(compact_bytes),
     "with --data-dir: write a snapshot and start a new log past this many log bytes"},
    {"verbose", OPT_FLAG, F(verbose), "log every request to stderr"},
    {"sign-tunnel-responses", OPT_FLAG, F(sign_tunnel_responses),
     "also sign /tunnel/* responses (x-ots-contentmd5 + authorization, as the Java SDK checks)"},
};
#undef F

#define N_OPTIONS (sizeof options / sizeof options[0])
static unsigned char given[N_OPTIONS]; /* options named on the command line */

static int option_given(const char *name)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(options[i].name, name) == 0) return given[i];
    return 0;
}

static void usage(FILE *f, const lunnel_emu_config *d)
{
    fprintf(f, "usage: lunnel-emulator [options]\n"
               "A local stand-in for Tablestore and its Tunnel Service (for tests and demos).\n\n");
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        const opt *o = &options[i];
        const char *p = (const char *)d + o->offset;
        char def[64] = "";
        switch (o->kind) {
        case OPT_STR:
            if (*(const char *const *)p)
                snprintf(def, sizeof def, " (default %s)", *(const char *const *)p);
            break;
        case OPT_SIZE:
            snprintf(def, sizeof def, " (default %zu)", *(const size_t *)p);
            break;
        case OPT_U32:
            snprintf(def, sizeof def, " (default %u)", *(const uint32_t *)p);
            break;
        case OPT_I64:
            snprintf(def, sizeof def, " (default %lld)", (long long)*(const int64_t *)p);
            break;
        case OPT_SECS:
            snprintf(def, sizeof def, " (default %g)", *(const double *)p);
            break;
        case OPT_FLAG:
            break;
        }
        fprintf(f, "  --%-20s %s%s\n", o->name, o->help, def);
    }
}

static int parse_args(int argc, char **argv, lunnel_emu_config *cfg)
{
    lunnel_emu_config defaults = *cfg;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout, &defaults);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "lunnel-emulator: unexpected argument '%s' (see --help)\n", a);
            return -1;
        }
        const char *name = a + 2;
        const char *val = NULL;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const opt *o = NULL;
        for (size_t k = 0; k < sizeof options / sizeof options[0]; k++)
            if (strlen(options[k].name) == nl && strncmp(options[k].name, name, nl) == 0)
                o = &options[k];
        if (!o) {
            fprintf(stderr, "lunnel-emulator: unknown option '%s' (see --help)\n", a);
            return -1;
        }
        char *p = (char *)cfg + o->offset;
        given[o - options] = 1;
        if (o->kind == OPT_FLAG) {
            *(int *)p = 1;
            continue;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            fprintf(stderr, "lunnel-emulator: option --%s needs a value\n", o->name);
            return -1;
        }
        char *end;
        errno = 0;
        switch (o->kind) {
        case OPT_STR:
            *(const char **)p = val;
            break;
        case OPT_SIZE: { /* byte sizes: 1048576, 1MiB, 64MiB (lunnel/bytesize.h) */
            uint64_t b;
            if (lunnel_bytes_parse(val, &b) != 0 || b > SIZE_MAX) {
                fprintf(stderr, "lunnel-emulator: --%s: bad byte size '%s' (e.g. 1048576, 1MiB)\n",
                        o->name, val);
                return -1;
            }
            *(size_t *)p = (size_t)b;
            break;
        }
        case OPT_U32:
        case OPT_I64: {
            long long v = strtoll(val, &end, 10);
            if (errno || *end || end == val || v < 0 ||
                (o->kind == OPT_U32 && (v < 1 || v > 1000000))) {
                fprintf(stderr, "lunnel-emulator: --%s: bad number '%s'\n", o->name, val);
                return -1;
            }
            if (o->kind == OPT_U32)
                *(uint32_t *)p = (uint32_t)v;
            else
                *(int64_t *)p = (int64_t)v;
            break;
        }
        case OPT_SECS: {
            double v = strtod(val, &end);
            if (errno || *end || end == val || !(v > 0) || v > 86400) {
                fprintf(stderr, "lunnel-emulator: --%s: bad number of seconds '%s'\n", o->name,
                        val);
                return -1;
            }
            *(double *)p = v;
            break;
        }
        case OPT_FLAG:
            break;
        }
    }
    return 0;
}

/* Durable state (--data-dir): commit before replies leave; exit rather than acknowledge a
 * write that could not be made durable. */
static void commit_hook(void *ud)
{
    char err[512];
    if (lunnel_emu_durable_commit(ud, err, sizeof err) != 0) {
        fprintf(stderr, "lunnel-emulator: %s; stopping (nothing more is acknowledged)\n", err);
        fflush(stderr);
        _exit(1);
    }
}

static int pending_hook(void *ud)
{
    return lunnel_emu_durable_pending(ud);
}

static void on_fsync_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    char err[512];
    if (lunnel_emu_durable_tick(w->data, err, sizeof err) != 0) {
        fprintf(stderr, "lunnel-emulator: %s; stopping\n", err);
        fflush(stderr);
        _exit(1);
    }
}

/* Reaps a background compaction once its child is done. */
static void on_poll_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    lunnel_emu_durable_poll(w->data);
}

static void durable_stats(void *ud, cJSON *stats)
{
    const lunnel_emu_durable_stats *s = lunnel_emu_durable_stats_of(ud);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "restore_ms", s->restore_ms);
    cJSON_AddNumberToObject(o, "restore_cpu_ms", s->restore_cpu_ms);
    cJSON_AddNumberToObject(o, "snapshot_records", (double)s->snapshot_records);
    cJSON_AddNumberToObject(o, "wal_records", (double)s->wal_records);
    cJSON_AddNumberToObject(o, "skipped_records", (double)s->skipped_records);
    cJSON_AddBoolToObject(o, "tail_recovered", s->tail_recovered);
    cJSON_AddNumberToObject(o, "generation", (double)s->generation);
    cJSON_AddNumberToObject(o, "wal_bytes", (double)s->wal_bytes);
    cJSON_AddNumberToObject(o, "commits", (double)s->commits);
    cJSON_AddNumberToObject(o, "fsyncs", (double)s->fsyncs);
    cJSON_AddNumberToObject(o, "compactions", (double)s->compactions);
    cJSON_AddNumberToObject(o, "last_compact_ms", s->last_compact_ms);
    cJSON_AddNumberToObject(o, "last_compact_block_ms", s->last_compact_block_ms);
    cJSON_AddBoolToObject(o, "compacting", lunnel_emu_durable_compacting(ud));
    cJSON_AddItemToObject(stats, "durable", o);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    lunnel_emu_server *srv = w->data;
    fprintf(stderr, "lunnel-emulator: signal %d, shutting down\n", w->signum);
    lunnel_emu_server_stop(srv);
    ev_break(loop, EVBREAK_ALL);
}

/* A data dir keeps the partition count it was created with (rows are hashed by it): without
 * --partitions the stored value is used; another value is a flag mismatch, refused before
 * anything is opened, with the data untouched. */
static int data_dir_partitions(lunnel_emu_config *cfg)
{
    uint32_t stored;
    if (lunnel_emu_durable_peek_partitions(cfg->data_dir, &stored) != 1 ||
        stored == cfg->partitions)
        return 0;
    if (option_given("partitions")) {
        fprintf(stderr,
                "lunnel-emulator: --partitions %u: data dir %s was created with --partitions %u "
                "(rows are placed by it); start with --partitions %u or without --partitions "
                "(nothing was changed)\n",
                cfg->partitions, cfg->data_dir, stored, stored);
        return -1;
    }
    fprintf(stderr, "lunnel-emulator: data dir %s was created with --partitions %u: using it\n",
            cfg->data_dir, stored);
    cfg->partitions = stored;
    return 0;
}

/* Flags named on the command line win over the admin settings the data dir restored. */
static void reapply_flags(lunnel_emu_tunnels *tunnels, const lunnel_emu_config *cfg)
{
    if (!tunnels) return;
    cJSON *conf = cJSON_CreateObject();
    if (option_given("batch-records"))
        cJSON_AddNumberToObject(conf, "batch_records", cfg->batch_records);
    if (option_given("batch-bytes")) cJSON_AddNumberToObject(conf, "batch_bytes", cfg->batch_bytes);
    int status;
    char err[256];
    if (conf->child)
        cJSON_Delete(
            lunnel_emu_tunnels_admin(tunnels, "tunnel_config", conf, &status, err, sizeof err));
    cJSON_Delete(conf);
    if (option_given("retention")) {
        cJSON *ret = cJSON_CreateObject();
        cJSON_AddNumberToObject(ret, "retention_ms", (double)cfg->retention_s * 1000);
        cJSON_Delete(lunnel_emu_tunnels_admin(tunnels, "retention", ret, &status, err, sizeof err));
        cJSON_Delete(ret);
    }
}

int main(int argc, char **argv)
{
    lunnel_emu_config cfg;
    lunnel_emu_config_defaults(&cfg);
    if (parse_args(argc, argv, &cfg) != 0) return 2;
    lunnel_emu_fsync fsync_policy;
    if (lunnel_emu_fsync_parse(cfg.fsync, &fsync_policy) != 0) {
        fprintf(stderr, "lunnel-emulator: --fsync: '%s' is not one of always, batch, never\n",
                cfg.fsync);
        return 2;
    }
    if (cfg.data_dir && data_dir_partitions(&cfg) != 0) return 2;
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    char err[256];
    lunnel_emu_server *srv = lunnel_emu_server_new(loop, &cfg, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "lunnel-emulator: %s\n", err);
        return 1;
    }
    lunnel_emu_store *store = lunnel_emu_store_new(cfg.partitions);
    if (!store || lunnel_emu_data_api_register(srv, store) != 0 ||
        lunnel_emu_admin_register(srv, store) != 0) {
        fprintf(stderr, "lunnel-emulator: cannot set up the table API\n");
        return 1;
    }
    lunnel_emu_tunnels *tunnels = NULL;
    if (lunnel_emu_tunnel_register_ex(srv, store, &cfg, &tunnels) != 0) {
        fprintf(stderr, "lunnel-emulator: cannot set up the tunnel service\n");
        return 1;
    }
    lunnel_emu_durable *durable = NULL;
    ev_timer fsync_timer, poll_timer;
    if (cfg.data_dir) {
        lunnel_emu_durable_opts dopts = {cfg.data_dir, fsync_policy, cfg.compact_bytes, stderr};
        char derr[1024];
        durable = lunnel_emu_durable_open(&dopts, store, tunnels, derr, sizeof derr);
        if (!durable) {
            fprintf(stderr, "lunnel-emulator: --data-dir: %s\n", derr);
            return 1;
        }
        const lunnel_emu_durable_stats *ds = lunnel_emu_durable_stats_of(durable);
        fprintf(stderr,
                "lunnel-emulator: data dir %s: restored %zu tables in %.1f ms (snapshot %llu "
                "records, log %llu records%s), fsync %s\n",
                cfg.data_dir, lunnel_emu_store_table_count(store), ds->restore_ms,
                (unsigned long long)ds->snapshot_records, (unsigned long long)ds->wal_records,
                ds->tail_recovered ? ", damaged tail cut" : "", cfg.fsync);
        reapply_flags(tunnels, &cfg);
        lunnel_emu_server_set_commit(srv, commit_hook, pending_hook, durable);
        lunnel_emu_server_add_stats(srv, durable_stats, durable);
        ev_timer_init(&poll_timer, on_poll_timer, 0.05, 0.05);
        poll_timer.data = durable;
        ev_timer_start(loop, &poll_timer);
        ev_unref(loop);
        if (fsync_policy == LUNNEL_EMU_FSYNC_BATCH) {
            ev_timer_init(&fsync_timer, on_fsync_timer, 0.1, 0.1);
            fsync_timer.data = durable;
            ev_timer_start(loop, &fsync_timer);
        }
    }
    /* Signals and the key reminder come before the ready line: whoever waits for that line
     * may stop us (SIGINT/SIGTERM) or look for the reminder right away. */
    ev_signal sigint, sigterm;
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    sigint.data = sigterm.data = srv;
    ev_signal_start(loop, &sigint);
    ev_signal_start(loop, &sigterm);
    lunnel_emu_config defaults;
    lunnel_emu_config_defaults(&defaults);
    if (strcmp(cfg.access_key_secret, defaults.access_key_secret) == 0)
        fprintf(stderr,
                "lunnel-emulator: access key id '%s', secret '%s' (for local use only; set "
                "--access-key-id/--access-key-secret to change)\n",
                cfg.access_key_id, cfg.access_key_secret);
    else /* a secret someone chose is not repeated in logs */
        fprintf(stderr, "lunnel-emulator: access key id '%s', secret as given (not shown)\n",
                cfg.access_key_id);
    int port = lunnel_emu_server_port(srv);
    if (cfg.port_file) {
        FILE *f = fopen(cfg.port_file, "w");
        if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0) {
            fprintf(stderr, "lunnel-emulator: cannot write --port-file %s: %s\n", cfg.port_file,
                    strerror(errno));
            return 1;
        }
    }
    char host[64];
    const char *colon = strrchr(cfg.listen, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - cfg.listen), cfg.listen);
    printf("lunnel-emulator listening on http://%s:%d instance=%s\n", host, port, cfg.instance);
    fflush(stdout);

    ev_run(loop, 0);
    if (durable) {
        /* the registry goes with the server; replies flushed while it closes still commit */
        lunnel_emu_durable_detach_tunnels(durable);
        if (fsync_policy == LUNNEL_EMU_FSYNC_BATCH) ev_timer_stop(loop, &fsync_timer);
        ev_ref(loop);
        ev_timer_stop(loop, &poll_timer);
    }
    lunnel_emu_server_free(srv);
    int rc = 0;
    if (durable) {
        char derr[512];
        if (lunnel_emu_durable_close(durable, derr, sizeof derr) != 0) {
            fprintf(stderr, "lunnel-emulator: %s\n", derr);
            rc = 1;
        }
    }
    lunnel_emu_store_free(store);
    ev_loop_destroy(loop);
    return rc;
}
