-- 04_cuda_matmul.lua: module 4, the GPU and CUDA: the matmul ladder from the textbook kernel to
-- cuBLAS (kernels/ladder.cu), each rung's source shown from the file, timed at several sizes.
-- Numbers to reproduce (lessons.md): global loads fall from 2N^3 toward 2N^3/T; arithmetic
-- intensity and GFLOP/s measured per rung (and the fraction of cuBLAS). Pictures: the roofline
-- with the device's measured bandwidth and FLOP/s and each rung a point; a trace of H2D copies,
-- kernels and the D2H copy. Without a GPU the lesson says so, explains every rung and runs the
-- CPU ladder (core/cpu/matmul_ladder.c), where caches do what shared memory does on the GPU, with
-- its own roofline. CHALK_LESSON_QUICK=1 keeps the CPU sizes small (`make test` runs it so).
local here = debug.getinfo(1, "S").source:match("^@(.*)/lessons/[^/]*$")
local ladder_file = (here and here .. "/" or "") .. "kernels/ladder.cu"

-- One step per rung: its narration, and code that shows its source and times it.
local function rung_step(title, impls, text)
  local list = {}
  for _, impl in ipairs(impls) do list[#list + 1] = ("%q"):format(impl) end
  return {
    title = title,
    gpu = true, -- without a GPU, "Recorded on an H100" shows what these steps measured there
    text = text,
    code = ([[
      for _, impl in ipairs{%s} do
        show_rung(impl)
        run_rung(impl)
      end]]):format(table.concat(list, ", ")),
  }
end

return {
  title = "The GPU and CUDA: the matmul ladder",
  module = 4,
  -- Lines that hold measured times and rates (they differ on every run; the replay check skips them).
  timing = { "GB/s", "FLOP/s", "%d ms", "%d us" },
  steps = {
    {
      title = "Where this runs",
      text = [[
        A matrix product C = A B of n x n matrices does 2n^3 floating-point operations on
        3n^2 numbers: every number is used n times. How fast it runs depends on how often a
        number is fetched from the GPU's main memory (HBM) before it is used. We climb a
        ladder of CUDA kernels, each changing one thing, from one thread per output to
        cuBLAS, and measure each. The kernels are in kernels/ladder.cu; each step shows the
        part that changed.]],
      code = [[
        if gpu then print("GPU: " .. chalk.cuda.get_device_name() .. ": every rung is timed on it")
        else print("No GPU here: the GPU's steps are replaced by the figures recorded on an H100") end]],
      -- plumbing: the rung's source from kernels/ladder.cu, timing helpers, the intensity model
      setup = "        ladder_file = " .. ("%q"):format(ladder_file) .. "\n" .. [[
        pc = require "chalk.perfcharts"
        gpu = chalk.cuda.is_available()
        kit = require "chalk.lessonkit"
        pic = kit.pic -- PNG, or CHALK_LESSON_FORMAT's (dot: rendered elsewhere with the "nop" engine)
        quick = os.getenv("CHALK_LESSON_QUICK") == "1"
        kit.gpu_banner("every rung below runs and is timed on it",
          "Every rung is explained and its source shown; the timings, the GPU roofline and the",
          "trace need CUDA. The last steps run the CPU ladder, where caches play shared memory.")
        -- the source of one rung: the lines from its "==== rung" banner to the next banner
        function rung_source(impl)
          local file = impl:match("^wgmma") and ladder_file:gsub("ladder%.cu$", "ladder_tc.cu") or ladder_file
          local f = assert(io.open(file), "cannot read " .. file)
          local text = f:read("a")
          f:close()
          local banner = {naive = "rung 1:", coalesced = "rung 2:", tiled = "rung 3:", register2d = "rung 4:",
                          vectorized = "rung 5:", warptile = "rung 6:", wmma_tf32 = "rungs 7 and 8:",
                          wmma_bf16 = "rungs 7 and 8:", wgmma_tf32 = "rungs 9 and 10:",
                          wgmma_bf16 = "rungs 9 and 10:", cublas = "cuBLAS rungs"}
          local lines, on = {}, false
          for line in text:gmatch("([^\n]*)\n") do
            if line:find("/* ====", 1, true) or line:find("/* ----", 1, true) then
              if on then break end
              on = banner[impl] and line:find(banner[impl], 1, true) ~= nil
            end
            if on then lines[#lines + 1] = line end
          end
          return lines
        end
        shown = {}
        function show_rung(impl)
          local key = impl:gsub("_bf16$", "_tf32")
          if shown[key] then return end
          shown[key] = true
          local lines = rung_source(impl)
          print(("---- kernels/%s, %s (%d lines) ----"):format(impl:match("^wgmma") and "ladder_tc.cu" or "ladder.cu",
                                                              impl, #lines))
          for i = 1, math.min(#lines, 12) do print("  " .. lines[i]) end
          if #lines > 12 then print(("  ... (%d more lines in the file)"):format(#lines - 12)) end
        end
        -- device time of fn: median over reps runs of the ops' own times (GPU times on the GPU)
        function time_ms(fn, reps)
          fn()
          local t = {}
          for r = 1, reps or 3 do t[r] = chalk.profile(fn):summary().ops_ms end
          table.sort(t)
          return t[(#t + 1) // 2]
        end
        -- the shortest of reps runs: for the ceilings, what the machine can do at best
        function best_ms(fn, reps)
          fn()
          local best = math.huge
          for r = 1, reps or 5 do best = math.min(best, chalk.profile(fn):summary().ops_ms) end
          return best
        end
        -- T of each rung: a number fetched from global memory is used T times, so the rung
        -- loads 2n^3/T numbers (tiles of T x T; warptile runs 128 x 128 tiles once they give
        -- every SM of an H100/H200 (132) a block, n >= 2048, smaller ones below; cuBLAS at best
        -- reads each matrix once)
        function tile_of(impl, n)
          if impl == "naive" or impl == "coalesced" then return 1 end
          if impl == "tiled" then return 32 end
          if impl == "warptile" then return n >= 2048 and 128 or 64 end
          if impl:match("^cublas") then return n end
          return 128
        end
        function intensity(impl, n) return 2 * n ^ 3 / (4 * (2 * n ^ 3 / tile_of(impl, n) + n * n)) end
        impls = chalk.cuda.matmul_impls()
        results, inputs = {}, {}
        function run_rung(impl)
          if not gpu then
            print(("(%s needs CUDA: not timed here)"):format(impl))
            return
          end
          results[impl] = {}
          for _, n in ipairs(sizes) do
            inputs[n] = inputs[n] or {chalk.randn(n, n):cuda(), chalk.randn(n, n):cuda()}
            local a, b = inputs[n][1], inputs[n][2]
            local c
            local ms = time_ms(function() c = a:matmul(b, {impl = impl}) end, 3)
            local ref = a:matmul(b, {impl = "cublas"})
            local err = (c - ref):abs():max():item() / ref:abs():max():item()
            local r = {ms = ms, flops = 2 * n ^ 3 / (ms / 1e3), err = err}
            results[impl][n] = r
            print(("  %-11s n = %5d  %9.3f ms  %8.0f GFLOP/s  %5.1f%% of cuBLAS f32   max rel. error %.1e")
              :format(impl, n, ms, r.flops / 1e9, 100 * r.flops / cublas_at[n], err))
          end
          local n = sizes[#sizes]
          print(("  global loads: 2n^3/%d = %.3g numbers at n = %d; arithmetic intensity %.2f FLOP/byte")
            :format(tile_of(impl, n), 2 * n ^ 3 / tile_of(impl, n), n, intensity(impl, n)))
        end
        function ladder_table()
          local out = {("%-12s"):format("rung")}
          for _, n in ipairs(sizes) do out[1] = out[1] .. ("   n=%-5d ms  GFLOP/s   cuBLAS"):format(n) end
          out[1] = out[1] .. ("   loads/elem  FLOP/B (n=%d)"):format(sizes[#sizes])
          for _, impl in ipairs(impls) do
            if results[impl] then
              local row = ("%-12s"):format(impl)
              for _, n in ipairs(sizes) do
                local r = results[impl][n]
                row = row .. ("  %9.3f %9.0f %7.1f%%"):format(r.ms, r.flops / 1e9, 100 * r.flops / cublas_at[n])
              end
              local n = sizes[#sizes]
              out[#out + 1] = row .. ("  %11s  %10.2f"):format(("2n/%d"):format(tile_of(impl, n)), intensity(impl, n))
            end
          end
          return table.concat(out, "\n")
        end]],
    },
    {
      title = "The two ceilings of this machine",
      text = [[
        A kernel is limited by arithmetic or by memory traffic. Measure both ceilings: the
        bandwidth of a large device-to-device copy (bytes read plus bytes written, over the
        time) and the FLOP/s of cuBLAS on a large product, in f32 on the CUDA cores and with
        the tensor cores (TF32 and bf16 inputs). Every rung will be placed under these.]],
      gpu = true,
      code = [[
        sizes = quick and {512, 1024} or {1024, 2048, 4096}
        big = 8192
        if gpu then
          local x = chalk.randn(64 * 1024 * 1024):cuda()         -- 256 MB
          bandwidth = 2 * 4 * x:numel() / (best_ms(function() local y = x:clone() end, 5) / 1e3)
          local a, b = chalk.randn(big, big):cuda(), chalk.randn(big, big):cuda()
          peak = {}
          for _, impl in ipairs{"cublas", "cublas_tf32", "cublas_bf16"} do
            peak[impl] = 2 * big ^ 3 / (best_ms(function() local c = a:matmul(b, {impl = impl}) end, 3) / 1e3)
          end
          print(("HBM bandwidth (copy, read + write):  %8.0f GB/s"):format(bandwidth / 1e9))
          print(("cuBLAS f32   %dx%d:          %8.1f TFLOP/s"):format(big, big, peak.cublas / 1e12))
          print(("cuBLAS TF32  (tensor cores):        %8.1f TFLOP/s"):format(peak.cublas_tf32 / 1e12))
          print(("cuBLAS bf16  (tensor cores):        %8.1f TFLOP/s"):format(peak.cublas_bf16 / 1e12))
          print(("ridge point (f32): %.1f FLOP per byte: a kernel must do that much work per byte it moves")
            :format(peak.cublas / bandwidth))
          cublas_at = {}
          for _, n in ipairs(sizes) do
            local a, b = chalk.randn(n, n):cuda(), chalk.randn(n, n):cuda()
            cublas_at[n] = 2 * n ^ 3 / (time_ms(function() local c = a:matmul(b, {impl = "cublas"}) end, 5) / 1e3)
          end
        else
          print("(needs CUDA: the CPU's ceilings are measured in the CPU steps at the end)")
        end]],
    },
    rung_step("Rung 1: one thread per output (naive)", {"naive"}, [[
        Each thread computes one element of C: a loop of n multiply-adds over a row of A and
        a column of B. That is 2n loads per output, 2n^3 loads in all, and every load goes
        to global memory. Worse, threadIdx.x runs down a column of C, so the 32 threads of a
        warp read 32 different rows of A: 32 separate memory transactions per load, each
        bringing 32 bytes to use 4.]]),
    rung_step("Rung 2: coalescing", {"coalesced"}, [[
        Swap x and y: a warp now runs along a row of C. Its 32 threads read the same element
        of A (one broadcast) and 32 neighbouring elements of B, one 128-byte transaction. The
        arithmetic and the number of loads are the same (2n^3); the memory transactions drop
        by up to 32x. Coalescing is the first rule of CUDA: neighbouring threads touch
        neighbouring addresses.]]),
    rung_step("Rung 3: shared-memory tiling", {"tiled"}, [[
        A block of 32 x 32 threads computes a 32 x 32 tile of C. It walks K in steps of 32:
        the block loads a 32 x 32 tile of A and one of B into shared memory (on-chip, ~100x
        faster than HBM), synchronises, and every thread reads its row and column from there.
        Each number fetched from global memory is now used by 32 threads: global loads fall
        from 2n^3 to 2n^3 / 32. This is the reuse argument of the whole course.]]),
    rung_step("Rung 4: register blocking", {"register2d"}, [[
        Shared memory is fast but not free: in rung 3 every multiply-add needs two
        shared-memory loads. Here a block computes a 128 x 128 tile and each thread an 8 x 8
        sub-tile in registers: per step of k it loads 8 values of A and 8 of B and does 64
        multiply-adds, 4 per shared load. Global loads fall to 2n^3 / 128.]]),
    rung_step("Rung 5: vector loads", {"vectorized"}, [[
        The same tiles, fetched with 16-byte instructions: float4 loads from global memory (a
        quarter of the load instructions), A's tile stored transposed in shared memory so the
        inner loop reads both operands as float4, and C written with float4 stores. Fewer
        instructions issued per byte moved.]]),
    rung_step("Rung 6: warp tiling", {"warptile"}, [[
        A tile between the block's and the thread's: each warp owns a region of C, so the 32
        threads of a warp read few distinct shared-memory addresses (broadcasts, no bank
        conflicts). Shared tiles are double-buffered and the next tile's global loads are
        issued before this tile's multiply-adds, so memory latency hides behind arithmetic.
        This is about as far as the CUDA cores go; cuBLAS f32 is close.]]),
    rung_step("Rungs 7-8: tensor cores", {"wmma_tf32", "wmma_bf16"}, [[
        Tensor cores multiply small matrix fragments (16 x 16 x 8 in TF32, 16 x 16 x 16 in
        bf16) in one instruction per warp, many times faster than the CUDA cores, at lower
        input precision: TF32 keeps 10 bits of mantissa, bf16 8 (accumulation stays f32).
        The WMMA API loads fragments from shared memory; the tiling above still decides how
        often global memory is touched.]]),
    rung_step("Rungs 9-10: Hopper's warpgroup MMA", {"wgmma_tf32", "wgmma_bf16"}, [[
        WMMA hides how the tensor cores are fed. Hopper's wgmma lets 4 warps (a warpgroup)
        multiply a 64 x 256 tile straight out of shared memory, asynchronously: the
        instruction reads A and B through descriptors of a 128-byte-swizzled layout (no bank
        conflicts, no register copies of the operands), while cp.async fills the next stages
        of a 4-deep ring. Two warpgroups make a 128 x 256 block tile; both operands are packed
        K-major (and rounded) first, as cuBLAS's bf16 rung converts its inputs too.]]),
    rung_step("The reference: cuBLAS", {"cublas", "cublas_tf32", "cublas_bf16"}, [[
        cuBLAS picks among hand-tuned kernels per size and device: larger tiles, deeper
        pipelines (asynchronous copies from global to shared memory), and on Hopper the
        wgmma instructions and the tensor memory accelerator. chalk's matmul op uses it.]]),
    {
      title = "Recorded on an H100",
      gpu = false,
      text = [[
        The rungs need CUDA, so here is what they measured on an NVIDIA H100 (80 GB HBM3):
        time at n = 4096, GFLOP/s and the fraction of cuBLAS f32, beside the model: global
        loads per element of C fall from 2n (one thread per output) to 2n/T for tiles of T,
        and the arithmetic intensity those loads allow rises with T. The kernels are in
        kernels/ladder.cu; the roofline and the trace are lessons/gpu_runs/04_*.png.]],
      setup = [[
        -- the ladder table of the recorded run: rung, then (ms, GFLOP/s, %) per size, loads, FLOP/B
        recorded = {}
        for line in io.lines((ladder_file:gsub("kernels/ladder%.cu$", "lessons/gpu_runs/04_cuda_matmul-H100.log"))) do
          local f = {}
          for w in line:gmatch("%S+") do f[#f + 1] = w end
          if #f == 12 and tonumber(f[2]) and f[11]:match("^2n/") then recorded[#recorded + 1] = f end
        end]],
      code = [[
        print("rung          n=4096 ms   GFLOP/s   of cuBLAS   loads/elem   FLOP/B   (recorded)")
        for _, f in ipairs(recorded) do
          print(("%-12s %10s %9s %11s %12s %8s"):format(f[1], f[8], f[9], f[10], f[11], f[12]))
        end]],
      check = function() assert(#recorded >= 8, "the recorded H100 ladder has a row per rung") end,
    },
    {
      title = "The ladder",
      gpu = true,
      text = [[
        All rungs side by side: time, GFLOP/s and the fraction of cuBLAS f32 at each size,
        and the counts behind them at n = the largest size: global loads per element of C
        (2n for one thread per output, 2n/T for tiles of T), and the arithmetic intensity
        those loads allow, 2n^3 FLOPs over the bytes of loads and stores.]],
      code = [[
        if not gpu then
          print("(needs CUDA: the CPU ladder follows)")
        else
          print(ladder_table())
        end]],
    },
    {
      title = "The roofline",
      gpu = true,
      text = [[
        Each rung as a point: x is its arithmetic intensity (FLOPs per byte it requests
        from global memory, counted from its code), y its measured FLOP/s at the largest
        size. The slanted roof is the measured bandwidth times the intensity; the flat
        roofs the measured cuBLAS rates. A point below the slanted roof is memory-bound; a
        point above it is being served by the caches (L1 and L2 catch the re-reads that the
        intensity counts); a point near a flat roof is compute-bound.]],
      code = [[
        if not gpu then
          print("(needs CUDA: the CPU roofline follows)")
        else
          local points = {}
          for _, impl in ipairs(impls) do
            local r = results[impl] and results[impl][ sizes[#sizes] ]
            if r then points[#points + 1] = {name = impl, intensity = intensity(impl, sizes[#sizes]), flops = r.flops} end
          end
          pc.roofline{bandwidth = bandwidth, title = ("matmul ladder on %s, n = %d"):format(
            chalk.cuda.get_device_name(), sizes[#sizes]),
            ceilings = {{name = "f32 (cuBLAS)", flops = peak.cublas}, {name = "TF32 tensor cores (cuBLAS)", flops = peak.cublas_tf32},
                        {name = "bf16 tensor cores (cuBLAS)", flops = peak.cublas_bf16}},
            points = points, xlabel = "arithmetic intensity (FLOP per byte requested from global memory)",
            file = pic("04_roofline")}
        end]],
    },
    {
      title = "A trace: copies and kernels",
      gpu = true,
      text = [[
        The whole trip: copy A and B from the host (H2D), run three rungs on them, copy C back
        (D2H). Copies between ordinary (pageable) host memory and the GPU cross PCIe at a
        few GB/s, against the HBM's thousands: for one product of this size, moving the data
        costs more than all three kernels. The D2H bar starts when the host asks for C, so it
        also holds the wait for the kernels queued before it. Keep data on the GPU.]],
      code = [[
        if not gpu then
          print("(needs CUDA)")
        else
          local n = 4096
          local a_host, b_host = chalk.randn(n, n), chalk.randn(n, n)
          trace = chalk.profile(function()
            local a, b = a_host:cuda(), b_host:cuda()
            local c
            for _, impl in ipairs{"tiled", "warptile", "cublas"} do c = a:matmul(b, {impl = impl}) end
            c_host = c:cpu()
          end)
          print(trace)
          viz.trace(trace, {file = pic("04_trace"), title = ("H2D, three matmul kernels, D2H (n = %d)"):format(n)})
        end]],
    },
    {
      title = "On the CPU: caches instead of shared memory",
      text = [[
        A CPU has no shared memory to manage, but the same argument holds for its caches.
        core/cpu/matmul_ladder.c has four rungs: naive (i-j-k: the inner loop walks down a
        column of B, one cache line per number, like uncoalesced loads), reordered (i-k-j:
        rows of B and C, whole cache lines used, like coalescing), tiled (64 x 64 tiles that
        stay in the cache while each number is reused 64 times, like shared-memory tiling)
        and OpenBLAS (packing, register blocking and vector instructions, like cuBLAS). Each
        rung, on either device, is an implementation of the one matmul op: a:matmul(b,
        {impl = "tiled"}) runs it through the op table like any op (its event, cost and
        gradient), and chalk.ops() lists every row's implementations.
        First the CPU's own ceilings: the bandwidth of a copy (on one core, as the naive,
        reordered and tiled rungs run) and OpenBLAS's FLOP/s (on every core).]],
      code = [[
        local x = chalk.randn(16 * 1024 * 1024)                 -- 64 MB
        cpu_bandwidth = 2 * 4 * x:numel() / (best_ms(function() local y = x:clone() end, 5) / 1e3)
        local nb = quick and 512 or 2048
        local a, b = chalk.randn(nb, nb), chalk.randn(nb, nb)
        cpu_peak = 2 * nb ^ 3
          / (best_ms(function() local c = a:matmul(b, {impl = "blas"}) end, 5) / 1e3)
        print(("CPU copy bandwidth (read + write): %6.1f GB/s (one core)"):format(cpu_bandwidth / 1e9))
        print(("OpenBLAS sgemm %dx%d:            %6.1f GFLOP/s"):format(nb, nb, cpu_peak / 1e9))]],
    },
    {
      title = "The CPU ladder",
      text = [[
        Each rung at several sizes, checked against OpenBLAS. The counts: naive loads 2n
        numbers per output (2n^3 in all) with n cache lines touched for B alone; tiled loads
        each 64 x 64 tile of A and B once per tile of C, 2n^3 / 64 numbers from memory. Once
        B no longer fits in the cache (a 1024 x 1024 f32 matrix is 4 MB, more than most L2s)
        the reordered loop re-reads B from memory for every row of A; the tiled one does not.]],
      code = [[
        print("loads from memory (model): naive, reordered 2n^3; tiled 2n^3/64; OpenBLAS 2n^3/n")
        for _, n in ipairs(cpu_sizes) do
          local row = {}
          for _, impl in ipairs(cpu_impls) do
            local r = cpu_results[impl][n]
            row[#row + 1] = ("%s %s"):format(impl, r and ("%.2f"):format(r.flops / 1e9) or "-")
          end
          print(("n = %4d: %s GFLOP/s"):format(n, table.concat(row, ", ")))
        end
        local n = cpu_sizes[#cpu_sizes]
        print(("intensity at n = %d (FLOP/B): naive %.2f, tiled %.2f, OpenBLAS %.2f"):format(n,
          intensity_model(n, 1), intensity_model(n, 64), intensity_model(n, n)))
        print(("largest relative difference from OpenBLAS: %.2e"):format(cpu_err))
        print(("loads naive/tiled at n = %d: %.0f (T = 64)"):format(n, (2 * n ^ 3) / (2 * n ^ 3 / 64)))]],
      -- the measurement: every rung at every size, checked against OpenBLAS (cpu_results)
      setup = [[
        function intensity_model(n, T) return 2 * n ^ 3 / (4 * (2 * n ^ 3 / T + n * n)) end
        cpu_sizes = quick and {128, 256} or {256, 512, 1024, 2048}
        cpu_impls = {"naive", "reordered", "tiled", "blas"}
        cpu_results, cpu_err = {}, 0
        for _, n in ipairs(cpu_sizes) do
          local a, b = chalk.randn(n, n), chalk.randn(n, n)
          local ref = a:matmul(b, {impl = "blas"})
          for _, impl in ipairs(cpu_impls) do
            if not (impl == "naive" and n > 512) then     -- naive at 1024+ takes tens of seconds
              local c
              local ms = time_ms(function() c = a:matmul(b, {impl = impl}) end, n >= 1024 and 1 or 3)
              cpu_err = math.max(cpu_err, (c - ref):abs():max():item() / ref:abs():max():item())
              local T = impl == "tiled" and 64 or impl == "blas" and n or 1
              local loads = 2 * n ^ 3 / T
              local r = {ms = ms, flops = 2 * n ^ 3 / (ms / 1e3), loads = loads,
                         intensity = 2 * n ^ 3 / (4 * (loads + n * n))}
              cpu_results[impl] = cpu_results[impl] or {}
              cpu_results[impl][n] = r
            end
          end
        end
      ]],
      check = function() assert(cpu_err < 1e-4, "every CPU rung should compute the same product") end,
    },
    {
      title = "The CPU roofline",
      text = [[
        The CPU rungs under the CPU's measured ceilings, at the largest size each ran. The
        same picture as on the GPU, two orders of magnitude lower. The x of a point counts
        every load as a trip to memory; a point above the slanted roof is one whose loads the
        caches served (B fits in L2 at small n). Tiling raises the intensity 64-fold, so it
        stays under the roof even when nothing fits; OpenBLAS blocks for every level of the
        hierarchy and the registers, and reaches the compute roof.]],
      code = [[
        local points = {}
        for _, impl in ipairs(cpu_impls) do
          local best
          for _, n in ipairs(cpu_sizes) do
            if cpu_results[impl][n] then best = cpu_results[impl][n] end
          end
          if best then
            points[#points + 1] = {name = "cpu " .. impl, intensity = best.intensity,
                                   flops = best.flops}
          end
        end
        for _, r in pairs(cpu_results.blas) do cpu_peak = math.max(cpu_peak, r.flops) end
        pc.roofline{bandwidth = cpu_bandwidth, ceilings = {{name = "OpenBLAS sgemm", flops = cpu_peak}},
          points = points, title = "matmul ladder on this CPU",
          xlabel = "arithmetic intensity (FLOP per byte requested from memory, model)",
          file = pic("04_roofline_cpu")}]],
    },
  },
}
