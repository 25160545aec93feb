/* tunnel_feed.c: the store -> tunnel registry wiring of tunnel_feed.h. */
#include "tunnel/tunnel_feed.h"

static int feed_table_exists(void *ctx, const char *table)
{
    lunnel_emu_tunnel_feed *f = ctx;
    return lunnel_emu_store_table(f->store, table) != NULL;
}

typedef struct feed_each {
    emu_tunnel_row_fn fn;
    void *arg;
} feed_each;

static int feed_row(void *arg, const lunnel_emu_snapshot_row *r)
{
    feed_each *e = arg;
    emu_tunnel_row row = {r->row, r->row_len, r->pk, r->pk_len};
    return e->fn(e->arg, &row);
}

/* Base data for a new tunnel: the table's rows streamed straight into its channels' logs
 * (which copy them), without an intermediate copy of the whole table. */
static int feed_snapshot(void *ctx, const char *table, emu_tunnel_row_fn fn, void *arg)
{
    lunnel_emu_tunnel_feed *f = ctx;
    lunnel_emu_table *t = lunnel_emu_store_table(f->store, table);
    if (!t) return -1;
    feed_each e = {fn, arg};
    return lunnel_emu_table_snapshot_each(t, feed_row, &e);
}

void lunnel_emu_tunnel_feed_init(lunnel_emu_tunnel_feed *f, lunnel_emu_store *store)
{
    f->store = store;
    f->tunnels = NULL;
    f->src = (emu_tunnel_source){f, feed_table_exists, feed_snapshot};
}

void lunnel_emu_tunnel_feed_on_store(void *ud, lunnel_emu_store_event ev,
                                     const lunnel_emu_table *table, const lunnel_emu_change *c)
{
    lunnel_emu_tunnel_feed *f = ud;
    if (ev == LUNNEL_EMU_EV_TABLE_DELETED) {
        lunnel_emu_tunnels_drop_table(f->tunnels, lunnel_emu_table_name(table));
        return;
    }
    if (ev != LUNNEL_EMU_EV_CHANGE_APPENDED || !c) return;
    emu_tunnel_change ch = {
        .table = lunnel_emu_table_name(table),
        .action = (int)c->action,
        .row = c->row,
        .row_len = c->row_len,
        .origin = c->origin,
        .origin_len = c->origin_len,
        .pk = c->pk,
        .pk_len = c->pk_len,
        .timestamp_ns = c->timestamp_us * 1000,
    };
    lunnel_emu_tunnels_on_change(f->tunnels, &ch);
}
