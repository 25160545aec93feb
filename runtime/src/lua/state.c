/* state.c: one worker's LuaJIT state: the memory limiter wrapped around LuaJIT's own
 * allocator, the lunnel.host runner (lua/lunnel/host.lua) it drives, one protected call per
 * job with a traceback handler, and the ctx.log binding to the C logger.
 *
 * Memory limit (documented in host.h): the wrapper installed with lua_setallocf counts the
 * state's bytes but never refuses an allocation. Refusing was unsafe: the LuaJIT we link
 * (2.1, 2023-01) cannot unwind an out-of-memory error raised inside a helper called from
 * compiled code (string interning, table growth, buffer growth on a trace): it reads a
 * stale frame and dies with SIGSEGV (LuaJIT only learnt to unwind such errors later in 2023).
 * The GC and the trace compiler allocate too, at points where an error cannot be raised.
 * Instead, while user code runs (armed), crossing the limit installs a count hook of one
 * instruction. Hooks run only in the interpreter, at an instruction boundary, where raising
 * is always safe; compiled code reaches the interpreter at its next trace exit, which the GC
 * forces at every cycle's atomic phase (lj_gc_step_jit), so a runaway loop on a trace is
 * stopped within one GC cycle. The hook runs a full collection first (the count includes
 * garbage) and raises "not enough memory" only when the live data still exceeds the limit;
 * the call fails with LUNNEL_HOST_EMEMORY, the state is collected and stays usable.
 * Overshoot: the bytes allocated between the crossing and the next safe point (at most one GC
 * cycle on a trace, typically a few MiB). Memory obtained outside the Lua allocator
 * (ffi.C.malloc, C libraries) is not counted. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lua/host_internal.h"
#include "lunnel/record.h"

#define MAX_ERROR_BYTES 4096
#define MAX_TRACEBACK_BYTES 8192
#define MAX_LOG_VALUE_BYTES 16384
#define MAX_LOG_FIELDS 32

static const char TB_KEY[] = "lunnel.host.traceback";

static void memory_hook(lua_State *L, lua_Debug *ar);

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    host_state *st = ud;
    lua_Alloc orig = (lua_Alloc)st->orig_alloc;
    if (nsize == 0) {
        void *r = orig(st->orig_ud, ptr, osize, 0);
        if (ptr) st->used -= osize;
        return r;
    }
    size_t old = ptr ? osize : 0;
    void *r = orig(st->orig_ud, ptr, osize, nsize);
    if (!r) return NULL;
    st->used = st->used - old + nsize;
    if (st->used > st->peak) st->peak = st->used;
    /* Past the limit: ask for a check at the next safe point (lua_sethook is async-safe:
     * it only sets flags and the dispatch table, and aborts a trace being recorded). */
    if (st->armed && !st->hook_set && st->used > st->limit && st->L) {
        st->hook_set = 1;
        lua_sethook(st->L, memory_hook, LUA_MASKCOUNT, 1);
    }
    return r;
}

/* The state of the hook's lua_State: one per worker, found through the registry. */
static const char ST_KEY[] = "lunnel.host.state";

static void memory_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_getfield(L, LUA_REGISTRYINDEX, ST_KEY);
    host_state *st = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!st) return;
    lua_sethook(L, NULL, 0, 0);
    st->hook_set = 0;
    if (!st->armed || st->used <= st->limit) return;
    st->armed = 0; /* the collection and the message must not re-arm the hook */
    lua_gc(L, LUA_GCCOLLECT, 0);
    st->armed = 1;
    if (st->used <= st->limit) return; /* it was garbage */
    st->hit_limit = 1;
    lua_pushliteral(L, "not enough memory");
    lua_error(L);
}

static char *dup_trunc(const char *s, size_t len, size_t max)
{
    if (!s) return NULL;
    size_t n = len > max ? max : len;
    char *out = malloc(n + 40);
    if (!out) return NULL;
    memcpy(out, s, n);
    if (len > max)
        snprintf(out + n, 40, "... (%zu bytes cut)", len - max);
    else
        out[n] = 0;
    return out;
}

/* Message handler of every protected call: keep the message, stash the traceback. */
static int traceback_handler(lua_State *L)
{
    host_state *st = lua_touserdata(L, lua_upvalueindex(1));
    st->armed = 0; /* building the traceback must not hit the limit */
    if (!lua_isstring(L, 1)) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_isstring(L, -1)) {
            lua_replace(L, 1);
        } else {
            lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
            lua_replace(L, 1);
        }
    }
    luaL_traceback(L, L, NULL, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, TB_KEY);
    lua_settop(L, 1);
    return 1;
}

