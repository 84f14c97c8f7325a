-- pipeline_nproc.lua: lesson 12's pipelined run as an SPMD script: 4 stages, 1F1B, each rank's weight
-- gradients against one unsplit forward/backward. `chalk --nproc 4 tests/dist/pipeline_nproc.lua`
-- (OpenMPI; tests/lessons/test_12_tensor_pipeline.sh) or `chalk tests/dist/pipeline_nproc.lua` (sim).
local chalk = require "chalk"
local dist, nn = chalk.dist, chalk.nn

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local P = dofile(here .. "pipeline_net.lua")
local function net() return P.net(8, 8, 16, 12) end
local run_layers = P.run_layers
local ref, X, Y = net()
nn.functional.mse_loss(run_layers(ref, 1, 8, X), Y):backward()
local s = dist.pipeline{stages = 4, microbatches = 4, schedule = "1f1b"}
dist.run(4, function(w)
  local layers, x, y = net()
  local a = 2 * (w.rank - 1) + 1
  P.execute(s, w, layers, x, y, a)
  local d = 0
  for k = a, a + 1 do d = math.max(d, (layers[k].weight.grad - ref[k].weight.grad):abs():max():item()) end
  print(("rank %d/%d (%s): 1F1B stage %d, weight gradients vs unsplit: max diff %.2e")
    :format(w.rank, w.size, w.backend, w.rank, d))
end)
