-- sim.lua: chalk.sim (the REPL global `sim`), simulators of machines a laptop does not have.
-- Each simulator lives in its own module and adds its names here:
--   sim.systolic(R, C, {dataflow = "weight"|"input"|"output"})   lua/chalk/sim_systolic.lua
local sim = {}

for k, v in pairs(require "chalk.sim_systolic") do sim[k] = v end

return sim
