-- 06_fusion.lua: module 6, fusion, compilers and autotuning: capture a GELU/bias/residual chain
-- and fuse it into one kernel, read the kernel chalk generates, fuse a softmax written by hand,
-- and autotune a tile size.
-- Numbers to reproduce (lessons.md): the fused softmax moves ~MN in and out instead of ~5MN
-- read and ~3MN written; kernels launched before and after. Pictures: the graph before and after
-- fusion, the heatmap of tile configurations.
return {
  title = "Fusion, compilers and autotuning",
  module = 6,
  -- best(g, reps): the shortest of reps replays of a captured graph, in ms
  setup = [[
    best = require("chalk.lessonkit").best_replay_ms
    -- print generated source, long lines wrapped at a space to fit 100 columns
    function show_source(src)
      for line in (src .. "\n"):gmatch("(.-)\n") do
        local indent = line:match("^%s*") .. "    "
        while #line > 96 do
          local cut = line:sub(1, 96):match("^.*()[ ,]") or 96
          print(line:sub(1, cut)); line = indent .. line:sub(cut + 1):gsub("^%s+", "")
        end
        print(line)
      end
    end]],
  steps = {
    {
      title = "Capture a chain of elementwise ops",
      text = [[
        A transformer MLP block ends with y = gelu(x W + b) + x: a matmul, then three
        elementwise ops (add the bias, GELU, add the residual). Eager execution runs each op as
        its own kernel: each one reads its inputs from memory and writes its result back.
        chalk.capture(fn, x) runs fn once and records every op it runs into a Graph, a flat list
        of nodes in execution order, with x and the parameters bound by reference.]],
      code = [[
        chalk.manual_seed(0)
        N, D = 512, 512
        W = chalk.randn(D, D) * (1 / math.sqrt(D))
        b = chalk.randn(D) * 0.1
        x = chalk.randn(N, D)
        W.name, b.name, x.name = "W", "b", "x"
        function block(x) return (x:matmul(W) + b):gelu() + x end
        g0 = chalk.capture(block, x)
        print(g0)
        viz.graph(g0, {file = "06_before.png", title = "gelu(x W + b) + x, as captured"})]],
    },
    {
      title = "Fuse it",
      text = [[
        The fusion pass walks the graph backwards and grows groups of elementwise ops whose
        intermediate results are not needed elsewhere; each group becomes one kernel that reads
        its inputs once and writes only its outputs. The matmul stays a BLAS call: it is not
        elementwise. g:explain("fuse") says, for every producer/consumer pair, why it was or was
        not fused. The numbers are the graph's own cost estimates.]],
      code = [[
        g1 = chalk.capture(block, x)
        g1:optimize{"fuse"}
        print(g1:explain("fuse"))
        _, kernels_before = g0:totals()
        _, kernels_after = g1:totals()
        print(("kernels launched before fusion: %d"):format(kernels_before))
        print(("kernels launched after fusion: %d"):format(kernels_after))
        viz.graph(g1, {file = "06_after.png",
                       title = "after fusion: one kernel for bias, GELU and residual"})]],
      check = function() assert(kernels_after == 2, "matmul + one fused kernel") end,
    },
    {
      title = "The generated kernel",
      text = [[
        A fused kernel is generated code. On the CPU chalk runs the program in a fused-loop
        interpreter, a chunk of elements at a time, so intermediates stay in cache; every
        instruction is the op's own expression in its own dtype, so the fused result equals the
        unfused one bit for bit. On a GPU the same program becomes CUDA C, compiled at run time
        with NVRTC and cached: here it is (g1:source(i) alone gives the CPU program).]],
      code = [[
        for i, n in ipairs(g1:nodes()) do if n.op == "fused" then fused_node = i end end
        show_source(g1:source(fused_node, "cuda"))
        y0, y1 = g0:replay(), g1:replay()
        print(("fused vs unfused, largest difference: %g"):format((y0 - y1):abs():max():item()))]],
      check = function() assert((y0 - y1):abs():max():item() == 0, "fusion must not change a bit") end,
    },
    {
      title = "Time it",
      text = [[
        We time the elementwise tail alone, on 8192 x 512 tensors (16 MB each, beyond this
        machine's last-level cache: at 512 x 512 everything stays in cache and fusion gains
        nothing). With ReLU the unfused ops stream whole tensors through memory one op at a
        time: about 9MN bytes read and written against the fused kernel's 3MN, so a memory-bound
        tail gains up to 3x. GELU is bound by computing erf, so fusion helps it little.
        Best of 15 replays (other work on the machine makes single runs noisy).]],
      timing = "ms, fused", -- the times; the traffic law and the kernel counts are compared
      code = [[
        hb, xb = chalk.randn(8192, D), chalk.randn(8192, D)   -- MN = 8192 x 512 floats
        function gelu_tail(h) return (h + b):gelu() + xb end
        function relu_tail(h) return (h + b):relu() * 0.5 + xb end
        for _, f in ipairs{{"GELU", gelu_tail}, {"ReLU", relu_tail}} do
          local e0, e1 = chalk.capture(f[2], hb), chalk.capture(f[2], hb)
          e1:optimize{"fuse"}
          local r0, w0 = e0:traffic()
          local r1, w1 = e1:traffic()
          local u, v = (r0 + w0) / (hb:numel() * 4), (r1 + w1) / (hb:numel() * 4)
          local t0, t1 = best(e0, 15), best(e1, 15)
          print(("%s tail: traffic unfused %.1f MN, fused %.1f MN (law: up to %.1fx if memory-bound)")
            :format(f[1], u, v, u / v))
          print(("%s tail: unfused %.2f ms, fused %.2f ms: %.2fx"):format(f[1], t0, t1, t0 / t1))
          if f[1] == "ReLU" then relu_fused, relu_speedup = e1, t0 / t1 end
        end]],
    },
    {
      title = "Softmax by hand: 5 kernels and their memory traffic",
      text = [[
        softmax(x) = exp(x - max(x)) / sum(exp(x - max(x))), row by row. Written with separate
        ops it is five kernels: max (reads MN), subtract (reads MN, writes MN), exp (reads MN,
        writes MN), sum (reads MN), divide (reads MN, writes MN): about 5MN read and 3MN
        written, for an M x N input. g:traffic() adds up what every kernel reads and writes.]],
      code = [[
        M, Ncols = 256, 1024
        s = chalk.randn(M, Ncols)
        function softmax_by_hand(t)
          local m = t:max({-1}, true)   -- dims as a list: the values only (no argmax)
          local e = (t - m):exp()
          return e / e:sum(-1, true)
        end
        sm0 = chalk.capture(softmax_by_hand, s)
        MN = M * Ncols * 4
        rd0, wr0, k0 = sm0:traffic()
        print(("unfused softmax kernels: %d"):format(k0))
        print(("unfused softmax reads (in MN): %.2f"):format(rd0 / MN))
        print(("unfused softmax writes (in MN): %.2f"):format(wr0 / MN))]],
      check = function() assert(k0 == 5 and rd0 / MN > 4.9 and wr0 / MN > 2.9, "5 kernels, ~5MN/3MN") end,
    },
    {
      title = "Softmax fused: one row kernel",
      text = [[
        The fusion pass also fuses reductions over the last dim: the kernel walks one row at a
        time, keeps the row's max and sum in registers and the row itself in cache, and writes
        only the result. One kernel, about MN in and MN out, as a hand-written softmax kernel
        (and chalk's own softmax op) does.]],
      timing = "^time:",
      code = [[
        sm1 = chalk.capture(softmax_by_hand, s)
        print(sm1:optimize{"fuse"})
        rd1, wr1, k1 = sm1:traffic()
        print(("fused softmax kernels: %d"):format(k1))
        print(("fused softmax reads (in MN): %.2f"):format(rd1 / MN))
        print(("fused softmax writes (in MN): %.2f"):format(wr1 / MN))
        p0, p1 = sm0:replay(), sm1:replay()
        print(("largest difference to unfused: %g; to chalk's softmax op: %.2g"):format(
          (p0 - p1):abs():max():item(), (p1 - s:softmax(-1)):abs():max():item()))
        print(("time: unfused %.2f ms, fused %.2f ms"):format(best(sm0, 10), best(sm1, 10)))]],
      check = function()
        assert(k1 == 1 and rd1 / MN < 1.05 and wr1 / MN < 1.05, "one kernel, ~MN in and out")
        assert((p0 - p1):abs():max():item() == 0, "bit for bit")
      end,
    },
    {
      title = "Autotuning a tile size",
      text = [[
        Compilers pick kernel parameters by measuring. A blocked matmul computes C in tiles of
        bm rows by bn columns, walking k in steps of bk: the tile sizes decide what stays in
        cache. This is the "tiled" implementation of the matmul op (x:matmul(y, {impl =
        "tiled", tiles = {bm, bn, bk}})); chalk.autotune.matmul runs it through the op table for
        every (bm, bn) on the real shape, keeps the best and caches it. The heatmap shows why
        tuning is needed: the best and worst configurations differ by a large factor (printed
        below), and the best is not where intuition puts it. Timings on a busy machine are noisy:
        rerun and compare.]],
      timing = { "GFLOP/s", "^cached:" }, -- the winner depends on the timings
      code = [[
        tune = chalk.autotune.matmul(256, 256, 256,
          {bm = {2, 8, 32, 128}, bn = {8, 32, 128, 256}, bk = 64, repeats = 2})
        worst = math.huge
        for _, r in ipairs(tune.results) do worst = math.min(worst, r.gflops) end
        print(("best tiles: bm=%d bn=%d bk=%d at %.2f GFLOP/s; worst %.2f GFLOP/s (%.1fx slower)")
          :format(tune.best.bm, tune.best.bn, tune.best.bk, tune.best.gflops, worst,
                  tune.best.gflops / worst))
        local cached = chalk.autotune.cached(256, 256, 256)
        print("cached:", cached.bm, cached.bn)
        chalk.autotune.heatmap(tune, {file = "06_autotune.png"})
        local a, b = chalk.randn(256, 256), chalk.randn(256, 256)
        local c = a:matmul(b, {impl = "tiled", tiles = {tune.best.bm, tune.best.bn, tune.best.bk}})
        print(("the tuned tiled matmul against the default: max difference %.2g")
          :format((c - a:matmul(b)):abs():max():item()))]],
    },
    {
      title = "Autotuning the fused kernel",
      text = [[
        The fused kernels have a knob too: how many elements the interpreter handles per step.
        Too few and the per-step overhead dominates; too many and the intermediates fall out of
        the cache. g:autotune tries each size on the kernel's real buffers and keeps the best.]],
      timing = " us", -- the times and the chunk they pick
      code = [[
        rows = relu_fused:autotune{chunks = {16, 64, 256, 1024, 4096, 16384, 65536}, repeats = 3}
        for _, r in ipairs(rows) do
          print(("  kernel k%d, chunk %6d: %.1f us"):format(r.kernel, r.chunk, r.us))
        end
        print(relu_fused:explain("autotune"))]],
    },
    {
      title = "On a GPU",
      text = [[
        On a GPU the same captured graph replays its fused kernels as CUDA C compiled with NVRTC
        and, from the third replay on, as one CUDA Graph launch: no per-op launch overhead at
        all. Without a GPU this step says so.]],
      code = [[
        if chalk.cuda.is_available() then
          xg = x:cuda(); Wg = W:cuda(); bg = b:cuda()
          gg = chalk.capture(function(t) return (t:matmul(Wg) + bg):gelu() + t end, xg)
          gg:optimize{"fuse"}
          for _ = 1, 3 do gg:replay() end
          print("GPU replay:", gg:cuda_status())
        else
          print("no GPU here: the CUDA source above is what NVRTC compiles on one")
        end]],
    },
  },
}
