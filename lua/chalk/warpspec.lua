-- warpspec.lua: chalk.warpspec, lesson 19's models of a warp-specialized pipeline: the simulation
-- on the discrete-event engine (core/sim/des.h, chalk.sim_des), the same "run" read from the GPU
-- kernel's clock64 stamps (chalk.cuda.ws_gemm{stamps = true}), the overlap of producer and
-- consumer, and the steady-state law. Pictures: lua/chalk/warpspec_draw.lua (timeline, bars).
--
--   run = warpspec.simulate{stages =, load =, compute =, issue = 0, tiles = 64}
--   run = warpspec.from_stamps(stamps)        stamps: the [9, nk, 3] i64 tensor of ws_gemm
--   run.span  run.overlap  run.utilization (consumers busy)  run.producer_busy
--   run.period (steady state, simulation only)
--   warpspec.law{stages =, load =, compute =, issue =} -> {period =, utilization =, overlap =}
--
-- A run: run.slices[i] = {issue0, issue1, start, done} (the producer issues slice i from issue0 to
-- issue1; the consumers compute it from start to done), run.roles = {{name =, busy = {{t0, t1}...}}}
-- for the picture. A slice is "in flight" from issue0 until the consumers start on it; the overlap
-- is the fraction of the span during which the consumers compute while the producer has a slice
-- in flight: 0 when one slot makes them take turns, up to the consumers' busy fraction.
local des_new = require("chalk.sim_des").new

local M = {}

