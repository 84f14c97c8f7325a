-- perfcharts.lua: the pictures of the GPU lessons (4 and 5) that are neither graphs nor profiles:
-- a roofline, log-log curves, the tile sweep of FlashAttention with its running max and sum, and
-- two memory timelines side by side on one scale. The data (log axes, decade by decade, label
-- placement) is shaped here; every mark, colour and font is drawn by viz's one chart canvas
-- (chalk.viz.canvas), with colours named from chalk.viz.colors and a legend in each picture.
--
--   pc = require "chalk.perfcharts"
--   pc.roofline{bandwidth = 3e12, ceilings = {{name = "f32", flops = 5e13}},
--               points = {{name = "tiled", intensity = 8, flops = 4e12}}, file = "roofline.png"}
--   pc.loglog({{name = "naive", x = {512, 1024}, y = {0.1, 0.4}}}, {xlabel = "N", ylabel = "ms"})
--   pc.tile_sweep{nq = 8, nk = 8, row = 3, causal = true, steps = {{m=, l=, tile_max=}, ...}}
--   pc.memory_pair({name = "naive", events = prof1:events()}, {name = "flash", events = ...},
--                  {mark = n * n * 4, mark_label = "one N x N matrix"})
--
-- Invariants: the *_dot functions are pure functions of their arguments (tests compare their
-- text); every drawing function renders through viz's canvas and returns the path written;
-- a relative file name lands in chalk.out_dir like every other picture.
local chalk = require "chalk"
local chart = require "chalk.chart"

local M = {}

local SERIES = { "series1", "series2", "series3", "series4", "series5", "series6" }

-- 1.5e12 -> "1.5T"; 2048 -> "2048" (integers below 1e5 exactly); 0.25 -> "0.25"
function M.si(v)
  local a = math.abs(v)
  if a < 1e5 and v == math.floor(v) then return ("%d"):format(v) end
  if a >= 1e15 then return ("%gP"):format(tonumber(("%.3g"):format(v / 1e15)))
  elseif a >= 1e12 then return ("%gT"):format(tonumber(("%.3g"):format(v / 1e12)))
  elseif a >= 1e9 then return ("%gG"):format(tonumber(("%.3g"):format(v / 1e9)))
  elseif a >= 1e6 then return ("%gM"):format(tonumber(("%.3g"):format(v / 1e6)))
  elseif a >= 1e4 then return ("%gk"):format(tonumber(("%.3g"):format(v / 1e3)))
  end
  return ("%g"):format(tonumber(("%.3g"):format(v)))
end

function M.bytes(b)
  if b >= 2^30 then return ("%.2f GiB"):format(b / 2^30) end -- binary units, labelled so
  if b >= 2^20 then return ("%.2f MiB"):format(b / 2^20) end
  if b >= 2^10 then return ("%.1f KiB"):format(b / 2^10) end
  return ("%d B"):format(math.floor(b + 0.5))
end

-- ---- a canvas of pinned nodes ---------------------------------------------------------------------

-- viz's chart canvas, with the drawing calls of this file (colours are names of viz.colors)
local function canvas()
  local viz = chalk.viz
  if not (viz and viz.canvas) then error("perfcharts: pictures need chalk.viz (the viz layer)", 3) end
  local v, c = viz.canvas(), {}
  function c.rect(x, y, w, h, fill, border, tooltip) v:rect(x, y, w, h, fill, border, tooltip) end
  function c.text(x, y, s, size, anchor, color, bold) v:text(x, y, s, size, anchor, color, bold) end
  function c.point(x, y, color, size) v:point(x, y, color, size) end
  function c.line(x0, y0, x1, y1, color, width, dashed) v:line({ x0, x1 }, { y0, y1 }, color, width, dashed) end
  function c.legend(x, y, colors, labels, size) return v:legend(x, y, colors, labels, size) end
  function c:dot() return v:dot() end
  function c:render(opts, name) return v:render(opts, name) end
  return c
end

-- ---- log axes ---------------------------------------------------------------------------------------

