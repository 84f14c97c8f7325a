-- 16_clusters.lua: lesson 16, cluster scheduling and fault tolerance, on the discrete-event
-- engine (core/sim/des.h): policies on a Philly-shaped trace, failures and checkpoints, a real
-- run killed with SIGKILL and resumed bit-identically, silent data corruption caught.
return {
  title = "Cluster scheduling and fault tolerance",
  module = 16,
  setup = [[
    cc = require "chalk.cluster_charts"
    function hours(s) return s / 3600 end
    -- the chalk executable this lesson runs in (the child runs the same one)
    function chalk_exe()
      local p = io.popen("readlink /proc/$PPID/exe")
      local s = p:read("l") p:close()
      return s
    end
    -- the bytes of every tensor of a saved state dict, in key order (bit-identity, not ==)
    function tensor_bytes(path)
      local sd, keys, out = chalk.load(path), {}, {}
      for k in pairs(sd) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do
        local f = chalk.out_dir .. "/16_t.npy"
        chalk.save_npy(sd[k], f)
        local h = io.open(f, "rb") out[#out + 1] = h:read("a") h:close()
        os.remove(f)
      end
      return table.concat(out)
    end
    -- start the training script as a child; SIGKILL it once it has printed "step <at>"
    function run_child(dir, steps, k, kill_at)
      local cmd = ("%q lessons/data/kill_train.lua %q %d %d > %q 2>&1"):format(chalk_exe(), dir, steps, k, dir .. "/log")
      if kill_at then
        cmd = ("(%s) & p=$!; while ! grep -qx 'step %d' %q 2>/dev/null; do " ..
          "kill -0 $p 2>/dev/null || break; sleep 0.002; done; { kill -KILL $p; wait $p; } 2>/dev/null"):format(cmd, kill_at, dir .. "/log")
      end
      local ok, how, code = os.execute(cmd)
      local last = 0
      for l in io.lines(dir .. "/log") do last = tonumber(l:match("^step (%d+)")) or last end
      return code, last
    end
    function flip_bit(x, bit) -- x as f32 with one bit flipped
      local u = string.unpack("<I4", string.pack("<f", x))
      return (string.unpack("<f", string.pack("<I4", u ~ (1 << bit))))
    end
  ]],
  timing = {"^killed after step", "^  child printed", "simulated in"},
  steps = {
    {
      title = "A trace with the Philly cluster's shape",
      text = [[
        Jobs arrive with a GPU count (a gang: all of them at once, or none), a submit time and a
        duration. sim.philly_trace makes a seeded trace shaped like Microsoft's Philly trace:
        mostly 1-GPU jobs, a few 8-64-GPU gangs, heavy-tailed durations, bursty arrivals. One
        ships in lessons/data/ in the Tiresias CSV schema; sim.read_trace reads it.]],
      code = [[
        trace = sim.read_trace("lessons/data/philly_150.csv")
        local n1, big, d = 0, 0, {}
        for i, j in ipairs(trace) do
          n1 = n1 + (j.gpus == 1 and 1 or 0)
          big = big + (j.gpus >= 8 and 1 or 0)
          d[i] = j.duration
        end
        table.sort(d)
        local mean = 0
        for _, x in ipairs(d) do mean = mean + x / #d end
        print(("jobs %d: 1-GPU %d, gangs of 8-64 GPUs %d"):format(#trace, n1, big))
        print(("duration median %.0f s, mean %.0f s, max %.1f h: a heavy tail"):format(
          d[#d // 2], mean, hours(d[#d])))]],
      check = function() return #trace == 150 end,
    },
    {
      title = "Five policies on one cluster",
      text = [[
        64 GPUs in 8 nodes of 8; a gang of <= 8 GPUs stays on one node. FIFO and SJF never
        preempt; SRTF preempts for the shortest remaining time (it knows durations); LAS and
        2D-LAS (Tiresias) know nothing but what each job has already received: attained time,
        or attained GPU-time, in queues (thresholds 1 h, 4 h). Restart after preemption: 30 s.]],
      code = [[
        results = {}
        for _, p in ipairs{"fifo", "sjf", "srtf", "las", "2d-las"} do
          local r = sim.cluster{gpus = 64, nodes = 8, trace = trace, policy = p,
                                preemption_cost = 30, placement = "pack"}
          results[#results + 1] = {name = p, r = r}
          print(("%-7s avg JCT %6.2f h   makespan %5.1f h   utilization %.3f   preemptions %d"):format(
            p, hours(r.avg_jct), hours(r.makespan), r.utilization, r.preemptions))
        end
        local jct = {}
        for _, e in ipairs(results) do jct[e.name] = e.r.avg_jct end
        print(("srtf / sjf avg JCT: %.3f (preempting for short jobs helps)"):format(jct.srtf / jct.sjf))
        print(("las / srtf avg JCT: %.3f (no durations known, close)"):format(jct.las / jct.srtf))
        print(("2d-las / srtf avg JCT: %.3f"):format(jct["2d-las"] / jct.srtf))
        print(("fifo / srtf avg JCT: %.2f (head-of-line blocking)"):format(jct.fifo / jct.srtf))]],
    },
    {
      title = "The Gantt: where FIFO waits",
      text = [[
        Each row is a GPU, each colour a job, a magenta edge a preemption. FIFO keeps GPUs idle
        while a 64-GPU gang at the head waits for the whole cluster to drain: every job behind
        it waits too. The others let short jobs past.]],
      code = [[cc.gantt(results, {file = "16_gantt.png"})]],
    },
    {
      title = "JCT distributions and LAS's queues",
      text = [[
        The CDF shows whom each policy serves: SRTF and the LAS variants finish most short
        jobs within minutes. LAS demotes a job to a lower queue each time its attained service
        crosses a threshold; new (short) jobs then run first.]],
      code = [[
        cc.cdf(results, {file = "16_jct_cdf.png"})
        las = results[4].r
        print(("LAS demotions: %d, preemptions: %d"):format(#las.demotions, las.preemptions))
        cc.demotions(las, {file = "16_las_demotions.png"})]],
    },
    {
      title = "Your own policy",
      text = [[
        A policy is a priority function: smaller runs first, ties go to the earlier submit. The
        job has gpus, submit, duration, remaining, attained, gpu_time. Smallest gang first:]],
      code = [[
        smallest_gang = function(job, now) return job.gpus end
        mine = sim.cluster{gpus = 64, nodes = 8, trace = trace, policy = smallest_gang,
                           preemption_cost = 30}
        print(("smallest gang first: avg JCT %.2f h, makespan %.1f h"):format(
          hours(mine.avg_jct), hours(mine.makespan)))]],
    },
    {
      title = "The engine checks itself",
      text = [[
        Every policy runs on one engine: an event heap and a virtual clock, with GPUs a job holds
        all-or-none. Each hold is an ordinary event in chalk's one log (Chrome export shows it).
        Breaking an invariant fails loudly, it is never patched over:]],
      code = [[
        local d = require("chalk.sim_des").new(8)
        d:at(10, 1, 0); d:pop()
        d:acquire(0, {1, 2, 3, 4})
        print(select(2, pcall(d.acquire, d, 1, {4, 5})))
        print(select(2, pcall(d.release, d, 0, {1, 2})))
        print(select(2, pcall(d.at, d, 5, 1, 1)))]],
    },
    {
      title = "Failures: a cluster fails N times as often",
      text = [[
        Each node fails at exponential intervals (MTBF m). The first failure among N nodes comes
        N times as fast: cluster MTBF = m / N. 1000 nodes with a 1000-day MTBF each: one failure
        a day. The engine holds one pending failure per node:]],
      code = [[
        local mt = sim.cluster_mtbf{nodes = 1000, node_mtbf = 1000 * 86400,
                                    horizon = 20000 * 86400, seed = 3}
        print(("failures simulated: %d"):format(mt.failures))
        print(("cluster MTBF measured %.2f h; law m / N = %.2f h"):format(
          hours(mt.mtbf), hours(mt.law)))]],
    },
    {
      title = "How often to checkpoint: Young and Daly",
      text = [[
        A checkpoint costs C; a failure loses the work since the last one. Too often wastes C/t,
        too rarely loses ~t/2 per failure: waste ~ C/t + t/2M, least at Young's t = sqrt(2CM);
        Daly's higher-order interval corrects for C. C = 60 s, M = 24 h, swept in simulation:]],
      code = [[
        C, Mt = 60, 86400
        local iv = {}
        for t = 1800, 5600, 200 do iv[#iv + 1] = t end
        sweep, best = sim.checkpoint_sweep{mtbf = Mt, checkpoint_cost = C, restart_cost = 0,
                                           work = 20000 * Mt, intervals = iv, seed = 7}
        young, daly = sim.young(C, Mt), sim.daly(C, Mt)
        for _, r in ipairs(sweep) do r.model = sim.waste_model(r.interval, C, Mt) end
        print(("Young sqrt(2CM) = %.0f s   Daly = %.0f s   sweep step 200 s"):format(young, daly))
        print(("simulated optimum: %.0f s with waste %.2f %%"):format(best.interval, 100 * best.waste))
        print(("waste at Young's interval (law): %.2f %%"):format(100 * sim.waste_model(young, C, Mt)))
        cc.ucurve(sweep, {{x = young, name = "Young sqrt(2CM)", color = "series3"},
                          {x = daly, name = "Daly", color = "series4", dashed = true},
                          {x = best.interval, name = "simulated minimum", color = "mark"}},
                  {file = "16_checkpoint_ucurve.png"})]],
    },
    {
      title = "A real run, killed",
      text = [[
        lessons/data/kill_train.lua trains an MLP with Adam and dropout, checkpointing every 20
        steps with chalk.save (atomic, CRC32-checked): weights, Adam's m, v and step, chalk's
        random stream (seed, offset) and the data position. We run it once to the end, then
        again, SIGKILL it at a random step, restart it, and compare the final weights' bytes.]],
      code = [[
        run_dir = chalk.out_dir .. "/16_run"
        os.execute(("rm -rf %q && mkdir -p %q/a %q/b"):format(run_dir, run_dir, run_dir))
        math.randomseed(16)
        kill_at = math.random(30, 170)
        print(("clean run: exit %d"):format((run_child(run_dir .. "/a", 200, 20))))
        local code, last = run_child(run_dir .. "/b", 200, 20, kill_at)
        print(("SIGKILL sent once the child printed step %d: exit status %d = 128 + 9"):format(
          kill_at, code))
        print(("killed after step %d"):format(last))
        run_child(run_dir .. "/b", 200, 20)
        for l in io.lines(run_dir .. "/b/log") do
          if l:match("^resumed") then print("  child printed: " .. l) end
        end
        same = tensor_bytes(run_dir .. "/a/final.chalk") == tensor_bytes(run_dir .. "/b/final.chalk")
        print(("final weights bit-identical to the uninterrupted run: %s"):format(same))]],
      check = function() return same end,
    },
    {
      title = "A flipped bit in a checkpoint",
      text = [[
        Disks and networks flip bits. chalk.save ends every file with its length and CRC32;
        chalk.load checks both before trusting a byte. Flip one bit in the middle of the file:]],
      code = [[
        local f = io.open(run_dir .. "/b/ckpt.chalk", "rb")
        local bytes = f:read("a") f:close()
        local at = #bytes // 2
        local bad = bytes:sub(1, at - 1) .. string.char(bytes:byte(at) ~ 4) .. bytes:sub(at + 1)
        f = io.open(run_dir .. "/bad.chalk", "wb") f:write(bad) f:close()
        ok, err = pcall(chalk.load, run_dir .. "/bad.chalk")
        print(("flipped bit 2 of byte %d of %d; load ok: %s"):format(at, #bytes, ok))
        print((tostring(err):gsub(run_dir, "RUN"):gsub(" %(stored.*", " (CRC32s differ)")))]],
      check = function() return not ok end,
    },
    {
      title = "A flipped bit in a gradient",
      text = [[
        4 simulated data-parallel workers all-reduce their gradients; every replica must now
        hold the same bits. Each hashes its reduced gradient (a fixed random projection, summed
        in the same order) and all-gathers the hashes; any mismatch skips the step everywhere.
        At step 3 one low mantissa bit flips in rank 3's memory - too small for a norm guard.]],
      setup = [[
        function dp_train(flip_step)
          local out = {}
          dist.run(4, function(w)
            chalk.manual_seed(7)
            local m = nn.Linear(8, 1)
            local X, Y = chalk.randn(64, 8), chalk.randn(64, 1)
            local proj = chalk.randn(1, 8)
            local skipped = {}
            for step = 1, 5 do
              m.weight.grad = nil m.bias.grad = nil
              local xs, ys = X:narrow(1, (w.rank - 1) * 16 + 1, 16), Y:narrow(1, (w.rank - 1) * 16 + 1, 16)
              local loss = (m(xs) - ys):pow(2):mean()
              loss:backward()
              local g = m.weight.grad
              w:all_reduce(g, {op = "mean"})
              if step == flip_step and w.rank == 3 then
                local f = g:view(-1)
                f[5] = flip_bit(f[5]:item(), 3)
              end
              local h = chalk.tensor{(g * proj):sum():item(), 0, 0, 0}
              local hs = chalk.zeros(4) hs[w.rank] = h[1]
              w:all_reduce(hs, {op = "sum"})
              local ok = true
              for r = 2, 4 do ok = ok and hs[r]:item() == hs[1]:item() end
              if ok then
                chalk.no_grad(function() m.weight:copy_(m.weight - g * 0.1) end)
              else
                skipped[#skipped + 1] = step
              end
            end
            out[w.rank] = {w = m.weight:clone(), skipped = skipped}
          end)
          return out
        end]],
      code = [[
        clean, hit = dp_train(nil), dp_train(3)
        print(("skipped steps on each rank: %s | %s | %s | %s"):format(
          table.concat(hit[1].skipped, ","), table.concat(hit[2].skipped, ","),
          table.concat(hit[3].skipped, ","), table.concat(hit[4].skipped, ",")))
        print(("replicas agree after the run: %s"):format(
          (hit[1].w - hit[3].w):abs():max():item() == 0))
        print(("clean run skipped: %d steps"):format(#clean[1].skipped))
        print(("weights differ from the clean run (step 3 not trained): %s"):format(
          (hit[1].w - clean[1].w):abs():max():item() > 0))]],
      check = function() return #hit[3].skipped == 1 and hit[3].skipped[1] == 3 end,
    },
  },
}
