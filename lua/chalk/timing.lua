-- chalk/timing.lua: best-of-n wall times that lessons print (the minimum is the least disturbed
-- run: other processes and the first touch of memory only ever add time).
--
--   local timing = require "chalk.timing"
--   timing.best_replay_ms(g, reps) -> ms   the shortest of reps replays of a captured graph
local chalk = require "chalk"

local M = {}

function M.best_replay_ms(g, reps)
  local t = math.huge
  for _ = 1, reps do
    local t0 = chalk.clock()
    g:replay()
    t = math.min(t, chalk.clock() - t0)
  end
  return t * 1e3
end

return M
