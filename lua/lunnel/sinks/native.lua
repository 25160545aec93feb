-- lunnel.sinks.native: the one ffi.cdef of runtime/include/lunnel/sink_support.h (the C half
-- of the sinks: blocking libcurl POST, data API signing, BatchWriteRow encoding) plus the few
-- libc calls the file sink needs. Loaded once per lua_State (package.loaded caches it; the
-- cdef is guarded so a fresh require after a hot reload or a busted module reset is harmless).
local ffi = require("ffi")
local record = require("lunnel.record") -- declares lunnel_record and finds liblunnel

local function cdef_once(probe, text)
  if not pcall(ffi.typeof, probe) then ffi.cdef(text) end
end

cdef_once("struct lunnel_sink_http", [[
struct lunnel_sink_http;
struct lunnel_sink_bwr;
typedef struct lunnel_sink_http lunnel_sink_http;
typedef struct lunnel_sink_bwr lunnel_sink_bwr;
const char *lunnel_sink_strerror(int code);
lunnel_sink_http *lunnel_sink_http_new(void);
void lunnel_sink_http_free(lunnel_sink_http *h);
int lunnel_sink_http_post(lunnel_sink_http *h, const char *url, const char *headers,
                          const void *body, size_t len, long timeout_ms, const char *ca_file,
                          long *status_out);
const uint8_t *lunnel_sink_http_body(const lunnel_sink_http *h, size_t *len_out);
const char *lunnel_sink_http_request_id(const lunnel_sink_http *h);
const char *lunnel_sink_http_error(const lunnel_sink_http *h);
int lunnel_sink_ots_headers(const char *path, const char *instance, const char *access_key_id,
                            const char *access_key_secret, const char *sts_token,
                            const void *body, size_t len, char *out, size_t cap);
lunnel_sink_bwr *lunnel_sink_bwr_new(const char *table);
void lunnel_sink_bwr_free(lunnel_sink_bwr *b);
void lunnel_sink_bwr_clear(lunnel_sink_bwr *b);
int lunnel_sink_bwr_add(lunnel_sink_bwr *b, const lunnel_record *r);
uint32_t lunnel_sink_bwr_count(const lunnel_sink_bwr *b);
size_t lunnel_sink_bwr_bytes(const lunnel_sink_bwr *b);
int lunnel_sink_bwr_encode(lunnel_sink_bwr *b, const uint8_t **body_out, size_t *len_out);
int lunnel_sink_bwr_check_response(lunnel_sink_bwr *b, const uint8_t *body, size_t len,
                                   int *fatal_out);
void lunnel_sink_bwr_keep_failed(lunnel_sink_bwr *b);
const char *lunnel_sink_bwr_message(const lunnel_sink_bwr *b);
int lunnel_sink_ots_error(const uint8_t *body, size_t len, char *out, size_t cap);
]])

-- libc for lunnel.sinks.jsonl (file descriptors: O_APPEND writes, fsync, rotation). Each is
-- declared on its own so a declaration made elsewhere first does not stop the others.
local libc = {
  { "open", "int open(const char *path, int flags, int mode);" },
  { "close", "int close(int fd);" },
  { "write", "intptr_t write(int fd, const void *buf, size_t n);" },
  { "fsync", "int fsync(int fd);" },
  { "lseek", "int64_t lseek(int fd, int64_t off, int whence);" },
  { "rename", "int rename(const char *from, const char *to);" },
  { "strerror", "char *strerror(int errnum);" },
}
for _, d in ipairs(libc) do
  if not pcall(function() return ffi.C[d[1]] end) then pcall(ffi.cdef, d[2]) end
end
cdef_once("struct lunnel_sink_timespec", [[
struct lunnel_sink_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct lunnel_sink_timespec *ts);
int nanosleep(const struct lunnel_sink_timespec *req, struct lunnel_sink_timespec *rem);
]])

local M = { C = record.C, libc = ffi.C }

-- O_* flags of Linux (every architecture lunnel builds on: x86_64, aarch64).
M.O_WRONLY, M.O_CREAT, M.O_APPEND, M.O_CLOEXEC = 1, 64, 1024, 524288

function M.errstr(e)
  return ffi.string(ffi.C.strerror(e or ffi.errno()))
end

local ts = ffi.new("struct lunnel_sink_timespec")
-- Seconds since an arbitrary point (CLOCK_MONOTONIC), for intervals and backoff.
function M.now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- Blocks the worker thread (backoff between retries; never called on the loop thread).
function M.sleep(s)
  if s <= 0 then return end
  local req = ffi.new("struct lunnel_sink_timespec")
  req.tv_sec = math.floor(s)
  req.tv_nsec = math.floor((s - math.floor(s)) * 1e9)
  ffi.C.nanosleep(req, nil)
end

-- The raw record pointer of a live record view (raises the record module's stale error).
function M.record_ptr(r)
  if not record.is_record(r) then error("expected a lunnel record view, got " .. type(r), 3) end
  r:key() -- validates the view's generation (stale views raise here)
  return r.r
end

return M
