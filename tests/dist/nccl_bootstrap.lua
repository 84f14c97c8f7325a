-- nccl_bootstrap.lua: run by tests/dist/nccl.sh under chalk --nproc N --backend nccl: prints this
-- rank's view of the id exchange (rank, size, a hash of NCCL's 128-byte unique id); every rank must
-- print the same hash. Needs libnccl, not a GPU.
local dist = require "chalk.dist"
local rank, size, id = dist.nccl_bootstrap()
local h = 2166136261
for i = 1, #id do h = ((h ~ id:byte(i)) * 16777619) % 2 ^ 32 end
print(string.format("nccl id: rank %d of %d, %d bytes, hash %08x", rank + 1, size, #id, math.tointeger(h)))
