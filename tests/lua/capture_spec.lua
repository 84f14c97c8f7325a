-- capture_spec.lua: chalk.capture from Lua: a training step (nn + optim) captured after a
-- warm-up step replays exactly like eager steps; passes report and explain; fused kernels show
-- their source; memory plans verify; nn.checkpoint and the checkpoint pass give the gradients of
-- the plain step; errors in the step abort the capture; pictures are written.
package.path = "tests/lua/?.lua;" .. package.path
local chalk = require "chalk"
local nn, optim = chalk.nn, chalk.optim
local support = require "support"

local function model_and_data(seed)
  chalk.manual_seed(seed)
  local model = nn.Sequential { nn.Linear(12, 24), nn.GELU(), nn.Linear(24, 24), nn.Tanh(), nn.Linear(24, 3) }
  local x, y = chalk.randn(10, 12), chalk.randn(10, 3)
  return model, x, y
end

local function step_fn(model, opt)
  return function(x, y)
    opt:zero_grad()
    local loss = nn.functional.mse_loss(model(x), y)
    loss:backward()
    opt:step()
    return loss
  end
end

local function max_param_diff(a, b)
  local pa, pb = a:parameters(), b:parameters()
  local m = 0
  for i = 1, #pa do m = math.max(m, (pa[i] - pb[i]):abs():max():item()) end
  return m
end

