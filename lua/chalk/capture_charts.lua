-- capture_charts.lua: the pictures of captured graphs and their plans. The data (phases,
-- lifetimes, offsets) is shaped here; every mark, colour and font is drawn by viz's one chart
-- canvas (chalk.viz.canvas) with colours named from chalk.viz.colors:
--
--   g:gantt{file = "gantt.png"}     tensor lifetimes: one bar per arena buffer over node positions
--   g:arena{file = "arena.png"}     the packed arena: each buffer at its offset over its lifetime
--   chalk.capture_charts.curves({{name=, y=}, ...}, opts)   memory timelines side by side
--   chalk.autotune.heatmap(result, {file = "tiles.png"})    GFLOP/s of every tile configuration
--
-- Invariants: each *_dot function is a pure function of its inputs (tests read the text); every
-- picture function returns the path viz wrote; the phases are the palette's forward, backward,
-- recompute and optimizer colours, the same in every chalk picture, with a legend.
local chalk = require "chalk"
local chart = require "chalk.chart"

local M = {}

local PHASE_FILL = { forward = "forward", backward = "backward", recompute = "recompute", optimizer = "optimizer" }

local function human(b)
  local units = { "B", "KiB", "MiB", "GiB" }
  local k = 1
  while b >= 1024 and k < #units do b, k = b / 1024, k + 1 end
  return k == 1 and ("%d B"):format(b) or ("%.1f %s"):format(b, units[k])
end
M.human = human

-- viz's chart canvas, with the drawing calls of this file (colours are names of viz.colors)
local function canvas()
  local v, c = chalk.viz.canvas(), {}
  function c.rect(x, y, w, h, fill, border, tip) v:rect(x, y, w, h, fill, border, tip) end
  function c.text(x, y, s, size, anchor, color, bold) v:text(x, y, s, size, anchor, color, bold) end
  function c.legend(x, y, colors, labels) return v:legend(x, y, colors, labels) end
  function c:dot() return v:dot() end
  function c:render(opts, name) return v:render(opts, name) end
  return c
end

-- Phase of each node position: forward, backward, recompute or optimizer (after the last backward).
local function phases(g)
  local nodes = g:nodes()
  local first_back, last_back = nil, 0
  for i, n in ipairs(nodes) do
    if n.backward then
      first_back = first_back or i
      last_back = i
    end
  end
  local ph = {}
  for i, n in ipairs(nodes) do
    if n.label and n.label:find("^recompute") then ph[i] = "recompute"
    elseif first_back and i >= first_back and i <= last_back then ph[i] = "backward"
    elseif first_back and i > last_back then ph[i] = "optimizer"
    else ph[i] = "forward" end
  end
  return ph, nodes
end

local function legend(c, x, y)
  c.legend(x, y, { "forward", "backward", "recompute", "optimizer" },
    { "forward", "backward", "recomputed in backward", "optimizer step" })
end

-- ---- lifetimes (Gantt) and the packed arena ------------------------------------------------------

