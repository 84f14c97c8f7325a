-- indexing_spec.lua: x[i], x[{...}] and x[idx] (README: indexing), and assignment through them.
local chalk = require "chalk"
local S = require "support"

local function grid()
  return chalk.tensor { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } }
end

describe("reading", function()
  it("x[i] selects along dim 1, 1-based, negative from the end", function()
    local x = grid()
    assert.are.same({ 1, 2, 3 }, x[1]:totable())
    assert.are.same({ 7, 8, 9 }, x[-1]:totable())
    assert.are.same({ 4, 5, 6 }, x[-2]:totable())
  end)

  it("x[i] on a vector is a 0-d tensor view; :item() is the number", function()
    local v = chalk.tensor { 10, 20, 30 }
    local e = v[2]
    assert.is_true(chalk.is_tensor(e))
    assert.are.same({}, e.shape)
    assert.are.equal(20, e:item())
    assert.are.equal(20, v[2][{}]:item())
  end)

  it("x[{i, j}] selects in several dims", function()
    local x = grid()
    assert.are.equal(6, x[{ 2, 3 }]:item())
    assert.are.equal(9, x[{ -1, -1 }]:item())
    assert.are.same({ 4, 5, 6 }, x[{ 2 }]:totable())
  end)

  it("ranges {a, b} are inclusive and keep the dim; {a} is a..a; {} is the whole dim", function()
    local x = grid()
    assert.are.same({ { 4, 5, 6 }, { 7, 8, 9 } }, x[{ { 2, 3 } }]:totable())
    assert.are.same({ { 4, 5, 6 } }, x[{ { 2 } }]:totable())
    assert.are.same({ 2, 5, 8 }, x[{ {}, 2 }]:totable())
    assert.are.same({ { 2, 3 }, { 5, 6 } }, x[{ { 1, 2 }, { 2, -1 } }]:totable())
    assert.are.same({ 0, 3 }, x[{ { 2, 1 } }].shape) -- an empty range
  end)

  it("an index tensor selects rows (index_select, a copy)", function()
    local x = grid()
    local idx = chalk.tensor({ 3, 1 }, { dtype = "i64" })
    local r = x[idx]
    assert.are.same({ { 7, 8, 9 }, { 1, 2, 3 } }, r:totable())
    r[1] = 0
    assert.are.equal(7, x[{ 3, 1 }]:item())
  end)

  it("refuses bad keys with messages in 1-based terms", function()
    local x = grid()
    S.error_matching(function() return x[0] end, "index 0 is invalid")
    S.error_matching(function() return x[4] end, "index 4 is out of range for dim 1 of size 3")
    S.error_matching(function() return x[-4] end, "index -4 is out of range")
    S.error_matching(function() return x[{ 1, 2, 3 }] end, "3 entries for a tensor of 2 dims")
    S.error_matching(function() return x[{ { 1, 2, 1 } }] end, "at most two entries")
    S.error_matching(function() return x[{ "a" }] end, "entry 1 is a string")
    S.error_matching(function() return x[true] end, "cannot index a tensor with a boolean")
    S.error_matching(function() return x[1.5] end, "1.5 is not an integer")
    assert.are.same({ 4, 5, 6 }, x[2.0]:totable())
    S.error_matching(function() return chalk.tensor(1)[1] end, "cannot index a 0-d tensor")
    S.error_matching(function() return x[chalk.tensor { true }] end, "boolean mask indexing is not supported")
  end)

  it("unknown fields read as nil, unknown methods fail as Lua does", function()
    local x = grid()
    assert.is_nil(x.nonexistent)
    S.error_matching(function() x:nonexistent() end, "nonexistent")
  end)
end)

describe("assignment", function()
  it("x[i] = number fills the row", function()
    local x = grid()
    x[1] = 0
    assert.are.same({ { 0, 0, 0 }, { 4, 5, 6 }, { 7, 8, 9 } }, x:totable())
    x[-1] = -1
    assert.are.same({ -1, -1, -1 }, x[3]:totable())
  end)

  it("x[i] = tensor copies into the view, broadcasting", function()
    local x = grid()
    x[2] = chalk.tensor { 10, 20, 30 }
    assert.are.same({ 10, 20, 30 }, x[2]:totable())
    x[{ {}, 1 }] = chalk.tensor(5)
    assert.are.same({ 5, 5, 5 }, x[{ {}, 1 }]:totable())
    S.error_matching(function() x[1] = chalk.tensor { 1, 2 } end, "cannot be broadcast")
  end)

  it("x[key] = table converts then copies", function()
    local x = grid()
    x[{ { 1, 2 }, { 2, 3 } }] = { { 0, 0 }, { 0, 0 } }
    assert.are.same({ { 1, 0, 0 }, { 4, 0, 0 }, { 7, 8, 9 } }, x:totable())
  end)

  it("x[{i, j}] = v writes one element of the base", function()
    local x = grid()
    local v = x:view(9)
    x[{ 3, 2 }] = 80
    assert.are.equal(80, v[8]:item())
  end)

  it("is refused on a tensor that requires grad, allowed inside no_grad", function()
    local w = chalk.ones(2, 2, { requires_grad = true })
    S.error_matching(function() w[1] = 0 end, "requires grad", "no_grad")
    chalk.no_grad(function() w[1] = 0 end)
    assert.are.same({ { 0, 0 }, { 1, 1 } }, w:totable())
  end)

  it("copy_, fill_ and zero_ write in place and return x", function()
    local x = chalk.zeros(2, 2)
    assert.are.equal(x, x:fill_(3))
    assert.are.same({ { 3, 3 }, { 3, 3 } }, x:totable())
    x:copy_(chalk.tensor { 1, 2 })
    assert.are.same({ { 1, 2 }, { 1, 2 } }, x:totable())
    x:zero_()
    assert.are.same({ { 0, 0 }, { 0, 0 } }, x:totable())
  end)

  it("fields: name, requires_grad and grad can be set; others cannot", function()
    local x = chalk.ones(2)
    x.name = "h1"
    assert.are.equal("h1", x.name)
    x.name = nil
    assert.is_nil(x.name)
    x.requires_grad = true
    assert.is_true(x.requires_grad)
    x.grad = chalk.ones(2)
    assert.are.same({ 1, 1 }, x.grad:totable())
    x.grad = nil
    assert.is_nil(x.grad)
    S.error_matching(function() x.grad = chalk.ones(3) end, "shape, dtype and device must match")
    S.error_matching(function() x.shape = { 1 } end, "read-only")
    S.error_matching(function() x.foo = 1 end, "no field 'foo'")
  end)
end)
