-- lunnel.sinks.module: finds and loads the C module of a destination sink
-- (lunnel_sink_<name>.so: postgres, mysql, kafka, redis), the only code that links that
-- destination's client library. Loaded on the first require of the sink, so lunnel itself and
-- scripts that use no such sink need none of these libraries. A missing client library gives
-- one line naming the Debian package that provides it.
--
-- Search order: $LUNNEL_SINK_DIR, <source tree>/build/lib (a build tree), <prefix>/lib/lunnel
-- and <prefix>/lib/<multiarch>/lunnel next to an installed share/lua/5.1/lunnel/.
local ffi = require("ffi")

local M = {}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function candidates(file)
  local out = {}
  local env = os.getenv("LUNNEL_SINK_DIR")
  if env and env ~= "" then out[#out + 1] = env .. "/" .. file end
  local src = debug.getinfo(1, "S").source
  if src:sub(1, 1) == "@" then
    local path = src:sub(2)
    local root = path:match("^(.*)/lua/lunnel/sinks/[^/]*$")
    if not root and path:match("^lua/lunnel/sinks/[^/]*$") then root = "." end
    if root then out[#out + 1] = root .. "/build/lib/" .. file end
    local prefix = path:match("^(.*)/share/lua/5%.1/lunnel/sinks/[^/]*$")
    if prefix then
      out[#out + 1] = prefix .. "/lib/lunnel/" .. file
      for _, arch in ipairs({ "x86_64-linux-gnu", "aarch64-linux-gnu" }) do
        out[#out + 1] = prefix .. "/lib/" .. arch .. "/lunnel/" .. file
      end
    end
  end
  return out
end

local loaded = {}

-- Loads lunnel_sink_<name>.so after declaring its API (cdef, guarded by probe, a type name).
-- spec = { name, cdef, probe, library (the soname's stem, e.g. "libpq"), runtime_package,
-- dev_package }. Raises one line on failure.
function M.load(spec)
  if loaded[spec.name] then return loaded[spec.name] end
  if not pcall(ffi.typeof, spec.probe) then ffi.cdef(spec.cdef) end
  local file = "lunnel_sink_" .. spec.name .. ".so"
  local tried = {}
  for _, path in ipairs(candidates(file)) do
    if exists(path) then
      local ok, lib = pcall(ffi.load, path)
      if ok then
        loaded[spec.name] = lib
        return lib
      end
      local msg = tostring(lib)
      if msg:find(spec.library, 1, true) then
        error(("lunnel.sinks.%s: %s is not installed (%s): install the Debian package %s")
              :format(spec.name, spec.library, msg:match("([^:]+%.so[^:]*)") or spec.library,
                      spec.runtime_package), 0)
      end
      error(("lunnel.sinks.%s: cannot load %s: %s"):format(spec.name, path, msg), 0)
    end
    tried[#tried + 1] = path
  end
  error(("lunnel.sinks.%s: %s not found (it is built when the Debian package %s is installed; "
         .. "set LUNNEL_SINK_DIR); tried %s"):format(spec.name, file, spec.dev_package,
                                                    table.concat(tried, ", ")), 0)
end

-- The DSN as it may appear in a message: passwords (URI user:password@, password=...) hidden.
-- Splits the part of a URL after "scheme://" at its last '@': returns the host part and the
-- userinfo's two halves ("a:b" -> "a", "b"; a lone "a" -> nil, nil, "a": the caller decides
-- whether a lone name is a user (MySQL) or a password (Redis)).
function M.split_userinfo(rest)
  local auth, hostpart = rest:match("^(.*)@([^@]*)$")
  if not auth then return rest end
  local user, password = auth:match("^([^:]*):(.*)$")
  if not user then return hostpart, nil, nil, auth end
  return hostpart, user, password
end

function M.redact(dsn)
  if type(dsn) ~= "string" then return tostring(dsn) end
  local s = dsn:gsub("^(%a[%w+.-]*://[^:/@]*):[^@]*@", "%1:***@")
  s = s:gsub("([Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd]%s*=%s*)'[^']*'", "%1***")
  s = s:gsub("([Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd]%s*=%s*)[^%s&]*", "%1***")
  return s
end

return M
