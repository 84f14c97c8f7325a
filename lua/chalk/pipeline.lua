-- pipeline.lua: dist.pipeline: GPipe, 1F1B and interleaved 1F1B schedules, timed and checked, run on workers.
--
--   s = dist.pipeline{stages = p, microbatches = m, schedule = "gpipe"|"1f1b"|"interleaved", chunks = v}
--   s.steps     time steps with unit F and B (a chunk's F or B takes 1/v of a step)
--   s.bubble    idle fraction of the p x steps grid;  s.ratio  idle time / compute time
--   s.inflight  per stage (1-based), the most micro-batches (chunks: micro-batch-chunks) whose
--               activations the stage holds at once
--   s.grid      cells {stage, t, kind = "F"|"B", mb, chunk, vs}: t is the start in ticks of 1/v step
--   s.order     per stage, its ops in the order it runs them
--   s:check()   re-verifies the grid (every dependency, one op per stage at a time, each op once)
--   s:execute(world, o)  runs this rank's ops for real: F receives from the previous virtual stage,
--               B from the next, with world:send / world:recv (see below)
--
-- Dependencies, for virtual stage vs = (chunk - 1) p + stage (V = p v of them) and micro-batch i:
-- F(vs, i) after F(vs - 1, i) ends (it needs the activation); B(vs, i) after F(vs, i) ends and,
-- unless vs = V, after B(vs + 1, i) ends (it needs the gradient). The times come from running each
-- stage's order as early as its dependencies allow; check() verifies them independently and raises,
-- naming the stage, op and step, on any cell that runs before what it needs. A schedule that reports
-- fewer steps than 2(m + p - 1) for GPipe or 1F1B is breaking one.
local M = {}
local Schedule = {}
Schedule.__index = Schedule

local function op(kind, mb, chunk) return {kind = kind, mb = mb, chunk = chunk or 1} end

-- The order each stage runs its ops in.
local function orders(p, m, kind, v)
  local ord = {}
  for s = 1, p do
    local o = {}
    if kind == "gpipe" then -- all forwards, then all backwards
      for i = 1, m do o[#o + 1] = op("F", i) end
      for i = 1, m do o[#o + 1] = op("B", i) end
    elseif kind == "1f1b" then -- p - s forwards to fill the pipe, then one F one B, then the rest of the Bs
      local warm = math.min(p - s, m)
      for i = 1, warm do o[#o + 1] = op("F", i) end
      local f, b = warm, 0
      while b < m do
        if f < m then f = f + 1; o[#o + 1] = op("F", f) end
        b = b + 1; o[#o + 1] = op("B", b)
      end
    else -- interleaved (Megatron): micro-batches in groups of p, chunks in turn; warm-up 2(p - s) + (v - 1) p
      local total = m * v
      local function fwd(k) return op("F", (k // (p * v)) * p + k % p + 1, (k // p) % v + 1) end
      local function bwd(k) return op("B", (k // (p * v)) * p + k % p + 1, v - (k // p) % v) end
      local warm = math.min((p - s) * 2 + (v - 1) * p, total)
      for k = 0, warm - 1 do o[#o + 1] = fwd(k) end
      local f, b = warm, 0
      while b < total do
        if f < total then o[#o + 1] = fwd(f); f = f + 1 end
        o[#o + 1] = bwd(b); b = b + 1
      end
    end
    ord[s] = o
  end
  return ord
end

local function key(kind, vs, mb) return kind .. vs .. ":" .. mb end

-- The cells an op of (vs, i) waits for: {kind, vs, mb, why}.
local function needs(c, V)
  if c.kind == "F" then
    return c.vs > 1 and {{"F", c.vs - 1, c.mb, "receiving its activation"}} or {}
  end
  local d = {{"F", c.vs, c.mb, "its own forward"}}
  if c.vs < V then d[2] = {"B", c.vs + 1, c.mb, "receiving its gradient"} end
  return d
end

-- Times each stage's order as early as dependencies allow (ticks of 1/v step, one tick per op).
local function place(p, m, v, ord)
  local V, done, grid, free, at = p * v, {}, {}, {}, {}
  for s = 1, p do free[s], at[s] = 0, 1 end
  local left = p * 2 * m * v
  while left > 0 do
    local moved = false
    for s = 1, p do
      local o = ord[s][at[s]]
      while o do
        local c = {stage = s, kind = o.kind, mb = o.mb, chunk = o.chunk, vs = (o.chunk - 1) * p + s}
        local t, ready = free[s], true
        for _, d in ipairs(needs(c, V)) do
          local e = done[key(d[1], d[2], d[3])]
          if not e then ready = false; break end
          t = math.max(t, e)
        end
        if not ready then break end
        c.t = t
        grid[#grid + 1], done[key(c.kind, c.vs, c.mb)] = c, t + 1
        free[s], at[s], left, moved = t + 1, at[s] + 1, left - 1, true
        o = ord[s][at[s]]
      end
    end
    if not moved then
      local w = {}
      for s = 1, p do
        local o = ord[s][at[s]]
        if o then w[#w + 1] = ("stage %d waits to run %s of micro-batch %d (chunk %d)"):format(s, o.kind, o.mb, o.chunk) end
      end
      error("dist.pipeline: the schedule deadlocks: " .. table.concat(w, "; "), 3)
    end
  end
  return grid
end

-- Verifies every cell of s.grid and computes steps, bubble, ratio and inflight from it.
function Schedule:check()
  local p, m, v = self.stages, self.microbatches, self.chunks
  local V, ends, busy, span = p * v, {}, {}, 0
  for _, c in ipairs(self.grid) do
    local k = key(c.kind, c.vs, c.mb)
    if ends[k] then error(("dist.pipeline: stage %d runs %s of micro-batch %d twice"):format(c.stage, c.kind, c.mb), 2) end
    ends[k] = c.t + 1
    local slot = c.stage .. "@" .. c.t
    if busy[slot] then error(("dist.pipeline: stage %d runs two ops at step %g"):format(c.stage, c.t / v + 1), 2) end
    busy[slot], span = true, math.max(span, c.t + 1)
  end
  if #self.grid ~= 2 * m * V then
    error(("dist.pipeline: %d ops in the grid, %d needed (F and B of %d micro-batches on %d virtual stages)")
      :format(#self.grid, 2 * m * V, m, V), 2)
  end
  for _, c in ipairs(self.grid) do
    for _, d in ipairs(needs(c, V)) do
      local e = ends[key(d[1], d[2], d[3])]
      if not e then error(("dist.pipeline: %s of micro-batch %d on stage %d has no %s"):format(c.kind, c.mb, c.stage, d[4]), 2) end
      if e > c.t then
        error(("dist.pipeline: the schedule breaks a dependency: stage %d runs %s of micro-batch %d (chunk %d) at "
          .. "step %g before %s (%s on virtual stage %d ends at step %g)"):format(c.stage, c.kind, c.mb, c.chunk,
          c.t / v + 1, d[4], d[1], d[2], e / v), 2)
      end
    end
  end
  self.ticks, self.steps = span, span / v
  self.bubble = 1 - (2 * m * V) / (p * span)          -- idle cells / all cells
  self.ratio = (p * span - 2 * m * V) / (2 * m * V)     -- idle time / compute time
  self.inflight = {}
  for s = 1, p do
    local cells = {}
    for _, c in ipairs(self.grid) do if c.stage == s then cells[#cells + 1] = c end end
    table.sort(cells, function(a, b) return a.t < b.t end)
    local n, most = 0, 0
    for _, c in ipairs(cells) do
      n = n + (c.kind == "F" and 1 or -1)
      most = math.max(most, n)
    end
    self.inflight[s] = most
  end
  return self
end

-- The activations stage s holds after each tick: {[t + 1] = count}, for the picture.
function Schedule:held(s)
  local delta = {}
  for _, c in ipairs(self.grid) do
    if c.stage == s then delta[c.t] = (delta[c.t] or 0) + (c.kind == "F" and 1 or -1) end
  end
  local out, n = {}, 0
  for t = 0, self.ticks - 1 do n = n + (delta[t] or 0); out[t + 1] = n end
  return out
end

function M.new(o)
  if type(o) ~= "table" then error("dist.pipeline: expects a table {stages=, microbatches=, schedule=}", 3) end
  local p, m, kind, v = o.stages, o.microbatches, o.schedule or "1f1b", o.chunks or 1
  for name, x in pairs{stages = p, microbatches = m, chunks = v} do
    if math.type(x) ~= "integer" or x < 1 then error("dist.pipeline: " .. name .. " must be a positive integer", 3) end
  end
  if kind ~= "gpipe" and kind ~= "1f1b" and kind ~= "interleaved" then
    error("dist.pipeline: schedule \"" .. tostring(kind) .. "\" (gpipe, 1f1b or interleaved)", 3)
  end
  if kind ~= "interleaved" then v = 1 end
  if kind == "interleaved" and m % p ~= 0 then
    error(("dist.pipeline: interleaved needs microbatches (%d) divisible by stages (%d)"):format(m, p), 3)
  end
  local s = setmetatable({stages = p, microbatches = m, schedule = kind, chunks = v}, Schedule)
  s.order = orders(p, m, kind, v)
  s.grid = place(p, m, v, s.order)
  return s:check()
end

-- Runs rank world.rank's ops (stage = rank) in schedule order, for real.
--   o.module(chunk) -> a callable x -> y: this stage's layers of chunk c
--   o.input(i), o.target(i): micro-batch i (first / last virtual stage); o.loss(y, target) -> scalar
--   o.shape(vs): the activation shape entering virtual stage vs (vs >= 2)
-- Each micro-batch's loss is scaled by 1/m, so the gradients are those of the whole batch's mean.
-- Returns the micro-batch losses (on the rank holding the last virtual stage) and the order run.
function Schedule:execute(world, o)
  local chalk = require "chalk"
  local p, m, V = self.stages, self.microbatches, self.stages * self.chunks
  if world.size ~= p then error(("pipeline:execute: %d stages on %d ranks"):format(p, world.size), 2) end
  local s, saved, losses, ran = world.rank, {}, {}, {}
  local function rank_of(vs) return (vs - 1) % p + 1 end
  local cells = {}
  for _, c in ipairs(self.grid) do if c.stage == s then cells[#cells + 1] = c end end
  table.sort(cells, function(a, b) return a.t < b.t end)
  for _, c in ipairs(cells) do
    local vs, i = c.vs, c.mb
    if c.kind == "F" then
      local x
      if vs == 1 then x = o.input(i)
      else
        x = chalk.zeros(table.unpack(o.shape(vs)))
        world:recv(x, rank_of(vs - 1))
        x:requires_grad_(true)
      end
      local y = o.module(c.chunk)(x)
      if vs == V then
        local loss = o.loss(y, o.target(i)) * (1 / m)
        losses[i], y = loss:item() * m, loss
      else
        world:send(y:detach(), rank_of(vs + 1))
      end
      saved[vs .. ":" .. i] = {x, y}
    else
      local x, y = table.unpack(saved[vs .. ":" .. i])
      saved[vs .. ":" .. i] = nil
      if vs == V then y:backward()
      else
        local g = chalk.zeros(table.unpack(y.shape))
        world:recv(g, rank_of(vs + 1))
        y:backward(g)
      end
      if vs > 1 then world:send(x.grad, rank_of(vs - 1)) end
    end
    ran[#ran + 1] = c.kind .. i .. (self.chunks > 1 and ("." .. c.chunk) or "")
  end
  return losses, ran
end

return M
