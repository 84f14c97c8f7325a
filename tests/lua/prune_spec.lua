-- prune_spec.lua: magnitude pruning (lesson 15): the per-tensor mask zeroes exactly the smallest
-- weights, the 2:4 mask keeps the 2 largest of every 4, and the masks hold through optimizer steps.
local chalk = require "chalk"
local S = require "support"
local nn, optim, prune = chalk.nn, chalk.optim, chalk.efficiency.prune

local function flat(t) return t:reshape(-1):totable() end

describe("prune.magnitude_mask", function()
  for _, s in ipairs { 0, 0.3, 0.5, 0.9, 1 } do
    it(("zeroes exactly floor(%g x numel) weights, all no larger than the kept ones"):format(s), function()
      chalk.manual_seed(11)
      local w = chalk.randn(7, 13)
      local mask, absw = flat(prune.magnitude_mask(w, s)), flat(w:abs())
      local zeros, max_cut, min_kept = 0, 0, math.huge
      for i, m in ipairs(mask) do
        assert.is_true(m == 0 or m == 1)
        if m == 0 then zeros, max_cut = zeros + 1, math.max(max_cut, absw[i])
        else min_kept = math.min(min_kept, absw[i]) end
      end
      assert.are.equal(math.floor(s * 91), zeros)
      assert.is_true(max_cut <= min_kept)
    end)
  end

  it("rejects a sparsity outside [0, 1]", function()
    S.error_matching(function() prune.magnitude_mask(chalk.randn(4, 4), 1.5) end, "prune.magnitude_mask", "[0, 1]")
  end)
end)

describe("prune.two_four_mask", function()
  it("keeps the 2 largest |w| of every group of 4 along a row", function()
    chalk.manual_seed(12)
    local w = chalk.randn(5, 12)
    local mask, absw = flat(prune.two_four_mask(w)), flat(w:abs())
    for g = 0, #mask // 4 - 1 do
      local kept, cut = {}, {}
      for j = 1, 4 do
        local i = 4 * g + j
        if mask[i] == 1 then kept[#kept + 1] = absw[i] else cut[#cut + 1] = absw[i] end
      end
      assert.are.equal(2, #kept)
      assert.is_true(math.min(kept[1], kept[2]) >= math.max(cut[1], cut[2]))
    end
  end)

  it("the mask of a hand-made row", function()
    local w = chalk.tensor { { 0.1, -4, 3, 0.2, 5, 6, -7, 8 } }
    assert.are.same({ 0, 1, 1, 0, 0, 0, 1, 1 }, flat(prune.two_four_mask(w)))
  end)

  it("names the shape when the last dimension is not a multiple of 4", function()
    S.error_matching(function() prune.two_four_mask(chalk.randn(3, 6)) end, "prune.two_four_mask", "3x6", "multiple of 4")
  end)
end)

describe("prune.Pruner", function()
  local function train(model, pr, steps)
    local opt = optim.Adam(model:parameters(), { lr = 1e-2 })
    local x, y = chalk.randn(32, 16), chalk.randint(1, 5, { 32 })
    for _ = 1, steps do
      opt:zero_grad()
      chalk.cross_entropy(model(x), y):backward()
      opt:step()
      if pr then pr:apply() end
    end
  end

  for _, cfg in ipairs { { sparsity = 0.75 }, { pattern = "2:4" } } do
    it(("keeps the pruned weights exactly 0 through Adam steps (%s)"):format(cfg.pattern or "unstructured"), function()
      chalk.manual_seed(13)
      local model = nn.Sequential { nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4) }
      local pr = prune.Pruner(model, cfg)
      local s0 = pr:sparsity()
      assert.is_true(math.abs(s0 - (cfg.sparsity or 0.5)) < 0.01)
      train(model, pr, 20)
      assert.are.equal(0, pr:max_pruned())
      assert.are.equal(s0, pr:sparsity())
      -- the same steps without apply() move the pruned weights: the masks are what holds them
      train(model, nil, 3)
      assert.is_true(pr:max_pruned() > 0)
    end)
  end

  it("prunes only the weight matrices by default, and names a bad pattern", function()
    local model = nn.Sequential { nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4) }
    local pr = prune.Pruner(model, { sparsity = 0.5 })
    assert.are.equal(2, #pr.entries)
    assert.are.equal(8, model["1"].bias:ne(0):to("i64"):sum():item())
    S.error_matching(function() prune.Pruner(model, { pattern = "1:4" }) end, "prune.Pruner", "1:4")
  end)
end)
