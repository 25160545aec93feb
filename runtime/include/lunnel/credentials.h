/* credentials.h: where the access key comes from (static or a refreshable command) and how
 * it is refreshed without blocking the loop thread.
 *
 * Static: an AccessKeyId/Secret (+ optional STS token) from options or TABLESTORE_ACCESS_KEY_ID
 * / TABLESTORE_ACCESS_KEY_SECRET / TABLESTORE_SECURITY_TOKEN (the CLI resolves the env).
 * Command (`--credentials-command CMD`): `/bin/sh -c CMD` prints JSON
 *   {"AccessKeyId":..,"AccessKeySecret":..,"SecurityToken":..,"Expiration":"2026-11-21T10:00:00Z"}
 * (keys found at any depth, so `{"Credentials":{...}}` works too). It runs once at creation
 * (blocking, startup), then on a helper thread: before expiry (timer on the loop) and on
 * demand after an OTSAuthFailed (lunnel_credentials_refresh). The old key stays in use until
 * a new one arrives. Every secret learnt is registered with lunnel_log_add_secret(), so it is
 * masked in all log lines; nothing here prints a secret.
 *
 * Threads: lunnel_credentials_get() is safe from any thread; start/stop/refresh/free are
 * loop-thread calls; callbacks run on the loop thread. */
#ifndef LUNNEL_CREDENTIALS_H
#define LUNNEL_CREDENTIALS_H

#include <stdint.h>

#include "lunnel/errors.h"

struct ev_loop;

typedef struct lunnel_credentials lunnel_credentials;

/* A copy of the current key, owned by the caller (stack-friendly). */
typedef struct lunnel_cred_snapshot {
    char access_key_id[128];
    char access_key_secret[256];
    char security_token[4096]; /* "" when not STS */
    int64_t expiration_ms;     /* ms since the epoch; 0 = does not expire */
    uint64_t generation;       /* grows by one on each successful refresh */
} lunnel_cred_snapshot;

/* Static key; copies the strings. NULL + err (kind LUNNEL_NET_CREDENTIALS) when id or
 * secret is missing/empty or too long. */
lunnel_credentials *lunnel_credentials_new_static(const char *access_key_id,
                                                  const char *access_key_secret,
                                                  const char *security_token, lunnel_error *err);

/* Refreshable key from a command; runs it once now (blocking, at most timeout_s seconds,
 * 0 = 30 s). NULL + err when it fails or prints unusable JSON. */
lunnel_credentials *lunnel_credentials_new_command(const char *command, double timeout_s,
                                                   lunnel_error *err);

void lunnel_credentials_free(lunnel_credentials *c); /* waits for a running refresh thread */

/* Copies the current key into *out; thread-safe. Returns 0. */
int lunnel_credentials_get(lunnel_credentials *c, lunnel_cred_snapshot *out);

/* 1 for command credentials. */
int lunnel_credentials_refreshable(const lunnel_credentials *c);

/* Binds to a loop: arms the expiry-driven refresh timer (command credentials only).
 * Call once, on the loop thread, before lunnel_credentials_refresh(). */
void lunnel_credentials_start(lunnel_credentials *c, struct ev_loop *loop);
/* Stops the timer and async watcher (before the loop is destroyed). */
void lunnel_credentials_stop(lunnel_credentials *c);

/* Called on the loop thread when a refresh finished; ok = 1 when a new key is in place
 * (err then NULL), ok = 0 with err otherwise (the previous key is kept). */
typedef void (*lunnel_credentials_cb)(int ok, const lunnel_error *err, void *ud);

/* Asks for a refresh now, e.g. after OTSAuthFailed. Joins a refresh already running.
 * Returns 0 (cb will be called exactly once), or -1 when the credentials are static or not
 * started (cb not called). */
int lunnel_credentials_refresh(lunnel_credentials *c, lunnel_credentials_cb cb, void *ud);

/* Runs the command on the calling thread (tests, startup). 0 ok, -1 with err. */
int lunnel_credentials_refresh_sync(lunnel_credentials *c, lunnel_error *err);

/* Parses the command's JSON into *out (generation untouched). 0 ok, -1 with err naming the
 * missing or malformed field (never echoing values). Expiration absent -> 0. */
int lunnel_credentials_parse_json(const char *json, lunnel_cred_snapshot *out, lunnel_error *err);

/* Seconds from now until a refresh should run for a key expiring at expiration_ms:
 * remaining minus a margin of min(300 s, remaining / 2); 0 when already expired or closer
 * than that; -1 when the key does not expire. */
double lunnel_credentials_refresh_delay_s(int64_t now_ms, int64_t expiration_ms);

#endif
