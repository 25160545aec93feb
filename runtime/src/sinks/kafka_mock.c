/* kafka_mock.c: lunnel-kafka-mock, a test helper (not installed): librdkafka's built-in mock
 * cluster, which speaks the Kafka protocol on real 127.0.0.1 sockets, kept alive for other
 * processes (lunnel, kcat) to use. No Kafka broker is packaged in Debian; this is the closest
 * real thing. Usage: lunnel-kafka-mock BROKERS TOPIC[,TOPIC...] PARTITIONS. Prints
 * "bootstrap=<host:port,...>" once ready, then reads commands on stdin, one a line:
 * "down" (every broker disconnects and refuses connections), "up"; exits at end of input. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: lunnel-kafka-mock BROKERS TOPIC[,TOPIC...] PARTITIONS\n");
        return 2;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "lunnel-kafka-mock: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, atoi(argv[1]));
    if (!mc) {
        fprintf(stderr, "lunnel-kafka-mock: cannot create the mock cluster\n");
        return 1;
    }
    char *save = NULL;
    for (char *t = strtok_r(argv[2], ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, t, atoi(argv[3]), 1);
        if (e) {
            fprintf(stderr, "lunnel-kafka-mock: topic %s: %s\n", t, rd_kafka_err2str(e));
            return 1;
        }
    }
    printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "down", 4) == 0)
            rd_kafka_mock_broker_set_down(mc, -1);
        else if (strncmp(line, "up", 2) == 0)
            rd_kafka_mock_broker_set_up(mc, -1);
        printf("ok %s", line);
        fflush(stdout);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
