-- comm_charts.lua: the pictures of communication (viz.comm, lesson 10). The data (messages of a
-- profile, simulated times) is shaped here; every mark, colour and font is drawn by viz's chart
-- canvas (chalk.viz.canvas) with colours named from chalk.viz.colors.
--
--   viz.comm(prof, {kind = "lanes"})   per-rank compute and communication lanes on the clock
--   viz.comm(prof, {kind = "ring"})    the ring all_reduce of the profile, one frame per step, and a
--                                      summary with every frame (returns summary, {frame paths})
--   comm_charts.crossover(rows, opts)  time against message size per algorithm, log-log
--
-- Invariants: the ring frames are rebuilt from the message events alone (who sent which chunk to
-- whom at which step): a chunk's shade is how many ranks' contributions it holds (1 .. N), so the
-- reduce-scatter darkens one chunk per rank and the all-gather spreads the complete ones; every
-- picture has a legend and returns the path(s) viz wrote.
local chalk = require "chalk"

local M = {}

local function canvas()
  local viz = chalk.viz
  if not (viz and viz.canvas) then error("viz.comm: pictures need chalk.viz (the viz layer)", 3) end
  return viz.canvas()
end

local function human(b)
  local units = {"B", "KiB", "MiB", "GiB"}
  local k = 1
  while b >= 1024 and k < #units do b, k = b / 1024, k + 1 end
  return (b == math.floor(b) and "%d %s" or "%.1f %s"):format(b, units[k])
end
M.human = human

-- ---- the ring, frame by frame ----------------------------------------------------------------------

-- The messages of one ring all_reduce in a profile (the seq-th, default the first): {N, steps =
-- {[s] = {{from, to, chunk}, ...}}}.
function M.ring_messages(prof, seq)
  local steps, n, pick = {}, 0, seq
  for _, e in ipairs(prof:events()) do
    local c = e.comm
    if e.kind == "message" and c and c.coll == "all_reduce" and c.algo == "ring" and not c.recv then
      pick = pick or c.seq
      if c.seq == pick then
        n = c.size
        steps[c.step] = steps[c.step] or {}
        table.insert(steps[c.step], {from = c.rank, to = c.peer, chunk = c.chunk})
      end
    end
  end
  if n == 0 then error("viz.comm: the profile has no ring all_reduce (profile a world:all_reduce(t))", 3) end
  for _, s in pairs(steps) do table.sort(s, function(a, b) return a.from < b.from end) end
  return {n = n, steps = steps}
end

-- count[r][c] after each step: how many ranks' contributions rank r's chunk c holds.
local function ring_states(ring)
  local n, states = ring.n, {}
  local cur = {}
  for r = 1, n do
    cur[r] = {}
    for c = 1, n do cur[r][c] = 1 end
  end
  states[0] = cur
  for s = 1, 2 * (n - 1) do
    local nxt = {}
    for r = 1, n do nxt[r] = {table.unpack(cur[r])} end
    for _, m in ipairs(ring.steps[s] or {}) do
      if s <= n - 1 then nxt[m.to][m.chunk] = cur[m.to][m.chunk] + cur[m.from][m.chunk]
      else nxt[m.to][m.chunk] = cur[m.from][m.chunk] end
    end
    states[s], cur = nxt, nxt
  end
  return states
end

local CW, CH = 22, 18 -- a chunk cell

-- One frame at (ox, oy): ranks on a circle (rank 1 on top, clockwise), each with its N chunks.
local function draw_frame(c, ring, states, s, ox, oy, size)
  local n = ring.n
  local R = size * 0.32
  local cx, cy = ox + size / 2, oy + size / 2 - 10
  local pos = {}
  for r = 1, n do
    local a = math.pi / 2 - 2 * math.pi * (r - 1) / n
    pos[r] = {cx + R * math.cos(a), cy + R * math.sin(a)}
  end
  local phase = s == 0 and "start: every rank holds its own gradient"
    or s <= n - 1 and ("step %d of %d: reduce-scatter"):format(s, 2 * (n - 1))
    or ("step %d of %d: all-gather"):format(s, 2 * (n - 1))
  -- the frame's border as lines (viz draws lines under rectangles: a filled frame would hide the arrows)
  c:line({ox, ox + size, ox + size, ox, ox}, {oy, oy, oy + size, oy + size, oy}, "grid:ink", 1)
  c:text(ox + size / 2, oy + size - 16, phase, 11, "center", "title", true)
  -- arrows first, under the boxes
  for _, m in ipairs(ring.steps[s] or {}) do
    local a, b = pos[m.from], pos[m.to]
    local dx, dy = b[1] - a[1], b[2] - a[2]
    local len = math.sqrt(dx * dx + dy * dy)
    local ux, uy = dx / len, dy / len
    local x0, y0 = a[1] + ux * 40, a[2] + uy * 36
    local x1, y1 = b[1] - ux * 40, b[2] - uy * 36
    c:line({x0, x1}, {y0, y1}, "collective", 2)
    -- arrow head: two short strokes
    local hx, hy = -ux * 8, -uy * 8
    c:line({x1 + hx - uy * 5, x1, x1 + hx + uy * 5}, {y1 + hy + ux * 5, y1, y1 + hy - ux * 5}, "collective", 2)
    local mx, my = (x0 + x1) / 2 - uy * 12, (y0 + y1) / 2 + ux * 12
    c:text(mx, my - 4, "c" .. m.chunk, 10, "center", "collective:ink", true)
  end
  local st = states[s]
  for r = 1, n do
    local x0 = pos[r][1] - n * CW / 2
    local y0 = pos[r][2] - CH / 2
    c:text(pos[r][1], y0 + CH + 4, "rank " .. r, 10, "center", "text", true)
    -- chunk names under the cells
    for k = 1, n do
      local v = st[r][k] / n
      local sent = false
      for _, m in ipairs(ring.steps[s] or {}) do if m.to == r and m.chunk == k then sent = true end end
      c:rect(x0 + (k - 1) * CW, y0, CW, CH, ("heat:%.3f"):format(0.15 + 0.85 * v), sent and "current:ink" or "grid:ink")
      c:text(x0 + (k - 1) * CW + CW / 2, y0 + 5, st[r][k], 9, "center", v > 0.55 and "paper" or "text")
      c:text(x0 + (k - 1) * CW + CW / 2, y0 - 10, "c" .. k, 7, "center", "muted")
    end
  end
