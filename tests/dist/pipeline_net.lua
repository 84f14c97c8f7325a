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

-- Rank w's stage of the 8-layer net under schedule s: layers a, a + 1, micro-batches of 4 rows of
-- x and y (16 x 8), mean squared error.
function M.execute(s, w, layers, x, y, a)
  s:execute(w, {module = function() return function(t) return M.run_layers(layers, a, a + 1, t) end end,
    input = function(i) return x:narrow(1, 4 * (i - 1) + 1, 4) end,
    target = function(i) return y:narrow(1, 4 * (i - 1) + 1, 4) end,
    shape = function() return {4, 8} end, loss = chalk.nn.functional.mse_loss})
end

return M
