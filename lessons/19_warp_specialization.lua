-- 19_warp_specialization.lua: module 19, warp specialization and mega-kernels: a producer warp
-- filling a ring of shared-memory slots while consumer warps compute (kernels/warpspec.cu), its
-- pipeline simulated on the discrete-event engine and timed from clock64 stamps on a GPU; and a
-- persistent kernel running the MLP's whole forward from a device-side task queue
-- (kernels/persistent.cu) against one launch per op and a CUDA Graph.
-- Numbers to reproduce (lessons.md): period = max(c, p, (p + L + c) / S); overlap 0 with one slot;
-- busy -> 1 once S >= (p + L + c) / c; on the GPU: the launch overhead per kernel, ops x overhead
-- saved, the overlap fraction from the stamps, the GEMM's fraction of cuBLAS. Without a GPU the
-- figures recorded on an H100 (lessons/gpu_runs/19_warpspec-H100.log) are shown.
local here = debug.getinfo(1, "S").source:match("^@(.*)/lessons/[^/]*$")
local root = (here and here .. "/" or "")

return {
  title = "Warp specialization and mega-kernels",
  module = 19,
  timing = { " ms", " us", "TFLOP/s", "cycles/slice" },
  setup = "root = " .. ("%q"):format(root) .. "\n" .. [[
    ws = chalk.warpspec
    gpu = chalk.cuda.is_available()
    quick = os.getenv("CHALK_LESSON_QUICK") == "1"
    function pic(name) return name .. "." .. (os.getenv("CHALK_LESSON_FORMAT") or "png") end
    -- host time per call of fn, the device synchronised around reps calls (same for every kernel)
    function gpu_ms(fn, reps)
      fn(); chalk.cuda.synchronize()
      local t0 = chalk.clock()
      for _ = 1, reps do fn() end
      chalk.cuda.synchronize()
      return (chalk.clock() - t0) * 1e3 / reps
    end
    P = {load = 6, compute = 2, issue = 0.5}   -- the simulated pipeline's latencies (time units)]],
  steps = {
    {
      title = "Producers and consumers",
      text = [[
        Lesson 4's tiled kernel has every warp do everything: load a tile, __syncthreads, compute,
        __syncthreads, load the next. While the tile loads, nobody computes. Warp specialization
        splits the roles: a producer warp only copies K-slices of A and B into a ring of S
        shared-memory slots (cp.async), consumer warps only compute. Two mbarriers per slot
        synchronise them: "full" (the copies landed: consumers may read) and "empty" (consumers
        are done: the producer may refill). With S >= 2 the next slice loads while this one is
        computed. First the pipeline as a model: issue p, load latency L, compute c per slice.]],
      code = [[
        if gpu then print("GPU: " .. chalk.cuda.get_device_name() .. ": the kernels run on it below")
        else print("No GPU here: the model runs; the GPU steps show figures recorded on an H100") end
        for _, S in ipairs{1, 4} do
          local q = {stages = S, load = P.load, compute = P.compute, issue = P.issue, tiles = 64}
          local r, l = ws.simulate(q), ws.law(q)
          print(("S = %d slots: period measured %g; law max(c, p, (p+L+c)/S) = %g")
            :format(S, r.period, l.period))
          print(("          overlap %.3f, consumers busy %.3f (law %.3f)")
            :format(r.overlap, r.utilization, l.utilization))
        end]],
      check = function()
        assert(ws.simulate{stages = 1, load = 6, compute = 2, issue = 0.5}.overlap == 0, "one slot: no overlap")
      end,
    },
    {
      title = "The pipeline, slice by slice",
      text = [[
        The simulation runs on lesson 16's discrete-event engine: the producer warp and the
        consumer warps are its two resources, and each slice's issue, landing and compute are
        events. A slot's lane shows its slice in flight (issued, not yet read) and then being read.
        With 3 slots the producer runs ahead by 2 slices; the consumers still wait, because
        (p + L + c)/S = 2.83 > c = 2: three slots cannot hide a load three times the compute.]],
      code = [[
        sim3 = ws.simulate{stages = 3, load = P.load, compute = P.compute, issue = P.issue, tiles = 64}
        ws.timeline(sim3, {file = pic("19_sim_timeline"), slices = 16,
          title = "simulated: S = 3, p = 0.5, L = 6, c = 2"})
        print(("overlap %.3f: the fraction of the run in which consumers compute while a slice is"
          .. " in flight"):format(sim3.overlap))]],
    },
    {
      title = "Overlap against the number of slots",
      text = [[
        Each slot cycles through issue, load and compute, so a slice takes at least (p+L+c)/S; the
        consumers need c per slice. Overlap is 0 with one slot (they take turns) and the busy
        fraction rises as c / max(c, (p+L+c)/S) until S >= (p+L+c)/c = 4.25: then the loads hide
        entirely. More slots cost shared memory (18.4 KB each in the kernel) and buy nothing.]],
      code = [[
        stages_pts = {}
        for S = 1, 8 do
          local q = {stages = S, load = P.load, compute = P.compute, issue = P.issue, tiles = 96}
          local r, l = ws.simulate(q), ws.law(q)
          stages_pts[S] = {stages = S, sim = r.overlap, law = l.overlap}
          print(("S = %d: overlap %.3f, busy %.3f, period %.4g (law %.4g)")
            :format(S, r.overlap, r.utilization, r.period, l.period))
        end
        ws.plot_stages(stages_pts, {file = pic("19_stages"),
                                    title = "overlap vs slots (p 0.5, L 6, c 2)"})]],
      check = function() for S = 1, 8 do assert(stages_pts[S].sim <= stages_pts[S].law + 1e-9) end end,
    },
    {
      title = "The kernel: one producer warp, eight consumer warps",
      text = [[
        kernels/warpspec.cu: a block of 9 warps computes a 128 x 128 tile of C. Warp 0 loops over
        K-slices of 16: wait until its slot is empty, issue cp.async copies (zero-filled past the
        edges), and cp.async.mbarrier.arrive: the "full" barrier completes when the copies land.
        Warps 1-8 wait on "full", do 16 x 64 FMAs per thread from shared memory, arrive on
        "empty". With stamps = true, lane 0 of each warp of block (0,0) writes clock64() around
        each wait and each piece of work into a device buffer: the timeline of the real kernel.
        The producer's loop, from kernels/warpspec.cu:]],
      code = [[
        local f = assert(io.open(root .. "kernels/warpspec.cu"))
        local src = f:read("a"); f:close()
        local body = src:match("  if %(warp == 0%) {.-cp_async_arrive%(&full%[s%]%);")
        for line in body:gmatch("[^\n]+") do    -- the producer's loop, without its stamps
          if not line:find("clock64") then print(line) end
        end]],
    },
    {
      title = "On the GPU: the GEMM against lesson 4 and cuBLAS",
      gpu = true,
      text = [[
        The same product by the warp-specialized kernel (1, 2 and 4 slots), lesson 4's tiled
        kernel and cuBLAS f32, each timed the same way (host clock around 5 calls, the device
        synchronised), checked against cuBLAS on an awkward size first.]],
      setup = [[
        local a, b = chalk.randn(1000, 33):cuda(), chalk.randn(33, 517):cuda()
        awkward = (chalk.cuda.ws_gemm(a, b) - a:matmul(b)):abs():max():item()
        n = quick and 1024 or 4096
        A, B = chalk.randn(n, n):cuda(), chalk.randn(n, n):cuda()
        local ref = A:matmul(B)
        gemm = {cublas = gpu_ms(function() A:matmul(B) end, 5),
                tiled = gpu_ms(function() A:matmul(B, {impl = "tiled"}) end, 5), err = {}}
        for _, S in ipairs{1, 2, 4} do
          gemm[S] = gpu_ms(function() chalk.cuda.ws_gemm(A, B, {stages = S}) end, 5)
          gemm.err[S] = (chalk.cuda.ws_gemm(A, B, {stages = S}) - ref):abs():max():item()
            / ref:abs():max():item()
        end]],
      code = [[
        print(("1000x33 @ 33x517: max |ws_gemm - cuBLAS| = %.1e"):format(awkward))
        local function row(name, ms) -- time, TFLOP/s, fraction of cuBLAS
          return ("%-16s: %8.3f ms %6.1f TFLOP/s %5.1f%% of cuBLAS"):format(name, ms,
            2 * n ^ 3 / ms / 1e9, 100 * gemm.cublas / ms)
        end
        for _, S in ipairs{1, 2, 4} do
          print(row("ws_gemm stages " .. S, gemm[S]) .. (", max rel. error %.1e"):format(gemm.err[S]))
        end
        print(row("tiled (lesson 4)", gemm.tiled) .. (" (n = %d)"):format(n))
        print(row("cublas", gemm.cublas) .. (" (n = %d)"):format(n))]],
      check = function() assert(awkward < 1e-3, "ws_gemm equals cuBLAS on 1000x33 @ 33x517") end,
    },
    {
      title = "On the GPU: the timeline from clock64 stamps",
      gpu = true,
      text = [[
        Block (0, 0)'s stamps, in cycles of its SM. A slice is in flight from the producer's issue
        until the first consumer warp starts on it. From one slot we estimate the model's numbers
        (c compute and p issue per slice, L the rest of a slice's period) and ask the simulation
        what more slots should give; the stamps say what they gave, and why: the producer warp's
        issue time grows once it shares the SM with busy consumers, and it becomes the bottleneck.]],
      setup = [[
        runs, model = {}, {}
        for _, S in ipairs{1, 2, 3, 4, 6, 8} do
          local _, st = chalk.cuda.ws_gemm(A, B, {stages = S, stamps = true})
          runs[S] = ws.from_stamps(st, S)
        end
        local r1 = runs[1]
        nslices = #r1.slices
        local c, p = r1.utilization * r1.span / nslices, r1.producer_busy * r1.span / nslices
        for S in pairs(runs) do
          model[S] = ws.simulate{stages = S, load = r1.span / nslices - c - p, compute = c, issue = p,
                                 tiles = nslices}.overlap
        end]],
      code = [[
        for _, S in ipairs{1, 2, 3, 4, 6, 8} do
          local r = runs[S]
          print(("stamps stages %d: overlap %.3f, busy consumers %.3f producer %.3f, %.0f cycles/slice,"
            .. " model %.3f"):format(S, r.overlap, r.utilization, r.producer_busy, r.span / nslices,
            model[S]))
        end
        ws.timeline(runs[4], {file = pic("19_gpu_timeline"), slices = 12,
          title = ("%s: ws_gemm n = %d, S = 4, block (0,0)"):format(chalk.cuda.get_device_name(), n)})]],
    },
    {
      title = "On the GPU: launches, a CUDA Graph, a persistent kernel",
      gpu = true,
      text = [[
        The MLP 784-512-256-10 forward is 5 ops (linear, relu, linear, relu, linear), run 200 times:
        a launch per op, a CUDA Graph of them, or one persistent kernel whose blocks take (op, tile)
        tasks from a device-side counter; a task waits on a flag counting the finished tasks of the
        32 rows it reads (layer 2 starts on rows 1-32 while layer 1 works on later rows). The host
        enqueues launches ahead: only kernels shorter than a launch leave the GPU waiting.]],
      setup = [[
        lo = chalk.cuda.launch_overhead(2000)
        mlp = {}
        for _, bs in ipairs{64, 1024} do
          local x, Pm = chalk.randn(bs, 784):cuda(), {}
          for i, d in ipairs{{784, 512}, {512, 256}, {256, 10}} do
            Pm[2 * i - 1], Pm[2 * i] = (chalk.randn(d[1], d[2]) * 0.05):cuda(), chalk.randn(d[2]):cuda()
          end
          local m, y = {}, {}
          for _, mode in ipairs{"per_op", "graph", "persistent"} do
            y[mode], m[mode] = chalk.cuda.persistent_mlp(x, Pm, {mode = mode, reps = 200})
          end
          local h = x:cpu()
          for i = 1, 3 do
            h = h:matmul(Pm[2 * i - 1]:cpu()) + Pm[2 * i]:cpu()
            if i < 3 then h = h:relu() end
          end
          m.same = (y.persistent - y.per_op):abs():max():item() == 0 and (y.graph - y.per_op):abs():max():item() == 0
          m.cpu = (y.persistent:cpu() - h):abs():max():item()
          mlp[bs] = m
        end]],
      code = [[
        print(("empty kernel: %.2f us per launch (stream), %.2f us host enqueue, %.2f us per graph"
          .. " node"):format(lo.stream_us, lo.host_us, lo.graph_us))
        for _, bs in ipairs{64, 1024} do
          local m = mlp[bs]
          print(("MLP batch %d: per_op %.1f us, graph %.1f us, persistent %.1f us; equal: %s; "
            .. "vs CPU %.0e"):format(bs, 1e3 * m.per_op, 1e3 * m.graph, 1e3 * m.persistent, m.same, m.cpu))
          print(("saved batch %d: %.1f us per forward (5 ops x %.2f us launch overhead = %.1f us)")
            :format(bs, 1e3 * (m.per_op - m.persistent), lo.stream_us, 5 * lo.stream_us))
        end
        ws.bars({{"empty launch (stream)", lo.stream_us}, {"empty launch, graph node", lo.graph_us},
          {"MLP b=64: 5 launches", 1e3 * mlp[64].per_op}, {"MLP b=64: CUDA Graph", 1e3 * mlp[64].graph},
          {"MLP b=64: persistent", 1e3 * mlp[64].persistent}},
          {file = pic("19_launch_bars"), title = "launch overhead and the MLP forward (us)"})]],
      check = function() assert(mlp[64].same and mlp[1024].same, "the three modes agree bit for bit") end,
    },
    {
      title = "Recorded on an H100",
      gpu = false,
      text = [[
        What the GPU steps printed on an H100 (lessons/gpu_runs/19_warpspec-H100.log; its timeline
        and bars are 19_gpu_timeline.png and 19_launch_bars.png there). 4.3 us per launch is the
        host's rate; between dependent kernels the GPU loses ~0.8 us (graph - per_op, per op), all
        a mega-kernel can win here. The producer warp is 93% busy: more producers or TMA next.]],
      setup = [[
        rec, recorded_bars = {}, {}
        for line in io.lines(root .. "lessons/gpu_runs/19_warpspec-H100.log") do
          line = line:gsub(" cycles per slice,", " cycles/slice,"):gsub("all modes equal", "equal")
          for _, p in ipairs{"^recorded", "^ws_gemm stages", "^tiled", "^cublas", "^stamps stages [148]",
                             "^empty kernel", "^MLP batch", "^saved batch"} do
            if line:match(p) then rec[#rec + 1] = line end
          end
          local s, g = line:match("^empty kernel: ([%d.]+) us per launch.-([%d.]+) us per graph node")
          if s then recorded_bars[1], recorded_bars[2] = {"empty launch (stream)", tonumber(s)},
            {"empty launch, graph node", tonumber(g)} end
          local a, b, c = line:match("^MLP batch 64: per_op ([%d.]+) us, graph ([%d.]+) us, persistent ([%d.]+) us")
          if a then recorded_bars[3], recorded_bars[4], recorded_bars[5] = {"MLP b=64: 5 launches", tonumber(a)},
            {"MLP b=64: CUDA Graph", tonumber(b)}, {"MLP b=64: persistent", tonumber(c)} end
        end]],
      code = [[
        for _, line in ipairs(rec) do print(line) end
        ws.bars(recorded_bars, {file = pic("19_recorded_bars"),
          title = "recorded on an H100: launch overhead, MLP forward (us)"})]],
      check = function() assert(#rec >= 12 and #recorded_bars == 5, "the recorded H100 log's lines") end,
    },
  },
}
