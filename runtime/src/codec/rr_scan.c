/* rr_scan.c: zero-copy scan of a serialized ReadRecordsResponse (PROTOCOL.md section 2):
 *   ReadRecordsResponse { repeated Record records = 1; required string next_token = 2;
 *                         optional bool may_more_record = 3; }
 *   Record { required ActionType action_type = 1; required bytes record = 2;
 *            optional bytes origin_record = 3; }
 * Only offsets are recorded; nothing is copied. Unknown fields of wire types 0, 1, 2 and 5 are
 * skipped; groups, bad varints and lengths past the end are errors with their offset. */
#include <stdlib.h>

#include "codec/codec_internal.h"
#include "lunnel/buf.h"
#include "lunnel/readrecords.h"

typedef struct scan {
    const uint8_t *p;
    size_t end; /* scan limit (message end) */
    size_t pos;
    int32_t rec;
    lunnel_codec_error *err;
} scan;

void lunnel_rr_init(lunnel_rr_response *r)
{
    memset(r, 0, sizeof *r);
}

void lunnel_rr_free(lunnel_rr_response *r)
{
    free(r->records);
    memset(r, 0, sizeof *r);
}

static int varint(scan *s, uint64_t *out, const char *what)
{
    uint64_t v = 0;
    size_t start = s->pos;
    for (int i = 0; i < 10; i++) {
        if (s->pos >= s->end)
            return codec_fail(s->err, LUNNEL_CODEC_PROTOBUF, s->rec, start,
                              "%s: varint runs past the end", what);
        uint8_t b = s->p[s->pos++];
        if (i == 9 && b > 1)
            return codec_fail(s->err, LUNNEL_CODEC_PROTOBUF, s->rec, start,
                              "%s: varint longer than 64 bits", what);
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return codec_fail(s->err, LUNNEL_CODEC_PROTOBUF, s->rec, start,
                      "%s: varint of more than 10 bytes", what);
}

/* Reads a length prefix and checks the bytes are inside the current message. */
static int lenfield(scan *s, size_t *off, size_t *len, const char *what)
{
    size_t at = s->pos;
    uint64_t n;
    int rc = varint(s, &n, what);
    if (rc) return rc;
    if (n > s->end - s->pos)
        return codec_fail(s->err, LUNNEL_CODEC_PROTOBUF, s->rec, at,
                          "%s: length %llu exceeds the %zu bytes left", what, (unsigned long long)n,
                          s->end - s->pos);
    *off = s->pos;
    *len = (size_t)n;
    s->pos += (size_t)n;
    return 0;
}

static int skip(scan *s, unsigned wt, size_t key_at, uint64_t field)
{
    uint64_t v;
    size_t off, len;
    switch (wt) {
    case 0:
        return varint(s, &v, "unknown field");
    case 1:
    case 5: {
        size_t n = wt == 1 ? 8 : 4;
        if (s->end - s->pos < n)
            return codec_fail(s->err, LUNNEL_CODEC_PROTOBUF, s->rec, key_at,
                              "field %llu: fixed%zu runs past the end", (unsigned long long)field,
                              n * 8);
        s->pos += n;
        return 0;
    }
    case 2:
        return lenfield(s, &off, &len, "unknown field");
    default:
        return codec_fail(s->err, LUNNEL_CODEC_PROTOBUF, s->rec, key_at,
                          "field %llu: unsupported wire type %u", (unsigned long long)field, wt);
    }
}

static int key(scan *s, uint64_t *field, unsigned *wt)
{
    size_t at = s->pos;
    uint64_t k;
    int rc = varint(s, &k, "field key");
    if (rc) return rc;
    *field = k >> 3;
    *wt = (unsigned)(k & 7);
    if (*field == 0 || *field > 536870911u)
        return codec_fail(s->err, LUNNEL_CODEC_PROTOBUF, s->rec, at, "field number %llu",
                          (unsigned long long)*field);
    return 0;
}

static int wrong_type(scan *s, size_t at, const char *name, unsigned wt)
{
    return codec_fail(s->err, LUNNEL_CODEC_PROTOBUF, s->rec, at, "%s with wire type %u", name, wt);
}

static int scan_record(scan *s, size_t off, size_t len, lunnel_record_range *rg)
{
    scan m = {s->p, off + len, off, s->rec, s->err};
    int has_action = 0, has_record = 0;
    memset(rg, 0, sizeof *rg);
    while (m.pos < m.end) {
        size_t at = m.pos;
        uint64_t field;
        unsigned wt;
        int rc = key(&m, &field, &wt);
        if (rc) return rc;
        if (field == 1) {
            if (wt != 0) return wrong_type(&m, at, "Record.action_type", wt);
            uint64_t v;
            if ((rc = varint(&m, &v, "Record.action_type"))) return rc;
            if (v < 1 || v > 3)
                return codec_fail(s->err, LUNNEL_CODEC_BAD_VALUE, s->rec, at,
                                  "Record.action_type %llu (want 1..3)", (unsigned long long)v);
            rg->action = (uint8_t)v;
            has_action = 1;
        } else if (field == 2 || field == 3) {
            if (wt != 2)
                return wrong_type(&m, at, field == 2 ? "Record.record" : "Record.origin_record",
                                  wt);
            size_t o, l;
            if ((rc = lenfield(&m, &o, &l, field == 2 ? "Record.record" : "Record.origin_record")))
                return rc;
            if (field == 2) {
                rg->offset = (uint32_t)o;
                rg->len = (uint32_t)l;
                has_record = 1;
            } else {
                rg->origin_offset = (uint32_t)o;
                rg->origin_len = (uint32_t)l;
                rg->has_origin = 1;
            }
        } else if ((rc = skip(&m, wt, at, field))) {
            return rc;
        }
    }
    if (!has_action || !has_record)
        return codec_fail(s->err, LUNNEL_CODEC_MISSING, s->rec, off, "Record without %s",
                          has_action ? "record" : "action_type");
    return 0;
}

int lunnel_rr_scan(lunnel_rr_response *r, const uint8_t *buf, size_t len, lunnel_codec_error *err)
{
    r->next_token = NULL;
    r->next_token_len = 0;
    r->may_more_record = -1;
    r->count = 0;
    if (len >= UINT32_MAX)
        return codec_fail(err, LUNNEL_CODEC_TOO_LARGE, -1, 0, "response of %zu bytes", len);
    scan s = {buf, len, 0, -1, err};
    int has_token = 0;
    while (s.pos < s.end) {
        size_t at = s.pos;
        uint64_t field;
        unsigned wt;
        s.rec = -1;
        int rc = key(&s, &field, &wt);
        if (rc) return rc;
        if (field == 1) {
            if (wt != 2) return wrong_type(&s, at, "ReadRecordsResponse.records", wt);
            s.rec = (int32_t)r->count;
            size_t o, l;
            if ((rc = lenfield(&s, &o, &l, "Record"))) return rc;
            if (r->count == r->cap) {
                size_t cap = r->cap; /* uint32_t in the public struct: a batch never nears it */
                if (lunnel_vec_reserve(&r->records, &cap, (size_t)r->count + 1, 64) != 0)
                    return codec_fail(err, LUNNEL_CODEC_NOMEM, s.rec, at, "record ranges");
                r->cap = (uint32_t)cap;
            }
            if ((rc = scan_record(&s, o, l, &r->records[r->count]))) return rc;
            r->count++;
        } else if (field == 2) {
            if (wt != 2) return wrong_type(&s, at, "ReadRecordsResponse.next_token", wt);
            size_t o, l;
            if ((rc = lenfield(&s, &o, &l, "next_token"))) return rc;
            r->next_token = buf + o;
            r->next_token_len = (uint32_t)l;
            has_token = 1;
        } else if (field == 3) {
            if (wt != 0) return wrong_type(&s, at, "ReadRecordsResponse.may_more_record", wt);
            uint64_t v;
            if ((rc = varint(&s, &v, "may_more_record"))) return rc;
            r->may_more_record = v != 0;
        } else if ((rc = skip(&s, wt, at, field))) {
            return rc;
        }
    }
    if (!has_token)
        return codec_fail(err, LUNNEL_CODEC_MISSING, -1, len,
                          "ReadRecordsResponse without next_token");
    return 0;
}
