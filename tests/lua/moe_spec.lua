-- moe_spec.lua: nn.MoE (lesson 15): the capacity formula, routing and drops against a hand count,
-- dropped tokens leaving the layer as 0, the aux loss at a uniform router, gradients to the router
-- and the experts, and the parameter counts.
local chalk = require "chalk"
local S = require "support"
local nn = chalk.nn

describe("nn.MoE.capacity and route", function()
  it("capacity = ceil(k x tokens / E x factor)", function()
    assert.are.equal(256, nn.MoE.capacity(1024, 8, 2, 1.0))
    assert.are.equal(320, nn.MoE.capacity(1024, 8, 2, 1.25))
    assert.are.equal(512, nn.MoE.capacity(1024, 8, 2, 2.0))
    assert.are.equal(4, nn.MoE.capacity(10, 3, 1, 1.0))      -- Switch: ceil(10 / 3)
    assert.are.equal(5, nn.MoE.capacity(7, 4, 2, 1.25))      -- ceil(4.375)
  end)

  it("serves first choices before second choices, in token order, and drops past the capacity", function()
    -- 5 tokens, 3 experts, top-2, capacity 2; by hand:
    -- first choices: t1->1, t2->1, t3->1 (dropped: expert 1 full), t4->2, t5->3
    -- second choices: t1->2, t2->3, t3->2 (dropped: expert 2 full), t4->1 (dropped), t5->2 (dropped)
    local choice = { { 1, 2 }, { 1, 3 }, { 1, 2 }, { 2, 1 }, { 3, 2 } }
    local slot, members, load, dropped = nn.MoE.route(choice, 3, 2, 2)
    assert.are.same({ { 1, 2 }, { 4, 1 }, { 5, 2 } }, members)
    assert.are.same({ 4, 4, 2 }, load)
    assert.are.same({ 2, 2, 0 }, dropped)
    assert.are.same({ 1, 2 }, slot[1])
    assert.are.same({ 2, 2 }, slot[2])
    assert.is_nil(slot[3][1])
    assert.is_nil(slot[3][2])
    assert.are.equal(1, slot[4][1])
    assert.is_nil(slot[4][2])
    assert.are.equal(1, slot[5][1])
    assert.is_nil(slot[5][2])
  end)
end)

describe("nn.MoE forward", function()
  local function layer(cfg)
    chalk.manual_seed(cfg.seed or 31)
    return nn.MoE { dim = 6, hidden = 10, experts = cfg.experts or 3, top_k = cfg.top_k or 1,
                    capacity_factor = cfg.factor or 1.0 }
  end

  it("top-1: a kept token's output is its expert's output, a dropped token's is exactly 0", function()
    local moe = layer { experts = 3, top_k = 1, factor = 0.5 } -- capacity ceil(12 / 3 x 0.5) = 2
    local x = chalk.randn(12, 6)
    local y = chalk.no_grad(function() return moe(x) end)
    local last = moe.last
    assert.are.equal(2, last.capacity)
    local kept_rows, dropped = 0, 0
    local probs = chalk.no_grad(function() return moe.router(x):softmax(-1):totable() end)
    for t = 1, 12 do
      local best = 1
      for e = 2, 3 do if probs[t][e] > probs[t][best] then best = e end end
      local row = y:narrow(1, t, 1)
      if row:abs():sum():item() == 0 then
        dropped = dropped + 1
      else
        kept_rows = kept_rows + 1
        local want = chalk.no_grad(function() return moe["expert" .. best](x:narrow(1, t, 1)) end)
        assert.is_true((row - want):abs():max():item() < 1e-6)
      end
    end
    local hand = 0
    for e = 1, 3 do hand = hand + math.max(0, last.load[e] - last.capacity) end
    assert.are.equal(hand, dropped)
    assert.are.equal(12 - hand, kept_rows)
  end)

  it("keeps the input's shape, and drops nothing when the capacity covers every assignment", function()
    local moe = layer { experts = 4, top_k = 2, factor = 2.0 }
    local x = chalk.randn(2, 5, 6)
    local y = moe(x)
    assert.are.same({ 2, 5, 6 }, y.shape)
    for e = 1, 4 do assert.are.equal(0, moe.last.dropped[e]) end
  end)

  it("the aux loss is 1 at a uniform router and gradients reach the router and the experts", function()
    local moe = layer { experts = 4, top_k = 2, factor = 1.25 }
    chalk.no_grad(function() moe.router.weight:zero_() end)
    local x = chalk.randn(16, 6)
    local y = moe(x)
    assert.is_true(math.abs(moe.aux_loss:item() - 1) < 1e-6)
    chalk.no_grad(function() moe.router.weight:copy_(chalk.randn(4, 6)) end)
    y = moe(x)
    assert.is_true(moe.aux_loss:item() >= 1 - 1e-6 or moe.aux_loss:item() > 0)
    ;((y ^ 2):sum() + moe.aux_loss):backward()
    assert.is_true(moe.router.weight.grad:abs():sum():item() > 0)
    local reached = 0
    for e = 1, 4 do
      local g = moe["expert" .. e]["1"].weight.grad
      if g and g:abs():sum():item() > 0 then reached = reached + 1 end
    end
    assert.are.equal(4, reached)
  end)

  it("the router's gradient matches finite differences (f64)", function()
    local moe = layer { experts = 3, top_k = 2, factor = 2.0, seed = 33 }
    moe:to("f64")
    local x = chalk.randn(5, 6):to("f64")
    local function f() return ((moe(x) ^ 2):sum() + moe.aux_loss):item() end
    ;((moe(x) ^ 2):sum() + moe.aux_loss):backward()
    local w = moe.router.weight
    local g = w.grad:totable()
    for _, ij in ipairs { { 1, 1 }, { 2, 4 }, { 3, 6 } } do
      local i, j = ij[1], ij[2]
      local h, v = 1e-6, w[i][j]:item()
      chalk.no_grad(function() w[i][j] = v + h end)
      local up = chalk.no_grad(f)
      chalk.no_grad(function() w[i][j] = v - h end)
      local down = chalk.no_grad(f)
      chalk.no_grad(function() w[i][j] = v end)
      local fd = (up - down) / (2 * h)
      assert.is_true(math.abs(fd - g[i][j]) < 1e-6 * math.max(1, math.abs(fd)), ("%g vs %g"):format(fd, g[i][j]))
    end
  end)

  it("counts expert parameters and those active per token", function()
    local moe = layer { experts = 8, top_k = 2 }
    local pc = moe:param_counts()
    local per = 6 * 10 + 10 + 10 * 6 + 6
    assert.are.equal(per, pc.per_expert)
    assert.are.equal(8 * per + 6 * 8, pc.total)
    assert.are.equal(pc.total, moe:num_parameters())
    assert.are.equal(2 * per + 6 * 8, pc.active)
  end)

  it("names a bad configuration", function()
    S.error_matching(function() nn.MoE { experts = 4 } end, "nn.MoE", "dim")
    S.error_matching(function() nn.MoE { dim = 4, experts = 2, top_k = 3 } end, "nn.MoE", "top_k")
  end)
end)
