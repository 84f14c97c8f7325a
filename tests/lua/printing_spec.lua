-- printing_spec.lua: tostring(x) as PyTorch prints (checked against torch 2.x output), followed by
-- shape, dtype, device, name and requires_grad / grad_fn.
local chalk = require "chalk"
local S = require "support"

local function str(x) return tostring(x) end

describe("tostring", function()
  it("prints floats with precision 4, aligned", function()
    assert.are.equal("tensor([[1.0000, 2.5000],\n        [3.0000, 4.0000]], shape={2,2}, dtype=f32, device=cpu)",
      str(chalk.tensor { { 1, 2.5 }, { 3, 4 } }))
    assert.are.equal("tensor([ 0.0000, -1.5000], shape={2}, dtype=f32, device=cpu)", str(chalk.tensor { 0, -1.5 }))
  end)

  it("prints integral floats as 1. and integers plainly", function()
    assert.are.equal("tensor([1., 2., 3.], shape={3}, dtype=f32, device=cpu)", str(chalk.tensor { 1, 2, 3 }))
    assert.are.equal("tensor([  1, -20, 300], shape={3}, dtype=i64, device=cpu)",
      str(chalk.tensor({ 1, -20, 300 }, { dtype = "i64" })))
    assert.are.equal("tensor([ true, false], shape={2}, dtype=bool, device=cpu)", str(chalk.tensor { true, false }))
  end)

  it("switches to scientific notation for wide ranges", function()
    assert.are.equal("tensor([1.0000e-05, 1.0000e+00], shape={2}, dtype=f32, device=cpu)",
      str(chalk.tensor { 1e-5, 1 }))
  end)

  it("prints nan and inf as torch does", function()
    assert.are.equal("tensor([nan, inf, 1.], shape={3}, dtype=f32, device=cpu)", str(chalk.tensor { 0 / 0, 1 / 0, 1 }))
  end)

  it("prints 0-d and empty tensors", function()
    assert.are.equal("tensor(3.2500, shape={}, dtype=f32, device=cpu)", str(chalk.tensor(3.25)))
    assert.are.equal("tensor([], shape={2,0}, dtype=f32, device=cpu)", str(chalk.zeros(2, 0)))
  end)

  it("wraps long rows at 80 columns", function()
    assert.are.equal(
      "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n" ..
      "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n" ..
      "        28., 29.], shape={30}, dtype=f32, device=cpu)",
      str(chalk.arange(0, 30):float()))
  end)

  it("summarises past 1000 elements with ...", function()
    assert.are.equal("tensor([   0,    1,    2,  ...,  998,  999, 1000], shape={1001}, dtype=i64, device=cpu)",
      str(chalk.arange(0, 1001)))
    assert.are.equal(
      "tensor([[   0,    1,    2,  ...,  997,  998,  999],\n" ..
      "        [1000, 1001, 1002,  ..., 1997, 1998, 1999]], shape={2,1000}, dtype=i64, device=cpu)",
      str(chalk.arange(0, 2000):view(2, 1000)))
    local big = str(chalk.zeros(100, 100))
    assert.truthy(big:find("...,\n", 1, true))
    assert.is_true(#big < 1000)
  end)

  it("separates blocks of 3-d tensors with a blank line", function()
    assert.are.equal(
      "tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]], shape={2,2,2}, dtype=i64, device=cpu)",
      str(chalk.arange(0, 8):view(2, 2, 2)))
  end)

  it("shows requires_grad on leaves, grad_fn on results, and the name", function()
    local w = chalk.tensor({ 1, 2 }, { requires_grad = true })
    assert.are.equal("tensor([1., 2.], shape={2}, dtype=f32, device=cpu, requires_grad=true)", str(w))
    w.name = "w"
    assert.are.equal("tensor([-1.3133, -0.3133], shape={2}, dtype=f32, device=cpu, grad_fn=<LogSoftmaxBackward>)",
      str(w:log_softmax(1)))
    assert.are.equal('tensor([1., 2.], shape={2}, dtype=f32, device=cpu, name="w", requires_grad=true)', str(w))
    assert.truthy(str(w * w):find("grad_fn=<MulBackward>", 1, true))
  end)

  it("set_printoptions changes precision and returns the old options", function()
    local old = chalk.set_printoptions { precision = 2 }
    assert.are.equal(4, old.precision)
    local s = str(chalk.tensor { 1.5, 2.25 })
    chalk.set_printoptions(old)
    assert.are.equal("tensor([1.50, 2.25], shape={2}, dtype=f32, device=cpu)", s)
    assert.are.equal("tensor([1.5000, 2.2500], shape={2}, dtype=f32, device=cpu)", str(chalk.tensor { 1.5, 2.25 }))
  end)

  it("prints a closed tensor as closed", function()
    assert.are.equal("tensor(closed)", str(S.closed_tensor(chalk.ones(1))))
  end)
end)
