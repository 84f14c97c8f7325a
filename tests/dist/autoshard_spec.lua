-- autoshard_spec.lua: dist.autoshard: the dynamic programme equals brute force on random chains of 1
-- to 6 layers (with and without a memory limit), rediscovers column-then-row at small batch, crosses
-- over to data parallel at large batch, and predicts the simulated step time within 10% (busted).
local chalk = require "chalk"
local dist = chalk.dist

describe("dist.autoshard", function()
  it("agrees with brute force on chains of up to 6 layers", function()
    math.randomseed(21)
    local n = 0
    for K = 1, 6 do
      for _ = 1, 8 do
        local d = {}
        for i = 1, K + 1 do d[i] = 64 * math.random(1, 32) end
        local o = {world = ({2, 4, 8})[math.random(1, 3)], batch = 2 ^ math.random(2, 14) // 1, alpha = 5e-6,
                   bandwidth = 25e9, compute = 1e12}
        o.batch = math.tointeger(o.batch)
        local free = dist.autoshard_brute(d, o)
        o.memory = free.memory * (0.8 + 0.4 * math.random()) -- binding about half the time
        local ok, dp = pcall(dist.autoshard, d, o)
        local bf = dist.autoshard_brute(d, o)
        if not ok then assert.is_nil(bf) else
          assert.is_true(math.abs(dp.time - bf.time) <= 1e-12 * bf.time, table.concat(dp.choice, ","))
          assert.is_true(dp.memory <= o.memory)
          n = n + 1
        end
      end
    end
    assert.is_true(n >= 24, n .. " feasible cases")
  end)
  it("rediscovers column-then-row at small batch and data parallel at large", function()
    local o = {world = 4, batch = 16, alpha = 5e-6, bandwidth = 25e9, compute = 1e12}
    assert.are.same({"column", "row"}, dist.autoshard({1024, 4096, 1024}, o).choice)
    assert.are.same({"column", "row", "column", "row"}, dist.autoshard({1024, 4096, 1024, 4096, 1024}, o).choice)
    o.batch = 65536
    assert.are.same({"replicate", "replicate"}, dist.autoshard({1024, 4096, 1024}, o).choice)
  end)
  it("predicts the simulated step time within 10%", function()
    for _, b in ipairs{16, 1024, 65536} do
      local o = {world = 4, batch = b, alpha = 5e-6, bandwidth = 25e9, compute = 1e12}
      local plan = dist.autoshard({256, 1024, 256}, o)
      local sim = dist.autoshard_simulate(plan, {256, 1024, 256}, o)
      assert.is_true(math.abs(sim - plan.time) <= 0.1 * sim)
    end
  end)
  it("names a memory limit nothing fits in", function()
    assert.has_error(function() dist.autoshard({64, 64}, {world = 2, batch = 4, memory = 10}) end)
  end)
end)
