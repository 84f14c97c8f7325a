-- render.lua: rendering a ~500-node backward graph to PNG.
local B = dofile(arg[1] .. "/common.lua")
chalk.manual_seed(0)
local x = chalk.randn(4, 8, {requires_grad = true})
local h = x
for i = 1, 62 do h = (h * 0.5 + 0.1):tanh() end   -- 3 op nodes per layer, plus backward nodes
local loss = h:sum()
loss:backward({retain_graph = true})
local out = os.getenv("TMPDIR") or "/tmp"
local t = B.median_time(function()
  viz.graph(loss, {backward = true, file = out .. "/chalk_bench_graph.png", max_nodes = 1000})
end, 1, 3, 1)
B.report("render_backward_graph", t)
