/* credentials.c: static and command-provided access keys (credentials.h). The command runs
 * in a child process read by a helper thread, never on the loop thread; the result comes
 * back through an ev_async, where waiting callbacks are called and the expiry timer re-armed. */
#include "lunnel/credentials.h"

#include <ctype.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lunnel/log.h"
#include "lunnel/timeutil.h"

#define MAX_OUTPUT (64 * 1024)
#define MAX_WAITERS 64
#define RETRY_AFTER_FAILURE_S 10.0

typedef struct {
    lunnel_credentials_cb cb;
    void *ud;
} waiter;

struct lunnel_credentials {
    pthread_mutex_t mu; /* guards cur and the thread hand-off fields */
    lunnel_cred_snapshot cur;
    char *command; /* NULL for static */
    double timeout_s;
    /* loop side */
    struct ev_loop *loop;
    ev_timer timer;
    ev_async done;
    int started;
    int running; /* a helper thread exists (joined in on_done) */
    pthread_t thread;
    waiter waiters[MAX_WAITERS];
    int n_waiters;
    /* hand-off from the helper thread */
    int result_ok;
    lunnel_error result_err;
    lunnel_cred_snapshot result;
};

/* ---- tiny JSON walker: finds the four string keys at any depth ---- */

typedef struct {
    const char *p;
    int depth;
} jcur;

static void jws(jcur *j)
{
    while (isspace((unsigned char)*j->p))
        j->p++;
}

/* Parses a JSON string at j->p into out (cap, truncation -> -2); -1 on syntax error. */
static int jstring(jcur *j, char *out, size_t cap)
{
    if (*j->p != '"') return -1;
    j->p++;
    size_t n = 0;
    int trunc = 0;
    while (*j->p && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\') {
            char e = *j->p++;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                c = e;
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *j->p++;
                    if (!isxdigit((unsigned char)h)) return -1;
                    v = v * 16 + (unsigned)(isdigit((unsigned char)h)
                                                ? h - '0'
                                                : (tolower((unsigned char)h) - 'a' + 10));
                }
                c = v < 0x80 ? (char)v : '?';
                break;
            }
            default:
                return -1;
            }
        }
        if (out) {
            if (n + 1 < cap)
                out[n++] = c;
            else
                trunc = 1;
        }
    }
    if (*j->p != '"') return -1;
    j->p++;
    if (out && cap) out[n] = '\0';
    return trunc ? -2 : 0;
}

typedef struct {
    lunnel_cred_snapshot *snap;
    char expiration[64];
    int have_id, have_secret, have_exp;
    const char *too_long; /* field name that did not fit */
} jresult;

static int jvalue(jcur *j, jresult *r, const char *key);

static int jobject(jcur *j, jresult *r)
{
    if (++j->depth > 32) return -1;
    j->p++; /* '{' */
    jws(j);
    if (*j->p == '}') {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        char key[64];
        jws(j);
        if (jstring(j, key, sizeof key) == -1) return -1;
        jws(j);
        if (*j->p++ != ':') return -1;
        jws(j);
        if (jvalue(j, r, key)) return -1;
        jws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p == '}') {
            j->p++;
            j->depth--;
            return 0;
        }
        return -1;
    }
}

static int jarray(jcur *j, jresult *r)
{
    if (++j->depth > 32) return -1;
    j->p++;
    jws(j);
    if (*j->p == ']') {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        jws(j);
        if (jvalue(j, r, NULL)) return -1;
        jws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p == ']') {
            j->p++;
            j->depth--;
            return 0;
        }
        return -1;
    }
}

