-- sim_cluster.lua: sim.cluster, a gang-scheduling GPU cluster simulator on the discrete-event
-- engine (core/sim/des.h via chalk.sim_des), with FIFO, SJF, SRTF, LAS and 2D-LAS (Tiresias).
--
--   r = sim.cluster{gpus = 64, nodes = 8, trace = "lessons/data/philly_small.csv" | {{id=, gpus=,
--                   submit=, duration=}, ...}, policy = "fifo"|"sjf"|"srtf"|"las"|"2d-las"|fn,
--                   preemption_cost = 10, placement = "pack"|"any", thresholds = {...}}
--   r.avg_jct, r.makespan, r.utilization, r.jobs[i].start / .finish / .preemptions / .overhead
--   (restart seconds paid; a job preempted again while restarting pays the restart anew),
--   r.segments (job, gpus, t0, t1: what the Gantt draws), r.demotions (LAS queue changes)
--
-- A policy is a priority: a function(job, now) returning a number (smaller runs first; ties go
-- to the earlier submit), with job.gpus, job.submit, job.duration, job.remaining, job.attained
-- (seconds of service), job.gpu_time (attained GPU-seconds) and their queue indices under the
-- thresholds, job.las_queue and job.queue_2d. A function policy preempts;
-- pass {key = fn, preemptive = false} for one that does not. The built-ins:
--   fifo   submit time, never preempts, strict order (a head job that does not fit blocks all)
--   sjf    duration, never preempts;  srtf  remaining time, preempts (both know durations)
--   las    queue of attained service time; 2d-las  queue of attained GPU-time (Tiresias): the
--          queue index grows at each threshold, FIFO inside a queue; neither knows durations
-- Invariants: the engine refuses a GPU holding two jobs, a partial gang and time running
-- backwards; every job finishes; its service equals its duration.
local des_new = require("chalk.sim_des").new

local M = {}

local ARRIVE, FINISH, DEMOTE = 1, 2, 3
M.thresholds = {3600, 4 * 3600} -- seconds of service (las) or GPU-seconds (2d-las) per queue step

local function queue_of(v, th)
  local q = 0
  for i = 1, #th do
    if v >= th[i] then q = i end
  end
  return q
end

M.policies = {
  fifo = {key = function(j) return j.submit end, preemptive = false, strict = true, static = true},
  sjf = {key = function(j) return j.duration end, preemptive = false, static = true},
  srtf = {key = function(j) return j.remaining end, preemptive = true},
  las = {key = function(j) return j.las_queue end, preemptive = true, demote = "attained"},
  ["2d-las"] = {key = function(j) return j.queue_2d end, preemptive = true, demote = "gpu_time"},
}

local function as_policy(p)
  if type(p) == "string" then
    return M.policies[p] or error(("sim.cluster: unknown policy %q (fifo, sjf, srtf, las, 2d-las, or a function)"):format(p))
  elseif type(p) == "function" then
    return {key = p, preemptive = true}
  elseif type(p) == "table" and type(p.key) == "function" then
    return p
  end
  error("sim.cluster: policy must be a name, a function(job, now) -> priority, or {key = fn, preemptive = bool}")
end

-- ---- traces ----------------------------------------------------------------------------------

