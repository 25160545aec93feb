-- support/files.lua: file helpers the specs share (on the path through .busted's lpath
-- "spec/?.lua": require("support.files")).
local M = {}

-- The whole content of path, as bytes; raises naming the path when it cannot be opened.
function M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

return M