static int jvalue(jcur *j, jresult *r, const char *key)
{
    if (*j->p == '{') return jobject(j, r);
    if (*j->p == '[') return jarray(j, r);
    if (*j->p == '"') {
        char *dst = NULL;
        size_t cap = 0;
        int *flag = NULL;
        if (key && strcmp(key, "AccessKeyId") == 0 && !r->have_id) {
            dst = r->snap->access_key_id, cap = sizeof r->snap->access_key_id, flag = &r->have_id;
        } else if (key && strcmp(key, "AccessKeySecret") == 0 && !r->have_secret) {
            dst = r->snap->access_key_secret, cap = sizeof r->snap->access_key_secret,
            flag = &r->have_secret;
        } else if (key && strcmp(key, "SecurityToken") == 0 && !r->snap->security_token[0]) {
            dst = r->snap->security_token, cap = sizeof r->snap->security_token;
        } else if (key && strcmp(key, "Expiration") == 0 && !r->have_exp) {
            dst = r->expiration, cap = sizeof r->expiration, flag = &r->have_exp;
        }
        int rc = jstring(j, dst, cap);
        if (rc == -1) return -1;
        if (rc == -2) r->too_long = key;
        if (flag) *flag = 1;
        return 0;
    }
    /* number, true, false, null: skip the token */
    const char *s = j->p;
    while (*j->p && (isalnum((unsigned char)*j->p) || *j->p == '-' || *j->p == '+' || *j->p == '.'))
        j->p++;
    return j->p == s ? -1 : 0;
}

int lunnel_credentials_parse_json(const char *json, lunnel_cred_snapshot *out, lunnel_error *err)
{
    lunnel_cred_snapshot snap;
    memset(&snap, 0, sizeof snap);
    jresult r = {.snap = &snap};
    jcur j = {.p = json ? json : ""};
    jws(&j);
    if (*j.p != '{' || jobject(&j, &r) != 0) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS, "credentials JSON is malformed near byte %ld",
                         (long)(j.p - (json ? json : "")));
        return -1;
    }
    jws(&j);
    if (*j.p) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS,
                         "credentials JSON has trailing data at byte %ld", (long)(j.p - json));
        return -1;
    }
    if (r.too_long) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS, "credentials JSON field %s is too long",
                         r.too_long);
        return -1;
    }
    if (!r.have_id || !snap.access_key_id[0]) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS, "credentials JSON lacks AccessKeyId");
        return -1;
    }
    if (!r.have_secret || !snap.access_key_secret[0]) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS, "credentials JSON lacks AccessKeySecret");
        return -1;
    }
    if (r.have_exp && r.expiration[0]) {
        if (lunnel_time_parse_rfc3339(r.expiration, &snap.expiration_ms) != 0) {
            lunnel_error_set(err, LUNNEL_NET_CREDENTIALS,
                             "credentials JSON Expiration \"%.40s\" is not an ISO-8601 UTC time",
                             r.expiration);
            return -1;
        }
    }
    snap.generation = out->generation;
    *out = snap;
    return 0;
}

double lunnel_credentials_refresh_delay_s(int64_t now_ms, int64_t expiration_ms)
{
    if (expiration_ms <= 0) return -1;
    double remaining = (double)(expiration_ms - now_ms) / 1000.0;
    if (remaining <= 0) return 0;
    double margin = remaining / 2 < 300 ? remaining / 2 : 300;
    return remaining - margin;
}

/* ---- running the command ---- */

/* Runs `/bin/sh -c command`, collecting stdout (<= MAX_OUTPUT) within timeout_s. */
static int run_command(const char *command, double timeout_s, lunnel_cred_snapshot *out,
                       lunnel_error *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS, "credentials command: pipe: %s",
                         strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS, "credentials command: fork: %s",
                         strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0); /* own process group: a timeout kills the command's children too */
        dup2(fds[1], 1);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* also from here, so the group exists whoever runs first */
    close(fds[1]);
    char *buf = malloc(MAX_OUTPUT + 1);
    size_t len = 0;
    int timed_out = 0, too_big = 0;
    double deadline = lunnel_time_mono_ms() + timeout_s * 1000.0;
    while (buf) {
        double left = deadline - lunnel_time_mono_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        ssize_t n = read(fds[0], buf + len, MAX_OUTPUT - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
        if (len == MAX_OUTPUT) {
            too_big = 1;
            break;
        }
    }
    close(fds[0]);
    if (timed_out || too_big) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    int rc = -1;
    if (!buf) {
        lunnel_error_set(err, LUNNEL_NET_NOMEM, "credentials command: out of memory");
    } else if (timed_out) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS, "credentials command timed out after %.0f s",
                         timeout_s);
    } else if (too_big) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS,
                         "credentials command printed more than %d bytes", MAX_OUTPUT);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS, "credentials command failed (exit status %d)",
                         WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    } else {
        buf[len] = '\0';
        rc = lunnel_credentials_parse_json(buf, out, err);
    }
    if (buf) {
        /* The output held a secret: wipe before freeing. */
        memset(buf, 0, len);
        free(buf);
    }
    return rc;
}

