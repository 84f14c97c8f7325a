-- quant_charts.lua: the two pictures of quantization (lesson 15), drawn on viz's chart canvas with
-- colours from chalk.viz.colors:
--
--   quant.histogram(w, "q4", {block = {row, block}, file = "q4_hist.png"})
--     top: the histogram of every weight, one block's values marked and its quantization levels
--     code * d (code = -L .. L) drawn over it; bottom: each block's largest round-trip error
--     |w - code * d| beside its bound d / 2 (the first blocks of the tensor, up to opts.max_blocks).
--   quant.bits_chart({{bits = 4.5, value = 0.84, label = "q4"}, ...}, {ylabel = "accuracy"})
--     a metric against bits per weight, one point per format (a table name -> list: several lines).
--
-- Both have a _dot twin returning the DOT text (tests), and return the path they wrote.
local chalk = require "chalk"
local chart = require "chalk.chart"

local M = {}

local function fmtnum(v)
  if v == 0 then return "0" end
  return (("%.3g"):format(v))
end

-- Per-block (group) max error, step d, in row-major block order, as Lua lists.
local function block_stats(w, q)
  local rows, cols = q.rows, q.cols
  local steps = q:scales()
  local groups = steps.shape[2]
  local per = q.format == "int8" and rows * cols or q.format == "int8_channel" and cols or 32
  local err = (chalk.dequantize(q):to("cpu"):reshape(rows, cols) - w:reshape(rows, cols)):abs()
  if q.format == "int8" then return { err:max():item() }, steps:reshape(1):tolist(), per end
  if groups * per > cols then err = chalk.cat({ err, chalk.zeros({ rows, groups * per - cols }) }, 2) end
  return err:reshape(rows, groups, per):max(3):reshape(rows * groups):tolist(), steps:reshape(rows * groups):tolist(), per
end

local function axis_ticks(c, lo, hi, px, y, n)
  local step = chart.nice_step(hi - lo, n)
  local v = math.ceil(lo / step) * step
  while v <= hi + step * 1e-9 do
    c:rect(px(v) - 0.25, y, 0.5, 4, "text")
    c:text(px(v), y - 12, fmtnum(math.abs(v) < step * 1e-9 and 0 or v), 11, "center")
    v = v + step
  end
end

local function histogram_canvas(w, fmt, opts)
  local quant = require "chalk.quant"
  if not chalk.is_tensor(w) then error(("quant.histogram: argument 1 must be a tensor, got %s"):format(type(w)), 3) end
  local q = quant.quantize(w, fmt)
  local w2 = w:detach():to("f32"):to("cpu"):reshape(q.rows, q.cols)
  local errs, steps, per = block_stats(w2, q)
  local nb = #steps
  local groups_per_row = nb // (q.format == "int8" and 1 or q.rows)
  local blk = opts.block or { 1, 1 }
  local brow, bcol = blk[1], blk[2]
  if q.format == "int8" then brow, bcol = 1, 1 end
  if math.type(brow) ~= "integer" or math.type(bcol) ~= "integer" or brow < 1 or brow > q.rows or bcol < 1
      or bcol > groups_per_row then
    error(("quant.histogram: block must be {row, block} with row in 1..%d and block in 1..%d"):format(q.rows,
      groups_per_row), 3)
  end
  local bi = q.format == "int8" and 1 or (brow - 1) * groups_per_row + bcol
  local d, L = steps[bi], quant.format[fmt].levels
  -- the block's own weights
  local bvals = {}
  if q.format == "int8" then
    bvals = w2:reshape(q.rows * q.cols):tolist()
  else
    local c0 = q.format == "int8_channel" and 1 or (bcol - 1) * per + 1
    local n = math.min(per, q.cols - c0 + 1)
    bvals = w2:narrow(1, brow, 1):narrow(2, c0, n):reshape(n):tolist()
  end
  local all = w2:reshape(q.rows * q.cols):tolist()
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(all) do lo, hi = math.min(lo, v), math.max(hi, v) end
  if hi <= lo then lo, hi = lo - 1, hi + 1 end
  local nbins = opts.bins or 60
  local counts, cmax = {}, 0
  for i = 1, nbins do counts[i] = 0 end
  for _, v in ipairs(all) do
    local b = math.min(nbins, math.floor((v - lo) / (hi - lo) * nbins) + 1)
    counts[b] = counts[b] + 1
  end
  for i = 1, nbins do cmax = math.max(cmax, counts[i]) end

  local W, H = opts.width or 680, 600
  local Lm, R = 70, 20
  local top_b, top_t = 350, 540 -- histogram panel
  local bot_b, bot_t = 80, 250  -- error panel
  local c = chalk.viz.canvas()
  local function px(v) return Lm + (v - lo) / (hi - lo) * (W - Lm - R) end
  local function py(n) return top_b + n / cmax * (top_t - top_b) end
  local which = q.format == "int8" and "the tensor's one block" or ("block (%d, %d)"):format(brow, bcol)
  c:text(W / 2, H - 18, opts.title or ("%s: weights, and the levels of %s"):format(fmt, which), 15, "center", "title")
  -- histogram
  c:rect(Lm, top_b, W - Lm - R, 1, "text")
  c:rect(Lm, top_b, 1, top_t - top_b, "text")
  for i = 1, nbins do
    local x0 = lo + (i - 1) * (hi - lo) / nbins
    if counts[i] > 0 then
      c:rect(px(x0), top_b, (W - Lm - R) / nbins, py(counts[i]) - top_b, "series1:tint", "series1")
    end
  end
  c:text(Lm - 6, top_t, tostring(cmax), 11, "right")
  c:text(Lm - 6, top_b, "0", 11, "right")
  c:text(12, top_t + 14, "weights per bin", 11, "left")
  axis_ticks(c, lo, hi, px, top_b - 4, 8)
  -- the block's levels (every level for q4/q8 blocks; for int8 at most 64 drawn, evenly spaced)
  local every = math.max(1, math.ceil((2 * L + 1) / 64))
  for code = -L, L, every do
    local v = code * d
    if v >= lo and v <= hi then
      c:line({ px(v), px(v) }, { top_b, top_t }, "series2", code == 0 and 1.4 or 0.9, code ~= 0)
    end
  end
  -- the block's own values, as marks under the axis
  for _, v in ipairs(q.format == "int8" and {} or bvals) do c:rect(px(v) - 1, top_b - 44, 2, 12, "series3") end
  local lv = ("levels code x d of the block (d = %s%s)"):format(fmtnum(d), every > 1 and (", every " .. every .. "th") or "")
  if q.format == "int8" then
    c:legend(Lm, top_b - 70, { "series1:tint", "series2" }, { "all weights", lv .. "; int8: one block, the whole tensor" }, 11)
  else
    c:legend(Lm, top_b - 70, { "series1:tint", "series2", "series3" }, { "all weights", lv, "the block's weights" }, 11)
  end
  -- per-block error
  local show = math.min(nb, opts.max_blocks or 64)
  local emax = 0
  for i = 1, show do emax = math.max(emax, errs[i], steps[i] / 2) end
  if emax == 0 then emax = 1 end
  local bw = (W - Lm - R) / show
  local function ey(e) return bot_b + e / emax * (bot_t - bot_b) end
  c:rect(Lm, bot_b, W - Lm - R, 1, "text")
  c:rect(Lm, bot_b, 1, bot_t - bot_b, "text")
  c:text(Lm - 6, bot_t, fmtnum(emax), 11, "right")
  c:text(Lm - 6, bot_b, "0", 11, "right")
  c:text(12, bot_t + 12, "largest |w - code x d| in the block", 11, "left")
  for i = 1, show do
    c:rect(Lm + (i - 1) * bw + bw * 0.15, bot_b, bw * 0.7, ey(errs[i]) - bot_b, i == bi and "series3" or "series4")
    c:rect(Lm + (i - 1) * bw, ey(steps[i] / 2) - 1, bw, 2, "mark")
  end
  c:text((Lm + W - R) / 2, bot_b - 16, q.format == "int8" and "the one block: the whole tensor" or
    ("block (row-major: %d per row%s)"):format(groups_per_row, show < nb and (", the first %d of %d"):format(show, nb) or ""),
    11, "center")
  c:legend(Lm, 34, { "series4", "series3", "mark" },
    { "max error of a block", "the block above", "its bound d / 2" }, 11)
  return c
