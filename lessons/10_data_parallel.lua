-- 10_data_parallel.lua: module 10, data parallelism and collectives: one SPMD training script
-- (examples/ddp.lua) on 4 simulated workers, then unchanged on real processes (chalk --nproc);
-- the ring all_reduce step by step, the parameter server, the alpha-beta crossover of the
-- algorithms, and DDP's gradient buckets overlapping backward.
-- Numbers to reproduce (lessons.md row 10), measured beside their laws: ring bytes sent per rank
-- 2(N-1)/N S in 2(N-1) steps; the PS server link N S; time 2(N-1)a + 2(N-1)/N S/B; busbw/algbw =
-- 2(N-1)/N; N workers at batch b/N end with the weights of one worker at batch b (1e-6).
return {
  title = "Data parallelism and collectives",
  module = 10,
  -- ex: examples/ddp.lua's functions (model, data, the SPMD body ex.ddp, the 1-worker reference);
  -- chalk_bin, example: paths for the real-process run (never printed)
  setup = [[
    local exe = io.popen("readlink -f /proc/$PPID/exe 2>/dev/null"):read("l") or "" -- sh's parent: chalk
    local root = exe:match("^(.*)/build/[^/]*$") or "."
    chalk_bin, example = exe, root .. "/examples/ddp.lua"
    if not io.open(example) then example = "examples/ddp.lua" end
    ex = assert(loadfile(example))("library")
    net = {alpha = 5e-6, bandwidth = 1e9, compute = 1e9} -- 5 us, 1 GB/s links, 1 GFLOP/s devices
    fmt_bytes = require("chalk.comm_charts").human
    -- overlap(prof, r): rank r's bucket all_reduce time, total and under backward ops (us)
    function overlap(prof, r)
      local bwd, total, hidden = {}, 0, 0
      for _, e in ipairs(prof:events()) do
        if e.rank == r and e.kind == "op" and e.backward then
          local last = bwd[#bwd]
          if last and e.t0 <= last[2] + 1e-3 then last[2] = math.max(last[2], e.t1)
          else bwd[#bwd + 1] = {e.t0, e.t1} end
        end
      end
      for _, e in ipairs(prof:events()) do
        if e.rank == r and e.kind == "collective" and e.name == "all_reduce" then
          total = total + (e.t1 - e.t0)
          for _, w in ipairs(bwd) do hidden = hidden + math.max(0, math.min(e.t1, w[2]) - math.max(e.t0, w[1])) end
        end
      end
      return total, hidden
    end]],
  steps = {
    {
      title = "The script",
      text = [[
        The heart of examples/ddp.lua, the function every rank runs with its world. Nothing in
        it says how many ranks there are or how they talk: world.rank and world.size pick the
        rows, dist.DDP does the communication. `chalk examples/ddp.lua` runs the whole file.]],
      code = [[
        show_lines(example, "function M.ddp", "return {weights")]],
      -- show_lines(file, from, to): prints the lines of file from the one containing `from`
      -- to the one containing `to`
      setup = [[
        function show_lines(file, from, to)
          local on = false
          for l in io.lines(file) do
            on = on or l:find(from, 1, true) ~= nil
            if on then print(l) end
            if on and l:find(to, 1, true) then break end
          end
        end]],
    },
    {
      title = "Four simulated workers",
      text = [[
        Every rank builds the same MLP, takes rows (rank-1)*b/N+1 .. rank*b/N of the global
        batch b = 32 and trains with dist.DDP. dist.run runs it on N workers in this process:
        coroutines, each under its own context (rank, RNG stream, grad mode, memory) with a
        virtual clock: links of 5 us latency and 1 GB/s, devices of 1 GFLOP/s.]],
      code = [[
        results = dist.run(4, ex.ddp, net)
        for r, res in ipairs(results) do
          print(("rank %d: batch %d of %d, loss after 5 SGD steps %.6f, %d gradient buckets")
            :format(r, ex.batch // 4, ex.batch, res.loss, res.buckets))
        end]],
    },
    {
      title = "The same weights as one worker at the whole batch",
      text = [[
        Each rank's loss is the mean over its b/N rows; averaging the N gradients gives the
        gradient of the mean over all b rows. So N workers at batch b/N take exactly the steps
        of one worker at batch b, up to float rounding (the sums run in another order).]],
      code = [[
        reference = ex.reference()
        worst_ddp = 0
        for _, n in ipairs{1, 2, 4} do
          local res = dist.run(n, ex.ddp, net)
          local worst = 0
          for r = 1, n do worst = math.max(worst, ex.worst(res[r].weights, reference)) end
          worst_ddp = math.max(worst_ddp, worst)
          print(("N = %d at batch %2d: max weight difference to 1 worker at batch 32: %.2e")
            :format(n, ex.batch // n, worst))
        end
        print(("largest difference %.2e, law: equal within 1e-6"):format(worst_ddp))]],
      check = function() assert(worst_ddp <= 1e-6, "DDP must match one worker at the whole batch") end,
    },
    {
      title = "Ring all_reduce: bytes and steps",
      text = [[
        All-reduce of S bytes on a ring of N: cut the tensor into N chunks; in N-1 steps each
        rank passes one chunk on and adds the one it gets (reduce-scatter), then N-1 steps pass
        the finished chunks round (all-gather). We count what each rank SENDS. Course
        assignments often count 2(N-1) S, every step as if a whole S moved: N = 4 times our
        number, and not what a link carries.]],
      code = [[
        N, S = 4, 1 << 20                       -- 1 MiB of f32 per rank
        prof = chalk.profile(function()
          ring = dist.run(N, function(w)
            w:all_reduce(chalk.ones(S // 4))
            return w:stats().by.all_reduce.ring
          end, {alpha = 5e-6, bandwidth = 25e9})
        end)
        st = ring[1]
        print(("bytes sent per rank: measured %.4f S, law 2(N-1)/N S = %.4f S")
          :format(st.sent / S, 2 * (N - 1) / N))
        print(("messages per rank: measured %d, law 2(N-1) = %d"):format(st.messages, 2 * (N - 1)))
        print(("the naive count 2(N-1) S = %d S is what all 2(N-1) steps would move at full size")
          :format(2 * (N - 1)))]],
      check = function()
        for r = 1, N do assert(ring[r].sent == ring[1].sent, "every rank sends the same") end
      end,
    },
    {
      title = "The ring, frame by frame",
      text = [[
        One frame per step, drawn from the message events of that run: the number in a chunk
        is how many ranks' gradients it holds. Reduce-scatter darkens one chunk per rank;
        after N-1 steps rank r owns the complete chunk r; all-gather passes them on.]],
      code = [[
        summary, frames = viz.comm(prof, {kind = "ring", file = "10_ring.png"})
        print(("%d frames (10_ring_1.png .. 10_ring_%d.png) and the summary"):format(#frames, #frames))]],
    },
    {
      title = "Time and bus bandwidth",
      text = [[
        Each of the 2(N-1) steps costs one latency a plus a chunk S/N over bandwidth B: the
        law is 2(N-1)a + 2(N-1)/N S/B. nccl-tests report algbw = S/t and busbw = algbw x
        2(N-1)/N, which compares with the link's B whatever N is.]],
      code = [[
        a, B = 5e-6, 25e9
        law = 2 * (N - 1) * a + 2 * (N - 1) / N * S / B
        print(("simulated time: measured %.3f us, law 2(N-1)a + 2(N-1)/N S/B = %.3f us")
          :format(st.time * 1e6, law * 1e6))
        print(("algbw %.2f GB/s, busbw %.2f GB/s, link B %.0f GB/s")
          :format(st.algbw / 1e9, st.busbw / 1e9, B / 1e9))
        print(("busbw/algbw: measured %.3f, law 2(N-1)/N = %.3f")
          :format(st.busbw / st.algbw, 2 * (N - 1) / N))]],
    },
    {
      title = "The parameter server's link",
      text = [[
        A parameter server receives every worker's S and sends S back to each: its link carries
        N S each way, while a ring rank sends 1.5 S. We measure it with a server of its own
        (5 ranks: rank 1 serves, contributing zeros). chalk's algo = "ps" on N ranks makes rank
        1 both server and worker: its own share never crosses the link, so (N-1) S.]],
      code = [[
        local function ps(n) return dist.run(n, function(w)
          w:all_reduce(chalk.zeros(S // 4), {algo = "ps"}); return w:stats().by.all_reduce.ps
        end, {alpha = a, bandwidth = B}) end
        sep, shared = ps(N + 1), ps(N)
        print(("PS server link, separate server: received %.2f S, sent %.2f S; law N S = %d S")
          :format(sep[1].received / S, sep[1].sent / S, N))
        print(("PS server link, rank 1 also a worker: received %.2f S; law (N-1) S = %d S")
          :format(shared[1].received / S, N - 1))
        print(("a PS worker sends %.2f S; a ring rank %.2f S"):format(sep[2].sent / S, st.sent / S))]],
    },
    {
      title = "Which algorithm when: the alpha-beta crossover",
      text = [[
        Small messages pay latency: the fewer rounds the better (PS 2, tree 2 log N). Large
        ones pay bandwidth: ring and halving-doubling send 2(N-1)/N S per rank. Times below are
        simulated by the engine (the schedules with message sizes only, no data), N = 4.]],
      code = [[
        sizes, sweep = {}, {}
        for e = 3, 30, 3 do sizes[#sizes + 1] = 1 << e end
        print(("%10s %11s %11s %11s %11s  fastest"):format("S", "ring", "tree", "halv-doub", "ps"))
        for _, s in ipairs(sizes) do
          local row = simulate_all(s)   -- each algorithm on 4 workers: the last rank's time
          sweep[#sweep + 1] = row
          local t = row.times
          print(("%10s %8.1f us %8.1f us %8.1f us %8.1f us  %s"):format(fmt_bytes(s),
            t.ring * 1e6, t.tree * 1e6, t.halving_doubling * 1e6, t.ps * 1e6, row.best))
        end]],
      -- simulate_all(s): {bytes = s, times = {[algo] = seconds}, best = algo} on 4 sim workers
      setup = [[
        function simulate_all(s)
          local row = {bytes = s, times = {}}
          for _, al in ipairs{"ring", "tree", "halving_doubling", "ps"} do
            local t = dist.run(4, function(w) return w:simulate("all_reduce", s, {algo = al}) end,
                               {alpha = a, bandwidth = B})
            row.times[al] = math.max(table.unpack(t))
            if not row.best or row.times[al] < row.times[row.best] then row.best = al end
          end
          return row
        end]],
    },
    {
      title = "The crossover, drawn",
      text = [[
        Log-log: flat lines are latency-bound, slope 1 bandwidth-bound. PS wins tiny messages
        and loses most at large ones (its server serialises N S); ring and halving-doubling
        meet the bandwidth bound.]],
      code = [[
        crossover_png = viz.comm_crossover(sweep, {file = "10_crossover.png",
          title = "all_reduce on 4 simulated ranks (a = 5 us, B = 25 GB/s)"})]],
    },
    {
      title = "DDP: buckets overlap backward",
      text = [[
        DDP does not wait for backward to finish: a gradient-ready hook copies each gradient into
        its bucket (parameters in reverse order, 0.25 MiB each), and a full bucket starts an
        all_reduce at once, on the worker's communication stream, while backward goes on.
        ddp:wait() before opt:step() waits for the rest. Each op costs flops / 1 GFLOP/s.]],
      code = [[
        prof2 = chalk.profile(function()
          two = dist.run(4, function(w) return ex.ddp(w, {steps = 2}) end, net)
        end)
        viz.comm(prof2, {file = "10_ddp_lanes.png", from = two[1].start})   -- from training's start
        total, hidden = overlap(prof2, 1)
        print(("rank 1, two steps: bucket all_reduces %.3f ms, under backward %.3f ms, exposed %.3f ms")
          :format(total / 1e3, hidden / 1e3, (total - hidden) / 1e3))]],
      check = function() assert(hidden > 0, "some bucket must overlap backward") end,
    },
    {
      title = "The same file on real processes",
      text = [[
        Nothing in examples/ddp.lua is simulation-specific: under `chalk --nproc 4
        examples/ddp.lua` chalk starts mpirun, each process gets its rank from dist.init, and
        the all_reduces go over MPI. Here with 2 processes (this machine has few cores):]],
      code = [[
        if not mpi_here then
          print("MPI is not installed here: apt-get install openmpi-bin libopenmpi-dev, then make")
        else
          print("$ chalk --nproc 2 examples/ddp.lua")
          mpi_lines = run_nproc(2, example)   -- the output lines, sorted by rank
          for _, l in ipairs(mpi_lines) do print(l) end
        end]],
      -- mpi_here: chalk has the MPI transport and mpirun exists; run_nproc(n, file): chalk --nproc n
      -- file, its lines sorted (ranks print in any order); leak reports of OpenMPI off under ASan
      setup = [[
        mpi_here = dist.available() and os.execute("command -v mpirun >/dev/null 2>&1")
        function run_nproc(n, file)
          local env = "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 "
          local p = io.popen(("%s%q --nproc %d %q 2>&1"):format(env, chalk_bin, n, file))
          local lines = {}
          for l in p:lines() do lines[#lines + 1] = l end
          if not p:close() then error("chalk --nproc " .. n .. " failed:\n" .. table.concat(lines, "\n")) end
          table.sort(lines)
          return lines
        end]],
    },
  },
}
