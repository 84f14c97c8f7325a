-- memory_categories_spec.lua: memory categories of a training step as PyTorch's memory profiler
-- counts them (input, activation, gradient, optimizer state, temporary, parameter).
local chalk = require "chalk"
local nn = chalk.nn
local optim = chalk.optim

-- category of every allocation in the profile, by tensor name where named, and the set of all
local function allocs(prof)
  local cats = {}
  for _, e in ipairs(prof:events()) do
    if e.kind == "alloc" then cats[e.category] = (cats[e.category] or 0) + e.bytes end
  end
  return cats
end

describe("memory categories of a training step", function()
  it("tags the batch input, forward activation, backward temporary, leaf gradient and Adam state", function()
    chalk.manual_seed(0)
    local model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    local opt = optim.Adam(model:parameters(), { lr = 1e-3 })
    local before = chalk.zeros(100) -- existed before the profile: no alloc event in it
    local prof = chalk.profile(function()
      local x = chalk.randn(32, 8)
      local y = chalk.randn(32, 4)
      assert.are.equal("input", (x):category())
      local out = model(x)
      assert.are.equal("activation", (out):category())
      local loss = chalk.nn.functional.mse_loss(out, y)
      assert.are.equal("activation", (loss):category())
      opt:zero_grad()
      loss:backward()
      for _, p in ipairs(model:parameters()) do
        assert.are.equal("gradient", (p.grad):category())
        assert.are.equal("parameter", (p):category())
      end
      opt:step()
      for _, p in ipairs(model:parameters()) do
        for _, s in pairs(opt.state[p]) do
          if type(s) ~= "number" then assert.are.equal("optimizer state", (s):category()) end
        end
      end
    end)
    local cats = allocs(prof)
    assert.is_true((cats.input or 0) >= 32 * 12 * 4, "the batch is input")
    assert.is_true((cats.activation or 0) > 0, "forward intermediates are activations")
    assert.is_true((cats.temporary or 0) > 0, "backward and step intermediates are temporaries")
    assert.are.equal((8 * 16 + 16 + 16 * 4 + 4) * 4, cats.gradient, "one gradient per parameter")
    assert.are.equal(2 * (8 * 16 + 16 + 16 * 4 + 4) * 4, cats["optimizer state"], "Adam's m and v")
    assert.is_nil(cats.parameter, "no parameter is made in a step")
    assert.are.equal(100, before:numel())
    assert.matches("^#%x+$", chalk.viz.colors.baseline) -- viz.memory's grey band for what existed before
  end)

  it("counts what a plain tensor op makes at the prompt as input, one with grad as activation", function()
    local a = chalk.ones(4)
    assert.are.equal("input", (a * 2):category())
    local w = chalk.ones(4):requires_grad_()
    assert.are.equal("activation", (w * 2):category())
    chalk.no_grad(function() assert.are.equal("input", (w * 2):category()) end)
  end)

  it("prints memory in binary units labelled KiB/MiB/GiB, never KB/MB for powers of two", function()
    local w = chalk.ones(256, 1024):requires_grad_() -- 1 MiB
    local prof = chalk.profile(function() (w * 2):sum():backward() end)
    local text = tostring(prof)
    assert.is_truthy(text:find("%d MiB") or text:find("%d KiB"), text)
    for unit in text:gmatch("%d ([KMGT]i?B)[^/]") do
      assert.is_truthy(unit:find("i"), "a byte size labelled " .. unit .. " in:\n" .. text)
    end
    assert.are.equal("4.00 MiB", require("chalk.perfcharts").bytes(4 * 2 ^ 20))
  end)
end)
