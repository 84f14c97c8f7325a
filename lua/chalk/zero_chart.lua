-- zero_chart.lua: viz.zero(rows), the ZeRO paper's Figure 1 measured: per-rank stacked memory bars.
--
-- rows[i] = {stage = s, ranks = {{parameter=, gradient=, optimizer=, comm=, activation=}, ...}}: one row per stage,
-- one bar per rank, stacked by category (parameters, gradients, optimizer state, comm buffers, activations) in
-- the palette's meaning colours, the bytes written at the end of each bar.
local chalk = require "chalk"

local M = {}
local CATS = {{"parameter", "parameter"}, {"gradient", "backward"}, {"optimizer", "optimizer"}, {"comm", "comm_buffer"}, {"activation", "forward"}}

function M.draw(rows, o)
  o = o or {}
  local c = chalk.viz.canvas()
  local L, BH, GAP, W = 120, 12, 16, 520
  local most = 0
  for _, r in ipairs(rows) do
    for _, m in ipairs(r.ranks) do
      local t = 0
      for _, k in ipairs(CATS) do t = t + (m[k[1]] or 0) end
      most = math.max(most, t)
    end
  end
  local n = #rows[1].ranks
  local rowh = n * (BH + 2) + GAP
  local top = 40 + #rows * rowh
  for i, r in ipairs(rows) do
    local y0 = top - i * rowh
    c:text(L - 60, y0 + (n * (BH + 2)) / 2 - 4, "stage " .. r.stage, 10, "right", "text", true)
    for k, m in ipairs(r.ranks) do
      local y, x, total = y0 + (n - k) * (BH + 2), L, 0
      c:text(L - 6, y + 2, "rank " .. k, 8, "right", "text")
      for _, cat in ipairs(CATS) do
        local v = m[cat[1]] or 0
        local w = v / most * W
        if w > 0 then c:rect(x, y, w, BH, cat[2], cat[2] .. ":ink", cat[1]) end
        x, total = x + w, total + v
      end
      c:text(x + 6, y + 2, ("%.1f KiB"):format(total / 1024), 8, "left", "text")
    end
  end
  c:text(L + W / 2, 14, "bytes per rank by category, measured by the allocator", 9, "center", "text")
  c:text(L + W / 2, top + 20, o.title or "ZeRO stages 0-3: memory per rank by category", 12, "center", "title", true)
  c:legend(L, top + 2, {"parameter", "backward", "optimizer", "comm_buffer", "forward"},
    {"16-bit parameters", "16-bit gradients", "f32 master, m, v", "comm_buffer", "activations"})
  return c:render({file = o.file or "zero.png", format = o.format}, "zero.png")
end

return M
