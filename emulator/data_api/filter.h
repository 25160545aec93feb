/* filter.h: Tablestore column filters and column conditions for lunnel-emulator: the bytes
 * of a GetRow / GetRange / BatchGetRow `filter` or a write's Condition.column_condition
 * (proto/table_store_filter.proto, values in the SDKs' single-value serialization) parsed
 * into a tree, checked the way the service documents its errors, and evaluated on a stored
 * row.
 *
 * Semantics: a single-column filter compares the column's latest version (or, without
 * latest_version_only, any version) with the value; a missing column passes unless
 * filter_if_missing. Values of another type never compare equal (NOT_EQUAL holds). NOT takes
 * one sub-filter, AND/OR two or more. A column pagination filter (top level only) keeps
 * columns [offset, offset + limit) of each row, in column-name order. Cells older than the
 * table's time to live are invisible to filters as to reads. */
#ifndef LUNNEL_EMU_FILTER_H
#define LUNNEL_EMU_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define EMU_FILTER_MAX_NODES 32 /* filters in one tree; more is refused */

typedef struct emu_filter emu_filter;

/* Parses `bytes`; 0 and *out (free with emu_filter_free), or -1 with the service's message
 * ("Deserialize filter failed.", "Invalid NOT operator: ...") in err. */
int emu_filter_parse(const uint8_t *bytes, size_t len, emu_filter **out, char *err, size_t errlen);
void emu_filter_free(emu_filter *f);

/* 1 when `row` (NULL: no such row) passes; cells with ts < min_ts are ignored. */
int emu_filter_match(const emu_filter *f, const lunnel_emu_row *row, int64_t min_ts);

/* For a column pagination filter: 1 and [*offset, *offset + *limit) of the row's columns;
 * 0 for the other kinds. */
int emu_filter_pagination(const emu_filter *f, int32_t *offset, int32_t *limit);

/* True for a pagination filter (not usable as a write condition). */
int emu_filter_is_pagination(const emu_filter *f);

#endif
