-- hardening_spec.lua: issue 14's stale saved tensors (version counter checked in backward),
-- reference cycles through .grad (freed when dropped), and interrupted C work failing cleanly.
local chalk = require "chalk"
local S = require "support"
local nn, optim = chalk.nn, chalk.optim

local function live()
  collectgarbage()
  collectgarbage()
  local m = chalk.memory_stats()
  return m.live_tensors, m.live_nodes
end

-- Runs fn(live nodes before) and checks that every tensor and node it made is freed after it.
local function expect_all_freed(fn)
  local t0, n0 = live()
  fn(n0)
  local t1, n1 = live()
  assert.are.equal(t0, t1)
  assert.are.equal(n0, n1)
end

describe("saved tensors modified in place", function()
  it("under no_grad: PyTorch's message, naming the op, the tensor and both versions", function()
    local x = chalk.ones(2, 3):requires_grad_()
    local w = chalk.ones(2, 3)
    w:fill_(2) -- version 1
    local y = (x * w):sum()
    chalk.no_grad(function() w:fill_(3) end) -- version 2
    S.error_matching(function() y:backward() end,
      "one of the variables needed for gradient computation has been modified by an inplace operation: "
        .. "[f32 [2, 3]] (saved by mul), is at version 2; expected version 1 instead")
  end)

  it("through detach(), a view, index assignment and copy_ (one counter per storage)", function()
    for _, change in ipairs {
      function(w) w:detach():axpby_(1, 1, 1) end,
      function(w) w:detach()[1] = 5 end,
      function(w) w:view(6):detach():zero_() end,
      function(w) w:detach():copy_(chalk.zeros(2, 3)) end,
    } do
      local x = chalk.randn(2, 3):requires_grad_()
      local w = chalk.randn(2, 3)
      local y = (x * w):sum()
      change(w)
      S.error_matching(function() y:backward() end, "modified by an inplace operation", "(saved by mul)",
        "is at version 1; expected version 0")
    end
  end)

  it("an output saved by its own rule (exp) is checked too", function()
    local x = chalk.randn(4):requires_grad_()
    local e = x:exp()
    local y = e:sum()
    e:detach():fill_(0)
    S.error_matching(function() y:backward() end, "(saved by exp)", "output")
  end)

  it("an optimizer step between forward and backward (the common student bug)", function()
    local model = nn.Sequential { nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2) }
    local opt = optim.SGD(model:parameters(), { lr = 0.1 })
    local x = chalk.randn(4, 3)
    local loss = model(x):pow(2):sum()
    model(x):sum():backward() -- gradients from an earlier forward
    opt:step()
    S.error_matching(function() loss:backward() end, "modified by an inplace operation", "(saved by matmul)",
      "is at version 1; expected version 0")
  end)

  it("a tensor the rule does not read may change in place; the gradient is still right", function()
    local x = chalk.tensor { 1, 2, 3 }:requires_grad_()
    local b = chalk.tensor { 10, 20, 30 }
    local y = (x + b):sum() -- add reads no values
    local w = chalk.tensor { 2, 2, 2 }
    local z = (x * w):sum() -- x's gradient reads w only; x itself is not saved
    b:fill_(0)
    y:backward()
    assert.are.same({ 1, 1, 1 }, x.grad:totable())
    x.grad = nil
    chalk.no_grad(function() x:fill_(7) end)
    z:backward()
    assert.are.same({ 2, 2, 2 }, x.grad:totable())
  end)
end)

describe("reference cycles through .grad", function()
  it("x.grad = x * 2 is freed once x is dropped", function()
    expect_all_freed(function(n0)
      local x = chalk.randn(100):requires_grad_()
      x.grad = x * 2
      assert.is_true(chalk.memory_stats().live_nodes > n0)
    end)
  end)

  it("backward(create_graph=true) is freed once the leaf and the loss are dropped", function()
    expect_all_freed(function()
      local x = chalk.randn(5):requires_grad_()
      local y = (x * x * x):sum()
      y:backward(nil, { create_graph = true })
      assert.is_not_nil(x.grad.grad_fn or x.grad.requires_grad)
      local gg = x.grad:sum() -- second order through the cycle still works while x lives
      assert.is_true(gg.requires_grad)
    end)
  end)

  it("a gradient still held keeps working after its leaf is dropped", function()
    local g
    do
      local x = chalk.tensor { 1, 2 }:requires_grad_()
      x.grad = x * 3
      g = x.grad
    end
    collectgarbage()
    assert.are.same({ 3, 6 }, g:totable())
  end)
end)

describe("temporary save files of a killed writer", function()
  it("are removed by the next save to the same path; a live writer's are kept", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    local p = io.popen("sh -c 'echo $$'") -- a process that has exited: its pid is free
    local dead = p:read("n")
    p:close()
    local target = dir .. "/model.chalk"
    local function touch(name) io.open(dir .. "/" .. name, "w"):close() end
    touch(("model.chalk.tmp.%d.AbC123"):format(dead)) -- left by a killed writer
    touch("model.chalk.tmp.1.XyZ789")                 -- pid 1 is alive: kept
    touch(("other.chalk.tmp.%d.AbC123"):format(dead)) -- another target's: kept
    chalk.save({ w = chalk.ones(3) }, target)
    local names = {}
    for n in io.popen("ls '" .. dir .. "'"):lines() do names[#names + 1] = n end
    table.sort(names)
    assert.are.same({ "model.chalk", "model.chalk.tmp.1.XyZ789", ("other.chalk.tmp.%d.AbC123"):format(dead) }, names)
    assert.are.same({ 1, 1, 1 }, chalk.load(target).w:totable())
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
