-- test_viz.lua: the Lua surface of viz (chalk.viz, chalk.profile) through the real binding:
-- paths and formats, chalk.on_picture, gradients in the pictures before and after backward,
-- viz.step's frames, the profile's table, summary and Chrome export, and the errors users see.
-- Run: LUA_CPATH='build/?.so;;' VIZ_TEST_OUT=build/tests/viz/out lua5.4 tests/viz/test_viz.lua
local chalk = require "chalk"
local viz = assert(chalk.viz, "chalk.viz is loaded")
assert(type(chalk.profile) == "function", "chalk.profile is a function")

local out = (os.getenv("VIZ_TEST_OUT") or "build/tests/viz/out") .. "/lua"
local here = os.getenv("VIZ_TEST_DIR") or "tests/viz"
chalk.out_dir = out
local announced = {}
chalk.on_picture = function(p) announced[#announced + 1] = p end

local failures, count = 0, 0
local function test(name, fn)
  count = count + 1
  local ok, err = pcall(fn)
  if ok then print("ok   " .. name) else failures = failures + 1; print("FAIL " .. name .. ": " .. tostring(err)) end
end

local function read(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. path)
  local s = f:read("a")
  f:close()
  return s
end
local function is_png(path) return read(path):sub(1, 8) == "\137PNG\r\n\26\n" end
local function has(s, needle) return s:find(needle, 1, true) ~= nil end

local function autodiff()
  local x1 = chalk.tensor(2.0, { requires_grad = true }); x1.name = "x1"
  local x2 = chalk.tensor(5.0, { requires_grad = true }); x2.name = "x2"
  local f = x1:log() + x1 * x2 - x2:sin(); f.name = "f"
  return f, x1, x2
end

test("graph: default path in out_dir, png, announced", function()
  local f = autodiff()
  local n = #announced
  local p = viz.graph(f)
  assert(p:match("^" .. out:gsub("%p", "%%%0") .. "/graph%-%d+%.png$"), p)
  assert(is_png(p), p .. " is a PNG")
  assert(announced[n + 1] == p, "chalk.on_picture(path) was called")
end)

test("graph: file and format", function()
  local f = autodiff()
  local p = viz.graph(f, { file = "mine.svg" })
  assert(p == out .. "/mine.svg", p)
  assert(has(read(p), "<svg") and has(read(p), "not computed"))
  p = viz.graph(f, { file = "g", format = "dot" })
  assert(p == out .. "/g.dot", p)
  local dot = read(p)
  assert(has(dot, "grad: not computed") and not has(dot, "grad 0"), "before backward: not computed, never 0")
  p = viz.graph(f, { file = out .. "/sub/dir/x.pdf" })
  assert(read(p):sub(1, 4) == "%PDF", "a path with a directory is kept (and made)")
end)

test("graph: gradients after backward (pictures mode keeps the graph)", function()
  local old = chalk.set_retain_all_grads(true)
  local f, x1, x2 = autodiff()
  f:backward()
  chalk.set_retain_all_grads(old)
  assert(math.abs(x1.grad:item() - 5.5) < 1e-4)
  local dot = read(viz.graph(f, { backward = true, format = "dot" }))
  assert(has(dot, "grad 5.5") and has(dot, "grad 1.716"), "leaf gradients shown")
  assert(has(dot, "cluster_backward") and has(dot, "grad of x1"))
  assert(not has(dot, "not computed"), "nothing is 'not computed' after backward")
end)

test("graph: draw, backward, draw again (lesson 2's order) keeps the graph", function()
  local f, x1 = autodiff()
  viz.graph(f)
  f:backward()
  local dot = read(viz.graph(f, { backward = true, format = "dot" }))
  assert(has(dot, "grad 5.5") and has(dot, "<B>x2</B>"), "the remembered graph with its leaf gradients")
  assert(x1.grad, "backward ran")
end)

test("graph: options are checked", function()
  local f = autodiff()
  local ok, err = pcall(viz.graph, f, { format = "gif" })
  assert(not ok and has(err, "unknown format 'gif'"), err)
  ok, err = pcall(viz.graph, f, { rankdir = "diagonal" })
  assert(not ok and has(err, "rankdir"), err)
  ok, err = pcall(viz.graph, 42)
  assert(not ok and has(err, "chalk tensor"), err)
end)

test("step: advances one frame per call, frames= writes them all", function()
  local f = autodiff()
  local p1, k1, n = viz.step(f)
  local p2, k2 = viz.step(f)
  assert(k1 == 1 and k2 == 2 and n == 11, ("frames %s %s of %s"):format(k1, k2, n))
  assert(is_png(p1) and is_png(p2) and p1 ~= p2)
  local _, k3, _, caption = viz.step(f, { frame = 6 })
  assert(k3 == 6 and has(caption, "backward 1/5"), caption)
  local paths, captions = viz.step(f, { frames = "frames" })
  assert(#paths == 11 and #captions == 11)
  assert(paths[1] == out .. "/frames/step_01.png", paths[1])
  for _, p in ipairs(paths) do assert(is_png(p), p) end
  assert(has(captions[11], "done"), captions[11])
end)

local function step_of_mlp()
  local W1 = chalk.randn(32, 16, { requires_grad = true }); W1.name = "layers.0.weight"
  local W2 = chalk.randn(4, 32, { requires_grad = true }); W2.name = "layers.2.weight"
  local x = chalk.randn(8, 16); x.name = "x"
  local h = x:matmul(W1.T):tanh()
  local loss = (h:matmul(W2.T) ^ 2):mean()
  loss:backward()
  viz.mark("optimizer step")
  return loss
end

test("profile: table, summary, marks", function()
  local prof, loss = chalk.profile(step_of_mlp)
  assert(loss and chalk.is_tensor(loss), "fn's results come after the profile")
  local s = tostring(prof)
  assert(has(s, "GFLOP/s") and has(s, "matmul") and has(s, "matmul (backward)") and has(s, "memory on cpu"), s)
  local sum = prof:summary()
  assert(sum.wall_ms > 0 and sum.nops >= 8, "wall and op count")
  assert(sum.memory.cpu.peak > 0 and sum.memory.cpu.max.gradient > 0)
  local marks = 0
  for _, e in ipairs(prof:events()) do
    if e.kind == "mark" and e.label == "optimizer step" then marks = marks + 1 end
  end
  assert(marks == 1, "the user mark is in the log")
  local ops = prof:ops()
  assert(ops[1].total_ms >= ops[#ops].total_ms, "sorted by time")
end)

test("profile: pictures and Chrome export", function()
  local prof = chalk.profile(step_of_mlp)
  local m = viz.memory(prof)
  assert(is_png(m) and has(m, "memory-"), m)
  assert(has(read(viz.memory(prof, { format = "svg", x = "time" })), "time (ms)"))
  local t = viz.trace(prof, { file = "trace.svg" })
  assert(has(read(t), "cpu stream 0"))
  local j = prof:export_chrome(out .. "/step.json")
  assert(j == out .. "/step.json")
  local ok = os.execute(("/usr/bin/python3 %s/check_chrome.py %s matmul tanh"):format(here, j))
  assert(ok, "check_chrome.py accepts the trace")
end)

test("profile: an error inside fn propagates and stops recording", function()
  local ok, err = pcall(chalk.profile, function() error("boom") end)
  assert(not ok and has(err, "boom"), err)
  local prof = chalk.profile(function() return chalk.ones(2, 2):exp() end)
  local n = 0
  for _, r in ipairs(prof:ops()) do n = n + r.calls end
  assert(n == 1, "the next profile records only its own op, got " .. n)
end)

test("graph: a value that draws itself (a captured Graph's :dot())", function()
  local drawable = { dot = function(self, opts) return "digraph { captured -> step }" end }
  local p = viz.graph(drawable, { file = "drawable.svg" })
  assert(has(read(p), "captured"), "rendered from x:dot()")
  local ok, err = pcall(viz.graph, {})
  assert(not ok and has(err, ":dot()"), err)
end)

test("graph: a captured Graph without an options table (issue 15)", function()
  local g = chalk.capture(function(a) return (a * 2):relu() end, chalk.randn(4, 4))
  local p = viz.graph(g)
  assert(is_png(p), "viz.graph(g) wrote " .. tostring(p))
  local d = read(viz.graph(g, { format = "dot" }))
  assert(has(d, "relu"), "the captured graph's ops are drawn")
end)

test("render: DOT text from Lua", function()
  local p = viz.render("digraph { a -> b }", { file = "tiny.png" })
  assert(p == out .. "/tiny.png" and is_png(p))
  local ok, err = pcall(viz.render, "digraph { a -> b }", { engine = "bogus" })
  assert(not ok and has(err, "unknown engine"), err)
end)

print(("%d tests, %d failed"):format(count, failures))
os.exit(failures == 0 and 0 or 1)