end

local function ring_legend(c, x, y, n)
  c:legend(x, y, {"heat:0.3", "heat_hi", "collective", "current:tint"},
    {"partial sum (number = ranks summed)", ("complete: all %d ranks"):format(n), "message: chunk c",
     "chunk just received"})
end

-- viz.comm(prof, {kind = "ring", file = "ring.png"}): frames ring_1.png .. ring_<2(N-1)>.png (beside
-- file) and the summary (every step in one picture). Returns the summary's path and the frames'.
function M.ring(prof, opts)
  opts = opts or {}
  local ring = M.ring_messages(prof, opts.seq)
  local states, n = ring_states(ring), ring.n
  local file = opts.file or "ring.png"
  local stem, ext = file:match("^(.-)(%.%w+)$")
  stem, ext = stem or file, ext or ".png"
  local frames = {}
  local size = 300
  for s = 1, 2 * (n - 1) do
    local c = canvas()
    draw_frame(c, ring, states, s, 0, 40, size)
    ring_legend(c, 4, 14, n)
    frames[s] = c:render({file = ("%s_%d%s"):format(stem, s, ext), format = opts.format}, "ring_1.png")
  end
  -- the summary: reduce-scatter on the top row, all-gather below
  local c = canvas()
  local cols = n - 1
  for s = 1, 2 * (n - 1) do
    local row, col = (s <= n - 1) and 1 or 0, (s - 1) % cols
    draw_frame(c, ring, states, s, col * (size + 8), 40 + row * (size + 8), size)
  end
  local W = cols * (size + 8) - 8
  c:text(W / 2, 40 + 2 * (size + 8) + 10, opts.title or
    ("ring all_reduce on %d ranks: %d steps, each rank sends one chunk of S/%d per step"):format(n, 2 * (n - 1), n),
    13, "center", "title", true)
  ring_legend(c, 4, 14, n)
  return c:render({file = file, format = opts.format}, "ring.png"), frames
end

-- ---- log-log crossover ------------------------------------------------------------------------------

local function log10(x) return math.log(x, 10) end

