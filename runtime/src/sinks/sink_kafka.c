/* sink_kafka.c: the C half of lunnel.sinks.kafka, built as its own module
 * (build/lib/lunnel_sink_kafka.so, the only part of lunnel that links librdkafka) and loaded
 * by the Lua sink with ffi.load when a script first requires it.
 *
 * One lunnel_kafka is one idempotent producer (enable.idempotence=true: acks=all, retries
 * without duplicates or reordering within a partition). Messages are produced with copies of
 * key and value; lunnel_kafka_flush() serves the delivery reports on the calling (worker)
 * thread until none is outstanding, and reports the first failure. A batch is handled only
 * after every delivery report of its messages succeeded. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lunnel_kafka {
    rd_kafka_t *rk;
    long long outstanding; /* produced, no delivery report yet */
    long long failed;      /* delivery reports with an error since the last flush */
    long long delivered;   /* successful delivery reports, all time */
    char err[1024];        /* why the last call failed */
    char dr_err[512];      /* the first failed delivery report since the last flush */
} lunnel_kafka;

const char *lunnel_kafka_error(const lunnel_kafka *k)
{
    return k->err;
}
long long lunnel_kafka_outstanding(const lunnel_kafka *k)
{
    return k->outstanding;
}
long long lunnel_kafka_delivered(const lunnel_kafka *k)
{
    return k->delivered;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    lunnel_kafka *k = opaque;
    k->outstanding--;
    if (m->err) {
        if (k->failed++ == 0)
            snprintf(k->dr_err, sizeof k->dr_err, "delivery failed (topic %s, partition %d): %s",
                     rd_kafka_topic_name(m->rkt), (int)m->partition, rd_kafka_err2str(m->err));
    } else {
        k->delivered++;
    }
}

/* Creates the producer. conf: "key=value\n" lines of librdkafka properties applied after our
 * defaults (bootstrap.servers, enable.idempotence=true, linger.ms=5, client.id=lunnel);
 * NULL or "" for none. NULL with errbuf set on failure. */
lunnel_kafka *lunnel_kafka_new(const char *brokers, const char *conf, char *errbuf, size_t errcap)
{
    lunnel_kafka *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(errbuf, errcap, "out of memory");
        return NULL;
    }
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char e[512];
    const char *defaults[][2] = {{"bootstrap.servers", brokers},
                                 {"enable.idempotence", "true"},
                                 {"linger.ms", "5"},
                                 {"client.id", "lunnel"}};
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        if (rd_kafka_conf_set(c, defaults[i][0], defaults[i][1], e, sizeof e) != RD_KAFKA_CONF_OK) {
            snprintf(errbuf, errcap, "%s: %s", defaults[i][0], e);
            goto fail;
        }
    }
    if (conf && *conf) {
        char *copy = strdup(conf), *save = NULL;
        if (!copy) goto fail;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *eq = strchr(line, '=');
            if (!eq) continue;
            *eq = 0;
            if (rd_kafka_conf_set(c, line, eq + 1, e, sizeof e) != RD_KAFKA_CONF_OK) {
                snprintf(errbuf, errcap, "%s: %s", line,
                         e); /* the property's name, not its value */
                free(copy);
                goto fail;
            }
        }
        free(copy);
    }
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, k);
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!k->rk) {
        snprintf(errbuf, errcap, "%s", e);
        goto fail; /* c is still ours */
    }
    return k;
fail:
    rd_kafka_conf_destroy(c);
    free(k);
    return NULL;
}

/* Waits up to timeout_ms for what is outstanding (delivery reports served here), then
 * destroys the producer. */
void lunnel_kafka_free(lunnel_kafka *k)
{
    if (!k) return;
    if (k->rk) {
        rd_kafka_flush(k->rk, 2000);
        rd_kafka_destroy(k->rk);
    }
    free(k);
}

/* Queues one message (key and value copied). A full local queue is served for up to
 * block_ms first (delivery reports make room), then fails. 0, or -1 with lunnel_kafka_error. */
int lunnel_kafka_produce(lunnel_kafka *k, const char *topic, const void *key, size_t keylen,
                         const void *value, size_t len, int block_ms)
{
    for (int waited = 0;;) {
        rd_kafka_resp_err_t e =
            rd_kafka_producev(k->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)key, keylen),
                              RD_KAFKA_V_VALUE((void *)value, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            k->outstanding++;
            rd_kafka_poll(k->rk, 0);
            return 0;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || waited >= block_ms) {
            snprintf(k->err, sizeof k->err, "cannot produce to %s: %s", topic, rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(k->rk, 50);
        waited += 50;
    }
}

/* Serves delivery reports until none is outstanding or timeout_ms passed. 0 when every
 * report since the last flush succeeded; -1 (lunnel_kafka_error) when one failed or some are
 * still outstanding. The failure count is reset either way. */
int lunnel_kafka_flush(lunnel_kafka *k, int timeout_ms)
{
    rd_kafka_flush(k->rk, timeout_ms);
    int rc = 0;
    if (k->failed > 0) {
        snprintf(k->err, sizeof k->err, "%lld message(s) not delivered; first: %s", k->failed,
                 k->dr_err);
        rc = -1;
    } else if (k->outstanding > 0) {
        snprintf(k->err, sizeof k->err,
                 "%lld message(s) without a delivery report after %d ms (brokers unreachable?)",
                 k->outstanding, timeout_ms);
        rc = -1;
    }
    k->failed = 0;
    k->dr_err[0] = 0;
    return rc;
}
