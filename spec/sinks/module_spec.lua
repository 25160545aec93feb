-- Specs of lunnel.sinks.module (finding and loading a destination sink's C module) and of the
-- offline parts of the destination sinks: a missing client library is one line naming the
-- Debian package, secrets never appear in messages, DSN/URL parsing. The sinks against real
-- servers: tests/node/sink_{postgres,mysql,redis,kafka}.test.mjs.
local module = require("lunnel.sinks.module")

-- The compiler runs without the sanitizer runtime a sanitizer build preloads into busted.
local function sh(cmd)
  local ok = os.execute("env -u LD_PRELOAD " .. cmd .. " >/dev/null 2>&1")
  return ok == true or ok == 0
end

describe("lunnel.sinks.module", function()
  it("names the Debian package when the client library is missing", function()
    -- a module whose client library (libfakeclient.so) is gone by the time it is loaded
    local dir = os.tmpname()
    os.remove(dir)
    assert.is_true(sh("mkdir -p " .. dir))
    finally(function() sh("rm -rf " .. dir) end)
    local function write(path, text)
      local f = assert(io.open(path, "w"))
      f:write(text)
      f:close()
    end
    write(dir .. "/c.c", "int fake_client(void){return 1;}\n")
    write(dir .. "/m.c", "int fake_client(void); int lunnel_fake(void){return fake_client();}\n")
    assert.is_true(sh(("cc -shared -fPIC -o %s/libfakeclient.so %s/c.c"):format(dir, dir)))
    assert.is_true(sh(("cc -shared -fPIC -o %s/lunnel_sink_fake.so %s/m.c -L%s -lfakeclient"):format(dir, dir, dir)))
    assert.is_true(sh("rm " .. dir .. "/libfakeclient.so"))
    local old = os.getenv("LUNNEL_SINK_DIR")
    local ffi = require("ffi")
    -- point the search at dir through the environment the loader reads
    pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
    ffi.C.setenv("LUNNEL_SINK_DIR", dir, 1)
    finally(function() ffi.C.setenv("LUNNEL_SINK_DIR", old or "", 1) end)
    local ok, err = pcall(module.load, {
      name = "fake", library = "libfakeclient", runtime_package = "libfakeclient1",
      dev_package = "libfakeclient-dev", probe = "int", cdef = "",
    })
    assert.is_false(ok)
    assert.matches("^lunnel%.sinks%.fake: libfakeclient is not installed %(.*libfakeclient%.so.*%): install the Debian package libfakeclient1$", err)
    assert.is_nil(err:find("\n"))
  end)

  it("says where it looked when the module itself is missing", function()
    local ok, err = pcall(module.load, {
      name = "nosuch", library = "libnosuch", runtime_package = "libnosuch1",
      dev_package = "libnosuch-dev", probe = "int", cdef = "",
    })
    assert.is_false(ok)
    assert.matches("lunnel_sink_nosuch%.so not found %(it is built when the Debian package libnosuch%-dev is installed", err)
  end)

  it("redacts passwords of URIs and key=value DSNs", function()
    assert.equal("postgresql://u:***@h:5432/db", module.redact("postgresql://u:s3cret@h:5432/db"))
    assert.equal("redis://:***@127.0.0.1:6379/0", module.redact("redis://:s3cret@127.0.0.1:6379/0"))
    assert.equal("host=h password=*** dbname=d", module.redact("host=h password=s3cret dbname=d"))
    assert.equal("host=h password=*** dbname=d", module.redact("host=h password='s3 cret' dbname=d"))
    assert.equal("postgresql://h/db?user=u&password=***", module.redact("postgresql://h/db?user=u&password=s3cret"))
    assert.equal("mysql://u@h/db", module.redact("mysql://u@h/db"))
  end)
end)

describe("DSN and URL parsing", function()
  it("reads mysql:// DSNs", function()
    local mysql = require("lunnel.sinks.mysql")
    assert.same({ host = "h", port = 3307, user = "u", password = "p@ss", db = "d" }, mysql.parse_dsn("mysql://u:p%40ss@h:3307/d"))
    assert.same({ host = "h", port = 3306, user = "u" }, mysql.parse_dsn("mysql://u@h"))
    assert.is_nil((mysql.parse_dsn("postgres://h")))
  end)

  it("reads redis:// URLs", function()
    local redis = require("lunnel.sinks.redis")
    assert.same({ "127.0.0.1", 6380, "", "pw", 2 }, { redis.parse_url("redis://:pw@127.0.0.1:6380/2") })
    assert.same({ "h", 6379, nil, nil, 0 }, { redis.parse_url("redis://h") })
    assert.is_nil((redis.parse_url("http://h")))
  end)

  it("rejects missing options with a clear error", function()
    local postgres = require("lunnel.sinks.postgres")
    assert.has_error(function() postgres.new{ table = "t" } end, "lunnel.sinks.postgres.new: option dsn is required")
    assert.has_error(function() postgres.new{ dsn = "postgresql://h/db" } end, "lunnel.sinks.postgres.new: option table is required")
    local kafka = require("lunnel.sinks.kafka")
    assert.has_error(function() kafka.new{ brokers = "h:9092" } end, "lunnel.sinks.kafka.new: option topic is required")
  end)

  it("keeps the password out of a refused connection's message", function()
    local postgres = require("lunnel.sinks.postgres")
    local T = require("lunnel.testing")
    -- port 1 on loopback: nothing listens, the connection is refused at once
    local s = postgres.new{ dsn = "postgresql://u:s3cret@127.0.0.1:1/db", table = "t", connect_timeout = 2 }
    local ok, err = pcall(s.write_batch, s, T.batch{ T.put{ pk = {{ "id", 1 }}, cols = { a = 1 } } })
    assert.is_false(ok)
    assert.matches("^lunnel%.sinks%.postgres: t: cannot connect %(postgresql://u:%*%*%*@127%.0%.0%.1:1/db%): ", err)
    assert.is_nil(err:find("s3cret", 1, true))
  end)
end)
