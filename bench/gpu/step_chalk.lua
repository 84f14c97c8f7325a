-- step_chalk.lua: chalk's side of the training-step benchmark (bench/gpu/step_run.py): one step
-- (forward, backward, optimizer) of the MLP or the char GPT, eager or captured (chalk.capture,
-- replayed as one CUDA Graph), timed and counted.
--
--   chalk bench/gpu/step_chalk.lua MODEL MODE [DEVICE]
--     MODEL   "mlp": 784-512-256-10, batch 1024, SGD lr 0.01 momentum 0.9, cross entropy
--             "gpt": nn.CharGPT{layers=2, heads=4, dim=64, context=32}, batch 32, Adam lr 6e-3
--     MODE    "eager" or "captured"
--     DEVICE  "cuda" (default) or "cpu" (to check the script where there is no GPU)
-- Prints "RESULT step SECONDS" (median over REPS samples of INNER steps, each sample bracketed by
-- chalk.cuda.synchronize()) and "LAUNCHES ..." (eager: kernel-launching ops per step from
-- chalk.profile, views excluded; captured: the graph's kernel nodes, all in one CUDA Graph launch).
-- The models and data are torch's in step_torch.py term for term. The loss must stay finite.
local model_name, mode, device = arg[1] or "mlp", arg[2] or "eager", arg[3] or "cuda"
local INNER, REPS, WARMUP = 20, 9, 10
if device ~= "cpu" and not chalk.cuda.is_available() then error("step_chalk: CUDA is unavailable") end
local sync = device == "cpu" and function() end or chalk.cuda.synchronize

chalk.manual_seed(0)
local model, opt, x, y, loss_of
if model_name == "mlp" then
  model = nn.Sequential { nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10) }
  model:to(device)
  opt = optim.SGD(model:parameters(), { lr = 0.01, momentum = 0.9 })
  x = chalk.randn(1024, 784):to(device)
  y = chalk.randint(1, 11, { 1024 }):to(device)
  loss_of = function(a, b) return nn.functional.cross_entropy(model(a), b) end
elseif model_name == "gpt" then
  model = nn.CharGPT { layers = 2, heads = 4, dim = 64, context = 32 }
  model:to(device)
  opt = optim.Adam(model:parameters(), { lr = 6e-3 })
  x = chalk.randint(1, 28, { 32, 32 }):to(device)
  y = chalk.randint(1, 28, { 32, 32 }):to(device)
  -- CharGPT:forward term for term, with its positions made once on the device (forward builds them
  -- on the host each call, which is a host-to-device copy per step)
  local rows = {}
  for i = 1, 32 do
    rows[i] = {}
    for t = 1, 32 do rows[i][t] = t end
  end
  local pos = chalk.tensor(rows, { dtype = "i64" }):to(device)
  loss_of = function(a, b)
    local h = model.tok(a) + model.pos(pos)
    for l = 1, model.n_layer do h = model["block" .. l](h) end
    return chalk.cross_entropy(model.head(model.ln_f(h)):reshape(-1, 27), b:reshape(-1))
  end
else
  error("step_chalk: MODEL must be mlp or gpt, got " .. tostring(model_name))
end

local function step(a, b)
  opt:zero_grad()
  local loss = loss_of(a, b)
  loss:backward()
  opt:step()
  return loss
end

local last
for _ = 1, WARMUP do last = step(x, y) end
local run = function() last = step(x, y) end
local g
if mode == "captured" then
  g = chalk.capture(step, x, y)
  run = function() last = g:replay() end
  for _ = 1, 3 do run() end
elseif mode ~= "eager" then
  error("step_chalk: MODE must be eager or captured, got " .. tostring(mode))
end
-- seconds per call of fn: REPS samples of INNER calls, each sample between two synchronisations
local function sampled(fn)
  local out = {}
  while #out < REPS do
    collectgarbage("step", 0)
    sync()
    local t0 = chalk.clock()
    for _ = 1, INNER do fn() end
    sync()
    out[#out + 1] = (chalk.clock() - t0) / INNER
  end
  table.sort(out)
  return out
end
local first = last:item()
local samples = sampled(run)
local now = last:item()
assert(now == now and math.abs(now) < 1e6, "step_chalk: loss is not finite: " .. tostring(now))
io.stderr:write(("step_chalk %s %s: loss %.4f -> %.4f; samples %.4f..%.4f ms\n"):format(model_name, mode, first, now,
  samples[1] * 1e3, samples[REPS] * 1e3))
print(("RESULT step %.9f"):format(samples[(REPS + 1) // 2]))

local VIEWS = { view = true, expand = true, transpose = true, permute = true, narrow = true, select = true,
  reshape = true }
if g then
  local nodes, kernels = g:totals()
  local how, launches, _, why = g:cuda_status()
  print(("LAUNCHES captured %d kernel nodes of %d nodes; replayed as %s (%d graph launches so far)%s"):format(kernels,
    nodes, how, launches, why and (": " .. why) or ""))
else
  local N = REPS * INNER -- steps profiled: one more round of samples, all of its GPU work inside
  local prof = chalk.profile(function() sampled(run) end)
  local n, names = 0, {}
  for _, row in ipairs(prof:summary().ops) do
    local base = row.name
    if not VIEWS[base] then
      n = n + row.calls
      names[#names + 1] = ("%s%s %g"):format(row.name, row.backward and "(bw)" or "", row.calls / N)
    end
  end
  print(("LAUNCHES eager %.1f kernel-launching ops per step: %s"):format(n / N, table.concat(names, ", ")))
end