-- Total length of the union of intervals {{a, b}, ...}, and of its intersection with another union.
local function union(iv)
  table.sort(iv, function(x, y) return x[1] < y[1] end)
  local out = {}
  for _, x in ipairs(iv) do
    local last = out[#out]
    if last and x[1] <= last[2] then last[2] = math.max(last[2], x[2])
    elseif x[2] > x[1] then out[#out + 1] = {x[1], x[2]} end
  end
  return out
end
local function length(u)
  local s = 0
  for _, x in ipairs(u) do s = s + x[2] - x[1] end
  return s
end
local function intersect(a, b)
  local s, i, j = 0, 1, 1
  while i <= #a and j <= #b do
    local lo, hi = math.max(a[i][1], b[j][1]), math.min(a[i][2], b[j][2])
    if hi > lo then s = s + hi - lo end
    if a[i][2] < b[j][2] then i = i + 1 else j = j + 1 end
  end
  return s
end

-- Fills run.span, run.overlap, run.utilization from run.slices.
local function measure(run)
  local flight, comp, t0, t1 = {}, {}, math.huge, -math.huge
  for _, s in ipairs(run.slices) do
    flight[#flight + 1] = {s.issue0, s.start}
    comp[#comp + 1] = {s.start, s.done}
    t0, t1 = math.min(t0, s.issue0), math.max(t1, s.done)
  end
  for _, r in ipairs(run.roles) do
    for _, b in ipairs(r.busy) do t0, t1 = math.min(t0, b[1]), math.max(t1, b[2]) end
  end
  local C = union(comp)
  run.t0, run.span = t0, t1 - t0
  run.utilization = length(C) / run.span
  local P = {}
  for i, b in ipairs(run.roles[1].busy) do P[i] = {b[1], b[2]} end
  run.producer_busy = length(union(P)) / run.span
  run.overlap = intersect(union(flight), C) / run.span
  return run
end
M.measure = measure

-- The steady state: each slot cycles through issue, load and compute, so a slice takes at least
-- (issue + load + compute) / stages; the consumers need compute per slice, the producer issue.
function M.law(o)
  local S, L, c, p = o.stages, o.load, o.compute, o.issue or 0
  local period = math.max(c, p, (p + L + c) / S)
  local u = c / period
  return {period = period, utilization = u, overlap = S >= 2 and u or 0}
end

local function check_params(o)
  if type(o) ~= "table" then error("warpspec.simulate: expects {stages =, load =, compute =, issue =, tiles =}", 3) end
  local S, T = o.stages, o.tiles or 64
  if math.type(S) ~= "integer" or S < 1 then error(("warpspec.simulate: stages = %s; a whole number >= 1"):format(tostring(S)), 3) end
  if math.type(T) ~= "integer" or T < 1 then error(("warpspec.simulate: tiles = %s; a whole number >= 1"):format(tostring(T)), 3) end
  for _, k in ipairs {"load", "compute", "issue"} do
    local v = o[k] or (k == "issue" and 0)
    if type(v) ~= "number" or v < 0 or v ~= v then error(("warpspec.simulate: %s = %s; a time >= 0"):format(k, tostring(o[k])), 3) end
  end
  return S, T, o.load, o.compute, o.issue or 0
end

-- The pipeline on the discrete-event engine: resource 1 is the producer warp, 2 the consumers.
-- Slice i may be issued once slice i - S has been computed (its slot is empty); it lands `load`
-- after its issue ends; the consumers take the slices in order as they land.
function M.simulate(o)
  local S, T, L, c, p = check_params(o)
  local d = des_new(2)
  local ISSUED, LANDED, DONE = 1, 2, 3
  local sl, nissue, ncons, pbusy, cbusy = {}, 1, 1, false, false
  for i = 1, T do sl[i] = {} end
  local function try_issue()
    if pbusy or nissue > T or (nissue > S and not sl[nissue - S].done) then return end
    pbusy = true
    d:acquire(2 * (nissue - 1), {1})
    sl[nissue].issue0 = d:now()
    d:at(d:now() + p, ISSUED, nissue)
  end
  local function try_consume()
    if cbusy or ncons > T or not sl[ncons].landed then return end
    cbusy = true
    d:acquire(2 * (ncons - 1) + 1, {2})
    sl[ncons].start = d:now()
    d:at(d:now() + c, DONE, ncons)
  end
  try_issue()
  while true do
    local t, kind, i = d:pop()
    if not t then break end
    if kind == ISSUED then
      d:release(2 * (i - 1), {1})
      pbusy, sl[i].issue1, nissue = false, t, nissue + 1
      d:at(t + L, LANDED, i)
      try_issue()
    elseif kind == LANDED then
      sl[i].landed = t
      try_consume()
    else
      d:release(2 * (i - 1) + 1, {2})
      cbusy, sl[i].done, ncons = false, t, ncons + 1
      try_consume()
      try_issue()
    end
  end
  d:check()
  local prod, cons = {}, {}
  for i = 1, T do
    prod[i] = {sl[i].issue0, sl[i].issue1}
    cons[i] = {sl[i].start, sl[i].done}
  end
  local run = measure{slices = sl, stages = S, unit = "time units",
    roles = {{name = "producer", busy = prod, kind = "issue"}, {name = "consumers", busy = cons, kind = "compute"}}}
  -- the steady-state period: compute starts over the last half of the slices (whole rounds of S)
  local h = S * ((T // 2) // S)
  run.period = h >= 1 and (sl[T].start - sl[T - h].start) / h or nil
  run.params = {stages = S, load = L, compute = c, issue = p, tiles = T}
  return run
end

-- The run of block (0, 0) of chalk.cuda.ws_gemm from its stamps [9, nk, 3] (clock64 cycles).
function M.from_stamps(stamps, stages)
  local st = stamps:to("f64"):cpu():totable()
  local nk = #st[1]
  local sl, roles = {}, {{name = "producer (warp 0)", busy = {}, kind = "issue"}}
  for i = 1, nk do
    local pr = st[1][i]
    sl[i] = {issue0 = pr[2], issue1 = pr[3], start = math.huge, done = -math.huge}
    roles[1].busy[i] = {pr[2], pr[3]}
  end
  for w = 2, #st do
    local r = {name = ("consumer warp %d"):format(w - 1), busy = {}, kind = "compute"}
    for i = 1, nk do
      local x = st[w][i]
      r.busy[i] = {x[2], x[3]}
      sl[i].start, sl[i].done = math.min(sl[i].start, x[2]), math.max(sl[i].done, x[3])
    end
    roles[#roles + 1] = r
  end
  return measure{slices = sl, roles = roles, stages = stages, unit = "cycles"}
end

for k, v in pairs(require "chalk.warpspec_draw") do M[k] = v end
return M
