-- sim_cluster_spec.lua: sim.cluster against schedules computed by hand on tiny traces, its
-- invariants on random traces (no GPU double-booked, gangs whole, every job served exactly its
-- duration), a policy written as a function, the Tiresias CSV reader, failures (cluster MTBF =
-- m/N, the sweep's optimum near Young's and Daly's intervals), and a flipped checkpoint bit.
local chalk = require "chalk"
local sim = require "chalk.sim"

local function spans(r)
  local t = {}
  for _, j in ipairs(r.jobs) do t[#t + 1] = {j.start, j.finish} end
  return t
end

-- 2 GPUs: job 1 (2 GPUs, 10 s) at 0, job 2 (1 GPU, 2 s) at 1, job 3 (1 GPU, 3 s) at 2
local tiny = {{id = 1, gpus = 2, submit = 0, duration = 10}, {id = 2, gpus = 1, submit = 1, duration = 2},
  {id = 3, gpus = 1, submit = 2, duration = 3}}

describe("sim.cluster on a hand-computed trace", function()
  it("fifo and sjf run job 1 to the end, then 2 and 3 side by side", function()
    for _, p in ipairs{"fifo", "sjf"} do
      local r = sim.cluster{gpus = 2, nodes = 1, trace = tiny, policy = p}
      assert.are.same({{0, 10}, {10, 12}, {10, 13}}, spans(r))
      assert.are.equal(13, r.makespan)
      assert.is_true(math.abs(r.avg_jct - (10 + 11 + 11) / 3) < 1e-9)
      assert.is_true(math.abs(r.utilization - 25 / 26) < 1e-9)
    end
  end)
  it("srtf preempts job 1 for job 2 at t = 1 and resumes it when both GPUs are free", function()
    local r = sim.cluster{gpus = 2, nodes = 1, trace = tiny, policy = "srtf"}
    -- job 1 ran 1 s, waits for job 3 (2..5), then runs its 9 s: 5..14
    assert.are.same({{0, 14}, {1, 3}, {2, 5}}, spans(r))
    assert.are.equal(1, r.jobs[1].preemptions)
    assert.is_true(math.abs(r.avg_jct - (14 + 2 + 3) / 3) < 1e-9)
  end)
  it("a preemption cost delays the resumed job by exactly that much", function()
    local r = sim.cluster{gpus = 2, nodes = 1, trace = tiny, policy = "srtf", preemption_cost = 4}
    assert.are.same({{0, 18}, {1, 3}, {2, 5}}, spans(r))
  end)
  it("las demotes job 1 after 1 s of service, then serves the queue-1 jobs in submit order", function()
    local r = sim.cluster{gpus = 2, nodes = 1, trace = tiny, policy = "las", thresholds = {1}}
    -- t=1: job 1 in queue 1, job 2 (queue 0) preempts it; t=3: job 3 reaches queue 1; job 1 (older)
    -- takes both GPUs 3..12, job 3 finishes its last 2 s at 12..14
    assert.are.same({{0, 12}, {1, 3}, {2, 14}}, spans(r))
    assert.are.equal(3, #r.demotions) -- jobs 1, 2 (at t = 2) and 3 (at t = 3) each cross 1 s
  end)
  it("2d-las counts GPU-time: a 2-GPU job reaches the threshold twice as fast", function()
    local r = sim.cluster{gpus = 2, nodes = 1, trace = tiny, policy = "2d-las", thresholds = {1}}
    assert.are.equal(0.5, r.demotions[1].t)
    assert.are.equal(1, r.demotions[1].job)
  end)
  it("strict fifo blocks behind a gang that does not fit; sjf lets a small job past", function()
    local tr = {{id = 1, gpus = 1, submit = 0, duration = 10}, {id = 2, gpus = 2, submit = 1, duration = 1},
      {id = 3, gpus = 1, submit = 2, duration = 1}}
    local f = sim.cluster{gpus = 2, nodes = 1, trace = tr, policy = "fifo"}
    assert.are.same({{0, 10}, {10, 11}, {11, 12}}, spans(f))
    local s = sim.cluster{gpus = 2, nodes = 1, trace = tr, policy = "sjf"}
    assert.are.same({2, 3}, s.jobs[3] and {s.jobs[3].start, s.jobs[3].finish})
  end)
  it("takes a policy written as a function (smallest gang first)", function()
    local r = sim.cluster{gpus = 2, nodes = 1, trace = tiny, policy = function(j) return j.gpus end}
    assert.are.same({{0, 14}, {1, 3}, {2, 5}}, spans(r))
  end)
  it("packs a gang of <= a node's GPUs on one node", function()
    local tr = {{id = 1, gpus = 3, submit = 0, duration = 5}, {id = 2, gpus = 2, submit = 0, duration = 5}}
    local r = sim.cluster{gpus = 8, nodes = 2, trace = tr, policy = "fifo", placement = "pack"}
    for _, s in ipairs(r.segments) do
      local node = (s.gpus[1] - 1) // 4
      for _, g in ipairs(s.gpus) do assert.are.equal(node, (g - 1) // 4) end
    end
  end)
  it("refuses a job larger than the cluster, naming it", function()
    assert.has_error(function() sim.cluster{gpus = 2, trace = {{id = 9, gpus = 4, submit = 0, duration = 1}}} end,
      "sim.cluster: job 9 needs 4 GPUs, the cluster has 2")
  end)
end)

describe("sim.cluster invariants on random traces", function()
  for _, p in ipairs{"fifo", "sjf", "srtf", "las", "2d-las"} do
    it(p .. ": no GPU double-booked, gangs whole, service = duration", function()
      for seed = 1, 3 do
        local tr = sim.philly_trace{n = 120, seed = seed, gpus = 32, load = 0.9, max_gpus = 16}
        local r = sim.cluster{gpus = 32, nodes = 4, trace = tr, policy = p, preemption_cost = 7}
        local per_gpu, served = {}, {}
        for _, s in ipairs(r.segments) do
          assert.are.equal(tr[s.job].gpus, #s.gpus, "a segment holds the whole gang")
          served[s.job] = (served[s.job] or 0) + (s.t1 - s.t0)
          for _, g in ipairs(s.gpus) do
            per_gpu[g] = per_gpu[g] or {}
            table.insert(per_gpu[g], s)
          end
        end
        for g, list in pairs(per_gpu) do
          table.sort(list, function(a, b) return a.t0 < b.t0 end)
          for i = 2, #list do
            assert.is_true(list[i].t0 >= list[i - 1].t1 - 1e-9, ("GPU %d double-booked"):format(g))
          end
        end
        for i, j in ipairs(r.jobs) do
          assert.is_true(j.start >= j.submit and j.finish > j.start)
          assert.is_true(j.overhead <= 7 * j.preemptions + 1e-9)
          local want = j.duration + j.overhead
          assert.is_true(math.abs(served[i] - want) < 1e-6 * want, ("job %d served %g, want %g"):format(i, served[i], want))
        end
      end
    end)
  end
end)

describe("sim traces", function()
  it("writes and reads the Tiresias CSV schema", function()
    local tr = sim.philly_trace{n = 50, seed = 4}
    local path = os.tmpname()
    sim.write_trace(tr, path)
    local back = sim.read_trace(path)
    os.remove(path)
    assert.are.equal(50, #back)
    for i = 1, 50 do
      assert.are.equal(tr[i].gpus, back[i].gpus)
      assert.are.equal(tr[i].submit, back[i].submit)
      assert.are.equal(tr[i].duration, back[i].duration)
    end
  end)
  it("has Philly's shape: mostly 1-GPU jobs, some 8-64 GPU gangs, a heavy tail", function()
    local tr = sim.philly_trace{n = 5000, seed = 2}
    local one, big, d = 0, 0, {}
    for i, j in ipairs(tr) do
      one, big, d[i] = one + (j.gpus == 1 and 1 or 0), big + (j.gpus >= 8 and 1 or 0), j.duration
    end
    table.sort(d)
    local mean = 0
    for _, x in ipairs(d) do mean = mean + x / #d end
    assert.is_true(one / #tr > 0.6 and big / #tr > 0.05 and big / #tr < 0.2)
    assert.is_true(mean > 3 * d[#d // 2], "mean well above the median: a heavy tail")
    assert.are.same(sim.philly_trace{n = 20, seed = 9}, sim.philly_trace{n = 20, seed = 9})
  end)
end)

describe("sim failures and checkpoints", function()
  it("cluster MTBF = node MTBF / N", function()
    local r = sim.cluster_mtbf{nodes = 100, node_mtbf = 100 * 3600, horizon = 5000 * 3600, seed = 5}
    assert.is_true(math.abs(r.mtbf - 3600) < 0.05 * 3600, r.mtbf)
  end)
  it("Young and Daly: C = 60 s, M = 24 h gives about 3220 s and 3180 s", function()
    assert.is_true(math.abs(sim.young(60, 86400) - 3220) < 1)
    assert.is_true(math.abs(sim.daly(60, 86400) - 3180) < 1)
  end)
  it("the simulated sweep's minimum lies within its resolution of Young's and Daly's intervals", function()
    local iv, step = {}, 400
    for t = 1000, 7000, step do iv[#iv + 1] = t end
    for _, seed in ipairs{1, 2} do
      local _, best = sim.checkpoint_sweep{mtbf = 86400, checkpoint_cost = 60, work = 20000 * 86400,
        intervals = iv, seed = seed}
      assert.is_true(math.abs(best.interval - sim.daly(60, 86400)) <= step, best.interval)
      assert.is_true(math.abs(best.interval - sim.young(60, 86400)) <= step, best.interval)
      assert.is_true(math.abs(best.waste - 0.037) < 0.002, best.waste)
    end
  end)
  it("no failures means only the checkpoints' cost", function()
    local r = sim.failures{mtbf = 1e15, interval = 100, checkpoint_cost = 10, work = 1000}
    assert.are.equal(0, r.failures)
    assert.is_true(math.abs(r.wall - 1100) < 1e-6)
  end)
end)

describe("silent data corruption", function()
  it("a flipped bit in a saved checkpoint fails its checksum on load", function()
    local path = os.tmpname()
    chalk.save({w = chalk.randn(64, 64), step = 3}, path)
    local f = io.open(path, "rb")
    local b = f:read("a")
    f:close()
    for _, at in ipairs{100, #b // 2, #b - 20} do
      local bad = b:sub(1, at - 1) .. string.char(b:byte(at) ~ 1) .. b:sub(at + 1)
      f = io.open(path, "wb")
      f:write(bad)
      f:close()
      local ok, err = pcall(chalk.load, path)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):match("corrupt") or tostring(err):match("checksum"), err)
    end
    os.remove(path)
  end)
end)
