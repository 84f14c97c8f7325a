-- quant_bench.lua: time and bytes of the f32 matmul against the dequantizing one (quant.matmul_table).
--
--   t = quant.matmul_table{n = 1024, k = 1024, batches = {1, 256}, device = "cpu"}
--   print(t)     -- one row per (batch, format): ms, bytes read, GB/s, GFLOP/s, speedup over f32
--
-- y [M, n] = x [M, k] @ W^T. f32 reads 4(Mk + nk + Mn) bytes; a quantized W reads 4(Mk + Mn) plus
-- its own bytes (the qmatmul row's cost: bytes actually read). At batch 1 the weight dominates the
-- bytes, so fewer bytes can mean less time; at batch 256 the FLOPs dominate and unpacking codes is
-- extra work that OpenBLAS's f32 gemm does not do: the table shows where the gain disappears.
local chalk = require "chalk"

local M = {}

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

local function time_ms(fn, device, reps)
  fn() -- warm up (first-touch, caches, cuBLAS handle)
  local ts = {}
  for i = 1, reps do
    if device ~= "cpu" then chalk.cuda.synchronize() end
    local t0 = chalk.clock()
    fn()
    if device ~= "cpu" then chalk.cuda.synchronize() end
    ts[i] = (chalk.clock() - t0) * 1e3
  end
  return median(ts)
end

local function fmt_row(r)
  return ("%6d  %-13s %9.3f ms %12d B %8.2f GB/s %8.2f GFLOP/s %7.2fx"):format(r.batch, r.format, r.ms, r.bytes,
    r.gbps, r.gflops, r.speedup)
end

local Table = {}
Table.__index = Table
Table.__tostring = function(t)
  local lines = { ("y[M,%d] = x[M,%d] @ W^T on %s (median of %d runs)"):format(t.n, t.k, t.device, t.reps),
    ("%6s  %-13s %12s %14s %13s %16s %8s"):format("batch", "format", "time", "bytes read", "bandwidth", "compute",
      "vs f32") }
  for _, r in ipairs(t) do lines[#lines + 1] = fmt_row(r) end
  for _, v in ipairs(M.verdicts(t)) do lines[#lines + 1] = v end
  return table.concat(lines, "\n")
end

-- One line per (batch, format): the bytes it reads and its time, as fractions of f32's, and
-- whether the bytes saved became time saved (where they did not, unpacking ate the gain).
function M.verdicts(t)
  local out, base = {}, {}
  for _, r in ipairs(t) do
    if r.format == "f32" then
      base[r.batch] = r
    else
      local b = base[r.batch]
      out[#out + 1] = ("batch %d, %s: %.2fx the bytes of f32, %.2fx its time: %s"):format(r.batch, r.format,
        r.bytes / b.bytes, r.ms / b.ms, r.ms < b.ms and "faster" or "slower (unpacking costs more than the bytes saved)")
    end
  end
  return out
end

-- opts: n (out features, 1024), k (in features, 1024), batches ({1, 256}), formats ({"int8",
-- "int8_channel", "q4", "q8"}), device ("cpu"), reps (5), seed (0). Returns a list of rows {batch,
-- format ("f32" first), ms, bytes, gbps, gflops, speedup} that prints as a table.
function M.matmul_table(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("quant.matmul_table: opts must be a table, got " .. type(opts), 2) end
  local n, k, reps, device = opts.n or 1024, opts.k or 1024, opts.reps or 5, opts.device or "cpu"
  for name, v in pairs { n = n, k = k, reps = reps } do
    if math.type(v) ~= "integer" or v < 1 then
      error(("quant.matmul_table: %s must be a positive integer, got %s"):format(name, tostring(v)), 2)
    end
  end
  local formats = opts.formats or { "int8", "int8_channel", "q4", "q8" }
  local quant = require "chalk.quant"
  chalk.manual_seed(opts.seed or 0)
  local w = chalk.randn({ n, k }, { device = device }) * (1 / math.sqrt(k))
  local qs = {}
  for _, f in ipairs(formats) do qs[f] = quant.quantize(w, f) end
  local t = setmetatable({ n = n, k = k, device = device, reps = reps }, Table)
  for _, batch in ipairs(opts.batches or { 1, 256 }) do
    local x = chalk.randn({ batch, k }, { device = device })
    local flops = 2 * batch * n * k
    local wt = w.T
    local base_ms
    local function row(fmt, fn, wbytes)
      local ms = time_ms(fn, device, reps)
      local bytes = 4 * (batch * k + batch * n) + wbytes
      base_ms = base_ms or ms
      t[#t + 1] = { batch = batch, format = fmt, ms = ms, bytes = bytes, gbps = bytes / ms / 1e6,
        gflops = flops / ms / 1e6, speedup = base_ms / ms }
    end
    chalk.no_grad(function()
      row("f32", function() return x:matmul(wt) end, 4 * n * k)
      for _, f in ipairs(formats) do row(f, function() return chalk.qmatmul(x, qs[f]) end, qs[f].bytes) end
    end)
  end
  return t
end

return M
