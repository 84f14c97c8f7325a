-- context_spec.lua: chalk.context, one context per simulated worker (design decision 11): workers
-- as coroutines resumed under their own context keep their grad mode (a yield inside no_grad
-- leaves the other workers recording), their RNG stream, their memory statistics, their rank on
-- the events they push, and their clock.
local chalk = require "chalk"
local context = chalk.context

describe("chalk.context", function()
  it("has a default context, current on the main thread, of rank 0", function()
    local d = context.default()
    assert.are.equal(d, context.current())
    assert.are.equal(0, d.rank)
    assert.is_true(d:is_grad_enabled())
    assert.has_error(function() d:free() end)
    local c = context.new(3)
    assert.are.equal(3, c.rank)
    assert.are_not.equal(c, d)
    assert.matches("context%(rank 3%)", tostring(c))
  end)

  it("run switches a context in for a function and out after, also on error", function()
    local c = context.new(2)
    local rank, grad = c:run(function(a, b)
      assert.are.equal(c, context.current())
      return context.current().rank + a + b, chalk.is_grad_enabled()
    end, 10, 20)
    assert.are.equal(32, rank)
    assert.is_true(grad)
    assert.are.equal(context.default(), context.current())
    assert.has_error(function() c:run(function() error("boom") end) end, "boom")
    assert.are.equal(context.default(), context.current())
  end)

  it("a yield inside no_grad leaves grad mode off for the yielding worker only", function()
    local w = chalk.ones(3):requires_grad_()
    local a, b = context.new(0), context.new(1)
    local seen = {}
    local worker_a = coroutine.create(function()
      chalk.no_grad(function()
        seen.a_inside = (w * 2).requires_grad
        coroutine.yield() -- the scheduler runs worker b now
        seen.a_resumed = chalk.is_grad_enabled()
      end)
      seen.a_after = chalk.is_grad_enabled()
    end)
    local worker_b = coroutine.create(function()
      local loss = (w * 3):sum()
      seen.b_records = loss.requires_grad
      loss:backward()
    end)
    assert.is_true(context.resume(a, worker_a))
    assert.is_true(chalk.is_grad_enabled(), "the scheduler's own mode is untouched")
    assert.is_false(a:is_grad_enabled(), "worker a is still inside no_grad")
    assert.is_true(b:resume(worker_b))
    assert.is_true(a:resume(worker_a))
    assert.are.equal("dead", coroutine.status(worker_a))
    assert.is_false(seen.a_inside)
    assert.is_true(seen.b_records, "worker b recorded gradients while a was parked in no_grad")
    assert.is_false(seen.a_resumed, "a is back in no_grad when resumed")
    assert.is_true(seen.a_after)
    assert.are.same({ 3, 3, 3 }, w.grad:totable())
  end)

  it("run carries a yield out to the resumer with the context switched out", function()
    local c = context.new(4)
    local co = coroutine.create(function()
      return c:run(function()
        chalk.set_grad_enabled(false)
        local got = coroutine.yield(context.current().rank)
        return got, chalk.is_grad_enabled(), context.current().rank
      end)
    end)
    local ok, rank = coroutine.resume(co)
    assert.is_true(ok)
    assert.are.equal(4, rank)
    assert.are.equal(context.default(), context.current())
    assert.is_true(chalk.is_grad_enabled())
    local ok2, got, grad, rank2 = coroutine.resume(co, "x")
    assert.is_true(ok2)
    assert.are.same({ "x", false, 4 }, { got, grad, rank2 })
  end)

  it("gives each context its own RNG stream, whatever the interleaving", function()
    local function worker(out)
      return function()
        chalk.manual_seed(7)
        out[1] = chalk.rand(4):totable()
        coroutine.yield()
        out[2] = chalk.randn(3):totable()
      end
    end
    local ra, rb = {}, {}
    local a = context.wrap(context.new(0), worker(ra))
    local b = context.wrap(context.new(1), worker(rb))
    a(); a() -- a runs to the end before b starts
    b(); b()
    assert.are.same(ra, rb)
    local ra2, rb2 = {}, {}
    local a2 = context.wrap(context.new(0), worker(ra2))
    local b2 = context.wrap(context.new(1), worker(rb2))
    a2(); b2(); a2(); b2() -- interleaved
    assert.are.same(ra, ra2)
    assert.are.same(ra, rb2)
  end)

  it("keeps memory statistics per context and per device index", function()
    local a, b = context.new(0), context.new(1)
    local keep = a:run(function() return chalk.zeros(1000) end) -- 4000 bytes charged to a
    local ma, mb = a:memory_stats(), b:memory_stats()
    assert.are.equal(4000, ma.cpu.input)
    assert.are.equal(0, mb.cpu.input)
    assert.are.equal(4000, ma.devices.cpu.input)
    assert.is_true(ma.devices.cpu.peak >= 4000)
    assert.are.equal(4000, ma.devices.cpu.allocated)
    assert.is_nil(ma.devices["cuda:0"], "no cuda:0 entry before anything was allocated there")
    keep = nil
    collectgarbage()
    assert.are.equal(0, a:memory_stats().cpu.activation, "freed on the main thread, charged back to a")
    a:reset_peak_memory()
    assert.are.equal(0, a:memory_stats().peak.cpu)
  end)

  it("calls Lua gradient-ready hooks once per leaf with its finished .grad, then backward-end", function()
    local c = context.new(0)
    local calls = {}
    local ready = c:on_grad_ready(function(leaf) calls[#calls + 1] = leaf.grad:totable() end)
    c:on_backward_end(function() calls[#calls + 1] = "end" end)
    c:run(function()
      local x = chalk.tensor({ 1, 2 }):requires_grad_()
      local loss = (x * x + x):sum() -- x reaches the loss along three edges
      loss:backward()
    end)
    assert.are.same({ { 3, 5 }, "end" }, calls)
    c:remove_hook(ready)
    assert.has_error(function() c:remove_hook(ready) end)
    local before = #calls
    local w = chalk.ones(2):requires_grad_()
    local loss = (w * 2):sum()
    loss:backward() -- the default context: c's hooks stay out of it
    assert.are.equal(before, #calls)
    c:on_grad_ready(function() error("bucket full") end)
    local ok, err = pcall(c.run, c, function()
      local l = (w * 3):sum()
      l:backward()
    end)
    assert.is_false(ok)
    assert.matches("grad%-ready hook: .*bucket full", err)
  end)

  it("tags events with the rank, lane and clock of the context that ran them", function()
    local c = context.new(6)
    c:set_stream(1)
    c:set_clock(500)
    assert.is_true(c:is_virtual_clock())
    local p = chalk.profile(function()
      local x = chalk.ones(2)
      local y = x * 2 -- rank 0
      return y, c:run(function() return x + x end)
    end)
    local ranks = {}
    for _, e in ipairs(p:events()) do
      if e.kind == "op" then ranks[#ranks + 1] = e.rank end
    end
    assert.are.same({ 0, 6 }, ranks)
    local path = (os.getenv("CHALK_OUT") or "/tmp") .. "/context_trace.json"
    p:export_chrome(path)
    local f = assert(io.open(path))
    local json = f:read("a")
    f:close()
    assert.matches('"tid": 6001, "ts": 0, "args": {"name": "rank 6 stream 1"}', json, 1, true)
    assert.matches('"rank": 6,', json, 1, true)
    assert.are.equal(510, c:advance(10))
    assert.has_error(function() c:advance(-1) end)
    c:use_wall_clock()
    assert.is_false(c:is_virtual_clock())
  end)
end)