-- rows: {{bytes = S, times = {ring = t, tree = t, ...}}, ...}; opts.algos: the order of the lines.
function M.crossover(rows, opts)
  opts = opts or {}
  local algos = opts.algos or {"ring", "tree", "halving_doubling", "ps"}
  local colors = {"series1", "series2", "series3", "series4", "series5", "series6"}
  local W, H, L, B = 560, 340, 70, 50
  local xmin, xmax = log10(rows[1].bytes), log10(rows[#rows].bytes)
  local ymin, ymax = math.huge, -math.huge
  for _, r in ipairs(rows) do
    for _, a in ipairs(algos) do
      ymin, ymax = math.min(ymin, log10(r.times[a])), math.max(ymax, log10(r.times[a]))
    end
  end
  ymin, ymax = math.floor(ymin), math.ceil(ymax)
  local function px(b) return L + (log10(b) - xmin) / (xmax - xmin) * W end
  local function py(t) return B + (log10(t) - ymin) / (ymax - ymin) * H end
  local c = canvas()
  c:line({L, L + W, L + W, L, L}, {B, B, B + H, B + H, B}, "grid:ink", 1)
  for e = ymin, ymax do
    local y = py(10 ^ e)
    c:line({L, L + W}, {y, y}, "grid", 0.8)
    local lab = e >= 0 and ("%g s"):format(10 ^ e) or e >= -3 and ("%g ms"):format(10 ^ (e + 3))
      or e >= -6 and ("%g us"):format(10 ^ (e + 6)) or ("1e%d s"):format(e)
    c:text(L - 6, y - 3, lab, 9, "right", "text")
  end
  for e = 0, 30, 5 do
    local b = 2 ^ (e + 3)
    if b >= rows[1].bytes and b <= rows[#rows].bytes then
      local x = px(b)
      c:line({x, x}, {B, B + H}, "grid", 0.8)
      c:text(x, B - 14, human(b), 9, "center", "text")
    end
  end
  for i, a in ipairs(algos) do
    local xs, ys = {}, {}
    for k, r in ipairs(rows) do xs[k], ys[k] = px(r.bytes), py(r.times[a]) end
    c:line(xs, ys, colors[i], 2)
    for k = 1, #xs do c:point(xs[k], ys[k], colors[i], 4) end
  end
  c:text(L + W / 2, B - 32, "message size S per rank (log)", 10, "center", "text")
  c:text(L - 56, B + H + 12, "simulated time (log)", 10, "left", "text")
  c:text(L + W / 2, B + H + 24, opts.title or "all_reduce time against message size", 12, "center", "title", true)
  local labels = {}
  for i, a in ipairs(algos) do labels[i] = (opts.labels and opts.labels[a]) or a end
  local cols = {}
  for i = 1, #algos do cols[i] = colors[i] end
  c:legend(L + W + 14, B + H - 20, cols, labels)
  return c:render({file = opts.file or "crossover.png", format = opts.format}, "crossover.png")
end

-- ---- per-rank lanes: compute and communication on the clock ----------------------------------------

-- viz.comm(prof, {kind = "lanes", file = "lanes.png", from = t_us}): for each rank two lanes, ops
-- (forward, backward, optimizer-free compute by the op's phase) and collectives (DDP buckets named
-- in launch order), on the rank's clock (virtual on sim). Only events of dist workers (rank >= 1),
-- from t_us on (prof:events() time) when given.
function M.lanes(prof, opts)
  opts = opts or {}
  local evs, t0, t1, n = {}, math.huge, -math.huge, 0
  for _, e in ipairs(prof:events()) do
    if e.rank >= 1 and (e.kind == "op" or e.kind == "collective") and e.t1 > e.t0 and e.t0 >= (opts.from or -math.huge) then
      evs[#evs + 1] = e
      t0, t1, n = math.min(t0, e.t0), math.max(t1, e.t1), math.max(n, e.rank)
    end
  end
  if #evs == 0 then error("viz.comm: the profile has no timed events of dist workers (dist.run under chalk.profile)", 3) end
  local W, LH, L, top = 640, 18, 90, 30
  local H = n * (2 * LH + 14)
  local function px(t) return L + (t - t0) / (t1 - t0) * W end
  local c = canvas()
  c:rect(0, 0, L + W + 20, top + H + 60, "paper")
  for r = 1, n do
    local y = top + H - r * (2 * LH + 14)
    c:rect(L, y + LH, W, LH, "grid")
    c:rect(L, y, W, LH, "grid")
    c:text(L - 6, y + LH + 5, ("rank %d compute"):format(r), 9, "right", "text")
    c:text(L - 6, y + 5, "comm", 9, "right", "text")
    local k = 0
    for _, e in ipairs(evs) do
      if e.rank == r then
        if e.kind == "op" then
          c:rect(px(e.t0), y + LH + 1, px(e.t1) - px(e.t0), LH - 2, e.backward and "backward" or "forward")
        else
          local x0, x1 = px(e.t0), px(e.t1)
          k = k + (e.name == "all_reduce" and 1 or 0)
          c:rect(x0, y + 1, x1 - x0, LH - 2, "collective", "collective:ink",
            ("%s %s #%d, %s"):format(e.name, e.comm.algo, e.comm.seq, human(e.bytes)))
          local lab = e.name ~= "all_reduce" and e.name or x1 - x0 > 50 and ("bucket %d"):format(k) or tostring(k)
          if x1 - x0 > 6 * #lab then c:text((x0 + x1) / 2, y + 5, lab, 8, "center", "paper") end
        end
      end
    end
  end
  local span = t1 - t0
  for k = 0, 4 do
    local t = t0 + span * k / 4
    c:text(px(t), top - 14, ("%.2f ms"):format((t - t0) / 1e3), 9, "center", "text")
  end
  c:text(L + W / 2, top + H + 30, opts.title or "compute and communication per rank (virtual clock)", 12, "center",
    "title", true)
  c:legend(L, top + H + 8, {"forward", "backward", "collective"},
    {"forward ops", "backward ops", "all_reduce of a gradient bucket, in launch order"})
  return c:render({file = opts.file or "lanes.png", format = opts.format}, "lanes.png")
end

-- viz.comm(prof, opts): kind "lanes" (default) or "ring".
function M.comm(prof, opts)
  opts = opts or {}
  if opts.kind == "ring" then return M.ring(prof, opts) end
  if opts.kind and opts.kind ~= "lanes" then error("viz.comm: kind \"" .. tostring(opts.kind) .. "\" (lanes or ring)", 2) end
  return M.lanes(prof, opts)
end

return M
