-- args_spec.lua: nn, optim and data functions check their arguments and name the wrong one,
-- instead of a raw "attempt to index a number value" from inside lua/chalk/*.lua (issue 14).
local chalk = require "chalk"
local nn = require "chalk.nn"
local optim = require "chalk.optim"
local data = require "chalk.data"
local S = require "support"

describe("argument checks", function()
  it("nn.Linear names the bad size or options", function()
    S.error_matching(function() return nn.Linear("a", 3) end, "nn.Linear", "in_features", "got a")
    S.error_matching(function() return nn.Linear(3, 2.5) end, "nn.Linear", "out_features")
    S.error_matching(function() return nn.Linear(3, 2, 7) end, "nn.Linear", "opts", "number")
  end)

  it("optimizers name the bad params, parameter or option", function()
    local params = nn.Linear(2, 3):parameters()
    S.error_matching(function() return optim.SGD(5) end, "SGD", "params", "got number")
    S.error_matching(function() return optim.SGD(params, { lr = "x" }) end, "SGD", "option lr", "string")
    S.error_matching(function() return optim.SGD({ 1, 2 }, { lr = 0.1 }) end, "SGD", "parameter 1", "not a tensor")
    S.error_matching(function() return optim.Adam(params, 0.1) end, "Adam", "opts", "number")
    assert.equal(0.1, optim.SGD(params, { lr = 0.1 }).param_groups[1].lr)
  end)

  it("data.loader names the bad X, Y, opts or batch", function()
    S.error_matching(function() return data.loader(chalk.ones(4, 2), chalk.ones(4), { batch = 0 }) end, "data.loader", "batch", "got 0")
    S.error_matching(function() return data.loader(5, { batch = 2 }) end, "data.loader", "argument X", "number")
    S.error_matching(function() return data.loader(chalk.ones(4), "y", { batch = 2 }) end, "data.loader", "argument Y", "string")
    S.error_matching(function() return data.loader(chalk.ones(4), chalk.ones(4), 3) end, "data.loader", "opts", "number")
    assert.equal(2, #data.loader(chalk.ones(4), { batch = 2 }))
  end)
end)
