-- optim_fused_spec.lua: the fused optimizer updates (sgd_multi, adam_multi: one op over every
-- parameter) equal the per-parameter op chain bit for bit on the CPU, match torch.optim, record
-- into chalk.capture as in-place writes of every parameter and state tensor, and refuse bad lists.
package.path = "tests/lua/?.lua;" .. package.path
local chalk = require "chalk"
local nn, optim = chalk.nn, chalk.optim
local ref = require "torch_ref"

-- Parameters of awkward sizes (1, 7, 33, 3x5) and a loss whose gradients differ per element.
local function params(dtype, seed)
  chalk.manual_seed(seed)
  local ps, cs = {}, {}
  for i, shape in ipairs { { 1 }, { 7 }, { 33 }, { 3, 5 } } do
    ps[i] = nn.Parameter(chalk.randn(shape, { dtype = dtype }), "p" .. i)
    cs[i] = chalk.randn(shape, { dtype = dtype })
  end
  return ps, cs
end
local function loss_of(ps, cs)
  local l = (cs[1] * ps[1] * ps[1]):sum()
  for i = 2, #ps do l = l + (cs[i] * ps[i]:sin()):sum() end
  return l
end
local function run(ctor, opts, dtype, steps)
  local ps, cs = params(dtype, 7)
  local opt = ctor(ps, opts)
  for _ = 1, steps do
    opt:zero_grad()
    loss_of(ps, cs):backward()
    opt:step()
  end
  return ps, opt
end

local configs = {
  { "SGD", optim.SGD, { lr = 0.05 } },
  { "SGD momentum, dampening, weight decay", optim.SGD, { lr = 0.05, momentum = 0.9, dampening = 0.1, weight_decay = 0.01 } },
  { "SGD Nesterov", optim.SGD, { lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 0.02 } },
  { "Adam", optim.Adam, { lr = 0.01 } },
  { "Adam L2 decay", optim.Adam, { lr = 0.05, betas = { 0.8, 0.99 }, eps = 1e-6, weight_decay = 0.1 } },
  { "AdamW", optim.AdamW, { lr = 0.02, weight_decay = 0.3 } },
}

local function with(opts, k, v)
  local o = {}
  for a, b in pairs(opts) do o[a] = b end
  o[k] = v
  return o
end

