-- 12_tensor_pipeline.lua: module 12, pipeline parallelism (the tensor-parallel half is still to come):
-- GPipe, 1F1B and interleaved 1F1B generated as schedules, every dependency checked, drawn as grids,
-- and run for real on simulated workers.
-- Numbers to reproduce (lessons.md row 12), measured beside their laws: p = 8, m = 32 with unit F and
-- B: 2(m + p - 1) = 78 steps for GPipe and 1F1B, bubble (p - 1)/(m + p - 1) = 0.179; interleaved
-- idle/compute (p - 1)/(v m); in-flight activations GPipe m, 1F1B p - s + 1 (stage s counted from 1);
-- a pipelined run's gradients equal unsplit training (1e-6).
return {
  title = "Pipeline parallelism",
  module = 12,
  -- law_line(name, measured, law, formula): "name: measured X, law FORMULA = Y"
  setup = [[
    function law_line(name, got, want, formula)
      print(("%s: measured %s, law %s = %s"):format(name, got, formula, want))
    end]],
  steps = {
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
