-- ddp_spec.lua: simulated workers under their own contexts (rank, RNG stream, grad mode, memory,
-- virtual clocks, events tagged by rank), asynchronous collectives on the stream, and dist.DDP:
-- N workers at batch b/N end with the weights of one worker at batch b (busted, make check-dist).
package.path = "tests/dist/?.lua;" .. package.path
local chalk = require "chalk"
local dist = chalk.dist
local nn, optim = chalk.nn, chalk.optim
local T = require "ddp_train"

describe("simulated workers under their own contexts", function()
  it("give each worker its rank, a stream seeded base + rank - 1, its grad mode and memory", function()
    local res = dist.run(3, function(w)
      local ctx = chalk.context.current()
      if w.rank == 2 then chalk.set_grad_enabled(false) end
      local x = chalk.rand(4)
      w:barrier() -- the others run while rank 2 has grad off
      local keep = chalk.zeros(1000 * w.rank)
      return {rank = ctx.rank, seed = ctx:initial_seed(), x = x[1]:item(), grad = chalk.is_grad_enabled(),
              live = ctx:memory_stats().devices.cpu.peak, keep = keep}
    end, {seed = 10})
    for r = 1, 3 do
      assert.are.equal(r, res[r].rank)
      assert.are.equal(10 + r - 1, res[r].seed)
      assert.are.equal(r ~= 2, res[r].grad)
      assert.is_true(res[r].live >= 4000 * r and res[r].live < 4000 * r + 4096)
      chalk.manual_seed(10 + r - 1)
      assert.are.equal(chalk.rand(4)[1]:item(), res[r].x)
    end
    assert.is_true(chalk.is_grad_enabled())
    assert.are.equal(0, chalk.context.current().rank)
  end)

  it("tags every event with the worker's rank, comm.rank equal to it, on the virtual clock", function()
    local a, B, n = 5e-6, 1e9, 1 << 12
    local prof = chalk.profile(function()
      dist.run(4, function(w)
        local t = chalk.ones(n) * w.rank -- an op on the worker's compute clock
        w:all_reduce(t)
      end, {alpha = a, bandwidth = B, compute = 1e9})
    end)
    local ops, msgs, colls = 0, 0, 0
    for _, e in ipairs(prof:events()) do
      if e.kind == "op" and e.rank > 0 then
        ops = ops + 1
        assert.is_true(math.abs(e.t1 - e.t0 - n / 1e9 * 1e6) < 1e-3) -- flops / rate
      elseif e.kind == "message" then
        msgs = msgs + 1
        assert.are.equal(e.rank, e.comm.rank)
      elseif e.kind == "collective" then
        colls = colls + 1
        assert.are.equal(e.rank, e.comm.rank)
        -- starts after the worker's op, lasts the ring's law
        assert.is_true(math.abs(e.t1 - e.t0 - (6 * a + 1.5 * n * 4 / B) * 1e6) < 1e-3)
      end
    end
    assert.are.equal(4, ops)
    assert.are.equal(4 * 6 * 2, msgs)
    assert.are.equal(4, colls)
  end)

  it("runs an async all_reduce on the stream while the worker computes", function()
    local a, B, n = 1e-6, 1e8, 1 << 16
    local res = dist.run(2, function(w)
      local g = chalk.ones(n)
      local h = w:all_reduce(g, {async = true})
      local t_launch = w:clock()
      local x = chalk.ones(n)
      for _ = 1, 5 do x = x + 1 end -- 5 n flops of compute
      local t_compute = w:clock()
      h:wait()
      return {launch = t_launch, compute = t_compute, done = w:clock(), sum = g[1]:item(), ok = h:is_done()}
    end, {alpha = a, bandwidth = B, compute = 1e9})
    local comm = 2 * a + n * 4 / B
    for r = 1, 2 do
      assert.are.equal(2, res[r].sum)
      assert.is_true(res[r].ok)
      assert.is_true(res[r].compute - res[r].launch >= 5 * n / 1e9 - 1e-12)
      -- overlapped: the wait ends when the collective does, not compute + comm
      assert.is_true(math.abs(res[r].done - (res[r].launch + comm)) < 1e-9)
    end
  end)
end)

