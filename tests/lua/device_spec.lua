-- device_spec.lua: dtype conversions and device moves; chalk.cuda. The CUDA cases run where a GPU
-- is present and are skipped (with the reason printed) elsewhere.
local chalk = require "chalk"
local S = require "support"

describe("conversions", function()
  it("to() takes a dtype, a device, both, an options table or a tensor", function()
    local x = chalk.tensor { 1.5, 2.5 }
    assert.are.equal("f64", x:to("f64").dtype)
    assert.are.equal("i64", x:to("i64").dtype)
    assert.are.same({ 1, 2 }, x:to("i64"):totable())
    assert.are.equal("f64", x:to { dtype = "f64" }.dtype)
    assert.are.equal("f64", x:to(chalk.zeros(1, { dtype = "f64" })).dtype)
    assert.are.equal("cpu", x:to("cpu").device)
  end)

  it("float, double, half, bfloat16, int, long, char, bool", function()
    local x = chalk.tensor { 0, 1.25, -2 }
    assert.are.equal("f32", x:double():float().dtype)
    assert.are.equal("f64", x:double().dtype)
    assert.are.equal("f16", x:half().dtype)
    assert.are.same({ 0, 1.25, -2 }, x:half():totable())
    assert.are.equal("bf16", x:bfloat16().dtype)
    assert.are.equal("i32", x:int().dtype)
    assert.are.equal("i64", x:long().dtype)
    assert.are.equal("i8", x:char().dtype)
    assert.are.same({ false, true, true }, x:bool():totable())
  end)

  it("cpu() of a cpu tensor is the same tensor", function()
    local x = chalk.ones(2)
    local y = x:cpu()
    y[1] = 5
    assert.are.equal(5, x[1]:item())
  end)
end)

describe("chalk.cuda", function()
  it("answers is_available, device_count and synchronize consistently", function()
    local available = chalk.cuda.is_available()
    assert.are.equal("boolean", type(available))
    local n = chalk.cuda.device_count()
    if available then
      assert.is_true(n >= 1)
      assert.is_nil(chalk.cuda.unavailable_reason())
    else
      assert.are.equal(0, n)
      assert.are.equal("string", type(chalk.cuda.unavailable_reason()))
      S.error_matching(function() chalk.ones(1):cuda() end, "not available")
    end
    chalk.cuda.synchronize()
  end)

  local gpu = chalk.cuda.is_available()
  if not gpu then
    print("device_spec: CUDA cases skipped: " .. tostring(chalk.cuda.unavailable_reason()))
  end

  it("moves tensors to the GPU and back, values intact #gpu", function()
    if not gpu then return end
    local x = chalk.tensor { { 1, 2 }, { 3, 4 } }
    local g = x:cuda()
    assert.are.equal("cuda:0", g.device)
    assert.are.same(x:totable(), g:cpu():totable())
    assert.are.same({ { 2, 3 }, { 4, 5 } }, (g + 1):totable())
    assert.are.same({ { 7, 10 }, { 15, 22 } }, g:matmul(g):cpu():totable())
    local z = chalk.zeros(2, { device = "cuda" })
    assert.are.equal("cuda:0", z.device)
    assert.truthy(tostring(g):find("device=cuda:0", 1, true))
    S.error_matching(function() return g + x end, "cuda:0", "cpu")
    S.error_matching(function() chalk.ones(1, { device = "cuda:" .. chalk.cuda.device_count() }) end,
      "not available")
    assert.is_true(chalk.cuda.memory_allocated() > 0)
    assert.are.equal("string", type(chalk.cuda.get_device_name()))
  end)

  it("autograd works on the GPU #gpu", function()
    if not gpu then return end
    local x1 = chalk.tensor(2.0, { requires_grad = true, device = "cuda" })
    local x2 = chalk.tensor(5.0, { requires_grad = true, device = "cuda" })
    local f = x1:log() + x1 * x2 - x2:sin()
    f:backward()
    S.assert_close(f:item(), 11.652, 1e-4)
    S.assert_close(x1.grad:item(), 5.5, 1e-5)
    S.assert_close(x2.grad:item(), 1.716, 1e-3)
  end)
end)
