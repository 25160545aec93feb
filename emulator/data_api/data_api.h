/* data_api.h: the Tablestore table data API served by lunnel-emulator (/CreateTable,
 * /ListTable, /DescribeTable, /UpdateTable, /DeleteTable, /PutRow, /UpdateRow, /DeleteRow,
 * /BatchWriteRow, /GetRow, /GetRange), on top of store.h. */
#ifndef LUNNEL_EMU_DATA_API_H
#define LUNNEL_EMU_DATA_API_H

#include "http/server.h"
#include "store/store.h"

/* Registers the data API paths. `store` is borrowed for the server's life. Returns 0 / -1. */
int lunnel_emu_data_api_register(lunnel_emu_server *srv, lunnel_emu_store *store);

#endif
