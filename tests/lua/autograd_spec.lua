-- autograd_spec.lua: backward, .grad, no_grad, chalk.grad (create_graph), and the lesson's
-- numbers: f = ln x1 + x1*x2 - sin x2 at (2, 5) is 11.652, df/dx1 = 5.5, df/dx2 = 1.716.
local chalk = require "chalk"
local S = require "support"

describe("autograd", function()
  it("reproduces the lesson's numbers", function()
    local x1 = chalk.tensor(2.0, { requires_grad = true })
    local x2 = chalk.tensor(5.0, { requires_grad = true })
    local f = x1:log() + x1 * x2 - x2:sin()
    S.assert_close(f:item(), 11.652, 1e-4)
    assert.are.equal("sub", f.grad_fn)
    assert.is_false(f.is_leaf)
    assert.is_true(x1.is_leaf)
    f:backward()
    S.assert_close(x1.grad:item(), 5.5, 1e-6)
    S.assert_close(x2.grad:item(), 2 - math.cos(5), 1e-6)
    S.assert_close(x2.grad:item(), 1.716, 1e-3)
  end)

  it("accumulates into .grad until zero_grad", function()
    local w = chalk.tensor({ 1, 2, 3 }, { requires_grad = true })
    local y = (w * w):sum()
    y:backward()
    assert.are.same({ 2, 4, 6 }, w.grad:totable())
    y = (w * 3):sum()
    y:backward()
    assert.are.same({ 5, 7, 9 }, w.grad:totable())
    w:zero_grad()
    assert.is_nil(w.grad)
  end)

  it("backward of a non-scalar takes a gradient tensor", function()
    local w = chalk.tensor({ 1, 2 }, { requires_grad = true })
    local y = w * 2
    S.error_matching(function() y:backward() end, "backward")
    y:backward(chalk.tensor { 1, 10 })
    assert.are.same({ 2, 20 }, w.grad:totable())
  end)

  it("backward on a tensor that needs no grad says why", function()
    S.error_matching(function() chalk.ones(2):sum():backward() end, "does not require grad")
  end)

  it("retain_graph lets backward run twice", function()
    local w = chalk.tensor(3.0, { requires_grad = true })
    local y = w * w
    y:backward { retain_graph = true }
    y:backward()
    assert.are.equal(12, w.grad:item())
  end)

  it("retain_grad keeps a non-leaf's gradient", function()
    local w = chalk.tensor({ 1, 2 }, { requires_grad = true })
    local h = w * 2
    h:retain_grad()
    h:sum():backward()
    assert.are.same({ 1, 1 }, h.grad:totable())
  end)

  it("no_grad records nothing and restores the mode, even after an error", function()
    local w = chalk.tensor({ 1, 2 }, { requires_grad = true })
    local y = chalk.no_grad(function() return w * 2 end)
    assert.is_false(y.requires_grad)
    assert.is_nil(y.grad_fn)
    assert.is_true(chalk.is_grad_enabled())
    local ok, err = pcall(chalk.no_grad, function()
      assert.is_false(chalk.is_grad_enabled())
      error("boom")
    end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("boom", 1, true))
    assert.is_true(chalk.is_grad_enabled())
    assert.are.same({ 1, 2, 3 }, { chalk.no_grad(function(a, b) return a, b, 3 end, 1, 2) })
    chalk.no_grad(function()
      local z = chalk.enable_grad(function() return w * 1 end)
      assert.is_true(z.requires_grad)
      assert.is_false(chalk.is_grad_enabled())
    end)
  end)

  it("chalk.grad returns gradients without touching .grad, and differentiates again", function()
    local x = chalk.tensor(2.0, { requires_grad = true })
    local y = x ^ 3
    local g = chalk.grad(y, { x }, { create_graph = true })
    S.assert_close(g[1]:item(), 12) -- 3x^2
    assert.is_nil(x.grad)
    local g2 = chalk.grad(g[1], { x })
    S.assert_close(g2[1]:item(), 12) -- 6x
    local a = chalk.tensor(1.0, { requires_grad = true })
    local b = chalk.tensor(1.0, { requires_grad = true })
    local z = chalk.grad(a * 2, { a, b }) -- b is unreachable: zeros
    assert.are.equal(2, z[1]:item())
    assert.are.equal(0, z[2]:item())
  end)

  it("requires_grad_, detach, data", function()
    local w = chalk.ones(2)
    assert.are.equal(w, w:requires_grad_())
    assert.is_true(w.requires_grad)
    w:requires_grad_(false)
    assert.is_false(w.requires_grad)
    w:requires_grad_(true)
    local d = (w * 2):detach()
    assert.is_false(d.requires_grad)
    assert.is_false(w.data.requires_grad)
    S.error_matching(function() (w * 2):requires_grad_(false) end, "not a leaf")
  end)

  it("gradients flow through views and indexing", function()
    local w = chalk.tensor({ { 1, 2 }, { 3, 4 } }, { requires_grad = true })
    local y = w[1]:sum() + w.T[{ {}, 2 }]:sum() * 10
    y:backward()
    assert.are.same({ { 1, 1 }, { 10, 10 } }, w.grad:totable())
  end)
end)
