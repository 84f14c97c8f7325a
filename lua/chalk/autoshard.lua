-- autoshard.lua: dist.autoshard, the sharding of an MLP chain chosen by exact dynamic programming.
--
--   plan = dist.autoshard(model_or_dims, {world = N, batch = b, alpha = a, bandwidth = B,
--                                         compute = R, memory = bytes per rank, bytes = 4})
--   plan.choice[k]   "replicate" | "column" | "row" for linear layer k
--   plan.time        predicted step time (s): compute + every collective of the plan
--   plan.memory      model state (16 bytes a parameter: lesson 11's mixed-precision Adam) and
--                    activations per rank
--   plan.comms       the collectives in order: {layer, phase = "forward"|"backward", coll, bytes, why}
--   dist.autoshard_brute(...)   the same search by trying all 3^K plans (tests)
--   dist.autoshard_simulate(plan, opts)   runs the plan's compute and collectives on N simulated
--                    workers (w:simulate on the sim link model; compute moves the clock) -> seconds
--
-- The model: layer k maps d[k] to d[k+1] features, batch b, 2 b d[k] d[k+1] FLOPs forward, twice
-- that backward, all split N ways whatever the choice. Activation layouts between layers: "batch"
-- (rows split: data parallel), "full" (every rank has all of it) and "split" (columns split).
--   replicate (data parallel): batch -> batch; backward all_reduce of the weight gradient (W bytes)
--   column (Megatron's first half): full -> split; backward all_reduce of the input gradient (f)
--   row (Megatron's second half): split -> full; forward all_reduce of the partial sums (g)
-- Changing layout between layers: batch or split -> full: all_gather forward; full -> batch or
-- split: a free slice forward, an all_gather of the gradient backward; batch <-> split: through
-- full. The input is full (every rank reads the batch); the output may end in any layout.
-- Ring costs (lesson 10): all_reduce 2(N-1) a + 2(N-1)/N S/B, all_gather (N-1) a + (N-1)/N S/B.
-- Memory per rank: 16 bytes per parameter held (all of W replicated, W/N sharded) plus the layer's
-- output activation held (b/N rows, or all b rows when full, or b x d/N when split).
-- The DP keeps, per layout after layer k, every plan that is not beaten on both time and memory
-- (a Pareto front), so the memory limit is honoured exactly; the answer is the fastest that fits.
local M = {}

local CHOICES = {"replicate", "column", "row"}
local NEED = {replicate = "batch", column = "full", row = "split"}
local GIVE = {replicate = "batch", column = "split", row = "full"}

local function costs(o)
  local N, a, B = o.world, o.alpha or 5e-6, o.bandwidth or 25e9
  local t = {}
  function t.all_reduce(S) return N == 1 and 0 or 2 * (N - 1) * a + 2 * (N - 1) / N * S / B end
  function t.all_gather(S) return N == 1 and 0 or (N - 1) * a + (N - 1) / N * S / B end
  return t
end

-- The collectives moving an activation of S bytes from layout `from` to `to` (forward, backward).
local function reshard(from, to, S)
  if from == to then return {} end
  local c = {}
  if from ~= "full" then c[#c + 1] = {"forward", "all_gather", S, from .. " -> full"} end
  if to ~= "full" then c[#c + 1] = {"backward", "all_gather", S, "gradient of full -> " .. to} end
  return c
end

local function layer_comms(choice, din, dout, o)
  local b, e = o.batch, o.bytes or 4
  if choice == "replicate" then return {{"backward", "all_reduce", din * dout * e, "weight gradient (DP)"}} end
  if choice == "column" then return {{"backward", "all_reduce", b * din * e, "f: input gradient"}} end
  return {{"forward", "all_reduce", b * dout * e, "g: partial sums"}}
end

local function layer_memory(choice, din, dout, o)
  local N, b, e = o.world, o.batch, o.bytes or 4
  local w = 16 * din * dout * (choice == "replicate" and 1 or 1 / N)
  local act = (choice == "row") and b * dout * e or b * dout * e / N
  return w + act
end

local function dims_of(model)
  if type(model) == "table" and model[1] and type(model[1]) == "number" then return model end
  local d = {}
  for _, p in ipairs(model:parameters()) do
    if #p.shape == 2 then
      if #d == 0 then d[1] = p.shape[2] end
      d[#d + 1] = p.shape[1]
    end
  end
  return d
end

-- The plan of given choices: time, memory and collectives (nil when a transition is impossible).
local function evaluate(d, choice, o)
  local ct, R = costs(o), o.compute or 1e12
  local plan = {choice = choice, comms = {}, time = 0, memory = 0, comm_time = 0}
  local layout = "full"
  for k = 1, #d - 1 do
    local S = o.batch * d[k] * (o.bytes or 4)
    for _, c in ipairs(reshard(layout, NEED[choice[k]], S)) do
      plan.comms[#plan.comms + 1] = {layer = k, phase = c[1], coll = c[2], bytes = c[3], why = c[4]}
    end
    for _, c in ipairs(layer_comms(choice[k], d[k], d[k + 1], o)) do
      plan.comms[#plan.comms + 1] = {layer = k, phase = c[1], coll = c[2], bytes = c[3], why = c[4]}
    end
    plan.memory = plan.memory + layer_memory(choice[k], d[k], d[k + 1], o)
    plan.time = plan.time + 6 * o.batch * d[k] * d[k + 1] / o.world / R
    layout = GIVE[choice[k]]
  end
  for _, c in ipairs(plan.comms) do plan.comm_time = plan.comm_time + ct[c.coll](c.bytes) end
  plan.time = plan.time + plan.comm_time
  plan.fits = not o.memory or plan.memory <= o.memory
  return plan
end

local function check(o)
  if type(o) ~= "table" then error("dist.autoshard(model, {world=, batch=, ...}): options missing", 4) end
  for _, k in ipairs{"world", "batch"} do
    if math.type(o[k]) ~= "integer" or o[k] < 1 then error("dist.autoshard: " .. k .. " must be a positive integer", 4) end
  end
end

-- Exact DP over (layer, layout) with a Pareto front of (time, memory) per layout.
function M.search(model, o)
  check(o)
  local d = dims_of(model)
  local ct, R = costs(o), o.compute or 1e12
  local front = {full = {{time = 0, memory = 0, choice = {}}}}
  for k = 1, #d - 1 do
    local S = o.batch * d[k] * (o.bytes or 4)
    local nxt = {}
    for layout, plans in pairs(front) do
      for _, pl in ipairs(plans) do
        for _, ch in ipairs(CHOICES) do
          local t = pl.time + 6 * o.batch * d[k] * d[k + 1] / o.world / R
          for _, c in ipairs(reshard(layout, NEED[ch], S)) do t = t + ct[c[2]](c[3]) end
          for _, c in ipairs(layer_comms(ch, d[k], d[k + 1], o)) do t = t + ct[c[2]](c[3]) end
          local m = pl.memory + layer_memory(ch, d[k], d[k + 1], o)
          if not o.memory or m <= o.memory then
            local choice = table.move(pl.choice, 1, #pl.choice, 1, {})
            choice[k] = ch
            local g = GIVE[ch]
            nxt[g] = nxt[g] or {}
            nxt[g][#nxt[g] + 1] = {time = t, memory = m, choice = choice}
          end
        end
      end
    end
    for g, plans in pairs(nxt) do -- keep the Pareto front
      table.sort(plans, function(x, y) return x.time < y.time or (x.time == y.time and x.memory < y.memory) end)
      local keep, best = {}, math.huge
      for _, pl in ipairs(plans) do
        if pl.memory < best then keep[#keep + 1], best = pl, pl.memory end
      end
      nxt[g] = keep
    end
    front = nxt
  end
  local best
  for _, plans in pairs(front) do
    for _, pl in ipairs(plans) do if not best or pl.time < best.time then best = pl end end
  end
  if not best then error(("dist.autoshard: no plan fits in %d bytes per rank"):format(o.memory), 3) end
  return evaluate(d, best.choice, o)
end

-- Every plan, the fastest that fits (the check of the DP).
function M.brute(model, o)
  check(o)
  local d = dims_of(model)
  local K, best = #d - 1, nil
  for code = 0, 3 ^ K - 1 do
    local choice, x = {}, code
    for k = 1, K do choice[k] = CHOICES[x % 3 + 1]; x = x // 3 end
    local pl = evaluate(d, choice, o)
    if pl.fits and (not best or pl.time < best.time) then best = pl end
  end
  return best
end

-- Runs the plan on o.world simulated workers: per layer its compute (forward, then backward in
-- reverse) moves the compute clock, its collectives run on the sim link model. Returns seconds.
function M.simulate(dist, plan, model, o)
  local d, R = dims_of(model), o.compute or 1e12
  local times = dist.run(o.world, function(w)
    local ctx = require("chalk").context.current()
    local function compute(s) ctx:set_clock(ctx:clock() + s * 1e6) end
    local function comms(k, phase)
      for _, c in ipairs(plan.comms) do
        if c.layer == k and c.phase == phase then w:simulate(c.coll, c.bytes) end
      end
    end
    local t0 = w:clock()
    for k = 1, #d - 1 do
      compute(2 * o.batch * d[k] * d[k + 1] / o.world / R)
      comms(k, "forward")
    end
    for k = #d - 1, 1, -1 do
      compute(4 * o.batch * d[k] * d[k + 1] / o.world / R)
      comms(k, "backward")
    end
    return w:clock() - t0
  end, {alpha = o.alpha or 5e-6, bandwidth = o.bandwidth or 25e9})
  return math.max(table.unpack(times))
end

return M
