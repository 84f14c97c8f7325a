-- ddp.lua: one SPMD data-parallel training script, run unchanged on simulated workers or processes.
--
--   chalk examples/ddp.lua               4 simulated workers in this process (virtual clocks)
--   chalk --nproc 4 examples/ddp.lua     4 processes through OpenMPI (chalk starts mpirun)
--
-- Every rank builds the same MLP, takes its slice of the global batch (b/N rows), and trains with
-- dist.DDP: gradients are averaged in buckets during backward. At the end each rank compares its
-- weights with one worker trained on the whole batch b: they agree to float rounding.
-- Loaded with loadfile(path)("library") it returns its functions instead of running (lesson 10,
-- tests/dist).
local chalk = require "chalk"
local dist, nn, optim = chalk.dist, chalk.nn, chalk.optim

local M = {batch = 32, steps = 5, lr = 0.1, bucket_mb = 0.25, sizes = {64, 256, 256, 256, 10}}

-- The global batch: the same on every rank (a fixed seed), each rank reads its rows.
function M.data()
  chalk.manual_seed(7)
  return chalk.randn(M.batch, M.sizes[1]), chalk.randn(M.batch, M.sizes[#M.sizes])
end

function M.model()
  chalk.manual_seed(0)
  local layers = {}
  for i = 1, #M.sizes - 1 do
    layers[#layers + 1] = nn.Linear(M.sizes[i], M.sizes[i + 1])
    if i < #M.sizes - 1 then layers[#layers + 1] = nn.Tanh() end
  end
  return nn.Sequential(layers)
end

local function flat(model)
  local parts = {}
  for i, p in ipairs(model:parameters()) do parts[i] = p.data:reshape(p:numel()) end
  return chalk.cat(parts)
end

-- One worker on the whole batch: the weights DDP must reproduce.
function M.reference(steps)
  local model = M.model()
  local x, y = M.data()
  local opt = optim.SGD(model:parameters(), {lr = M.lr})
  for _ = 1, steps or M.steps do
    opt:zero_grad()
    local loss = (model(x) - y):pow(2):mean()
    loss:backward()
    opt:step()
  end
  return flat(model)
end

-- The SPMD body: what every rank runs. Returns this rank's weights, last loss, bucket count and
-- the clock when training started (after the model was built and broadcast).
function M.ddp(world, o)
  o = o or {}
  local model = M.model()
  local ddp = dist.DDP(model, world, {bucket_mb = o.bucket_mb or M.bucket_mb})
  local opt = optim.SGD(ddp:parameters(), {lr = M.lr})
  local x, y = M.data()
  local b = M.batch // world.size
  x, y = x:narrow(1, (world.rank - 1) * b + 1, b), y:narrow(1, (world.rank - 1) * b + 1, b)
  local loss, start = nil, chalk.context.current():clock() -- training starts (us; virtual on sim)
  for _ = 1, o.steps or M.steps do
    opt:zero_grad()
    loss = (ddp(x) - y):pow(2):mean()
    loss:backward() -- buckets start as their gradients become ready
    ddp:wait()      -- every .grad is now the mean over ranks
    opt:step()
  end
  return {weights = flat(model), loss = loss:item(), buckets = #ddp.buckets, start = start}
end

function M.worst(a, b) return (a - b):abs():max():item() end

if ... == "library" then return M end

-- As a script: dist.run uses the processes chalk --nproc started, else 4 simulated workers.
local n = tonumber(os.getenv("OMPI_COMM_WORLD_SIZE") or "") or 4
local ref = M.reference()
local results = dist.run(n, function(world)
  local r = M.ddp(world)
  print(("rank %d/%d (%s): batch %d of %d, loss %.6f, weights vs 1 worker at batch %d: max diff %.2e")
    :format(world.rank, world.size, world.backend, M.batch // world.size, M.batch, r.loss, M.batch,
            M.worst(r.weights, ref)))
  return r
end, {alpha = 5e-6, bandwidth = 1e9, compute = 1e9})
return results
