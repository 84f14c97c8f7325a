-- functional_spec.lua: index ops (gather, index_select, cat, stack) and the functional
-- neural-network ops chalk.nn builds on, checked against values computed by hand.
local chalk = require "chalk"
local S = require "support"

local function long(v) return chalk.tensor(v, { dtype = "i64" }) end

describe("index ops", function()
  it("gather and index_select take 1-based indices", function()
    local x = chalk.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    assert.are.same({ { 3, 1 }, { 5, 5 } }, x:gather(2, long { { 3, 1 }, { 2, 2 } }):totable())
    assert.are.same({ { 3, 1 }, { 6, 4 } }, x:index_select(2, long { 3, 1 }):totable())
    assert.are.same({ { 4, 5, 6 } }, x:index_select(1, long { -1 }):totable())
    S.error_matching(function() x:index_select(1, long { 0 }) end, "index_select")
  end)

  it("cat joins along an existing dim (default 1), stack along a new one", function()
    local a, b = chalk.tensor { { 1, 2 } }, chalk.tensor { { 3, 4 } }
    assert.are.same({ { 1, 2 }, { 3, 4 } }, chalk.cat { a, b }:totable())
    assert.are.same({ { 1, 2, 3, 4 } }, chalk.cat({ a, b }, 2):totable())
    assert.are.same({ { 1, 2, 3, 4 } }, chalk.cat({ a, b }, -1):totable())
    assert.are.same({ 2, 1, 2 }, chalk.stack { a, b }.shape)
    assert.are.same({ 1, 2, 2 }, chalk.stack({ a, b }, 2).shape)
    assert.are.same({ 1, 2, 2 }, chalk.stack({ a, b }, -1).shape)
    S.error_matching(function() chalk.cat {} end, "non-empty list")
    S.error_matching(function() chalk.cat { a, 3 } end, "entry 2 of the list is a number")
  end)
end)

describe("functional ops", function()
  it("cross_entropy is the mean of -log softmax at the 1-based targets", function()
    local logits = chalk.tensor { { 1, 2, 3 }, { 1, 1, 1 } }
    local target = long { 3, 1 }
    local z = math.exp(1) + math.exp(2) + math.exp(3)
    local expected = ((math.log(z) - 3) + math.log(3)) / 2
    S.assert_close(chalk.cross_entropy(logits, target):item(), expected)
    S.assert_close(chalk.nll_loss(logits:log_softmax(2), target):item(), expected)
  end)

  it("mse_loss", function()
    S.assert_close(chalk.mse_loss(chalk.tensor { 1, 2 }, chalk.tensor { 2, 4 }):item(), 2.5)
  end)

  it("one_hot counts classes from 1", function()
    local h = chalk.one_hot(long { 1, 3 }, 3)
    assert.are.same({ { 1, 0, 0 }, { 0, 0, 1 } }, h:totable())
    assert.are.equal("f32", chalk.one_hot(long { 2 }, 2, { dtype = "f32" }).dtype)
  end)

  it("embedding picks rows", function()
    local w = chalk.tensor { { 1, 1 }, { 2, 2 }, { 3, 3 } }
    assert.are.same({ { 3, 3 }, { 1, 1 } }, chalk.embedding(w, long { 3, 1 }):totable())
  end)

  it("layer_norm normalises the trailing dims", function()
    local x = chalk.tensor { { 1, 2, 3 }, { 2, 4, 6 } }
    local y = chalk.layer_norm(x, { 3 })
    S.assert_close(y:mean(2):totable(), { 0, 0 }, 1e-5)
    S.assert_close(y[1]:totable(), { -1.2247357, 0, 1.2247357 }, 1e-4)
    S.assert_close(chalk.layer_norm(x, 1, chalk.full({ 3 }, 2), chalk.ones(3))[1]:totable(),
      { -1.4494714, 1, 3.4494714 }, 1e-4)
    S.error_matching(function() chalk.layer_norm(x, { 4 }) end, "does not match")
  end)

  it("conv2d and max_pool2d", function()
    local x = chalk.arange(1, 17):float():view(1, 1, 4, 4)
    local w = chalk.ones(1, 1, 2, 2)
    local y = chalk.conv2d(x, w, nil, 2)
    assert.are.same({ 1, 1, 2, 2 }, y.shape)
    assert.are.same({ 14, 22, 46, 54 }, y:flatten():totable())
    local p = chalk.conv2d(x, w, chalk.tensor { 1 }, { padding = 1 })
    assert.are.same({ 1, 1, 5, 5 }, p.shape)
    assert.are.same({ 6, 8, 14, 16 }, chalk.max_pool2d(x, 2):flatten():totable())
  end)

  it("dropout zeroes and rescales in training, is the identity otherwise", function()
    chalk.manual_seed(3)
    local x = chalk.ones(10000)
    local d = chalk.dropout(x, 0.5)
    local kept = d:gt(0):float():mean():item()
    assert.is_true(math.abs(kept - 0.5) < 0.03)
    assert.are.equal(2, d:max():item())
    assert.are.same(x:totable(), chalk.dropout(x, 0.5, false):totable())
  end)
end)
