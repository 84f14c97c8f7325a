-- serve_draw.lua: the pictures of lesson 13 on chalk.viz.canvas() (palette names only): the batching
-- Gantt (request x iteration, static beside continuous), the block tables (logical -> physical,
-- shared blocks marked, free list), the radix prefix tree with reference counts, and the KV memory
-- waste bars (contiguous reservation against paged). Each returns the path written.
local chalk = require "chalk"

local M = {}

local function canvas() return chalk.viz.canvas() end

-- serve.gantt({static=engine, continuous=engine}, {file=}): one panel per engine, a row per request,
-- a column per iteration: prefill, decode, waiting (arrived, not running), nothing.
function M.gantt(engines, o)
  o = o or {}
  local panels = {}
  for _, name in ipairs { "static", "continuous" } do
    if engines[name] then panels[#panels + 1] = { name = name, e = engines[name] } end
  end
  local cell, rowh, gap, left = 7, 12, 40, 60
  local nreq, width = 0, 0
  for _, p in ipairs(panels) do
    nreq = math.max(nreq, #p.e.requests)
    width = width + left + #p.e.gantt * cell + gap
  end
  local H = 90 + nreq * rowh + 40
  local c = canvas()
  c:text(width / 2, H - 18, o.title or "batching: request x iteration", 13, "center", "title", true)
  local x0 = 0
  for _, p in ipairs(panels) do
    local e, top = p.e, H - 50
    c:text(x0 + left + #e.gantt * cell / 2, top + 6, ("%s: %d iterations"):format(p.name, #e.gantt), 11,
      "center", "title", true)
    for i = 1, #e.requests do
      c:text(x0 + left - 6, top - i * rowh + rowh / 2 - 3, "req " .. i, 8, "right", "text")
    end
    for it, lane in ipairs(e.gantt) do
      local x = x0 + left + (it - 1) * cell
      for _, id in ipairs(lane.prefill) do c:rect(x, top - id * rowh, cell - 1, rowh - 2, "series2") end
      for _, id in ipairs(lane.decode) do c:rect(x, top - id * rowh, cell - 1, rowh - 2, "series1") end
    end
    c:text(x0 + left + #e.gantt * cell / 2, top - nreq * rowh - 16, "iteration", 9, "center", "muted")
    x0 = x0 + left + #e.gantt * cell + gap
  end
  c:legend(left, 22, { "series2", "series1" }, { "prefill (prompt)", "decode (one token)" })
  return c:render(o, "serve_gantt.png")
end

-- serve.draw_blocks(engine, {file=}): each running sequence's block table (logical blocks, the
-- physical block each maps to), and the pool: blocks in use, shared (ref > 1), cached, free.
function M.blocks(e, o)
  o = o or {}
  local pool = e.pool
  local bw, bh, per_row = 26, 18, 16
  local seqs = e.running
  local maxlog = 1
  for _, r in ipairs(seqs) do maxlog = math.max(maxlog, #r.blocks) end
  local left_w = 80 + maxlog * (bw + 4)
  local rows = (pool.total + per_row - 1) // per_row
  local W = left_w + 120 + per_row * (bw + 4)
  local H = math.max(#seqs * (bh + 10), rows * (bh + 8)) + 130
  local c = canvas()
  c:text(W / 2, H - 18, o.title or ("block tables at iteration %d"):format(e.iteration), 13, "center", "title", true)
  local top = H - 60
  c:text(20, top + 8, "logical blocks per sequence", 10, "left", "title", true)
  c:text(left_w + 100, top + 8, ("physical pool: %d blocks of %d tokens"):format(pool.total, pool.block_size), 10,
    "left", "title", true)
  local function phys_xy(b)
    local i = b - 1
    return left_w + 100 + (i % per_row) * (bw + 4), top - (i // per_row + 1) * (bh + 8)
  end
  for si, r in ipairs(seqs) do
    local y = top - si * (bh + 10)
    c:text(70, y + bh / 2 - 3, ("req %d"):format(r.id), 9, "right", "text")
    for j, b in ipairs(r.blocks) do
      local x = 80 + (j - 1) * (bw + 4)
      local shared = pool.ref[b] > 1
      c:rect(x, y, bw, bh, shared and "mark:tint" or "series1:tint", shared and "mark:ink" or "series1:ink")
      c:text(x + bw / 2, y + bh / 2 - 3, tostring(b), 8, "center", "title")
      local px, py = phys_xy(b)
      c:line({ x + bw, px }, { y + bh / 2, py + bh / 2 }, shared and "mark" or "faint", 0.6)
    end
  end
  local free = {}
  for _, b in ipairs(pool.free) do free[b] = true end
  for b = 1, pool.total do
    local x, y = phys_xy(b)
    local fill, ink = "grid", "grid:ink"
    if pool.ref[b] > 1 then fill, ink = "mark:tint", "mark:ink"
    elseif pool.ref[b] == 1 then fill, ink = "series1:tint", "series1:ink"
    elseif pool.cache and pool.cache:holds(b) then fill, ink = "summary:tint", "summary:ink" end
    c:rect(x, y, bw, bh, fill, ink)
    c:text(x + bw / 2, y + bh / 2 - 3, tostring(b), 8, "center", free[b] and "muted" or "title")
  end
  local st = pool:check()
  c:text(left_w + 100, 50, ("free %d + evictable %d + in use %d = total %d"):format(st.free, st.evictable,
    st.in_use, st.total), 10, "left", "title", true)
  c:legend(20, 22, { "series1:tint", "mark:tint", "summary:tint", "grid" },
    { "in use (ref 1)", "shared (ref > 1)", "cached, evictable (ref 0)", "free list" })
  return c:render(o, "serve_blocks.png")
end

-- serve.draw_radix(engine, {file=}): the prefix tree; each node one block of tokens, its physical
-- block and reference count; unreferenced nodes (evictable leaves first) faint.
function M.radix(e, o)
  o = o or {}
  local nodes = e.cache and e.cache:nodes() or {}
  local bw, bh, colw = 120, 22, 150
  local maxd = 1
  for _, n in ipairs(nodes) do maxd = math.max(maxd, n.depth) end
  local W = 60 + (maxd + 1) * colw
  local H = 110 + (#nodes + 1) * (bh + 6)
  local c = canvas()
  c:text(W / 2, H - 18, o.title or "radix prefix cache (one node per block)", 13, "center", "title", true)
  local top = H - 50
  local rx, ry = 20, top - bh
  c:rect(rx, ry, 60, bh, "paper", "text")
  c:text(rx + 30, ry + bh / 2 - 3, "root", 9, "center", "title")
  local pos = {}
  for i, n in ipairs(nodes) do
    local x, y = 20 + n.depth * colw - 60, top - (i + 1) * (bh + 6)
    pos[i] = { x, y }
    local px, py
    if n.parent == 0 then px, py = rx + 60, ry + bh / 2 else px, py = pos[n.parent][1] + bw, pos[n.parent][2] + bh / 2 end
    c:line({ px, x }, { py, y + bh / 2 }, "text", 0.8)
    local live = (n.ref or 0) > 0
    c:rect(x, y, bw, bh, live and "series1:tint" or "summary:tint", live and "series1:ink" or "summary:ink")
    local key = require("chalk.chargpt").decode((function()
      local ids = {}
      for id in n.key:gmatch("%d+") do ids[#ids + 1] = tonumber(id) end
      return ids
    end)())
    c:text(x + bw / 2, y + bh / 2 - 3, ("%q  blk %d  ref %d"):format(key, n.block, n.ref or 0), 8, "center", "title")
  end
  c:legend(20, 22, { "series1:tint", "summary:tint" }, { "referenced (ref > 0)", "unreferenced: LRU-evictable" })
  return c:render(o, "serve_radix.png")
end

-- serve.draw_waste(report, {file=}): mean KV slots per step on one trace: a contiguous reservation of
-- the context per sequence (used; reserved for tokens not yet generated; internal: past the request's
-- own end) against paged (used; the empty slots of each sequence's last block).
function M.waste(rep, o)
  o = o or {}
  local w = rep.waste
  local W, H = 560, 320
  local c = canvas()
  c:text(W / 2, H - 18, o.title or "KV slots held per step (mean over the trace)", 13, "center", "title", true)
  local top = math.max(w.used + w.reserved + w.internal, w.used + w.paged)
  local scale = 200 / top
  local bars = { { "contiguous (context per sequence)", { w.used, w.reserved, w.internal }, { "series1", "series2:tint", "series4:tint" } },
                 { ("paged (block %d)"):format(o.block_size or 0), { w.used, w.paged }, { "series1", "mark:tint" } } }
  for i, b in ipairs(bars) do
    local x, y, waste = 90 + (i - 1) * 220, 60, 0
    for k, v in ipairs(b[2]) do
      c:rect(x, y, 120, v * scale, b[3][k], b[3][k]:gsub(":tint", "") .. ":ink")
      y = y + v * scale
      if k > 1 then waste = waste + v end
    end
    c:text(x + 60, y + 6, ("used %.1f + waste %.1f"):format(b[2][1], waste), 9, "center", "title")
    c:text(x + 60, 46, b[1], 9, "center", "text")
  end
  c:legend(10, 14, { "series1", "series2:tint", "series4:tint", "mark:tint" },
    { "holding tokens", "reserved, not yet used", "internal: past the request's end", "paged: empty slots of last blocks" })
  return c:render(o, "serve_waste.png")
end

return M
