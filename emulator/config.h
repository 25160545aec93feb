/* config.h: lunnel-emulator's settings, filled from the command line by options.c (one
 * options table there: name, type, help, field) and read by the server and every module.
 * Modules that need a new setting add a field here and a row in options.c's table. */
#ifndef LUNNEL_EMU_CONFIG_H
#define LUNNEL_EMU_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct lunnel_emu_config {
    const char *listen;            /* "HOST:PORT"; port 0 picks a free one. "127.0.0.1:8866" */
    const char *port_file;         /* also write the bound port there (NULL: no) */
    const char *instance;          /* instance name, "lunnel" */
    const char *access_key_id;     /* "lunnel-ak" */
    const char *access_key_secret; /* "lunnel-secret" */
    const char *sts_token;         /* when set, x-ots-ststoken must equal it (NULL: any absent) */
    size_t max_request_bytes;      /* body limit; beyond: 413 OTSParameterInvalid. 64 MiB */
    uint32_t max_connections;      /* open at once; past it the least recently active idle or
                                    * half-open connection is closed for the new one. 4096 */
    double idle_timeout_s;         /* keep-alive connection with nothing in flight. 60 */
    double header_timeout_s;       /* a request's head must arrive within this. 10 */
    double body_timeout_s;         /* a body (or a reply being written) making no progress. 30 */
    size_t max_buffered_bytes;     /* request bytes held by all connections together; past it
                                    * 503 and close. 256 MiB */
    int verbose;                   /* log every request to stderr */
    int sign_tunnel_responses;     /* also sign tunnel API responses (MD5 of big ReadRecords
                                    * bodies costs CPU); data API responses are always signed */
    int skip_auth;                 /* tests and fuzzers only (no option): accept unsigned
                                    * requests so bodies reach the handlers */
    /* Tunnel Service (tunnel/): partitions, ReadRecords batches, stream retention */
    uint32_t partitions;    /* rows hash to this many partitions by primary key. 4 */
    uint32_t batch_records; /* ReadRecords cap, records. 1000 */
    size_t batch_bytes;     /* ReadRecords cap, bytes. 1 MiB */
    int64_t retention_s;    /* stream retention, seconds. 7 days */
    /* Durable state (durability/, --data-dir): where, how often to fsync, when to compact */
    const char *data_dir; /* NULL: in memory only */
    const char *fsync;    /* "always" | "batch" | "never" (durable.h). "always" */
    size_t compact_bytes; /* snapshot + new WAL when the WAL passes this. 64 MiB */
} lunnel_emu_config;

/* Fills `cfg` with the defaults above. */
void lunnel_emu_config_defaults(lunnel_emu_config *cfg);

#endif
