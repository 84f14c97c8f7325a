-- autoshard_slice.lua: pipeline stage slicing by dynamic programming over layer costs, and its brute force.
--
--   s = dist.slice_stages(costs, p)   costs[i] >= 0 the time of layer i (F + B); p stages
--   s.bounds[k] = {first, last}       the layers of stage k (contiguous, every stage non-empty)
--   s.loads[k], s.bottleneck          each stage's total cost and the largest (the step's pace)
--   dist.slice_stages_brute(costs, p) the same by trying every way to cut the chain (small chains)
--
-- The pipeline runs at the pace of its slowest stage, so the best slicing minimizes the largest
-- stage cost. best[k][j] = the smallest bottleneck for layers 1..j on k stages
--   = min over i < j of max(best[k-1][i], cost(i+1..j)), O(p n^2) with prefix sums.
-- Several slicings may share the best bottleneck: the DP and the brute force agree on its value.
local M = {}

local function check(costs, p, who)
  local n = #costs
  if type(p) ~= "number" or p < 1 or p ~= math.floor(p) or p > n then
    error(("%s: p = %s stages for %d layers (want 1 <= p <= %d)"):format(who, tostring(p), n, n), 3)
  end
  for i, c in ipairs(costs) do
    if type(c) ~= "number" or c < 0 then error(("%s: costs[%d] = %s is not a cost >= 0"):format(who, i, tostring(c)), 3) end
  end
end

local function result(costs, cuts) -- cuts: the last layer of stages 1..p-1
  local bounds, loads, first, worst = {}, {}, 1, 0
  for k = 1, #cuts + 1 do
    local last = cuts[k] or #costs
    local sum = 0
    for i = first, last do sum = sum + costs[i] end
    bounds[k], loads[k], first, worst = {first, last}, sum, last + 1, math.max(worst, sum)
  end
  return {bounds = bounds, loads = loads, bottleneck = worst}
end

function M.dp(costs, p)
  check(costs, p, "dist.slice_stages")
  local n, pre = #costs, {[0] = 0}
  for i = 1, n do pre[i] = pre[i - 1] + costs[i] end
  local best, arg = {[1] = {}}, {[1] = {}}
  for j = 1, n do best[1][j] = pre[j] end
  for k = 2, p do
    best[k], arg[k] = {}, {}
    for j = k, n do
      local b, a = math.huge, nil
      for i = k - 1, j - 1 do
        local v = math.max(best[k - 1][i], pre[j] - pre[i])
        if v < b then b, a = v, i end
      end
      best[k][j], arg[k][j] = b, a
    end
  end
  local cuts, j = {}, n
  for k = p, 2, -1 do j = arg[k][j]; cuts[k - 1] = j end
  return result(costs, cuts)
end

function M.brute(costs, p)
  check(costs, p, "dist.slice_stages_brute")
  local n, best, cuts = #costs, nil, {}
  local function go(k, from) -- choose cut k (the last layer of stage k) after from
    if k == p then
      local r = result(costs, cuts)
      if not best or r.bottleneck < best.bottleneck then best = r end
      return
    end
    for c = from, n - (p - k) do cuts[k] = c; go(k + 1, c + 1) end
    cuts[k] = nil
  end
  go(1, 1)
  return best
end

return M
