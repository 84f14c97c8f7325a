-- cluster_charts.lua: the pictures of lessons 16-17, drawn on viz's one chart canvas with colours
-- from chalk.viz.colors only: a GPU x time Gantt per policy (colour = job, preemptions marked), JCT
-- CDFs, LAS queue demotions, the checkpoint waste-vs-interval U-curve, a roofline, a cost table.
--
--   cc = require "chalk.cluster_charts"
--   cc.gantt(results, {file = "16_gantt.png"})         results: {{name=, r=sim.cluster{...}}, ...}
--   cc.cdf(results, {file=}) ; cc.demotions(r, {file=}) ; cc.ucurve(rows, marks, {file=})
--   cc.roofline(points, peak_flops, peak_bw, {file=}) ; cc.table(header, rows, {file=})
-- Every function returns the path it wrote (a relative name lands in chalk.out_dir).
local chalk = require "chalk"
local nice_step = require("chalk.chart").nice_step

local M = {}
local SERIES = {"series1", "series2", "series3", "series4", "series5", "series6"}

local function fmt(v)
  if v == math.floor(v) and math.abs(v) < 1e15 then return ("%d"):format(v) end
  return ("%.3g"):format(v)
end

-- Axes in the box (x0, y0, w, h) for [xmin, xmax] x [ymin, ymax]; returns px, py. o.logx: the x
-- values are log10 of the quantity (ticks labelled 10^k).
local function axes(c, x0, y0, w, h, xmin, xmax, ymin, ymax, o)
  o = o or {}
  local function px(x) return x0 + (x - xmin) / (xmax - xmin) * w end
  local function py(y) return y0 + (y - ymin) / (ymax - ymin) * h end
  if not o.noy then
    local ys = nice_step(ymax - ymin, o.yticks or 4)
    for y = math.ceil(ymin / ys) * ys, ymax + 1e-9, ys do
      c:rect(x0, py(y) - 0.25, w, 0.5, "grid")
      c:text(x0 - 5, py(y), o.yfmt and o.yfmt(y) or fmt(y), 9, "right")
    end
  end
  if o.logx then
    for k = math.ceil(xmin), math.floor(xmax) do
      c:rect(px(k) - 0.25, y0, 0.5, h, "grid")
      c:text(px(k), y0 - 11, o.xfmt and o.xfmt(10 ^ k) or fmt(10 ^ k), 9, "center")
    end
  else
    local xs = nice_step(xmax - xmin, o.xticks or 6)
    for x = math.ceil(xmin / xs) * xs, xmax + 1e-9, xs do
      c:rect(px(x) - 0.25, y0, 0.5, h, "grid")
      c:text(px(x), y0 - 11, o.xfmt and o.xfmt(x) or fmt(x), 9, "center")
    end
  end
  c:rect(x0, y0, w, 1, "text")
  c:rect(x0, y0, 1, h, "text")
  if o.xlabel then c:text(x0 + w / 2, y0 - 26, o.xlabel, 10, "center") end
  if o.ylabel then c:text(x0 - 5, y0 + h + 9, o.ylabel, 10, "left") end
  return px, py
end

local function render(c, opts, default) return c:render(opts, default) end

-- Ends a W x H chart: its title (opts.title, else title) centred on top, the legend of colors and
-- names at (L, legend_y), then the picture written (opts.file, else file).
local function finish(c, opts, W, H, title, L, legend_y, colors, names, file)
  c:text(W / 2, H - 16, opts.title or title, 13, "center", "title")
  c:legend(L, legend_y, colors, names)
  return render(c, opts, file)
end

-- ---- the Gantt -------------------------------------------------------------------------------

