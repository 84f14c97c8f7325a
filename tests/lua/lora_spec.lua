-- lora_spec.lua: nn.LoRA (lesson 15): the initial output equals the base, trainable r(d+k) counted
-- from parameters(), gradients reach A and B only, merge/unmerge are exact to rounding, and
-- nn.LoRA.wrap wraps the layers it is given (nested paths too) and freezes the rest.
local chalk = require "chalk"
local S = require "support"
local nn, optim = chalk.nn, chalk.optim

local function maxdiff(a, b) return (a - b):abs():max():item() end

describe("nn.LoRA", function()
  it("starts as its base: A is r x in, B is out x r zeros, the output is the base's exactly", function()
    chalk.manual_seed(21)
    local lin = nn.Linear(12, 5)
    local x = chalk.randn(7, 12)
    local y0 = chalk.no_grad(function() return lin(x) end)
    local l = nn.LoRA(lin, { r = 3, alpha = 6 })
    assert.are.same({ 3, 12 }, l.A.shape)
    assert.are.same({ 5, 3 }, l.B.shape)
    assert.are.equal(0, l.B:abs():sum():item())
    assert.are.equal(0, maxdiff(l(x), y0))
    assert.are.equal(2, l.scaling)
  end)

  it("gives gradients to A and B only (after one step, both non-zero)", function()
    chalk.manual_seed(22)
    local l = nn.LoRA(nn.Linear(6, 4), { r = 2 })
    local x = chalk.randn(5, 6)
    local opt = optim.SGD({ l.A, l.B }, { lr = 0.5 })
    for _ = 1, 2 do
      opt:zero_grad();
      (l(x) ^ 2):sum():backward()
      opt:step()
    end
    assert.is_nil(l.base.weight.grad)
    assert.is_nil(l.base.bias.grad)
    assert.is_true(l.A.grad:abs():sum():item() > 0)
    assert.is_true(l.B.grad:abs():sum():item() > 0)
  end)

  for _, dtype in ipairs { "f32", "f64" } do
    it("merge and unmerge keep the output within 1e-6 (" .. dtype .. ")", function()
      chalk.manual_seed(23)
      local l = nn.LoRA(nn.Linear(9, 4), { r = 3, alpha = 5 })
      chalk.no_grad(function() l.B:copy_(chalk.randn(4, 3)) end)
      l:to(dtype)
      assert.is_false(l.base.weight.requires_grad) -- moving keeps the base frozen
      assert.is_true(l.A.requires_grad)
      local x = chalk.randn(6, 9):to(dtype)
      local w0 = l.base.weight:clone()
      local side = chalk.no_grad(function() return l(x) end)
      l:merge()
      assert.is_true(l.merged)
      local merged = chalk.no_grad(function() return l(x) end)
      assert.is_true(maxdiff(merged, side) <= 1e-6)
      l:merge() -- twice is once
      assert.is_true(maxdiff(chalk.no_grad(function() return l(x) end), side) <= 1e-6)
      l:unmerge()
      assert.is_true(maxdiff(l.base.weight, w0) <= 1e-6)
      assert.is_true(maxdiff(chalk.no_grad(function() return l(x) end), side) <= 1e-6)
    end)
  end

  it("names what it was given when it is not a Linear, and a bad rank", function()
    S.error_matching(function() nn.LoRA(nn.ReLU()) end, "nn.LoRA", "nn.Linear")
    S.error_matching(function() nn.LoRA(nn.Linear(2, 2), { r = 0 }) end, "nn.LoRA", "r must be a positive integer")
  end)
end)

describe("nn.LoRA.wrap", function()
  it("counts r(d+k) trainable values per wrapped layer from parameters()", function()
    chalk.manual_seed(24)
    local m = nn.Sequential { nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3) }
    local total = m:num_parameters()
    nn.LoRA.wrap(m, { "1", "3" }, { r = 4 })
    local params, n = nn.LoRA.trainable(m)
    assert.are.equal(4, #params)
    assert.are.equal(4 * (20 + 16) + 4 * (16 + 3), n)
    assert.are.equal(total + n, m:num_parameters())
    assert.are.equal(2, #nn.LoRA.modules(m))
  end)

  it("wraps a nested path of the char GPT and freezes everything else", function()
    chalk.manual_seed(25)
    local lm = nn.CharGPT { layers = 1, heads = 2, dim = 8, context = 8 }
    local x = chalk.tensor({ { 1, 2, 3, 4 } }, { dtype = "i64" })
    local y0 = chalk.no_grad(function() return lm(x) end)
    nn.LoRA.wrap(lm, { "block1.attn.qkv" }, { r = 2 })
    assert.are.equal(nn.LoRA, getmetatable(lm.block1.attn.qkv))
    local _, n = nn.LoRA.trainable(lm)
    assert.are.equal(2 * (8 + 24), n)
    local y = lm(x)
    assert.are.equal(0, maxdiff(y, y0))
    y:sum():backward()
    for name, p in lm:named_parameters() do
      if name:match("%.A$") or name:match("%.B$") then assert.is_not_nil(p.grad, name)
      else assert.is_nil(p.grad, name) end
    end
  end)

  it("names a path that is not a Linear", function()
    local m = nn.Sequential { nn.Linear(2, 2), nn.ReLU() }
    S.error_matching(function() nn.LoRA.wrap(m, { "2" }) end, "nn.LoRA.wrap", "'2'")
  end)
end)

describe("QLoRA (nn.LoRA with {quant = ...})", function()
  it("holds the base in q4, starts as the quantized base, trains A and B only, refuses to merge", function()
    chalk.manual_seed(26)
    local lin = nn.Linear(64, 8)
    local x = chalk.randn(5, 64)
    local q = chalk.quant.quantize(lin.weight, "q4")
    local want = chalk.no_grad(function() return x:matmul(chalk.quant.dequantize(q).T) + lin.bias end)
    local l = nn.LoRA(lin, { r = 4, quant = "q4" })
    assert.is_true(chalk.quant.is_quantized(l.base.qweight))
    assert.are.equal(8 * 2 * 18, l.base.qweight.bytes) -- 8 rows of 2 blocks of 32, 18 bytes a block
    local y = l(x)
    assert.is_true(maxdiff(y, want) < 1e-5)
    y:sum():backward()
    assert.is_not_nil(l.A.grad)
    assert.is_not_nil(l.B.grad)
    assert.is_nil(l.base.bias.grad)
    local _, n = nn.LoRA.trainable(l)
    assert.are.equal(4 * (64 + 8), n)
    S.error_matching(function() l:merge() end, "nn.LoRA", "QLoRA", "cannot be merged")
  end)
end)
