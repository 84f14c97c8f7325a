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

-- viz.zero_timeline(tls): FSDP's stage-3 timeline, tls[r] = z.timeline of rank r (zero_fsdp.lua): one
-- row per rank of boxes in event order (gather, forward, backward, free, labelled with the module),
-- and under them the comm_buffer bytes live after each event (the gathered parameters), measured.
local KIND = {gather = {"collective", "all-gather", "g"}, forward = {"forward", "forward", "F"},
  backward = {"backward", "recompute + backward + reduce-scatter", "B"}, free = {"mark", "free", "x"}}
function M.timeline(tls, o)
  o = o or {}
  local c = chalk.viz.canvas()
  local L, SW, BH, CH, rowh = 70, 46, 16, 24, 60
  local most = 0
  for _, tl in ipairs(tls) do for _, e in ipairs(tl) do most = math.max(most, e.comm) end end
  local top = 40 + #tls * rowh
  for r, tl in ipairs(tls) do
    local y0 = top - r * rowh
    c:text(L - 8, y0 + CH + 4, "rank " .. r, 9, "right", "text", true)
    for i, e in ipairs(tl) do
      local x, k = L + (i - 1) * SW, KIND[e.kind]
      c:rect(x + 1, y0 + CH + 4, SW - 2, BH, k[1] .. ":tint", k[1] .. ":ink", e.kind)
      c:text(x + SW / 2, y0 + CH + 8, k[3] .. e.module, 8, "center", "text", true)
      local h = e.comm / most * CH
      if h > 0 then c:rect(x + 1, y0, SW - 2, h, "comm_buffer", "comm_buffer:ink", "comm_buffer") end
    end
  end
  local W = SW * #tls[1]
  c:text(L + W / 2, 14, ("boxes: events in order; bars: comm_buffer bytes live after each (largest %.1f KiB)")
    :format(most / 1024), 8, "center", "text")
  c:text(L + W / 2, top + 24, o.title or "FSDP (stage 3): gather, compute and free per module", 12,
    "center", "title", true)
  c:legend(L, top + 6, {"collective", "forward", "backward", "mark", "comm_buffer"},
    {"g: all-gather", "F: forward", "B: recompute, backward, reduce-scatter", "x: free", "gathered bytes"})
  return c:render({file = o.file or "zero_timeline.png", format = o.format}, "zero_timeline.png")
end

return M
