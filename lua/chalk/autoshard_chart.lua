-- autoshard_chart.lua: the pictures of dist.autoshard (lesson 21), on viz's canvas.
--
--   plan(plan, dims, {file=})    the chain left to right: a box per layer coloured by its sharding
--                                (replicate series1, column series2, row series3), the collectives the
--                                plan inserts drawn as nodes between and under the layers
--   times(rows, {file=})         predicted and simulated step time per batch size (log-log), the
--                                chosen plan's name at each point
local chalk = require "chalk"

local M = {}
local COLOR = {replicate = "series1", column = "series2", row = "series3"}

function M.plan(plan, dims, o)
  o = o or {}
  local c = chalk.viz.canvas()
  local K, BW, GAP = #plan.choice, 120, 150
  local W = 40 + K * (BW + GAP)
  for k = 1, K do
    local x = 40 + (k - 1) * (BW + GAP) + GAP / 2
    c:rect(x, 130, BW, 50, COLOR[plan.choice[k]] .. ":tint", COLOR[plan.choice[k]] .. ":ink")
    c:text(x + BW / 2, 160, ("linear %d: %dx%d"):format(k, dims[k], dims[k + 1]), 9, "center", "text", true)
    c:text(x + BW / 2, 142, plan.choice[k], 10, "center", "text")
    local fw, bw = 0, 0
    for _, m in ipairs(plan.comms) do
      if m.layer == k then
        local before = m.why:find("->") ~= nil        -- a change of layout, before the layer
        local y = m.phase == "forward" and 200 or 70
        local cx = before and x - GAP / 2 + 6 or x + 10
        if m.phase == "forward" then fw = fw + 1 else bw = bw + 1 end
        cx = cx + ((m.phase == "forward" and fw or bw) - 1) * 8
        c:rect(cx, y, BW - 12, 34, "collective:tint", "collective:ink", m.why)
        c:text(cx + (BW - 12) / 2, y + 20, m.coll, 9, "center", "text", true)
        c:text(cx + (BW - 12) / 2, y + 7, (m.phase == "forward" and "fwd " or "bwd ") .. m.why, 7, "center", "text")
      end
    end
    if k < K then c:line({x + BW, x + BW + GAP}, {155, 155}, "text", 1) end
  end
  c:text(20, 100, "backward", 9, "left", "muted")
  c:text(20, 238, "forward", 9, "left", "muted")
  c:text(W / 2, 20, o.title or "the chosen plan", 12, "center", "title", true)
  c:legend(40, 44, {"series1:tint", "series2:tint", "series3:tint", "collective:tint"},
    {"replicate (data parallel)", "column", "row", "collective inserted"})
  return c:render({file = o.file or "plan.png", format = o.format}, "plan.png")
end

function M.times(rows, o)
  o = o or {}
  local c = chalk.viz.canvas()
  local L, B, W, H = 80, 60, 520, 260
  local lx, ly = math.log(rows[1].batch, 10), math.log(rows[#rows].batch, 10)
  local tmin, tmax = math.huge, 0
  for _, r in ipairs(rows) do
    tmin, tmax = math.min(tmin, r.predicted, r.simulated), math.max(tmax, r.predicted, r.simulated)
  end
  local y0, y1 = math.floor(math.log(tmin, 10)), math.ceil(math.log(tmax, 10))
  local function px(b) return L + (math.log(b, 10) - lx) / (ly - lx) * W end
  local function py(t) return B + (math.log(t, 10) - y0) / (y1 - y0) * H end
  c:line({L, L + W, L + W, L, L}, {B, B, B + H, B + H, B}, "grid:ink", 1)
  for e = y0, y1 do
    c:line({L, L + W}, {py(10 ^ e), py(10 ^ e)}, "grid", 0.8)
    c:text(L - 6, py(10 ^ e) - 3, e >= -3 and ("%g ms"):format(10 ^ (e + 3)) or ("%g us"):format(10 ^ (e + 6)), 9, "right", "text")
  end
  local xp, yp, ys = {}, {}, {}
  for i, r in ipairs(rows) do
    xp[i], yp[i], ys[i] = px(r.batch), py(r.predicted), py(r.simulated)
    c:text(xp[i], B - 14, tostring(r.batch), 9, "center", "text")
    c:text(xp[i] - 6, yp[i] + 6, r.plan, 7, "right", COLOR[r.first] .. ":ink")
  end
  c:line(xp, yp, "series4", 2)
  c:line(xp, ys, "series5", 1.5, true)
  for i = 1, #rows do c:point(xp[i], yp[i], "series4", 5); c:point(xp[i], ys[i], "series5", 3) end
  c:text(L + W / 2, B - 32, "global batch (log)", 10, "center", "text")
  c:text(L - 60, B + H + 12, "step time (log)", 10, "left", "text")
  c:text(L + W / 2, B + H + 30, o.title or "predicted vs simulated step time of the chosen plan", 12, "center", "title", true)
  c:legend(L + W + 14, B + H - 20, {"series4", "series5"}, {"predicted (alpha-beta)", "simulated workers"})
  return c:render({file = o.file or "autoshard_times.png", format = o.format}, "autoshard_times.png")
end

return M
