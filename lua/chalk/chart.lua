-- chart.lua: two pictures the first lessons need that are not graphs or profiles: a line chart
-- (loss curves) and a tensor's storage with views over it highlighted. The data is shaped here;
-- every mark, colour and font is drawn by viz's one chart canvas (chalk.viz.canvas), so it comes
-- out like every other chalk picture, with colours from chalk.viz.colors.
--
--   chart = require "chalk.chart"
--   chart.line(losses, {title = "training loss", xlabel = "step", file = "loss.png"})
--   chart.storage({x = x, ["x.T"] = x.T}, {file = "views.png"})
--
-- Invariants: the DOT text is a pure function of the inputs (chart.line_dot, chart.storage_dot
-- return it, for tests); a relative file name lands in chalk.out_dir like viz's pictures; every
-- function returns the path it wrote.
local chalk = require "chalk"

local M = {}

local SERIES = { "series1", "series2", "series3", "series4", "series5", "series6" }

local function fmt(v)
  if v == math.floor(v) and math.abs(v) < 1e15 then return ("%d"):format(v) end
  local s = ("%.4g"):format(v)
  return s
end

local function canvas()
  local viz = chalk.viz
  if not (viz and viz.canvas) then error("chart: pictures need chalk.viz (the viz layer)", 3) end
  return viz.canvas()
end

-- Defines mod.NAME_dot(args..., opts) (the chart as DOT text) and mod.NAME(args..., opts) (the chart
-- rendered, to opts.file or `file`) from build(args..., opts), which returns a canvas with :dot() and
-- :render(opts, file); nargs is how many arguments come before opts (build always gets a table:
-- nil opts are {}).
function M.export(mod, name, nargs, build, file)
  local function canvas_of(...)
    local args = table.pack(...)
    args[nargs + 1] = args[nargs + 1] or {}
    return build(table.unpack(args, 1, nargs + 1)), args[nargs + 1]
  end
  mod[name .. "_dot"] = function(...) return (canvas_of(...)):dot() end
  mod[name] = function(...)
    local c, opts = canvas_of(...)
    return c:render(opts, file)
  end
end

-- ---- line charts ------------------------------------------------------------------------------

-- A round tick step (1, 2 or 5 x 10^k) giving about n ticks over range (cluster_charts uses it).
function M.nice_step(range, n)
  if range <= 0 then return 1 end
  local raw = range / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local r = raw / mag
  local step = r < 1.5 and 1 or r < 3 and 2 or r < 7 and 5 or 10
  return step * mag
end
local nice_step = M.nice_step

-- Averages ys into at most n bins (keeps the shape of a long, noisy curve readable).
local function binned(xs, ys, n)
  if #ys <= n then return xs, ys end
  local bx, by = {}, {}
  local per = #ys / n
  for b = 1, n do
    local lo, hi = math.floor((b - 1) * per) + 1, math.floor(b * per)
    local sx, sy = 0, 0
    for i = lo, hi do sx, sy = sx + xs[i], sy + ys[i] end
    bx[b], by[b] = sx / (hi - lo + 1), sy / (hi - lo + 1)
  end
  return bx, by
end

