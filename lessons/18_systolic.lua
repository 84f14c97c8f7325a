-- 18_systolic.lua: module 18, the TPU's systolic array: a cycle-level grid of multiply-accumulate
-- cells with skewed inputs (sim.systolic), its wavefront, its folds, its utilisation, and the
-- weight-, input- and output-stationary dataflows side by side.
-- Numbers to reproduce (lessons.md): result equals matmul exactly (integers) and to 1e-6 (floats);
-- cycles per fold 2R + C + T - 2; utilisation T/(2R+C+T-2); folds ceil(./R) x ceil(./C).
-- Pictures: the wavefront frames and their summary, utilisation vs size, dataflows side by side.
return {
  title = "The TPU's systolic array",
  module = 18,
  -- diff(P, A, B): the largest |P - A @ B|, the product taken in f64 (integers exact up to 2^53)
  setup = [[
    function diff(P, A, B)
      return (P:to("f64") - A:to("f64"):matmul(B:to("f64"))):abs():max():item()
    end]],
  steps = {
    {
      title = "A 4 x 4 weight-stationary grid",
      text = [[
        A TPU's matrix unit (MXU) is a grid of R x C multiply-accumulate cells. Weight-stationary:
        each cell holds one weight of B; rows of A enter from the left, one grid row one cycle
        later than the row above (the skew); a cell multiplies the value passing right by its
        weight and adds the partial sum coming from above; sums leave the bottom row. The
        simulator advances every cell's registers one cycle at a time and counts what happens.]],
      code = [[
        chalk.manual_seed(18)
        A = chalk.randint(-4, 5, {6, 4}); B = chalk.randint(-4, 5, {4, 4})  -- integers, i64
        grid = sim.systolic(4, 4, {dataflow = "weight"})
        P, st = grid:matmul(A, B)
        exact = diff(P, A, B) == 0
        law = grid:law(6, 4, 4)    -- A is M x K = 6 x 4: T = M = 6 rows streamed
        print(grid)
        print(("result equals A @ B exactly: %s"):format(exact))
        print(("cycles measured %d; law 2R + C + T - 2 = %d"):format(st.cycles, law.cycles_per_fold))
        print(("utilisation measured %.4f; law T/(2R+C+T-2) = %.4f")
          :format(st.utilization, law.utilization))]],
      check = function() assert(exact and st.cycles == law.cycles_per_fold, "exact product, 2R+C+T-2 cycles") end,
    },
    {
      title = "The wavefront, cycle by cycle",
      text = [[
        Cycles 1-4 shift the weights in from the top (R cycles). Then a diagonal wavefront of busy
        cells sweeps the grid: row t of A reaches cell (i, j) at cycle t + i + j. It takes
        R + C - 2 cycles to fill and as many to empty; only while T rows follow each other is the
        grid full. Hence 2R + C + T - 2 cycles for R*C*T multiply-accumulates.]],
      code = [[
        wave, wave_summary = grid:frames(A, B, {file = "18_wave.png"})
        print(("busy cell-cycles %d = R*C*T = %d"):format(st.macs, 4 * 4 * 6))]],
      check = function() assert(st.macs == 96, "R*C*T MACs") end,
    },
    {
      title = "Folding a larger product over the grid",
      text = [[
        A product larger than the grid is cut into tiles ("folds"), each run as above. With weights
        stationary B (K x N) is tiled: ceil(K/R) x ceil(N/C) folds of T = M rows each; partial sums
        of the K tiles add up in accumulators. An edge tile with c < C columns ends c - C cycles
        sooner (its last sum leaves from column c), so the formula is exact for full folds only.
        Folds run back to back here; a real MXU double-buffers weights, hiding the R load cycles.]],
      code = [[
        A2 = chalk.randint(-9, 10, {7, 10}); B2 = chalk.randint(-9, 10, {10, 9})
        for _, df in ipairs{"weight", "input", "output"} do
          local g = sim.systolic(4, 4, {dataflow = df})
          local P2, s = g:matmul(A2, B2)
          local l = g:law(7, 10, 9)
          print(("%-6s folds %d (law %d = ceil(%d/4) x ceil(%d/4)), cycles %d (law %d), exact %s")
            :format(df, s.folds, l.folds, l.rows, l.cols, s.cycles, l.cycles, diff(P2, A2, B2) == 0))
          print(("       first fold %d cycles, 2R+C+T-2 with T = %d: %d"):format(
            s.first_fold_cycles, l.T, l.cycles_per_fold))
        end]],
    },
    {
      title = "Floats",
      text = [[
        The cells compute in double precision here, in a different order from BLAS (each sum runs
        down a column, tile after tile), so floats agree to rounding, not bit for bit.]],
      code = [[
        Af, Bf = chalk.randn(37, 29, {dtype = "f64"}), chalk.randn(29, 41, {dtype = "f64"})
        Pf, stf = sim.systolic(8, 8, {dataflow = "output"}):matmul(Af, Bf)
        float_err = diff(Pf, Af, Bf)
        print(("floats: largest difference to A @ B %.2g (law: within 1e-6)"):format(float_err))
        print(("folds %d = ceil(37/8) x ceil(41/8)"):format(stf.folds))]],
      check = function() assert(float_err <= 1e-6 and stf.folds == 30) end,
    },
    {
      title = "Utilisation against matrix size on a 128 x 128 grid",
      text = [[
        A v5e-like MXU is 128 x 128. For one fold (K = N = 128) utilisation is T/(2R+C+T-2): the
        fill and drain cost 3R - 2 = 382 cycles whatever T is, so small batches waste the grid
        and only T in the thousands comes close to 1. Points are simulated, the line is the law.]],
      code = [[
        big = sim.systolic(128, 128, {dataflow = "weight"})
        Wb = chalk.randint(-2, 3, {128, 128})
        util = {}
        for _, T in ipairs{16, 64, 256, 1024, 2048} do
          local _, s = big:matmul(chalk.randint(-2, 3, {T, 128}), Wb)
          util[#util + 1] = {x = T, measured = s.utilization, law = big:law(T, 128, 128).utilization}
          print(("T = %4d: utilisation measured %.4f, law %.4f")
            :format(T, s.utilization, util[#util].law))
        end
        sim.plot_utilization(util, {file = "18_utilization.png", title = "one fold of a 128 x 128 grid",
                                    curve = function(T) return big:law(T, 128, 128).utilization end})]],
      check = function() for _, u in ipairs(util) do assert(math.abs(u.measured - u.law) < 1e-12) end end,
    },
    {
      title = "Dataflows side by side",
      text = [[
        The same product on a 16 x 16 grid three ways. Weight- and input-stationary hold one
        operand and stream the other, so partial sums of every K tile go to the accumulators
        (read-modify-write). Output-stationary keeps each sum in its cell until it is done: no
        accumulator traffic, but it re-reads A and B for every output tile.]],
      code = [[
        Am, Bm = chalk.randint(-3, 4, {64, 48}), chalk.randint(-3, 4, {48, 40})
        flows = {}
        for _, df in ipairs{"weight", "input", "output"} do
          local _, s = sim.systolic(16, 16, {dataflow = df}):matmul(Am, Bm)
          flows[#flows + 1] = {name = df, cycles = s.cycles,
            reads = s.reads_a + s.reads_b + s.acc_reads, writes = s.acc_writes + s.out_writes}
          print(("%-6s cycles %5d  folds %2d  reads A %5d  B %5d  acc r/w %5d/%5d  out %4d"):format(
            df, s.cycles, s.folds, s.reads_a, s.reads_b, s.acc_reads, s.acc_writes, s.out_writes))
        end
        sim.plot_dataflows(flows, {file = "18_dataflows.png",
                                   title = "64x48 @ 48x40 on a 16 x 16 grid"})]],
    },
    {
      title = "The same matmul on a v5e-like MXU, and on this CPU",
      text = [[
        Assumption (not measured): a v5e TensorCore has 4 MXUs of 128 x 128 and a peak of 197
        bf16 TFLOP/s, which implies a clock of 197e12 / (4 * 128 * 128 * 2) = 1.5 GHz. We simulate
        a 512 x 512 x 512 product on one such MXU, turn cycles into time at 1.5 GHz (and divide by
        4 for the 4 MXUs), and set it beside chalk's measured f32 matmul on this CPU.]],
      timing = "measured",
      code = [[
        A5, B5 = chalk.randint(-2, 3, {512, 512}), chalk.randint(-2, 3, {512, 512})
        _, s5 = big:matmul(A5, B5)
        clock_hz = 1.5e9                          -- assumed, see the text
        mxu_us = s5.cycles / clock_hz * 1e6
        print(("simulated: %d folds x %d cycles = %d cycles; at 1.5 GHz %.2f us (4 MXUs: %.2f us)")
          :format(s5.folds, s5.first_fold_cycles, s5.cycles, mxu_us, mxu_us / 4))
        Af5, Bf5 = A5:to("f32"), B5:to("f32")
        cpu_us = math.huge
        for _ = 1, 5 do
          local t0 = chalk.clock(); Af5:matmul(Bf5)
          cpu_us = math.min(cpu_us, (chalk.clock() - t0) * 1e6)
        end
        print(("CPU measured: %.0f us (f32, best of 5): %.0fx the single simulated MXU")
          :format(cpu_us, cpu_us / mxu_us))]],
      check = function() assert(s5.cycles == 16 * (2 * 128 + 128 + 512 - 2)) end,
    },
  },
}
