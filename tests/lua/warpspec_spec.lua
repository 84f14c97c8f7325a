-- warpspec_spec.lua: chalk.warpspec (lesson 19): the simulated producer/consumer pipeline against
-- its steady-state law and its invariants (the ring never holds more than S slices, a slice is
-- computed only after it landed and after the one before it, one slot means no overlap), the
-- overlap measured on hand-made runs and stamps, argument errors, and the pictures.
local chalk = require "chalk"
local ws = require "chalk.warpspec"

local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-9) * math.max(1, math.abs(b)) end

describe("warpspec.simulate", function()
  local params = {{load = 6, compute = 2, issue = 0.5}, {load = 1, compute = 3, issue = 0},
                  {load = 10, compute = 1, issue = 2}, {load = 0, compute = 1, issue = 0.25}}
  it("reaches the law's period max(c, p, (p+L+c)/S) for 1 to 8 slots", function()
    for _, p in ipairs(params) do
      for S = 1, 8 do
        local r = ws.simulate{stages = S, load = p.load, compute = p.compute, issue = p.issue, tiles = 80}
        local l = ws.law{stages = S, load = p.load, compute = p.compute, issue = p.issue}
        assert.is_true(close(r.period, l.period), ("S=%d L=%g: period %g, law %g"):format(S, p.load, r.period, l.period))
        assert.is_true(r.overlap <= r.utilization + 1e-12 and r.utilization <= 1 + 1e-12)
        assert.is_true(r.utilization <= l.utilization + 1e-12)
        if S == 1 then assert.are.equal(0, r.overlap) end
      end
    end
  end)
  it("keeps the ring's invariants on random latencies", function()
    math.randomseed(19)
    for _ = 1, 40 do
      local S, L, c, p = math.random(1, 6), math.random() * 8, 0.1 + math.random() * 3, math.random() * 0.5
      local T = math.random(1, 40)
      local r = ws.simulate{stages = S, load = L, compute = c, issue = p, tiles = T}
      assert.are.equal(T, #r.slices)
      for i, s in ipairs(r.slices) do
        assert.is_true(close(s.issue1 - s.issue0, p) and close(s.done - s.start, c))
        assert.is_true(s.landed >= s.issue1 + L - 1e-9 and s.start >= s.landed - 1e-12)
        if i > 1 then
          assert.is_true(s.start >= r.slices[i - 1].done - 1e-12, "in order, one at a time")
          assert.is_true(s.issue0 >= r.slices[i - 1].issue1 - 1e-12, "one producer")
        end
        if i > S then assert.is_true(s.issue0 >= r.slices[i - S].done - 1e-12, "slot refilled only when empty") end
        local held = 0 -- slices in the ring at the instant s is issued
        for _, o in ipairs(r.slices) do if o.issue0 <= s.issue0 and s.issue0 < o.done then held = held + 1 end end
        assert.is_true(held <= S, ("%d slices in %d slots"):format(held, S))
      end
    end
  end)
  it("names bad parameters", function()
    assert.has_error(function() ws.simulate{stages = 0, load = 1, compute = 1} end, "warpspec.simulate: stages = 0; a whole number >= 1")
    assert.has_error(function() ws.simulate{stages = 2, load = -1, compute = 1} end, "warpspec.simulate: load = -1; a time >= 0")
    assert.has_error(function() ws.simulate{stages = 2, load = 1} end, "warpspec.simulate: compute = nil; a time >= 0")
  end)
end)

describe("warpspec overlap", function()
  it("is the part of the span where consumers compute while a slice is in flight", function()
    -- slice 1: issued 0..1, computed 4..8; slice 2: issued 1..2, computed 8..10: span 0..10,
    -- in flight 0..4 and 1..8 (union 0..8), computing 4..10: both 4..8
    local run = ws.measure{slices = {{issue0 = 0, issue1 = 1, start = 4, done = 8}, {issue0 = 1, issue1 = 2, start = 8, done = 10}},
      roles = {{name = "p", busy = {{0, 1}, {1, 2}}, kind = "issue"}}}
    assert.is_true(close(run.span, 10) and close(run.overlap, 0.4) and close(run.utilization, 0.6))
  end)
  it("reads the kernel's stamps [9, nk, 3] (producer row, then consumer warps)", function()
    local v = {}
    for w = 1, 9 do
      v[w] = {}
      for i = 1, 2 do -- clock64 values
        if w == 1 then v[w][i] = {10 * i, 10 * i, 10 * i + 1}   -- issue slice i at 10i
        else v[w][i] = {0, 20 + 10 * i + w % 2, 25 + 10 * i} end -- compute 30.. and 40..
      end
    end
    local run = ws.from_stamps(chalk.tensor(v, {dtype = "i64"}), 2)
    assert.are.equal(2, #run.slices)
    assert.are.equal(30, run.slices[1].start)
    assert.are.equal(45, run.slices[2].done)
    assert.are.equal(9, #run.roles)
    -- span 10..45; computing 30..35, 40..45; in flight 10..30, 20..40: overlap 30..35 of 35
    assert.is_true(close(run.overlap, 5 / 35) and close(run.utilization, 10 / 35))
  end)
end)

describe("warpspec pictures", function()
  it("draw the timeline, the bars and the stages plot", function()
    local dir = os.tmpname()
    os.remove(dir)
    local r = ws.simulate{stages = 3, load = 6, compute = 2, issue = 0.5, tiles = 20}
    for _, f in ipairs{ws.timeline(r, {file = dir .. "_t.dot", format = "dot"}),
                       ws.bars({{"a", 1}, {"b", 2.5}}, {file = dir .. "_b.dot", format = "dot"}),
                       ws.plot_stages({{stages = 1, sim = 0, law = 0}, {stages = 2, sim = 0.4, law = 0.5}},
                                      {file = dir .. "_s.dot", format = "dot"})} do
      local h = assert(io.open(f))
      local text = h:read("a")
      assert.is_truthy(text:find("graph chalk_plot", 1, true), f .. " is not a chart's DOT")
      h:close()
      os.remove(f)
    end
    assert.has_error(function() ws.bars({}) end, "warpspec.bars: expects {{label, value [, colour]}, ...}")
  end)
end)
