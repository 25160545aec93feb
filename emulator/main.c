/* main.c: the lunnel-emulator program: options (options.c), the ready line, signals, the
 * loop. */
#include <errno.h>
#include <pthread.h>
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
#include "options.h"
#include "store/store.h"
#include "tunnel/tunnel.h"

/* The parsed command line (options.c): string settings in cfg point into it. */
static lunnel_opt_values *opts;

static int option_given(const char *name)
{
    return lunnel_emu_option_given(opts, name);
}

static int parse_args(int argc, char **argv, lunnel_emu_config *cfg)
{
    lunnel_emu_config defaults = *cfg;
    char err[512];
    int rc = lunnel_emu_options_parse(argc, argv, cfg, &opts, err, sizeof err);
    if (rc == LUNNEL_OPTS_HELP) {
        lunnel_emu_usage(stdout, &defaults);
        exit(0);
    }
    if (rc != LUNNEL_OPTS_OK) {
        fprintf(stderr, "lunnel-emulator: %s\n", err);
        return -1;
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

/* The start-up restore of --data-dir runs on its own thread while the loop keeps accepting
 * connections and answers them busy (lunnel_emu_server_set_busy): a client that connects
 * early gets the service's retriable error at once instead of a connection left hanging for
 * seconds, and nothing reads state the restore is still building. The ready line still
 * comes after the restore: whoever waits for it may rely on the data being back. */
typedef struct restore_job {
    lunnel_emu_durable_opts opts;
    lunnel_emu_store *store;
    lunnel_emu_tunnels *tunnels;
    lunnel_emu_durable *durable; /* result; NULL with err set on failure */
    char err[1024];
    struct ev_loop *loop;
    ev_async done;
} restore_job;

static void *restore_thread(void *arg)
{
    restore_job *job = arg;
    job->durable =
        lunnel_emu_durable_open(&job->opts, job->store, job->tunnels, job->err, sizeof job->err);
    ev_async_send(job->loop, &job->done);
    return NULL;
}

static void on_restored(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ONE);
}

/* Restores the data dir on a thread while `loop` serves busy answers; returns the durable
 * state, or NULL with `err` set. */
static lunnel_emu_durable *restore_serving_busy(struct ev_loop *loop, lunnel_emu_server *srv,
                                                const lunnel_emu_durable_opts *opts,
                                                lunnel_emu_store *store,
                                                lunnel_emu_tunnels *tunnels, char *err,
                                                size_t errlen)
{
    restore_job *job = calloc(1, sizeof *job);
    if (!job) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *job = (restore_job){.opts = *opts, .store = store, .tunnels = tunnels, .loop = loop};
    ev_async_init(&job->done, on_restored);
    ev_async_start(loop, &job->done);
    lunnel_emu_server_set_busy(srv, "restoring the data dir");
    fprintf(stderr,
            "lunnel-emulator: restoring the data dir %s; requests get 503 OTSServerBusy until "
            "it is back\n",
            opts->dir);
    pthread_t th;
    int rc = pthread_create(&th, NULL, restore_thread, job);
    if (rc != 0) { /* no thread: restore here, blocking, as before */
        restore_thread(job);
    } else {
        ev_run(loop, 0); /* until on_restored */
        pthread_join(th, NULL);
    }
    ev_async_stop(loop, &job->done);
    lunnel_emu_server_set_busy(srv, NULL);
    lunnel_emu_durable *d = job->durable;
    if (!d) snprintf(err, errlen, "%s", job->err);
    free(job);
    return d;
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
        durable = restore_serving_busy(loop, srv, &dopts, store, tunnels, derr, sizeof derr);
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
    lunnel_opts_free(opts);
    return rc;
}
