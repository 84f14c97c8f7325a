-- chalk/lessonkit.lua: what the lessons' hidden setups share: best-of-n replay times, picture file
-- names, the line saying which device the measurements run on.
--
--   local kit = require "chalk.lessonkit"
--   kit.best_replay_ms(g, reps) -> ms  the shortest of reps replays of a captured graph (the minimum
--                                      is the least disturbed run: other work only adds time)
--   kit.pic(name) -> "name.png"        or the extension CHALK_LESSON_FORMAT names (svg, pdf; dot for
--                                      machines without Graphviz's renderers)
--   kit.gpu_banner(on_gpu, ...)        "GPU: <name> -- on_gpu", or "No GPU here (<why>)." and the
--                                      lines ... that say what runs instead
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

function M.pic(name) return name .. "." .. (os.getenv("CHALK_LESSON_FORMAT") or "png") end

function M.gpu_banner(on_gpu, ...)
  if chalk.cuda.is_available() then
    print("GPU: " .. chalk.cuda.get_device_name() .. " -- " .. on_gpu)
  else
    print("No GPU here (" .. tostring(chalk.cuda.unavailable_reason()) .. ").")
    for _, line in ipairs({ ... }) do print(line) end
  end
end

return M
