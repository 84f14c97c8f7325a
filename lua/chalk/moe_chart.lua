-- moe_chart.lua: the tokens-per-expert picture of nn.MoE: one panel per capacity factor, a bar per
-- expert (the assignments it kept, the ones it dropped stacked above), and the capacity as a line.
--
--   moe_chart = require "chalk.moe_chart"
--   moe_chart.tokens_per_expert({ {factor = 1.0, last = moe.last}, ... }, {file = "moe.png"})
--
-- Invariants: the data is shaped here, every mark is drawn on chalk.viz.canvas() with palette names
-- (kept: forward, dropped: freed, capacity: mark); tokens_per_expert_dot returns the DOT text.
local chalk = require "chalk"
local chart = require "chalk.chart"

local M = {}

local function build(runs, opts)
  local n = #runs
  local PW, PH, L, B, T, gap = 300, 260, 56, 56, 110, 24
  local W, H = L + n * PW + (n - 1) * gap + 16, B + PH + T
  local ymax = 0
  for _, r in ipairs(runs) do
    for e = 1, #r.last.load do ymax = math.max(ymax, r.last.load[e], r.last.capacity) end
  end
  local step = chart.nice_step(ymax, 5)
  ymax = math.ceil(ymax * 1.08 / step) * step
  local c = chalk.viz.canvas()
  local function py(v) return B + v / ymax * PH end
  c:text(W / 2, H - 18, opts.title or "tokens per expert: kept, dropped, and the capacity", 15, "center", "title")
  for i, r in ipairs(runs) do
    local x0 = L + (i - 1) * (PW + gap)
    local last = r.last
    local E = #last.load
    local v = 0
    while v <= ymax + step / 2 do
      c:rect(x0, py(v) - 0.25, PW, 0.5, "grid")
      if i == 1 then c:text(x0 - 6, py(v), ("%d"):format(v), 12, "right") end
      v = v + step
    end
    c:rect(x0, B, PW, 1, "text")
    local bw = PW / E
    for e = 1, E do
      local bx = x0 + (e - 1) * bw + bw * 0.15
      c:rect(bx, B, bw * 0.7, py(last.kept[e]) - B, "forward", "forward:ink",
        ("expert %d: %d kept"):format(e, last.kept[e]))
      if last.dropped[e] > 0 then
        c:rect(bx, py(last.kept[e]), bw * 0.7, py(last.load[e]) - py(last.kept[e]), "freed", "freed:ink",
          ("expert %d: %d dropped"):format(e, last.dropped[e]))
        c:text(bx + bw * 0.35, py(last.load[e]) + 8, tostring(last.dropped[e]), 11, "center", "text")
      end
      c:text(bx + bw * 0.35, B - 14, tostring(e), 12, "center")
    end
    c:line({ x0, x0 + PW }, { py(last.capacity), py(last.capacity) }, "mark", 2, true)
    local total = 0
    for e = 1, E do total = total + last.dropped[e] end
    c:text(x0 + PW / 2, B + PH + 34, ("factor %.2f: capacity %d"):format(r.factor, last.capacity), 13, "center",
      "title", true)
    c:text(x0 + PW / 2, B + PH + 16, ("%d of %d assignments dropped"):format(total, last.tokens * last.top_k), 12,
      "center", "text")
  end
  c:text(L + (W - L) / 2, 14, "expert", 12, "center")
  c:text(6, H - 48, "assignments (token, expert) per expert", 12, "left")
  c:legend(W - 330, H - 48, { "forward", "freed", "mark" }, { "kept", "dropped", "capacity" }, 12)
  return c
end

chart.export(M, "tokens_per_expert", 1, build, "moe_tokens_per_expert.png")

return M
