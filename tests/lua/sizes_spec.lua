-- sizes_spec.lua: shape products that overflow int64 (elements or bytes) are refused with
-- "size too large" naming the op and the shape, never wrapped to a small or zero size (issue 14).
local chalk = require "chalk"
local S = require "support"

describe("size overflow", function()
  it("zeros whose byte count overflows is refused, not a segfault on fill_", function()
    S.error_matching(function() return chalk.zeros(2^31, 2^31):fill_(1) end,
      "size too large", "[2147483648,2147483648]", "f32")
  end)

  it("zeros(2^62) is refused rather than aliasing other memory", function()
    S.error_matching(function() return chalk.zeros(2^62) end, "size too large", "[4611686018427387904]")
  end)

  it("zeros(2^32, 2^32) is refused rather than having numel 0", function()
    S.error_matching(function() return chalk.zeros(2^32, 2^32) end, "empty", "size too large", "[4294967296,4294967296]")
  end)

  it("i64 and f64 shapes are checked in bytes, not only elements", function()
    S.error_matching(function() return chalk.zeros(2^61, { dtype = "i64" }) end, "size too large", "i64")
  end)

  it("expand to more than 2^63 elements is refused rather than numel 0", function()
    S.error_matching(function() return chalk.ones(4):expand(2^62, 4):numel() end,
      "expand", "size too large", "[4611686018427387904,4]", "[4]")
  end)

  it("ordinary and empty shapes still work", function()
    assert.equal(12, chalk.ones(1, 4):expand(3, 4):numel())
    assert.equal(0, chalk.zeros(0, 2^40):numel())
  end)

  it("integer arguments past int range are refused, not truncated (padding 2^40 was 0)", function()
    local x, w = chalk.ones(1, 1, 4, 4), chalk.ones(1, 1, 3, 3)
    S.error_matching(function() return chalk.conv2d(x, w, nil, 1, 2^40) end, "conv2d", "padding", "1099511627776", "out of range")
    S.error_matching(function() return chalk.conv2d(x, w, nil, { stride = 2^33 }) end, "conv2d", "stride", "out of range")
    S.error_matching(function() return chalk.max_pool2d(x, 2^32 + 2) end, "max_pool2d", "kernel", "out of range")
    assert.equal(4, chalk.conv2d(x, w, nil, 1, 1):size(3))
  end)

  it("i64 sums wrap as in PyTorch/NumPy (unsigned arithmetic, no signed overflow under UBSan)", function()
    local m = math.maxinteger
    assert.equal(math.mininteger, chalk.tensor({ m, 1 }, { dtype = "i64" }):sum():item())
    assert.equal(math.mininteger, chalk.tensor({ { m }, { 1 } }, { dtype = "i64" }):sum(1):totable()[1])
    assert.equal(7, chalk.tensor({ 3, 4 }, { dtype = "i32" }):sum():item())
  end)
  it("view and reshape to more than 2^63 elements say size too large, not a wrapped count", function()
    S.error_matching(function() return chalk.ones(4):view(2^32, 2^32) end, "view", "size too large", "[4294967296,4294967296]", "[4]")
    S.error_matching(function() return chalk.ones(4):reshape(2^32, 2^32) end, "size too large", "[4294967296,4294967296]")
    S.error_matching(function() return chalk.ones(0):view(2^40, 2^40, -1) end, "view", "size too large")
    S.error_matching(function() return chalk.ones(0):reshape(-1, 2^40, 2^40) end, "reshape", "size too large")
    assert.same({ 2, 2 }, chalk.ones(4):view(-1, 2):size())
  end)

  it("matmul and one_hot outputs are checked", function()
    S.error_matching(function() return chalk.matmul(chalk.ones(2^31, 0), chalk.ones(0, 2^31)) end,
      "matmul", "size too large", "[2147483648,2147483648]")
    S.error_matching(function() return chalk.one_hot(chalk.tensor({ 1 }, { dtype = "i64" }), 2^62) end,
      "one_hot", "size too large", "[1,4611686018427387904]")
  end)

  it("linspace, arange and randperm refuse huge counts instead of writing past a wrapped buffer", function()
    S.error_matching(function() return chalk.linspace(0, 1, 2^62) end, "linspace", "size too large", "[4611686018427387904]")
    S.error_matching(function() return chalk.arange(0, 2^62) end, "arange", "size too large", "[4611686018427387904]")
    S.error_matching(function() return chalk.arange(-2^63, 2^63 - 1024) end, "arange", "size too large")
    S.error_matching(function() return chalk.arange(0, 1, 1e-300) end, "arange", "size too large", "1e+300")
    S.error_matching(function() return chalk.randperm(2^62) end, "randperm", "size too large", "[4611686018427387904]")
    assert.equal(5, chalk.arange(5):numel())
    assert.equal(3, chalk.linspace(0, 1, 3):numel())
  end)

  it("cat and stack whose joined dim passes 2^63 are refused", function()
    local a = chalk.ones(2^62, 0)
    S.error_matching(function() return chalk.cat({ a, a }) end, "cat", "size too large", "[4611686018427387904,0]")
    S.error_matching(function() return chalk.cat({ a, a, a }, 1) end, "cat", "size too large")
    local m = (1 << 62) - 1
    assert.same({ 2 * m, 0 }, chalk.cat({ chalk.ones(m, 0), chalk.ones(m, 0) }):size())
  end)

  it("integer arguments of other functions are range-checked too", function()
    local x = chalk.ones(2, 3)
    S.error_matching(function() return x:sum(2^33) end, "dim 8589934592", "out of range")
    S.error_matching(function() return chalk.layer_norm(x, 2^32 + 1) end, "layer_norm", "out of range")
    S.error_matching(function() return x:cuda(2^32) end, "out of range")
    S.error_matching(function() return chalk.set_printoptions({ linewidth = 2^40 }) end, "linewidth")
  end)
end)

