-- 12_tensor_pipeline.lua: module 12, tensor and pipeline parallelism: Megatron's split of an MLP and
-- of an attention block (f, g) on simulated ranks against unsplit and against the naive split; GPipe,
-- 1F1B and interleaved 1F1B generated as schedules, every dependency checked, drawn as grids, and run
-- for real on simulated workers.
-- Numbers to reproduce (lessons.md row 12), measured beside their laws: TP equal to unsplit (1e-6);
-- 2 all-reduces forward and 2 backward per transformer layer; bytes of both splits; p = 8, m = 32,
-- unit F and B: 2(m + p - 1) = 78 steps for GPipe and 1F1B, bubble (p - 1)/(m + p - 1) = 0.179;
-- interleaved idle/compute (p - 1)/(v m); in-flight activations GPipe m, 1F1B p - s + 1 (stage s
-- counted from 1); a pipelined run's gradients equal unsplit training (1e-6).
return {
  title = "Tensor and pipeline parallelism",
  module = 12,
  -- law_line(name, measured, law, formula): "name: measured X, law FORMULA = Y"
  setup = [[
    function law_line(name, got, want, formula)
      print(("%s: measured %s, law %s = %s"):format(name, got, formula, want))
    end]],
  steps = {
    {
      title = "Tensor parallel: Megatron's MLP split",
      text = [[
        Split an MLP y = W2 tanh(W1 x) over N = 4 ranks: W1 by output rows (ColumnLinear: each
        rank computes a quarter of the hidden units, no communication), W2 by input columns
        (RowLinear: a partial sum per rank). g all-reduces the partial sums in forward; f, at
        the input, all-reduces the input's gradient in backward. Checked against one MLP.]],
      code = [[
        chalk.manual_seed(12)
        -- in f64, so that rounding cannot hide a wrong split
        fc1, fc2 = nn.Linear(32, 128):to("f64"), nn.Linear(128, 32):to("f64")
        X = chalk.randn({16, 32}, {dtype = "f64"}):requires_grad_(true)
        Y = fc2(chalk.tanh(fc1(X)))
        Y:sum():backward()
        tp = dist.run(4, tp_rank)   -- each rank: its shards, forward, backward; see tp_rank
        worst_tp = 0
        for r = 1, 4 do for _, d in pairs(tp[r].diff) do worst_tp = math.max(worst_tp, d) end end
        print(("output, input, weight gradients vs unsplit: largest difference %.2e"):format(worst_tp))
        print("law: equal within 1e-6")
        local sh = function(t) return table.concat(t, "x") end
        print(("rank 1 holds W1 %s of %s, W2 %s of %s"):format(sh(tp[1].w1), sh(fc1.weight.shape),
          sh(tp[1].w2), sh(fc2.weight.shape)))]],
      -- tp_rank(w): the TP MLP on rank w.rank, forward and backward; its shards' shapes, its
      -- differences to the unsplit run, and the all_reduce counts after forward and after backward
      setup = [[
        local function md(a, b) return (a - b):abs():max():item() end
        function tp_rank(w)
          local mlp = dist.TensorParallelMLP(fc1, fc2, w)
          local x = X:detach():clone():requires_grad_(true)
          local y = mlp(x)
          local loss = y:sum()
          loss:backward{retain_graph = true}   -- kept for the graph picture
          mlp:backward()
          local k = (w.rank - 1) * 32 + 1
          return {loss = loss, w1 = mlp.fc1.weight.shape, w2 = mlp.fc2.weight.shape, diff = {md(y, Y), md(x.grad, X.grad),
            md(mlp.fc1.weight.grad, fc1.weight.grad:narrow(1, k, 32)),
            md(mlp.fc2.weight.grad, fc2.weight.grad:narrow(2, k, 32))}}
        end]],
      check = function() assert(worst_tp <= 1e-6, "the TP MLP must equal the unsplit one") end,
    },
    {
      title = "f and g in the graph",
      text = [[
        Rank 1's forward and backward graph: the leaf "f: all_reduce bwd" starts the block (its
        gradient is all-reduced in backward, by mlp:backward()), the node "g: all_reduce fwd"
        ends it (the partial sums all-reduced; backward passes the gradient straight through).]],
      code = [[viz.graph(tp[1].loss, {backward = true, file = "12_tp_graph.png"})]],
    },
    {
      title = "Counting the all-reduces; the naive split",
      text = [[
        A transformer layer: attention split by heads (q, k, v column, output row), then the
        MLP, each between f and g. From the collective events: 2 all-reduces forward, 2
        backward, whatever N. The naive
        split cuts both layers by output columns: each layer's output must be all-gathered,
        including the hidden activation, 4 times wider than the output.]],
      code = [[
        fwd, both = count_allreduce(false), count_allreduce(true)
        print(("all-reduces per rank, one layer: forward %d, backward %d (law: 2 and 2)")
          :format(fwd, both - fwd))
        mega, naive = sent_bytes("megatron"), sent_bytes("naive")
        b, d, N = 16, 32, 4                       -- f64: 8 bytes an element
        law_line("Megatron forward bytes sent per rank", ("%d"):format(mega),
          2 * (N - 1) * b * d * 8 // N,
          "2(N-1)/N b d 8")
        law_line("naive forward bytes sent per rank", ("%d"):format(naive),
          (N - 1) * b * (4 * d + d) * 8 // N,
          "(N-1)/N b (4d+d) 8")
        print(("naive / Megatron: %.2f times the bytes"):format(naive / mega))]],
      -- count_allreduce(backward): rank 1's all_reduce events in a TP transformer layer (attention
      -- 32 wide, 4 heads, then the MLP) forward (and backward);
      -- sent_bytes(kind): rank 1's bytes sent in one forward of the Megatron or the naive split
      setup = [[
        function count_allreduce(backward)
          chalk.manual_seed(1)
          local lin = function(o) return nn.Linear(32, 32, o):to("f64") end
          local q, k, v, o = lin{bias = false}, lin{bias = false}, lin{bias = false}, lin()
          local prof = chalk.profile(function() dist.run(4, function(w)
            local att = dist.TensorParallelAttention(q, k, v, o, 4, w)
            local mlp = dist.TensorParallelMLP(fc1, fc2, w)
            local y = mlp(att(X:detach():clone():requires_grad_(true)))
            if backward then y:sum():backward(); mlp:backward(); att:backward() end
          end) end)
          local n = 0
          for _, e in ipairs(prof:events()) do
            if e.kind == "collective" and e.rank == 1 and e.name == "all_reduce" then n = n + 1 end
          end
          return n
        end
        function sent_bytes(kind)
          return dist.run(4, function(w)
            if kind == "naive" then require("chalk.tp").naive_mlp(fc1, fc2, w, X:detach())
            else dist.TensorParallelMLP(fc1, fc2, w)(X:detach()) end
            local n = 0
            for _, algos in pairs(w:stats().by) do for _, st in pairs(algos) do n = n + st.sent end end
            return n
          end)[1]
        end]],
    },
    {
      title = "A schedule is data",
      text = [[
        Cut a model into p stages, one per device, and the batch into m micro-batches. A schedule
        says which stage runs F (forward) or B (backward) of which micro-batch at each step.
        dist.pipeline builds one, times it with unit F and B, and checks every dependency:
        F(s, i) needs stage s-1's F(i); B(s, i) needs its own F(i) and stage s+1's B(i).]],
      code = [[
        p, m = 8, 32
        gpipe = dist.pipeline{stages = p, microbatches = m, schedule = "gpipe"}
        law_line("GPipe steps", ("%g"):format(gpipe.steps), 2 * (m + p - 1), "2(m+p-1)")
        law_line("GPipe bubble", ("%.3f"):format(gpipe.bubble),
          ("%.3f"):format((p - 1) / (m + p - 1)), "(p-1)/(m+p-1)")
        print("GPipe activations held at most, per stage: " .. table.concat(gpipe.inflight, " "))]],
    },
    {
      title = "GPipe, drawn",
      text = [[
        All forwards, then all backwards. The grey triangles are the bubble: p - 1 steps of
        fill and p - 1 of drain on every stage. Colour is the micro-batch; F light, B solid.
        Under the grid, the activations each stage holds: GPipe keeps all m until the Bs.]],
      code = [[viz.schedule(gpipe, {file = "12_gpipe.png"})]],
    },
    {
      title = "1F1B: the same time, less memory",
      text = [[
        Stage s runs p - s forwards to fill the pipe, then alternates one F and one B. The
        steps and the bubble are GPipe's, but a stage now holds at most p - s + 1 micro-batches'
        activations (stage 1 holds p, stage p holds 1), not m.]],
      code = [[
        ofob = dist.pipeline{stages = p, microbatches = m, schedule = "1f1b"}
        law_line("1F1B steps", ("%g"):format(ofob.steps), 2 * (m + p - 1), "2(m+p-1)")
        law_line("1F1B bubble", ("%.3f"):format(ofob.bubble),
          ("%.3f"):format((p - 1) / (m + p - 1)), "(p-1)/(m+p-1)")
        for s = 1, p, 7 do
          law_line(("1F1B in-flight, stage %d"):format(s), ofob.inflight[s], p - s + 1, "p-s+1")
        end
        print("1F1B activations held at most, per stage: " .. table.concat(ofob.inflight, " "))
        viz.schedule(ofob, {file = "12_1f1b.png"})]],
    },
    {
      title = "Interleaved 1F1B",
      text = [[
        Give each device v chunks of layers instead of one block (device s holds virtual stages
        s, s + p, ...). A chunk's F takes 1/v step, so the fill and drain shrink v times: idle
        time over compute time (p-1)/(v m), against (p-1)/m above. The price: v times more
        point-to-point messages, and micro-batches in groups of p.]],
      code = [[
        for _, v in ipairs{1, 2, 4} do
          local s = dist.pipeline{stages = p, microbatches = m, schedule = "interleaved", chunks = v}
          law_line(("v = %d idle/compute"):format(v), ("%.4f"):format(s.ratio),
            ("%.4f"):format((p - 1) / (v * m)), "(p-1)/(v m)")
          print(("        steps %g, bubble %.3f"):format(s.steps, s.bubble))
        end
        small = dist.pipeline{stages = 4, microbatches = 8, schedule = "interleaved", chunks = 2}
        viz.schedule(small, {file = "12_interleaved.png"})]],
    },
    {
      title = "A broken schedule fails loudly",
      text = [[
        Fewer steps than 2(m + p - 1) would need a stage to start before its input exists. Move
        stage 3's F of micro-batch 3 into its idle tick 5 while stage 2 delays its own F(3): the
        checker names the cell, the step and what it waited for.]],
      code = [[
        broken = dist.pipeline{stages = 4, microbatches = 4, schedule = "1f1b"}
        for _, c in ipairs(broken.grid) do
          if c.kind == "F" and c.mb == 3 and c.stage == 2 then c.t = 5 end
          if c.kind == "F" and c.mb == 3 and c.stage == 3 then c.t = 4 end
        end
        ok, err = pcall(broken.check, broken)
        msg = ok and "not caught!" or tostring(err):gsub("^.-dist%.pipeline", "dist.pipeline")
        print((msg:gsub(" at step", "\n  at step"):gsub(" %(F on", "\n  (F on")))]],
      check = function() assert(not ok, "the broken schedule must fail the check") end,
    },
    {
      title = "Running it: 4 stages on simulated workers",
      text = [[
        8 layers tanh(W x + b), two per stage, 16 rows in m = 4 micro-batches. s:execute runs
        each rank's ops in schedule order: F receives the activation from the previous stage
        (world:recv), B receives the gradient from the next; each micro-batch's loss is scaled
        by 1/m. The gradients equal one unsplit forward and backward of the whole batch.]],
      code = [[
        worst_pipe = 0
        for _, k in ipairs{"gpipe", "1f1b"} do
          local s = dist.pipeline{stages = 4, microbatches = 4, schedule = k}
          local grads = dist.run(4, function(w) return pipe_rank(s, w) end)
          local d = 0
          for r = 1, 4 do
            for j = 1, 2 do d = math.max(d, diff(grads[r][j], ref[2 * (r - 1) + j])) end
          end
          worst_pipe = math.max(worst_pipe, d)
          print(("%-5s on 4 workers: max weight-gradient difference to unsplit %.2e"):format(k, d))
        end
        print(("largest difference %.2e, law: equal within 1e-6"):format(worst_pipe))]],
      -- net(): the 8 layers, inputs, targets (seeded); ref: unsplit gradients; pipe_rank(s, w): one
      -- rank's stage run by s:execute, returning its two layers' weight gradients; diff(a, b): max |a - b|
      setup = [[
        function net()
          chalk.manual_seed(12)
          local l = {}
          for k = 1, 8 do l[k] = nn.Linear(8, 8) end
          return l, chalk.randn(16, 8), chalk.randn(16, 8)
        end
        local function run_layers(l, from, to, x)
          for k = from, to do x = chalk.tanh(l[k](x)) end
          return x
        end
        local l, X, Y = net()
        nn.functional.mse_loss(run_layers(l, 1, 8, X), Y):backward()
        ref = {}
        for k = 1, 8 do ref[k] = l[k].weight.grad end
        function pipe_rank(s, w)
          local layers, x, y = net()
          local a = 2 * (w.rank - 1) + 1
          s:execute(w, {module = function() return function(t) return run_layers(layers, a, a + 1, t) end end,
            input = function(i) return x:narrow(1, 4 * (i - 1) + 1, 4) end,
            target = function(i) return y:narrow(1, 4 * (i - 1) + 1, 4) end,
            shape = function() return {4, 8} end, loss = nn.functional.mse_loss})
          return {layers[a].weight.grad, layers[a + 1].weight.grad}
        end
        function diff(a, b) return (a - b):abs():max():item() end]],
      check = function() assert(worst_pipe <= 1e-6, "pipelined gradients must equal unsplit ones") end,
    },
  },
}
