-- 21_autoparallel.lua: module 21, auto-parallelization: dist.autoshard chooses replicate / column /
-- row per linear layer of an MLP chain by exact dynamic programming over lesson 10's alpha-beta
-- costs and lesson 11's 16 bytes a parameter; checked by brute force; run on simulated workers.
-- Numbers to reproduce (lessons.md row 21): the search rediscovers Megatron's column-then-row at
-- small batch; the crossover to pure data parallel as the batch grows; predicted step time within
-- 10% of the simulated one; brute force agrees on chains of up to 6 layers; pipeline stage slicing
-- by DP over layer costs equals brute force (9, 8, 8, 9 against 13 for an even split by count).
return {
  title = "Auto-parallelization",
  module = 21,
  -- net: 4 ranks, 5 us and 25 GB/s links, 1 TFLOP/s devices; mlp: two layers 1024 -> 4096 -> 1024
  setup = [[
    net = {world = 4, alpha = 5e-6, bandwidth = 25e9, compute = 1e12}
    mlp = {1024, 4096, 1024}
    function with(o, extra) local t = {} for k, v in pairs(o) do t[k] = v end
      for k, v in pairs(extra) do t[k] = v end return t end]],
  steps = {
    {
      title = "Three ways to shard a linear layer",
      text = [[
        replicate: every rank has W and b/N rows (data parallel): all-reduce of W's gradient.
        column: W split by outputs; needs the full input, gives split columns; all-reduce of the
        input's gradient backward (f). row: W split by inputs; needs split columns, gives a
        partial sum, all-reduced forward (g). Changing layout between layers costs an
        all-gather. The search tries every choice per layer by dynamic programming.]],
      code = [[
        plan = dist.autoshard(mlp, with(net, {batch = 16}))
        print("batch 16, MLP 1024 -> 4096 -> 1024 on 4 ranks: " .. table.concat(plan.choice, ", "))
        for _, c in ipairs(plan.comms) do
          print(("  layer %d %-8s %-10s %8d bytes  %s")
            :format(c.layer, c.phase, c.coll, c.bytes, c.why))
        end
        print(("predicted step %.1f us, memory per rank %.1f MiB")
          :format(plan.time * 1e6, plan.memory / 2^20))]],
      check = function() assert(plan.choice[1] == "column" and plan.choice[2] == "row", "Megatron's split") end,
    },
    {
      title = "The plan, drawn",
      text = [[
        Colour by sharding; the collectives the plan inserts sit above the layers (forward) and
        below them (backward). This is Megatron's MLP: f at the input, g at the output.]],
      code = [[viz.plan(plan, mlp, {file = "21_plan.png", title = "batch 16: column then row"})]],
    },
    {
      title = "Brute force agrees",
      text = [[
        With 3 choices per layer a chain of K layers has 3^K plans. On random chains of 1 to 6
        layers, random widths, batches and memory limits, the DP's best time equals the best of
        all 3^K plans. The DP keeps per layout every plan not beaten in both time and memory.]],
      code = [[
        math.randomseed(21)
        agree, cases = 0, 0
        for K = 1, 6 do
          for _ = 1, 5 do
            local d = {}
            for i = 1, K + 1 do d[i] = 64 * math.random(1, 32) end
            local o = with(net, {batch = 1 << math.random(2, 14)})
            o.memory = dist.autoshard_brute(d, o).memory * (0.8 + 0.4 * math.random())
            local ok, dp = pcall(dist.autoshard, d, o)
            local bf = dist.autoshard_brute(d, o)
            cases = cases + 1
            if (not ok and not bf) or (ok and math.abs(dp.time - bf.time) <= 1e-12 * bf.time) then
              agree = agree + 1
            end
          end
        end
        print(("DP equals brute force: measured %d of %d chains, law all %d")
          :format(agree, cases, cases))]],
      check = function() assert(agree == cases, "the DP must equal brute force") end,
    },
    {
      title = "Stage slicing for a pipeline",
      text = [[
        A pipeline runs at the pace of its slowest stage: cut a chain of layer costs (F + B) into
        p contiguous stages minimizing the largest. dist.slice_stages: dynamic programming,
        best[k][j] = min over i of max(best[k-1][i], cost(i+1..j)), O(p n^2) against brute force.]],
      code = [[
        costs = {9, 2, 2, 2, 2, 2, 2, 2, 2, 9} -- an embedding, 8 blocks, a head
        local s, c = dist.slice_stages(costs, 4), costs
        for k, b in ipairs(s.bounds) do
          print(("stage %d: layers %d-%d, cost %d"):format(k, b[1], b[2], s.loads[k]))
        end
        local even = math.max(c[1] + c[2] + c[3], c[4] + c[5] + c[6], c[7] + c[8], c[9] + c[10])
        print(("bottleneck %d; an even split by layer count (3,3,2,2): %d"):format(s.bottleneck, even))
        slice_agree, slice_cases = 0, 0; math.randomseed(12)
        for n = 1, 8 do
          for _ = 1, 5 do
            local c, p = {}, math.random(1, n)
            for i = 1, n do c[i] = math.random(1, 20) end
            local same = dist.slice_stages(c, p).bottleneck == dist.slice_stages_brute(c, p).bottleneck
            slice_cases, slice_agree = slice_cases + 1, slice_agree + (same and 1 or 0)
          end
        end
        print(("slicing DP equals brute force: measured %d of %d chains, law all %d")
          :format(slice_agree, slice_cases, slice_cases))]],
      check = function() assert(slice_agree == slice_cases, "slicing DP must equal brute force") end,
    },
    {
      title = "The crossover to data parallel",
      text = [[
        Tensor parallelism all-reduces activations (b x d: grows with the batch); data
        parallelism all-reduces weight gradients (d x 4d: fixed). So the choice flips as the
        batch grows. Each plan also runs on 4 simulated workers: its compute moves the clock,
        its collectives run on the link model of lesson 10.]],
      code = [[
        rows = {}
        for e = 4, 16, 2 do
          local o = with(net, {batch = 1 << e})
          local p = dist.autoshard(mlp, o)
          local sim = dist.autoshard_simulate(p, mlp, o)
          rows[#rows + 1] = {batch = 1 << e, predicted = p.time, simulated = sim, first = p.choice[1],
                             plan = table.concat(p.choice, "+")}
          local off = 100 * math.abs(sim - p.time) / sim
          print(("batch %6d: %-19s predicted %9.1f us, simulated %9.1f us, off by %.1f%%")
            :format(1 << e, rows[#rows].plan, p.time * 1e6, sim * 1e6, off))
        end]],
    },
    {
      title = "Predicted against simulated, drawn",
      text = [[
        The line is the alpha-beta prediction, the dashed one the simulated workers; the label
        is the plan chosen at that batch. The law: within 10%. Here they agree exactly: sim's
        links follow the same alpha-beta model and this plan overlaps nothing; overlap and
        contention (several collectives on one link) are where they would part.]],
      code = [[
        worst = 0
        for _, r in ipairs(rows) do
          worst = math.max(worst, math.abs(r.simulated - r.predicted) / r.simulated)
        end
        print(("largest gap predicted vs simulated: measured %.4f, law below 0.10"):format(worst))
        viz.plan_times(rows, {file = "21_times.png"})]],
      check = function() assert(worst <= 0.1, "prediction within 10%") end,
    },
  },
}
