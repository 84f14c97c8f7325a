-- quant.lua: quantized weights for lesson 15 (core/ops/ops_quant.c does the work):
--
--   q = quant.quantize(w, "q4")      -- "int8" | "int8_channel" | "q4" | "q8"; prints format, bits, bytes
--   w2 = quant.dequantize(q)         -- f32, never needed to run: quant.linear reads q directly
--   y = quant.linear(x, q, b)        -- x @ W^T + b through the qmatmul op (gradient reaches x only)
--   lin = quant.Linear(linear, "q4") -- an nn module: a frozen quantized Linear (QLoRA's base)
--   model, report = quant.quantize_model(model, "q8")   -- every nn.Linear swapped; report.bytes_*
--   st = quant.check(w, "q4")        -- the round-trip law, checked over every element
--   t = quant.matmul_table{n=1024}   -- time and bytes of f32 vs quantized matmul, batch 1 and 256
--   quant.histogram(w, "q4", opts)   quant.bits_chart(points, opts)   (lua/chalk/quant_charts.lua)
--
-- The law (every format): a group of weights (the whole tensor for int8, a row for int8_channel,
-- 32 consecutive weights of a row for q4 and q8) has step d = max|w| / L and scale 1/d = L / max|w|
-- (L = 127, or 7 for q4); a weight is stored as code = round(w / d) in [-L, L] and read back as
-- code * d, so |w - code * d| <= d / 2 for every element. q4 and q8 store d as an f16 rounded up.
local chalk = require "chalk"
local nn = require "chalk.nn"

local quant = {}

-- The formats, in bits order: nominal bits per weight (the scales included, for groups of 32 or
-- rows large enough that one f32 per row or tensor is negligible), L, and what shares one step.
quant.formats = {
  { name = "q4", bits = 4.5, levels = 7, group = "32 weights of a row (f16 step)" },
  { name = "int8", bits = 8, levels = 127, group = "the whole tensor (f32 step)" },
  { name = "int8_channel", bits = 8, levels = 127, group = "one row, an output channel (f32 step)" },
  { name = "q8", bits = 8.5, levels = 127, group = "32 weights of a row (f16 step)" },
}
local by_name = {}
for _, f in ipairs(quant.formats) do by_name[f.name] = f end
quant.format = by_name

local function check_format(fmt, fn)
  if type(fmt) ~= "string" or not by_name[fmt] then
    error(("quant.%s: format must be one of \"int8\", \"int8_channel\", \"q4\", \"q8\"; got %s"):format(fn,
      type(fmt) == "string" and ('"' .. fmt .. '"') or type(fmt)), 3)
  end
end

local function check_q(q, fn, arg)
  if not chalk.is_qtensor(q) then
    error(("quant.%s: argument %d must be a quantized tensor (from quant.quantize), got %s"):format(fn, arg,
      chalk.is_tensor(q) and "a tensor" or type(q)), 3)
  end
end

-- quant.quantize(w, fmt): w (f32/f64, 1-D or 2-D [rows, cols], any device) -> a QTensor. Groups run
-- along the last dim; a row whose length is not a multiple of 32 ends in a padded partial block.
function quant.quantize(w, fmt)
  if not chalk.is_tensor(w) then error(("quant.quantize: argument 1 must be a tensor, got %s"):format(type(w)), 2) end
  check_format(fmt, "quantize")
  local ok, q = pcall(chalk.quantize, w:detach(), fmt)
  if not ok then error("quant." .. tostring(q):gsub("^[^\n]-:%d+: ", ""), 2) end
  return q
end

function quant.dequantize(q)
  check_q(q, "dequantize", 1)
  return chalk.dequantize(q)
end

function quant.is_quantized(q) return chalk.is_qtensor(q) end

-- y = x @ W^T (+ b) for W quantized [out, in]: the qmatmul op, which unpacks W a row (CPU) or a
-- block (CUDA) at a time. Differentiable in x (dx = g @ W through the same op) and b.
function quant.linear(x, q, b)
  if not chalk.is_tensor(x) then error(("quant.linear: argument 1 must be a tensor, got %s"):format(type(x)), 2) end
  check_q(q, "linear", 2)
  local y = chalk.qmatmul(x, q)
  if b then y = y + b end
  return y
end

-- quant.Linear(linear, fmt) or quant.Linear(q [, bias]): a Linear whose weight is frozen and
-- quantized (field qweight, not a parameter); the bias stays an f32 parameter.
local QLinear = nn.Module:extend("QLinear")
quant.Linear = QLinear
function QLinear:__init(src, fmt)
  local q, bias
  if chalk.is_qtensor(src) then
    q, bias = src, fmt
  elseif type(src) == "table" and chalk.is_tensor(rawget(src, "_parameters").weight) then
    check_format(fmt, "Linear")
    q, bias = quant.quantize(src.weight, fmt), src.bias
  else
    error("quant.Linear: argument 1 must be an nn.Linear or a quantized tensor (quant.quantize)", 3)
  end
  if q.shape[2] == nil then error("quant.Linear: the quantized weight must be 2-D [out, in]", 3) end
  rawset(self, "qweight", q)
  self.in_features, self.out_features = q.cols, q.rows
  if bias then self.bias = nn.is_parameter(bias) and bias or nn.Parameter(bias:detach()) end
end
function QLinear:forward(x)
  local q = rawget(self, "qweight")
  if chalk.is_tensor(x) and x.device ~= q.device then
    error(("quant.Linear: input on %s, quantized weight on %s (move the model before quantize_model)"):format(
      x.device, q.device), 2)
  end
  return quant.linear(x, q, self.bias)
end
function QLinear:extra_repr()
  local q = rawget(self, "qweight")
  return ("in_features=%d, out_features=%d, bias=%s, weight=%s"):format(q.cols, q.rows, tostring(self.bias ~= nil),
    tostring(q))
end

local function live_parameter_bytes()
  collectgarbage()
  collectgarbage()
  local m = chalk.memory_stats()
  return m.cpu.parameter + m.cuda.parameter
end

-- quant.quantize_model(model, fmt [, {skip = {"head", ...}}]): swaps every nn.Linear of the tree
-- (but those whose path is in skip) for a quant.Linear, in place; the model still runs forward.
-- Returns model and a report: layers, params (weights quantized), bytes_before and bytes_after
-- (the allocator's live parameter bytes, measured), and the expected bytes, params x bits / 8.
function quant.quantize_model(model, fmt, opts)
  if type(model) ~= "table" or not model.named_modules then
    error(("quant.quantize_model: argument 1 must be an nn module, got %s"):format(type(model)), 2)
  end
  check_format(fmt, "quantize_model")
  opts = opts or {}
  local skip = {}
  for _, p in ipairs(opts.skip or {}) do skip[p] = true end
  local swaps = {}
  for path, m in model:named_modules() do
    for k, c in m:named_children() do
      local cpath = path == "" and k or path .. "." .. k
      if getmetatable(c) == nn.Linear and not skip[cpath] then swaps[#swaps + 1] = { m, k, c, cpath } end
    end
  end
  local before = live_parameter_bytes()
  local report = { format = fmt, layers = 0, params = 0, qbytes = 0, paths = {} }
  for _, s in ipairs(swaps) do
    local parent, key, lin = s[1], s[2], s[3]
    local ql = QLinear(lin, fmt)
    parent[key] = ql
    report.layers, report.params = report.layers + 1, report.params + ql.qweight.numel
    report.qbytes = report.qbytes + ql.qweight.bytes
    report.paths[#report.paths + 1] = s[4]
  end
  swaps = nil
  report.bytes_before, report.bytes_after = before, live_parameter_bytes()
  report.f32_bytes = report.params * 4
  report.expected_qbytes = report.params * by_name[fmt].bits / 8
  return model, report
end

-- quant.check(w, fmt): quantizes w and checks the law |w - dequant| <= d/2 over every element.
-- Returns {format, max_err, max_bound (largest d/2), violations (elements over their bound),
-- scale (L / max|w| of the whole tensor), bits, bytes, numel, steps (f32 [rows, groups])}.
function quant.check(w, fmt)
  local q = quant.quantize(w, fmt)
  local w32 = w:detach():to("f32"):to("cpu")
  local rows = q.rows
  local w2 = w32:reshape(rows, q.cols)
  local err = (chalk.dequantize(q):to("cpu"):reshape(rows, q.cols) - w2):abs()
  local steps = q:scales()
  local groups = steps.shape[2]
  local per = fmt == "int8" and q.rows * q.cols or fmt == "int8_channel" and q.cols or 32
  local bound
  if fmt == "int8" then
    bound = steps:reshape(1, 1):expand(rows, q.cols) * 0.5
  else
    bound = (steps:reshape(rows, groups, 1):expand(rows, groups, per):reshape(rows, groups * per)
      :narrow(2, 1, q.cols)) * 0.5
  end
  -- f32 arithmetic: the product code*d is rounded once, so allow a relative 2^-22 of |w| on top
  local slack = w2:abs() * (2 ^ -22) + 1e-30
  local over = err:gt(bound + slack):sum():item()
  local amax = w2:abs():max():item()
  return {
    format = fmt, max_err = err:max():item(), max_bound = bound:max():item(), violations = math.floor(over),
    scale = amax > 0 and by_name[fmt].levels / amax or math.huge, bits = q.bits, bytes = q.bytes,
    numel = q.numel, steps = steps, q = q,
  }
end

-- the law, as the lesson states it
function quant.law(fmt)
  check_format(fmt, "law")
  local f = by_name[fmt]
  return ("%s: per %s, d = max|w| / %d (scale = %d / max|w|); code = round(w / d) in [-%d, %d]; "
    .. "|w - code*d| <= d/2 for every element; %.4g bits per weight"):format(fmt, f.group, f.levels, f.levels,
    f.levels, f.levels, f.bits)
end

-- Charts and the matmul table live in their own files; loaded on first use.
for _, name in ipairs { "histogram", "histogram_dot", "bits_chart", "bits_chart_dot" } do
  quant[name] = function(...) return require("chalk.quant_charts")[name](...) end
end
function quant.matmul_table(...) return require("chalk.quant_bench").matmul_table(...) end

return quant
