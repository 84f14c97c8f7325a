-- 09_checkpointing.lua: module 9, activation checkpointing: store every activation, keep only
-- sqrt(n) segment boundaries and recompute inside segments, or recompute everything from the
-- start; on a deep MLP captured as one step.
-- Numbers to reproduce (lessons.md): activation peak ~ O(sqrt n) for about one extra forward
-- (measured: planned activation peak, recomputed flops, replay time). Pictures: the memory
-- timelines side by side; the memory-vs-time curve.
return {
  title = "Checkpointing: trading compute for activation memory",
  module = 9,
  -- best_ms(g, reps): the shortest of reps replays of a captured graph (after one warm-up), in ms
  setup = [[
    function best_ms(g, reps)
      g:replay()
      local best = math.huge
      for _ = 1, reps do local t0 = chalk.clock(); g:replay(); best = math.min(best, chalk.clock() - t0) end
      return best * 1e3
    end]],
  steps = {
    {
      title = "Where training memory goes",
      text = [[
        Backward needs the forward's activations, in reverse order: the first layer's
        activation is made first and read last. Storing them all costs memory proportional to
        the depth n. Checkpointing keeps only some activations (checkpoints) and recomputes
        the others from the nearest checkpoint when backward needs them.
        Our model: 32 tanh layers of width 256 on a batch of 256, loss = mean of squares.]],
      code = [[
        chalk.manual_seed(0)
        depth, width, batch = 32, 256, 256
        function make_model(n)
          local layers = {}
          for i = 1, n do
            layers[#layers + 1] = nn.Linear(width, width); layers[#layers + 1] = nn.Tanh()
          end
          return nn.Sequential(layers)
        end
        model = make_model(depth)
        xb = chalk.randn(batch, width)
        function step(x)
          model:zero_grad()
          local loss = model(x):pow(2):mean()
          loss:backward()
          return loss
        end
        MiB = 1024 * 1024
        print(("%d layers, %.2f MiB per activation"):format(depth, batch * width * 4 / MiB))]],
    },
    {
      title = "Three strategies, captured",
      text = [[
        We capture the same step three times. The checkpoint pass cuts the forward into
        segments, keeps only the values that cross them, and inserts a copy of each segment's
        forward just before backward first needs it ("recompute" nodes). sqrt(n) segments is
        the default; full recompute makes every layer a segment and keeps nothing.]],
      code = [[
        graphs = {
          {name = "store all", g = chalk.capture(step, xb)},
          {name = "sqrt(n) segments", g = chalk.capture(step, xb)},
          {name = "full recompute", g = chalk.capture(step, xb)},
        }
        graphs[2].g:optimize("checkpoint")
        graphs[3].g:optimize("checkpoint", {full = true})
        print(graphs[2].g:explain("checkpoint"))
        local full = graphs[3].g:explain("checkpoint"):match("^[^\n]*\n[^\n]*")
        print((full:gsub("; 0 values", ";\n  0 values")))]],
    },
    {
      title = "Memory and time, measured",
      text = [[
        For each graph: the activation peak of its memory plan (the most bytes of forward
        activations and recomputed values live at once), the flops it runs, and the replay
        time (best of three). One forward of this model costs about a third of a training
        step's flops (backward costs two forwards).]],
      timing = { " ms$", "^extra time" },
      -- the measurement: each graph's plan, flops, replay time and gradients, into graphs[i]
      setup = [[
        forward_flops = 0
        for _, n in ipairs(graphs[1].g:nodes()) do
          if not n.backward then forward_flops = forward_flops + n.flops end
        end
        for _, s in ipairs(graphs) do
          local p = s.g:plan_memory()
          s.peak, s.planned, s.flops = p.activation_peak, p.planned, select(4, s.g:totals())
          s.ms = best_ms(s.g, 3)
          s.grads = {}
          for i, p in ipairs(model:parameters()) do s.grads[i] = p.grad:clone() end
        end]],
      code = [[
        base = graphs[1]   -- each s in graphs measured: s.peak, s.planned, s.flops, s.ms
        print("strategy          activation peak  planned arena  extra flops (forwards)  time")
        for _, s in ipairs(graphs) do
          print(("%-17s %12.2f MiB %11.2f MiB %18.2f %11.1f ms"):format(s.name, s.peak / MiB,
            s.planned / MiB, (s.flops - base.flops) / forward_flops, s.ms))
        end
        reduction = base.peak / graphs[2].peak
        extra_forwards = (graphs[2].flops - base.flops) / forward_flops
        print(("activation peak reduction with sqrt(n) segments: %.2f"):format(reduction))
        print(("extra forwards computed with sqrt(n) segments: %.2f"):format(extra_forwards))
        print(("extra time with sqrt(n) segments (percent): %.0f")
          :format(100 * (graphs[2].ms / base.ms - 1)))]],
      check = function()
        assert(reduction >= 2, "sqrt(n) segments must cut the activation peak at least 2x")
        assert(extra_forwards <= 1.05, "for at most about one extra forward")
      end,
    },
    {
      title = "Same gradients",
      text = [[
        Recomputation runs the same ops on the same values, so the gradients are not just
        close: they are identical, bit for bit.]],
      code = [[
        worst = 0
        for k = 2, 3 do
          for i, gr in ipairs(graphs[k].grads) do
            worst = math.max(worst, (gr - base.grads[i]):abs():max():item())
          end
        end
        print(("largest gradient difference to store-all: %g"):format(worst))]],
      check = function() assert(worst == 0, "checkpointed gradients must equal the plain ones") end,
    },
    {
      title = "Memory timelines side by side",
      text = [[
        Live arena bytes at every node of the step, on one scale. Store-all climbs through the
        forward and stays high until backward releases the activations one by one. With
        sqrt(n) segments the forward keeps only the boundaries; each segment is rebuilt (purple)
        just before its backward. Full recompute stays low but runs many more nodes.]],
      code = [[
        series = {}
        for _, s in ipairs(graphs) do
          s.g:plan_memory()
          series[#series + 1] = {name = s.name, y = s.g:live(), phase = s.g:phases(),
                                 note = ("%.0f ms"):format(s.ms)}
        end
        chalk.capture_charts.curves(series, {file = "09_timelines.png",
                                             title = "live memory over one training step"})]],
    },
    {
      title = "The memory-vs-time curve",
      text = [[
        Between the extremes lies a curve: k segments keep k boundaries and rebuild one
        segment of n/k layers at a time, so the law is activation peak ~ (k + n/k) activations,
        smallest near k = sqrt(n), while the extra compute stays at most one forward (counted).
        Time is measured beside it, but on a shared CPU it is noisy: trust the flops.]],
      timing = " ms$",
      code = [[
        act = batch * width * 4 / MiB            -- one activation, in MiB
        row = "k = %2d: activation peak %5.2f MiB, law (k + n/k) x %.2f = %5.2f MiB, "
              .. "extra forwards %.2f, %6.1f ms"
        curve = {}
        for _, k in ipairs{1, 2, 4, 6, 8, 16, 32} do
          local gk = chalk.capture(step, xb)
          gk:optimize("checkpoint", {segments = math.min(k, depth)})
          local peak = gk:plan_memory().activation_peak / MiB
          local extra = select(4, gk:totals()) - base.flops
          curve[#curve + 1] = {k = k, peak = peak, ms = best_ms(gk, 2)}
          print(row:format(k, peak, act, (k + depth / k) * act, extra / forward_flops,
                           curve[#curve].ms))
        end]],
    },
    {
      title = "The curve, drawn",
      text = [[
        The activation peak against k follows the U of k + n/k; the three strategies as
        points of memory against time show the trade.]],
      code = [[
        local xs, ys = {}, {}
        for i, c in ipairs(curve) do xs[i], ys[i] = c.k, c.peak end
        chart = require "chalk.chart"
        chart.line({{name = "activation peak (MiB)", x = xs, y = ys}},
          {title = ("activation peak vs segments (n = 32 layers; store-all %.1f MiB)")
                     :format(base.peak / MiB),
           xlabel = "segments k", ylabel = "MiB", points = true, ymin = 0,
           file = "09_memory_vs_segments.png"})
        local ts, ps, labels = {}, {}, {}
        for i, s in ipairs(graphs) do
          ts[i], ps[i] = s.ms, s.peak / MiB
          labels[i] = ("%s: %.2f MiB, %.0f ms"):format(s.name, ps[i], s.ms)
        end
        chart.line({{name = "the three strategies of one step", x = ts, y = ps}},
          {title = "activation memory vs time per step (n = 32 layers)", xlabel = "time per step (ms)",
           ylabel = "activation peak (MiB)", labels = labels, ymin = 0, width = 700, height = 380,
           file = "09_memory_vs_time.png"})]],
    },
    {
      title = "O(sqrt n): the law at three depths",
      text = [[
        Store-all grows linearly with depth; sqrt(n) checkpointing grows like sqrt(n). The
        ratio between them grows like sqrt(n) too.]],
      code = [[
        for _, n in ipairs{4, 16, 64} do
          local m = make_model(n)
          local function st(x) m:zero_grad(); local l = m(x):pow(2):mean(); l:backward(); return l end
          local a, b = chalk.capture(st, xb), chalk.capture(st, xb)
          b:optimize("checkpoint")
          local pa, pb = a:plan_memory().activation_peak, b:plan_memory().activation_peak
          print(("n = %2d: store-all %6.2f MiB, sqrt(n) %5.2f MiB, ratio %.2f (sqrt(n)/2 = %.1f)")
            :format(n, pa / MiB, pb / MiB, pa / pb, math.sqrt(n) / 2))
        end]],
    },
    {
      title = "nn.checkpoint in eager code",
      text = [[
        The same idea without capture: nn.checkpoint(block) runs the block without recording
        (its activations are freed at once) and recomputes it in backward. The gradients are
        again identical.]],
      code = [[
        chalk.manual_seed(1); plain = make_model(4)
        chalk.manual_seed(1); wrapped = make_model(4)
        local w = wrapped
        ck = nn.Sequential{ nn.checkpoint(nn.Sequential{w[1], w[2], w[3], w[4]}),
                            nn.checkpoint(nn.Sequential{w[5], w[6], w[7], w[8]}) }
        plain(xb):pow(2):mean():backward()
        ck(xb):pow(2):mean():backward()
        eager_worst = 0
        for i, p in ipairs(plain:parameters()) do
          local d = (p.grad - wrapped:parameters()[i].grad):abs():max():item()
          eager_worst = math.max(eager_worst, d)
        end
        print(("nn.checkpoint: largest gradient difference %g"):format(eager_worst))]],
      check = function() assert(eager_worst == 0) end,
    },
  },
}
