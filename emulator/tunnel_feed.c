/* tunnel_feed.c: the store -> tunnel registry wiring of tunnel_feed.h. */
#include "tunnel_feed.h"

static int feed_table_exists(void *ctx, const char *table)
{
    lunnel_emu_tunnel_feed *f = ctx;
    return lunnel_emu_store_table(f->store, table) != NULL;
}

static int feed_snapshot(void *ctx, const char *table, emu_tunnel_row_fn fn, void *arg)
{
    lunnel_emu_tunnel_feed *f = ctx;
    lunnel_emu_table *t = lunnel_emu_store_table(f->store, table);
    lunnel_emu_snapshot *s = t ? lunnel_emu_table_snapshot(t) : NULL;
    if (!s) return -1;
    int rc = 0;
    for (size_t i = 0; i < s->n_rows && rc == 0; i++) {
        emu_tunnel_row row = {s->rows[i].row, s->rows[i].row_len, s->rows[i].pk, s->rows[i].pk_len};
        rc = fn(arg, &row);
    }
    lunnel_emu_snapshot_free(s);
    return rc;
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