describe("fuzzer findings (tests/fuzz/fuzz_api.lua)", function()
  it("narrow with a length near 2^63 is out of bounds, not a signed overflow of start + length", function()
    local x = chalk.ones(4, 3)
    S.error_matching(function() return x:narrow(1, 2, math.maxinteger) end, "narrow", "out of bounds", "9223372036854775807")
    S.error_matching(function() return x:narrow(2, 3, math.maxinteger) end, "narrow", "out of bounds")
    assert.same({ 4, 1 }, x:narrow(2, 3, 1):size())
  end)
end)

describe("memory limit", function()
  local MiB = 1 << 20
  after_each(function() chalk.set_memory_limit(nil) end)

  it("defaults to a fraction of RAM, and set_memory_limit returns the previous limit", function()
    local default = chalk.memory_limit()
    assert.is_true(default > 64 * MiB)
    assert.equal(default, chalk.set_memory_limit(8 * MiB))
    assert.equal(8 * MiB, chalk.memory_limit())
    assert.equal(8 * MiB, chalk.set_memory_limit(nil))
    assert.equal(default, chalk.memory_limit())
    S.error_matching(function() chalk.set_memory_limit(0) end, "set_memory_limit", "positive")
  end)

  it("refuses one allocation above the limit with op, shape, bytes and limit", function()
    chalk.set_memory_limit(8 * MiB)
    S.error_matching(function() return chalk.zeros(1024, 4096) end,
      "empty", "out of memory", "[1024,4096]", "f32", "16 MiB (16777216 bytes)", "8 MiB (8388608 bytes)", "set_memory_limit")
    S.error_matching(function() return chalk.arange(-2^31, -1) end, "arange", "out of memory", "[2147483647]", "8 GiB")
    local a = chalk.ones(1024, 1)
    S.error_matching(function() return chalk.matmul(a, chalk.ones(1, 4096)) end, "matmul", "out of memory", "[1024,4096]")
    S.error_matching(function() return a:expand(1024, 4096):contiguous() end, "out of memory", "[1024,4096]")
    assert.equal(1024 * 1024, chalk.zeros(1024, 1024):numel()) -- 4 MiB still fits
  end)
end)

describe("integer elementwise ops wrap (no signed overflow under UBSan)", function()
  local min64 = math.mininteger
  it("i64 add, sub, mul, neg, abs and the scalar forms wrap as in PyTorch", function()
    local x = chalk.tensor({ 2^62, 3 }, { dtype = "i64" })
    assert.equal(min64, (x + x):totable()[1])
    assert.equal(min64, (x * 2):totable()[1])
    assert.equal(0, (x * 4):totable()[1])
    assert.equal(0, (x * chalk.tensor({ 4, 1 }, { dtype = "i64" })):totable()[1])
    assert.equal(min64, (x + 2^62):totable()[1])
    assert.equal(min64, (x:neg() - x):totable()[1])
    local m = x * 2
    assert.equal(min64, m:neg():totable()[1])
    assert.equal(min64, m:abs():totable()[1])
    local w = m - 1 -- maxinteger (totable reads through doubles: compare in the tensor)
    assert.equal(1, w:gt(2^62):sum():item())
    assert.equal(min64, (w + 1):totable()[1])
    assert.same({ -6, -9 }, chalk.cat({ x:narrow(1, 2, 1) * -2, x:narrow(1, 2, 1) * -3 }):totable())
  end)

  it("i32 computes in 64 bits and wraps back", function()
    local b = chalk.tensor({ 2147483647, -2147483648 }, { dtype = "i32" })
    assert.same({ -2, 0 }, (b + b):totable())
    assert.equal(1, (b * b):totable()[1])
    assert.equal(-2147483648, b:neg():totable()[2])
    assert.equal(-2147483648, b:abs():totable()[2])
    assert.equal(2147483647, (b - 1):totable()[2])
    assert.equal(2147483645, (b * 3):totable()[1])
    assert.same({ 1, -1 }, b:clamp(-1, 1):totable())
  end)
end)