static void install(lunnel_credentials *c, const lunnel_cred_snapshot *s)
{
    lunnel_log_add_secret(s->access_key_secret);
    lunnel_log_add_secret(s->security_token);
    pthread_mutex_lock(&c->mu);
    uint64_t gen = c->cur.generation + 1;
    c->cur = *s;
    c->cur.generation = gen;
    pthread_mutex_unlock(&c->mu);
}

static lunnel_credentials *alloc_creds(void)
{
    lunnel_credentials *c = calloc(1, sizeof *c);
    if (c) pthread_mutex_init(&c->mu, NULL);
    return c;
}

lunnel_credentials *lunnel_credentials_new_static(const char *id, const char *secret,
                                                  const char *token, lunnel_error *err)
{
    lunnel_error_clear(err);
    if (!id || !*id || !secret || !*secret) {
        lunnel_error_set(
            err, LUNNEL_NET_CREDENTIALS,
            "no credentials: set --access-key-id/--access-key-secret "
            "(TABLESTORE_ACCESS_KEY_ID/TABLESTORE_ACCESS_KEY_SECRET) or --credentials-command");
        return NULL;
    }
    lunnel_cred_snapshot s;
    memset(&s, 0, sizeof s);
    if (strlen(id) >= sizeof s.access_key_id || strlen(secret) >= sizeof s.access_key_secret ||
        (token && strlen(token) >= sizeof s.security_token)) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS,
                         "access key id, secret or security token is too long");
        return NULL;
    }
    strcpy(s.access_key_id, id);
    strcpy(s.access_key_secret, secret);
    if (token) strcpy(s.security_token, token);
    lunnel_credentials *c = alloc_creds();
    if (!c) {
        lunnel_error_set(err, LUNNEL_NET_NOMEM, "out of memory");
        return NULL;
    }
    install(c, &s);
    memset(&s, 0, sizeof s);
    return c;
}

lunnel_credentials *lunnel_credentials_new_command(const char *command, double timeout_s,
                                                   lunnel_error *err)
{
    lunnel_error_clear(err);
    if (!command || !*command) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS, "empty credentials command");
        return NULL;
    }
    lunnel_credentials *c = alloc_creds();
    if (!c || !(c->command = strdup(command))) {
        free(c);
        lunnel_error_set(err, LUNNEL_NET_NOMEM, "out of memory");
        return NULL;
    }
    c->timeout_s = timeout_s > 0 ? timeout_s : 30.0;
    if (lunnel_credentials_refresh_sync(c, err) != 0) {
        lunnel_credentials_free(c);
        return NULL;
    }
    return c;
}

int lunnel_credentials_refresh_sync(lunnel_credentials *c, lunnel_error *err)
{
    lunnel_error_clear(err);
    if (!c->command) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS, "static credentials cannot be refreshed");
        return -1;
    }
    lunnel_cred_snapshot s;
    memset(&s, 0, sizeof s);
    int rc = run_command(c->command, c->timeout_s, &s, err);
    if (rc == 0) install(c, &s);
    memset(&s, 0, sizeof s);
    return rc;
}

