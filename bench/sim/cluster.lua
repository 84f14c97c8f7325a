-- bench/sim/cluster.lua: 10^5 jobs through sim.cluster on the discrete-event engine, per policy:
-- wall seconds and events. A loose bound (not a timed test): each policy must finish within
-- BOUND seconds (default 120; the design asks for "seconds"). Run: build/chalk bench/sim/cluster.lua [N]
local N = tonumber(arg and arg[1]) or 100000
local BOUND = tonumber(os.getenv("CHALK_SIM_BOUND") or "120")
local jobs = sim.philly_trace{n = N, seed = 3, gpus = 512, load = 0.7}
print(("%d jobs, 512 GPUs in 64 nodes, offered load 0.7"):format(N))
local worst = 0
for _, p in ipairs{"fifo", "sjf", "srtf", "las", "2d-las"} do
  local t = os.clock()
  local r = sim.cluster{gpus = 512, nodes = 64, trace = jobs, policy = p, preemption_cost = 30}
  local s = os.clock() - t
  worst = math.max(worst, s)
  print(("%-7s %6.2f s CPU  avg JCT %7.2f h  utilization %.3f  preemptions %d"):format(
    p, s, r.avg_jct / 3600, r.utilization, r.preemptions))
end
if worst > BOUND then
  io.stderr:write(("bench/sim/cluster.lua: slowest policy took %.1f s, over the %d s bound\n"):format(worst, BOUND))
  os.exit(1)
end
