/* tunnel_faults.c: fault injection and request statistics. A fault rule names a path
 * ("/tunnel/readrecords", "/PutRow", or "*" for every path) and gives a probability of an
 * injected 503 OTSTunnelServerUnavailable, a probability of dropping the connection, an
 * added latency, and optionally how many requests it affects ("count"; -1 = until
 * cleared). Random draws come from the registry's seeded generator, so a run with a given
 * --seed injects the same faults; rate 1.0 with a count gives deterministic tests. */
#include <string.h>

#include "tunnel_internal.h"

emu_path_stat *emu_stat_for(lunnel_emu_tunnels *t, const char *path) {
    for (int i = 0; i < t->nstats; i++)
        if (strcmp(t->stats[i].path, path) == 0) return &t->stats[i];
    if (t->nstats == (int)(sizeof t->stats / sizeof t->stats[0])) return NULL;
    if (strlen(path) >= sizeof t->stats[0].path) return NULL;
    emu_path_stat *s = &t->stats[t->nstats++];
    memset(s, 0, sizeof *s);
    strcpy(s->path, path);
    return s;
}

static double unit(lunnel_emu_tunnels *t) {
    return (double)(emu_rand(t) >> 11) / (double)(1ULL << 53);
}

int emu_fault_roll(lunnel_emu_tunnels *t, const char *path, int64_t *delay_ms, int *drop) {
    int fail = 0;
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
            fail = 1;
            hit = 1;
        }
        if (hit && f->remaining > 0) f->remaining--;
    }
    return fail && !*drop;
}

int lunnel_emu_tunnels_fault(lunnel_emu_tunnels *t, const char *path, int64_t *delay_ms, int *drop) {
    emu_path_stat *st = emu_stat_for(t, path);
    if (st) st->requests++;
    int fail = emu_fault_roll(t, path, delay_ms, drop);
    if (st && (fail || *drop)) st->errors++;
    return fail;
}
