-- errors_spec.lua: every core error becomes a Lua error at the user's line, naming the op, the
-- shapes, dtypes and devices involved.
local chalk = require "chalk"
local S = require "support"

describe("errors", function()
  it("broadcast errors name the op, shapes, dtypes and devices, at the caller's line", function()
    local msg = S.error_matching(function() return chalk.ones(2, 3) + chalk.ones(4) end,
      "add", "[2,3]", "[4]", "f32[2,3] on cpu", "f32[4] on cpu")
    assert.truthy(msg:find("^tests/lua/errors_spec.lua:%d+: "), msg)
  end)

  it("matmul shape errors", function()
    S.error_matching(function() return chalk.ones(2, 3):matmul(chalk.ones(2, 3)) end, "matmul", "[2,3]")
  end)

  it("dtype errors name the dtype", function()
    S.error_matching(function() return chalk.ones(2, { dtype = "i64" }):requires_grad_() end,
      "only floating-point tensors can require gradients", "i64[2] on cpu")
  end)

  it("index errors name the index and the dim in 1-based terms", function()
    S.error_matching(function() return chalk.ones(2, 3):gather(2, chalk.tensor({ { 4 } }, { dtype = "i64" })) end,
      "gather")
    S.error_matching(function() return chalk.ones(3):sum(2) end, "sum: dim 2 is out of range for a tensor of 1 dims")
  end)

  it("a device that is not there is an error, never a fallback", function()
    if chalk.cuda.is_available() then
      S.error_matching(function() return chalk.ones(2, { device = "cuda:63" }) end, "cuda:63")
    else
      S.error_matching(function() return chalk.ones(2, { device = "cuda" }) end, "cuda", "not available")
      S.error_matching(function() return chalk.ones(2):cuda() end, "not available")
    end
    S.error_matching(function() return chalk.ones(2):to("tpu") end, "'tpu' is neither a dtype")
    S.error_matching(function() return chalk.ones(2, { device = "gpu" }) end, "unknown device 'gpu'")
  end)

  it("wrong argument types are Lua argument errors", function()
    S.error_matching(function() return chalk.ones(2):view("a") end, "bad argument")
    S.error_matching(function() return chalk.Tensor.exp(3) end, "chalk tensor expected, got number")
  end)

  it("a closed tensor refuses use", function()
    local kept = S.closed_tensor(chalk.ones(2))
    S.error_matching(function() return kept + 1 end, "tensor was closed")
  end)

  it("errors leave the state usable", function()
    for _ = 1, 100 do
      pcall(function() return chalk.ones(2, 3) + chalk.ones(4) end)
    end
    assert.are.same({ 2, 2 }, (chalk.ones(2) + 1):totable())
    assert.is_true(chalk.is_grad_enabled())
  end)
end)
