-- superopt_draw.lua: the picture of a superoptimizer search (res:tree{file=}): one column per
-- depth; under each depth's node the fate of every expression it generated (pruned by shape,
-- pruned by cost, merged with an equal cheaper one, kept, rejected by test, verified); the kept
-- ones (and the tested ones) are what the next depth grows from. On the right the verified
-- programs, cheapest first, the chosen one marked, beside the original.
--
-- Invariants: drawn on chalk.viz.canvas() with palette names only; returns the path written.
local chalk = require "chalk"

local M = {}

local FATES = {
  { "verified", "series3", "verified (equal on every test)" },
  { "rejected", "series2", "rejected by test (target shape, other values; still grown)" },
  { "kept", "series1", "kept (grown at the next depth)" },
  { "merged", "summary", "merged (equal to a cheaper kept one)" },
  { "cost", "series4", "pruned by cost (over the original's)" },
  { "shape", "grid", "pruned by shape" },
}

local function us(t) return ("%.1f us"):format(t * 1e6) end

function M.tree(res, opts)
  local depths = #res.stats
  local colw, bw, bh, gap = 178, 150, 20, 6
  local left_w = 30 + (depths + 1) * colw
  local right_w = 430
  local W = left_w + right_w
  local H = 120 + (#FATES + 1) * (bh + gap) + 60
  local c = chalk.viz.canvas()
  c:text(W / 2, H - 20, opts.title or "superoptimizer search", 13, "center", "title", true)
  local top = H - 60
  -- depth 0: the leaves
  local names = {}
  for _, e in ipairs(res.x.leaf_list) do names[#names + 1] = e.name end
  local x0 = 20
  c:rect(x0, top - bh, bw, bh, "input:tint", "input:ink")
  c:text(x0 + bw / 2, top - bh / 2, ("leaves: %d"):format(#names), 9, "center", "title", true)
  local leaf_text = table.concat(names, ", ")
  if #leaf_text > 26 then leaf_text = leaf_text:sub(1, 24) .. ".." end
  c:text(x0 + bw / 2, top - bh - 12, leaf_text, 8, "center", "muted")
  local prev_x, prev_y = x0 + bw, top - bh / 2
  for d, st in ipairs(res.stats) do
    local x = 20 + d * colw
    local hy = top - bh
    c:line({ prev_x, x }, { prev_y, hy + bh / 2 }, "text", 1)
    c:rect(x, hy, bw, bh, "paper", "text")
    c:text(x + bw / 2, hy + bh / 2, ("depth %d: %d generated"):format(d, st.generated), 9, "center", "title", true)
    for k, f in ipairs(FATES) do
      local y = hy - 14 - k * (bh + gap)
      c:line({ x + 10, x + 10, x + 18 }, { hy, y + bh / 2, y + bh / 2 }, "muted", 0.8)
      c:rect(x + 18, y, bw - 18, bh, f[2] .. ":tint", f[2] .. ":ink")
      c:text(x + 24, y + bh / 2, f[1], 8, "left", "text")
      c:text(x + bw - 6, y + bh / 2, tostring(st[f[1]]), 9, "right", "title", true)
    end
    -- the next depth grows from the kept box
    prev_x, prev_y = x + bw, hy - 14 - 3 * (bh + gap) + bh / 2
  end
  -- the programs
  local rx = left_w + 10
  c:text(rx, top - 4, "original (its tail):", 9, "left", "text", true)
  c:text(rx, top - 18, tostring(res.original) .. "   " .. us(res.original.time), 9, "left", "muted")
  c:text(rx, top - 40, "verified programs, cheapest first (roofline time):", 9, "left", "text", true)
  for i, p in ipairs(res.programs) do
    if i > 8 then
      c:text(rx, top - 40 - i * 18, ("... %d more"):format(#res.programs - 8), 8, "left", "muted")
      break
    end
    local y = top - 40 - i * 18
    if i == 1 then c:rect(rx - 4, y - 8, right_w - 20, 16, "current:tint", "mark") end
    c:text(rx, y, ("%d. %s   %s"):format(i, tostring(p), us(p.time)), 9, "left", i == 1 and "title" or "text")
  end
  if #res.defs > 0 then
    c:text(rx, 64, "leaves computed before the tail: " .. table.concat(res.defs, ", "), 8, "left", "muted")
  end
  local cols, labels = {}, {}
  for k, f in ipairs(FATES) do cols[k], labels[k] = f[2] .. ":tint", f[3] end
  c:legend(20, 30, { cols[1], cols[2], cols[3] }, { labels[1], labels[2], labels[3] })
  c:legend(20, 12, { cols[4], cols[5], cols[6] }, { labels[4], labels[5], labels[6] })
  c:legend(rx, 40, { "mark" }, { "chosen: the cheapest verified program" })
  return c:render(opts, "superopt_search.png")
end

return M
