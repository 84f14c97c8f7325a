-- docs_pictures.lua: renders the example pictures of docs/pictures/ (one of each kind viz draws),
-- shown in the README. Run from the top of the tree after `make`:
--   LUA_CPATH='build/?.so;;' lua5.4 tests/viz/docs_pictures.lua [outdir]
local chalk = require "chalk"
local viz, nn = chalk.viz, chalk.nn
chalk.out_dir = arg[1] or "docs/pictures"

-- lesson 2's function, drawn after backward with every gradient kept
local old = chalk.set_retain_all_grads(true)
local x1 = chalk.tensor(2.0, { requires_grad = true, name = "x1" })
local x2 = chalk.tensor(5.0, { requires_grad = true, name = "x2" })
local a = x1:log(); a.name = "a"
local b = x1 * x2; b.name = "b"
local c = x2:sin(); c.name = "c"
local f = a + b - c; f.name = "f"
viz.graph(f, { file = "graph_forward.png" })
viz.step(f, { frame = 8, file = "step.png" })
f:backward()
viz.graph(f, { backward = true, file = "graph_backward.png" })
chalk.set_retain_all_grads(old)

-- an MLP with module clusters, forward and backward
chalk.manual_seed(0)
local mlp = nn.Sequential { nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10) }
local X = chalk.rand(128, 784); X.name = "X"
local y = chalk.randint(1, 11, { 128 }); y.name = "labels"
local loss = nn.functional.cross_entropy(mlp(X), y); loss.name = "loss"
viz.graph(loss, { file = "graph_mlp.png" })

-- one training step with Adam, profiled
local opt = chalk.optim.Adam(mlp:parameters(), { lr = 1e-3 })
local function step()
  opt:zero_grad()
  local l = nn.functional.cross_entropy(mlp(X), y)
  l:backward()
  viz.mark("optimizer step")
  opt:step()
end
step()
collectgarbage()
local prof = chalk.profile(step)
print(prof)
viz.memory(prof, { file = "memory.png" })
viz.trace(prof, { file = "trace.png" })
prof:export_chrome(chalk.out_dir .. "/step_trace.json")
