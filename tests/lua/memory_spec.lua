-- memory_spec.lua: chalk.memory_stats, categories (tag, with_category), and the GC pressure that
-- keeps a loop of tensor allocations flat in resident memory.
local chalk = require "chalk"
local S = require "support"

local function live_cpu()
  local total = 0
  for _, bytes in pairs(chalk.memory_stats().cpu) do total = total + bytes end
  return total
end

describe("memory_stats", function()
  it("has bytes by device and category, peaks and counts", function()
    local keep = chalk.zeros(1000) -- 4000 bytes of input (made at the prompt), alive below
    local m = chalk.memory_stats()
    for _, device in ipairs { "cpu", "cuda" } do
      for _, cat in ipairs { "activation", "parameter", "gradient", "optimizer state", "temporary", "input" } do
        assert.are.equal("number", type(m[device][cat]), device .. "." .. cat)
      end
      assert.are.equal("number", type(m.peak[device]))
    end
    assert.is_true(m.cpu.input >= 4000)
    assert.is_true(m.peak.cpu >= live_cpu())
    assert.is_true(m.live_tensors >= 1)
    assert.are.equal("number", type(m.allocated_total))
    assert.are.equal(1000, keep:numel())
  end)

  it("tag moves a tensor's bytes to another category", function()
    local before = chalk.memory_stats().cpu.parameter
    local w = chalk.zeros(256)
    assert.are.equal(w, chalk.tag(w, "parameter"))
    assert.are.equal("parameter", w:category())
    assert.are.equal(before + 1024, chalk.memory_stats().cpu.parameter)
    w:tag("optimizer state")
    assert.are.equal(before, chalk.memory_stats().cpu.parameter)
    S.error_matching(function() w:tag("weights") end, "unknown memory category 'weights'")
  end)

  it("with_category tags what is made inside and restores the default, even on error", function()
    local g = chalk.with_category("gradient", function() return chalk.zeros(4) end)
    assert.are.equal("gradient", g:category())
    assert.are.equal("input", chalk.zeros(4):category())
    assert.is_false(pcall(chalk.with_category, "temporary", function() error("x") end))
    assert.are.equal("input", chalk.zeros(4):category())
  end)

  it("__close releases the tensor at the end of its scope", function()
    collectgarbage()
    local base = live_cpu()
    do
      local big <close> = chalk.zeros(1 << 20) -- 4 MiB
      assert.is_true(live_cpu() >= base + (4 << 20))
    end
    assert.is_true(live_cpu() < base + (1 << 20))
  end)
end)

describe("GC pressure", function()
  it("keeps resident memory flat over 10,000 steps that allocate tensors", function()
    -- Each step makes about 120 KiB of tensors that Lua sees as a few small userdata; without the
    -- binding stepping the collector by tensor bytes, 10,000 steps would hold over 1 GiB.
    local function step(i)
      local x = chalk.full({ 100, 100 }, i)
      local y = x * 2 + i
      return y:sum():item()
    end
    for i = 1, 500 do step(i) end
    collectgarbage()
    local rss0, live0 = S.rss(), live_cpu()
    local peak_live = live0
    for i = 1, 10000 do
      step(i)
      if i % 100 == 0 then peak_live = math.max(peak_live, live_cpu()) end
    end
    local grown = S.rss() - rss0
    assert.is_true(grown < 64 * 1024 * 1024, ("resident memory grew by %.1f MiB"):format(grown / 2 ^ 20))
    assert.is_true(peak_live - live0 < 64 * 1024 * 1024,
      ("live tensor bytes reached %.1f MiB above the start"):format((peak_live - live0) / 2 ^ 20))
  end)
end)