/* ctx.log binding: clog(level, msg, {k1, v1, ...} or nil, channel_id) */
static int lua_clog(lua_State *L)
{
    host_state *st = lua_touserdata(L, lua_upvalueindex(1));
    static const char *levels[] = {"trace", "debug", "info", "warn", "error", NULL};
    int level = luaL_checkoption(L, 1, "info", levels);
    if (!host_log_enabled(st->h, (lunnel_log_level)level)) return 0;
    size_t mlen = 0;
    const char *msg = luaL_optlstring(L, 2, "", &mlen);
    lunnel_log_field f[MAX_LOG_FIELDS + 1];
    char *owned[MAX_LOG_FIELDS + 2];
    size_t n = 0, nown = 0;
    if (!lua_isnil(L, 4)) f[n++] = (lunnel_log_field){"channel", lua_tostring(L, 4)};
    if (lua_istable(L, 3)) {
        /* {k1, v1, k2, v2, ...}: strings, already sorted by the runner */
        int len = (int)lua_objlen(L, 3);
        for (int i = 1; i + 1 <= len && n < MAX_LOG_FIELDS; i += 2) {
            lua_rawgeti(L, 3, i);
            lua_rawgeti(L, 3, i + 1);
            size_t klen = 0, vlen = 0;
            const char *k = lua_tolstring(L, -2, &klen), *v = lua_tolstring(L, -1, &vlen);
            if (k && v) {
                char *kc = dup_trunc(k, klen, 256), *vc = dup_trunc(v, vlen, MAX_LOG_VALUE_BYTES);
                if (kc) owned[nown++] = kc;
                if (vc) owned[nown++] = vc;
                if (kc && vc) f[n++] = (lunnel_log_field){kc, vc};
            }
            lua_pop(L, 2);
        }
    }
    char *mc = dup_trunc(msg, mlen, MAX_LOG_VALUE_BYTES);
    host_log_fields(st->h, (lunnel_log_level)level, "script", mc ? mc : "", f, n);
    free(mc);
    for (size_t i = 0; i < nown; i++)
        free(owned[i]);
    return 0;
}

static void set_path(lua_State *L, const char *field, const char *prefix)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, field);
    lua_pushfstring(L, "%s;%s", prefix, lua_tostring(L, -1));
    lua_setfield(L, -3, field);
    lua_pop(L, 2);
}

/* Pushes runner[name] (a function) after the traceback handler; returns the handler index. */
static int push_runner_fn(host_state *st, const char *name)
{
    lua_State *L = st->L;
    lua_pushlightuserdata(L, st);
    lua_pushcclosure(L, traceback_handler, 1);
    int msgh = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->runner_ref);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    return msgh;
}

/* Runs the call prepared by push_runner_fn with nargs arguments, armed; fills r. */
static void protected_call(host_state *st, int msgh, int nargs, call_result *r)
{
    lua_State *L = st->L;
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, TB_KEY);
    st->hit_limit = 0;
    st->armed = 1;
    int rc = lua_pcall(L, nargs, 1, msgh);
    st->armed = 0;
    if (st->hook_set) { /* crossed the limit but returned before any safe point */
        lua_sethook(L, NULL, 0, 0);
        st->hook_set = 0;
    }
    if (rc == 0) {
        r->status = LUNNEL_HOST_OK;
        r->committed = lua_toboolean(L, -1);
    } else {
        size_t len = 0;
        const char *msg = lua_tolstring(L, -1, &len);
        r->status = (rc == LUA_ERRMEM || st->hit_limit) ? LUNNEL_HOST_EMEMORY : LUNNEL_HOST_ESCRIPT;
        if (r->status == LUNNEL_HOST_EMEMORY) {
            char buf[200];
            snprintf(buf, sizeof buf, "memory limit of %zu bytes reached (%s)", st->limit,
                     msg ? msg : "not enough memory");
            r->error = strdup(buf);
        } else {
            r->error = dup_trunc(msg ? msg : "(no message)", msg ? len : 12, MAX_ERROR_BYTES);
        }
        lua_getfield(L, LUA_REGISTRYINDEX, TB_KEY);
        if (lua_isstring(L, -1)) {
            const char *tb = lua_tolstring(L, -1, &len);
            r->traceback = dup_trunc(tb, len, MAX_TRACEBACK_BYTES);
        }
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_setfield(L, LUA_REGISTRYINDEX, TB_KEY);
    }
    lua_settop(L, msgh - 1);
    if (r->status == LUNNEL_HOST_EMEMORY) lua_gc(L, LUA_GCCOLLECT, 0); /* recover */
}

