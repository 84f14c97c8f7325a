-- operators_spec.lua: + - * / ^ and unary - between tensors and with numbers on either side,
-- the elementwise methods, comparisons, where, and what stays Lua (==, <, #).
local chalk = require "chalk"
local S = require "support"

local function t(v, o) return chalk.tensor(v, o) end

describe("arithmetic metamethods", function()
  local x, y
  before_each(function()
    x = t { 1, 2, 4 }
    y = t { 2, 4, 8 }
  end)

  it("tensor op tensor", function()
    assert.are.same({ 3, 6, 12 }, (x + y):totable())
    assert.are.same({ -1, -2, -4 }, (x - y):totable())
    assert.are.same({ 2, 8, 32 }, (x * y):totable())
    assert.are.same({ 0.5, 0.5, 0.5 }, (x / y):totable())
    assert.are.same({ 1, 16, 65536 }, (x ^ y):totable())
  end)

  it("tensor op number", function()
    assert.are.same({ 3, 4, 6 }, (x + 2):totable())
    assert.are.same({ -1, 0, 2 }, (x - 2):totable())
    assert.are.same({ 3, 6, 12 }, (x * 3):totable())
    assert.are.same({ 0.5, 1, 2 }, (x / 2):totable())
    assert.are.same({ 1, 4, 16 }, (x ^ 2):totable())
    S.assert_close((x / 3):totable(), { 1 / 3, 2 / 3, 4 / 3 })
  end)

  it("number op tensor", function()
    assert.are.same({ 3, 4, 6 }, (2 + x):totable())
    assert.are.same({ 1, 0, -2 }, (2 - x):totable())
    assert.are.same({ 3, 6, 12 }, (3 * x):totable())
    assert.are.same({ 2, 1, 0.5 }, (2 / x):totable())
    assert.are.same({ 2, 4, 16 }, (2 ^ x):totable())
  end)

  it("unary minus", function()
    assert.are.same({ -1, -2, -4 }, (-x):totable())
    assert.are.same({ 1, 2, 4 }, (-(-x)):totable())
  end)

  it("broadcasts as NumPy", function()
    local col = t { { 1 }, { 2 } }
    assert.are.same({ { 2, 3, 5 }, { 3, 4, 6 } }, (col + x):totable())
    assert.are.same({ { 0, 1, 3 }, { -1, 0, 2 } }, (x - col):totable())
  end)

  it("keeps dtypes: integers stay integers, division gives floats", function()
    local i = t({ 1, 2, 3 }, { dtype = "i64" })
    assert.are.equal("i64", (i + 1).dtype)
    assert.are.equal("i64", (2 * i).dtype)
    assert.are.equal("i64", (i - i).dtype)
    assert.are.equal("f32", (i / 2).dtype)
    assert.are.equal("f32", (i + 0.5).dtype)
    assert.are.same({ 1.5, 2.5, 3.5 }, (i + 0.5):totable())
    local d = t({ 1, 2 }, { dtype = "f64" })
    assert.are.equal("f64", (d * 2).dtype)
    assert.are.equal("f64", (1 - d).dtype)
    assert.are.equal("f64", (d + t { 1, 1 }).dtype)
  end)

  it("the add/sub/mul/div/pow methods and chalk functions do the same", function()
    assert.are.same((x + y):totable(), x:add(y):totable())
    assert.are.same((x - 1):totable(), x:sub(1):totable())
    assert.are.same((x * y):totable(), chalk.mul(x, y):totable())
    assert.are.same((x / y):totable(), x:div(y):totable())
    assert.are.same((x ^ 3):totable(), x:pow(3):totable())
    assert.are.same((x ^ y):totable(), x:pow(y):totable())
  end)

  it("refuses what is not a tensor or a number", function()
    S.error_matching(function() return x + "a" end, "chalk tensor expected, got string")
    S.error_matching(function() return {} * x end, "chalk tensor expected, got table")
  end)
end)

describe("elementwise methods", function()
  it("compute the functions", function()
    local v = t { 0.5, 1, 2 }
    S.assert_close(v:exp():totable(), { math.exp(0.5), math.exp(1), math.exp(2) })
    S.assert_close(v:log():totable(), { math.log(0.5), 0, math.log(2) })
    S.assert_close(v:sqrt():totable(), { math.sqrt(0.5), 1, math.sqrt(2) })
    S.assert_close(v:sin():totable(), { math.sin(0.5), math.sin(1), math.sin(2) })
    S.assert_close(v:cos():totable(), { math.cos(0.5), math.cos(1), math.cos(2) })
    local s = t { -2, 0, 3 }
    assert.are.same({ 2, 0, 3 }, s:abs():totable())
    assert.are.same({ -1, 0, 1 }, s:sign():totable())
    assert.are.same({ 0, 0, 3 }, s:relu():totable())
    S.assert_close(s:tanh():totable(), { -0.9640276, 0, 0.9950548 })
    S.assert_close(s:sigmoid():totable(), { 1 / (1 + math.exp(2)), 0.5, 1 / (1 + math.exp(-3)) })
    S.assert_close(t({ -1, 0, 1 }):gelu():totable(), { -0.1586553, 0, 0.8413447 })
    S.assert_close(chalk.exp(v):totable(), v:exp():totable())
  end)

  it("clamp takes bounds, nil for an open side, or {min=, max=}", function()
    local s = t { -2, 0, 3 }
    assert.are.same({ -1, 0, 1 }, s:clamp(-1, 1):totable())
    assert.are.same({ 0, 0, 3 }, s:clamp(0):totable())
    assert.are.same({ -2, 0, 1 }, s:clamp(nil, 1):totable())
    assert.are.same({ -1, 0, 3 }, s:clamp { min = -1 }:totable())
  end)

  it("maximum and minimum, with tensors or numbers", function()
    local a, b = t { 1, 5, 3 }, t { 4, 2, 3 }
    assert.are.same({ 4, 5, 3 }, a:maximum(b):totable())
    assert.are.same({ 1, 2, 3 }, a:minimum(b):totable())
    assert.are.same({ 2, 5, 3 }, a:maximum(2):totable())
    assert.are.same({ 4, 5, 3 }, a:max(b):totable())
    assert.are.same({ 1, 2, 3 }, a:min(b):totable())
  end)
end)

describe("comparisons", function()
  it("eq ne lt le gt ge with tensors or numbers give bool tensors", function()
    local a = t { 1, 2, 3 }
    local r = a:lt(2)
    assert.are.equal("bool", r.dtype)
    assert.are.same({ true, false, false }, r:totable())
    assert.are.same({ true, true, false }, a:le(2):totable())
    assert.are.same({ false, false, true }, a:gt(2):totable())
    assert.are.same({ false, true, true }, a:ge(2):totable())
    assert.are.same({ false, true, false }, a:eq(2):totable())
    assert.are.same({ true, false, true }, a:ne(t { 2, 2, 2 }):totable())
    assert.are.same({ true, true, false }, chalk.lt(a, 2.5):totable())
  end)

  it("chalk.where picks elementwise; numbers allowed", function()
    local a = t { 1, -2, 3 }
    assert.are.same({ 1, 0, 3 }, chalk.where(a:gt(0), a, 0):totable())
    assert.are.same({ 9, -2, 9 }, chalk.where(a:gt(0), 9, a):totable())
    assert.are.same({ 1, 0, 1 }, chalk.where(a:gt(0), 1, 0):totable())
  end)

  it("== is identity only for one object, else explains (issue 15); < and <= explain what to use", function()
    local a = t { 1 }
    assert.is_true(a == a)
    S.error_matching(function() return a == t { 1 } end, "x:eq(y)")
    S.error_matching(function() return a[1] == a[1] end, "chalk.equal(x, y)") -- two views, two objects
    assert.is_false(rawequal(a[1], a[1]))
    S.error_matching(function() return a < a end, "x:lt(y)")
    S.error_matching(function() return a <= a end, "x:le(y)")
  end)
end)

describe("matmul", function()
  it("multiplies matrices, vectors and batches as torch.matmul", function()
    local a = t { { 1, 2 }, { 3, 4 } }
    local b = t { { 5, 6 }, { 7, 8 } }
    assert.are.same({ { 19, 22 }, { 43, 50 } }, a:matmul(b):totable())
    assert.are.same({ 17, 39 }, a:matmul(t { 5, 6 }):totable())
    local batch = chalk.ones(3, 2, 2)
    assert.are.same({ 3, 2, 2 }, batch:matmul(a).shape)
    assert.are.same({ { 19, 22 }, { 43, 50 } }, chalk.matmul(a, b):totable())
  end)
end)