-- The Tiresias CSV schema: job_id,num_gpu,submit_time,iterations,model_name,duration,interval
function M.read_trace(path)
  local f = assert(io.open(path, "r"))
  local header = f:read("l")
  local cols = {}
  for i, name in ipairs((function() local t = {} for c in header:gmatch("[^,]+") do t[#t + 1] = c end return t end)()) do
    cols[name] = i
  end
  for _, need in ipairs{"job_id", "num_gpu", "submit_time", "duration"} do
    if not cols[need] then error(("sim.read_trace: %s has no column %q"):format(path, need)) end
  end
  local jobs = {}
  for line in f:lines() do
    if line ~= "" then
      local v = {}
      for c in (line .. ","):gmatch("([^,]*),") do v[#v + 1] = c end
      jobs[#jobs + 1] = {id = tonumber(v[cols.job_id]) or v[cols.job_id], gpus = tonumber(v[cols.num_gpu]),
        submit = tonumber(v[cols.submit_time]), duration = tonumber(v[cols.duration]),
        iterations = cols.iterations and tonumber(v[cols.iterations]), model = cols.model_name and v[cols.model_name]}
    end
  end
  f:close()
  return jobs
end

function M.write_trace(jobs, path)
  local f = assert(io.open(path, "w"))
  f:write("job_id,num_gpu,submit_time,iterations,model_name,duration,interval\n")
  for _, j in ipairs(jobs) do
    f:write(("%s,%d,%d,%d,%s,%d,%d\n"):format(tostring(j.id), j.gpus, j.submit, j.iterations or 0,
      j.model or "unknown", j.duration, j.interval or 0))
  end
  f:close()
end

-- A seeded stream of floats in [0, 1) (an LCG, independent of math.random and chalk's stream).
function M.rng(seed)
  local x = (seed or 1) * 2654435761 + 12345
  return function()
    x = x * 6364136223846793005 + 1442695040888963407
    return ((x >> 11) & ((1 << 53) - 1)) / (1 << 53)
  end
end

local MODELS = {"resnet50", "vgg16", "bert", "lstm", "transformer", "inception3"}
-- Philly's shape: mostly 1-GPU jobs, a few 8-64-GPU gangs; log-normal (heavy-tailed) durations
-- with a median of about 12 minutes; bursty arrivals (bursts of jobs a few seconds apart) whose
-- rate offers `load` (0.7) of `gpus` (64) GPUs on average.
function M.philly_trace(opts)
  opts = opts or {}
  local n, rand = opts.n or 200, M.rng(opts.seed or 1)
  local sizes = {{1, 0.70}, {2, 0.10}, {4, 0.08}, {8, 0.07}, {16, 0.03}, {32, 0.015}, {64, 0.005}}
  local sigma = opts.sigma or 1.8
  -- mean seconds between bursts: given, or what offers `load` of `gpus` GPUs (mean burst 2.5 jobs)
  local mean_g = 0
  for _, s in ipairs(sizes) do mean_g = mean_g + s[1] * s[2] end
  local gap = opts.mean_gap or 2.5 * mean_g * 720 * math.exp(sigma * sigma / 2) / ((opts.load or 0.7) * (opts.gpus or 64))
  local function normal()
    return math.sqrt(-2 * math.log(1 - rand())) * math.cos(2 * math.pi * rand())
  end
  local jobs, t = {}, 0
  while #jobs < n do
    t = t - gap * math.log(1 - rand())
    local burst = 1
    while rand() < 0.6 do burst = burst + 1 end -- geometric burst size, mean 2.5
    for _ = 1, burst do
      if #jobs >= n then break end
      local u, g = rand(), 64
      for _, s in ipairs(sizes) do
        if u < s[2] then g = s[1] break end
        u = u - s[2]
      end
      g = math.min(g, opts.max_gpus or 64)
      local d = math.max(60, math.floor(720 * math.exp(sigma * normal())))
      d = math.min(d, opts.max_duration or 14 * 86400)
      jobs[#jobs + 1] = {id = #jobs + 1, gpus = g, submit = math.floor(t), duration = d,
        iterations = math.floor(d * 2), model = MODELS[1 + math.floor(rand() * #MODELS)], interval = 0}
      t = t + rand() * 5
    end
  end
  return jobs
end

-- ---- placement -------------------------------------------------------------------------------

local function new_nodes(gpus, nodes)
  local per = gpus // nodes
  if per * nodes ~= gpus then error(("sim.cluster: %d GPUs do not divide into %d nodes"):format(gpus, nodes)) end
  local free = {}
  for k = 1, nodes do
    free[k] = {}
    for g = 1, per do free[k][g] = (k - 1) * per + g end
  end
  return free, per
end

-- GPUs for a gang of g, or nil: "pack" puts a job of <= per GPUs on one node (the fullest that
-- fits) and a larger one on whole free nodes; "any" takes the lowest free GPUs anywhere.
local function place(free, per, g, how)
  local out = {}
  if how == "any" then
    for k = 1, #free do
      for _, gpu in ipairs(free[k]) do
        if #out < g then out[#out + 1] = gpu end
      end
    end
    return #out == g and out or nil
  end
  if g <= per then
    local best
    for k = 1, #free do
      if #free[k] >= g and (not best or #free[k] < #free[best]) then best = k end
    end
    if not best then return nil end
    for i = 1, g do out[i] = free[best][i] end
    return out
  end
  local need = (g + per - 1) // per
  for k = 1, #free do
    if #free[k] == per and need > 0 then
      for _, gpu in ipairs(free[k]) do
        if #out < g then out[#out + 1] = gpu end
      end
      need = need - 1
    end
  end
  return need == 0 and out or nil
end

local function take(free, per, gpus)
  for _, gpu in ipairs(gpus) do
    local node = free[(gpu - 1) // per + 1]
    for i = 1, #node do
      if node[i] == gpu then table.remove(node, i) break end
    end
  end
end

local function give(free, per, gpus)
  for _, gpu in ipairs(gpus) do
    local node = free[(gpu - 1) // per + 1]
    node[#node + 1] = gpu
  end
  for _, gpu in ipairs(gpus) do table.sort(free[(gpu - 1) // per + 1]) end
end

-- ---- the simulator ---------------------------------------------------------------------------

function M.cluster(opts)
  local G, nodes = opts.gpus or error("sim.cluster: gpus= is required"), opts.nodes or 1
  local pol = as_policy(opts.policy or "fifo")
  local th = opts.thresholds or M.thresholds
  local cost = opts.preemption_cost or 0
  local how = opts.placement or "pack"
  local trace = opts.trace or error("sim.cluster: trace= is required (a CSV path or a list of jobs)")
  if type(trace) == "string" then trace = M.read_trace(trace) end
  local d = des_new(G)
  local free, per = new_nodes(G, nodes)
  local jobs = {}
  for i, t in ipairs(trace) do
    if t.gpus > G then error(("sim.cluster: job %s needs %d GPUs, the cluster has %d"):format(tostring(t.id), t.gpus, G)) end
    local j = {idx = i, id = t.id or i, gpus = t.gpus, submit = t.submit, duration = t.duration,
      remaining = t.duration, attained = 0, gpu_time = 0, preemptions = 0, overhead = 0}
    jobs[i] = j
    d:at(t.submit, ARRIVE, i)
  end
  local active, running, segs, demotions = {}, {}, {}, {}
  local nactive, done, busy_time, demand = 0, 0, 0, 0

  local function progress(j, now) -- account service since j last started or was accounted
    local dt = now - j.since
    if dt > 0 then
      local pay = math.min(dt, j.debt) -- preemption cost is paid first, no progress meanwhile
      j.debt, j.overhead = j.debt - pay, j.overhead + pay
      local work = dt - pay
      j.remaining, j.attained = j.remaining - work, j.attained + work
      j.gpu_time = j.gpu_time + work * j.gpus
      busy_time = busy_time + dt * j.gpus
    end
    j.since = now
  end

  local function schedule_events(j, now)
    j.finish_seq = d:at(now + j.debt + j.remaining, FINISH, j.idx)
    if pol.demote then
      local v = pol.demote == "attained" and j.attained or j.gpu_time
      local rate = pol.demote == "attained" and 1 or j.gpus
      local q = queue_of(v, th)
      if q < #th then
        j.demote_seq = d:at(now + j.debt + (th[q + 1] - v) / rate, DEMOTE, j.idx)
      end
    end
  end

  local function start(j, gpus, now)
    d:acquire(j.idx - 1, gpus)
    take(free, per, gpus)
    j.gpus_held, j.since, j.seg_start = gpus, now, now
    j.debt = (j.started_once and cost) or 0
    if not j.started_once then j.start, j.started_once = now, true end
    running[j] = true
    schedule_events(j, now)
  end

  local function stop(j, now)
    progress(j, now)
    d:release(j.idx - 1, j.gpus_held)
    give(free, per, j.gpus_held)
    segs[#segs + 1] = {job = j.idx, gpus = j.gpus_held, t0 = j.seg_start, t1 = now}
    d:cancel(j.finish_seq)
    if j.demote_seq then d:cancel(j.demote_seq) j.demote_seq = nil end
    running[j], j.gpus_held = nil, nil
  end

  local order = function(a, b)
    if a.key ~= b.key then return a.key < b.key end
    if a.submit ~= b.submit then return a.submit < b.submit end
    return a.idx < b.idx
  end

  local waiting = {} -- static keys (fifo, sjf): the waiting jobs, kept in order
  local function enqueue(j, now)
    j.key = pol.key(j, now)
    local lo, hi = 1, #waiting + 1
    while lo < hi do
      local mid = (lo + hi) // 2
      if order(waiting[mid], j) then lo = mid + 1 else hi = mid end
    end
    table.insert(waiting, lo, j)
  end

  local function reschedule_static(now)
    local i = 1
    while i <= #waiting do
      local j = waiting[i]
      local gpus = d:nfree() >= j.gpus and place(free, per, j.gpus, how)
      if gpus then
        start(j, gpus, now)
        table.remove(waiting, i)
      elseif pol.strict then
        break
      else
        i = i + 1
      end
    end
  end

  local function reschedule(now)
    if pol.static then return reschedule_static(now) end
    if demand <= G then -- every active job fits: the policy's order cannot matter but to placement
      local list = {}
      for j in pairs(active) do
        if not running[j] then list[#list + 1] = j end
      end
      table.sort(list, function(a, b) return a.idx < b.idx end)
      for _, j in ipairs(list) do
        local gpus = place(free, per, j.gpus, how)
        if gpus then start(j, gpus, now) end
      end
      return
    end
    local list = {}
    for j in pairs(active) do
      if running[j] then progress(j, now) end
      j.las_queue, j.queue_2d = queue_of(j.attained + 1e-9, th), queue_of(j.gpu_time + 1e-9, th)
      j.key = pol.key(j, now)
      list[#list + 1] = j
    end
    table.sort(list, order)
    if pol.preemptive then
      local cap, want = G, {}
      for _, j in ipairs(list) do
        if j.gpus <= cap then want[j], cap = true, cap - j.gpus end
      end
      for _, j in ipairs(list) do
        if running[j] and not want[j] then
          stop(j, now)
          j.preemptions = j.preemptions + 1
          d:mark("sim.preempt", j.idx - 1)
          segs[#segs].preempted = true
        end
      end
      for _, j in ipairs(list) do
        if want[j] and not running[j] then
          local gpus = place(free, per, j.gpus, how)
          if gpus then start(j, gpus, now) end
        end
      end
    else
      for _, j in ipairs(list) do
        if not running[j] then
          local gpus = d:nfree() >= j.gpus and place(free, per, j.gpus, how)
          if gpus then start(j, gpus, now) elseif pol.strict then break end
        end
      end
    end
  end

  while true do
    local t, kind, i = d:pop()
    if not t then break end
    local j = jobs[i]
    if kind == ARRIVE then
      active[j], nactive, demand = true, nactive + 1, demand + j.gpus
      if pol.static then enqueue(j, t) end
    elseif kind == FINISH then
      stop(j, t)
      if j.remaining > 1e-6 * j.duration + 1e-9 then
        error(("sim.cluster: job %s finished with %.6g s of work left"):format(tostring(j.id), j.remaining))
      end
      j.finish, active[j], nactive, done, demand = t, nil, nactive - 1, done + 1, demand - j.gpus
    else
      progress(j, t)
      demotions[#demotions + 1] = {job = i, t = t, queue = queue_of(pol.demote == "attained" and j.attained or j.gpu_time, th)}
      d:mark("sim.demote", i - 1, j.gpus_held[1])
      j.demote_seq = nil
    end
    -- all events at this instant first, then one scheduling pass
    if d:peek() ~= t then reschedule(t) end
  end
  d:check()
  if done ~= #jobs then error(("sim.cluster: %d of %d jobs finished: the rest never fit"):format(done, #jobs)) end

  local sum, makespan, first, work, pre = 0, 0, math.huge, 0, 0
  local out = {}
  for i, j in ipairs(jobs) do
    sum = sum + (j.finish - j.submit)
    makespan = math.max(makespan, j.finish)
    first = math.min(first, j.submit)
    work = work + j.gpus * j.duration
    pre = pre + j.preemptions
    out[i] = {id = j.id, gpus = j.gpus, submit = j.submit, duration = j.duration, start = j.start,
      finish = j.finish, jct = j.finish - j.submit, preemptions = j.preemptions,
      overhead = j.overhead}
  end
  return {avg_jct = sum / #jobs, makespan = makespan - first, utilization = work / (G * (makespan - first)),
    busy = busy_time / (G * (makespan - first)), jobs = out, segments = segs, demotions = demotions,
    preemptions = pre, gpus = G, nodes = nodes, policy = type(opts.policy) == "string" and opts.policy or "custom"}
end

return M