function M.gantt(results, opts)
  opts = opts or {}
  local c = chalk.viz.canvas()
  local W, PH, L, gap = opts.width or 760, opts.panel or 120, 96, 30
  local H = #results * (PH + gap) + 70
  local tmax = 0
  for _, e in ipairs(results) do tmax = math.max(tmax, e.r.makespan) end
  local unit, uname = 3600, "hours"
  c:text(W / 2, H - 16, opts.title or "GPU x time per policy (colour = job; mark = preempted there)", 13, "center", "title")
  for k, e in ipairs(results) do
    local r = e.r
    local y0 = H - 40 - k * (PH + gap) + 12
    local G = r.gpus
    local px, py = axes(c, L, y0, W - L - 20, PH, 0, tmax / unit, 0, G,
      {noy = true, xlabel = k == #results and ("time (" .. uname .. ")") or nil})
    c:text(L - 8, y0 + PH / 2 + 6, e.name, 11, "right", "title", true)
    c:text(L - 8, y0 + PH / 2 - 8, ("avg JCT %.1f h"):format(r.avg_jct / 3600), 9, "right", "muted")
    for _, s in ipairs(r.segments) do
      local gl = {}
      for i, g in ipairs(s.gpus) do gl[i] = g end
      table.sort(gl)
      local color = SERIES[(s.job - 1) % #SERIES + 1]
      local x, w = px(s.t0 / unit), math.max(0.6, px(s.t1 / unit) - px(s.t0 / unit))
      local i = 1
      while i <= #gl do -- one rectangle per run of consecutive GPUs
        local j = i
        while j < #gl and gl[j + 1] == gl[j] + 1 do j = j + 1 end
        local ylo, yhi = py(G - gl[j]), py(G - gl[i] + 1)
        c:rect(x, ylo, w, yhi - ylo, color)
        if s.preempted then c:rect(x + w - 1.2, ylo, 1.8, yhi - ylo, "mark") end
        i = j + 1
      end
    end
  end
  c:legend(L, 12, {"mark"}, {"a job preempted here (its gang released)"})
  return render(c, opts, "gantt.png")
end

-- ---- JCT CDFs --------------------------------------------------------------------------------

function M.cdf(results, opts)
  opts = opts or {}
  local c = chalk.viz.canvas()
  local W, H, L, B = 560, 320, 60, 56
  local lo, hi = math.huge, -math.huge
  for _, e in ipairs(results) do
    for _, j in ipairs(e.r.jobs) do
      lo, hi = math.min(lo, math.log(j.jct, 10)), math.max(hi, math.log(j.jct, 10))
    end
  end
  lo, hi = math.floor(lo), math.ceil(hi)
  local px, py = axes(c, L, B, W - L - 20, H - B - 50, lo, hi, 0, 1,
    {logx = true, xlabel = "job completion time (s, log scale)", ylabel = "fraction of jobs"})
  local colors, names = {}, {}
  for k, e in ipairs(results) do
    local v = {}
    for i, j in ipairs(e.r.jobs) do v[i] = j.jct end
    table.sort(v)
    local xs, ys = {}, {}
    for i, x in ipairs(v) do
      xs[#xs + 1], ys[#ys + 1] = px(math.log(x, 10)), py((i - 1) / #v)
      xs[#xs + 1], ys[#ys + 1] = px(math.log(x, 10)), py(i / #v)
    end
    colors[k], names[k] = SERIES[k], e.name
    c:line(xs, ys, SERIES[k], 1.6)
  end
  return finish(c, opts, W, H, "JCT CDF per policy", L, 12, colors, names, "cdf.png")
end

-- ---- LAS demotions ---------------------------------------------------------------------------

function M.demotions(r, opts)
  opts = opts or {}
  local c = chalk.viz.canvas()
  local W, H, L, B = 560, 320, 60, 56
  local n = #r.jobs
  local px, py = axes(c, L, B, W - L - 20, H - B - 50, 0, r.makespan / 3600, 0, n,
    {xlabel = "time (hours)", ylabel = "job (in submit order)"})
  for _, dm in ipairs(r.demotions) do c:point(px(dm.t / 3600), py(dm.job), SERIES[dm.queue], 5) end
  for i, j in ipairs(r.jobs) do c:point(px(j.submit / 3600), py(i), "faint", 2.5) end
  local colors, names = {"faint"}, {"submitted (queue 0)"}
  for q = 1, opts.queues or 2 do colors[#colors + 1], names[#names + 1] = SERIES[q], ("demoted to queue %d"):format(q) end
  return finish(c, opts, W, H, "LAS: jobs demoted as their attained service grows", L, 12, colors, names, "demotions.png")
end

-- ---- the checkpoint U-curve ------------------------------------------------------------------

-- rows: {interval=, waste=, model=}; marks: {{x=, name=, color=}, ...} vertical lines
function M.ucurve(rows, marks, opts)
  opts = opts or {}
  local c = chalk.viz.canvas()
  local W, H, L, B = 600, 340, 64, 56
  local ymin, ymax = math.huge, -math.huge
  for _, r in ipairs(rows) do
    ymin, ymax = math.min(ymin, r.waste, r.model or r.waste), math.max(ymax, r.waste, r.model or r.waste)
  end
  ymin, ymax = ymin * 100 * 0.97, ymax * 100 * 1.02
  local x0, x1 = rows[1].interval, rows[#rows].interval
  local px, py = axes(c, L, B, W - L - 20, H - B - 60, x0, x1, ymin, ymax,
    {xlabel = "checkpoint interval (s)", ylabel = "waste (% of wall time)", yfmt = function(y) return ("%.2f"):format(y) end})
  local xs, ys, ms, mys = {}, {}, {}, {}
  for i, r in ipairs(rows) do
    xs[i], ys[i] = px(r.interval), py(r.waste * 100)
    if r.model then ms[#ms + 1], mys[#mys + 1] = px(r.interval), py(r.model * 100) end
  end
  c:line(xs, ys, "series1", 1.8)
  for i = 1, #xs do c:point(xs[i], ys[i], "series1", 4) end
  if #ms > 0 then c:line(ms, mys, "series2", 1.2, true) end
  local colors, names = {"series1", "series2"}, {"simulated waste", "first-order law C/t + (t+C)/2M"}
  for _, m in ipairs(marks) do
    c:line({px(m.x), px(m.x)}, {py(ymin), py(ymax)}, m.color, 1.4, m.dashed)
    colors[#colors + 1], names[#names + 1] = m.color, m.name
  end
  return finish(c, opts, W, H, "waste vs checkpoint interval", L, 10, colors, names, "ucurve.png")
end

-- ---- the roofline ----------------------------------------------------------------------------

-- points: {{name=, intensity= (FLOP/byte), flops= (FLOP/s), color=}}; a log-log roofline
function M.roofline(points, peak, bw, opts)
  opts = opts or {}
  local c = chalk.viz.canvas()
  local W, H, L, B = 600, 360, 70, 56
  local x0, x1 = -2, 4
  local y1 = math.ceil(math.log(peak, 10) + 0.3)
  local y0 = y1 - 5
  local px, py = axes(c, L, B, W - L - 20, H - B - 60, x0, x1, y0, y1,
    {logx = true, xlabel = "arithmetic intensity (FLOP/byte, log)", ylabel = "FLOP/s (log)", yticks = 5,
     yfmt = function(y) return ("1e%d"):format(math.floor(y + 0.5)) end})
  local xs, ys = {}, {}
  for i = 0, 60 do
    local lx = x0 + (x1 - x0) * i / 60
    local f = math.min(peak, bw * 10 ^ lx)
    xs[#xs + 1], ys[#ys + 1] = px(lx), py(math.max(y0, math.log(f, 10)))
  end
  c:line(xs, ys, "mark", 2)
  local ridge = peak / bw
  c:text(px(math.log(ridge, 10)), py(math.log(peak, 10)) + 8, ("ridge %.1f FLOP/B"):format(ridge), 9, "center", "muted")
  local colors, names = {"mark"}, {opts.roof or "roof: min(peak, bandwidth x intensity)"}
  for k, p in ipairs(points) do
    local col = p.color or SERIES[k]
    c:point(px(math.log(p.intensity, 10)), py(math.log(p.flops, 10)), col, 8)
    colors[#colors + 1], names[#names + 1] = col, p.name
  end
  return finish(c, opts, W, H, "roofline", L, 10, colors, names, "roofline.png")
end

-- ---- a table ---------------------------------------------------------------------------------

function M.table(header, rows, opts)
  opts = opts or {}
  local c = chalk.viz.canvas()
  local cw = opts.widths or {}
  local n = #header
  local W = 0
  for i = 1, n do cw[i] = cw[i] or 100 W = W + cw[i] end
  local rh = 20
  local H = (#rows + 1) * rh + 50
  c:text(W / 2 + 10, H - 16, opts.title or "", 13, "center", "title")
  local y = H - 40
  local function row(vals, fill, bold)
    local x = 10
    for i = 1, n do
      c:rect(x, y - rh, cw[i], rh, fill, "grid:ink")
      c:text(x + 6, y - rh / 2, tostring(vals[i]), 10, "left", bold and "title" or "text", bold)
      x = x + cw[i]
    end
    y = y - rh
  end
  row(header, "summary:tint", true)
  for k, r in ipairs(rows) do row(r, r.highlight and "current:tint" or (k % 2 == 0 and "grid:tint" or "paper")) end
  return render(c, opts, "table.png")
end

return M