describe("fused optimizer updates (sgd_multi, adam_multi)", function()
  for _, c in ipairs(configs) do
    for _, dt in ipairs { "f32", "f64" } do
      it(c[1] .. " " .. dt .. ": fused equals the per-parameter ops bit for bit (6 steps)", function()
        local pf, of = run(c[2], with(c[3], "fused", true), dt, 6)
        local pu = run(c[2], with(c[3], "fused", false), dt, 6)
        for i = 1, #pf do
          assert.is_true(chalk.equal(pf[i], pu[i]), ("%s %s: parameter %d differs by %g"):format(c[1], dt, i,
            (pf[i] - pu[i]):abs():max():item()))
        end
        local init = params(dt, 7)
        assert.is_true((pf[3] - init[3]):abs():max():item() > 1e-4, "the optimizer did not move the parameters")
        for i = 1, #pf do assert.are.equal(6, of.state[pf[i]].step) end
      end)
    end
  end

  it("each step is one op: the profile shows sgd_multi once and no per-parameter axpby", function()
    local ps, cs = params("f32", 3)
    local opt = optim.SGD(ps, { lr = 0.1, momentum = 0.9, fused = true })
    local l = loss_of(ps, cs)
    l:backward()
    local prof = chalk.profile(function() opt:step() end)
    local text = tostring(prof)
    assert.truthy(text:find("sgd_multi", 1, true), text)
    assert.falsy(text:find("axpby", 1, true), text)
  end)

  it("matches torch.optim.AdamW and SGD+momentum with fused = true", function()
    for _, c in ipairs {
      { optim.AdamW, { lr = 0.02, weight_decay = 0.3, fused = true }, "torch.optim.AdamW(ps, lr=0.02, weight_decay=0.3)" },
      { optim.SGD, { lr = 0.05, momentum = 0.9, dampening = 0.1, fused = true },
        "torch.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1)" },
    } do
      local init = params("f64", 7)
      local _, cs = params("f64", 7)
      local ps = run(c[1], c[2], "f64", 5)
      local out = ref.run({ p1 = init[1], p2 = init[2], p3 = init[3], p4 = init[4], c1 = cs[1], c2 = cs[2], c3 = cs[3],
        c4 = cs[4] }, ([==[
ps = [I["p%%d" %% i].clone().requires_grad_(True) for i in range(1, 5)]
opt = %s
for _ in range(5):
    opt.zero_grad()
    l = (I["c1"] * ps[0] * ps[0]).sum()
    for i in range(1, 4):
        l = l + (I["c%%d" %% (i + 1)] * ps[i].sin()).sum()
    l.backward()
    opt.step()
for i in range(4):
    O["p%%d" %% (i + 1)] = ps[i]]==]):format(c[3]))
      for i = 1, 4 do assert.is_true(ref.maxdiff(ps[i], out["p" .. i]) < 1e-12, c[3] .. " parameter " .. i) end
    end
  end)

  it("a captured step with the fused update replays exactly as eager steps", function()
    local function model(seed)
      chalk.manual_seed(seed)
      return nn.Sequential { nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 2) }
    end
    local me, mc = model(4), model(4)
    local x, y = chalk.randn(5, 6), chalk.randn(5, 2)
    for _, kind in ipairs { "SGD", "AdamW" } do
      local oe = optim[kind](me:parameters(), { lr = 0.05, momentum = kind == "SGD" and 0.9 or nil, fused = true })
      local oc = optim[kind](mc:parameters(), { lr = 0.05, momentum = kind == "SGD" and 0.9 or nil, fused = true })
      local function step(m, o) -- through step's closure, as torch.optim allows
        return function(a, b)
          return o:step(function()
            o:zero_grad()
            local l = nn.functional.mse_loss(m(a), b)
            l:backward()
            return l
          end)
        end
      end
      local se, sc = step(me, oe), step(mc, oc)
      se(x, y)
      sc(x, y) -- warm-up: the state exists
      se(x, y)
      local g = chalk.capture(sc, x, y)
      local listing = tostring(g)
      local op = kind == "SGD" and "sgd_multi" or "adam_multi"
      assert.truthy(listing:find(op, 1, true), listing)
      for _ = 1, 3 do
        se(x, y)
        g:replay()
        if kind == "SGD" then -- Adam's step count is an attribute baked in at capture
          local pe, pc = me:parameters(), mc:parameters()
          for i = 1, #pe do assert.is_true(chalk.equal(pe[i], pc[i]), kind .. " parameter " .. i) end
        end
      end
    end
  end)

  it("refuses lists that do not match, naming the op and the tensors", function()
    local p = { chalk.zeros(3), chalk.zeros(2, 2) }
    local ok, err = pcall(chalk._sgd_multi_, p, nil, { chalk.zeros(3), chalk.zeros(4) }, 0.1, 0, 0, 0, false, false)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("sgd_multi", 1, true), err)
    assert.truthy(tostring(err):find("[2,2]", 1, true), err)
    ok, err = pcall(chalk._adam_multi_, p, { chalk.zeros(3) }, { chalk.zeros(3) }, { chalk.zeros(3) }, 0.1, 0.9, 0.99,
      1e-8, 0, true, 1)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("expected 2", 1, true), err)
    ok, err = pcall(chalk._adam_multi_, { p[1] }, { chalk.zeros(3) }, { chalk.zeros(3) }, { chalk.zeros(3) }, 0.1, 0.9,
      0.99, 1e-8, 0, true, 0)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("step must be >= 1", 1, true), err)
    ok, err = pcall(chalk._sgd_multi_, { nn.Parameter(chalk.zeros(3)) }, nil, { chalk.zeros(3) }, 0.1, 0, 0, 0, false,
      false)
    assert.is_false(ok) -- a parameter outside no_grad (the optimizers run under it)
    assert.truthy(tostring(err):find("no_grad", 1, true), err)
  end)
end)
