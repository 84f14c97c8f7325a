-- sim.lua: chalk.sim, the simulators on the discrete-event engine (core/sim/des.h). The cluster
-- scheduler and failure models live in sim_cluster.lua and sim_failures.lua; this file gathers them.
local M = {}
for k, v in pairs(require "chalk.sim_cluster") do M[k] = v end
for k, v in pairs(require "chalk.sim_failures") do M[k] = v end
return M
