-- schedule_chart.lua: viz.schedule(s), the picture of a pipeline schedule (dist.pipeline), on viz's canvas.
--
-- Top: the grid, one row per stage (stage 1 on top), one column per tick (a step, or 1/v step
-- interleaved); a cell is the op's micro-batch number on its micro-batch colour (series1..6 in
-- turn): forward light (tint), backward solid; idle cells grey (bubbles). Interleaved chunks get
-- their chunk as a suffix ("5b": micro-batch 5, chunk 2). Under it: the activations each stage holds
-- after each tick, shaded from none to the schedule's largest count, and each stage's maximum.
local chalk = require "chalk"

local M = {}

function M.draw(s, o)
  o = o or {}
  if type(s) ~= "table" or not s.grid then error("viz.schedule: expects a schedule from dist.pipeline{...}", 3) end
  local viz = chalk.viz
  local p, ticks = s.stages, s.ticks
  local CW = o.cell or math.max(9, math.min(24, math.floor(1100 / ticks)))
  local CH, L, GAP = 16, 64, 40
  local W = CW * ticks
  local H2 = p * 10 -- the activation panel: 10 points per stage
  local B = 30      -- bottom margin
  local top2 = B + H2
  local y0 = top2 + GAP -- bottom of the grid
  local c = viz.canvas()
  -- bubbles first, the ops over them
  for st = 1, p do
    local y = y0 + (p - st) * CH
    c:rect(L, y, W, CH, "faint", "grid:ink")
    c:text(L - 6, y + 4, "stage " .. st, 9, "right", "text")
  end
  local big = 0
  for _, x in ipairs(s.inflight) do big = math.max(big, x) end
  for _, cell in ipairs(s.grid) do
    local col = ("series%d"):format((cell.mb - 1) % 6 + 1)
    local y = y0 + (p - cell.stage) * CH
    c:rect(L + cell.t * CW, y, CW, CH, cell.kind == "F" and col .. ":tint" or col, col .. ":ink",
      ("%s micro-batch %d chunk %d, step %g"):format(cell.kind, cell.mb, cell.chunk, cell.t / s.chunks + 1))
    local lab = tostring(cell.mb) .. (s.chunks > 1 and string.char(96 + cell.chunk) or "")
    if CW >= 12 or #lab == 1 then
      c:text(L + cell.t * CW + CW / 2, y + 4, lab, CW >= 14 and 8 or 6, "center", cell.kind == "F" and "text" or "paper")
    end
  end
  -- time axis: a tick label every 10 steps
  local every = ticks / s.chunks > 40 and 10 or 5
  for st = 0, ticks // s.chunks, every do
    local x = L + st * s.chunks * CW
    c:line({x, x}, {y0 - 3, y0}, "text", 0.8)
    c:text(x, y0 - 12, tostring(st), 8, "center", "text")
  end
  c:text(L + W / 2, y0 - 24, "time step (unit F and B)", 9, "center", "text")
  -- activations held per stage
  for st = 1, p do
    local y = B + (p - st) * 10
    local held = s:held(st)
    for t = 1, ticks do
      c:rect(L + (t - 1) * CW, y, CW, 10, ("heat:%.3f"):format(big > 0 and held[t] / big or 0))
    end
    c:text(L + W + 6, y + 1, ("stage %d: %d"):format(st, s.inflight[st]), 7, "left", "text")
  end
  c:text(L - 6, B + H2 / 2 - 3, "held", 9, "right", "text")
  c:text(L + W / 2, B - 16, ("activations held per stage (stage 1 on top; white none, darkest %d; right: the "
    .. "most)"):format(big), 9, "center", "text")
  local title = o.title or ("%s: p = %d, m = %d%s: %g steps, bubble %.3f"):format(s.schedule, p, s.microbatches,
    s.chunks > 1 and (", v = " .. s.chunks) or "", s.steps, s.bubble)
  c:text(L + W / 2, y0 + p * CH + 28, title, 12, "center", "title", true)
  c:legend(L + W + 8, y0 + p * CH - 12, {"series1:tint", "series1", "faint"},
    {"F (light), micro-batch colour", "B (solid)", "idle: bubble"})
  return c:render({file = o.file or "schedule.png", format = o.format}, "schedule.png")
end

return M
