/* tunnel_feed.h: how lunnel-emulator's table store feeds its tunnel registry: the
 * registry's source (tunnel_source.h: does a table exist, a snapshot of its rows for base
 * data) reads the store, and a store listener passes every committed change and every
 * table deletion on. One wiring for tunnel_server.c and for the tests and fuzzers that run
 * a store and a registry without HTTP. */
#ifndef LUNNEL_EMU_TUNNEL_FEED_H
#define LUNNEL_EMU_TUNNEL_FEED_H

#include "store/store.h"
#include "tunnel/tunnel.h"

typedef struct lunnel_emu_tunnel_feed {
    lunnel_emu_store *store;     /* borrowed */
    lunnel_emu_tunnels *tunnels; /* borrowed; set before the store's first event */
    emu_tunnel_source src;       /* give &src to lunnel_emu_tunnels_new */
} lunnel_emu_tunnel_feed;

/* Points f->src at `store` and clears f->tunnels. `f` must stay put (src.ctx is f) and
 * outlive the registry and the store listener. */
void lunnel_emu_tunnel_feed_init(lunnel_emu_tunnel_feed *f, lunnel_emu_store *store);

/* The store listener (lunnel_emu_store_listen with ud = the feed): a deleted table drops
 * its tunnels; an appended change goes to lunnel_emu_tunnels_on_change. */
void lunnel_emu_tunnel_feed_on_store(void *ud, lunnel_emu_store_event ev,
                                     const lunnel_emu_table *table, const lunnel_emu_change *c);

#endif
