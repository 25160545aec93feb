-- spec of examples/buffered_jsonl.lua: records are written only in tick/shutdown, each flush
-- commits, a write failure raises before the commit.
local T = require("lunnel.testing")

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. d) == 0)
  return d
end

local function lines(path)
  local f = io.open(path, "rb")
  if not f then return {} end
  local out = {}
  for l in f:lines() do out[#out + 1] = l end
  f:close()
  return out
end

describe("buffered_jsonl", function()
  it("writes and commits in tick, not in process", function()
    local dir = tmpdir()
    local s = T.load("examples/buffered_jsonl.lua", { custom = { dir = dir }, channel_id = "c1" })
    s:process{ T.put{ pk = {{"id", 1}}, cols = { v = "a" } }, T.put{ pk = {{"id", 2}}, cols = { v = "b" } } }
    assert.same({}, lines(dir .. "/c1.jsonl"))
    assert.equal(0, s.ctx.commits)
    assert.is_true(s:tick())
    local got = lines(dir .. "/c1.jsonl")
    assert.equal(2, #got)
    assert.truthy(got[1]:find('"id":1', 1, true))
    -- a quiet tick still commits (nothing is pending): harmless and keeps checkpoints moving
    assert.is_true(s:tick())
    s:process{ T.delete{ pk = {{"id", 3}} } }
    assert.is_true(s:shutdown())
    assert.equal(3, #lines(dir .. "/c1.jsonl"))
    os.execute("rm -rf " .. dir)
  end)

  it("does not commit when the write fails", function()
    local dir = tmpdir()
    local s = T.load("examples/buffered_jsonl.lua", { custom = { dir = dir }, channel_id = "c2" })
    s:process{ T.put{ pk = {{"id", 1}}, cols = { v = "a" } } }
    os.execute("rm -rf " .. dir) -- the file's directory is gone: its next open fails
    s.ctx.state.out:close()
    local commits = s.ctx.commits
    assert.has_error(function() s:tick() end)
    assert.equal(commits, s.ctx.commits)
  end)
end)
