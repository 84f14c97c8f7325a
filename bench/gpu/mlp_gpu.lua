-- mlp_gpu.lua: chalk's side of GPU workload 7: one training step (forward, backward, SGD with
-- momentum) of a 784-512-256-10 MLP at batch 1024, on one device.
--
--   chalk bench/gpu/mlp_gpu.lua DEVICE [MODE] [BATCH]
--     DEVICE  "cuda" (the benchmark) or "cpu" (to check the script where there is no GPU)
--     MODE    "time" (default): prints "RESULT mlp_step_gpu SECONDS", the median seconds per step
--             "profile": also prints chalk.profile's op table and summary over a few steps
--
-- Invariants: the model, optimizer and data are PyTorch's in torch_gpu.py term for term (same
-- layers, lr 0.01, momentum 0.9, cross entropy, fresh random data on the device). Timing: warm-up
-- steps first (kernel load, cuBLAS handle, allocator cache), then samples of INNER steps each,
-- bracketed by chalk.cuda.synchronize() so that every sample holds all of its GPU work; the median
-- sample over INNER is reported. The loss must stay finite or the script fails.
local device = arg[1] or "cuda"
local mode = arg[2] or "time"
local batch = tonumber(arg[3] or "1024")
local INNER, REPS, WARMUP = 20, 9, 10

if device ~= "cpu" and not chalk.cuda.is_available() then
  error("mlp_gpu: device " .. device .. " asked for, but CUDA is unavailable: " .. tostring(chalk.cuda.unavailable_reason and chalk.cuda.unavailable_reason()))
end

chalk.manual_seed(0)
local model = nn.Sequential{ nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10) }
model:to(device)
local opt = optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
local x = chalk.randn(batch, 784):to(device)
local y = chalk.randint(1, 11, {batch}):to(device)
for _, p in ipairs(model:parameters()) do
  assert(p.device:sub(1, #device) == device, "parameter not on " .. device .. ": " .. p.device)
end
assert(x.device:sub(1, #device) == device and y.device:sub(1, #device) == device)

local last_loss
local function step()
  opt:zero_grad()
  local loss = nn.functional.cross_entropy(model(x), y)
  loss:backward()
  opt:step()
  last_loss = loss
end

local function sync() chalk.cuda.synchronize() end

for _ = 1, WARMUP do step() end
sync()
local first = last_loss:item()
local samples = {}
for r = 1, REPS do
  collectgarbage("step", 0)
  sync()
  local t0 = chalk.clock()
  for _ = 1, INNER do step() end
  sync()
  samples[r] = (chalk.clock() - t0) / INNER
end
table.sort(samples)
local loss_now = last_loss:item()
assert(loss_now == loss_now and math.abs(loss_now) < 1e6, "mlp_gpu: loss is not finite: " .. tostring(loss_now))
io.stderr:write(string.format("mlp_gpu: %s batch %d: loss %.4f after warm-up, %.4f after %d steps; samples %.3f..%.3f ms\n",
  device, batch, first, loss_now, WARMUP + REPS * INNER, samples[1] * 1e3, samples[REPS] * 1e3))
print(string.format("RESULT mlp_step_gpu %.9f", samples[(REPS + 1) // 2]))

if mode == "profile" then
  -- host issue rate: how long the host takes to hand 20 steps to the GPU (no synchronisation
  -- inside), against the time until the GPU has finished them; equal means the host is the limit
  sync()
  local t0 = chalk.clock()
  for _ = 1, INNER do step() end
  local t1 = chalk.clock()
  sync()
  local t2 = chalk.clock()
  print(string.format("PROFILE host chalk: issuing %d steps took %.4f ms/step; finished on the device after %.4f ms/step",
    INNER, (t1 - t0) / INNER * 1e3, (t2 - t0) / INNER * 1e3))
  local NPROF = 5
  sync()
  local prof = chalk.profile(function()
    for _ = 1, NPROF do step() end
    sync()
  end)
  print(string.format("PROFILE chalk, %d steps, device %s, batch %d", NPROF, device, batch))
  print(prof)
  local s = prof:summary()
  print(string.format("PROFILE summary: wall %.3f ms (%.3f ms/step), some op running %.3f ms, sum of op times %.3f ms, %d ops (%.1f per step)",
    s.wall_ms, s.wall_ms / NPROF, s.busy_ms, s.ops_ms, s.nops, s.nops / NPROF))
  local out = os.getenv("CHALK_BENCH_TRACE")
  if out and out ~= "" then
    prof:export_chrome(out)
    print("PROFILE chrome trace: " .. out)
  end
end
