/* net_responder.h: a scripted HTTP/1.1 responder for the C tests of the protocol layer,
 * running on its own thread on 127.0.0.1:<free port>. Each request takes the next scripted
 * reply (the last one repeats); requests are recorded (path, headers, body, whether the
 * x-ots-signature verifies with the shared secret) so tests can assert on what was sent.
 * Keep-alive is honoured, so connection reuse is observable (accepted connections count). */
#ifndef LUNNEL_NET_RESPONDER_H
#define LUNNEL_NET_RESPONDER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lunnel/sign.h"

#define RESP_MAX_SCRIPT 16
#define RESP_MAX_REQS 64

typedef struct {
    int status;
    const void *body;
    size_t body_len;
    const char *request_id; /* NULL: no x-ots-requestid header */
    int delay_ms;           /* wait before answering (timeouts) */
    int close;              /* close the connection without answering (EOF) */
    const char *md5;        /* x-ots-contentmd5 header value; NULL: none */
    size_t declared_len;    /* > 0: Content-Length sent instead of body_len (the body is cut;
                               the connection is closed after it) */
} resp_reply;

typedef struct {
    char path[64];
    char headers[8192]; /* raw header block */
    size_t body_len;
    unsigned char body[4096];
    int sig_ok;
} resp_request;

typedef struct {
    int listen_fd;
    int port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t mu;
    resp_reply script[RESP_MAX_SCRIPT];
    int n_script;
    int next;
    resp_request reqs[RESP_MAX_REQS];
    int n_reqs;
    int connections;
    const char *secret; /* for signature checks */
} responder;

/* Case-insensitive header lookup in a raw block; copies the trimmed value. */
static inline int resp_header(const char *block, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = block; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol) eol = p + strlen(p);
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            if (vl >= cap) vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 1;
        }
        p = *eol ? eol + 2 : eol;
    }
    return 0;
}

static inline int resp_verify(const responder *r, const resp_request *q)
{
    static const char *names[] = {"x-ots-date",         "x-ots-apiversion", "x-ots-accesskeyid",
                                  "x-ots-instancename", "x-ots-contentmd5", "x-ots-ststoken",
                                  "x-ots-trace-id"};
    char vals[7][4200];
    lunnel_header hs[7];
    size_t n = 0;
    for (size_t i = 0; i < 7; i++) {
        if (resp_header(q->headers, names[i], vals[n], sizeof vals[n])) {
            hs[n] = (lunnel_header){names[i], vals[n]};
            n++;
        }
    }
    char got[128], want[LUNNEL_SIGN_B64_LEN], md5[LUNNEL_MD5_B64_LEN], gotmd5[64];
    if (!resp_header(q->headers, "x-ots-signature", got, sizeof got)) return 0;
    if (lunnel_sign_request(r->secret, q->path, hs, n, want) != 0) return 0;
    lunnel_sign_content_md5(q->body, q->body_len, md5);
    if (!resp_header(q->headers, "x-ots-contentmd5", gotmd5, sizeof gotmd5)) return 0;
    return lunnel_sign_equal(got, want) && strcmp(md5, gotmd5) == 0;
}

/* Serves one connection until the peer closes or the script says close. */
static inline void resp_serve(responder *r, int fd)
{
    char buf[65536];
    size_t have = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (r->stop) return;
            int pr = poll(&p, 1, 100);
            if (pr == 0) continue;
            if (pr < 0 || have == sizeof buf) return;
            ssize_t n = read(fd, buf + have, sizeof buf - have);
            if (n <= 0) return;
            have += (size_t)n;
        }
        size_t hlen = (size_t)(end - buf) + 4;
        resp_request q;
        memset(&q, 0, sizeof q);
        size_t copy = hlen < sizeof q.headers - 1 ? hlen : sizeof q.headers - 1;
        memcpy(q.headers, buf, copy);
        sscanf(buf, "POST %63s", q.path);
        char cl[32] = "0";
        resp_header(strstr(q.headers, "\r\n") + 2, "Content-Length", cl, sizeof cl);
        size_t blen = (size_t)atol(cl);
        while (have < hlen + blen) {
            ssize_t n = read(fd, buf + have, sizeof buf - have);
            if (n <= 0) return;
            have += (size_t)n;
        }
        q.body_len = blen;
        memcpy(q.body, buf + hlen, blen < sizeof q.body ? blen : sizeof q.body);
        memmove(buf, buf + hlen + blen, have - hlen - blen);
        have -= hlen + blen;
        q.sig_ok = resp_verify(r, &q);

        pthread_mutex_lock(&r->mu);
        if (r->n_reqs < RESP_MAX_REQS) r->reqs[r->n_reqs++] = q;
        resp_reply rep = r->script[r->next < r->n_script ? r->next : r->n_script - 1];
        if (r->next < r->n_script) r->next++;
        pthread_mutex_unlock(&r->mu);

        if (rep.delay_ms) usleep((useconds_t)rep.delay_ms * 1000);
        if (rep.close) return;
        char head[640];
        int hl = snprintf(
            head, sizeof head,
            "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s%s%s%s%s%sConnection: keep-alive\r\n\r\n",
            rep.status, rep.declared_len ? rep.declared_len : rep.body_len,
            rep.request_id ? "x-ots-requestid: " : "", rep.request_id ? rep.request_id : "",
            rep.request_id ? "\r\n" : "", rep.md5 ? "x-ots-contentmd5: " : "",
            rep.md5 ? rep.md5 : "", rep.md5 ? "\r\n" : "");
        if (write(fd, head, (size_t)hl) != hl) return;
        if (rep.body_len && write(fd, rep.body, rep.body_len) != (ssize_t)rep.body_len) return;
        if (rep.declared_len) return; /* a cut body: the connection ends here */
    }
}

static inline void *resp_main(void *arg)
{
    responder *r = arg;
    while (!r->stop) {
        struct pollfd p = {.fd = r->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        int fd = accept(r->listen_fd, NULL, NULL);
        if (fd < 0) continue;
        pthread_mutex_lock(&r->mu);
        r->connections++;
        pthread_mutex_unlock(&r->mu);
        resp_serve(r, fd); /* one connection at a time is enough for these tests */
        close(fd);
    }
    return NULL;
}

static inline int resp_start(responder *r, const char *secret)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->secret = secret;
    r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(r->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(r->listen_fd, (struct sockaddr *)&a, sizeof a) || listen(r->listen_fd, 16)) return -1;
    socklen_t al = sizeof a;
    getsockname(r->listen_fd, (struct sockaddr *)&a, &al);
    r->port = ntohs(a.sin_port);
    return pthread_create(&r->thread, NULL, resp_main, r);
}

/* Replaces the script (call between calls, not while one is in flight). */
static inline void resp_script(responder *r, const resp_reply *replies, int n)
{
    pthread_mutex_lock(&r->mu);
    memcpy(r->script, replies, (size_t)n * sizeof *replies);
    r->n_script = n;
    r->next = 0;
    r->n_reqs = 0;
    pthread_mutex_unlock(&r->mu);
}

static inline void resp_stop(responder *r)
{
    r->stop = 1;
    pthread_join(r->thread, NULL);
    close(r->listen_fd);
}

#endif