describe("timing-only collectives (world:simulate)", function()
  it("take the time and bytes of the real collective, for every algorithm", function()
    for _, algo in ipairs {"ring", "tree", "halving_doubling", "ps"} do
      for _, n in ipairs {3, 4} do
        local o = {alpha = 2e-6, bandwidth = 1e9}
        local dry = dist.run(n, function(w)
          return {t = w:simulate("all_reduce", 4 * 1001, {algo = algo}), sent = w:stats().by.all_reduce[algo].sent}
        end, o)
        local real = dist.run(n, function(w)
          w:all_reduce(chalk.ones(1001), {algo = algo})
          return {t = w:clock(), sent = w:stats().by.all_reduce[algo].sent}
        end, o)
        for r = 1, n do
          assert.is_true(math.abs(dry[r].t - real[r].t) < 1e-12, algo .. " time on rank " .. r)
          assert.are.equal(real[r].sent, dry[r].sent)
        end
      end
    end
  end)

  it("is refused on a world that is not simulated", function()
    local w = setmetatable({backend = "mpi"}, dist.World)
    assert.has_error(function() w:simulate("all_reduce", 8) end, "simulate: timing-only collectives run on sim")
  end)
end)

describe("dist.DDP", function()
  local ref = T.reference()
  for _, n in ipairs {1, 2, 4} do
    it(("on %d simulated workers at batch %d/%d ends with one worker's weights (1e-6)"):format(n, T.batch, n),
      function()
        local res = dist.run(n, function(w) return T.ddp(w, {bucket_mb = T.bucket_mb}) end,
          {alpha = 5e-6, bandwidth = 1e9, compute = 1e9})
        for r = 1, n do
          assert.is_true(T.worst(res[r].weights, ref) < 1e-6, "rank " .. r .. ": " .. T.worst(res[r].weights, ref))
          assert.are.equal(3, res[r].buckets)
        end
      end)
  end

  it("launches buckets during backward, overlapping it on the virtual clock", function()
    local prof = chalk.profile(function()
      dist.run(2, function(w) return T.ddp(w, {bucket_mb = T.bucket_mb, steps = 1}) end,
        {alpha = 5e-6, bandwidth = 1e9, compute = 1e9})
    end)
    local last_backward, first_bucket = {}, {}
    for _, e in ipairs(prof:events()) do
      if e.kind == "op" and e.backward and e.rank > 0 then
        last_backward[e.rank] = math.max(last_backward[e.rank] or 0, e.t1)
      elseif e.kind == "collective" and e.name == "all_reduce" then
        first_bucket[e.rank] = math.min(first_bucket[e.rank] or math.huge, e.t0)
      end
    end
    for r = 1, 2 do assert.is_true(first_bucket[r] < last_backward[r]) end
  end)

  it("says when a gradient arrives twice without a wait", function()
    local ok, err = pcall(dist.run, 1, function(w)
      local m = nn.Linear(2, 1)
      local d = dist.DDP(m, w)
      m(chalk.ones(1, 2)):sum():backward()
      m(chalk.ones(1, 2)):sum():backward()
    end)
    assert.is_false(ok)
    assert.matches("ready twice before ddp:wait()", err, 1, true)
  end)
end)

describe("viz.comm", function()
  it("draws the ring frame by frame from the message events, and the per-rank lanes", function()
    local prof = chalk.profile(function()
      dist.run(3, function(w) w:all_reduce(chalk.ones(7)) end, {alpha = 1e-6, bandwidth = 1e9})
    end)
    local ring = require("chalk.comm_charts").ring_messages(prof)
    assert.are.equal(3, ring.n)
    for s = 1, 4 do assert.are.equal(3, #ring.steps[s]) end
    local summary, frames = chalk.viz.comm(prof, {kind = "ring", file = "spec_ring.png"})
    assert.are.equal(4, #frames)
    assert.matches("spec_ring%.png$", summary)
    assert.matches("spec_ring_4%.png$", frames[4])
    assert.matches("lanes%.png$", chalk.viz.comm(prof, {file = "lanes.png"}))
    assert.has_error(function() chalk.viz.comm(prof, {kind = "pie"}) end)
  end)
end)
