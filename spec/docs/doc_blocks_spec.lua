-- doc_blocks_spec.lua: every Lua block of README.md, docs/scripts.md and docs/migrating.md
-- runs here. A block holding describe() is a busted spec and runs as one; a block returning
-- handlers is a script: it is loaded like the host does and fed records of every action,
-- then tick/reload/shutdown; anything else must at least compile. Shell blocks (```sh) run in
-- tests/e2e/doc_shell.sh; ```text blocks are synopses and output, not run.
local T = require("lunnel.testing")

local DOCS = { "README.md", "docs/scripts.md", "docs/migrating.md" }

local function blocks(path)
  local f = io.open(path, "rb")
  if not f then return {} end
  local out, cur, lang, start = {}, nil, nil, 0
  local n = 0
  for line in f:lines() do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        out[#out + 1] = { lang = lang, text = table.concat(cur, "\n") .. "\n", line = start }
        cur = nil
      else
        cur[#cur + 1] = line
      end
    else
      local l = line:match("^```(%S*)%s*$")
      if l then cur, lang, start = {}, l, n end
    end
  end
  f:close()
  return out
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  os.execute("mkdir -p " .. d)
  return d
end

local function feed(mod, path)
  local dir = tmpdir()
  local file = dir .. "/script.lua"
  local f = assert(io.open(file, "w"))
  f:write(mod)
  f:close()
  local s = T.load(file, { custom = { dir = dir, column = "amount", url = "http://127.0.0.1:9/" },
                           channel_id = "doc" })
  s:process{ T.put{ pk = {{"id", 1}}, cols = { amount = 5, name = "x" } },
             T.update{ pk = {{"id", 1}}, cols = { amount = 6 }, delete = {"name"} },
             T.delete{ pk = {{"id", 2}} } }
  s:tick()
  if s.module.reload then s:reload(file) end
  s:process{ T.put{ pk = {{"id", 3}}, cols = { amount = 1 } } }
  s:shutdown()
  os.execute("rm -rf " .. dir)
  return path
end

for _, doc in ipairs(DOCS) do
  for _, b in ipairs(blocks(doc)) do
    local where = doc .. ":" .. b.line
    assert(b.lang == "lua" or b.lang == "sh" or b.lang == "text",
           where .. ": a code block needs a language: lua, sh (run) or text (not run), got '"
           .. b.lang .. "'")
    if b.lang == "lua" then
      local chunk, err = loadstring(b.text, "@" .. where)
      if chunk then setfenv(chunk, getfenv(1)) end -- busted's describe/it/assert
      if b.text:find("describe%(") then
        assert(chunk, err)
        chunk() -- registers its describe blocks here
      else
        describe("doc block " .. where, function()
          it("compiles and runs", function()
            assert(chunk, err)
            if b.text:find("\nreturn M%s*$") then
              feed(b.text, where)
            end
          end)
        end)
      end
    end
  end
end
