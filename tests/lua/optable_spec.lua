-- optable_spec.lua: the op row from Lua: x:matmul(y, {impl = ...}) picks an implementation of
-- the matmul row and runs it through the op table (gradient, profile event), chalk.ops() lists
-- the rows' gradient formulas, expressions and implementations, x:silu() (the op added through
-- core/ops/elementwise_defs.h), and the old side doors as aliases of the same path.
local chalk = require "chalk"
local S = require "support"

local function maxdiff(a, b) return (a - b):abs():max():item() end

describe("matmul implementations", function()
  it("every CPU rung equals the default and takes a gradient", function()
    local a, b = chalk.randn(9, 7):requires_grad_(), chalk.randn(7, 5)
    local ref = a:matmul(b)
    for _, impl in ipairs { "blas", "naive", "reordered", "tiled" } do
      local c = a:matmul(b, { impl = impl })
      assert.is_true(maxdiff(c, ref) < 1e-5, impl)
      a.grad = nil
      c:sum():backward()
      assert.is_true(maxdiff(a.grad, chalk.ones(9, 5):matmul(b:transpose(1, 2))) < 1e-5, impl)
    end
    local t = a:matmul(b, { impl = "tiled", tiles = { 2, 3, 4 } })
    assert.is_true(maxdiff(t, ref) < 1e-5)
  end)

  it("refuses an unknown implementation, listing the row's", function()
    local a = chalk.randn(3, 3)
    S.error_matching(function() a:matmul(a, { impl = "fast" }) end, "blas (cpu), naive (cpu), reordered (cpu), tiled (cpu)")
  end)

  it("keeps the old side doors as aliases", function()
    local a, b = chalk.randn(6, 4), chalk.randn(4, 3)
    assert.is_true(maxdiff(chalk.cpu_matmul(a, b, "tiled"), a:matmul(b)) < 1e-5)
    assert.is_true(maxdiff(chalk.cpu_matmul(a, b, "openblas"), a:matmul(b)) < 1e-5)
  end)
end)

describe("chalk.ops()", function()
  it("shows gradient formulas, elementwise expressions and implementations", function()
    local text = tostring(chalk.ops())
    assert.truthy(text:find("dx = y*(g - sum(g*y, dim))", 1, true))
    assert.truthy(text:find("y = x > 0 ? x : 0", 1, true))
    assert.truthy(text:find("impl tiled", 1, true))
    local set = {}
    for _, name in ipairs(chalk.ops()) do set[name] = true end
    assert.is_true(set.silu)
  end)

  it("gives one row as a table: chalk.op_info", function()
    local mm = chalk.op_info("matmul")
    assert.are.equal("dA = g @ B^T; dB = A^T @ g", mm.grad)
    assert.is_nil(mm.expr)
    assert.are.same({ name = "blas", device = "cpu", note = mm.impls[1].note }, mm.impls[1])
    assert.are.equal("x / (1 + EXP(-x))", chalk.op_info("silu").expr)
    S.error_matching(function() chalk.op_info("nope") end, "no op named 'nope'")
  end)
end)

describe("silu", function()
  it("is x * sigmoid(x) with its gradient", function()
    local x = chalk.tensor { -3, -0.5, 0, 0.5, 3 }:requires_grad_()
    local y = x:silu()
    assert.is_true(maxdiff(y, x * x:sigmoid()) < 1e-6)
    y:sum():backward()
    local s = x:detach():sigmoid()
    assert.is_true(maxdiff(x.grad, s * (x:detach() * (1 - s) + 1)) < 1e-6)
  end)
end)
