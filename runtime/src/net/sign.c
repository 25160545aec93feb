/* sign.c: request signing of the Tablestore / Tunnel protocol (PROTOCOL.md section 1).
 * Pure functions over OpenSSL's EVP/HMAC one-shots: no I/O, no global state, so the client
 * (net/http.c) and lunnel-emulator verify with the very same code. */
#include "lunnel/sign.h"
#include "lunnel/timeutil.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lunnel/buf.h"

#define MAX_OTS_HEADERS 64
#define MAX_NAME 128

typedef struct {
    char name[MAX_NAME]; /* lower-cased copy */
    const char *value;   /* borrowed, untrimmed */
    size_t value_len;    /* after trimming */
} ots_header;

static int cmp_header(const void *a, const void *b)
{
    return strcmp(((const ots_header *)a)->name, ((const ots_header *)b)->name);
}

/* HMAC-SHA1 of `before` + H + `after`, base64, where H is every x-ots-* header except
 * x-ots-signature, names lower-cased, sorted, each "name:trimmed-value\n". Requests and
 * responses differ only in what stands around H. */
static int sign_canonical(const char *secret, const char *before, const char *after,
                          const lunnel_header *headers, size_t n_headers,
                          char out[LUNNEL_SIGN_B64_LEN])
{
    ots_header hs[MAX_OTS_HEADERS];
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n_headers; i++) {
        const char *nm = headers[i].name;
        if (!nm || strncasecmp(nm, "x-ots-", 6) != 0) continue;
        if (strcasecmp(nm, "x-ots-signature") == 0) continue;
        size_t nl = strlen(nm);
        if (n == MAX_OTS_HEADERS || nl >= MAX_NAME) return -1;
        for (size_t k = 0; k <= nl; k++)
            hs[n].name[k] = (char)tolower((unsigned char)nm[k]);
        const char *v = headers[i].value ? headers[i].value : "";
        while (*v && isspace((unsigned char)*v))
            v++;
        size_t vl = strlen(v);
        while (vl > 0 && isspace((unsigned char)v[vl - 1]))
            vl--;
        hs[n].value = v;
        hs[n].value_len = vl;
        n++;
    }
    qsort(hs, n, sizeof hs[0], cmp_header);

    /* the canonical string S, on the stack unless it outgrows it */
    char stack[2048];
    lunnel_buf b;
    lunnel_buf_init_on(&b, stack, sizeof stack);
    lunnel_buf_str(&b, before);
    for (size_t i = 0; i < n; i++) {
        lunnel_buf_str(&b, hs[i].name);
        lunnel_buf_char(&b, ':');
        lunnel_buf_add(&b, hs[i].value, hs[i].value_len);
        lunnel_buf_char(&b, '\n');
    }
    lunnel_buf_str(&b, after);
    int rc = b.oom ? -1 : 0;
    if (rc == 0) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        if (!HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)b.p, b.len, mac,
                  &mac_len) ||
            mac_len != 20) {
            rc = -1;
        } else {
            EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
        }
    }
    lunnel_buf_free(&b);
    return rc ? -1 : 0;
}

int lunnel_sign_request(const char *secret, const char *path, const lunnel_header *headers,
                        size_t n_headers, char out[LUNNEL_SIGN_B64_LEN])
{
    /* S = path "\n" "POST" "\n" "\n" H; paths are short, so a fixed buffer suffices. */
    char before[1100];
    size_t pl = strlen(path);
    if (pl + 8 > sizeof before) return -1;
    memcpy(before, path, pl);
    memcpy(before + pl, "\nPOST\n\n", 8); /* with the NUL */
    return sign_canonical(secret, before, "", headers, n_headers, out);
}

int lunnel_sign_response(const char *secret, const char *path, const lunnel_header *headers,
                         size_t n_headers, char out[LUNNEL_SIGN_B64_LEN])
{
    return sign_canonical(secret, "", path, headers, n_headers, out);
}

void lunnel_sign_content_md5(const void *body, size_t len, char out[LUNNEL_MD5_B64_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    static const char empty = 0;
    if (!EVP_Digest(body ? body : &empty, len, md, &md_len, EVP_md5(), NULL) || md_len != 16) {
        out[0] = '\0';
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, md, (int)md_len);
}

void lunnel_sign_format_date(int64_t epoch_ms, char out[LUNNEL_DATE_LEN])
{
    lunnel_time_format_ms(epoch_ms, out);
}

int lunnel_sign_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    size_t n = la < lb ? la : lb;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}
