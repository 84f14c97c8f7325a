-- nccl_ddp.lua [N]: examples/ddp.lua's training on N GPUs through dist.DDP on the nccl backend
-- (dist.run(N, ..., {backend="nccl"}), default N = 1; under chalk --nproc N --backend nccl, one
-- process per GPU), against one worker on the whole batch on the CPU: the weights must agree to
-- float rounding (1e-4). Prints "nccl ddp: rank R of N ... max diff D". Run by tests/dist/nccl.sh.
local chalk = require "chalk"
local dist, optim = chalk.dist, chalk.optim
local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "."
local lib
for _, p in ipairs {"examples/ddp.lua", here .. "/../../examples/ddp.lua", here .. "/../../../examples/ddp.lua"} do
  local f = io.open(p)
  if f then f:close() lib = p break end
end
assert(lib, "examples/ddp.lua not found from " .. here)
local M = loadfile(lib)("library")

local function flat(model)
  local parts = {}
  for i, p in ipairs(model:parameters()) do parts[i] = p.data:to("cpu"):reshape(p:numel()) end
  return chalk.cat(parts)
end

local n = tonumber(os.getenv("CHALK_NCCL_SIZE") or os.getenv("OMPI_COMM_WORLD_SIZE") or (arg and arg[1]) or "1")
local ref = M.reference()
local worst = dist.run(n, function(world)
  local model = M.model():to(world.device)
  local ddp = dist.DDP(model, world, {bucket_mb = M.bucket_mb})
  local opt = optim.SGD(ddp:parameters(), {lr = M.lr})
  local x, y = M.data()
  local b = M.batch // world.size
  x = x:narrow(1, (world.rank - 1) * b + 1, b):contiguous():to(world.device)
  y = y:narrow(1, (world.rank - 1) * b + 1, b):contiguous():to(world.device)
  local loss
  for _ = 1, M.steps do
    opt:zero_grad()
    loss = (ddp(x) - y):pow(2):mean()
    loss:backward()
    ddp:wait()
    opt:step()
  end
  local d = M.worst(flat(model), ref)
  print(string.format("nccl ddp: rank %d of %d on %s, %d buckets, batch %d of %d, loss %.5f: weights vs 1 cpu worker "
                      .. "max diff %.3g", world.rank, world.size, world.device, #ddp.buckets, b, M.batch, loss:item(), d))
  assert(d <= 1e-4, "DDP on nccl differs from one worker by " .. d)
  return d
end, {backend = "nccl"})
assert(next(worst), "no rank returned")
