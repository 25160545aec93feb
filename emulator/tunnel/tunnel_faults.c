/* tunnel_faults.c: fault injection and request statistics. A fault rule names a path
 * ("/tunnel/readrecords", "/PutRow", or "*" for every path) and gives a probability of an
 * injected error (by default 503 OTSTunnelServerUnavailable on tunnel paths and
 * OTSServerUnavailable on data paths; any other code and HTTP status on request, e.g.
 * OTSPermissionDenied 403), a probability of dropping the connection, an
 * added latency, and optionally how many requests it affects ("count"; -1 = until
 * cleared). Random draws come from the registry's seeded generator, so a run with a given
 * --seed injects the same faults; rate 1.0 with a count gives deterministic tests. */
#include <stdio.h>
#include <string.h>

#include "tunnel/tunnel_internal.h"

emu_path_stat *emu_stat_for(lunnel_emu_tunnels *t, const char *path)
{
    for (int i = 0; i < t->nstats; i++)
        if (strcmp(t->stats[i].path, path) == 0) return &t->stats[i];
    if (t->nstats == (int)(sizeof t->stats / sizeof t->stats[0])) return NULL;
    if (strlen(path) >= sizeof t->stats[0].path) return NULL;
    emu_path_stat *s = &t->stats[t->nstats++];
    memset(s, 0, sizeof *s);
    strcpy(s->path, path);
    return s;
}

static const struct {
    const char *code;
    int status;
} code_tab[] = {
    /* tunnel API (PROTOCOL.md section 1) */
    {"OTSParameterInvalid", 400},
    {"OTSTunnelExpired", 400},
    {"OTSSequenceNumberNotMatch", 400},
    {"OTSPermissionDenied", 403},
    {"OTSAuthFailed", 403},
    {"OTSTunnelExist", 409},
    {"OTSResourceGone", 410},
    {"OTSTunnelServerUnavailable", 503},
    {"OTSInternalServerError", 500},
    /* data API codes a test may want to inject */
    {"OTSObjectNotExist", 404},
    {"OTSServerUnavailable", 503},
    {"OTSServerBusy", 503},
    {"OTSQuotaExhausted", 403},
    {"OTSRowOperationConflict", 409},
    {"OTSTimeout", 503},
};

int emu_code_status(const char *code)
{
    for (size_t i = 0; i < sizeof code_tab / sizeof code_tab[0]; i++)
        if (strcmp(code_tab[i].code, code) == 0) return code_tab[i].status;
    return 500;
}

const char *emu_code_static(const char *code)
{
    for (size_t i = 0; i < sizeof code_tab / sizeof code_tab[0]; i++)
        if (strcmp(code_tab[i].code, code) == 0) return code_tab[i].code;
    return "OTSInjectedError";
}

static double unit(lunnel_emu_tunnels *t)
{
    return (double)(emu_rand(t) >> 11) / (double)(1ULL << 53);
}

int emu_fault_roll(lunnel_emu_tunnels *t, const char *path, int64_t *delay_ms, int *drop,
                   const char *default_code, emu_fault_hit *hit_out)
{
    int fail = 0;
    const emu_fault *failed = NULL; /* the first rule that injected an error */
    *delay_ms = 0;
    *drop = 0;
    for (int i = 0; i < t->nfaults; i++) {
        emu_fault *f = &t->faults[i];
        if (f->remaining == 0) continue;
        if (strcmp(f->path, "*") != 0 && strcmp(f->path, path) != 0) continue;
        int hit = 0;
        if (f->delay_ms > 0) {
            *delay_ms += f->delay_ms;
            hit = 1;
        }
        if (f->drop_rate > 0 && unit(t) < f->drop_rate) {
            *drop = 1;
            hit = 1;
        } else if (f->error_rate > 0 && unit(t) < f->error_rate) {
            if (!fail) failed = f;
            fail = 1;
            hit = 1;
        }
        if (hit && f->remaining > 0) f->remaining--;
    }
    if (fail && hit_out) {
        const char *code = failed && failed->code[0] ? failed->code : default_code;
        snprintf(hit_out->code, sizeof hit_out->code, "%s", code);
        hit_out->status = failed && failed->status ? failed->status : emu_code_status(code);
    }
    return fail && !*drop;
}

int lunnel_emu_tunnels_fault(lunnel_emu_tunnels *t, const char *path, int64_t *delay_ms, int *drop,
                             char *code, size_t codelen, int *status)
{
    emu_path_stat *st = emu_stat_for(t, path);
    if (st) st->requests++;
    emu_fault_hit hit;
    int fail = emu_fault_roll(t, path, delay_ms, drop, "OTSServerUnavailable", &hit);
    if (fail) {
        if (code && codelen) snprintf(code, codelen, "%s", hit.code);
        if (status) *status = hit.status;
    }
    if (st && (fail || *drop)) st->errors++;
    return fail;
}
