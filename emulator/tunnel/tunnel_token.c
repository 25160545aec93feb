/* tunnel_token.c: read/checkpoint tokens. Like the service's, a token is the base64 of a
 * protobuf Token{version, content = TokenContentV2}. Stream positions carry a non-empty
 * `iterator` ("<shard>:<logical offset>", the one thing clients may look at); base-data
 * positions carry `primary_key` ("<channel>:<offset>") and no iterator. `total_count` is the
 * number of records before the position (DescribeTunnel's channel_count) and `timestamp`
 * the commit time of the last record before it (the channel's RPO). The literal
 * "finished" is handled by the callers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <proto/tunnel_service_api.pb-c.h>

#include "tunnel/tunnel_internal.h"

#define TOKEN_VERSION                                                                              \
    2 /* 2: content is a TokenContentV2 (version 1 meant the older TokenContent) */

char *emu_token_make(const emu_channel *ch, uint64_t offset, int64_t ts_ns)
{
    char pos[96];
    Lunnel__Tunnel__TokenContentV2 c = LUNNEL__TUNNEL__TOKEN_CONTENT_V2__INIT;
    if (ch->is_base) {
        int n = snprintf(pos, sizeof pos, "%s:%" PRIu64, ch->id, offset);
        c.has_primary_key = 1;
        c.primary_key.data = (uint8_t *)pos;
        c.primary_key.len = (size_t)n;
        c.has_total_count = 1;
        c.total_count = (int64_t)offset;
    } else {
        snprintf(pos, sizeof pos, "%s:%" PRIu64, ch->shard->id, offset);
        c.iterator = pos;
        c.has_total_count = 1;
        c.total_count = (int64_t)(offset - ch->start);
        c.has_timestamp = 1;
        c.timestamp = ts_ns;
    }
    uint8_t content[160];
    size_t clen = lunnel__tunnel__token_content_v2__get_packed_size(&c);
    if (clen > sizeof content) return NULL;
    lunnel__tunnel__token_content_v2__pack(&c, content);
    Lunnel__Tunnel__Token tok = LUNNEL__TUNNEL__TOKEN__INIT;
    tok.version = TOKEN_VERSION;
    tok.content.data = content;
    tok.content.len = clen;
    uint8_t raw[200];
    size_t rlen = lunnel__tunnel__token__get_packed_size(&tok);
    if (rlen > sizeof raw) return NULL;
    lunnel__tunnel__token__pack(&tok, raw);
    char *out = malloc(4 * ((rlen + 2) / 3) + 1);
    if (!out) return NULL;
    EVP_EncodeBlock((unsigned char *)out, raw, (int)rlen);
    return out;
}

/* Parses "<name>:<offset>" from a byte string; the name must equal `want`. */
static int parse_pos(const char *s, size_t len, const char *want, uint64_t *offset)
{
    const char *colon = memchr(s, ':', len);
    if (!colon) return -1;
    size_t nlen = (size_t)(colon - s);
    if (nlen != strlen(want) || memcmp(s, want, nlen) != 0) return -1;
    uint64_t v = 0;
    const char *p = colon + 1, *end = s + len;
    if (p == end || end - p > 19) return -1;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *offset = v;
    return 0;
}

int emu_token_parse(const emu_channel *ch, const char *token, uint64_t *offset, int64_t *ts_ns,
                    char *err, size_t errlen)
{
    size_t tlen = strlen(token);
    if (tlen == 0 || tlen % 4 != 0 || tlen > 1024) {
        snprintf(err, errlen, "token is not base64 of a Token (length %zu)", tlen);
        return -1;
    }
    uint8_t raw[800];
    int rlen = EVP_DecodeBlock(raw, (const unsigned char *)token, (int)tlen);
    if (rlen < 0) {
        snprintf(err, errlen, "token is not valid base64");
        return -1;
    }
    /* EVP_DecodeBlock counts '=' padding as zero bytes: drop them. */
    if (token[tlen - 1] == '=') rlen--;
    if (token[tlen - 2] == '=') rlen--;
    Lunnel__Tunnel__Token *tok = lunnel__tunnel__token__unpack(NULL, (size_t)rlen, raw);
    if (!tok) {
        snprintf(err, errlen, "token does not decode as a Token message");
        return -1;
    }
    Lunnel__Tunnel__TokenContentV2 *c =
        lunnel__tunnel__token_content_v2__unpack(NULL, tok->content.len, tok->content.data);
    int rc = -1;
    if (!c) {
        snprintf(err, errlen, "token content does not decode as TokenContentV2");
    } else if (tok->version != TOKEN_VERSION) {
        snprintf(err, errlen, "token version %" PRId64 " is not %d", tok->version, TOKEN_VERSION);
    } else if (ch->is_base) {
        if (!c->has_primary_key ||
            parse_pos((const char *)c->primary_key.data, c->primary_key.len, ch->id, offset) != 0)
            snprintf(err, errlen, "token is not a position of base channel %s", ch->id);
        else
            rc = 0;
        *ts_ns = 0;
    } else {
        if (!c->iterator || parse_pos(c->iterator, strlen(c->iterator), ch->shard->id, offset) != 0)
            snprintf(err, errlen, "token is not a position of stream channel %s", ch->id);
        else
            rc = 0;
        *ts_ns = c->has_timestamp ? c->timestamp : 0;
    }
    if (c) lunnel__tunnel__token_content_v2__free_unpacked(c, NULL);
    lunnel__tunnel__token__free_unpacked(tok, NULL);
    return rc;
}