end

chart.export(M, "histogram", 2, histogram_canvas, "quant_histogram.png")

-- points: a list of {bits = b, value = v [, label = s]} (sorted by bits here), or a table
-- name -> such a list for several lines. opts: title, ylabel, xlabel, file, width, height.
local function bits_series(points, opts)
  if type(points) ~= "table" then error("quant.bits_chart: points must be a table of {bits=, value=}", 3) end
  opts = opts or {}
  local lists = points[1] == nil and points or { [opts.name or opts.ylabel or "value"] = points }
  local names = {}
  for k in pairs(lists) do names[#names + 1] = k end
  table.sort(names)
  if #names == 0 then error("quant.bits_chart: no points", 3) end
  local series, labels, refs, xmin, xmax = {}, nil, {}, math.huge, -math.huge
  for _, name in ipairs(names) do
    local ps = {}
    for i, p in ipairs(lists[name]) do
      if type(p) ~= "table" or type(p.bits) ~= "number" or type(p.value) ~= "number" then
        error(("quant.bits_chart: point %d of %s must be {bits = number, value = number}"):format(i, name), 3)
      end
      ps[#ps + 1] = p
    end
    table.sort(ps, function(a, b) return a.bits < b.bits end)
    local s, ls = { name = name, x = {}, y = {} }, {}
    for _, p in ipairs(ps) do
      if p.bits < 16 then
        s.x[#s.x + 1], s.y[#s.y + 1], ls[#ls + 1] = p.bits, p.value, p.label or fmtnum(p.bits)
        xmin, xmax = math.min(xmin, p.bits), math.max(xmax, p.bits)
      else
        refs[#refs + 1] = { p = p, name = name }
      end
    end
    series[#series + 1] = s
    labels = labels or ls
  end
  -- an unquantized reference (f32, bf16: 16 bits and more) is a dashed level across the chart, so
  -- the quantized points keep the width of the x axis
  if xmin == math.huge then xmin, xmax = 0, 1 end
  for _, r in ipairs(refs) do
    series[#series + 1] = { name = ("%s%s (%s bits/weight)"):format(#names > 1 and (r.name .. ": ") or "",
      r.p.label or "unquantized", fmtnum(r.p.bits)), x = { xmin - 0.5, xmax + 0.5 }, y = { r.p.value, r.p.value } }
  end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.xlabel = opts.xlabel or "bits per weight"
  o.points, o.labels = true, labels
  o.file = opts.file or "quant_bits.png"
  return series, o
end

function M.bits_chart(points, opts) return chart.line(bits_series(points, opts)) end
function M.bits_chart_dot(points, opts) return chart.line_dot(bits_series(points, opts)) end

return M
