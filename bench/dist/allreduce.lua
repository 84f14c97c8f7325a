-- allreduce.lua: all_reduce algbw and busbw (nccl-tests' definitions) of chalk's ring (and tree,
-- halving_doubling) against MPI_Allreduce ("native"), f32, 1 KiB to 64 MiB; run by bench/dist/run.sh
-- as chalk --nproc 4 bench/dist/allreduce.lua [max_bytes] [repeats]. Rank 1 prints a markdown table;
-- a time is the slowest rank's mean over the iterations (after a barrier), the best of `repeats`
-- (default 3) interleaved rounds over the algorithms, so that a busy shared machine disturbs less.
local chalk = require "chalk"
local w = chalk.dist.init()
local max_bytes = tonumber(arg and arg[1]) or 64 << 20
local repeats = tonumber(arg and arg[2]) or 3
local algos = {"native", "ring", "halving_doubling", "tree"}
local factor = 2 * (w.size - 1) / w.size

local function time_of(t, algo, iters)
  w:barrier()
  local t0 = w:clock()
  for _ = 1, iters do w:all_reduce(t, {algo = algo}) end
  local dt = chalk.tensor({(w:clock() - t0) / iters}, {dtype = "f64"})
  w:all_reduce(dt, {op = "max", algo = "native"})
  return dt[1]:item()
end

if w.rank == 1 then
  print(string.format("all_reduce on %d processes (f32, in place); algbw = S/t, busbw = algbw * %.2f, GB/s", w.size, factor))
  print("| size | " .. table.concat(algos, " t(us) | ") .. " t(us) | native busbw | ring busbw | ring/native |")
  print("|---:|" .. string.rep("---:|", #algos + 3))
end
local bytes = 1024
while bytes <= max_bytes do
  local t = chalk.ones(bytes // 4)
  local iters = math.max(3, math.min(200, (8 << 20) // bytes))
  local row = {}
  for _ = 1, repeats do
    for _, algo in ipairs(algos) do
      time_of(t, algo, 1) -- warm up
      row[algo] = math.min(row[algo] or math.huge, time_of(t, algo, iters))
    end
  end
  if w.rank == 1 then
    local cells = {}
    for _, algo in ipairs(algos) do cells[#cells + 1] = string.format("%.1f", row[algo] * 1e6) end
    local nb, rb = bytes / row.native * factor / 1e9, bytes / row.ring * factor / 1e9
    local size = bytes >= 1 << 20 and string.format("%d MiB", bytes >> 20) or string.format("%d KiB", bytes >> 10)
    print(string.format("| %s | %s | %.2f | %.2f | %.2f |", size, table.concat(cells, " | "), nb, rb, rb / nb))
  end
  bytes = bytes * 4
end
