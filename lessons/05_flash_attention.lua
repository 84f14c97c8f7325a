-- 05_flash_attention.lua: module 5, attention and FlashAttention: naive attention against the
-- tiled online softmax, on the GPU when there is one (on the CPU otherwise, at smaller N).
-- Numbers to reproduce (lessons.md): extra memory O(N^2) -> O(N) (the growth exponent of the
-- peak, measured from the memory log); HBM traffic Theta(Nd + N^2) -> Theta(N^2 d^2 / M) (bytes
-- counted by each implementation against the formulas, and flash's bytes against its tile size).
-- Pictures: the tile sweep with its running max and sum; the memory timelines of naive and flash
-- side by side on one scale; times against N on log axes.
-- CHALK_LESSON_QUICK=1 keeps the CPU sizes small (the test of `make test` runs it so).
local lessons_dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "lessons"

return {
  title = "Attention and FlashAttention",
  module = 5,
  steps = {
    {
      title = "Where this runs",
      text = [[
        Attention is softmax(q k^T / sqrt(d)) v: every query row scores every key, the scores
        become probabilities, and the output is the probability-weighted sum of the values.
        For N tokens that is an N x N matrix of scores per head. This lesson computes it two
        ways, the textbook way (naive) and FlashAttention's way (flash), and measures what
        the difference costs in memory, in memory traffic and in time.
        The GPU parts need CUDA; without it every step still runs, on the CPU at smaller N.]],
      code = [[
        if gpu then print("GPU: " .. chalk.cuda.get_device_name() .. ": measured on it")
        else print("No GPU here: the steps run on the CPU at smaller N; an H100's figures close") end]],
      -- plumbing: the device, picture names, time_ms(fn, reps)
      setup = [[
        F = nn.functional
        pc = require "chalk.perfcharts"
        gpu = chalk.cuda.is_available()
        kit = require "chalk.lessonkit"
        pic = kit.pic -- PNG, or CHALK_LESSON_FORMAT's (dot: rendered elsewhere with the "nop" engine)
        dev = gpu and "cuda" or "cpu"
        quick = os.getenv("CHALK_LESSON_QUICK") == "1"
        kit.gpu_banner("the measurements below run on it",
          "Every step runs on the CPU, at smaller N; the GPU numbers need a machine with CUDA.")
        -- device time of fn: the median over reps runs of the ops' own times in a profile
        -- (GPU kernel times on the GPU), after one warm-up run
        function time_ms(fn, reps)
          fn()
          local t = {}
          for r = 1, reps or 3 do
            local prof = chalk.profile(fn)
            t[r] = prof:summary().ops_ms
          end
          table.sort(t)
          return t[(#t + 1) // 2]
        end]],
    },
    {
      title = "Attention, written out",
      text = [[
        Five tokens, head dimension 4. S holds every query-key score, P = softmax(S) row by
        row, O = P v. nn.functional.attention computes the same thing, naively (the same three
        ops) or with impl = "flash", one op that never builds S.]],
      code = [[
        chalk.manual_seed(0)
        q, k, v = chalk.randn(5, 4), chalk.randn(5, 4), chalk.randn(5, 4)
        S = q:matmul(k.T) / math.sqrt(4)
        P = S:softmax(-1)
        O = P:matmul(v)
        print("P = softmax(S), each row sums to 1:")
        print(P)
        diff_naive = (F.attention(q, k, v) - O):abs():max():item()
        diff_flash = (F.attention(q, k, v, {impl = "flash"}) - O):abs():max():item()
        print(("largest difference from O: naive %.2e, flash %.2e"):format(diff_naive, diff_flash))]],
      check = function() assert(diff_naive < 1e-6 and diff_flash < 1e-6, "attention should match the formula") end,
    },
    {
      title = "Causal masking",
      text = [[
        A language model may not look ahead: query i sees keys 1..i only. The mask sets the
        scores above the diagonal to -inf before the softmax, so their probabilities are 0.
        Flash never computes those scores at all: whole tiles above the diagonal are skipped,
        which halves the work.]],
      code = [[
        mask = chalk.zeros(5, 5)
        for i = 1, 5 do for j = i + 1, 5 do mask[i][j] = -math.huge end end
        Pc = (S + mask):softmax(-1)
        print(Pc)
        Oc = Pc:matmul(v)
        local dn = (F.attention(q, k, v, {causal = true}) - Oc):abs():max():item()
        local df = (F.attention(q, k, v, {causal = true, impl = "flash"}) - Oc):abs():max():item()
        diff_causal = math.max(dn, df)
        print(("causal attention, naive and flash, against the masked formula: %.2e")
          :format(diff_causal))]],
      check = function() assert(diff_causal < 1e-6, "causal attention should match the masked formula") end,
    },
    {
      title = "The online softmax, one tile at a time",
      text = [[
        The trick that removes the N x N matrix: softmax can be computed in one pass over the
        keys, a tile at a time, if we keep two numbers per query row: the running maximum m
        and the running sum l of e^(s - m). When a new tile raises the maximum from m to m',
        everything accumulated so far is rescaled by e^(m - m'):
            m' = max(m, max_j s_j)      l' = l e^(m - m') + sum_j e^(s_j - m')
            acc' = acc e^(m - m') + sum_j e^(s_j - m') v_j        and at the end O = acc / l.
        Here N = 24 tokens in tiles of 4, causal, and query 13 (the first row of query tile
        4) sweeps key tiles 1 to 4; tiles 5 and 6 lie in its future and are never read.]],
      code = [[
        chalk.manual_seed(1)
        N, d, T = 24, 8, 4
        Q, K, V = chalk.randn(N, d), chalk.randn(N, d), chalk.randn(N, d)
        i = 13
        qi = Q:narrow(1, i, 1)]],
    },
    {
      title = "Query 13, one key tile at a time",
      text = [[
        The sweep: for each key tile, the scores, the new maximum, the rescaling factor
        e^(m_old - m) applied to what was accumulated, and the running sum.]],
      code = [[
        m, l, acc, steps = -math.huge, 0, chalk.zeros(1, d), {}
        print(" key tile   keys     tile max   running m   e^(m_old-m)   running l")
        for j = 1, (i + T - 1) // T do
          local first = (j - 1) * T + 1
          local cols = math.min(T, i - first + 1)           -- causal: keys first .. i only
          local s = qi:matmul(K:narrow(1, first, cols).T) / math.sqrt(d)
          local tile_max = s:max():item()
          local m_new = math.max(m, tile_max)
          local scale, p = math.exp(m - m_new), (s - m_new):exp()
          l, m = l * scale + p:sum():item(), m_new
          acc = acc * scale + p:matmul(V:narrow(1, first, cols))
          steps[j] = {tile_max = tile_max, m = m, l = l, scale = scale}
          print(("    %d      %2d..%-2d   %9.4f   %9.4f   %11.4f   %9.4f")
            :format(j, first, first + cols - 1, tile_max, m, scale, l))
        end
        o_online = acc / l
        o_full = F.attention(Q, K, V, {causal = true}):narrow(1, i, 1)
        diff_online = (o_online - o_full):abs():max():item()
        print(("O_13 from the sweep against full softmax: largest difference %.2e"):format(diff_online))]],
      check = function() assert(diff_online < 1e-5, "the online softmax should equal the full softmax") end,
    },
    {
      title = "The sweep, drawn",
      text = [[
        Query tile 4's row of key tiles: read (1-3), on the diagonal (4), skipped (5, 6), with
        query 13's running statistics under each.]],
      code = [[
        sweep_png = pc.tile_sweep{nq = 6, nk = 6, row = 4, causal = true, steps = steps,
          caption = "after the last tile: O_13 = acc / l (the statistics shown are query 13's)",
          file = pic("05_tile_sweep")}]],
    },
    {
      title = "Same answers, forward and backward",
      text = [[
        The flash op computes the output tile by tile; its gradient is a second op that
        recomputes the scores tile by tile (it stores nothing of size N x N from the forward,
        and recomputes even the row statistics). Both must agree with naive attention to
        rounding, here with 300 tokens, not a multiple of the 64-row tiles, 2 heads and a
        causal mask.]],
      code = [[
        chalk.manual_seed(2)
        local function leaf(...) return chalk.randn(...):to(dev):requires_grad_(true) end
        q3, k3, v3 = leaf(2, 300, 32), leaf(2, 300, 32), leaf(2, 300, 32)
        w3 = chalk.randn(2, 300, 32):to(dev)
        grads = {}
        for _, impl in ipairs{"naive", "flash"} do
          local o = F.attention(q3, k3, v3, {causal = true, impl = impl})
          local g = chalk.grad((o * w3):sum(), {q3, k3, v3})
          grads[impl] = {o = o, g}
        end
        diff_fb = {}
        diff_fb.o = (grads.naive.o - grads.flash.o):abs():max():item()
        for n, name in ipairs{"dq", "dk", "dv"} do
          diff_fb[name] = (grads.naive[1][n] - grads.flash[1][n]):abs():max():item()
        end
        print(("on %s, flash against naive: output %.2e, dq %.2e, dk %.2e, dv %.2e (max |diff|)")
          :format(dev, diff_fb.o, diff_fb.dq, diff_fb.dk, diff_fb.dv))]],
      check = function()
        for _, n in ipairs{"o", "dq", "dk", "dv"} do
          assert(diff_fb[n] < 1e-3, "flash and naive disagree on " .. n)
        end
      end,
    },
    {
      title = "Memory: the N x N matrices",
      text = [[
        Profile one forward and backward pass of each and draw what they allocate, on one
        scale. Naive attention materialises the scores, the masked scores and the
        probabilities, each N x N per head, and keeps them for the backward pass, which makes
        more of the same size. Flash allocates only its output, the gradients and tiles.]],
      -- pass(impl, n): the profile of one forward + backward; extra_peak(prof): its peak bytes
      setup = [[
        Nm, BH, dm = gpu and 4096 or 1024, gpu and 8 or 2, 64
        function pass(impl, n)
          local x = {}
          for t = 1, 3 do x[t] = chalk.randn(1, BH, n, dm):to(dev):requires_grad_(true) end
          local g = chalk.randn(1, BH, n, dm):to(dev)
          return chalk.profile(function()
            F.attention(x[1], x[2], x[3], {causal = true, impl = impl}):backward(g)
          end)
        end
        function extra_peak(prof)
          local _, peak = pc.live_series(prof:events(), dev)
          return peak
        end
        -- the measurement: both profiles, their peaks, N x N blocks ever live in flash
        prof_naive, prof_flash = pass("naive", Nm), pass("flash", Nm)
        nn_bytes, nd_bytes = BH * Nm * Nm * 4, BH * Nm * dm * 4
        peak_naive, peak_flash = extra_peak(prof_naive), extra_peak(prof_flash)
        big_flash = 0
        for _, s in ipairs(pc.live_series(prof_flash:events(), dev, nn_bytes)) do
          big_flash = math.max(big_flash, s.big)
        end]],
      code = [[
        print(("N = %d, %d heads, d = %d, f32 on %s: one N x N matrix for all heads = %s")
          :format(Nm, BH, dm, dev, pc.bytes(nn_bytes)))
        print(("extra memory at the peak: naive %s = %.1f N x N matrices;")
          :format(pc.bytes(peak_naive), peak_naive / nn_bytes))
        print(("                          flash %s = %.1f arrays of N x d")
          :format(pc.bytes(peak_flash), peak_flash / nd_bytes))
        print(("bytes in N x N blocks ever live in flash: %d"):format(big_flash))
        pc.memory_pair({name = "naive", events = prof_naive:events(), device = dev},
                       {name = "flash", events = prof_flash:events(), device = dev},
                       {big = nn_bytes, mark = nn_bytes, mark_label = "one N x N matrix (all heads)",
                        big_label = "N x N blocks (scores, probabilities, their gradients)",
                        title = ("memory allocated during forward + backward, N = %d"):format(Nm),
                        file = pic("05_memory_naive_vs_flash")})]],
      check = function()
        assert(peak_naive >= 2 * nn_bytes, "naive attention should hold several N x N matrices")
        assert(big_flash == 0, "flash attention should hold no N x N matrix")
        assert(peak_flash <= 12 * nd_bytes, "flash attention's extra memory should be a few N x d arrays")
      end,
    },
    {
      title = "Extra memory: O(N^2) against O(N)",
      text = [[
        Double N and measure again. The exponent log2(peak(2N) / peak(N)) says how memory
        grows: 2 for naive (quadratic), 1 for flash (linear: output, gradients and O(N) row
        statistics; the tiles themselves do not grow at all).]],
      -- peak_of(impl, n): the extra peak of one forward + backward at N = n, 2 heads
      setup = [[
        function peak_of(impl, n)
          local x = {}
          for t = 1, 3 do x[t] = chalk.randn(1, 2, n, 64):to(dev):requires_grad_(true) end
          local prof = chalk.profile(function()
            F.attention(x[1], x[2], x[3], {causal = true, impl = impl}):sum():backward()
          end)
          return extra_peak(prof)
        end]],
      code = [[
        sizes_mem = gpu and {1024, 2048, 4096, 8192}
          or quick and {128, 256, 512} or {256, 512, 1024, 2048}
        mem_rows = {}
        print("      N   naive peak    flash peak")
        for _, n in ipairs(sizes_mem) do
          mem_rows[#mem_rows + 1] = {n = n, naive = peak_of("naive", n), flash = peak_of("flash", n)}
          local r = mem_rows[#mem_rows]
          print(("%7d   %10s   %10s"):format(n, pc.bytes(r.naive), pc.bytes(r.flash)))
        end
        local a, b = mem_rows[#mem_rows - 1], mem_rows[#mem_rows]
        exp_naive = math.log(b.naive / a.naive, 2)
        exp_flash = math.log(b.flash / a.flash, 2)
        print(("growth exponents, log2(peak(%d) / peak(%d)):"):format(b.n, a.n))
        print(("naive memory growth exponent: %.2f (O(N^2))"):format(exp_naive))
        print(("flash memory growth exponent: %.2f (O(N))"):format(exp_flash))]],
      check = function()
        assert(exp_naive > 1.7, "naive memory should grow about quadratically")
        assert(exp_flash < 1.2, "flash memory should grow about linearly")
      end,
    },
    {
      title = "Memory traffic: Theta(Nd + N^2) against Theta(N^2 d^2 / M)",
      text = [[
        Bytes moved between main memory (HBM on a GPU) and the chip, counted by each op. Naive
        writes and reads back the N x N matrices, per head:
            scale q (2Nd) + q k^T (2Nd + N^2) + softmax (2N^2) + P v (N^2 + 2Nd) = 4N^2 + 6Nd
        Flash reads each query tile of Br rows once and streams K and V past it:
            Nd (Q) + Nd (O) + (N / Br) * 2Nd (K and V),  Br ~ M / d: Theta(N^2 d^2 / M).
        At d = Br = 64 the two are close (2N^2 against 4N^2); the gap widens as Br grows.]],
      -- traffic(impl, n, block): bytes the ops of one forward count; the two formulas
      setup = [[
        d_t, heads_t = 64, 2
        function traffic(impl, n, block)
          local q, k, v = chalk.randn(1, heads_t, n, d_t):to(dev), chalk.randn(1, heads_t, n, d_t):to(dev),
            chalk.randn(1, heads_t, n, d_t):to(dev)
          local prof = chalk.profile(function()
            chalk.no_grad(function() F.attention(q, k, v, {impl = impl, block_q = block}) end)
          end)
          local bytes = 0
          for _, e in ipairs(prof:events()) do if e.kind == "op" then bytes = bytes + e.bytes end end
          return bytes
        end
        function flash_formula(n, br) return 4 * heads_t * (2 * n * d_t + math.ceil(n / br) * n * 2 * d_t) end
        function naive_formula(n) return 4 * heads_t * (4 * n * n + 6 * n * d_t) end
        -- the measurement: traffic_rows[i] = {n, naive, flash (counted), naive_f, flash_f (formulas)}
        br_dev = gpu and 64 or 64
        sizes_t = gpu and {512, 1024, 2048, 4096, 8192}
          or quick and {256, 512} or {256, 512, 1024, 2048}
        traffic_rows = {}
        for _, n in ipairs(sizes_t) do
          local r = {n = n, naive = traffic("naive", n), flash = traffic("flash", n)}
          r.naive_f, r.flash_f = naive_formula(n), flash_formula(n, br_dev)
          traffic_rows[#traffic_rows + 1] = r
        end]],
      code = [[
        print("      N  naive counted  naive 4N^2+6Nd  flash counted  flash formula  naive/flash")
        for _, r in ipairs(traffic_rows) do
          print(("%7d  %13s  %14s  %13s  %13s  %10.1fx"):format(r.n, pc.bytes(r.naive),
            pc.bytes(r.naive_f), pc.bytes(r.flash), pc.bytes(r.flash_f), r.naive / r.flash))
        end
        dev_flash, dev_naive = 0, 0
        for _, r in ipairs(traffic_rows) do
          dev_flash = math.max(dev_flash, math.abs(r.flash - r.flash_f) / r.flash_f)
          dev_naive = math.max(dev_naive, math.abs(r.naive - r.naive_f) / r.naive_f)
        end
        print(("flash bytes counted vs formula, largest relative difference: %.2e")
          :format(dev_flash))
        print(("naive bytes counted vs formula, largest relative difference: %.2e")
          :format(dev_naive))]],
      check = function()
        assert(dev_flash <= 1e-9, "flash's counted bytes should equal the formula")
        assert(dev_naive <= 0.01, "naive's bytes should follow 4N^2 + 6Nd")
      end,
    },
    {
      title = "Flash's traffic falls as its tiles grow",
      text = [[
        The 1/M in Theta(N^2 d^2 / M): a bigger on-chip memory holds bigger query tiles, and
        each query tile costs one more pass over K and V. The CPU flash kernel takes its tile
        size as an option, so we can vary it and count: doubling Br nearly halves the bytes
        (the 2Nd for reading Q and writing O stays).]],
      code = [[
        n_tile = quick and 512 or 1024
        dev_saved = dev
        dev = "cpu"
        tile_rows = {}
        print("  query tile Br   bytes counted   formula 2Nd + (N/Br) 2Nd")
        for _, br in ipairs{16, 32, 64, 128, 256} do
          local counted = traffic("flash", n_tile, br)
          tile_rows[#tile_rows + 1] = {br = br, bytes = counted}
          print(("  %13d   %13s   %13s")
            :format(br, pc.bytes(counted), pc.bytes(flash_formula(n_tile, br))))
        end
        dev = dev_saved
        ratio_16_256 = tile_rows[1].bytes / tile_rows[#tile_rows].bytes
        print(("flash bytes at Br 16 over Br 256: %.1f (K and V are read N/Br times)")
          :format(ratio_16_256))]],
      check = function() assert(ratio_16_256 > 8, "bytes should fall roughly as 1/Br") end,
    },
    {
      title = "Time",
      text = [[
        Forward and forward+backward, naive against flash (on a GPU N = 512 ... 8192, 8 heads,
        d = 64, causal, f32, bf16 flash beside; times from the profile). Both grow as N^2:
        naive's time moves the N x N matrices, flash's is arithmetic on the chip. On a CPU
        naive's matmuls run in OpenBLAS on every core and flash is plain C on one: there
        naive is often faster, and what flash saves is memory.]],
      timing = " ms",
      -- the measurement: time_rows[i] = {n, naive, flash, naive_train, flash_train [, bf16]} in ms
      setup = [[
        sizes_time = gpu and {512, 1024, 2048, 4096, 8192} or quick and {128, 256} or {256, 512, 1024}
        heads_time = gpu and 8 or 1
        time_rows = {}
        for _, n in ipairs(sizes_time) do
          local x = {}
          for t = 1, 3 do x[t] = chalk.randn(1, heads_time, n, 64):to(dev):requires_grad_(true) end
          local g = chalk.randn(1, heads_time, n, 64):to(dev)
          local r = {n = n}
          for _, impl in ipairs{"naive", "flash"} do
            r[impl] = time_ms(function()
              chalk.no_grad(function() F.attention(x[1], x[2], x[3], {causal = true, impl = impl}) end)
            end)
            r[impl .. "_train"] = time_ms(function()
              for t = 1, 3 do x[t].grad = nil end
              F.attention(x[1], x[2], x[3], {causal = true, impl = impl}):backward(g)
            end)
          end
          if gpu then
            local xb = {}
            for t = 1, 3 do xb[t] = x[t]:detach():to("bf16") end
            r.bf16 = time_ms(function() F.attention(xb[1], xb[2], xb[3], {causal = true, impl = "flash"}) end)
          end
          time_rows[#time_rows + 1] = r
        end]],
      code = [[
        print("      N   naive fwd   flash fwd   naive fwd+bwd   flash fwd+bwd"
          .. (gpu and "   flash bf16 fwd" or ""))
        for _, r in ipairs(time_rows) do
          print(("%7d   %6.3f ms   %6.3f ms   %10.3f ms   %10.3f ms"):format(r.n, r.naive, r.flash,
            r.naive_train, r.flash_train) .. (gpu and ("   %11.3f ms"):format(r.bf16) or ""))
        end
        local series = {}
        for _, s in ipairs{{"naive fwd", "naive"}, {"flash fwd", "flash"},
            {"naive fwd+bwd", "naive_train"}, {"flash fwd+bwd", "flash_train"},
            gpu and {"flash bf16 fwd", "bf16"} or nil} do
          local xs, ys = {}, {}
          for _, r in ipairs(time_rows) do xs[#xs + 1], ys[#ys + 1] = r.n, r[ s[2] ] end
          series[#series + 1] = {name = s[1], x = xs, y = ys, dashed = s[2]:match("train") ~= nil}
        end
        pc.loglog(series, {title = ("attention time on %s (%d head%s, d = 64, causal)"):format(
          gpu and chalk.cuda.get_device_name() or "the CPU", heads_time, heads_time > 1 and "s" or ""),
          xlabel = "N (tokens)", ylabel = "ms", xticks = sizes_time, file = pic("05_time")})
      ]],
    },
    {
      title = "Recorded on an H100",
      gpu = false,
      text = [[
        What this lesson measured on an NVIDIA H100 (8 heads, d = 64, causal, f32), from
        lessons/gpu_runs/05_flash_attention-H100.log (pictures beside it): the memory
        growth exponents and the forward times at N = 512 ... 8192.]],
      setup = "        local lessons_dir = " .. ("%q"):format(lessons_dir) .. "\n" .. [[
        recorded = {}
        local log = lessons_dir .. "/gpu_runs/05_flash_attention-H100.log"
        for line in io.lines(log) do
          if line:match("memory growth exponent:") or line:match("^extra memory at the peak")
             or line:match("^ +%d+ +[%d.]+ ms +[%d.]+ ms") or line:match("^ +N +naive fwd") then
            if not line:find("print(", 1, true) then recorded[#recorded + 1] = (line:gsub("; flash", ";\n  flash")) end
          end
        end]],
      code = [[
        for _, line in ipairs(recorded) do print(line) end]],
      check = function() assert(#recorded >= 5, "the recorded H100 figures") end,
    },
    {
      title = "Against PyTorch",
      text = [[
        On a GPU machine, bench/attention/run.sh times chalk's naive and flash attention
        against PyTorch's scaled_dot_product_attention (which picks FlashAttention-2 or its
        memory-efficient kernel) on the same shapes, in f32 and bf16, both with CUDA events
        around the call, and writes a table (bench/results/attention-*.md). In bf16 chalk
        runs kernels/flash_tc.cu, FlashAttention-2 on the tensor cores (mma.sync, ldmatrix,
        cp.async); its f32 kernel is written to be read in a lecture. The remaining gap is
        the subject of lesson 6.]],
    },
  },
}
