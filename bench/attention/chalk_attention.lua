-- chalk_attention.lua: times chalk's attention on CUDA for bench/attention/run.sh.
--   chalk bench/attention/chalk_attention.lua OUT.json [N,N,...]
-- Shapes [B=2, H=8, N, d=64], causal, fresh random inputs (never zeros). For each N: naive and flash
-- in f32, flash in bf16; forward alone and forward + backward. A time is the median over 10 runs
-- (after 2 warm-ups) of the ops' own GPU times in a chalk.profile window (kernel times from CUDA
-- events; launch gaps between kernels are not counted). Writes one JSON record per measurement.
local out_path = assert(arg[1], "usage: chalk_attention.lua OUT.json [sizes]")
local sizes = {}
for n in (arg[2] or "512,1024,2048,4096,8192"):gmatch("%d+") do sizes[#sizes + 1] = tonumber(n) end
assert(chalk.cuda.is_available(), "chalk_attention.lua needs CUDA: " .. tostring(chalk.cuda.unavailable_reason()))
local F = nn.functional
local B, H, d, REPS = 2, 8, 64, 10

local function median_ms(fn)
  for _ = 1, 2 do fn() end
  local t = {}
  for r = 1, REPS do t[r] = chalk.profile(fn):summary().ops_ms end
  table.sort(t)
  return t[(REPS + 1) // 2]
end

local records = {}
local function record(n, dtype, impl, pass, ms)
  records[#records + 1] = ('{"impl": "chalk %s", "dtype": "%s", "N": %d, "pass": "%s", "ms": %.6f}')
    :format(impl, dtype, n, pass, ms)
  io.write(("chalk %-5s %-4s N=%5d %-7s %9.3f ms\n"):format(impl, dtype, n, pass, ms))
  io.flush()
end

for _, n in ipairs(sizes) do
  for _, cfg in ipairs{{"f32", "naive"}, {"f32", "flash"}, {"bf16", "flash"}} do
    local dtype, impl = cfg[1], cfg[2]
    local x = {}
    for t = 1, 3 do x[t] = chalk.randn(B, H, n, d):cuda():to(dtype):requires_grad_(true) end
    local g = chalk.randn(B, H, n, d):cuda():to(dtype)
    local opts = {causal = true, impl = impl}
    record(n, dtype, impl, "fwd", median_ms(function()
      chalk.no_grad(function() F.attention(x[1], x[2], x[3], opts) end)
    end))
    record(n, dtype, impl, "fwd+bwd", median_ms(function()
      for t = 1, 3 do x[t].grad = nil end
      F.attention(x[1], x[2], x[3], opts):backward(g)
    end))
    x, g = nil, nil
    collectgarbage()
    chalk.cuda.empty_cache()
  end
end

local f = assert(io.open(out_path, "w"))
f:write("[\n  ", table.concat(records, ",\n  "), "\n]\n")
f:close()
