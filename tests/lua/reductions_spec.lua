-- reductions_spec.lua: sum, mean, max, min, argmax, argmin, var, std, softmax, log_softmax, with
-- 1-based dims (negative from the end), dims lists and keepdim.
local chalk = require "chalk"
local S = require "support"

local function grid()
  return chalk.tensor { { 1, 5, 3 }, { 4, 2, 6 } }
end

describe("reductions", function()
  it("sum and mean: all, one dim, several dims, keepdim", function()
    local x = grid()
    assert.are.same({}, x:sum().shape)
    assert.are.equal(21, x:sum():item())
    assert.are.same({ 5, 7, 9 }, x:sum(1):totable())
    assert.are.same({ 9, 12 }, x:sum(2):totable())
    assert.are.same({ 9, 12 }, x:sum(-1):totable())
    assert.are.same({ { 9 }, { 12 } }, x:sum(2, true):totable())
    assert.are.equal(21, x:sum({ 1, 2 }):item())
    assert.are.same({ { 21 } }, x:sum({ 1, 2 }, true):totable())
    assert.are.equal(3.5, x:mean():item())
    assert.are.same({ 2.5, 3.5, 4.5 }, x:mean(1):totable())
    assert.are.same({ 9, 12 }, chalk.sum(x, 2):totable())
    S.error_matching(function() x:sum({ 1, 1 }) end, "dim 1 appears twice")
  end)

  it("max and min: over all a 0-d tensor; over a dim values and 1-based indices", function()
    local x = grid()
    assert.are.equal(6, x:max():item())
    assert.are.equal(1, x:min():item())
    local v, i = x:max(2)
    assert.are.same({ 5, 6 }, v:totable())
    assert.are.same({ 2, 3 }, i:totable())
    assert.are.equal("i64", i.dtype)
    v, i = x:min(1)
    assert.are.same({ 1, 2, 3 }, v:totable())
    assert.are.same({ 1, 2, 1 }, i:totable())
    v, i = x:max(-1, true)
    assert.are.same({ 2, 1 }, v.shape)
    assert.are.same({ { 2 }, { 3 } }, i:totable())
  end)

  it("argmax and argmin are 1-based", function()
    local x = grid()
    assert.are.equal(6, x:argmax():item()) -- the flattened position of 6
    assert.are.equal(1, x:argmin():item())
    assert.are.same({ 2, 1, 2 }, x:argmax(1):totable())
    assert.are.same({ 1, 2 }, x:argmin(2):totable())
    assert.are.same({ { 2 }, { 3 } }, x:argmax(2, true):totable())
  end)

  it("var is unbiased by default, as torch; std is its root", function()
    local v = chalk.tensor { 1, 2, 3, 4 }
    S.assert_close(v:var():item(), 5 / 3)
    S.assert_close(v:var(1, false):item(), 1.25)
    S.assert_close(v:var(1, { unbiased = false }):item(), 1.25)
    S.assert_close(v:var({ unbiased = false }):item(), 1.25)
    S.assert_close(v:std():item(), math.sqrt(5 / 3))
    local x = grid()
    S.assert_close(x:var(2):totable(), { 4, 4 })
    assert.are.same({ 2, 1 }, x:var(2, true, true).shape)
  end)

  it("softmax and log_softmax over the last dim by default", function()
    local x = chalk.tensor { { 1, 2, 3 }, { 1, 1, 1 } }
    local e = { math.exp(1), math.exp(2), math.exp(3) }
    local z = e[1] + e[2] + e[3]
    local s = x:softmax()
    S.assert_close(s[1]:totable(), { e[1] / z, e[2] / z, e[3] / z })
    S.assert_close(s[2]:totable(), { 1 / 3, 1 / 3, 1 / 3 })
    S.assert_close(x:log_softmax(2)[1]:totable(), { 1 - math.log(z), 2 - math.log(z), 3 - math.log(z) })
    S.assert_close(x:softmax(1)[{ {}, 3 }]:totable(),
      { math.exp(3) / (math.exp(3) + math.exp(1)), math.exp(1) / (math.exp(3) + math.exp(1)) })
  end)

  it("reductions are differentiable", function()
    local w = chalk.tensor({ { 1, 5 }, { 4, 2 } }, { requires_grad = true })
    local y = w:max(2):sum() + w:mean()
    y:backward()
    assert.are.same({ { 0.25, 1.25 }, { 1.25, 0.25 } }, w.grad:totable())
  end)
end)