local function gantt_canvas(g, opts)
  local bufs = g:buffers()
  assert(#bufs > 0 or #g > 0, "gantt: plan the graph first (g:plan_memory())")
  local ph = phases(g)
  local npos = #g
  table.sort(bufs, function(a, b) return a.first < b.first or (a.first == b.first and a.offset < b.offset) end)
  local rows = #bufs
  local row_h = math.max(2.5, math.min(14, 620 / math.max(rows, 1)))
  local L, B, R, T = 150, 66, 20, 44
  local W = opts.width or 860
  local H = B + T + rows * row_h
  local c = canvas(W, H)
  local function px(p) return L + (p - 1) / math.max(npos, 1) * (W - L - R) end
  c.text(W / 2, H - 16, opts.title or "tensor lifetimes (one bar per arena buffer)", 13, "center", "title", true)
  local plan = opts.plan
  if plan then
    c.text(W / 2, H - 32, ("naive sum %s, planned peak %s, live lower bound %s"):format(human(plan.naive),
      human(plan.planned), human(plan.lower_bound)), 10, "center")
  end
  c.rect(L, B - 1, W - L - R, 1, "text")
  local step = math.max(1, math.floor(npos / 10 + 0.5))
  for p = 1, npos, step do
    c.rect(px(p), B - 4, 0.6, 4, "text")
    c.text(px(p), B - 12, tostring(p), 8, "center")
  end
  c.text((L + W - R) / 2, 30, "node position in the step (execution order)", 10, "center")
  for i, b in ipairs(bufs) do
    local y = B + (rows - i) * row_h
    local x0, x1 = px(b.first), px(b.last + 1)
    local fill = PHASE_FILL[ph[b.first] or "forward"]
    c.rect(x0, y + row_h * 0.1, math.max(x1 - x0, 1), row_h * 0.8, fill, b.values > 1 and "title" or nil,
      ("%s: %s, nodes %d..%d%s"):format(b.name, human(b.size), b.first, b.last,
        b.values > 1 and (", %d values in place"):format(b.values) or ""))
    if row_h >= 7 then c.text(L - 6, y + row_h / 2, ("%s %s"):format(b.name, human(b.size)), math.min(8, row_h), "right") end
  end
  legend(c, L, 4)
  return c
end

chart.export(M, "gantt", 1, gantt_canvas, "gantt.png")

local function arena_canvas(g, opts)
  local bufs = g:buffers()
  local ph = phases(g)
  local npos = #g
  local top = 0
  for _, b in ipairs(bufs) do top = math.max(top, b.offset + b.size) end
  local plan = opts.plan
  -- the axis fits the arena (the naive sum is in the subtitle): the packing fills the picture
  local ymax = math.max(top, plan and plan.planned or 0, 1) * 1.12
  if opts.ymax then ymax = opts.ymax end
  local L, B, R, T = 96, 84, 24, 64
  local W, H = opts.width or 960, opts.height or 520
  local c = canvas(W, H)
  local function px(p) return L + (p - 1) / math.max(npos, 1) * (W - L - R) end
  local function py(v) return B + v / ymax * (H - B - T) end
  c.text(W / 2, H - 20, opts.title or "the packed arena: each tensor at its offset while it is live", 16, "center",
    "title", true)
  if plan then
    c.text(W / 2, H - 42, ("arena %s (planned peak) vs naive sum %s; live lower bound %s"):format(human(plan.planned),
      human(plan.naive), human(plan.lower_bound)), 13, "center")
  end
  for k = 0, 4 do
    local v = ymax * k / 4
    c.rect(L, py(v), W - L - R, 0.5, "grid")
    c.text(L - 8, py(v), human(v), 12, "right")
  end
  c.text(L - 8, H - T + 14, "offset", 12, "right", "text", true)
  c.rect(L, B - 1, W - L - R, 1, "text")
  local step = math.max(1, math.floor(npos / 8 + 0.5))
  for p = 1, npos, step do c.text(px(p), B - 16, tostring(p), 12, "center") end
  c.text((L + W - R) / 2, B - 38, "node position in the step (a bar: one tensor, from its maker to its last reader)", 12,
    "center")
  for _, b in ipairs(bufs) do
    local x0, x1 = px(b.first), px(b.last + 1)
    c.rect(x0, py(b.offset), math.max(x1 - x0, 1), math.max(py(b.offset + b.size) - py(b.offset), 0.6),
      PHASE_FILL[ph[b.first] or "forward"], "paper",
      ("%s: %s at offset %d, nodes %d..%d"):format(b.name, human(b.size), b.offset, b.first, b.last))
  end
  if plan then
    c.rect(L, py(plan.planned), W - L - R, 1.6, "mark")
    c.text(W - R, py(plan.planned) + 10, "planned peak " .. human(plan.planned), 12, "right", "mark", true)
    c.rect(L, py(plan.lower_bound), W - L - R, 1.2, "mark:ink")
    c.text(L + 6, py(plan.planned) + 10, "live lower bound " .. human(plan.lower_bound), 12, "left", "mark:ink", true)
  end
  -- the legend names only the phases drawn
  local seen, fills, names = {}, {}, {}
  local label = { forward = "forward", backward = "backward", recompute = "recomputed in backward", optimizer = "optimizer step" }
  for _, b in ipairs(bufs) do seen[ph[b.first] or "forward"] = true end
  for _, k in ipairs { "forward", "backward", "recompute", "optimizer" } do
    if seen[k] then fills[#fills + 1], names[#names + 1] = PHASE_FILL[k], label[k] end
  end
  c.legend(L, 16, fills, names, 13)
  return c
end

chart.export(M, "arena", 1, arena_canvas, "arena.png")

-- ---- memory timelines side by side ------------------------------------------------------------

-- series: list of {name=, y = {live bytes per node position}}; each drawn in its own panel, on one
-- shared y scale, so heights compare directly.
local function curves_canvas(series, opts)
  local n = #series
  local PW, PH = opts.panel_width or 300, opts.height or 260
  local L, B, T, gap = 70, 44, 50, 16
  local W = L + n * PW + (n - 1) * gap + 20
  local H = PH + T
  local ymax = 1
  for _, s in ipairs(series) do
    for _, v in ipairs(s.y) do ymax = math.max(ymax, v) end
  end
  local c = canvas(W, H)
  c.text(W / 2, H - 16, opts.title or "memory over the step", 13, "center", "title", true)
  local function py(v) return B + v / ymax * (PH - B - 12) end
  for k = 0, 4 do
    local v = ymax * k / 4
    c.text(L - 6, py(v), human(v), 8, "right")
  end
  for si, s in ipairs(series) do
    local x0 = L + (si - 1) * (PW + gap)
    for k = 0, 4 do c.rect(x0, py(ymax * k / 4), PW, 0.5, "grid") end
    c.rect(x0, B - 1, PW, 1, "text")
    local np = #s.y
    local peak, at = 0, 1
    for i, v in ipairs(s.y) do
      if v > peak then peak, at = v, i end
    end
    local bw = PW / math.max(np, 1)
    for i, v in ipairs(s.y) do
      local fill = s.phase and PHASE_FILL[s.phase[i]] or "forward"
      c.rect(x0 + (i - 1) * bw, B, math.max(bw, 0.4), math.max(py(v) - B, 0.3), fill)
    end
    c.rect(x0, py(peak), PW, 0.8, "mark")
    c.text(x0 + PW / 2, B - 14, s.name, 10, "center", "title", true)
    c.text(x0 + PW / 2, B - 27, ("peak %s%s"):format(human(peak), s.note and (", " .. s.note) or ""), 9, "center")
    c.text(x0 + (at - 1) * bw, py(peak) + 7, human(peak), 8, "center", "mark")
  end
  legend(c, L, H - T + 12)
  return c
end

chart.export(M, "curves", 1, curves_canvas, "memory_curves.png")

-- ---- autotuning heatmap ------------------------------------------------------------------------

local function heat(t) return ("heat:%.3f"):format(t) end -- the palette's scale, heat_lo .. heat_hi

local function heatmap_canvas(res, opts)
  local bms, bns = res.bm, res.bn
  local cell = opts.cell or 54
  local L, B, T = 90, 60, 60
  local W = math.max(L + #bns * cell + 30, 560)
  local H = B + #bms * cell + T
  local c = canvas(W, H)
  local lo, hi = math.huge, 0
  for _, r in ipairs(res.results) do lo, hi = math.min(lo, r.gflops), math.max(hi, r.gflops) end
  c.text(W / 2, H - 16, opts.title or ("tile search: GFLOP/s of the blocked matmul (bk = %d)"):format(res.best.bk), 12,
    "center", "title", true)
  c.text(W / 2, H - 32, ("best bm=%d bn=%d: %.2f GFLOP/s (%.0f us); worst %.2f GFLOP/s"):format(res.best.bm,
    res.best.bn, res.best.gflops, res.best.us, lo), 10, "center")
  for i, bm in ipairs(bms) do
    local y = B + (#bms - i) * cell
    c.text(L - 8, y + cell / 2, ("bm = %d"):format(bm), 9, "right")
    for j, bn in ipairs(bns) do
      local r = res.results[(i - 1) * #bns + j]
      local t = hi > lo and (r.gflops - lo) / (hi - lo) or 1
      local best = r.bm == res.best.bm and r.bn == res.best.bn
      c.rect(L + (j - 1) * cell, y, cell - 2, cell - 2, heat(t), best and "mark" or nil,
        ("bm=%d bn=%d: %.2f GFLOP/s"):format(bm, bn, r.gflops))
      c.text(L + (j - 1) * cell + cell / 2 - 1, y + cell / 2, ("%.1f"):format(r.gflops), 9, "center",
        t > 0.55 and "paper" or "title", best)
    end
  end
  for j, bn in ipairs(bns) do c.text(L + (j - 1) * cell + cell / 2, B - 12, ("bn=%d"):format(bn), 9, "center") end
  c.legend(L, 14, { "heat_lo", "heat_hi", "mark" }, { ("slowest (%.2f GFLOP/s)"):format(lo),
    ("fastest (%.2f GFLOP/s)"):format(hi), "best tile (outlined)" })
  c.text(L + #bns * cell / 2, B - 30, "columns of C per tile (bn)", 10, "center")
  return c
end

chart.export(M, "heatmap", 1, heatmap_canvas, "autotune.png")

-- the Graph methods and chalk.autotune.heatmap
local Graph = chalk.Graph
if Graph then
  function Graph.gantt(g, opts) return M.gantt(g, opts) end
  function Graph.arena(g, opts) return M.arena(g, opts) end
  function Graph.phases(g) return (phases(g)) end
end
if chalk.autotune then chalk.autotune.heatmap = M.heatmap end
chalk.capture_charts = M
return M
