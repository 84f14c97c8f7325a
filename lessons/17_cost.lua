-- 17_cost.lua: lesson 17, cost and trade-offs: a cost model of a model and a run beside what the
-- profiler's op table measures, a roofline, MFU, and dollars from a price table with spot
-- preemptions from lesson 16's failure model.
return {
  title = "Cost and trade-offs",
  module = 17,
  setup = [[
    cm = require "chalk.costmodel"
    cc = require "chalk.cluster_charts"
    function best_ms(f, n)
      local best = math.huge
      for _ = 1, n do
        local t = os.clock()
        f()
        best = math.min(best, (os.clock() - t) * 1e3)
      end
      return best
    end
    function op_totals(prof) -- FLOPs, bytes, busy ms, and the FLOPs of matmuls, from the op table
      local s = prof:summary()
      local t = {flops = 0, bytes = 0, matmul = 0, ms = s.busy_ms}
      for _, o in ipairs(s.ops) do
        t.flops, t.bytes = t.flops + o.flops, t.bytes + o.bytes
        if o.name == "matmul" then t.matmul = t.matmul + o.flops end
      end
      return t
    end
    function g(x) return ("%.3g"):format(x) end
  ]],
  timing = {"GFLOP/s", "GB/s", "MFU", "^%s*CPU", "tokens/s"},
  steps = {
    {
      title = "The model, counted",
      text = [[
        The serving lessons' character model, nn.CharGPT: token and position embeddings,
        nn.TransformerBlock layers, a head over 27 characters (a-z and the word break), on
        data.words(). costmodel.model_for_cost is the one place it is built.
        N counts the weights of every matmul; embeddings are lookups, not FLOPs.]],
      code = [[
        model, cfg = cm.model_for_cost{d = 128, layers = 2, heads = 4, ctx = 16}
        law = cm.laws(cfg)
        local n = 0
        for _, p in ipairs(model:parameters()) do n = n + p:numel() end
        print(("d = %d, layers = %d, heads = %d, context T = %d, vocabulary %d"):format(
          cfg.d, cfg.layers, cfg.heads, cfg.ctx, cfg.vocab))
        print(("parameters counted in the model: %d; law: %d"):format(n, law.n_params))
        print(("N (matmul weights) = L * 12 d^2 + d V = %d"):format(law.n_matmul))]],
      check = function() return law.n_params > 0 end,
    },
    {
      title = "A training step: 6ND, measured",
      setup = [=[
        function train_step(x, y) -- forward, backward, Adam: one step on B sequences
          local logits = model(x):reshape(B * cfg.ctx, cfg.vocab)
          local loss = nn.functional.cross_entropy(logits, y:reshape(B * cfg.ctx))
          opt:zero_grad() loss:backward() opt:step()
          return loss
        end]=],
      text = [[
        Training does 2N FLOPs per token forward and 4N backward: 6N per token, 6ND for D
        tokens. Attention adds 3 x 4 L T d per token here (the full T x T scores). The op
        table counts every FLOP each op ran (forward, backward and the Adam step):]],
      code = [[
        B = 16
        ids = cm.corpus(200000)
        opt = chalk.optim.Adam(model:parameters(), {lr = 1e-3})
        local x, y = cm.batch(cfg, B, ids, 1)
        train_step(x, y)                              -- warm up (Adam's state is made)
        train = op_totals(chalk.profile(train_step, cm.batch(cfg, B, ids, 2)))
        D = B * cfg.ctx
        print(("tokens per step D = %d"):format(D))
        print(("op table FLOPs:        %12d"):format(train.flops))
        print(("6ND:                   %12d"):format(law.train_6n * D))
        print(("measured / 6ND:        %.4f"):format(train.flops / (law.train_6n * D)))
        print(("matmul FLOPs / 6ND:    %.4f; law (6N + 12LTd) / 6N = %.4f"):format(
          train.matmul / (law.train_6n * D), (law.train_6n + law.train_attention) / law.train_6n))
        print(("the rest (layer norm, GELU, softmax, loss, Adam): %.2f %% of 6ND"):format(
          100 * (train.flops - train.matmul) / (law.train_6n * D)))]],
    },
    {
      title = "A decode step",
      text = [[
        Generating one character: this model has no KV cache, so it reruns the T-character
        window, 2N + 4 L T d per position. With a cache (the serving lesson) a step would do
        2N + 4 L t d and read every weight once: at batch 1 about 0.5 FLOP per byte, far
        below any ridge. KV bytes per token = 2 L d x 4 bytes.]],
      code = [[
        local x = cm.batch(cfg, 1, ids, 3)
        local function step() return chalk.no_grad(function() return model(x) end) end
        decode = op_totals(chalk.profile(step))
        local want = cfg.ctx * (law.infer_2n + law.infer_attention)
        print(("decode step FLOPs: measured %d, law T (2N + 4LTd) = %d, ratio %.4f"):format(
          decode.flops, want, decode.flops / want))
        print(("KV cache: %d bytes per token (law 2 L d * 4 = %d)"):format(
          law.kv_bytes_per_token, 2 * cfg.layers * cfg.d * 4))
        print(("intensity: training step %.1f FLOP/B, decode step %.1f FLOP/B (op table bytes)"):format(
          train.flops / train.bytes, decode.flops / decode.bytes))]],
    },
    {
      title = "This CPU's ceilings and MFU",
      text = [[
        Peak here is measured, not looked up: the best of 5 OpenBLAS sgemms of 1024 x 1024
        (what this CPU's FMAs deliver in the best case), and the copy bandwidth of a 64 MB
        clone. MFU = the step's FLOP/s / peak.]],
      code = [[
        local a, b = chalk.randn(1024, 1024), chalk.randn(1024, 1024)
        cpu_peak = 2 * 1024 ^ 3 / (best_ms(function() local c = a:matmul(b) end, 5) / 1e3)
        local big = chalk.randn(16 * 1024 * 1024)
        cpu_bw = 2 * 4 * big:numel() / (best_ms(function() local c = big:clone() end, 5) / 1e3)
        local ms = best_ms(function() train_step(cm.batch(cfg, B, ids, 4)) end, 3)
        train_flops_s = train.flops / (ms / 1e3)
        decode_flops_s = decode.flops / (decode.ms / 1e3)
        print(("CPU peak (sgemm): %.1f GFLOP/s, copy bandwidth %.1f GB/s"):format(
          cpu_peak / 1e9, cpu_bw / 1e9))
        print(("training step: %.1f GFLOP/s, %.0f tokens/s"):format(
          train_flops_s / 1e9, D / (ms / 1e3)))
        mfu = train_flops_s / cpu_peak
        print(("MFU = %.3f"):format(mfu))]],
      check = function() return mfu > 0 and mfu < 1 end,
    },
    {
      title = "The roofline",
      text = [[
        Both steps on this CPU's roofline, near its ridge: a toy model's matmuls are small.
        The decode step (batch 1, 16 positions) falls far below its roof: per-op overhead, not
        FLOPs or bytes, bounds it. Measured on CPU only: this machine has no GPU (the H100
        row below uses the cuBLAS figure recorded in lessons/gpu_runs).]],
      code = [[
        cc.roofline({
          {name = ("training step, %s FLOP/B"):format(g(train.flops / train.bytes)),
           intensity = train.flops / train.bytes, flops = train_flops_s},
          {name = ("decode step, %s FLOP/B"):format(g(decode.flops / decode.bytes)),
           intensity = decode.flops / decode.bytes, flops = decode_flops_s},
        }, cpu_peak, cpu_bw, {file = "17_roofline.png",
                              title = "roofline of this CPU (measured ceilings)"})]],
    },
    {
      title = "Spot instances fail: lesson 16's model",
      text = [[
        Spot capacity is cheap and taken back: model it as failures with MTBF 6 h, a 60 s
        checkpoint every Young interval and 300 s to get a new machine. The waste stretches the
        run by 1 / (1 - waste); on-demand is assumed never to fail.]],
      code = [[
        spot_mtbf, C, R = 6 * 3600, 60, 300
        local tau = sim.young(C, spot_mtbf)
        local r = sim.failures{mtbf = spot_mtbf, interval = tau, checkpoint_cost = C,
                               restart_cost = R, work = 2000 * spot_mtbf, seed = 17}
        spot_waste = r.waste
        print(("Young interval %.0f s; failures %d"):format(tau, r.failures))
        print(("simulated spot waste %.2f %%; law C/t + (t+C)/2M + R/M = %.2f %%"):format(
          100 * spot_waste, 100 * sim.waste_model(tau, C, spot_mtbf, R)))]],
    },
    {
      title = "What a run costs",
      setup = [=[
        function h100_peak() -- from the H100 run recorded in lessons/gpu_runs, else the spec
          local f = io.open("lessons/gpu_runs/04_cuda_matmul-H100.log")
          if not f then return 989e12, "H100 spec, dense bf16" end
          local peak = 989e12
          for l in f:lines() do
            local w = {}
            for x in l:gmatch("%S+") do w[#w + 1] = x end
            if w[1] == "cublas_bf16" and tonumber(w[9]) then peak = tonumber(w[9]) * 1e9 end
          end
          f:close()
          return peak, "measured, lessons/gpu_runs"
        end
        function cost_table(rows)
          rows[3].highlight = true
          return cc.table({"device", "hours", "$ on-demand", "$ spot", "$ / 1M tokens", "spot / on-demand"},
            rows, {file = "17_cost_table.png", widths = {120, 90, 100, 100, 100, 120},
                   title = "6ND = 7.4e18 FLOPs (124M params, 10B tokens)"})
        end]=],
      text = [[
        A run: a GPT-2-small-sized model (N = 124M) on D = 10B tokens, 6ND FLOPs. CPU at the
        MFU measured above; H100 at the bf16 cuBLAS peak recorded in lessons/gpu_runs times an
        assumed 40 % MFU; A100 at its 312 TFLOP/s bf16 spec times 40 %. Illustrative prices.]],
      code = [[
        N, Dt = 124e6, 10e9
        local flops = 6 * N * Dt
        h100, from = h100_peak()
        print(("H100 bf16 peak %.0f TFLOP/s (%s, cuBLAS n = 4096)"):format(h100 / 1e12, from))
        local speed = {cpu_peak * mfu, 312e12 * 0.4, h100 * 0.4}
        rows = {}
        print(("%-14s %10s %12s %12s %12s %10s"):format("device", "hours", "$ on-demand", "$ spot",
          "$/1M tok od", "spot/od"))
        for i, p in ipairs(cm.prices) do
          local h = flops / speed[i] / 3600
          local od, sp = h * p.on_demand, h / (1 - spot_waste) * p.spot
          rows[i] = {p.name, g(h), g(od), g(sp), g(od / (Dt / 1e6)), ("%.2f"):format(sp / od)}
          print(("%-14s %10s %12s %12s %12s %10s"):format(table.unpack(rows[i])))
        end
        cost_table(rows)]],
    },
  },
}
