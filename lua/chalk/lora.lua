-- lora.lua: nn.LoRA, low-rank adaptation (Hu et al. 2021, loralib's Linear): a frozen Linear with a
-- trainable side path B A of rank r; and the model-level helpers that wrap chosen layers.
--
--   l = nn.LoRA(nn.Linear(784, 256), {r = 8, alpha = 16})  -- y = x W^T + b + (alpha/r) x A^T B^T
--   l:merge()    -- W <- W + (alpha/r) B A: one matmul again, the same outputs
--   l:unmerge()  -- W <- W - (alpha/r) B A
--   nn.LoRA.wrap(model, {"1", "3"}, {r = 8})  -- wraps those Linear children, freezes the rest
--   params, n = nn.LoRA.trainable(model)      -- what the optimizer gets: every A and B
--
-- Invariants: A is [r, in] (kaiming-uniform, as loralib), B is [out, r] zeros, so a fresh LoRA
-- computes exactly what its base does. The base's weight and bias stay registered (state_dict,
-- parameters() and the memory category "parameter" still hold them) but do not require grad, so
-- backward gives A and B gradients and the base none. Merging is exact up to f32 rounding; a merged
-- LoRA skips the side path. With {quant = "q4"} (QLoRA) the base is chalk.quant's quant.Linear: the
-- weight held only in the 4-bit layout and multiplied through the dequantizing matmul (qmatmul),
-- the adapters in f32; merge is then refused (a merged weight would need requantizing).
local chalk = require "chalk"
local nn = require "chalk.nn"

local LoRA = nn.Module:extend("LoRA")
nn.LoRA = LoRA

local function is_linear(m) return type(m) == "table" and getmetatable(m) == nn.Linear end

function LoRA:__init(linear, opts)
  if not is_linear(linear) then
    error(("nn.LoRA: argument 1 must be an nn.Linear, got %s"):format(
      type(linear) == "table" and tostring(getmetatable(linear) or "a table") or type(linear)), 3)
  end
  opts = opts or {}
  local r, alpha = opts.r or 8, opts.alpha or 16
  if math.type(r) ~= "integer" or r < 1 then
    error(("nn.LoRA: r must be a positive integer, got %s"):format(tostring(r)), 3)
  end
  self.in_features, self.out_features, self.r, self.alpha = linear.in_features, linear.out_features, r, alpha
  self.scaling = alpha / r
  self.merged = false
  linear.weight.requires_grad = false
  if linear.bias then linear.bias.requires_grad = false end
  -- QLoRA: the base becomes chalk.quant's frozen quantized Linear; the f32 weight is let go
  self.base = opts.quant and (chalk.quant or require "chalk.quant").Linear(linear, opts.quant) or linear
  self.quant_format = opts.quant
  local bound = 1 / math.sqrt(linear.in_features) -- kaiming_uniform(a = sqrt(5)), as nn.Linear
  self.A = nn.Parameter(chalk.no_grad(function() return chalk.rand(r, linear.in_features) * (2 * bound) - bound end))
  self.B = nn.Parameter(chalk.zeros(linear.out_features, r))
end

-- The side path (alpha/r) (x A^T) B^T.
function LoRA:delta(x) return x:matmul(self.A.T):matmul(self.B.T) * self.scaling end

function LoRA:forward(x)
  local y = self.base(x)
  if self.merged then return y end
  return y + self:delta(x)
end

local function fold(self, sign)
  if self.quant_format then error("nn.LoRA: a quantized base (QLoRA) cannot be merged in place; dequantize it first", 3) end
  chalk.no_grad(function()
    self.base.weight:add_(self.B:matmul(self.A) * (sign * self.scaling))
  end)
end

function LoRA:merge()
  if not self.merged then fold(self, 1); self.merged = true end
  return self
end

function LoRA:unmerge()
  if self.merged then fold(self, -1); self.merged = false end
  return self
end

function LoRA:extra_repr()
  return ("in_features=%d, out_features=%d, r=%d, alpha=%g%s%s"):format(self.in_features, self.out_features,
    self.r, self.alpha, self.merged and ", merged" or "", self.quant_format and (", base=" .. self.quant_format) or "")
end

-- nn.LoRA.wrap(model, paths, opts): replaces each Linear at a path ("1", "block1.attn.qkv"; default:
-- every Linear of the model) by nn.LoRA(linear, opts), and freezes every other parameter unless
-- opts.freeze == false. Returns the model and the list of LoRA modules.
function LoRA.wrap(model, paths, opts)
  opts = opts or {}
  if not paths then
    paths = {}
    for path, m in model:named_modules() do if is_linear(m) and path ~= "" then paths[#paths + 1] = path end end
  end
  if opts.freeze ~= false then
    for _, p in model:named_parameters() do p.requires_grad = false end
  end
  local wrapped = {}
  for _, path in ipairs(paths) do
    local parent, key = model, nil
    for part in path:gmatch("[^.]+") do
      if key then parent = parent[key] end
      key = part
    end
    local child = parent and parent[key]
    if not is_linear(child) then
      error(("nn.LoRA.wrap: '%s' is not an nn.Linear of the model"):format(path), 2)
    end
    parent[key] = LoRA(child, opts)
    wrapped[#wrapped + 1] = parent[key]
  end
  return model, wrapped
end

-- The parameters that require grad (what the optimizer should get) and their number of values.
function LoRA.trainable(model)
  local list, n = {}, 0
  for _, p in model:named_parameters() do
    if p.requires_grad then list[#list + 1], n = p, n + p:numel() end
  end
  return list, n
end

-- Every LoRA module of a model, depth first.
function LoRA.modules(model)
  local list = {}
  for _, m in model:named_modules() do if getmetatable(m) == LoRA then list[#list + 1] = m end end
  return list
end

return LoRA
