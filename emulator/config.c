/* config.c: default settings of lunnel-emulator (see config.h). */
#include "config.h"

#include <string.h>

void lunnel_emu_config_defaults(lunnel_emu_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = "127.0.0.1:8866";
    cfg->instance = "lunnel";
    cfg->access_key_id = "lunnel-ak";
    cfg->access_key_secret = "lunnel-secret";
    cfg->max_request_bytes = 64u << 20;
    cfg->max_connections = 4096;
    cfg->idle_timeout_s = 60;
    cfg->header_timeout_s = 10;
    cfg->body_timeout_s = 30;
    cfg->max_buffered_bytes = 256u << 20;
    cfg->partitions = 4;
    cfg->batch_records = 1000;
    cfg->batch_bytes = 1u << 20;
    cfg->retention_s = 7 * 24 * 3600;
    cfg->fsync = "always";
    cfg->compact_bytes = 64u << 20;
}
