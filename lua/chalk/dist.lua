-- dist.lua: chalk.dist, the world object and the simulated-worker scheduler (design decision 10).
--
--   dist.run(N, fn, {backend="sim", alpha=5e-6, bandwidth=25e9})   -- fn(world) on N workers
--   dist.run(N, fn, {backend="nccl"})    -- N GPUs driven by this process (ncclCommInitAll)
--   world = dist.init()                  -- under chalk --nproc N [--backend nccl]
--   world.rank, world.size         (1-based rank, as every index in chalk)
--   world.device                   "cpu" (sim, mpi) or this rank's GPU, "cuda:k" (nccl)
--   world:all_reduce(t, {op="sum"|"mean"|"max"|"min", algo="ring"|"tree"|"halving_doubling"|"ps"|"native"})
--   world:reduce_scatter(t, {op=})  world:all_gather(t)  world:broadcast(t, root)  world:all_to_all(t)
--   world:send(t, peer)  world:recv(t, peer)  world:barrier()  world:split(color, key)  world:stats()
--
-- Every collective works IN PLACE on t, as NCCL does with sendbuff == recvbuff, and returns t.
-- t is split in `size` chunks (the first count % size one element longer): reduce_scatter leaves
-- the reduced chunk `rank` in t (the rest holds partial sums); all_gather fills every chunk from the
-- rank that owns it; all_to_all sends chunk j to rank j, which puts it in its chunk `rank`.
--
-- On sim, workers are coroutines resumed round-robin; a collective that waits for a peer yields to
-- the scheduler. When no unfinished worker can progress, dist.run raises a deadlock error naming
-- every waiting rank, its collective and the rank it waits for; a worker's error is raised as
-- "rank R: ...". Calling a collective from inside your own coroutine is not supported on sim.
-- Virtual clocks: a message of b bytes costs alpha + b/bandwidth (full duplex; one message at a
-- time per sender and per receiver; reductions free), see core/dist/dist.h.
--
-- Contexts (design decision 11): each simulated worker runs under its own chalk.context, switched
-- in around every resume: rank = world.rank (the global rank, 1-based as Lua counts; the default
-- context, rank 0, is the main thread), its own RNG stream seeded base + rank - 1 (base: opts.seed,
-- else the caller's stream's seed), its own grad mode and memory statistics, and a virtual clock.
-- Every event a worker pushes carries its rank (ops, allocations, messages, collectives); a message
-- or collective event's comm.rank is the same global rank, 0-based in C (ct_event_comm) and
-- 1-based in prof:events(). Under MPI the process's default context takes rank = world.rank.
--
-- Two clocks per simulated worker, one time base (microseconds in events, seconds in stats):
-- the compute clock (the context's) and the communication stream (the transport's, core/dist/sim.c).
-- With opts.compute = R (FLOP/s), every op moves the compute clock by its flops / R (the op
-- table's count, 1 per output element without a rule), so op events have virtual durations; without
-- it compute is free. A blocking collective starts on the stream at max(compute, stream) and the
-- compute clock waits for its end. An asynchronous one (world:all_reduce(t, {async = true}), and
-- DDP's buckets) is queued at the compute clock's time and runs on the stream, in launch order (one
-- stream, as NCCL), while compute goes on; h:wait() (or any blocking collective) moves the compute
-- clock to the stream's end. So the trace shows communication overlapping backward honestly: the
-- overlap is exactly the compute done between a bucket's launch and its wait.
local chalk = require "chalk"
local core = require "chalk.dist_core"

local dist = {}
local World = {}
World.__index = World
local WAIT = {} -- the token a blocked collective yields to the scheduler

-- stream: the worker's communication queue, shared by the world and its splits; stream.coop: the
-- worker is a coroutine of run_workers (a blocked collective yields to the other workers)
local function new_world(tr, members, grank, gid, backend, stream)
  local dev = backend == "nccl" and "cuda:" .. tr:device(members[grank + 1]) or "cpu"
  local w = setmetatable({rank = grank + 1, size = #members, backend = backend, device = dev, _tr = tr,
                          _members = members, _gid = gid, _splits = 0, _stream = stream}, World)
  w._g = core.group(tr, members, grank, gid)
  return w
end

local function opts_of(o, what)
  if o ~= nil and type(o) ~= "table" then error(what .. ": options must be a table, e.g. {op=\"sum\"}", 3) end
  return o or {}
end

-- Core errors name this file's line; re-raise them at the user's call (level 3 from _run).
local function raise(msg)
  error((tostring(msg):gsub("^[^:]*dist%.lua:%d+: ", "")), 3)
end

-- The worker's context (sim) and global rank, 0-based.
local function me(self) return self._members[self.rank] end

-- Compute clock -> stream: the stream cannot start before the caller got there.
local function stream_at(self, t_us)
  if self._stream.ctx then self._tr:advance(me(self), t_us / 1e6) end
end
-- Stream -> compute clock: the caller waited for the stream.
local function compute_waits(self)
  local ctx = self._stream.ctx
  if ctx then
    local t = self._tr:clock(me(self)) * 1e6
    if t > ctx:clock() then ctx:set_clock(t) end
  end
end

local function start(self, coll, algo, op, t, root, count)
  local ok, x = pcall(self._g.start, self._g, coll, algo, op, t, root, count)
  if not ok then raise(x) end
  return x
end

-- Runs the queued asynchronous collectives of this worker's stream, in launch order, as far as
-- they go without waiting. Returns the exec that waits (and its peer, step), or nil when all are
-- done. Never yields: hooks inside backward call it.
function World:_progress()
  local s = self._stream
  while s.head <= s.tail do
    local h = s.queue[s.head]
    if not h.x then
      stream_at(h.world, h.launch)
      h.x = start(h.world, h.coll, h.algo, h.op, h.t, 0)
    end
    local fine, st, peer, step = pcall(h.x.step, h.x)
    if not fine then raise(st) end
    if st ~= "done" then return h.x, peer, step end
    h.done, s.queue[s.head], s.head = true, nil, s.head + 1
  end
end

-- Moves the queued collectives on by one blocking exchange (sim: yields to the scheduler while
-- blocked; real backends run it); false when nothing is left to wait for.
function World:_step()
  local x, peer, step = self:_progress()
  if not x then return false end
  if self._stream.coop then
    coroutine.yield(WAIT, x, peer, step)
  else
    local fine, err = pcall(x.run, x)
    if not fine then raise(err) end
  end
  return true
end

-- Waits for every queued asynchronous collective (sim: yields to the scheduler while blocked).
function World:_wait_all()
  local s = self._stream
  if s.head > s.tail then return end
  while self:_step() do end
  compute_waits(self)
end

-- Queues an asynchronous collective at the compute clock's time; returns its handle.
function World:_launch(coll, algo, op, t)
  local s = self._stream
  local h = setmetatable({world = self, coll = coll, algo = algo, op = op, t = t,
                          launch = s.ctx and s.ctx:clock() or 0}, dist.Handle)
  s.tail = s.tail + 1
  s.queue[s.tail] = h
  self:_progress()
  return h
end

dist.Handle = {__index = {}}
-- h:wait(): this collective and every one launched before it are done; returns the tensor.
function dist.Handle.__index.wait(h)
  while not h.done and h.world:_step() do end
  compute_waits(h.world)
  return h.t
end
function dist.Handle.__index.is_done(h) return h.done or false end

function World:_run(coll, algo, op, t, root, count)
  self:_wait_all() -- one stream: a blocking collective runs after the queued ones
  local ctx = self._stream.ctx
  if ctx then stream_at(self, ctx:clock()) end
  local x = start(self, coll, algo, op, t, root, count)
  if not self._stream.coop then
    local fine, err = pcall(x.run, x)
    if not fine then raise(err) end
    return t
  end
  while true do
    local fine, st, peer, step = pcall(x.step, x)
    if not fine then raise(st) end
    if st == "done" then
      compute_waits(self)
      return t
    end
    coroutine.yield(WAIT, x, peer, step)
  end
end

local function check_rank(self, r, what)
  if math.type(r) ~= "integer" or r < 1 or r > self.size then
    error(string.format("%s: rank %s outside 1..%d", what, tostring(r), self.size), 3)
  end
  return r - 1
end

-- {async = true} returns a handle h (h:wait() -> t) instead of waiting: the collective runs on the
-- worker's communication stream while the caller computes.
-- world:simulate(coll, bytes, {algo=}): on sim, the collective's schedule on S = bytes (f32
-- elements, bytes // 4) with no data: messages carry only their sizes, so times and byte counts
-- of any size (1 GiB too) cost no memory. Returns the call's simulated time in seconds.
function World:simulate(coll, bytes, o)
  o = opts_of(o, "simulate")
  if self.backend ~= "sim" then error("simulate: timing-only collectives run on sim", 2) end
  local t0 = self:clock()
  self:_run(coll, o.algo or "ring", "sum", nil, 0, bytes // 4)
  return self:clock() - t0
end

function World:all_reduce(t, o)
  o = opts_of(o, "all_reduce")
  if o.async then return self:_launch("all_reduce", o.algo or "ring", o.op or "sum", t) end
  return self:_run("all_reduce", o.algo or "ring", o.op or "sum", t, 0)
end
function World:reduce_scatter(t, o)
  o = opts_of(o, "reduce_scatter")
  return self:_run("reduce_scatter", o.algo or "ring", o.op or "sum", t, 0)
end
function World:all_gather(t, o)
  o = opts_of(o, "all_gather")
  return self:_run("all_gather", o.algo or "ring", "sum", t, 0)
end
function World:broadcast(t, root, o)
  o = opts_of(o, "broadcast")
  return self:_run("broadcast", o.algo or "tree", "sum", t, check_rank(self, root or 1, "broadcast"))
end
function World:all_to_all(t)
  return self:_run("all_to_all", "pairwise", "sum", t, 0)
end
function World:send(t, peer)
  return self:_run("send", "direct", "sum", t, check_rank(self, peer, "send"))
end
function World:recv(t, peer)
  return self:_run("recv", "direct", "sum", t, check_rank(self, peer, "recv"))
end
function World:barrier()
  self:_run("barrier", "dissemination", "sum", nil, 0)
end

-- The chunk of t's elements that rank r (1-based, default this rank) owns in reduce_scatter and
-- all_gather: first, count (1-based first element of the flattened tensor).
function World:chunk(n, r)
  r = (r or self.rank) - 1
  local base, rem = n // self.size, n % self.size
  return r * base + math.min(r, rem) + 1, base + (r < rem and 1 or 0)
end

-- Sub-groups, as MPI_Comm_split: ranks with the same color form a group, ordered by key then by
-- rank; color nil gives nil (in no group). Every rank of this world must call it.
function World:split(color, key)
  if color ~= nil and math.type(color) ~= "integer" then error("split: color must be an integer or nil", 2) end
  key = key or 0
  local t = chalk.zeros(2 * self.size, {dtype = "f64"})
  t[2 * self.rank - 1] = color or -2 ^ 52
  t[2 * self.rank] = key
  if self.device ~= "cpu" then t = self:_run("all_gather", "ring", "sum", t:to(self.device), 0):to("cpu")
  else self:_run("all_gather", "ring", "sum", t, 0) end
  self._splits = self._splits + 1
  if color == nil then return nil end
  local mine = {}
  for r = 1, self.size do
    if t[2 * r - 1]:item() == color then mine[#mine + 1] = {key = t[2 * r]:item(), rank = r} end
  end
  table.sort(mine, function(a, b) return a.key < b.key or (a.key == b.key and a.rank < b.rank) end)
  local members, me = {}, nil
  for i, m in ipairs(mine) do
    members[i] = self._members[m.rank]
    if m.rank == self.rank then me = i - 1 end
  end
  -- the same id on every member: parent id, split number and color, folded into 31 bits
  local gid = ((self._gid * 1000003 + self._splits * 8191 + color) % 2147483629) + 1
  return new_world(self._tr, members, me, gid, self.backend, self._stream)
end

-- Bytes sent and received by this rank, per collective and algorithm, with nccl-tests' algbw
-- (S / t) and busbw (algbw * 2(n-1)/n for all_reduce, (n-1)/n for reduce_scatter, all_gather).
function World:stats()
  local by = self._g:stats()
  local s = {rank = self.rank, size = self.size, backend = self.backend, sent = 0, received = 0, time = 0, by = by}
  for _, algos in pairs(by) do
    for _, a in pairs(algos) do
      s.sent, s.received, s.time = s.sent + a.sent, s.received + a.received, s.time + a.time
    end
  end
  return s
end
function World:reset_stats() self._g:reset_stats() end

-- The rank's clock in seconds: virtual on sim (the compute clock, which a blocking collective moves
-- to its end), wall (the event log's) on mpi and nccl (where a collective's end is its GPU's).
function World:clock()
  local ctx = self._stream.ctx
  if ctx then return math.max(ctx:clock() / 1e6, 0) end
  return self._tr:clock(me(self))
end

function World:__tostring()
  return string.format("World(rank %d of %d, %s)", self.rank, self.size, self.backend)
end

-- ---- sim: the scheduler ------------------------------------------------------------------------

local function describe_wait(w)
  local coll, algo, seq = w.exec:info()
  return string.format("rank %d waits in %s #%d (%s) at step %d for rank %d", w.rank, coll, seq, algo, w.step,
                       w.peer + 1)
end

-- n cooperative workers in this process over tr: sim's virtual ones, or nccl's (one GPU each,
-- compute on the GPUs' own clocks).
local function run_workers(n, fn, o, tr, backend)
  local sim = backend == "sim"
  local members = {}
  for r = 1, n do members[r] = r - 1 end
  local base = o.seed or chalk.context.current():initial_seed()
  local workers, results = {}, {}
  for r = 1, n do
    local ctx = chalk.context.new(r)
    ctx:manual_seed(base + r - 1)
    if sim then ctx:set_clock(0) end
    if o.compute then ctx:run(core.compute_clock, o.compute) end
    local world = new_world(tr, members, r - 1, 0, backend,
                            {queue = {}, head = 1, tail = 0, ctx = sim and ctx or nil, coop = true})
    local co = coroutine.create(function(w)
      local res = fn(w)
      w:_wait_all() -- a worker's queued collectives finish before it does
      return res
    end)
    workers[r] = {rank = r, world = world, ctx = ctx, co = co, state = "new"}
  end
  local left = n
  while left > 0 do
    local before, blocked = tr:progress(), 0
    for _, w in ipairs(workers) do
      if w.state ~= "finished" then
        local ok, a, b, c, d
        if w.state == "new" then
          w.state = "running"
          ok, a, b, c, d = chalk.context.resume(w.ctx, w.co, w.world)
        else
          ok, a, b, c, d = chalk.context.resume(w.ctx, w.co)
        end
        if not ok then
          error(string.format("dist.run: rank %d: %s", w.rank, tostring(a)), 0)
        elseif coroutine.status(w.co) == "dead" then
          w.state, results[w.rank] = "finished", a
          left = left - 1
        elseif a == WAIT then
          w.state, w.exec, w.peer, w.step = "blocked", b, c, d
          blocked = blocked + 1
        else
          error(string.format("dist.run: rank %d yielded outside a collective (workers are the scheduler's "
                              .. "coroutines)", w.rank), 0)
        end
      end
    end
    if left > 0 and blocked == left and tr:progress() == before then
      local lines = {}
      for _, w in ipairs(workers) do
        if w.state == "blocked" then
          local p = workers[w.peer + 1]
          local what = p.state == "finished" and "which has finished"
            or p.state == "blocked" and string.format("which waits in %s", (p.exec:info()))
          lines[#lines + 1] = describe_wait(w) .. ", " .. what
        end
      end
      error("dist.run: deadlock on " .. n .. (sim and " simulated" or " " .. backend) .. " workers: " .. table.concat(lines, "; ")
            .. " (a rank skipped a collective, or they were called in different orders)", 0)
    end
  end
  local worlds = {}
  for r = 1, n do worlds[r] = workers[r].world end
  return results, worlds
end

local function run_sim(n, fn, o)
  if o.compute ~= nil and not (type(o.compute) == "number" and o.compute >= 1) then
    error("dist.run: compute is the simulated device's rate in FLOP/s (e.g. 1e12)", 3)
  end
  return run_workers(n, fn, o, core.sim(n, o.alpha or 0, o.bandwidth or 0), "sim")
end

-- ---- mpi, and processes of chalk --nproc N --backend nccl ------------------------------------------

local proc_world
local function launched_by_mpirun()
  return os.getenv("OMPI_COMM_WORLD_SIZE") ~= nil or os.getenv("PMIX_RANK") ~= nil
end
-- chalk --nproc N --backend nccl sets it (over mpirun or its own pipe launcher)
local function launched_backend()
  local b = os.getenv("CHALK_DIST_BACKEND")
  if b and b ~= "" then return b end
  return launched_by_mpirun() and "mpi" or nil
end

-- dist.available(): is MPI built in; dist.available("nccl"): true, or false and why not (no CUDA
-- build, no GPU, no libnccl).
function dist.available(backend)
  if backend == "nccl" then return core.nccl_available() end
  return core.mpi_available()
end

-- The id exchange of an nccl job: this process's rank (0-based), the size and NCCL's unique id (128
-- bytes, the same on every rank), from chalk --nproc's pipe, or from rank 1 over MPI (a broadcast of
-- its 128 bytes as 16 int64 on the mpi world). Needs libnccl, not a GPU.
function dist.nccl_bootstrap()
  local rank, size, id = core.nccl_launched()
  if not rank then
    local tr, r, s = core.mpi()
    if not tr then error("dist.init: the nccl backend needs chalk --nproc N --backend nccl (" .. r .. ")", 2) end
    local members = {}
    for k = 1, s do members[k] = k - 1 end
    local w = new_world(tr, members, r, 0, "mpi", {queue = {}, head = 1, tail = 0})
    local t = chalk.zeros(16, {dtype = "i64"})
    if r == 0 then
      local ok, made = pcall(core.nccl_unique_id)
      if not ok then error("dist.init: " .. tostring(made), 2) end
      for k = 1, 16 do t[k] = (string.unpack("<i8", made, 8 * k - 7)) end
    end
    w:broadcast(t, 1)
    local parts = {}
    for k = 1, 16 do parts[k] = string.pack("<i8", t[k]:item()) end
    rank, size, id = r, s, table.concat(parts)
  end
  return rank, size, id
end

-- This process's rank of an nccl job.
local function nccl_process()
  local rank, size, id = dist.nccl_bootstrap()
  local ok, tr = pcall(core.nccl_rank, rank, size, id)
  if not ok then error("dist.init: " .. tostring(tr), 3) end
  return tr, rank, size
end

-- The world of this process, started by chalk --nproc N [--backend nccl] (mpirun, or for nccl
-- without MPI chalk's own launcher). o.backend overrides what the launcher said.
function dist.init(o)
  if proc_world then return proc_world end
  local backend = (o and o.backend) or launched_backend() or "mpi"
  local tr, rank, size
  if backend == "nccl" then
    tr, rank, size = nccl_process()
  else
    tr, rank, size = core.mpi()
    if not tr then error("dist.init: " .. rank, 2) end
  end
  local members = {}
  for r = 1, size do members[r] = r - 1 end
  proc_world = new_world(tr, members, rank, 0, backend, {queue = {}, head = 1, tail = 0})
  -- as a simulated worker starts: the stream seeded base + rank - 1 (the context's rank is set)
  chalk.manual_seed(chalk.context.current():initial_seed() + rank)
  return proc_world
end

-- fn(world) on n workers. backend "sim" (default), "mpi" or "nccl"; a script started by chalk
-- --nproc runs on the launcher's backend unless backend="sim" is given, so the same file runs
-- unchanged every way. nccl in a plain process: n GPUs driven by cooperative workers as on sim.
-- Returns the workers' results (in one process: all of them; else this rank's at its rank) and worlds.
function dist.run(n, fn, o)
  if math.type(n) ~= "integer" or n < 1 then error("dist.run: the number of workers must be a positive integer", 2) end
  if type(fn) ~= "function" then error("dist.run: fn must be a function of the world", 2) end
  o = o or {}
  local launched = launched_backend()
  local backend = o.backend or launched or "sim"
  if backend == "sim" then return run_sim(n, fn, o) end
  if backend ~= "mpi" and backend ~= "nccl" then
    error("dist.run: backend \"" .. tostring(backend) .. "\" (sim, mpi or nccl)", 2)
  end
  if backend == "nccl" and not launched then
    local ok, tr = pcall(core.nccl_all, n)
    if not ok then error("dist.run: " .. tostring(tr), 2) end
    return run_workers(n, fn, o, tr, "nccl")
  end
  local w = dist.init({backend = backend})
  if w.size ~= n then
    error(string.format("dist.run(%d, ...) on %d processes: start it with chalk --nproc %d", n, w.size, n), 2)
  end
  local results, worlds = {}, {}
  results[w.rank], worlds[w.rank] = fn(w), w
  w:_wait_all()
  return results, worlds
end

dist.World = World

-- viz.comm(prof, {kind = "lanes" | "ring"}): lua/chalk/comm_charts.lua
if chalk.viz then
  chalk.viz.comm = function(prof, o) return require("chalk.comm_charts").comm(prof, o) end
  -- viz.comm_crossover(rows, opts): time against message size per algorithm, log-log
  chalk.viz.comm_crossover = function(rows, o) return require("chalk.comm_charts").crossover(rows, o) end
end

-- dist.DDP(model, world, {bucket_mb = 25, algo = "ring"}): lua/chalk/ddp.lua
function dist.DDP(model, world, o) return require("chalk.ddp").new(dist, model, world, o) end
-- dist.pipeline{stages=, microbatches=, schedule=, chunks=}: lua/chalk/pipeline.lua; viz.schedule(s): schedule_chart.lua
-- dist.ColumnLinear(linear, world), dist.RowLinear(linear, world), dist.TensorParallelMLP: lua/chalk/tp.lua
function dist.ColumnLinear(l, w) return require("chalk.tp").ColumnLinear(l, w) end
function dist.RowLinear(l, w) return require("chalk.tp").RowLinear(l, w) end
function dist.TensorParallelMLP(a, b, w, o) return require("chalk.tp").MLP(a, b, w, o) end
function dist.TensorParallelAttention(q, k, v, o, h, w) return require("chalk.tp").Attention(q, k, v, o, h, w) end
-- dist.autoshard(model or dims, {world=, batch=, alpha=, bandwidth=, compute=, memory=}): lua/chalk/autoshard.lua
function dist.autoshard(m, o) return require("chalk.autoshard").search(m, o) end
function dist.autoshard_brute(m, o) return require("chalk.autoshard").brute(m, o) end
function dist.autoshard_simulate(plan, m, o) return require("chalk.autoshard").simulate(dist, plan, m, o) end
-- dist.slice_stages(costs, p), dist.slice_stages_brute(costs, p): lua/chalk/autoshard_slice.lua
function dist.slice_stages(c, p) return require("chalk.autoshard_slice").dp(c, p) end
function dist.slice_stages_brute(c, p) return require("chalk.autoshard_slice").brute(c, p) end
if chalk.viz then -- viz.plan(plan, dims), viz.plan_times(rows): lua/chalk/autoshard_chart.lua
  chalk.viz.plan = function(p, d, o) return require("chalk.autoshard_chart").plan(p, d, o) end
  chalk.viz.plan_times = function(r, o) return require("chalk.autoshard_chart").times(r, o) end
end
-- dist.ZeRO(optimizer, world, {stage = 0|1|2|3, dtype = "bf16"}): lua/chalk/zero.lua
function dist.ZeRO(opt, w, o) return require("chalk.zero").new(opt, w, o) end
if chalk.viz then chalk.viz.zero = function(rows, o) return require("chalk.zero_chart").draw(rows, o) end end
if chalk.viz then chalk.viz.zero_timeline = function(t, o) return require("chalk.zero_chart").timeline(t, o) end end
function dist.pipeline(o) return require("chalk.pipeline").new(o) end
if chalk.viz then chalk.viz.schedule = function(s, o) return require("chalk.schedule_chart").draw(s, o) end end

return dist
