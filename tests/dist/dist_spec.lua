-- dist_spec.lua: chalk.dist on simulated workers (busted, by make check-dist): every algorithm and
-- reduction for N = 1, 2, 3, 4, 7, 8 (tests/dist/collectives.lua), byte counts and the virtual
-- clock against the law, deadlock and mismatch errors, and what dist.init says without MPI.
package.path = "tests/dist/?.lua;" .. package.path
local chalk = require "chalk"
local dist = chalk.dist
local C = require "collectives"

describe("dist on sim", function()
  for _, n in ipairs {1, 2, 3, 4, 7, 8} do
    it("runs every collective against a plain loop on " .. n .. " workers", function()
      local res = dist.run(n, function(w) return C.run(w) end)
      for r = 1, n do assert.is_true(res[r] > 100) end
    end)
  end

  it("ring all_reduce: 2(N-1)/N S bytes in 2(N-1) steps, time 2(N-1)a + 2(N-1)/N S/B", function()
    local a, B, elems = 5e-6, 25e9, 1 << 16
    local res = dist.run(4, function(w) return C.ring_bytes(w, elems) end, {alpha = a, bandwidth = B})
    for r = 1, 4 do
      assert.are.equal(1.5 * elems * 4, res[r].sent)
      assert.are.equal(6, res[r].messages)
      assert.is_true(math.abs(res[r].time - (6 * a + 1.5 * elems * 4 / B)) < 1e-12)
      assert.is_true(math.abs(res[r].busbw / res[r].algbw - 1.5) < 1e-12)
    end
  end)

  it("parameter server: rank 1's link carries (N-1) S each way", function()
    local res = dist.run(4, function(w)
      w:all_reduce(chalk.ones(250), {algo = "ps"})
      return w:stats().by.all_reduce.ps
    end)
    assert.are.equal(3000, res[1].received)
    assert.are.equal(3000, res[1].sent)
    assert.are.equal(1000, res[2].sent)
  end)

  it("reports a rank that skips a collective as a deadlock naming ranks and collectives", function()
    local ok, err = pcall(dist.run, 3, function(w)
      if w.rank ~= 2 then w:all_reduce(chalk.ones(6)) end
    end)
    assert.is_false(ok)
    assert.matches("deadlock on 3 simulated workers", err)
    assert.matches("rank 3 waits in all_reduce #1 %(ring%) at step 0 for rank 2, which has finished", err, 1)
  end)

  it("reports different shapes across ranks as a mismatch naming both ranks", function()
    local ok, err = pcall(dist.run, 2, function(w) w:all_reduce(chalk.ones(4 + w.rank)) end)
    assert.is_false(ok)
    assert.matches("rank 2: .*dist_spec.lua:%d+: dist mismatch: rank 1 sent all_reduce #1 %(ring, sum, f32%[5%]%)", err)
    assert.matches("tensors differ across ranks", err, 1, true)
  end)

  it("reports different collectives across ranks as a mismatch", function()
    local ok, err = pcall(dist.run, 2, function(w)
      if w.rank == 1 then w:all_reduce(chalk.ones(4)) else w:broadcast(chalk.ones(4), 1) end
    end)
    assert.is_false(ok)
    assert.matches("expects broadcast #1 %(tree", err)
    assert.matches("skipped or reordered", err, 1, true)
  end)

  it("refuses what it cannot do in place, with the op named", function()
    assert.has_error(function()
      dist.run(2, function(w) w:all_reduce(chalk.ones(4, 4):t()) end)
    end)
    local ok, err = pcall(dist.run, 2, function(w) w:all_reduce(chalk.ones(4), {op = "prod"}) end)
    assert.matches("unknown reduction \"prod\"", err, 1, true)
    ok, err = pcall(dist.run, 2, function(w) w:all_to_all(chalk.ones(5)) end)
    assert.matches("all_to_all: 5 elements do not split into 2 equal chunks", err, 1, true)
  end)

  it("dist.init without MPI built in says what to install", function()
    if dist.available() then return end
    local ok, err = pcall(dist.init)
    assert.is_false(ok)
    assert.matches("openmpi%-bin libopenmpi%-dev", err)
  end)
end)