-- series: a list of numbers, or a table {name = list, ...} / list of {name=, y=, x=} for several
-- lines. opts: title, xlabel, ylabel, width, height (points), logy, points (mark each point),
-- labels (a list of texts, one per point of the first line, written beside the points).
local function line_canvas(series, opts)
  local lines = {}
  if type(series[1]) == "number" then
    lines[1] = { name = opts.name, y = series }
  elseif type(series[1]) == "table" then
    lines = series
  else
    local names = {}
    for k in pairs(series) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do lines[#lines + 1] = { name = k, y = series[k] } end
  end
  local W, H = opts.width or 560, opts.height or 300
  local L, B, R, T = 64, 52, 16, opts.title and 72 or 44
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for _, l in ipairs(lines) do
    l.x = l.x or {}
    for i = 1, #l.y do
      l.x[i] = l.x[i] or i
      xmin, xmax = math.min(xmin, l.x[i]), math.max(xmax, l.x[i])
      ymin, ymax = math.min(ymin, l.y[i]), math.max(ymax, l.y[i])
    end
    l.bx, l.by = binned(l.x, l.y, 300)
  end
  if xmin == math.huge then xmin, xmax, ymin, ymax = 0, 1, 0, 1 end
  if opts.ymin then ymin = opts.ymin end
  if xmax == xmin then xmax = xmin + 1 end
  if ymax == ymin then ymax = ymin + 1 end
  local ystep = nice_step(ymax - ymin, 5)
  ymin, ymax = math.floor(ymin / ystep) * ystep, math.ceil(ymax / ystep) * ystep
  local xstep = nice_step(xmax - xmin, 6)
  local function px(x) return L + (x - xmin) / (xmax - xmin) * (W - L - R) end
  local function py(y) return B + (y - ymin) / (ymax - ymin) * (H - B - T) end
  local c = canvas()
  -- grid and axes
  local y = ymin
  while y <= ymax + ystep / 2 do
    c:rect(L, py(y) - 0.25, W - L - R, 0.5, "grid")
    c:text(L - 6, py(y), fmt(y), 12, "right")
    y = y + ystep
  end
  local x = math.ceil(xmin / xstep) * xstep
  while x <= xmax do
    c:rect(px(x) - 0.25, B, 0.5, H - B - T, "grid")
    c:text(px(x), B - 14, fmt(x), 12, "center")
    x = x + xstep
  end
  c:rect(L, B, W - L - R, 1, "text")
  c:rect(L, B, 1, H - B - T, "text")
  if opts.title then c:text(W / 2, H - 16, opts.title, 15, "center", "title") end
  c:text((L + W - R) / 2, 14, opts.xlabel or "step", 12, "center")
  if opts.ylabel then c:text(6, H - T + 12, opts.ylabel, 12, "left") end
  -- the lines, and a legend naming each (its colour is the k-th series of viz.colors)
  local names, colors = {}, {}
  for li, l in ipairs(lines) do
    local color = SERIES[(li - 1) % #SERIES + 1]
    local xs, ys = {}, {}
    for i = 1, #l.bx do xs[i], ys[i] = px(l.bx[i]), py(l.by[i]) end
    c:line(xs, ys, color, 1.6)
    if opts.points or opts.labels then
      for i = 1, #l.y do c:rect(px(l.x[i]) - 3.5, py(l.y[i]) - 3.5, 7, 7, color) end
    end
    if li == 1 and opts.labels then
      for i, t in ipairs(opts.labels) do
        if l.y[i] then
          local right = px(l.x[i]) > (L + W - R) / 2
          c:text(px(l.x[i]) + (right and -8 or 8), py(l.y[i]) + (right and 22 or 12), t, 12, right and "right" or "left", "title")
        end
      end
    end
    colors[li], names[li] = color, l.name or opts.name or (#lines > 1 and ("series " .. li) or opts.ylabel or "value")
  end
  c:legend(opts.ylabel and L + 10 + 7 * #opts.ylabel or L, H - T + 12, colors, names, 12)
  return c
end

M.export(M, "line", 1, line_canvas, "line.png")

-- ---- storages and views -----------------------------------------------------------------------

-- views: a tensor, or a list of {name, tensor} pairs / a table name -> tensor; every tensor must
-- view the same storage. One row shows the storage (offsets and values); each view's row marks
-- the cells it reads with the index of the element that reads it, beside its shape, stride and
-- offset.
local function storage_canvas(views, opts)
  local list = {}
  if chalk.is_tensor(views) then
    list[1] = { opts.name or views.name or "x", views }
  elseif views[1] then
    list = views
  else
    local names = {}
    for k in pairs(views) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do list[#list + 1] = { k, views[k] } end
  end
  local info = chalk.storage_info(list[1][2], opts.max_cells or 64)
  if not info.values then
    error(("chart.storage: the storage holds %d elements; pictures show at most %d"):format(info.size,
      opts.max_cells or 64), 2)
  end
  -- shape the rows: for each view, the labels of the elements that read each storage cell
  local rows = {}
  for vi, pair in ipairs(list) do
    local name, t = pair[1], pair[2]
    local ti = chalk.storage_info(t, 0)
    if ti.id ~= info.id then
      error(("chart.storage: %s does not view the same storage as %s"):format(name, list[1][1]), 2)
    end
    local shape, stride = t.shape, t:stride()
    local cells = {}
    -- walk every element of the view (row-major), 1-based indices as users write them
    local n = t:numel()
    if n > 4 * info.size + 64 then error("chart.storage: view " .. name .. " is too large to draw", 2) end
    local idx = {}
    for d = 1, #shape do idx[d] = 1 end
    for _ = 1, n do
      local off = ti.offset
      for d = 1, #shape do off = off + (idx[d] - 1) * stride[d] end
      local c = cells[off] or {}
      c[#c + 1] = #shape == 0 and "()" or table.concat(idx, ",")
      cells[off] = c
      for d = #shape, 1, -1 do
        idx[d] = idx[d] + 1
        if idx[d] <= shape[d] then break end
        idx[d] = 1
      end
    end
    rows[vi] = { name = name, cells = cells, color = SERIES[(vi - 1) % #SERIES + 1],
      sub = ("shape {%s} stride {%s} offset %d"):format(table.concat(shape, ","), table.concat(stride, ","), ti.offset) }
  end
  -- draw: a column of row names, then one column per storage cell
  local c = canvas()
  local lines = 1
  for _, r in ipairs(rows) do
    for i = 0, info.size - 1 do
      local n = r.cells[i] and #r.cells[i] or 0
      lines = math.max(lines, n <= 3 and n or 2)
    end
  end
  local LW = 60
  for _, r in ipairs(rows) do LW = math.max(LW, #r.name * 11 * 0.62, #r.sub * 9 * 0.6) end
  local CW, RH = 40, math.max(24, 12 * lines + 8)
  local L = LW + 20
  local nrows = #rows
  local legend_y, storage_y = 14, 34 + nrows * (RH + 4)
  local H = storage_y + 26 + 18 + 30
  local title = opts.title or ("one storage of %d elements (%d bytes each)"):format(info.size, info.itemsize)
  c:text(L + info.size * CW / 2, H - 12, title, 12, "center", "title", true)
  c:text(L - 8, storage_y + 24 + 10, "offset", 9, "right", "muted")
  c:text(L - 8, storage_y + 12, "storage", 11, "right", "title", true)
  for i = 0, info.size - 1 do
    local x = L + i * CW
    c:text(x + CW / 2, storage_y + 24 + 10, tostring(i), 9, "center", "muted")
    c:rect(x, storage_y, CW - 2, 24, "grid:tint", "text")
    c:text(x + CW / 2, storage_y + 12, fmt(info.values[i + 1]), 10, "center", "title", true)
  end
  local names, colors = { "storage" }, { "grid:tint" }
  for vi, r in ipairs(rows) do
    local y = storage_y - 4 - vi * (RH + 4)
    c:text(L - 8, y + RH / 2 + 6, r.name, 11, "right", "title", true)
    c:text(L - 8, y + RH / 2 - 7, r.sub, 9, "right")
    for i = 0, info.size - 1 do
      local x, cell = L + i * CW, r.cells[i]
      if cell then
        c:rect(x, y, CW - 2, RH, r.color .. ":tint", r.color .. ":ink")
        local shown = #cell <= 3 and cell or { cell[1], "... x" .. #cell }
        for k, label in ipairs(shown) do
          c:text(x + CW / 2, y + RH / 2 + (#shown + 1 - 2 * k) * 6, label, 9, "center")
        end
      else
        c:rect(x, y, CW - 2, RH, "paper", "grid")
      end
    end
    names[#names + 1], colors[#colors + 1] = ("cells %s reads (its element index)"):format(r.name), r.color .. ":tint"
  end
  c:legend(L, legend_y, colors, names)
  return c
end

M.export(M, "storage", 1, storage_canvas, "storage.png")

return M
