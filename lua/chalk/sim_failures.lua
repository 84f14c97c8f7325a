-- sim_failures.lua: failures and periodic checkpoints on the discrete-event engine.
--
--   r = sim.failures{mtbf = 86400, interval = 3220, checkpoint_cost = 60, restart_cost = 0,
--                    work = 1e9, seed = 1}  -> r.waste, r.wall, r.failures, r.lost
--   sim.checkpoint_sweep{..., intervals = {...}} -> {{interval=, waste=}, ...}, best
--   sim.young(C, M) = sqrt(2CM);  sim.daly(C, M): Daly's higher-order interval
--   sim.cluster_mtbf{nodes = N, node_mtbf = m, horizon = T, seed = } -> measured mean gap (m/N law)
--
-- The failure model: failures arrive as a Poisson process of rate 1/mtbf (exponential gaps) in
-- wall time, during work, checkpoints and restarts alike. A run alternates `interval` seconds of
-- work with a checkpoint of C seconds; a failure loses everything since the last completed
-- checkpoint and costs R seconds of restart. waste = (wall - work) / wall.
local des_new = require("chalk.sim_des").new
local rng = require("chalk.sim_cluster").rng

local M = {}

function M.young(C, mtbf) return math.sqrt(2 * C * mtbf) end

function M.daly(C, mtbf)
  if C >= 2 * mtbf then return mtbf end
  return math.sqrt(2 * C * mtbf) * (1 + math.sqrt(C / (2 * mtbf)) / 3 + C / (9 * 2 * mtbf)) - C
end

-- The first-order waste C/tau + (tau + C)/(2M) + R/M (Young's model; its minimum is Young's tau).
function M.waste_model(tau, C, mtbf, R) return C / tau + (tau + C) / (2 * mtbf) + (R or 0) / mtbf end

local FAIL = 1

function M.failures(o)
  local mtbf, tau = o.mtbf or error("sim.failures: mtbf= is required"), o.interval or error("sim.failures: interval=")
  local C, R, W = o.checkpoint_cost or 0, o.restart_cost or 0, o.work or 1000 * mtbf
  local rand = rng(o.seed or 1)
  local d = des_new(1)
  local function next_failure(now) d:at(now - mtbf * math.log(1 - rand()), FAIL, 0) end
  local saved, now, nfail, lost = 0, 0, 0, 0
  next_failure(0)
  while true do
    local tf = d:pop() -- the next failure
    local up, period = tf - now, tau + C
    local left = W - saved
    local k_need = math.ceil(left / tau) -- periods to finish; the last one may be short
    local t_finish = (k_need - 1) * period + (left - (k_need - 1) * tau) + C
    if up >= t_finish then
      now = now + t_finish
      break
    end
    local k = math.floor(up / period) -- checkpoints completed before the failure
    saved, lost, nfail = saved + k * tau, lost + (up - k * period), nfail + 1
    d:mark("sim.fail", 0, 1)
    local tn = tf - mtbf * math.log(1 - rand())
    while tn < tf + R do -- a failure during the restart starts the restart again
      nfail, lost, tf = nfail + 1, lost + (tn - tf), tn
      tn = tf - mtbf * math.log(1 - rand())
    end
    now = tf + R
    d:at(tn, FAIL, 0)
  end
  return {waste = (now - W) / now, wall = now, failures = nfail, lost = lost, work = W}
end

function M.checkpoint_sweep(o)
  local rows, best = {}, nil
  for _, tau in ipairs(o.intervals) do
    local r = M.failures{mtbf = o.mtbf, interval = tau, checkpoint_cost = o.checkpoint_cost,
      restart_cost = o.restart_cost, work = o.work, seed = o.seed}
    rows[#rows + 1] = {interval = tau, waste = r.waste, failures = r.failures}
    if not best or r.waste < best.waste then best = rows[#rows] end
  end
  return rows, best
end

-- N nodes fail independently (exponential, node MTBF m): the engine holds one pending failure per
-- node; the measured mean gap between cluster failures is the law's m / N.
function M.cluster_mtbf(o)
  local N, m, T = o.nodes, o.node_mtbf, o.horizon or 1000 * o.node_mtbf / o.nodes
  local rand = rng(o.seed or 1)
  local d = des_new(1)
  for k = 1, N do d:at(-m * math.log(1 - rand()), FAIL, k) end
  local n = 0
  while true do
    local t, _, k = d:pop()
    if t > T then break end
    n = n + 1
    d:at(t - m * math.log(1 - rand()), FAIL, k)
  end
  return {failures = n, horizon = T, mtbf = T / math.max(n, 1), law = m / N}
end

return M
