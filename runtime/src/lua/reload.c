/* reload.c: hot reload's watcher (DESIGN.md "Hot reload"). A helper thread watches the
 * script's DIRECTORY with inotify (editors replace files by writing a temporary file and
 * renaming it over the original, which a watch on the file itself would lose), and also
 * wakes on lunnel_host_reload() (the SIGHUP path) through an eventfd. After a burst of events
 * settles it reads the file once, skips it if the bytes are unchanged, and validates those
 * exact bytes in a scratch lua_State on this thread: compile, run, must return process().
 * A version is the script plus the user modules it requires (its own directory, --lua-path):
 * the directories of those modules are watched too, a change to any file re-validates the
 * whole graph from disk, and the exact bytes read then (script and modules) are what the
 * workers load. A deleted file is logged once and the old version keeps running.
 * Valid bytes are published for the workers (they swap at their next batch boundary and the
 * last one to swap acknowledges); invalid ones are logged with file and line and counted,
 * and the old version keeps running. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua/host_internal.h"
#include "lunnel/buf.h"

#define SETTLE_MS 30      /* quiet time that ends a burst of events */
#define SETTLE_MAX_MS 500 /* a never-ending burst is handled after this anyway */
#define MAX_SCRIPT_BYTES (64u << 20)

char *host_read_file(const char *path, size_t *len, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "cannot open script %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t n = 0, c = 0;
    char *buf = NULL;
    int oom = 0;
    for (;;) {
        if (n == c) {
            if (c >= MAX_SCRIPT_BYTES) {
                snprintf(err, cap, "script %s is larger than %u bytes", path, MAX_SCRIPT_BYTES);
                free(buf);
                fclose(f);
                return NULL;
            }
            if (lunnel_vec_reserve(&buf, &c, c + 1, 4096) != 0) {
                oom = 1; /* never load a script cut short */
                break;
            }
        }
        size_t got = fread(buf + n, 1, c - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = oom || ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, cap, "cannot read script %s", path);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Did this inotify buffer mention the script or a Lua file (a module of the version, or one
 * a new version may require)? Other files (a script's own output) do not wake a check. */
static int events_name_script(lunnel_host *h, const char *buf, ssize_t n)
{
    int hit = 0;
    for (ssize_t off = 0; off < n;) {
        const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
        if (ev->len) {
            size_t nl = strlen(ev->name);
            if (h->watch_any || strcmp(ev->name, h->script_base) == 0 ||
                (nl > 4 && strcmp(ev->name + nl - 4, ".lua") == 0))
                hit = 1;
        }
        if (ev->mask & IN_Q_OVERFLOW) hit = 1; /* lost events: check anyway */
        off += (ssize_t)sizeof *ev + ev->len;
    }
    return hit;
}

/* A growing ", "-separated list of paths for one log field. */
typedef struct path_list {
    char buf[2048];
    size_t len;
    int n;
} path_list;

static void pl_add(path_list *l, const char *path)
{
    if (l->len < sizeof l->buf)
        l->len += (size_t)snprintf(l->buf + l->len, sizeof l->buf - l->len, "%s%s",
                                   l->n ? ", " : "", path);
    if (l->len >= sizeof l->buf) l->len = sizeof l->buf - 1;
    l->n++;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The files that differ between the running version `cur` and the validated `cand`: the
 * script, modules whose bytes changed or that are new, modules no longer required. */
static void diff_versions(const script_version *cur, const script_version *cand,
                          const char *script_path, path_list *changed, path_list *dropped)
{
    if (cur->hash != cand->hash) pl_add(changed, script_path);
    for (int i = 0; i < cand->n_mods; i++) {
        int same = 0;
        for (int k = 0; k < cur->n_mods; k++)
            if (strcmp(cur->mods[k].path, cand->mods[i].path) == 0 &&
                cur->mods[k].hash == cand->mods[i].hash)
                same = 1;
        if (!same) pl_add(changed, cand->mods[i].path);
    }
    for (int k = 0; k < cur->n_mods; k++) {
        int kept = 0;
        for (int i = 0; i < cand->n_mods; i++)
            if (strcmp(cur->mods[k].path, cand->mods[i].path) == 0) kept = 1;
        if (!kept) pl_add(dropped, cur->mods[k].path);
    }
}

/* One check: has any file of the running version changed (script or a user module)? Then the
 * whole graph is validated afresh from disk in a scratch state, and published as one unit. */
static void check_script(lunnel_host *h)
{
    char err[2048];
    pthread_mutex_lock(&h->script_mu);
    script_version *cur = h->current;
    cur->refs++;
    pthread_mutex_unlock(&h->script_mu);

    /* which files of the running version are gone, which changed */
    path_list missing = {0}, edited = {0};
    uint64_t sig = 1469598103934665603ull;
    if (!file_exists(h->script_path)) {
        pl_add(&missing, h->script_path);
        sig = lunnel_host_hash(h->script_path, strlen(h->script_path)) ^ sig;
    }
    for (int i = 0; i < cur->n_mods; i++) {
        size_t len = 0;
        char *m = host_read_file(cur->mods[i].path, &len, err, sizeof err);
        if (!m) {
            pl_add(&missing, cur->mods[i].path);
            sig = lunnel_host_hash(cur->mods[i].path, strlen(cur->mods[i].path)) ^ (sig * 31);
        } else if (lunnel_host_hash(m, len) != cur->mods[i].hash) {
            pl_add(&edited, cur->mods[i].path);
        }
        free(m);
    }
    if (!missing.n) sig = 0;
    if (sig != h->missing_sig && missing.n)
        host_log(h, LUNNEL_LOG_WARN, "script file deleted, old version kept", "files", missing.buf,
                 NULL);
    else if (sig != h->missing_sig)
        host_log(h, LUNNEL_LOG_INFO, "deleted script files are back", "path", h->script_path, NULL);
    h->missing_sig = sig;

    size_t len = 0;
    char *src = host_read_file(h->script_path, &len, err, sizeof err);
    if (!src) {
        if (file_exists(h->script_path))
            host_log(h, LUNNEL_LOG_WARN, "script not readable, old version kept", "error", err,
                     NULL);
        script_unref(h, cur);
        return;
    }
    uint64_t hash = lunnel_host_hash(src, len);
    if (hash == cur->hash && !edited.n && !missing.n) {
        free(src);
        script_unref(h, cur);
        host_log(h, LUNNEL_LOG_DEBUG, "script unchanged", "path", h->script_path, NULL);
        return;
    }
    script_version *cand = calloc(1, sizeof *cand);
    if (!cand) {
        free(src);
        script_unref(h, cur);
        return;
    }
    cand->source = src;
    cand->len = len;
    cand->hash = hash;
    host_state st;
    int rc = state_open(
        &st, h, -1, h->cfg.memory_limit ? h->cfg.memory_limit : LUNNEL_HOST_DEFAULT_MEMORY_LIMIT,
        err, sizeof err);
    if (rc == 0) rc = state_load(&st, cand, 0, 1, err, sizeof err);
    state_close(&st);
    if (rc != 0) {
        script_version_free(cand);
        script_unref(h, cur);
        /* log first: whoever sees the counter move can rely on the line being there */
        host_log(h, LUNNEL_LOG_ERROR, "script reload rejected, old version kept", "path",
                 h->script_path, "error", err, NULL);
        __atomic_add_fetch(&h->reloads_failed, 1, __ATOMIC_RELEASE);
        return;
    }
    path_list changed = {0}, dropped = {0};
    diff_versions(cur, cand, h->script_path, &changed, &dropped);
    script_unref(h, cur);
    if (!changed.n && !dropped.n) { /* e.g. a deleted module the script no longer needs */
        script_version_free(cand);
        return;
    }
    host_log(h, LUNNEL_LOG_INFO, "script files changed, new version validated", "changed",
             changed.buf, "no_longer_required", dropped.buf, NULL);
    reload_watch_modules(h, cand);
    host_publish(h, cand);
}

void reload_watch_modules(lunnel_host *h, const script_version *v)
{
    if (h->inotify_fd < 0) return;
    for (int i = 0; i < v->n_mods; i++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", v->mods[i].path);
        char *slash = strrchr(dir, '/');
        if (!slash)
            snprintf(dir, sizeof dir, ".");
        else if (slash == dir)
            dir[1] = 0;
        else
            *slash = 0;
        /* a directory already watched returns its existing watch */
        if (inotify_add_watch(h->inotify_fd, dir,
                              IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM) < 0)
            host_log(h, LUNNEL_LOG_WARN, "cannot watch a module directory", "path", dir, "error",
                     strerror(errno), NULL);
    }
}

static void *watcher_main(void *arg)
{
    lunnel_host *h = arg;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        struct pollfd p[2] = {{h->wake_fd, POLLIN, 0}, {h->inotify_fd, POLLIN, 0}};
        int np = h->inotify_fd >= 0 ? 2 : 1;
        if (poll(p, (nfds_t)np, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        int pending = 0;
        if (p[0].revents & POLLIN) {
            uint64_t v;
            if (read(h->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN) break;
            if (__atomic_load_n(&h->watcher_stop, __ATOMIC_ACQUIRE)) break;
            pending = 1; /* lunnel_host_reload() */
        }
        if (np == 2 && (p[1].revents & POLLIN)) {
            ssize_t n = read(h->inotify_fd, buf, sizeof buf);
            if (n > 0 && events_name_script(h, buf, n)) pending = 1;
        }
        if (!pending) continue;
        /* let the burst settle (editors write, rename, chmod in quick succession) */
        int64_t start = host_now_ns();
        while (np == 2 && (host_now_ns() - start) / 1000000 < SETTLE_MAX_MS) {
            struct pollfd q = {h->inotify_fd, POLLIN, 0};
            if (poll(&q, 1, SETTLE_MS) <= 0) break;
            if (read(h->inotify_fd, buf, sizeof buf) <= 0) break;
        }
        if (__atomic_load_n(&h->watcher_stop, __ATOMIC_ACQUIRE)) break;
        check_script(h);
    }
    return NULL;
}

int reload_start(lunnel_host *h, char *err, size_t cap)
{
    h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->wake_fd < 0) {
        snprintf(err, cap, "eventfd: %s", strerror(errno));
        return -1;
    }
    if (h->cfg.watch) h->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (h->cfg.watch && h->inotify_fd < 0) {
        snprintf(err, cap, "inotify_init1: %s", strerror(errno));
        return -1;
    }
    /* A symlinked script (Kubernetes ConfigMaps swap a "..data" link beside it) changes
     * without an event naming it: then every event in the directory triggers a check (an
     * unchanged file costs one read and a hash). */
    struct stat sb;
    if (lstat(h->script_path, &sb) == 0 && S_ISLNK(sb.st_mode)) h->watch_any = 1;
    /* CLOSE_WRITE: written in place; MOVED_TO: renamed over (vim, sed -i, atomic writers) */
    if (h->cfg.watch &&
        inotify_add_watch(h->inotify_fd, h->script_dir,
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM) < 0) {
        snprintf(err, cap, "cannot watch %s: %s", h->script_dir, strerror(errno));
        return -1;
    }
    reload_watch_modules(h, h->current); /* before the thread: no other user of the fd yet */
    if (pthread_create(&h->watcher, NULL, watcher_main, h) != 0) {
        snprintf(err, cap, "cannot start the watcher thread");
        return -1;
    }
    h->watcher_started = 1;
    return 0;
}

void reload_stop(lunnel_host *h)
{
    if (h->watcher_started) {
        __atomic_store_n(&h->watcher_stop, 1, __ATOMIC_RELEASE);
        uint64_t one = 1;
        if (write(h->wake_fd, &one, sizeof one) < 0) { /* eventfd cannot be full here */
        }
        pthread_join(h->watcher, NULL);
        h->watcher_started = 0;
    }
    if (h->inotify_fd >= 0) close(h->inotify_fd);
    if (h->wake_fd >= 0) close(h->wake_fd);
    h->inotify_fd = h->wake_fd = -1;
}

int lunnel_host_reload(lunnel_host *h)
{
    if (!h || !h->watcher_started) return -1;
    uint64_t one = 1;
    return write(h->wake_fd, &one, sizeof one) == sizeof one ? 0 : -1;
}
