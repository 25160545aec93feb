-- examples/aggregate.lua: per-key aggregation kept in ctx.state (survives hot reloads).
-- For every primary key (keyed by r:key(), exact for any key type) it tracks the number of
-- changes seen and the latest value of one numeric column; `total` is the sum of the latest
-- values over the keys that still exist. CustomValue: {"column": "amount"} (default "amount").
--   PUT     sets the key's value (absent column: 0)
--   UPDATE  changes it when the column is written, resets it to 0 when the column is deleted
--   DELETE  removes the key
-- The summary is logged at shutdown; ctx.state.totals[key] = {pk = {...}, count, value}.
local M = {}

local function column(ctx)
  return (ctx.custom and ctx.custom.column) or "amount"
end

function M.open(ctx)
  ctx.state.totals = ctx.state.totals or {}
  ctx.state.total = ctx.state.total or 0
  ctx.state.keys = ctx.state.keys or 0
end

function M.process(ctx, batch)
  local st, col = ctx.state, column(ctx)
  local totals = st.totals
  for _, r in batch:iter() do
    local key = r:key()
    local e = totals[key]
    if r.action == "DELETE" then
      if e then
        st.total = st.total - e.value
        st.keys = st.keys - 1
        totals[key] = nil
      end
    else
      if not e then
        local pk = {}
        for i = 1, #r.pk do
          local name, v = r:pk(i)
          pk[name] = v
        end
        e = { pk = pk, count = 0, value = 0 }
        totals[key] = e
        st.keys = st.keys + 1
      end
      e.count = e.count + 1
      local v = r:get(col)
      local new = e.value
      if type(v) == "number" then
        new = v
      elseif r.action == "PUT" then
        new = 0
      else
        for name, _, op in r:columns() do
          if name == col and op ~= "PUT" then new = 0 end
        end
      end
      st.total = st.total + (new - e.value)
      e.value = new
    end
  end
end

function M.shutdown(ctx)
  ctx.log.info("aggregate: summary", { keys = ctx.state.keys, total = ctx.state.total })
end

return M
