-- sim.lua: chalk.sim (the REPL global `sim`), simulators of machines a laptop does not have.
-- Each simulator lives in its own module and adds its names here:
--   sim.systolic(R, C, {dataflow = "weight"|"input"|"output"})   lua/chalk/sim_systolic.lua
--   sim.cluster{gpus=, trace=, policy=}, the job traces           lua/chalk/sim_cluster.lua
--   failures, checkpoint intervals (Young, Daly), cluster MTBF     lua/chalk/sim_failures.lua
-- (the last two run on the discrete-event engine, core/sim/des.h)
local sim = {}

for _, m in ipairs { "chalk.sim_systolic", "chalk.sim_cluster", "chalk.sim_failures" } do
  for k, v in pairs(require(m)) do sim[k] = v end
end

return sim