int lunnel_credentials_get(lunnel_credentials *c, lunnel_cred_snapshot *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->cur;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int lunnel_credentials_refreshable(const lunnel_credentials *c)
{
    return c->command != NULL;
}

/* ---- async refresh on the loop ---- */

static void *refresh_thread(void *arg)
{
    lunnel_credentials *c = arg;
    lunnel_cred_snapshot s;
    lunnel_error e;
    memset(&s, 0, sizeof s);
    lunnel_error_clear(&e);
    int rc = run_command(c->command, c->timeout_s, &s, &e);
    pthread_mutex_lock(&c->mu);
    c->result_ok = rc == 0;
    c->result_err = e;
    c->result = s;
    pthread_mutex_unlock(&c->mu);
    memset(&s, 0, sizeof s);
    ev_async_send(c->loop, &c->done);
    return NULL;
}

static void arm_timer(lunnel_credentials *c, double after_s)
{
    ev_timer_stop(c->loop, &c->timer);
    if (after_s < 0) return;
    ev_timer_set(&c->timer, after_s, 0.0);
    ev_timer_start(c->loop, &c->timer);
}

static int begin_refresh(lunnel_credentials *c)
{
    if (c->running) return 0;
    if (pthread_create(&c->thread, NULL, refresh_thread, c) != 0) return -1;
    c->running = 1;
    return 0;
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    lunnel_credentials *c = w->data;
    lunnel_log_kv(LUNNEL_LOG_DEBUG, "credentials", "refreshing before expiry", NULL);
    if (begin_refresh(c) != 0) arm_timer(c, RETRY_AFTER_FAILURE_S);
}

static void on_done(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    lunnel_credentials *c = w->data;
    if (!c->running) return;
    pthread_join(c->thread, NULL);
    c->running = 0;
    pthread_mutex_lock(&c->mu);
    int ok = c->result_ok;
    lunnel_cred_snapshot s = c->result;
    lunnel_error e = c->result_err;
    memset(&c->result, 0, sizeof c->result);
    pthread_mutex_unlock(&c->mu);
    double next;
    if (ok) {
        install(c, &s);
        next = lunnel_credentials_refresh_delay_s(lunnel_time_now_ms(), s.expiration_ms);
        if (next == 0) {
            lunnel_log_kv(LUNNEL_LOG_WARN, "credentials",
                          "credentials command returned an expired key", NULL);
            next = RETRY_AFTER_FAILURE_S;
        }
        lunnel_log_kv(LUNNEL_LOG_INFO, "credentials", "credentials refreshed", "access_key_id",
                      s.access_key_id, NULL);
    } else {
        lunnel_log_kv(LUNNEL_LOG_WARN, "credentials",
                      "credentials refresh failed; keeping the old key", "error", e.message, NULL);
        next = RETRY_AFTER_FAILURE_S;
    }
    memset(&s, 0, sizeof s);
    arm_timer(c, next);
    /* Callbacks may ask for another refresh: take the list first. */
    int n = c->n_waiters;
    waiter ws[MAX_WAITERS];
    memcpy(ws, c->waiters, (size_t)n * sizeof ws[0]);
    c->n_waiters = 0;
    for (int i = 0; i < n; i++)
        ws[i].cb(ok, ok ? NULL : &e, ws[i].ud);
}

void lunnel_credentials_start(lunnel_credentials *c, struct ev_loop *loop)
{
    if (!c->command || c->started) return;
    c->loop = loop;
    ev_timer_init(&c->timer, on_timer, 0., 0.);
    c->timer.data = c;
    ev_async_init(&c->done, on_done);
    c->done.data = c;
    ev_async_start(loop, &c->done);
    c->started = 1;
    pthread_mutex_lock(&c->mu);
    int64_t exp = c->cur.expiration_ms;
    pthread_mutex_unlock(&c->mu);
    arm_timer(c, lunnel_credentials_refresh_delay_s(lunnel_time_now_ms(), exp));
}

void lunnel_credentials_stop(lunnel_credentials *c)
{
    if (!c->started) return;
    if (c->running) {
        pthread_join(c->thread, NULL);
        c->running = 0;
    }
    ev_timer_stop(c->loop, &c->timer);
    ev_async_stop(c->loop, &c->done);
    c->started = 0;
    lunnel_error e;
    lunnel_error_clear(&e);
    lunnel_error_set(&e, LUNNEL_NET_CANCELLED, "credentials stopped");
    int n = c->n_waiters;
    c->n_waiters = 0;
    for (int i = 0; i < n; i++)
        c->waiters[i].cb(0, &e, c->waiters[i].ud);
}

int lunnel_credentials_refresh(lunnel_credentials *c, lunnel_credentials_cb cb, void *ud)
{
    if (!c->command || !c->started || c->n_waiters == MAX_WAITERS) return -1;
    if (begin_refresh(c) != 0) return -1;
    c->waiters[c->n_waiters++] = (waiter){cb, ud};
    return 0;
}

void lunnel_credentials_free(lunnel_credentials *c)
{
    if (!c) return;
    lunnel_credentials_stop(c);
    pthread_mutex_destroy(&c->mu);
    free(c->command);
    memset(c, 0, sizeof *c);
    free(c);
}