/* math.random (the jitter of lunnel/sinks/retry.lua, scripts' own) starts from a kernel
 * seed in every state: two processes, or two workers, never draw the same delays. */
static void seed_math_random(lua_State *L)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20) ^ (uint64_t)(uintptr_t)L;
    lua_getglobal(L, "math");
    lua_getfield(L, -1, "randomseed");
    lua_pushnumber(L, (lua_Number)(v >> 11)); /* 53 bits: exact in a double */
    lua_call(L, 1, 0);
    lua_pop(L, 1);
}

int state_open(host_state *st, lunnel_host *h, int worker, size_t limit, char *err, size_t cap)
{
    memset(st, 0, sizeof *st);
    st->h = h;
    st->worker = worker;
    st->limit = limit;
    st->runner_ref = LUA_NOREF;
    lua_State *L = luaL_newstate();
    if (!L) {
        snprintf(err, cap, "cannot create a Lua state");
        return -1;
    }
    st->L = L;
    lua_Alloc orig = lua_getallocf(L, &st->orig_ud);
    st->orig_alloc = (void *)orig;
    st->used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
    lua_setallocf(L, limited_alloc, st);
    luaL_openlibs(L);
    seed_math_random(L);
    lua_pushlightuserdata(L, st);
    lua_setfield(L, LUA_REGISTRYINDEX, ST_KEY);

    char buf[8192];
    if (h->lua_dir[0])
        snprintf(buf, sizeof buf, "%s/?.lua;%s/?/init.lua;%s/?.lua", h->lua_dir, h->lua_dir,
                 h->script_dir);
    else
        snprintf(buf, sizeof buf, "%s/?.lua", h->script_dir);
    set_path(L, "path", buf);

    lua_pushlightuserdata(L, st);
    lua_pushcclosure(L, traceback_handler, 1);
    int msgh = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "lunnel.host");
    if (lua_pcall(L, 1, 1, msgh) != 0) {
        snprintf(err, cap, "cannot load the lunnel.host runner from %s: %s",
                 h->lua_dir[0] ? h->lua_dir : "package.path (set LUNNEL_LUA_DIR)",
                 lua_tostring(L, -1));
        return -1;
    }
    lua_pushvalue(L, -1);
    st->runner_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    /* runner.init{custom_json=, log=, worker=, script_path=} */
    lua_getfield(L, -1, "init");
    lua_createtable(L, 0, 4);
    if (h->custom_json) {
        lua_pushstring(L, h->custom_json);
        lua_setfield(L, -2, "custom_json");
    }
    lua_pushlightuserdata(L, st);
    lua_pushcclosure(L, lua_clog, 1);
    lua_setfield(L, -2, "log");
    lua_pushinteger(L, worker);
    lua_setfield(L, -2, "worker");
    lua_pushstring(L, h->script_path);
    lua_setfield(L, -2, "script_path");
    lua_pushstring(L, h->user_dirs);
    lua_setfield(L, -2, "user_dirs");
    if (lua_pcall(L, 1, 0, msgh) != 0) {
        snprintf(err, cap, "%s", lua_tostring(L, -1));
        return -1;
    }
    lua_settop(L, 0);
    return 0;
}

void state_close(host_state *st)
{
    if (st->L) lua_close(st->L);
    st->L = NULL;
}

/* runner.recorded -> v->mods (replacing them). -1 when out of memory. */
static int take_recorded(host_state *st, script_version *v)
{
    lua_State *L = st->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->runner_ref);
    lua_getfield(L, -1, "recorded");
    int n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
    script_module *mods = n ? calloc((size_t)n, sizeof *mods) : NULL;
    int got = 0, rc = 0;
    for (int i = 1; i <= n && mods; i++) {
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "name");
        lua_getfield(L, -2, "path");
        lua_getfield(L, -3, "source");
        size_t len = 0;
        const char *name = lua_tostring(L, -3), *path = lua_tostring(L, -2);
        const char *src = lua_tolstring(L, -1, &len);
        if (name && path && src) {
            script_module *m = &mods[got];
            m->name = strdup(name);
            m->path = strdup(path);
            m->source = malloc(len ? len : 1);
            if (m->source) memcpy(m->source, src, len);
            m->len = len;
            m->hash = lunnel_host_hash(src, len);
            got++;
            if (!m->name || !m->path || !m->source) rc = -1;
        }
        lua_pop(L, 4);
    }
    lua_pop(L, 2);
    if (n && !mods) rc = -1;
    script_version tmp = {.mods = v->mods, .n_mods = v->n_mods};
    v->mods = mods;
    v->n_mods = got;
    tmp.source = NULL;
    script_version_free_mods(&tmp);
    return rc;
}

