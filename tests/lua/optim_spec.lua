-- optim_spec.lua: chalk.optim against torch.optim: the same parameters, the same gradients,
-- ten steps, the same numbers; plus state tagging, zero_grad, groups, errors and state dicts.
package.path = "tests/lua/?.lua;" .. package.path
local chalk = require "chalk"
local nn, optim = chalk.nn, chalk.optim
local ref = require "torch_ref"

-- Ten steps of an optimizer on two parameters with loss sum(c1 * p1^2) + sum(c2 * sin(p2)),
-- in chalk (f64) and in torch; returns the largest difference of the final parameters.
local function against_torch(make, torch_ctor, steps)
  steps = steps or 10
  chalk.manual_seed(21)
  local p1 = nn.Parameter(chalk.randn(5, 3, { dtype = "f64" }), "p1")
  local p2 = nn.Parameter(chalk.randn(4, { dtype = "f64" }), "p2")
  local c1 = chalk.randn(5, 3, { dtype = "f64" })
  local c2 = chalk.randn(4, { dtype = "f64" })
  local init1, init2 = p1:clone():detach(), p2:clone():detach()
  local opt = make({ p1, p2 })
  for _ = 1, steps do
    opt:zero_grad()
    local loss = (c1 * p1 * p1):sum() + (c2 * p2:sin()):sum()
    loss:backward()
    opt:step()
  end
  local out = ref.run({ p1 = init1, p2 = init2, c1 = c1, c2 = c2 }, ([[
p1 = I["p1"].clone().requires_grad_(True)
p2 = I["p2"].clone().requires_grad_(True)
opt = %s
for _ in range(%d):
    opt.zero_grad()
    loss = (I["c1"] * p1 * p1).sum() + (I["c2"] * p2.sin()).sum()
    loss.backward()
    opt.step()
O["p1"] = p1; O["p2"] = p2]]):format(torch_ctor, steps))
  local moved = (p1 - init1):abs():max():item()
  assert.is_true(moved > 1e-4, "the optimizer did not move the parameters")
  return math.max(ref.maxdiff(p1, out.p1), ref.maxdiff(p2, out.p2))
end

-- { test name, the chalk optimizer over ps = {p1, p2}, the same in torch, name in the message }
local against = {
  { "Adam", function(ps) return optim.Adam(ps, { lr = 0.01 }) end, "torch.optim.Adam([p1, p2], lr=0.01)", "Adam" },
  { "Adam with betas, eps and L2 weight decay",
    function(ps) return optim.Adam(ps, { lr = 0.05, betas = { 0.8, 0.99 }, eps = 1e-6, weight_decay = 0.1 }) end,
    "torch.optim.Adam([p1, p2], lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)", "Adam" },
  { "AdamW (decoupled weight decay)", function(ps) return optim.AdamW(ps, { lr = 0.02, weight_decay = 0.3 }) end,
    "torch.optim.AdamW([p1, p2], lr=0.02, weight_decay=0.3)", "AdamW" },
  { "SGD", function(ps) return optim.SGD(ps, { lr = 0.05 }) end, "torch.optim.SGD([p1, p2], lr=0.05)", "SGD" },
  { "SGD with momentum, dampening and weight decay",
    function(ps) return optim.SGD(ps, { lr = 0.05, momentum = 0.9, dampening = 0.1, weight_decay = 0.01 }) end,
    "torch.optim.SGD([p1, p2], lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)", "SGD+momentum" },
  { "SGD with Nesterov momentum",
    function(ps) return optim.SGD(ps, { lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 0.01 }) end,
    "torch.optim.SGD([p1, p2], lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)", "Nesterov SGD" },
  { "parameter groups with their own learning rates",
    function(ps) return optim.SGD({ { params = { ps[1] }, lr = 0.1 }, { params = { ps[2] } } }, { lr = 0.01, momentum = 0.5 }) end,
    "torch.optim.SGD([{'params': [p1], 'lr': 0.1}, {'params': [p2]}], lr=0.01, momentum=0.5)", "grouped SGD" },
}

