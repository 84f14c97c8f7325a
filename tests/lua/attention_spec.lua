-- attention_spec.lua: nn.functional.attention from Lua (options, naive = flash, causal, gradients,
-- errors), chalk.cpu_matmul's rungs, and the DOT of chalk.perfcharts' pictures (log axes, pinned
-- marks, roofline roofs, label placement, the memory series).
local chalk = require "chalk"
local nn = require "chalk.nn"
local pc = require "chalk.perfcharts"
local S = require "support"
local F = nn.functional

local function maxdiff(a, b) return (a - b):abs():max():item() end

describe("nn.functional.attention", function()
  it("flash equals naive, with and without the causal mask, and equals the formula", function()
    chalk.manual_seed(3)
    local q, k, v = chalk.randn(2, 37, 8), chalk.randn(2, 29, 8), chalk.randn(2, 29, 5)
    for _, causal in ipairs { false, true } do
      local a = F.attention(q, k, v, { causal = causal })
      local b = F.attention(q, k, v, { causal = causal, impl = "flash", block = 16 })
      assert.are.same({ 2, 37, 5 }, b.shape)
      assert.is_true(maxdiff(a, b) < 1e-5)
    end
    local p = (q:matmul(k:transpose(2, 3)) / math.sqrt(8)):softmax(-1)
    assert.is_true(maxdiff(F.attention(q, k, v, { impl = "flash" }), p:matmul(v)) < 1e-5)
    local half = F.attention(q, k, v, { scale = 0.5 })
    assert.is_true(maxdiff(half, (q:matmul(k:transpose(2, 3)) * 0.5):softmax(-1):matmul(v)) < 1e-5)
  end)

  it("gradients of flash equal naive's", function()
    chalk.manual_seed(4)
    local function leaf(...) return chalk.randn(...):requires_grad_(true) end
    local q, k, v = leaf(3, 21, 4), leaf(3, 21, 4), leaf(3, 21, 4)
    local w = chalk.randn(3, 21, 4)
    local gn = chalk.grad((F.attention(q, k, v, { causal = true }) * w):sum(), { q, k, v })
    local gf = chalk.grad((F.attention(q, k, v, { causal = true, impl = "flash", block_q = 8, block_k = 5 }) * w):sum(),
      { q, k, v })
    for i = 1, 3 do assert.is_true(maxdiff(gn[i], gf[i]) < 1e-5) end
  end)

  it("says what is wrong", function()
    local q = chalk.randn(4, 3)
    S.error_matching(function() F.attention(q, q, q, { impl = "fast" }) end, 'impl must be "naive" or "flash"')
    S.error_matching(function() F.attention(q, q, q, { causl = true }) end, "unknown option 'causl'")
    S.error_matching(function() F.attention(q, q, q, { block = 0 }) end, "block must be a positive integer")
    S.error_matching(function() F.attention(q, chalk.randn(4, 2), q) end, "last dim")
    S.error_matching(function() F.attention(q, q, q, { scale = -1 }) end, "scale must be positive")
  end)
end)

describe("chalk.cpu_matmul", function()
  it("every rung computes the product; unknown rungs are named", function()
    local a, b = chalk.randn(70, 33), chalk.randn(33, 65)
    local ref = a:matmul(b)
    for _, impl in ipairs { "naive", "reordered", "tiled", "openblas" } do
      assert.is_true(maxdiff(chalk.cpu_matmul(a, b, impl), ref) < 1e-4)
    end
    assert.is_true(maxdiff(chalk.cpu_matmul(a:transpose(1, 2):contiguous():transpose(1, 2), b, "tiled"), ref) < 1e-4)
    S.error_matching(function() chalk.cpu_matmul(a, b, "fast") end, "unknown impl 'fast'")
    S.error_matching(function() chalk.cpu_matmul(a, a, "tiled") end, "expects")
  end)

  it("lists the CUDA rungs even without a GPU", function()
    local impls = chalk.cuda.matmul_impls()
    assert.are.equal("naive", impls[1])
    assert.is_true(#impls >= 8)
  end)
end)

describe("chalk.perfcharts", function()
  it("formats numbers and bytes", function()
    assert.are.equal("1024", pc.si(1024))
    assert.are.equal("2.5T", pc.si(2.5e12))
    assert.are.equal("0.25", pc.si(0.25))
    assert.are.equal("4.00 MiB", pc.bytes(4 * 2^20))
    assert.are.equal("1.50 GiB", pc.bytes(1.5 * 2^30))
  end)

  it("draws log axes with a tick per decade and pinned marks", function()
    local dot = pc.loglog_dot({ { name = "a", x = { 1, 10, 100 }, y = { 1, 100, 1e4 } } }, { title = "t" })
    for _, tick in ipairs { "<1>", "<10>", "<100>", "<1000>", "<10000>" } do
      assert.is_truthy(dot:find("label=" .. tick, 1, true), "no tick " .. tick)
    end
    assert.is_truthy(dot:find('pos="', 1, true))
    assert.is_falsy(dot:find('pos="%-'))
    -- equal ratios are equal distances on a log axis: x = 1, 10, 100 land evenly spaced
    local xs = {}
    for x in dot:gmatch('shape=circle[^]]-pos="([%d.]+),') do xs[#xs + 1] = tonumber(x) end
    assert.are.equal(3, #xs)
    assert.is_true(math.abs((xs[2] - xs[1]) - (xs[3] - xs[2])) < 0.05)
  end)

  it("puts the roofs of a roofline at the measured numbers and labels every point once", function()
    local dot = pc.roofline_dot { bandwidth = 2e12, ceilings = { { name = "f32", flops = 5e13 } },
      points = { { name = "p1", intensity = 30, flops = 4e13 }, { name = "p2", intensity = 30, flops = 3.9e13 } } }
    assert.is_truthy(dot:find("memory: 2TB/s", 1, true))
    assert.is_truthy(dot:find("f32: 50TFLOP/s", 1, true))
    assert.are.equal(1, select(2, dot:gsub("<b>p1</b>", "")))
    assert.are.equal(1, select(2, dot:gsub("<b>p2</b>", "")))
  end)

  it("counts live bytes of a profile's events, big blocks apart", function()
    local events = {
      { kind = "alloc", bytes = 100, device = "cpu" }, { kind = "op", name = "a", device = "cpu" },
      { kind = "alloc", bytes = 10, device = "cpu" }, { kind = "alloc", bytes = 7, device = "cuda:0" },
      { kind = "op", name = "b", device = "cpu" }, { kind = "free", bytes = 100, device = "cpu" },
      { kind = "op", name = "c", device = "cpu" },
    }
    local slots, peak = pc.live_series(events, "cpu", 50)
    assert.are.equal(110, peak)
    assert.are.same({ 100, 110, 10, 10 }, { slots[1].live, slots[2].live, slots[3].live, slots[4].live })
    assert.are.same({ 100, 100, 0, 0 }, { slots[1].big, slots[2].big, slots[3].big, slots[4].big })
    local _, cuda_peak = pc.live_series(events, "cuda", 50)
    assert.are.equal(7, cuda_peak)
  end)
end)
