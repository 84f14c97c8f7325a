-- superopt_spec.lua: g:superoptimize (lesson 20): every verified program passes fresh random tests
-- (modulo the prime and in floating point, also as a captured Graph replayed against the
-- original), a deliberately wrong candidate is rejected, the search's counts add up, the budget
-- stops it, and an op outside its table is named.
local chalk = require "chalk"
local so = require "chalk.superopt"
local E = so.E

local function rms_graph()
  chalk.manual_seed(3)
  local x, g, W = chalk.randn(16, 24), chalk.rand(24) + 0.5, chalk.randn(24, 8)
  x.name, g.name, W.name = "x", "g", "W"
  return chalk.capture(function(x)
    local r = 1 / ((x * x):mean(-1, true) + 1e-6):sqrt()
    return ((x * r) * g):matmul(W)
  end, x)
end

describe("g:superoptimize", function()
  it("keeps only programs that pass fresh random tests, no costlier than the original", function()
    local g = rms_graph()
    local res = g:superoptimize { depth = 3 }
    assert.is_true(#res.programs >= 1)
    local want = g:replay()
    for _, p in ipairs(res.programs) do
      assert.is_true(res:check(p, 5), tostring(p))
      assert.is_true(p.time <= res.original.time * (1 + 1e-9))
      local got = res:capture(p):replay()
      assert.is_true((got - want):abs():max():item() < 1e-4, tostring(p))
    end
    assert.are.equal("((x * g) @ W) / sqrt1", tostring(res.best))
  end)

  it("rejects a deliberately wrong candidate", function()
    local res = rms_graph():superoptimize { depth = 1 }
    local L = res.leaves
    local ok, why = res:check(E.matmul(E.mul(L.x, L.g), L.W)) -- the scale 1/rms forgotten
    assert.is_false(ok)
    assert.are.equal("differs modulo P", why)
    ok, why = res:check(E.matmul(L.x, L.W)) -- the right shape, still wrong
    assert.is_false(ok)
    ok, why = res:check(E.mul(L.x, L.g)) -- the wrong shape
    assert.is_false(ok)
    assert.is_truthy(why:find("shape", 1, true))
    assert.is_true(res:check(E.div(E.matmul(E.mul(L.x, L.g), L.W), L.sqrt1)))
  end)

  it("counts every generated program once, grows per depth, and stops at the budget", function()
    local res = rms_graph():superoptimize { depth = 2 }
    for _, s in ipairs(res.stats) do
      assert.are.equal(s.generated, s.shape + s.cost + s.merged + s.kept + s.rejected + s.verified)
    end
    assert.is_true(res.stats[2].generated > 5 * res.stats[1].generated)
    local cut = rms_graph():superoptimize { depth = 3, budget = 100 }
    assert.is_true(cut.truncated)
    assert.are.equal(100, cut.generated)
  end)

  it("reassociates a matmul chain, which no rule-based pass does", function()
    local A, B, v = chalk.randn(12, 12), chalk.randn(12, 12), chalk.randn(12, 1)
    A.name, B.name, v.name = "A", "B", "v"
    local g = chalk.capture(function(v) return A:matmul(B):matmul(v) end, v)
    local _, _, before = g:totals()
    g:optimize { "dce", "cse", "fold", "algebra" }
    local _, _, after = g:totals()
    assert.are.equal(before, after)
    local res = g:superoptimize { depth = 2 }
    assert.are.equal("A @ (B @ v)", tostring(res.best))
  end)

  it("names an op it has no row for", function()
    local g = chalk.capture(function(x) return x:softmax(-1) end, chalk.randn(3, 4))
    local ok, err = pcall(g.superoptimize, g, { depth = 1 })
    assert.is_false(ok)
    assert.is_truthy(err:find("op softmax", 1, true))
  end)
end)
