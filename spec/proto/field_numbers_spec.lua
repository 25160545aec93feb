-- Every field number and enum value declared in proto/*.proto must equal the official schema's.
-- The official numbers are a table taken from the official Go SDK's sources
-- (tests/fixtures/official_proto_fields.tsv, with its source and commit on each line), so a
-- future misreading of the schema, like ScheduleRequest.channels once declared as field 2,
-- fails here rather than on the real service.

local FIXTURE = "tests/fixtures/official_proto_fields.tsv"
local PROTOS = { tunnel = "proto/tunnel_service_api.proto", table = "proto/table_store.proto" }

-- Declarations of ours that the official sources we could read do not have, each with why it
-- is kept. Anything else missing from the official table fails the check.
local NOT_IN_OFFICIAL_GO = {
  ["tunnel Record.origin_record"] =
    "old values of a change; the Java SDK's tunnel_service_api.proto has origin_record = 3",
  ["tunnel ReadRecordsResponse.may_more_record"] =
    "the Java SDK's tunnel_service_api.proto has may_more_record = 3",
  ["tunnel GetRpoResponse.tunnel_id"] =
    "only read, never sent; newer Go SDKs return GetRpoResponse.TunnelId, whose number the stored sources do not show",
}

-- Official names are matched loosely: the Go source spells StreamTunnelConfig's fields
-- startOffset/endOffset where ours are start_offset/end_offset (same numbers, same wire bytes).
local function norm(name) return (name:gsub("_", ""):lower()) end

local function read_official()
  local f = assert(io.open(FIXTURE, "r"))
  local t = {}
  for line in f:lines() do
    if line ~= "" and line:sub(1, 1) ~= "#" then
      local api, kind, container, name, number, label = line:match(
        "^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t")
      assert(api, "malformed fixture line: " .. line)
      t[api .. " " .. kind .. " " .. container .. "." .. norm(name)] =
        { number = tonumber(number), label = label }
    end
  end
  f:close()
  return t
end

-- Our declarations: { api, kind, container, name, number, label } per field / enum value.
-- The files are flat (no nested messages), one declaration per line.
local function parse_proto(api, text)
  local decls, container, kind = {}, nil, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("//.*$", "")
    local k, name = line:match("^%s*(message)%s+([%w_]+)%s*{")
    if not k then k, name = line:match("^%s*(enum)%s+([%w_]+)%s*{") end
    if k then
      container, kind = name, (k == "message") and "field" or "enum"
    elseif line:match("^%s*}") then
      container = nil
    elseif container then
      if kind == "field" then
        local label, fname, num = line:match("^%s*(%a+)%s+[%w_.]+%s+([%w_]+)%s*=%s*(%d+)")
        if label then
          decls[#decls + 1] = { api = api, kind = "field", container = container, name = fname,
                                number = tonumber(num), label = label:sub(1, 3) }
        end
      else
        local vname, num = line:match("^%s*([%w_]+)%s*=%s*(%-?%d+)")
        if vname then
          decls[#decls + 1] = { api = api, kind = "enum", container = container, name = vname,
                                number = tonumber(num) }
        end
      end
    end
  end
  return decls
end

-- The list of problems of `decls` against `official` (empty when everything matches).
local function check(decls, official)
  local problems = {}
  for _, d in ipairs(decls) do
    local id = d.api .. " " .. d.container .. "." .. d.name
    local o = official[d.api .. " " .. d.kind .. " " .. d.container .. "." .. norm(d.name)]
    if not o then
      if not NOT_IN_OFFICIAL_GO[id] then
        problems[#problems + 1] = id .. " = " .. d.number .. " is not in the official schema"
      end
    elseif o.number ~= d.number then
      problems[#problems + 1] = ("%s: ours %d, official %d"):format(id, d.number, o.number)
    elseif d.kind == "field" and (o.label == "rep") ~= (d.label == "rep") then
      problems[#problems + 1] = ("%s: ours %s, official %s (repeated differs)"):format(
        id, d.label, o.label)
    end
  end
  return problems
end

local slurp = require("support.files").read

describe("proto field numbers", function()
  local official = read_official()

  it("the official table is substantial", function()
    local n = 0
    for _ in pairs(official) do n = n + 1 end
    assert.is_true(n > 200, "only " .. n .. " official entries")
    assert.same(3, official["tunnel field ScheduleRequest.channels"].number)
    assert.same("rep", official["tunnel field ScheduleRequest.channels"].label)
  end)

  for api, path in pairs(PROTOS) do
    it(path .. " matches the official numbers", function()
      local decls = parse_proto(api, slurp(path))
      assert.is_true(#decls > 50, "parsed only " .. #decls .. " declarations of " .. path)
      assert.same({}, check(decls, official))
    end)
  end

  it("every declared exception is still declared (no stale allowances)", function()
    local declared = {}
    for api, path in pairs(PROTOS) do
      for _, d in ipairs(parse_proto(api, slurp(path))) do
        declared[d.api .. " " .. d.container .. "." .. d.name] = true
      end
    end
    for id in pairs(NOT_IN_OFFICIAL_GO) do assert.is_true(declared[id], id) end
  end)

  it("catches a misread number, a wrong repetition and an invented field", function()
    local bad = [[
message ScheduleRequest {
  required string tunnel_id = 1;
  repeated Channel channels = 2;
}
message ConnectRequest {
  repeated string tunnel_id = 1;
  optional int64 invented = 9;
}
]]
    local problems = check(parse_proto("tunnel", bad), official)
    assert.same(3, #problems)
    assert.matches("ScheduleRequest.channels: ours 2, official 3", problems[1], 1, true)
    assert.matches("ConnectRequest.tunnel_id: ours rep", problems[2], 1, true)
    assert.matches("ConnectRequest.invented = 9 is not in the official schema", problems[3], 1, true)
  end)
end)
