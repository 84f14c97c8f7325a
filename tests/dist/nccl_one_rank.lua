-- nccl_one_rank.lua [N]: the nccl backend's round trip through Lua: under plain chalk, dist.run(N,
-- ..., {backend="nccl"}) (ncclCommInitAll on cuda:0 .. N-1; N = 1 by default); under chalk --nproc N --backend nccl, every
-- process's rank (the id from MPI or the launcher's pipe). Prints "nccl: rank R of N: K checks
-- passed" per rank, or raises. Run by tests/dist/nccl.sh.
package.path = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local chalk = require "chalk"
local dist = require "chalk.dist"
local C = require "nccl_collectives"

local n = tonumber(os.getenv("CHALK_NCCL_SIZE") or os.getenv("OMPI_COMM_WORLD_SIZE") or (arg and arg[1]) or "1")
local res = dist.run(n, function(w)
  local k = C.run(w)
  print(string.format("nccl: rank %d of %d on %s (%s): %d checks passed", w.rank, w.size, w.device,
                      chalk.cuda.get_device_name(w.device), k))
  return k
end, {backend = "nccl"})
assert(next(res), "no rank returned")