describe("chalk.capture", function()
  it("replays a training step exactly as eager steps (SGD with momentum)", function()
    local me, x, y = model_and_data(5)
    local mc = model_and_data(5)
    local oe = optim.SGD(me:parameters(), { lr = 0.05, momentum = 0.9 })
    local oc = optim.SGD(mc:parameters(), { lr = 0.05, momentum = 0.9 })
    local se, sc = step_fn(me, oe), step_fn(mc, oc)
    se(x, y)
    sc(x, y) -- warm-up: momentum buffers exist, as CUDA graphs need too
    se(x, y)
    local g = chalk.capture(sc, x, y)
    assert.are.equal(0, max_param_diff(me, mc))
    for _ = 1, 4 do
      local le = se(x, y)
      local lc = g:replay()
      assert.are.equal(le:item(), lc:item())
      assert.are.equal(0, max_param_diff(me, mc))
    end
    -- .grad holds the replayed gradients
    local pe, pc = me:parameters(), mc:parameters()
    assert.are.equal(0, (pe[1].grad - pc[1].grad):abs():max():item())
  end)

  it("replays with new inputs", function()
    local x = chalk.ones(3, 3)
    local g = chalk.capture(function(t) return (t * 2):exp() end, x)
    local out = g:replay(chalk.zeros(3, 3))
    assert.are.equal(1, out:max():item())
    assert.are.equal(0, x:sum():item())
  end)

  it("optimizes with reports, explains, and shows fused sources", function()
    local m, x, y = model_and_data(1)
    local opt = optim.SGD(m:parameters(), { lr = 0.01 })
    local g = chalk.capture(step_fn(m, opt), x, y)
    local kernels_before = select(2, g:totals())
    local reports = g:optimize { "dce", "cse", "fold", "algebra", "fuse" }
    assert.are.equal(5, #reports)
    for _, r in ipairs(reports) do
      assert.is_true(r.nodes_after <= r.nodes_before)
      assert.is_truthy(tostring(r):find(r.pass .. ":", 1, true))
    end
    assert.is_true(select(2, g:totals()) < kernels_before)
    assert.is_truthy(g:explain("fuse"):find("not fused", 1, true))
    assert.is_truthy(g:explain("fuse"):find("matmul is not elementwise", 1, true))
    local fused
    for i, n in ipairs(g:nodes()) do
      if n.op == "fused" then fused = i end
    end
    assert.is_truthy(fused, "some kernel was fused")
    assert.is_truthy(g:source(fused):find("for (long", 1, true))
    assert.is_truthy(g:source(fused, "cuda"):find("__global__", 1, true))
    support.error_matching(function() g:source(1) end, "not a fused kernel")
    assert.is_truthy(tostring(g):find("fused[", 1, true))
    assert.is_truthy(g:dot():find("digraph", 1, true))
    local path = chalk.viz.graph(g, { file = "capture_spec_graph.svg" })
    local f = assert(io.open(path))
    assert.is_truthy(f:read("a"):find("<svg", 1, true))
    f:close()
    g:replay()
  end)

  it("plans memory into one arena and verifies it", function()
    local m, x, y = model_and_data(2)
    local opt = optim.SGD(m:parameters(), { lr = 0.01 })
    local g = chalk.capture(step_fn(m, opt), x, y)
    local p = g:plan_memory()
    assert.is_true(p.lower_bound <= p.planned)
    assert.is_true(p.planned < p.naive)
    assert.is_true(g:verify_plan())
    assert.is_truthy(tostring(p):find("planned peak", 1, true))
    local live = g:live()
    assert.are.equal(#g, #live)
    local top = 0
    for _, v in ipairs(live) do top = math.max(top, v) end
    assert.are.equal(p.lower_bound, top)
    for _, strategy in ipairs { "greedy", "naive" } do
      g:plan_memory { strategy = strategy }
      assert.is_true(g:verify_plan())
    end
    assert.is_truthy(g:gantt { file = "capture_spec_gantt.png", plan = p })
    assert.is_truthy(g:arena { file = "capture_spec_arena.png", plan = p })
    g:replay()
  end)

  it("aborts the capture when the step raises, and refuses nesting", function()
    support.error_matching(function()
      chalk.capture(function() error("boom") end)
    end, "boom")
    -- a capture works again afterwards, and captures do not nest
    support.error_matching(function()
      chalk.capture(function() return chalk.capture(function() end) end)
    end, "already running")
    local g = chalk.capture(function() return chalk.ones(2):exp() end)
    assert.are.equal(2, #g:nodes() + 1)
  end)
end)

describe("checkpointing", function()
  local function deep(seed, n)
    chalk.manual_seed(seed)
    local layers = {}
    for i = 1, n do
      layers[#layers + 1] = nn.Linear(16, 16)
      layers[#layers + 1] = nn.Tanh()
    end
    return nn.Sequential(layers), chalk.randn(8, 16)
  end

  it("nn.checkpoint(module) gives the plain gradients", function()
    local plain, x = deep(3, 4)
    local ck = deep(3, 4)
    local mods = {}
    for i = 1, 8 do mods[i] = i % 3 == 0 and ck[i] or nn.checkpoint(ck[i]) end -- some plain, most wrapped
    local wrapped = nn.Sequential(mods)
    plain(x):pow(2):sum():backward()
    wrapped(x):pow(2):sum():backward()
    local pp, pc = plain:parameters(), ck:parameters()
    for i = 1, #pp do assert.are.equal(0, (pp[i].grad - pc[i].grad):abs():max():item()) end
    assert.are.equal(#pp, #wrapped:parameters())
  end)

  it("nn.checkpoint(fn, params) works, and a forgotten parameter is an error", function()
    local w = chalk.randn(4, 4, { requires_grad = true })
    local x = chalk.randn(2, 4, { requires_grad = true })
    local f = nn.checkpoint(function(t) return t:matmul(w):tanh() end, { w })
    f(x):sum():backward()
    local gw, gx = w.grad:clone(), x.grad:clone()
    w.grad, x.grad = nil, nil
    x:matmul(w):tanh():sum():backward()
    assert.are.equal(0, (w.grad - gw):abs():max():item())
    assert.are.equal(0, (x.grad - gx):abs():max():item())
    local forgot = nn.checkpoint(function(t) return t:matmul(w) end)
    support.error_matching(function() forgot(x):sum():backward() end, "was not given")
  end)

  it("the graph pass keeps gradients and halves the activation peak", function()
    local model, x = deep(4, 16)
    local function step(t)
      model:zero_grad()
      local loss = model(t):pow(2):mean()
      loss:backward()
      return loss
    end
    local plain = chalk.capture(step, x)
    local pp = plain:plan_memory()
    plain:replay()
    local g1 = {}
    for i, p in ipairs(model:parameters()) do g1[i] = p.grad:clone() end
    local ck = chalk.capture(step, x)
    ck:optimize("checkpoint")
    assert.is_truthy(ck:explain("checkpoint"):find("segment", 1, true))
    local pc = ck:plan_memory()
    assert.is_true(ck:verify_plan())
    assert.is_true(pc.activation_peak * 2 <= pp.activation_peak)
    ck:replay()
    for i, p in ipairs(model:parameters()) do assert.are.equal(0, (p.grad - g1[i]):abs():max():item()) end
  end)
end)

describe("autotuning", function()
  it("searches matmul tiles, caches the best, and draws the heatmap", function()
    local r = chalk.autotune.matmul(48, 48, 48, { bm = { 4, 16 }, bn = { 8, 48 }, bk = 16, repeats = 1 })
    assert.are.equal(4, #r.results)
    local cached = chalk.autotune.cached(48, 48, 48)
    assert.are.equal(r.best.bm, cached.bm)
    assert.are.equal(r.best.bn, cached.bn)
    local a, b = chalk.randn(48, 48), chalk.randn(48, 48)
    assert.is_true((chalk.matmul_tiled(a, b) - a:matmul(b)):abs():max():item() < 1e-4)
    assert.is_truthy(chalk.autotune.heatmap(r, { file = "capture_spec_heat.png" }))
  end)

  it("tunes the chunk of fused kernels", function()
    local x = chalk.randn(64, 300)
    local g = chalk.capture(function(t) return ((t * 2):tanh() + 1):sigmoid() end, x)
    g:optimize("fuse")
    local want = ((x * 2):tanh() + 1):sigmoid()
    local rows = g:autotune { chunks = { 32, 256, 4096 }, repeats = 1 }
    assert.are.equal(3, #rows)
    assert.is_truthy(g:explain("autotune"):find("chunk", 1, true))
    local got = g:replay()
    assert.are.equal(0, (got - want):abs():max():item())
  end)
end)
