/* options.c: lunnel-emulator's options (options.h). Every option is one row of the table
 * below, which drives parsing (base's lunnel_opts_parse) and --help; a parallel row says
 * which config.h field it fills and how. Bounds and messages are the emulator's own. */
#include "options.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/bytesize.h"

typedef enum opt_kind { OPT_STR, OPT_SIZE, OPT_U32, OPT_I64, OPT_SECS, OPT_FLAG } opt_kind;

#define STR LUNNEL_OPT_STRING
#define SIZE LUNNEL_OPT_BYTES
#define NUM LUNNEL_OPT_INT
#define SECS LUNNEL_OPT_NUMBER
#define FLAG LUNNEL_OPT_BOOL
static const lunnel_opt options[] = {
    {"listen", STR, NULL, NULL, NULL, NULL, 0, "HOST:PORT to listen on; port 0 picks a free port"},
    {"port-file", STR, NULL, NULL, NULL, NULL, 0, "also write the bound port to this file"},
    {"instance", STR, NULL, NULL, NULL, NULL, 0, "instance name"},
    {"access-key-id", STR, NULL, NULL, NULL, NULL, 0, "access key id clients must use"},
    {"access-key-secret", STR, NULL, NULL, NULL, NULL, 0, "access key secret clients must use"},
    {"sts-token", STR, NULL, NULL, NULL, NULL, 0,
     "requests carrying x-ots-ststoken must carry this"},
    {"max-request-bytes", SIZE, NULL, NULL, NULL, NULL, 0, "largest request body accepted"},
    {"max-connections", NUM, NULL, NULL, NULL, NULL, 0,
     "connections open at once; past it the least recently active idle or half-open one is "
     "closed"},
    {"idle-timeout", SECS, NULL, NULL, NULL, NULL, 0,
     "close a keep-alive connection idle this many seconds"},
    {"header-timeout", SECS, NULL, NULL, NULL, NULL, 0,
     "a request head not complete within this many seconds gets 408 OTSRequestTimeout"},
    {"body-timeout", SECS, NULL, NULL, NULL, NULL, 0,
     "a body (or a reply) making no progress this many seconds: 408 and close"},
    {"max-buffered-bytes", SIZE, NULL, NULL, NULL, NULL, 0,
     "request bytes all connections may hold together; past it 503 and close"},
    {"partitions", NUM, NULL, NULL, NULL, NULL, 0, "partitions rows hash to (tunnel channels)"},
    {"batch-records", NUM, NULL, NULL, NULL, NULL, 0, "ReadRecords cap, records"},
    {"batch-bytes", SIZE, NULL, NULL, NULL, NULL, 0, "ReadRecords cap, bytes"},
    {"retention", NUM, NULL, NULL, NULL, NULL, 0, "stream retention in seconds"},
    {"data-dir", STR, NULL, NULL, NULL, NULL, 0,
     "keep all state in this directory (write-ahead log + snapshot); default: in memory"},
    {"fsync", STR, NULL, NULL, NULL, NULL, 0,
     "with --data-dir: always (fsync before acknowledging) | batch (every 100 ms) | never"},
    {"compact-bytes", SIZE, NULL, NULL, NULL, NULL, 0,
     "with --data-dir: write a snapshot and start a new log past this many log bytes"},
    {"verbose", FLAG, NULL, NULL, NULL, NULL, 0, "log every request to stderr"},
    {"sign-tunnel-responses", FLAG, NULL, NULL, NULL, NULL, 0,
     "also sign /tunnel/* responses (x-ots-contentmd5 + authorization, as the Java SDK checks)"},
};
#undef STR
#undef SIZE
#undef NUM
#undef SECS
#undef FLAG

/* Row for row with options[]: the config field and its C type. */
#define F(field) offsetof(lunnel_emu_config, field)
static const struct field {
    size_t offset;
    opt_kind kind;
} fields[] = {
    {F(listen), OPT_STR},
    {F(port_file), OPT_STR},
    {F(instance), OPT_STR},
    {F(access_key_id), OPT_STR},
    {F(access_key_secret), OPT_STR},
    {F(sts_token), OPT_STR},
    {F(max_request_bytes), OPT_SIZE},
    {F(max_connections), OPT_U32},
    {F(idle_timeout_s), OPT_SECS},
    {F(header_timeout_s), OPT_SECS},
    {F(body_timeout_s), OPT_SECS},
    {F(max_buffered_bytes), OPT_SIZE},
    {F(partitions), OPT_U32},
    {F(batch_records), OPT_U32},
    {F(batch_bytes), OPT_SIZE},
    {F(retention_s), OPT_I64},
    {F(data_dir), OPT_STR},
    {F(fsync), OPT_STR},
    {F(compact_bytes), OPT_SIZE},
    {F(verbose), OPT_FLAG},
    {F(sign_tunnel_responses), OPT_FLAG},
};
#undef F
#define N_OPTIONS (sizeof options / sizeof options[0])
_Static_assert(sizeof fields / sizeof fields[0] == N_OPTIONS, "one field row per option");