-- A log-scaled axis mapping [lo, hi] onto [p0, p1] points; ticks(): the values to label, 1, 2 and
-- 5 times the powers of ten inside the range (only the powers when it spans many decades).
local function log_axis(lo, hi, p0, p1)
  if hi <= lo then hi = lo * 10 end
  local l0, l1 = math.log(lo, 10), math.log(hi, 10)
  local ax = {}
  function ax.map(v) return p0 + (math.log(v, 10) - l0) / (l1 - l0) * (p1 - p0) end
  function ax.ticks()
    local t, mults = {}, (l1 - l0) > 3.5 and { 1 } or { 1, 2, 5 }
    for d = math.floor(l0), math.ceil(l1) do
      for _, m in ipairs(mults) do
        local v = m * 10 ^ d
        if v >= lo * 0.999 and v <= hi * 1.001 then t[#t + 1] = { v = v, major = m == 1 } end
      end
    end
    return t
  end
  ax.lo, ax.hi = lo, hi
  return ax
end

-- Frame, grid and labels of a log-log plot; returns the two axes.
local function loglog_frame(c, box, xr, yr, opts)
  local L, B, W, H = box.L, box.B, box.W, box.H
  local ax, ay = log_axis(xr[1], xr[2], L, L + W), log_axis(yr[1], yr[2], B, B + H)
  for _, t in ipairs(ay.ticks()) do
    local y = ay.map(t.v)
    c.rect(L, y - 0.3, W, 0.6, t.major and "grid:ink" or "grid")
    c.text(L - 6, y, M.si(t.v), 9, "right")
  end
  local xticks = ax.ticks()
  if opts.xticks then
    xticks = {}
    for _, v in ipairs(opts.xticks) do xticks[#xticks + 1] = { v = v, major = true } end
  end
  for _, t in ipairs(xticks) do
    local x = ax.map(t.v)
    c.rect(x - 0.3, B, 0.6, H, t.major and "grid:ink" or "grid")
    c.text(x, B - 12, M.si(t.v), 9, "center")
  end
  c.rect(L, B, W, 1, "text")
  c.rect(L, B, 1, H, "text")
  if opts.title then c.text(L + W / 2, B + H + 22, opts.title, 13, "center", "title", true) end
  if opts.xlabel then c.text(L + W / 2, B - 30, opts.xlabel, 10, "center") end
  if opts.ylabel then c.text(L - 40, B + H + 10, opts.ylabel, 10, "left") end
  return ax, ay
end

local function range(values, pad)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(values) do
    if v > 0 then lo, hi = math.min(lo, v), math.max(hi, v) end
  end
  if lo == math.huge then lo, hi = 1, 10 end
  return { lo / (pad or 1), hi * (pad or 1) }
end

-- ---- log-log curves -----------------------------------------------------------------------------------

-- series: list of {name=, x={...}, y={...}, dashed=bool, labels={...}}; opts: title, xlabel,
-- ylabel, width, height, xticks (the x values to label; default 1, 2, 5 times powers of ten).
local function loglog_canvas(series, opts)
  local c = canvas()
  local xs, ys = {}, {}
  for _, s in ipairs(series) do
    for i = 1, #s.x do
      xs[#xs + 1], ys[#ys + 1] = s.x[i], s.y[i]
    end
  end
  local W, H = opts.width or 520, opts.height or 320
  local box = { L = 70, B = 56, W = W, H = H }
  local ax, ay = loglog_frame(c, box, range(xs, 1.15), range(ys, 1.4), opts)
  for si, s in ipairs(series) do
    local color = s.color or SERIES[(si - 1) % #SERIES + 1]
    local px, py
    for i = 1, #s.x do
      if s.x[i] > 0 and s.y[i] and s.y[i] > 0 then
        local x, y = ax.map(s.x[i]), ay.map(s.y[i])
        if px then c.line(px, py, x, y, color, 1.8, s.dashed) end
        c.point(x, y, color, 6)
        if s.labels and s.labels[i] then c.text(x + 5, y + 9, s.labels[i], 8, "left", color) end
        px, py = x, y
      end
    end
    local ly = box.B + box.H + 2 - si * 15
    c.rect(box.L + box.W + 14, ly - 1.5, 16, 3, color)
    c.text(box.L + box.W + 36, ly, s.name or ("series " .. si), 10, "left")
  end
  return c
end

chart.export(M, "loglog", 1, loglog_canvas, "loglog.png")

-- ---- roofline ------------------------------------------------------------------------------------------

-- opts: bandwidth (bytes/s, measured), ceilings = list of {name=, flops=} (FLOP/s, measured),
-- points = list of {name=, intensity= (FLOP/byte), flops= (FLOP/s)}, title, xlabel, width, height.
local function roofline_canvas(opts)
  local c = canvas()
  local bw = assert(opts.bandwidth, "roofline: bandwidth (bytes/s) is required")
  local ceilings = opts.ceilings or {}
  local top = 0
  for _, ce in ipairs(ceilings) do top = math.max(top, ce.flops) end
  local xs, ys = {}, {}
  for _, p in ipairs(opts.points or {}) do
    xs[#xs + 1], ys[#ys + 1] = p.intensity, p.flops
  end
  for _, ce in ipairs(ceilings) do
    xs[#xs + 1], ys[#ys + 1] = ce.flops / bw, ce.flops
  end
  local xr, yr = range(xs, 2.5), range(ys, 2.5)
  yr[1] = math.min(yr[1], xr[1] * bw)
  yr[2] = math.max(yr[2], top * 1.6)
  local W, H = opts.width or 620, opts.height or 400
  local box = { L = 70, B = 56, W = W, H = H }
  opts.xlabel = opts.xlabel or "arithmetic intensity (FLOP per byte of global memory traffic)"
  opts.ylabel = opts.ylabel or "FLOP/s"
  local ax, ay = loglog_frame(c, box, xr, yr, opts)
  local xlo, xhi, ylo, yhi = ax.lo, ax.hi, ay.lo, ay.hi
  -- the memory roof: y = I * bw, from the left edge (or the floor) up to the highest ceiling
  local x0 = math.max(xlo, ylo / bw)
  local x1 = math.min(xhi, (top > 0 and top or yhi) / bw)
  c.line(ax.map(x0), ay.map(x0 * bw), ax.map(x1), ay.map(x1 * bw), "text", 2.2)
  local lx = math.sqrt(x0 * x1)
  c.text(ax.map(lx) - 8, ay.map(lx * bw) + 14, ("memory: %sB/s"):format(M.si(bw)), 9, "right", "text")
  -- labels are placed greedily where they overlap nothing placed before (boxes in points)
  local taken = {}
  local function free(x0, y0, x1, y1)
    for _, b in ipairs(taken) do
      if x0 < b[3] and b[1] < x1 and y0 < b[4] and b[2] < y1 then return false end
    end
    return true
  end
  local function take(x0, y0, x1, y1) taken[#taken + 1] = { x0, y0, x1, y1 } end
  local mx, my = ax.map(lx) - 8, ay.map(lx * bw) + 14
  take(mx - #("memory: %sB/s"):format(M.si(bw)) * 9 * 0.6, my - 6, mx, my + 6)
  for i, ce in ipairs(ceilings) do
    local ridge = ce.flops / bw
    local color = i == 1 and "text" or "muted"
    c.line(ax.map(math.max(ridge, xlo)), ay.map(ce.flops), ax.map(xhi), ay.map(ce.flops), color, i == 1 and 2.2 or 1.4,
      i > 1)
    local label = ("%s: %sFLOP/s"):format(ce.name, M.si(ce.flops))
    local lx, ly = ax.map(math.max(ridge, xlo)) - 6, ay.map(ce.flops) + 8
    local w = #label * 9 * 0.58
    c.text(lx, ly, label, 9, "right", color)
    take(lx - w, ly - 6, lx, ly + 6)
  end
  local pts = {}
  for i, p in ipairs(opts.points or {}) do
    pts[i] = { p = p, color = SERIES[(i - 1) % #SERIES + 1], x = ax.map(p.intensity), y = ay.map(p.flops) }
    take(pts[i].x - 5, pts[i].y - 5, pts[i].x + 5, pts[i].y + 5)
  end
  table.sort(pts, function(a, b) return a.y > b.y end)
  for _, q in ipairs(pts) do
    c.point(q.x, q.y, q.color, 9)
    local w = #q.p.name * 9 * 0.62
    local placed
    for _, off in ipairs { { 8, 0 }, { 8, 11 }, { 8, -11 }, { 8, 22 }, { 8, -22 }, { 8, 33 }, { 8, -33 }, { 8, 44 },
      { 8, -44 }, { -8, 0 }, { -8, 11 }, { -8, -11 }, { -8, 22 }, { -8, -22 } } do
      local x0 = off[1] > 0 and q.x + off[1] or q.x + off[1] - w
      local y = q.y + off[2]
      if free(x0, y - 5, x0 + w, y + 5) and x0 + w <= box.L + box.W + 4 and x0 >= box.L then
        placed = { x0 = x0, y = y, dy = off[2] }
        break
      end
    end
    placed = placed or { x0 = q.x + 8, y = q.y, dy = 0 }
    take(placed.x0, placed.y - 5, placed.x0 + w, placed.y + 5)
    if math.abs(placed.dy) > 6 then
      c.line(q.x, q.y, placed.x0 < q.x and placed.x0 + w or placed.x0, placed.y, q.color, 0.6)
    end
    c.text(placed.x0, placed.y, q.p.name, 9, "left", q.color, true)
  end
  c.legend(box.L, 14, { "text", "muted" }, { "memory roof and the first ceiling", "further ceilings" })
  return c
end

chart.export(M, "roofline", 0, roofline_canvas, "roofline.png")

-- ---- FlashAttention's tile sweep ------------------------------------------------------------------

-- The score matrix S as a grid of tiles (nq query tiles x nk key tiles); the sweep of query tile
-- `row` across the key tiles is numbered, with the running max m, sum l and the tile's own max
-- after each step (steps[j] = {tile_max=, m=, l=, scale=} for key tile j). causal greys the tiles
-- above the diagonal (never computed).
local function tile_sweep_canvas(opts)
  local c = canvas()
  local nq, nk, row = opts.nq, opts.nk, opts.row
  local cell = opts.cell or 46
  local L, B = 110, 150
  local top = B + nq * cell
  local function cx(j) return L + (j - 1) * cell end
  local function cy(i) return top - i * cell end
  c.text(L + nk * cell / 2, top + 38, opts.title or "FlashAttention: one query tile sweeps the key tiles", 13, "center",
    "title", true)
  c.text(L + nk * cell / 2, top + 16, "key tiles K_j, V_j (stream through on-chip memory) →", 10, "center")
  for i = 1, nq do
    c.text(L - 8, cy(i) + cell / 2, ("Q_%d"):format(i), 10, "right", i == row and "current:ink" or "muted", i == row)
    for j = 1, nk do
      local skipped = opts.causal and j > i
      local fill = skipped and "paper" or (i == row and "current:tint" or "grid:tint")
      c.rect(cx(j) + 1, cy(i) + 1, cell - 2, cell - 2, fill, skipped and "grid" or "grid:ink",
        ("S tile (%d, %d)%s"):format(i, j, skipped and ": skipped (causal)" or ""))
      if i == row and not skipped then c.text(cx(j) + cell / 2, cy(i) + cell / 2, tostring(j), 12, "center", "current:ink", true) end
    end
  end
  c.text(L - 8, top + 16, "query tiles ↓", 9, "right")
  -- the running statistics under the grid, one column per key tile of the sweep
  local steps = opts.steps or {}
  local y0 = B - 24
  c.text(L - 8, y0, "tile max", 9, "right")
  c.text(L - 8, y0 - 18, "running m", 9, "right", "current:ink")
  c.text(L - 8, y0 - 36, "e^(m_old - m)", 9, "right")
  c.text(L - 8, y0 - 54, "running l", 9, "right", "series2:ink")
  for j, s in ipairs(steps) do
    local x = cx(j) + cell / 2
    local f = function(v) return v == nil and "-" or v == -math.huge and "-inf" or ("%.3g"):format(v) end
    c.text(x, y0, f(s.tile_max), 9, "center")
    c.text(x, y0 - 18, f(s.m), 9, "center", "current:ink", true)
    c.text(x, y0 - 36, f(s.scale), 9, "center")
    c.text(x, y0 - 54, f(s.l), 9, "center", "series2:ink", true)
  end
  c.legend(L, y0 - 102, { "current:tint", "grid:tint", "paper" }, { ("the sweep of Q_%d (numbered in order)"):format(row),
    "tiles of other query tiles", opts.causal and "skipped (causal mask)" or "" })
  if opts.caption then c.text(L, y0 - 84, opts.caption, 10, "left") end
  return c
end

chart.export(M, "tile_sweep", 0, tile_sweep_canvas, "tile_sweep.png")

-- ---- two memory timelines on one scale --------------------------------------------------------------

-- Live bytes allocated inside a profile window on one device after each op (allocations minus
-- frees, starting from 0), split into blocks of at least `big` bytes and the rest.
local function live_series(events, device, big)
  local slots, live, live_big, peak = {}, 0, 0, 0
  local sizes = {} -- bytes of the big blocks alive, to recognise their frees
  for _, e in ipairs(events) do
    if device == nil or e.device == device or e.device:sub(1, #device + 1) == device .. ":" then
      if e.kind == "alloc" then
        live = live + e.bytes
        if big and e.bytes >= big then
          live_big = live_big + e.bytes
          sizes[e.bytes] = (sizes[e.bytes] or 0) + 1
        end
      elseif e.kind == "free" then
        live = live - e.bytes
        if big and (sizes[e.bytes] or 0) > 0 then
          sizes[e.bytes] = sizes[e.bytes] - 1
          live_big = live_big - e.bytes
        end
      elseif e.kind == "op" then
        slots[#slots + 1] = { live = live, big = live_big, name = e.name, backward = e.backward }
      end
      peak = math.max(peak, live)
    end
  end
  slots[#slots + 1] = { live = live, big = live_big, name = "end" }
  return slots, peak
end

-- a, b: {name=, events=prof:events(), device="cpu"|"cuda"|"cuda:1"}; opts: big (bytes from which a
-- block counts as "N x N"), mark (a level to draw dashed, e.g. one N x N matrix) and mark_label,
-- title, width, height.
local function memory_pair_canvas(a, b, opts)
  local c = canvas()
  local sa, pa = live_series(a.events, a.device, opts.big)
  local sb, pb = live_series(b.events, b.device, opts.big)
  local ymax = math.max(pa, pb, opts.mark or 0) * 1.1
  if ymax <= 0 then ymax = 1 end
  local W, H, gap = opts.width or 360, opts.height or 260, 90
  local B = 50
  local function panel(x0, slots, peak, name)
    local n = #slots
    local bw = W / n
    local function py(v) return B + v / ymax * H end
    for i, s in ipairs(slots) do
      local x = x0 + (i - 1) * bw
      local small = s.live - s.big
      if small > 0 then c.rect(x, B, math.max(bw - 0.5, 0.5), py(small) - B, "series1") end
      if s.big > 0 then c.rect(x, py(small), math.max(bw - 0.5, 0.5), py(s.live) - py(small), "series2") end
    end
    c.rect(x0, B, W, 1, "text")
    c.rect(x0, B, 1, H, "text")
    c.text(x0 + W / 2, B + H + 26, ("%s: peak %s"):format(name, M.bytes(peak)), 12, "center", "title", true)
    c.text(x0 + W / 2, B - 14, ("ops in order (forward, then backward): %d"):format(n - 1), 9, "center")
    if opts.mark then
      c.rect(x0, py(opts.mark) - 0.5, W, 1, "mark")
      c.text(x0 + W - 2, py(opts.mark) + 8, opts.mark_label or M.bytes(opts.mark), 8, "right", "mark:ink")
    end
    for f = 0, 4 do
      local v = ymax * f / 4
      c.text(x0 - 5, py(v), M.bytes(v), 8, "right")
    end
  end
  panel(70, sa, pa, a.name or "a")
  panel(70 + W + gap, sb, pb, b.name or "b")
  if opts.title then c.text(70 + W + gap / 2, B + H + 52, opts.title, 13, "center", "title", true) end
  local big_label = opts.big_label or "blocks of N x N"
  local colors, labels = { "series2", "series1" }, { big_label, "everything else allocated in the window" }
  if opts.mark then colors[3], labels[3] = "mark", opts.mark_label or M.bytes(opts.mark) end
  c.legend(70, 16, colors, labels)
  return c
end

chart.export(M, "memory_pair", 2, memory_pair_canvas, "memory_pair.png")

M.live_series = live_series
return M