describe("optim against torch.optim (10 steps, same parameters)", function()
  for _, case in ipairs(against) do
    local name, make, torch_expr, short = case[1], case[2], case[3], case[4]
    it(name, function()
      local d = against_torch(make, torch_expr)
      assert.is_true(d < 1e-12, short .. " differs from torch by " .. d)
    end)
  end
end)

describe("optimizer behaviour", function()
  it("updates parameters in place and keeps them leaves", function()
    local lin = nn.Linear(3, 2)
    local w = lin.weight
    local before = w:clone():detach()
    local opt = optim.Adam(lin:parameters(), { lr = 0.1 })
    lin(chalk.randn(4, 3)):sum():backward()
    opt:step()
    assert.are.equal(w, lin.weight)
    assert.is_true(w.is_leaf and w.requires_grad)
    assert.is_true((w - before):abs():max():item() > 0)
  end)

  it("tags its state as optimizer state, two tensors per parameter for Adam", function()
    local lin = nn.Linear(10, 10)
    local opt = optim.Adam(lin:parameters())
    local before = chalk.memory_stats().cpu["optimizer state"] or 0
    lin(chalk.randn(2, 10)):sum():backward()
    opt:step()
    local after = chalk.memory_stats().cpu["optimizer state"]
    assert.are.equal(2 * (100 + 10) * 4, after - before)
    assert.are.equal(2 * (100 + 10) * 4, opt:state_bytes())
    assert.are.equal("weight.exp_avg", opt.state[lin.weight].exp_avg.name)
    local sgd = optim.SGD(lin:parameters(), { lr = 0.1 })
    sgd:step()
    assert.are.equal(0, sgd:state_bytes()) -- plain SGD keeps no state
  end)

  it("skips parameters without a gradient and zero_grad clears them", function()
    local a = nn.Parameter(chalk.ones(2))
    local b = nn.Parameter(chalk.ones(2))
    local opt = optim.SGD({ a, b }, { lr = 1 })
    ;(a * 3):sum():backward()
    opt:step()
    assert.are.same({ -2, -2 }, a:totable())
    assert.are.same({ 1, 1 }, b:totable())
    opt:zero_grad()
    assert.is_nil(a.grad)
  end)

  it("rejects unknown options, empty lists and tensors that need no grad", function()
    local p = nn.Parameter(chalk.ones(2))
    assert.has_error(function() optim.Adam({ p }, { learning_rate = 0.1 }) end)
    assert.has_error(function() optim.SGD({}, { lr = 0.1 }) end)
    assert.has_error(function() optim.SGD({ chalk.ones(2) }, { lr = 0.1 }) end)
  end)

  it("resumes from a state dict with the same trajectory", function()
    chalk.manual_seed(31)
    local function run(opt, p, c, n)
      for _ = 1, n do
        opt:zero_grad()
        ;(c * p * p):sum():backward()
        opt:step()
      end
    end
    local c = chalk.randn(6)
    local p = nn.Parameter(chalk.randn(6))
    local q = nn.Parameter(p:clone():detach())
    local a = optim.Adam({ p }, { lr = 0.05 })
    run(a, p, c, 8)
    local b = optim.Adam({ q }, { lr = 0.05 })
    run(b, q, c, 4)
    local b2 = optim.Adam({ q }, { lr = 0.05 })
    b2:load_state_dict(b:state_dict())
    run(b2, q, c, 4)
    assert.is_true((p - q):abs():max():item() < 1e-6)
  end)

  it("trains a small classifier on spirals", function()
    chalk.manual_seed(41)
    local X, Y = chalk.data.spirals(60, 3)
    local model = nn.Sequential { nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3) }
    local opt = optim.Adam(model:parameters(), { lr = 0.05 })
    local first, last
    for i = 1, 150 do
      opt:zero_grad()
      local loss = nn.functional.cross_entropy(model(X), Y)
      loss:backward()
      opt:step()
      if i == 1 then first = loss:item() end
      last = loss:item()
    end
    assert.is_true(last < 0.5 * first, ("loss went from %g to %g"):format(first, last))
  end)
end)
