-- common.lua: timing helpers for chalk's side of the CPU benchmarks (median of repetitions).
local M = {}

-- Runs fn `warmup` times, then `reps` samples of `inner` calls each; returns the median seconds
-- per call.
function M.median_time(fn, inner, reps, warmup)
  for _ = 1, warmup or 3 do fn() end
  local samples = {}
  for r = 1, reps do
    collectgarbage("step", 0)
    local t0 = chalk.clock()
    for _ = 1, inner do fn() end
    samples[r] = (chalk.clock() - t0) / inner
  end
  table.sort(samples)
  return samples[(reps + 1) // 2]
end

function M.report(name, seconds) print(string.format("RESULT %s %.9f", name, seconds)) end

-- One training step of model on (x, y): cross-entropy, backward, opt:step(); the timed workload
-- of mlp.lua and conv.lua.
function M.train_step(model, opt, x, y)
  return function()
    opt:zero_grad()
    local loss = nn.functional.cross_entropy(model(x), y)
    loss:backward()
    opt:step()
  end
end

return M