static const lunnel_opt_set option_set = LUNNEL_OPT_SET("Emulator", options);

/* The refusal of a value, in the words the emulator has always used. */
static void bad_value(const lunnel_opt *o, const char *val, char *err, size_t cap)
{
    const struct field *f = &fields[o - options];
    if (f->kind == OPT_FLAG)
        snprintf(err, cap, "--%s: bad value '%s' (a flag: true or false, or nothing)", o->name,
                 val);
    else if (f->kind == OPT_SIZE)
        snprintf(err, cap, "--%s: bad byte size '%s' (e.g. 1048576, 1MiB)", o->name, val);
    else if (f->kind == OPT_SECS)
        snprintf(err, cap, "--%s: bad number of seconds '%s'", o->name, val);
    else
        snprintf(err, cap, "--%s: bad number '%s'", o->name, val);
}

static void complain(lunnel_opt_problem p, const lunnel_opt *o, const char *arg, char *err,
                     size_t cap)
{
    switch (p) {
    case LUNNEL_OPT_UNKNOWN:
        if (arg[1] != '-') /* "-x": not an option of ours at all */
            snprintf(err, cap, "unexpected argument '%s' (see --help)", arg);
        else
            snprintf(err, cap, "unknown option '%s' (see --help)", arg);
        break;
    case LUNNEL_OPT_NO_VALUE:
        snprintf(err, cap, "option --%s needs a value", o->name);
        break;
    case LUNNEL_OPT_BAD_VALUE:
        bad_value(o, arg, err, cap);
        break;
    case LUNNEL_OPT_UNEXPECTED:
        snprintf(err, cap, "unexpected argument '%s' (see --help)", arg);
        break;
    }
}

static const lunnel_command_spec spec = {
    .name = "emulator",
    .usage = "lunnel-emulator [options]",
    .summary = "A local stand-in for Tablestore and its Tunnel Service (for tests and demos).",
    .sets = {&option_set},
    .n_sets = 1,
    .min_args = 0,
    .max_args = 0,
};

/* The emulator's bounds on what the table's types accept: whole numbers without overflow,
 * counts 1..1000000, retention >= 0, timeouts in (0, 86400] seconds. */
static int store(const lunnel_opt *o, const char *val, lunnel_emu_config *cfg)
{
    const struct field *f = &fields[o - options];
    char *p = (char *)cfg + f->offset;
    char *end;
    errno = 0;
    switch (f->kind) {
    case OPT_STR:
        *(const char **)p = val;
        return 0;
    case OPT_FLAG:
        *(int *)p = 1;
        return 0;
    case OPT_SIZE: {
        uint64_t b;
        if (lunnel_bytes_parse(val, &b) != 0 || b > SIZE_MAX) return -1;
        *(size_t *)p = (size_t)b;
        return 0;
    }
    case OPT_U32:
    case OPT_I64: {
        long long v = strtoll(val, &end, 10);
        if (errno || *end || end == val || v < 0 || (f->kind == OPT_U32 && (v < 1 || v > 1000000)))
            return -1;
        if (f->kind == OPT_U32)
            *(uint32_t *)p = (uint32_t)v;
        else
            *(int64_t *)p = (int64_t)v;
        return 0;
    }
    case OPT_SECS: {
        double v = strtod(val, &end);
        if (errno || *end || end == val || !(v > 0) || v > 86400) return -1;
        *(double *)p = v;
        return 0;
    }
    }
    return -1;
}

int lunnel_emu_options_parse(int argc, char **argv, lunnel_emu_config *cfg, lunnel_opt_values **out,
                             char *err, size_t cap)
{
    int rc = lunnel_opts_parse_worded(&spec, complain, argc, argv, 1, out, err, cap);
    if (rc != LUNNEL_OPTS_OK) return rc;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const lunnel_opt *o = &options[i];
        const char *val = lunnel_opts_str(*out, o->name);
        if (!val) continue; /* not given: the default stays */
        if (store(o, val, cfg) != 0) {
            bad_value(o, val, err, cap);
            lunnel_opts_free(*out);
            *out = NULL;
            return LUNNEL_OPTS_ERROR;
        }
    }
    return LUNNEL_OPTS_OK;
}

int lunnel_emu_option_given(const lunnel_opt_values *v, const char *name)
{
    return lunnel_opts_has(v, name);
}

void lunnel_emu_usage(FILE *f, const lunnel_emu_config *d)
{
    fprintf(f, "usage: %s\n%s\n\n", spec.usage, spec.summary);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const lunnel_opt *o = &options[i];
        const char *p = (const char *)d + fields[i].offset;
        char def[64] = "";
        switch (fields[i].kind) {
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
