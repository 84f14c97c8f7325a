-- pipeline_net.lua: the model the pipeline tests split (loaded by pipeline_nproc.lua and
-- pipeline_spec.lua): n layers tanh(W x + b) of width w, and rows x w inputs and targets, seeded.
local chalk = require "chalk"

local M = {}

-- The layers, inputs and targets, the same on every rank for the same seed.
function M.net(n, w, rows, seed)
  chalk.manual_seed(seed)
  local l = {}
  for k = 1, n do l[k] = chalk.nn.Linear(w, w) end
  return l, chalk.randn(rows, w), chalk.randn(rows, w)
end

-- Layers from..to of l applied to x in turn.
function M.run_layers(l, from, to, x)
  for k = from, to do x = chalk.tanh(l[k](x)) end
  return x
end

return M
