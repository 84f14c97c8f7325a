-- step_ops_spec.lua: the training step's fused rows against PyTorch on the CPU (f64): chalk.linear
-- (y = x W^T + b in one op, as torch.nn.functional.linear) and gelu's one-kernel backward, values
-- and gradients.
package.path = "tests/lua/?.lua;" .. package.path
local chalk = require "chalk"
local ref = require "torch_ref"

describe("fused step rows against torch", function()
  it("chalk.linear equals torch's F.linear, gradients of x, W and b included", function()
    chalk.manual_seed(9)
    for _, xs in ipairs { { 7, 33 }, { 2, 3, 33 }, { 33 } } do
      local x = chalk.randn(xs, { dtype = "f64" }):requires_grad_()
      local w = chalk.randn(5, 33, { dtype = "f64" }):requires_grad_()
      local b = chalk.randn(5, { dtype = "f64" }):requires_grad_()
      local y = chalk.linear(x, w, b)
      local c = chalk.randn(y.shape, { dtype = "f64" })
      ;(y * c):sum():backward()
      local out = ref.run({ x = x:detach(), w = w:detach(), b = b:detach(), c = c }, [[
x = I["x"].clone().requires_grad_(True); w = I["w"].clone().requires_grad_(True); b = I["b"].clone().requires_grad_(True)
y = torch.nn.functional.linear(x, w, b)
(y * I["c"]).sum().backward()
O["y"] = y; O["dx"] = x.grad; O["dw"] = w.grad; O["db"] = b.grad]])
      assert.is_true(ref.maxdiff(y, out.y) < 1e-12, "y")
      assert.is_true(ref.maxdiff(x.grad, out.dx) < 1e-12, "dx")
      assert.is_true(ref.maxdiff(w.grad, out.dw) < 1e-12, "dW")
      assert.is_true(ref.maxdiff(b.grad, out.db) < 1e-12, "db")
    end
  end)

  it("gelu's backward (one gelu_bwd op) equals torch's, and its double backward too", function()
    chalk.manual_seed(4)
    local x = chalk.randn(6, 5, { dtype = "f64" }):requires_grad_()
    local g = chalk.randn(6, 5, { dtype = "f64" })
    local dx = chalk.grad((x:gelu() * g):sum(), { x }, { create_graph = true })[1]
    local prof = chalk.profile(function() chalk.grad((x:gelu() * g):sum(), { x }) end)
    assert.truthy(tostring(prof):find("gelu_bwd", 1, true), tostring(prof))
    local ddx = chalk.grad(dx:sum(), { x })[1]
    local out = ref.run({ x = x:detach(), g = g }, [[
x = I["x"].clone().requires_grad_(True)
dx, = torch.autograd.grad((torch.nn.functional.gelu(x) * I["g"]).sum(), [x], create_graph=True)
ddx, = torch.autograd.grad(dx.sum(), [x])
O["dx"] = dx; O["ddx"] = ddx]])
    assert.is_true(ref.maxdiff(dx, out.dx) < 1e-12, "dx")
    assert.is_true(ref.maxdiff(ddx, out.ddx) < 1e-12, "ddx")
  end)
end)
