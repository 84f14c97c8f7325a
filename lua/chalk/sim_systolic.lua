-- sim_systolic.lua: sim.systolic, a cycle-level R x C systolic array (the TPU's MXU) and its
-- pictures (lesson 18). The cycles run in C (lua/lsim_systolic.c, core/sim/systolic.c); this file
-- is the grid object, the laws beside it, and the drawing on chalk.viz.canvas().
--
--   grid = sim.systolic(4, 4, {dataflow = "weight"})     -- "weight" | "input" | "output"
--   P, st = grid:matmul(A, B)   -- st.cycles st.folds st.utilization st.macs st.reads_a ...
--   law = grid:law(M, K, N)     -- folds, T, cycles per full fold 2R + C + T - 2, utilization
--   grid:frames(A, B, {file = "wave.png"})   -- the first fold cycle by cycle, + wave_summary.png
--   sim.plot_utilization(rows, opts)  sim.plot_dataflows(rows, opts)
--
-- Invariants: every number in st comes from the simulated cycles; the law is computed separately
-- (tests compare the two); pictures use palette names only.
local chalk = require "chalk"
local core = require "chalk.systolic_core"

local M = {}
local Grid = {}
Grid.__index = Grid

local FLOWS = { weight = "weight-stationary", input = "input-stationary", output = "output-stationary" }

function M.systolic(R, C, opts)
  opts = opts or {}
  local df = opts.dataflow or "weight"
  if not FLOWS[df] then error(("sim.systolic: unknown dataflow '%s' (weight, input or output)"):format(df), 2) end
  if math.type(R) ~= "integer" or math.type(C) ~= "integer" or R < 1 or C < 1 then
    error("sim.systolic(R, C): R and C must be positive integers", 2)
  end
  return setmetatable({ R = R, C = C, dataflow = df }, Grid)
end

function Grid:__tostring()
  return ("systolic grid %d x %d, %s"):format(self.R, self.C, FLOWS[self.dataflow])
end

function Grid:matmul(A, B)
  local P, st = core.matmul(self.R, self.C, self.dataflow, A, B)
  st.grid = tostring(self)
  return P, st
end

local function ceil_div(a, b) return (a + b - 1) // b end

-- The closed forms for C = A[M,K] B[K,N]: which sizes go on the grid's rows and columns, T streamed.
function Grid:law(Mr, K, N)
  local R, C = self.R, self.C
  local rows, cols, T -- the matrix sizes folded over rows and columns
  if self.dataflow == "weight" then rows, cols, T = K, N, Mr
  elseif self.dataflow == "input" then rows, cols, T = K, Mr, N
  else rows, cols, T = Mr, N, K end
  local full = 2 * R + C + T - 2
  local exact = 0 -- every fold, edge tiles ending when their last useful value leaves
  for r0 = 0, rows - 1, R do
    for c0 = 0, cols - 1, C do
      local r, c = math.min(R, rows - r0), math.min(C, cols - c0)
      exact = exact + (self.dataflow == "output" and (r + c + T - 2 + R) or (2 * R + c + T - 2))
    end
  end
  local folds = ceil_div(rows, R) * ceil_div(cols, C)
  return { folds = folds, T = T, rows = rows, cols = cols, cycles_per_fold = full,
           utilization = T / full, cycles = exact, macs = Mr * K * N,
           formula = "2R + C + T - 2" }
end

-- ---- pictures ----------------------------------------------------------------------------------

local STATE_COLOR = { mac = "current", load = "parameter:tint", pass = "grid", idle = "paper" }

local function num(v)
  if v == math.floor(v) and math.abs(v) < 1e6 then return ("%d"):format(v) end
  return ("%.2g"):format(v)
end

-- The first fold, one small panel per cycle (the frame sequence), and a summary: busy cells per
-- cycle against the R x C the grid has. Returns the two paths.
function Grid:frames(A, B, opts)
  opts = opts or {}
  local R, C = self.R, self.C
  if R * C > 256 then error("grid:frames: draws grids up to 16 x 16 cells", 2) end
  local _, st, frames = core.matmul(R, C, self.dataflow, A, B, 1)
  local file = opts.file or "systolic_frames.png"
  local cell = opts.cell or 26
  local per_row = opts.per_row or 6
  local pw, ph = C * cell + 14, R * cell + 24
  local rows = ceil_div(#frames, per_row)
  local W, H = per_row * pw + 20, rows * ph + 86
  local c = chalk.viz.canvas()
  c:text(W / 2, H - 18, opts.title or ("%s: fold 1, %d cycles"):format(tostring(self), #frames), 13,
         "center", "title", true)
  for f, fr in ipairs(frames) do
    local col, row = (f - 1) % per_row, (f - 1) // per_row
    local x0, top = 14 + col * pw, H - 40 - row * ph
    c:text(x0 + C * cell / 2, top - 8, ("cycle %d"):format(fr.cycle), 9, "center", "text")
    for i = 1, R do
      for j = 1, C do
        local k = (i - 1) * C + j
        local s = fr.state[k]
        local x, y = x0 + (j - 1) * cell, top - 16 - i * cell
        c:rect(x, y, cell - 2, cell - 2, STATE_COLOR[s], "grid:ink")
        local v = s == "load" and fr.held[k] or fr.value[k]
        if s ~= "idle" then c:text(x + cell / 2 - 1, y + cell / 2 - 1, num(v), 8, "center",
                                   s == "mac" and "title" or "muted") end
      end
    end
  end
  c:legend(14, 22, { "current", "parameter:tint", "grid" },
           { "busy: multiply-accumulate (the value is the partial sum it made)",
             self.dataflow == "output" and "draining a finished result" or "a stationary value shifting in",
             "passing a value on, no multiply" })
  local path = c:render({ file = file }, "systolic_frames.png")
  -- the summary: busy cells per cycle
  local busy = {}
  for f, fr in ipairs(frames) do
    local n = 0
    for _, s in ipairs(fr.state) do if s == "mac" then n = n + 1 end end
    busy[f] = n
  end
  local sw, sh, L, Bm = 520, 280, 56, 70
  local s = chalk.viz.canvas()
  local bw = (sw - L - 20) / #frames
  local function py(v) return Bm + v / (R * C) * (sh - Bm - 50) end
  s:text(sw / 2, sh - 18, ("busy cells per cycle, %s, fold 1"):format(tostring(self)), 12, "center", "title", true)
  for v = 0, R * C, math.max(1, R * C // 4) do
    s:rect(L, py(v) - 0.25, sw - L - 20, 0.5, "grid")
    s:text(L - 6, py(v), tostring(v), 9, "right")
  end
  local every = #frames <= 24 and 1 or math.ceil(#frames / 12)
  for f, n in ipairs(busy) do
    local loading = false
    for _, st_ in ipairs(frames[f].state) do loading = loading or st_ == "load" end
    if loading and n == 0 then s:rect(L + (f - 1) * bw + 1, py(0), bw - 2, py(R * C) - py(0), "parameter:tint") end
    if n > 0 then s:rect(L + (f - 1) * bw + 1, py(0), bw - 2, py(n) - py(0), "current", "current:ink") end
    if f % every == 0 or f == 1 then s:text(L + (f - 0.5) * bw, py(0) - 10, tostring(f), 8, "center") end
  end
  s:rect(L, py(R * C) - 0.75, sw - L - 20, 1.5, "mark")
  s:text(sw - 20, py(R * C) + 8, ("R x C = %d cells"):format(R * C), 9, "right", "mark")
  s:text(L, 34, ("%d cycles = 2R + C + T - 2 (R=%d, C=%d, T=%d); busy cell-cycles %d; utilisation %.3f")
    :format(#frames, R, C, st.T, st.macs, st.utilization), 9, "left", "text")
  s:text((L + sw - 20) / 2, 50 - 2, "cycle", 9, "center")
  s:legend(L, 12, { "current", "parameter:tint", "mark" },
           { "cells busy (multiply-accumulate)",
             self.dataflow == "output" and "draining results" or "loading the stationary values",
             "every cell busy" })
  local summary = opts.summary or file:gsub("%.png$", "") .. "_summary.png"
  local spath = s:render({ file = summary }, "systolic_summary.png")
  return path, spath
end

-- rows: {{x = size, measured = u, law = u}, ...}: measured points on the law's curve, log2 x axis;
-- opts.curve(x), when given, draws the law as a smooth curve.
function M.plot_utilization(rows, opts)
  opts = opts or {}
  local W, H, L, B, Rm, T = 560, 300, 60, 56, 20, 44
  local c = chalk.viz.canvas()
  local lx0, lx1 = math.log(rows[1].x, 2), math.log(rows[#rows].x, 2)
  local function px(x) return L + (math.log(x, 2) - lx0) / (lx1 - lx0) * (W - L - Rm) end
  local function py(y) return B + y * (H - B - T) end
  for y = 0, 1.0001, 0.25 do
    c:rect(L, py(y) - 0.25, W - L - Rm, 0.5, "grid")
    c:text(L - 6, py(y), ("%.2f"):format(y), 9, "right")
  end
  local xs, ys = {}, {}
  for i, r in ipairs(rows) do
    xs[i], ys[i] = px(r.x), py(r.law)
    c:text(px(r.x), B - 12, tostring(r.x), 9, "center")
  end
  if opts.curve then -- the law sampled densely (a smooth line on the log axis)
    xs, ys = {}, {}
    for i = 0, 64 do
      local x = 2 ^ (lx0 + (lx1 - lx0) * i / 64)
      xs[#xs + 1], ys[#ys + 1] = px(x), py(opts.curve(x))
    end
  end
  c:line(xs, ys, "series1", 1.6)
  for _, r in ipairs(rows) do c:point(px(r.x), py(r.measured), "series2", 7) end
  c:text(W / 2, H - 16, opts.title or "utilisation of one fold vs rows streamed", 13, "center", "title", true)
  c:text((L + W - Rm) / 2, 24, opts.xlabel or "T (rows of A streamed through the grid)", 10, "center")
  c:legend(L + 8, H - T - 8, { "series1", "series2" }, { "law T / (2R + C + T - 2)", "simulated" })
  return c:render(opts, "systolic_utilization.png")
end

-- rows: {{name = "weight", cycles =, reads =, writes =}, ...}: grouped bars per dataflow.
function M.plot_dataflows(rows, opts)
  opts = opts or {}
  local keys = { { "cycles", "series1" }, { "reads", "series2" }, { "writes", "series3" } }
  local W, H, L, B, T = 560, 300, 40, 60, 44
  local c = chalk.viz.canvas()
  local gw = (W - L - 20) / #rows
  local bw = (gw - 30) / #keys
  for _, k in ipairs(keys) do
    local top = 0
    for _, r in ipairs(rows) do top = math.max(top, r[k[1]]) end
    k.top = top
  end
  for g, r in ipairs(rows) do
    local x0 = L + (g - 1) * gw + 15
    for i, k in ipairs(keys) do
      local h = r[k[1]] / k.top * (H - B - T - 20)
      local x = x0 + (i - 1) * bw
      c:rect(x, B, bw - 4, h, k[2], k[2] .. ":ink")
      c:text(x + bw / 2 - 2, B + h + 6, ("%d"):format(r[k[1]]), 8, "center")
    end
    c:text(x0 + #keys * bw / 2, B - 14, r.name, 10, "center", "text", true)
  end
  c:rect(L, B, W - L - 20, 1, "text")
  c:text(W / 2, H - 16, opts.title or "cycles and buffer traffic per dataflow", 13, "center", "title", true)
  c:legend(L, 14, { "series1", "series2", "series3" },
           { "cycles", "buffer reads (elements)", "buffer writes (elements)" })
  c:text(W - 20, 20, "bars scaled per quantity", 8, "right", "muted")
  return c:render(opts, "systolic_dataflows.png")
end

return M
