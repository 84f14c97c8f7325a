-- prune.lua: magnitude pruning, unstructured (per tensor) and 2:4 structured, with masks that stay
-- applied through fine-tuning.
--
--   prune = require "chalk.prune"        (also chalk.efficiency.prune)
--   mask = prune.magnitude_mask(w, 0.9)  -- 0/1 f32, zeros on the 90% smallest |w| of the tensor
--   mask = prune.two_four_mask(w)        -- in every 4 consecutive weights of a row, keep the 2 largest
--   pr = prune.Pruner(model, {sparsity = 0.9})            -- or {pattern = "2:4"}
--   opt:step(); pr:apply()               -- after each optimizer step the pruned weights are 0 again
--   pr:sparsity()                        -- the share of exact zeros in the pruned weights
--
-- Invariants: a mask is chosen once (from the weights when the Pruner is made) and kept: fine-tuning
-- never revives a pruned weight, because apply() multiplies by the same mask after every step, so
-- each pruned weight is exactly 0.0 (not small). Only weight matrices (2-D parameters) are pruned by
-- default; biases are left dense, as in torch.nn.utils.prune's usual use. Ties at the threshold are
-- broken by position (argsort is stable), so exactly floor(sparsity x numel) weights are zeroed.
local chalk = require "chalk"

local M = {}

-- 0/1 mask of w's shape zeroing the k = floor(sparsity x numel) weights of smallest magnitude.
function M.magnitude_mask(w, sparsity)
  if type(sparsity) ~= "number" or sparsity < 0 or sparsity > 1 then
    error(("prune.magnitude_mask: sparsity must be in [0, 1], got %s"):format(tostring(sparsity)), 2)
  end
  local k = math.floor(sparsity * w:numel())
  return chalk.no_grad(function()
    -- the rank (1 = smallest |w|) of every weight: argsort of argsort
    local rank = w:detach():abs():reshape(-1):argsort(1):argsort(1)
    return rank:gt(k):to("f32"):reshape(w.shape)
  end)
end

-- 2:4 structured mask: the last dimension in groups of 4; in each group the 2 largest |w| are kept.
-- (NVIDIA's sparse tensor cores skip the two zeros of every group of four.)
function M.two_four_mask(w)
  local n = w.shape[#w.shape]
  if n % 4 ~= 0 then
    error(("prune.two_four_mask: the last dimension (%d) of a weight %s must be a multiple of 4")
      :format(n, table.concat(w.shape, "x")), 2)
  end
  return chalk.no_grad(function()
    local groups = w:detach():abs():reshape(-1, 4)
    local rank = groups:argsort(2):argsort(2) -- 1..4 within the group, 4 = largest
    return rank:gt(2):to("f32"):reshape(w.shape)
  end)
end

local Pruner = {}
Pruner.__index = Pruner

-- prune.Pruner(model, opts): masks for the model's weight matrices, applied at once.
-- opts: sparsity (0.5; unstructured only), pattern ("unstructured" | "2:4"), names (a list of
-- parameter paths to prune; default every parameter with 2 or more dimensions).
function M.Pruner(model, opts)
  opts = opts or {}
  local pattern = opts.pattern or "unstructured"
  if pattern ~= "unstructured" and pattern ~= "2:4" then
    error(("prune.Pruner: pattern must be \"unstructured\" or \"2:4\", got %q"):format(tostring(pattern)), 2)
  end
  local wanted
  if opts.names then
    wanted = {}
    for _, n in ipairs(opts.names) do wanted[n] = true end
  end
  local self = setmetatable({ pattern = pattern, sparsity_target = opts.sparsity or 0.5, entries = {} }, Pruner)
  for name, p in model:named_parameters() do
    if (wanted and wanted[name]) or (not wanted and #p.shape >= 2) then
      local mask = pattern == "2:4" and M.two_four_mask(p) or M.magnitude_mask(p, self.sparsity_target)
      self.entries[#self.entries + 1] = { name = name, param = p, mask = mask }
    end
  end
  if #self.entries == 0 then error("prune.Pruner: no parameter to prune", 2) end
  self:apply()
  return self
end

-- Multiplies every pruned parameter by its mask, in place (call after each optimizer step).
function Pruner:apply()
  chalk.no_grad(function()
    for _, e in ipairs(self.entries) do e.param:mul_(e.mask) end
  end)
  return self
end

-- The share of exact zeros in the pruned parameters, and the counts (zeros, total).
function Pruner:sparsity()
  local zeros, total = 0, 0
  chalk.no_grad(function()
    for _, e in ipairs(self.entries) do
      zeros = zeros + e.param:eq(0):to("i64"):sum():item()
      total = total + e.param:numel()
    end
  end)
  return zeros / total, zeros, total
end

-- The largest |w| at a masked position: 0 exactly while the masks hold.
function Pruner:max_pruned()
  local m = 0
  chalk.no_grad(function()
    for _, e in ipairs(self.entries) do
      m = math.max(m, (e.param * (1 - e.mask)):abs():max():item())
    end
  end)
  return m
end

return M
