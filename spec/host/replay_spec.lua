-- replay_spec.lua: `lunnel replay` end to end: recorded ReadRecordsResponse bodies (made by
-- bench/host/gen_corpus.py) through the real Lua host: ctx fields and custom value, order,
-- counts and the summary line; a failing script gives exit status 1 with the error and its
-- Lua traceback; usage errors give 2. Needs the lunnel binary ($LUNNEL_BIN or
-- $LUNNEL_BUILD_DIR/lunnel).
local build = os.getenv("LUNNEL_BUILD_DIR") or "build"
local bin = os.getenv("LUNNEL_BIN") or (build .. "/lunnel")
local src = os.getenv("LUNNEL_SOURCE_DIR") or "."

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, out
end

local slurp = require("support.files").read

describe("lunnel replay", function()
  local dir

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir) == 0)
    local rc, out = sh(("python3 %s/bench/host/gen_corpus.py %s/corpus 3 50"):format(src, dir))
    assert.equals(0, rc, out)
  end)

  teardown(function()
    os.execute("rm -rf " .. dir)
  end)

  local function write(name, text)
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write(text)
    f:close()
    return dir .. "/" .. name
  end

  it("feeds every batch in order to each channel, with ctx and custom", function()
    local script = write("ok.lua", [[
      local M = {}
      function M.open(ctx) ctx.state.tokens = {} ctx.state.records = 0 end
      function M.process(ctx, batch)
        table.insert(ctx.state.tokens, ctx.next_token)
        for _, r in batch:iter() do
          assert(r.action == "PUT")
          assert(r:get("n0") == r.pk.id * 10)
          ctx.state.records = ctx.state.records + 1
        end
      end
      function M.shutdown(ctx)
        local f = assert(io.open(ctx.custom.out .. "-" .. ctx.channel_id, "w"))
        f:write(ctx.tunnel_id, " ", ctx.state.records, " ", table.concat(ctx.state.tokens, ","))
        f:close()
      end
      return M
    ]])
    local cmd = ("%s replay --log-level warn --script %s --custom '{\"out\":\"%s/out\"}' "
                 .. "--workers 2 --channels 2 --repeat 2 %s/corpus/batch-000.bin "
                 .. "%s/corpus/batch-001.bin %s/corpus/batch-002.bin")
                :format(bin, script, dir, dir, dir, dir)
    local rc, out = sh(cmd)
    assert.equals(0, rc, out)
    assert.matches("replay: batches=12 records=600 failed=0", out)
    for _, ch in ipairs({ "replay-0", "replay-1" }) do
      assert.equals("replay 300 token-1,token-2,token-3,token-1,token-2,token-3",
                    slurp(dir .. "/out-" .. ch))
    end
  end)

  it("reports a failing batch with its traceback and exits 1", function()
    local script = write("bad.lua", [[
      local function check(ctx)
        if ctx.next_token == "token-2" then error("cannot handle " .. ctx.next_token) end
      end
      return {process = function(ctx, batch) check(ctx) end}
    ]])
    local rc, out = sh(("%s replay --script %s %s/corpus/batch-00*.bin"):format(bin, script, dir))
    assert.equals(1, rc, out)
    assert.matches("process failed %(channel replay%-0, file [^)]*batch%-001%.bin%)", out)
    assert.matches("bad%.lua:2: cannot handle token%-2", out)
    assert.matches("stack traceback", out)
    assert.matches("in %a+ 'check'", out)
    assert.matches("replay: batches=3 records=150 failed=1", out)
  end)

  it("replays bare PlainBuffer files, inferring actions", function()
    local script = write("pb.lua", [[
      return {process = function(ctx, batch)
        for _, r in batch:iter() do print("REC " .. r.action .. " " .. r:key()) end
      end}
    ]])
    local pb = src .. "/fuzz/corpus/plainbuffer/"
    local rc, out = sh(("%s replay --log-level warn --script %s %sput_all_types.bin "
                        .. "%sdelete_row.bin %supdate_ops.bin"):format(bin, script, pb, pb, pb))
    assert.equals(0, rc, out)
    local actions = {}
    for a in out:gmatch("REC (%u+) ") do actions[#actions + 1] = a end
    assert.same({ "PUT", "DELETE", "UPDATE" }, actions)
    assert.matches("replay: batches=3 records=3 failed=0", out)
    -- the same bytes are not a ReadRecordsResponse
    rc, out = sh(("%s replay --format response --script %s %sput_all_types.bin"):format(bin, script, pb))
    assert.equals(2, rc, out)
    assert.matches("is not a ReadRecordsResponse", out)
  end)

  it("exits 2 on usage errors and scripts that do not load", function()
    local rc, out = sh(bin .. " replay " .. dir .. "/corpus/batch-000.bin")
    assert.equals(2, rc, out)
    assert.matches("%-%-script", out)
    local broken = write("broken.lua", "return {\n")
    rc, out = sh(("%s replay --script %s %s/corpus/batch-000.bin"):format(bin, broken, dir))
    assert.equals(2, rc, out)
    assert.matches("broken%.lua:2:", out)
  end)

  it("replays dead-letter lines and r:tojson() lines, one batch per failed batch", function()
    local T = require("lunnel.testing")
    local r1 = T.put{ pk = {{"id", 1}}, cols = {{"bin", T.binary("\0\1")}, {"d", T.double(2)}} }
    local r2 = T.update{ pk = {{"id", 2}}, cols = {{"x", nil, op = "DELETE_ONE_VERSION", ts = 5}} }
    local r3 = T.delete{ pk = {{"id", 3}} }
    local function dl(token, i, n, r)
      return ('{"time":"t","channel_id":"c","batch_token":"%s","index":%d,"count":%d,"error":"e","record":%s}')
             :format(token, i, n, r:tojson())
    end
    local file = write("dead.jsonl", table.concat({
      dl("tokA", 0, 2, r1), dl("tokA", 1, 2, r2), dl("tokB", 0, 1, r3),
      '{"time":"t","channel_id":"c","batch_token":"tokC","index":0,"count":1,"error":"e",'
        .. '"record_base64":"AAEC","decode_error":"bad bytes"}',
    }, "\n") .. "\n")
    local script = write("echo.lua", [[
      local M = {}
      function M.process(ctx, batch)
        for _, r in batch:iter() do print("REC " .. ctx.next_token .. " " .. r:tojson()) end
      end
      return M
    ]])
    local rc, out = sh(("%s replay --log-level warn --script %s %s"):format(bin, script, file))
    -- the raw line does not decode (as when it was dead-lettered): that batch fails
    assert.equals(1, rc, out)
    assert.matches("replay: batches=3 records=3 failed=1", out, 1, true)
    assert.matches("bad batch bytes", out, 1, true)
    assert.truthy(out:find("REC tokA " .. r1:tojson(), 1, true))
    assert.truthy(out:find("REC tokA " .. r2:tojson(), 1, true))
    assert.truthy(out:find("REC tokB " .. r3:tojson(), 1, true))
    -- plain r:tojson() lines (a lunnel.sinks.jsonl file) replay too
    local plain = write("plain.jsonl", r1:tojson() .. "\n" .. r3:tojson() .. "\n")
    rc, out = sh(("%s replay --log-level warn --script %s %s"):format(bin, script, plain))
    assert.equals(0, rc, out)
    assert.matches("replay: batches=1 records=2 failed=0", out, 1, true)
  end)
end)
