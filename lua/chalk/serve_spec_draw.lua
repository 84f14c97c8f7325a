-- serve_spec_draw.lua: the pictures of lesson 14 on chalk.viz.canvas() (palette names only): the
-- draft/verify timeline of a speculative run (accepted green, first rejection red, bonus blue) and
-- E against the acceptance rate for several gamma with measured points. Each returns the path.
local chalk = require "chalk"

local M = {}

-- serve.draw_timeline(stats, {file=}): one column per target pass; its cells the drafts proposed,
-- coloured by fate, then the token the target added (the resample after a rejection, or the bonus).
function M.timeline(st, o)
  o = o or {}
  local cw, ch, gap = 22, 16, 4
  local rounds = st.rounds
  local maxg = 1
  for _, r in ipairs(rounds) do maxg = math.max(maxg, r.proposed + 1) end
  local W = 80 + #rounds * (cw + gap) + 20
  local H = 110 + maxg * (ch + 3) + 40
  local c = chalk.viz.canvas()
  c:text(W / 2, H - 18, o.title or "speculative decoding: one column per target pass", 13, "center", "title", true)
  local base = 70
  for i, r in ipairs(rounds) do
    local x = 80 + (i - 1) * (cw + gap)
    for j = 1, r.proposed do
      local fill = j <= r.accepted and "series3" or (j == r.accepted + 1 and "backward" or "grid")
      c:rect(x, base + (j - 1) * (ch + 3), cw, ch, fill)
    end
    local y = base + r.accepted * (ch + 3)
    if r.bonus then c:rect(x, base + r.proposed * (ch + 3), cw, ch, "series1") y = nil end
    if y then c:rect(x + 5, y + 4, cw - 10, ch - 8, "paper", "backward:ink") end
    c:text(x + cw / 2, base - 14, tostring(r.accepted + 1), 8, "center", "text")
  end
  c:text(72, base - 14, "tokens", 8, "right", "muted")
  c:text(72, base + 4, "draft 1", 8, "right", "muted")
  c:legend(20, 18, { "series3", "backward", "grid", "series1" },
    { "accepted draft", "first rejection (target resamples)", "not judged", "bonus token (all accepted)" })
  return c:render(o, "spec_timeline.png")
end

-- serve.draw_acceptance(points, {gammas=, file=}): curves E(a) = (1 - a^(g+1)) / (1 - a) for each
-- gamma, and the measured points {a=, E=, g=} on them.
function M.acceptance(points, o)
  o = o or {}
  local gammas = o.gammas or { 1, 2, 4, 8 }
  local W, H, x0, y0, pw, ph = 560, 380, 70, 60, 440, 260
  local ymax = 0
  for _, g in ipairs(gammas) do ymax = math.max(ymax, g + 1) end
  local c = chalk.viz.canvas()
  c:text(W / 2, H - 18, o.title or "tokens per target pass E against acceptance a", 13, "center", "title", true)
  c:line({ x0, x0 + pw }, { y0, y0 }, "text", 1)
  c:line({ x0, x0 }, { y0, y0 + ph }, "text", 1)
  for k = 0, 5 do
    local a = k / 5
    c:text(x0 + a * pw, y0 - 14, ("%.1f"):format(a), 8, "center", "text")
  end
  for v = 1, ymax do c:text(x0 - 6, y0 + v / ymax * ph - 3, tostring(v), 8, "right", "text") end
  c:text(x0 + pw / 2, y0 - 30, "acceptance a", 9, "center", "muted")
  local series = { "series1", "series2", "series3", "series4", "series5", "series6" }
  local names, labels = {}, {}
  for i, g in ipairs(gammas) do
    local xs, ys = {}, {}
    for k = 0, 50 do
      local a = k / 50 * 0.98
      xs[#xs + 1], ys[#ys + 1] = x0 + a * pw, y0 + (1 - a ^ (g + 1)) / (1 - a) / ymax * ph
    end
    c:line(xs, ys, series[i], 1.5)
    names[i], labels[i] = series[i], ("gamma %d"):format(g)
    for _, p in ipairs(points) do
      if p.g == g then c:point(x0 + p.a * pw, y0 + p.E / ymax * ph, series[i], 7) end
    end
  end
  c:legend(x0 + 10, y0 + ph - 10 - 14 * #gammas, names, labels)
  return c:render(o, "spec_acceptance.png")
end

return M