int state_load(host_state *st, script_version *v, int install, int record, char *err, size_t cap)
{
    lua_State *L = st->L;
    int msgh = push_runner_fn(st, "load");
    lua_pushlstring(L, v->source, v->len);
    lua_pushfstring(L, "@%s", st->h->script_path);
    lua_pushinteger(L, v->gen);
    lua_pushboolean(L, install);
    /* mods: name -> {path=, source=} */
    lua_createtable(L, 0, v->n_mods);
    for (int i = 0; i < v->n_mods; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, v->mods[i].path);
        lua_setfield(L, -2, "path");
        lua_pushlstring(L, v->mods[i].source, v->mods[i].len);
        lua_setfield(L, -2, "source");
        lua_setfield(L, -2, v->mods[i].name);
    }
    call_result r = {0};
    protected_call(st, msgh, 5, &r);
    int rc = 0;
    if (r.status != LUNNEL_HOST_OK) {
        snprintf(err, cap, "%s", r.error ? r.error : "script does not load");
        rc = LUNNEL_HOST_ELOAD;
    } else if (record && take_recorded(st, v) != 0) {
        snprintf(err, cap, "out of memory recording the script's modules");
        rc = LUNNEL_HOST_ELOAD;
    }
    free(r.error);
    free(r.traceback);
    lua_gc(L, LUA_GCCOLLECT, 0);
    return rc;
}

void state_open_channel(host_state *st, lunnel_host_channel *ch, call_result *r)
{
    lua_State *L = st->L;
    int msgh = push_runner_fn(st, "open");
    lua_pushnumber(L, (lua_Number)ch->key);
    lua_createtable(L, 0, 5);
    const char *names[] = {"tunnel_id", "client_id", "channel_id", "trace_id"};
    const char *vals[] = {ch->tunnel_id, ch->client_id, ch->channel_id, ch->trace_id};
    for (int i = 0; i < 4; i++) {
        if (!vals[i]) continue;
        lua_pushstring(L, vals[i]);
        lua_setfield(L, -2, names[i]);
    }
    lua_pushboolean(L, ch->is_stream);
    lua_setfield(L, -2, "is_stream");
    protected_call(st, msgh, 2, r);
    r->committed = 0;
}

void state_process(host_state *st, lunnel_host_channel *ch, const lunnel_batch *b,
                   const char *next_token, const char *trace_id, call_result *r)
{
    lua_State *L = st->L;
    int msgh = push_runner_fn(st, "process");
    lua_pushnumber(L, (lua_Number)ch->key);
    lua_pushlightuserdata(L, (void *)b);
    if (next_token)
        lua_pushstring(L, next_token);
    else
        lua_pushnil(L);
    lua_pushinteger(L, (lua_Integer)b->count);
    r->records = b->count;
    /* stream records are in sequence order: the newest is normally the last one */
    int64_t newest = 0;
    for (uint32_t i = b->count; i > 0; i--) {
        if (b->records[i - 1].has_seq) {
            newest = b->records[i - 1].seq_timestamp;
            break;
        }
    }
    r->newest_ts_us = newest;
    if (trace_id)
        lua_pushstring(L, trace_id);
    else
        lua_pushnil(L);
    protected_call(st, msgh, 5, r);
}

/* shutdown(ctx) and tick(ctx): the result's `committed` is ctx:commit() called there. */
void state_shutdown_channel(host_state *st, lunnel_host_channel *ch, call_result *r)
{
    lua_State *L = st->L;
    int msgh = push_runner_fn(st, "shutdown");
    lua_pushnumber(L, (lua_Number)ch->key);
    protected_call(st, msgh, 1, r);
}

void state_tick_channel(host_state *st, lunnel_host_channel *ch, call_result *r)
{
    lua_State *L = st->L;
    int msgh = push_runner_fn(st, "tick");
    lua_pushnumber(L, (lua_Number)ch->key);
    protected_call(st, msgh, 1, r);
}
