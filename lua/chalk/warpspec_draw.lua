-- warpspec_draw.lua: lesson 19's pictures on viz's canvas (colours from chalk.viz.colors):
--   warpspec.timeline(run, {file =, title =, slices = 16, first = 1})  one lane per warp role and
--       per ring slot: the producer issuing (series1), a slice in flight in its slot (series1:tint),
--       a slot being read (series2:tint), the consumers computing (series2); grey: idle
--   warpspec.bars(rows, {file =, title =, unit = "us"})   horizontal bars, rows {{label, value [, color]}}
--   warpspec.plot_stages(points, {file =, title =})   overlap against ring slots: points
--       {{stages =, sim =, law = [, gpu =]}}
local chalk = require "chalk"

local M = {}

local function fmt(v)
  if v >= 100 then return ("%.0f"):format(v) end
  if v >= 10 then return ("%.1f"):format(v) end
  return ("%.2f"):format(v)
end

function M.timeline(run, o)
  o = o or {}
  if type(run) ~= "table" or not run.slices then error("warpspec.timeline: expects a run (warpspec.simulate or from_stamps)", 2) end
  local first = o.first or 1
  local last = math.min(#run.slices, first + (o.slices or 16) - 1)
  local t0, t1 = math.huge, -math.huge
  for i = first, last do
    t0, t1 = math.min(t0, run.slices[i].issue0), math.max(t1, run.slices[i].done)
  end
  local S = run.stages or 1
  local lanes = {}
  lanes[1] = {name = run.roles[1].name, role = run.roles[1]}
  for s = 1, S do lanes[#lanes + 1] = {name = ("ring slot %d"):format(s), slot = s} end
  for r = 2, #run.roles do lanes[#lanes + 1] = {name = run.roles[r].name, role = run.roles[r]} end
  local L, W, LH, B = 130, 760, 18, 50
  local H = B + #lanes * LH + 70
  local x = function(t) return L + (t - t0) / (t1 - t0) * W end
  local c = chalk.viz.canvas()
  for k, lane in ipairs(lanes) do
    local y = B + (#lanes - k) * LH
    c:rect(L, y + 2, W, LH - 4, "grid", "grid:ink")
    c:text(L - 6, y + 5, lane.name, 9, "right", "text")
    for i = first, last do
      local s = run.slices[i]
      if lane.role then
        local b = lane.role.busy[i]
        local col = lane.role.kind == "issue" and "series1" or "series2"
        local x0, x1 = x(b[1]), math.max(x(b[2]), x(b[1]) + 1)
        c:rect(x0, y + 2, x1 - x0, LH - 4, col, col .. ":ink", ("slice %d: %g to %g"):format(i, b[1], b[2]))
        if x1 - x0 >= 14 then c:text((x0 + x1) / 2, y + 5, tostring(i), 7, "center", "paper") end
      elseif (i - 1) % S + 1 == lane.slot then
        local xa, xb, xc = x(s.issue0), x(s.start), x(s.done)
        c:rect(xa, y + 2, math.max(xb - xa, 1), LH - 4, "series1:tint", "series1:ink", ("slice %d in flight"):format(i))
        c:rect(xb, y + 2, math.max(xc - xb, 1), LH - 4, "series2:tint", "series2:ink", ("slice %d being read"):format(i))
        if xc - xa >= 14 then c:text((xa + xc) / 2, y + 5, tostring(i), 7, "center", "text") end
      end
    end
  end
  -- the time axis: 5 ticks
  for k = 0, 4 do
    local t = t0 + k * (t1 - t0) / 4
    c:line({x(t), x(t)}, {B - 4, B}, "text", 0.8)
    c:text(x(t), B - 16, fmt(t - t0), 8, "center", "text")
  end
  c:text(L + W / 2, B - 32, ("time (%s) from slice %d's issue"):format(run.unit or "time units", first), 9, "center", "text")
  local top = B + #lanes * LH
  c:text(L + W / 2, top + 44, o.title or "warp-specialized pipeline", 12, "center", "title", true)
  c:text(L + W / 2, top + 28, ("slices %d-%d of %d; over the whole run: overlap %.3f, consumers busy %.3f")
    :format(first, last, #run.slices, run.overlap, run.utilization), 9, "center", "muted")
  c:legend(L, top + 6, {"series1", "series1:tint", "series2:tint", "series2", "grid"},
    {"producer issues copies", "slice in flight", "slot being read", "consumers compute", "idle / waiting"})
  return c:render(o, "warpspec_timeline.png")
end

function M.bars(rows, o)
  o = o or {}
  if type(rows) ~= "table" or #rows == 0 then error("warpspec.bars: expects {{label, value [, colour]}, ...}", 2) end
  local L, W, BH, B = 230, 480, 22, 30
  local H = B + #rows * BH + 50
  local top = 0
  for _, r in ipairs(rows) do top = math.max(top, r[2]) end
  local c = chalk.viz.canvas()
  for k, r in ipairs(rows) do
    local y = B + (#rows - k) * BH
    local w = top > 0 and r[2] / top * W or 0
    local col = r[3] or ("series%d"):format((k - 1) % 6 + 1)
    c:rect(L, y + 3, math.max(w, 1), BH - 6, col, col .. ":ink", r[1])
    c:text(L - 6, y + 7, r[1], 9, "right", "text")
    c:text(L + w + 4, y + 7, fmt(r[2]) .. " " .. (o.unit or "us"), 9, "left", "title")
  end
  c:rect(L, B, 1, #rows * BH, "text")
  c:text(L + W / 2, H - 18, o.title or "launch overhead", 12, "center", "title", true)
  if o.note then c:text(L + W / 2, B - 18, o.note, 8, "center", "muted") end
  return c:render(o, "warpspec_bars.png")
end

function M.plot_stages(points, o)
  o = o or {}
  local L, W, B, H = 60, 460, 50, 300
  local smax = 1
  for _, p in ipairs(points) do smax = math.max(smax, p.stages) end
  local px = function(s) return L + (s - 1) / math.max(smax - 1, 1) * W end
  local py = function(v) return B + v * (H - B - 60) end
  local c = chalk.viz.canvas()
  for k = 0, 4 do
    local v = k / 4
    c:line({L, L + W}, {py(v), py(v)}, "grid", 0.6)
    c:text(L - 6, py(v) - 3, ("%.2f"):format(v), 8, "right", "text")
  end
  local xs, law, sim = {}, {}, {}
  for _, p in ipairs(points) do
    xs[#xs + 1], law[#law + 1], sim[#sim + 1] = px(p.stages), py(p.law), py(p.sim)
    c:text(px(p.stages), B - 14, tostring(p.stages), 8, "center", "text")
  end
  c:line(xs, law, "series1", 1.5, true)
  c:line(xs, sim, "series2", 1.5)
  local colors, labels = {"series1", "series2"}, {"law (steady state)", "simulated"}
  for _, p in ipairs(points) do
    c:point(px(p.stages), py(p.sim), "series2", 5)
    if p.gpu then c:point(px(p.stages), py(p.gpu), "series3", 7) end
  end
  if points[1] and points[1].gpu then colors[3], labels[3] = "series3", o.gpu_label or "GPU (clock64 stamps)" end
  c:text(L + W / 2, B - 30, "ring slots (stages)", 9, "center", "text")
  c:text(L + W / 2, H - 20, o.title or "overlap of producer and consumers vs stages", 12, "center", "title", true)
  c:legend(L, H - 48, colors, labels)
  return c:render(o, "warpspec_stages.png")
end

return M
