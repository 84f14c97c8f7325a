-- 11_zero.lua: module 11, ZeRO: mixed-precision Adam sharded over 4 simulated ranks, stages 0-3, with
-- the memory of every rank measured by the allocator by category, the padding and the comm buffer
-- shown apart, the communication counted, and the losses of every stage against stage 0.
-- Numbers to reproduce (lessons.md row 11): model-state bytes per rank 16P; 4P + 12P/N; 2P + 14P/N;
-- 16P/N (on the padded count); P = 7.5B, N = 64: 120 / 31.4 / 16.6 / 1.9 GB; every stage's losses
-- equal stage 0's; 2 (N-1)/N P elements per rank per step for stages 0-3 through z:gather(), 3 (N-1)/N P
-- for FSDP (z:fsdp_step: each module gathered in forward and again in backward; lua/chalk/zero_fsdp.lua).
return {
  title = "ZeRO: sharding the optimizer, the gradients, the parameters",
  module = 11,
  -- laws[s](P, N): model-state bytes per rank at stage s (16-bit p and g, f32 master, m, v)
  setup = [[
    laws = {[0] = function(P, N) return 16 * P end, function(P, N) return 4 * P + 12 * P / N end,
            function(P, N) return 2 * P + 14 * P / N end, function(P, N) return 16 * P / N end}
    law_text = {[0] = "16P", "4P + 12P/N", "2P + 14P/N", "16P/N"}]],
  steps = {
    {
      title = "Where the bytes go",
      text = [[
        Mixed-precision Adam keeps per parameter: 2 bytes of 16-bit weight, 2 of 16-bit
        gradient, and 12 of optimizer state (f32 master copy, m, v): 16 bytes. Data parallel
        replicates all of it. ZeRO shards the 12 (stage 1), then the gradients (2), then the
        weights (3). The paper's example, as a calculation: 7.5B parameters on 64 GPUs.]],
      code = [[
        for s = 0, 3 do
          print(("stage %d: %-11s = %6.1f GB per rank"):format(s, law_text[s],
            laws[s](7.5e9, 64) / 1e9))
        end]],
    },
    {
      title = "Four stages on four simulated ranks",
      text = [[
        A 64 -> 256 -> 10 MLP (P = 19210) trained 5 Adam steps by dist.ZeRO in bf16 on 4 ranks,
        each on its quarter of the batch. The flat parameter vector is padded to buckets of
        N x 1024 elements (rank r owns chunk r of each): Pp elements. Bytes per rank, measured
        by the allocator (chalk.memory_stats by category), against the law on Pp. The
        communication buffers are allocated under their own category, comm_buffer.]],
      code = [[
        rows = {}
        for s = 0, 3 do
          local res = dist.run(4, function(w) return zero_run(w, s) end)
          local m = res[1].mem
          rows[#rows + 1] = {stage = s, ranks = {}, losses = res[1].losses, sent = res[1].sent}
          for r = 1, 4 do rows[#rows].ranks[r] = res[r].mem end
          local got = m.parameter + m.gradient + m.optimizer
          law_line(("stage %d model states per rank"):format(s), got, laws[s](m.Pp, 4),
            law_text[s] .. " on Pp")
        end
        local m = rows[1].ranks[1]
        print(("P = %d, Pp = %d: padding %d elements; comm buffer %d bytes per rank, apart")
          :format(m.P, m.Pp, m.padding, m.comm))
        print(("activations at the loss: %d bytes per rank, category activation"):format(m.activation))]],
      -- law_line: "name: measured X, law F = Y"; zero_run(w, s): 5 steps of the MLP at stage s on
      -- rank w.rank; returns the losses, the memory (z:memory()) and the bytes sent in the last step
      setup = [[
        function law_line(name, got, want, f)
          print(("%s: measured %d, law %s = %d"):format(name, got, f, math.floor(want + 0.5)))
        end
        function zero_run(w, s, fsdp)
          chalk.manual_seed(11)
          local l1, l2 = nn.Linear(64, 256), nn.Linear(256, 10)
          local X, Y = chalk.randn(32, 64), chalk.randn(32, 10)
          local params = {l1.weight, l1.bias, l2.weight, l2.bias}
          local z = dist.ZeRO(optim.Adam(params, {lr = 1e-3}), w, {stage = s, bucket = 1024,
            modules = fsdp and {{1, 2}, {3, 4}} or nil})
          l1, l2, params = nil, nil, nil -- the f32 model is now z's: only its 16-bit copies remain
          local x, y = X:narrow(1, 8 * (w.rank - 1) + 1, 8), Y:narrow(1, 8 * (w.rank - 1) + 1, 8)
          local losses, sent, act = {}, 0, 0
          for i = 1, 5 do
            w:reset_stats()
            if fsdp then -- FSDP: z gathers each module around its use (see the FSDP step)
              local lin = function(h, p) return nn.functional.linear(h, p[1]:to("f32"), p[2]:to("f32")) end
              losses[i] = z:fsdp_step(x, {function(h, p) return chalk.tanh(lin(h, p)) end, lin},
                function(o) return nn.functional.mse_loss(o, y) end)
              z:step()
              goto next
            end
            collectgarbage("collect"); collectgarbage("stop") -- no stray frees while measuring
            local p, a0 = z:gather(), chalk.memory_stats().cpu.activation or 0
            local f = function(k) return p[k]:to("f32") end
            local out = nn.functional.linear(chalk.tanh(nn.functional.linear(x, f(1), f(2))), f(3), f(4))
            local loss = nn.functional.mse_loss(out, y)
            act = (chalk.memory_stats().cpu.activation or 0) - a0 -- kept for backward, measured
            collectgarbage("restart")
            loss:backward(); z:step(); losses[i] = loss:item()
            ::next::
          end
          local mem = z:memory(); mem.activation = act
          for _, a in pairs(w:stats().by) do for _, st in pairs(a) do sent = sent + st.sent end end
          return {losses = losses, mem = mem, sent = sent, timeline = z.timeline}
        end]],
    },
    {
      title = "Every stage trains the same",
      text = [[
        Sharding changes where each number lives, not the arithmetic: each element's Adam update
        runs on its owner in f32, then its 16-bit copy is gathered. Rank 1's losses per stage:]],
      code = [[
        worst_loss = 0
        for _, r in ipairs(rows) do
          local l = {}
          for i, v in ipairs(r.losses) do
            l[i] = ("%.6f"):format(v)
            worst_loss = math.max(worst_loss, math.abs(v - rows[1].losses[i]))
          end
          print(("stage %d: %s"):format(r.stage, table.concat(l, " ")))
        end
        print(("largest difference to stage 0: %.2e, law: equal within bf16 rounding")
          :format(worst_loss))]],
      check = function() assert(worst_loss <= 1e-3, "every stage must follow stage 0") end,
    },
    {
      title = "Stage 3 as FSDP: one module at a time",
      text = [[
        FSDP gathers each module's weights just before its forward (prefetching the next
        module's gather first), frees them after, and gathers them AGAIN in backward. A
        simulated worker cannot yield inside autograd's backward (its hooks run in C), so
        z:fsdp_step drives backward from Lua module by module: regather, recompute the module's
        forward from its saved input, backpropagate through it, reduce-scatter its gradient,
        free. Each module is padded to whole buckets. The gathered weights live only around
        their module: comm_buffer bytes after each event, rank 1 (g gather, F, B, x free):]],
      code = [[
        fs = dist.run(4, function(w) return zero_run(w, 3, true) end)
        local ev, short = {}, {gather = "g", forward = "F", backward = "B", free = "x"}
        for i, e in ipairs(fs[1].timeline) do
          ev[i] = ("%s%d %.0fK"):format(short[e.kind], e.module, e.comm / 1024)
        end
        print(table.concat(ev, "  "))
        fsdp_diff = 0
        for i, v in ipairs(fs[1].losses) do
          fsdp_diff = math.max(fsdp_diff, math.abs(v - rows[1].losses[i]))
        end
        print(("FSDP losses vs stage 0: largest difference %.2e; Pp = %d (modules padded apart)")
          :format(fsdp_diff, fs[1].mem.Pp))
        law_line("FSDP model states per rank", fs[1].mem.parameter + fs[1].mem.gradient
          + fs[1].mem.optimizer, 16 * fs[1].mem.Pp / 4, "16P/N on Pp")]],
      check = function() assert(fsdp_diff <= 1e-3, "FSDP must follow stage 0") end,
    },
    {
      title = "Communication per step",
      text = [[
        Stage 0 all-reduces the gradients: 2(N-1)/N P elements sent per rank. Stages 1-2
        reduce-scatter them and all-gather the updated weights: (N-1)/N P each, the same 2P.
        Stage 3 through z:gather() gathers once per step and keeps the weights through backward
        (2P); FSDP gathers in forward and again in backward: 3P. Elements here are f32 (the
        transport reduces in f32): 4 bytes each.]],
      code = [[
        for _, r in ipairs(rows) do
          local Pp = r.ranks[1].Pp
          law_line(("stage %d bytes sent per rank per step"):format(r.stage), r.sent,
            2 * 3 * Pp * 4 / 4, "2(N-1)/N Pp 4")
        end
        law_line("FSDP bytes sent per rank per step", fs[1].sent, 3 * 3 * fs[1].mem.Pp * 4 / 4,
          "3(N-1)/N Pp 4")]],
    },
    {
      title = "The memory, drawn",
      text = [[
        One row per stage, one bar per rank, stacked by category: the ZeRO paper's Figure 1,
        measured, plus the activations each rank holds at the loss (its quarter of the batch).
        The comm buffer (one f32 bucket, allocator category comm_buffer; stage 3's gathered
        parameters also live there while used) is the same at every stage.]],
      code = [[viz.zero(rows, {file = "11_zero.png"})]],
    },
    {
      title = "The FSDP timeline, drawn",
      text = [[
        One row per rank: the events of one step in order (all-gather, forward, backward with
        its recompute and reduce-scatter, free), per module, and under each the comm_buffer
        bytes then live: both modules only while one is prefetched during the other.]],
      code = [[
        local tls = {}
        for r = 1, 4 do tls[r] = fs[r].timeline end
        viz.zero_timeline(tls, {file = "11_fsdp.png"})]],
    },
  },
}
