-- chart.lua: two pictures the first lessons need that are not graphs or profiles: a line chart
-- (loss curves) and a tensor's storage with views over it highlighted. Each builds Graphviz DOT
-- text in Lua and hands it to viz's renderer, so it comes out like every other chalk picture.
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

local FONT = "DejaVu Sans"
local PALETTE = { "#fdd49e", "#c6dbef", "#c7e9c0", "#dadaeb", "#fcbba1", "#d9d9d9" }
local LINE = { "#2c7fb8", "#e6550d", "#31a354", "#756bb1" }

local function esc(s)
  return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;"))
end

local function fmt(v)
  if v == math.floor(v) and math.abs(v) < 1e15 then return ("%d"):format(v) end
  local s = ("%.4g"):format(v)
  return s
end

-- Writes dot to opts.file (default default_name) in opts.format (from the extension, else png)
-- through viz's renderer; returns the path.
local function render(dot, engine, opts, default_name)
  local viz = chalk.viz
  if not (viz and viz.render) then
    error("chart: pictures need chalk.viz (the viz layer) with viz.render", 3)
  end
  return viz.render(dot, { engine = engine, file = opts.file or default_name, format = opts.format })
end

-- ---- line charts ------------------------------------------------------------------------------

local function nice_step(range, n)
  if range <= 0 then return 1 end
  local raw = range / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local r = raw / mag
  local step = r < 1.5 and 1 or r < 3 and 2 or r < 7 and 5 or 10
  return step * mag
end

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
-- lines. opts: title, xlabel, ylabel, width, height (points), logy.
function M.line_dot(series, opts)
  opts = opts or {}
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
  local L, B, R, T = 64, 48, 16, opts.title and 34 or 12
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
  local out, id = {}, 0
  local function add(s) out[#out + 1] = s end
  local function node(attrs)
    id = id + 1
    add(("  n%d [%s];"):format(id, attrs))
    return "n" .. id
  end
  local function rect(x, y, w, h, color)
    return node(('pos="%.2f,%.2f!", width=%.4f, height=%.4f, fillcolor="%s"'):format(x + w / 2, y + h / 2,
      w / 72, h / 72, color))
  end
  local function text(x, y, s, size, anchor, color)
    local w = #s * size * 0.6
    local shift = anchor == "left" and w / 2 or anchor == "right" and -w / 2 or 0
    return node(('shape=plaintext, style="", fixedsize=false, margin=0, width=0, height=0, pos="%.2f,%.2f!", '
      .. 'fontsize=%.1f, fontcolor="%s", label=<%s>'):format(x + shift, y, size, color or "#333333", esc(s)))
  end
  add("graph chalk_chart {")
  add("  graph [bgcolor=white, pad=0.2, splines=false, outputorder=edgesfirst];")
  add(('  node [shape=box, style=filled, fixedsize=true, label="", penwidth=0, fontname="%s"];'):format(FONT))
  add("  edge [dir=none, penwidth=1.6];")
  -- grid and axes
  local y = ymin
  while y <= ymax + ystep / 2 do
    rect(L, py(y) - 0.25, W - L - R, 0.5, "#e5e5e5")
    text(L - 6, py(y), fmt(y), 9, "right")
    y = y + ystep
  end
  local x = math.ceil(xmin / xstep) * xstep
  while x <= xmax do
    rect(px(x) - 0.25, B, 0.5, H - B - T, "#eeeeee")
    text(px(x), B - 12, fmt(x), 9, "center")
    x = x + xstep
  end
  rect(L, B, W - L - R, 1, "#555555")
  rect(L, B, 1, H - B - T, "#555555")
  if opts.title then text(W / 2, H - 14, opts.title, 13, "center", "#111111") end
  text((L + W - R) / 2, 14, opts.xlabel or "step", 10, "center")
  if opts.ylabel then text(6, H - T + 8, opts.ylabel, 10, "left") end
  -- the lines: invisible point nodes joined by edges
  for li, l in ipairs(lines) do
    local color = LINE[(li - 1) % #LINE + 1]
    local prev
    for i = 1, #l.bx do
      local n = node(('shape=point, width=0.01, height=0.01, color="%s", pos="%.2f,%.2f!"'):format(color,
        px(l.bx[i]), py(l.by[i])))
      if prev then add(('  %s -- %s [color="%s"];'):format(prev, n, color)) end
      prev = n
    end
    if l.name and #lines > 1 then
      local ly = H - T - 12 - (li - 1) * 14
      rect(W - R - 150, ly - 1, 14, 3, color)
      text(W - R - 130, ly, l.name, 9, "left")
    end
  end
  add("}")
  return table.concat(out, "\n") .. "\n"
end

function M.line(series, opts)
  opts = opts or {}
  return render(M.line_dot(series, opts), "nop", opts, "line.png")
end

-- ---- storages and views -----------------------------------------------------------------------

-- views: a tensor, or a list of {name, tensor} pairs / a table name -> tensor; every tensor must
-- view the same storage. One row shows the storage (offsets and values); each view's row marks
-- the cells it reads with the index of the element that reads it, beside its shape, stride and
-- offset.
function M.storage_dot(views, opts)
  opts = opts or {}
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
  local out = {}
  local function add(s) out[#out + 1] = s end
  add("digraph chalk_storage {")
  add(('  graph [bgcolor=white, pad=0.2]; node [shape=plaintext, fontname="%s", fontsize=11];'):format(FONT))
  local title = opts.title or ("one storage of %d elements (%d bytes each)"):format(info.size, info.itemsize)
  add("  s [label=<")
  add('<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="5">')
  add(('<TR><TD COLSPAN="%d" BORDER="0"><B>%s</B></TD></TR>'):format(info.size + 1, esc(title)))
  local row = { '<TR><TD BORDER="0" ALIGN="RIGHT"><FONT COLOR="#777777">offset</FONT></TD>' }
  for i = 0, info.size - 1 do row[#row + 1] = ('<TD BORDER="0"><FONT COLOR="#777777">%d</FONT></TD>'):format(i) end
  add(table.concat(row) .. "</TR>")
  row = { '<TR><TD BORDER="0" ALIGN="RIGHT"><B>storage</B></TD>' }
  for i = 1, info.size do row[#row + 1] = ('<TD BGCOLOR="#f7f7f7"><B>%s</B></TD>'):format(fmt(info.values[i])) end
  add(table.concat(row) .. "</TR>")
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
    local color = PALETTE[(vi - 1) % #PALETTE + 1]
    row = { ('<TR><TD BORDER="0" ALIGN="RIGHT"><B>%s</B><BR/><FONT POINT-SIZE="9">shape {%s} stride {%s} offset %d</FONT></TD>')
      :format(esc(name), table.concat(shape, ","), table.concat(stride, ","), ti.offset) }
    for i = 0, info.size - 1 do
      local c = cells[i]
      if c then
        local label = #c <= 3 and table.concat(c, "<BR/>") or (c[1] .. "<BR/>... x" .. #c)
        row[#row + 1] = ('<TD BGCOLOR="%s"><FONT POINT-SIZE="9">%s</FONT></TD>'):format(color, label)
      else
        row[#row + 1] = '<TD COLOR="#dddddd"> </TD>'
      end
    end
    add(table.concat(row) .. "</TR>")
  end
  add("</TABLE>>];")
  add("}")
  return table.concat(out, "\n") .. "\n"
end

function M.storage(views, opts)
  opts = opts or {}
  return render(M.storage_dot(views, opts), "dot", opts, "storage.png")
end

return M
