-- slice_spec.lua: dist.slice_stages, pipeline stage slicing by dynamic programming: its bottleneck
-- equals brute force on random chains of 1 to 8 layers, its stages cover the chain in order, and a
-- known case is sliced as by hand (busted).
local chalk = require "chalk"
local dist = chalk.dist

describe("dist.slice_stages", function()
  it("agrees with brute force and covers the chain with p contiguous stages", function()
    math.randomseed(21)
    for n = 1, 8 do
      for _ = 1, 10 do
        local costs = {}
        for i = 1, n do costs[i] = math.random(1, 20) end
        local p = math.random(1, n)
        local dp, bf = dist.slice_stages(costs, p), dist.slice_stages_brute(costs, p)
        assert.are.equal(bf.bottleneck, dp.bottleneck, table.concat(costs, ",") .. " p=" .. p)
        assert.are.equal(p, #dp.bounds)
        local nxt, worst = 1, 0
        for k, b in ipairs(dp.bounds) do
          assert.are.equal(nxt, b[1]); assert.is_true(b[2] >= b[1])
          nxt, worst = b[2] + 1, math.max(worst, dp.loads[k])
        end
        assert.are.equal(n + 1, nxt)
        assert.are.equal(worst, dp.bottleneck)
      end
    end
  end)
  it("slices a known chain as by hand", function()
    local s = dist.slice_stages({1, 1, 1, 1, 8, 1, 1, 1}, 3)
    assert.are.equal(8, s.bottleneck)
    assert.are.same({5, 5}, s.bounds[2])
  end)
  it("refuses impossible stage counts and negative costs", function()
    assert.has_error(function() dist.slice_stages({1, 2}, 3) end)
    assert.has_error(function() dist.slice_stages({1, -2}, 1) end)
  end)
end)
