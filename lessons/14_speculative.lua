-- 14_speculative.lua: module 14, speculative decoding with two character GPTs: the draft proposes
-- gamma tokens, the target scores gamma + 1 positions in one pass, modified rejection sampling keeps
-- the target's distribution, the KV caches roll back.
-- Numbers to reproduce (lessons.md row 14): E = (1 - a^(g+1)) / (1 - a) = 3.36 at a = 0.8, g = 4 with
-- a controlled-acceptance draft; greedy output identical to the target's; the sampled distribution
-- equal to the target's (chi-square); speed-up against (1 - a^(g+1)) / ((1 - a)(g c + 1)).
return {
  title = "Speculative decoding: draft, verify, roll back",
  module = 14,
  timing = { "wall", "ms per", "speed%-up measured", "c = %d" },
  setup = [[
    -- pass_ms(lm, n): mean wall ms of one decode pass of lm (KV cache, greedy, n tokens)
    function pass_ms(lm, n)
      lm:generate("", {max_tokens = n, temperature = 0, stop = false})
      local _, st = lm:generate("", {max_tokens = n, temperature = 0, stop = false})
      return st.seconds / n * 1e3
    end
    -- measure_E(a, g): tokens per target pass over 40 greedy runs with serve.controlled_draft(target, a)
    -- (rounds with the full gamma only: the last rounds of a run propose fewer)
    function measure_E(a, g)
      local tok, passes = 0, 0
      for s = 1, 40 do
        local _, st = serve.speculative(target, serve.controlled_draft(target, a), "",
          {gamma = g, temperature = 0, max_tokens = 30, seed = s})
        for _, r in ipairs(st.rounds) do
          if r.proposed == g then tok, passes = tok + r.accepted + 1, passes + 1 end
        end
      end
      return tok / passes
    end
    -- second_token(lm, ids): exact distribution of the 2nd generated token after ids
    function second_token(lm, ids)
      local function nxt(t)
        local lg = lm(chalk.tensor({t}, {dtype = "i64"}))
        return nn.CharGPT.probs(lg:select(1, 1):select(1, #t):totable(), 1)
      end
      local p1, want = nxt(ids), {}
      for j = 1, 27 do want[j] = 0 end
      for x = 1, 27 do
        local t = {table.unpack(ids)}; t[#t + 1] = x
        local p2 = nxt(t)
        for j = 1, 27 do want[j] = want[j] + p1[x] * p2[j] end
      end
      return want
    end]],
  steps = {
    {
      title = "A target and a draft",
      text = [[
        The target is lesson 13's CharGPT (2 layers, width 64). The draft is smaller (1 layer,
        width 32), trained the same way. A draft pass costs c target passes.]],
      code = [[
        target = nn.CharGPT.pretrained()
        draft = nn.CharGPT.pretrained({layers = 1, heads = 2, dim = 32})
        print(("validation loss: target %.3f, draft %.3f nats/char"):format(target.report.val_loss,
          draft.report.val_loss))
        t_ms, d_ms = pass_ms(target, 31), pass_ms(draft, 31)
        c = d_ms / t_ms
        print(("ms per pass: target %.3f, draft %.3f"):format(t_ms, d_ms))]],
    },
    {
      title = "Greedy: the target's tokens, fewer target passes",
      text = [[
        At temperature 0 the draft's token is kept when it is the target's argmax; at the first
        mismatch the target's own token is taken. The output is the target's, token for token.]],
      code = [[
        ref = target:generate("con", {max_tokens = 24, temperature = 0, stop = false})
        text, gst = serve.speculative(target, draft, "con", {gamma = 4, temperature = 0,
          max_tokens = 24})
        print("target alone: " .. ref)
        print("speculative:  " .. text)
        print(("identical: %s"):format(tostring(ref == text)))
        print(("acceptance %.3f, target passes %d for %d tokens: %.2f tokens per pass"):format(
          gst.acceptance, gst.passes, gst.tokens, gst.tokens_per_pass))
        serve.draw_timeline(gst, {file = "14_timeline.png"})]],
    },
    {
      title = "The law: tokens per target pass",
      text = [[
        If each draft token is accepted with probability a, independently, a pass yields
        E = 1 + a + ... + a^g = (1 - a^(g+1)) / (1 - a) tokens. A controlled draft proposes the
        target's token with probability a (and an impossible one otherwise) to test the law;
        measure_E(a, g) counts tokens per pass over 40 runs.]],
      code = [[
        points = {}
        print("    a   gamma   E measured   law (1 - a^(g+1))/(1 - a)")
        for _, g in ipairs {2, 4} do
          for _, a in ipairs {0.6, 0.8, 0.9} do
            local E = measure_E(a, g)
            points[#points + 1] = {a = a, g = g, E = E}
            print(("%5.1f %7d %12.3f %12.3f"):format(a, g, E, serve.expected_tokens(a, g)))
          end
        end
        serve.draw_acceptance(points, {gammas = {1, 2, 4, 8}, file = "14_acceptance.png"})]],
    },
    {
      title = "Sampling: exactly the target's distribution",
      text = [[
        With temperature 1, a draft token x is kept when u < p(x)/q(x); otherwise the token is
        drawn from norm(max(0, p - q)). Then every output token has the target's distribution.
        We draw 2000 two-token continuations of "s" and compare the second token's counts with
        its exact distribution under the target (chi-square, cells of expected count >= 5).]],
      code = [[
        want = second_token(target, {1, 20})
        N, got = 2000, {}
        for j = 1, 27 do got[j] = 0 end
        for s = 1, N do
          local t = serve.speculative(target, draft, "s", {gamma = 3, temperature = 1,
            max_tokens = 2, seed = s})
          local x = nn.CharGPT.encode(t:sub(2, 2))[1]
          got[x] = got[x] + 1
        end
        chi, df, eo, go = 0, -1, 0, 0
        for j = 1, 27 do
          eo, go = eo + N * want[j], go + got[j]
          if eo >= 5 then chi, df, eo, go = chi + (go - eo) ^ 2 / eo, df + 1, 0, 0 end
        end
        print(("chi-square %.1f with %d degrees of freedom (0.1%% critical value ~ %.1f)"):format(
          chi, df, df + 3.1 * math.sqrt(2 * df)))]],
    },
    {
      title = "Speed-up",
      text = [[
        A round costs g draft passes and one target pass: time (g c + 1) target passes for E
        tokens, so the speed-up is (1 - a^(g+1)) / ((1 - a)(g c + 1)). On this CPU a pass of
        these tiny models costs about its op launches, so c is not small: a real draft is
        10-100x cheaper than its target.]],
      code = [[
        _, plain = target:generate("con", {max_tokens = 24, temperature = 0, stop = false})
        _, spec = serve.speculative(target, draft, "con", {gamma = 4, temperature = 0,
          max_tokens = 24})
        a = gst.acceptance
        print(("a = %.3f, g = 4, c = %.2f: law speed-up %.2f"):format(a, c, serve.speedup(a, 4, c)))
        print(("speed-up measured %.2f (wall %.1f ms speculative, %.1f ms target alone)"):format(
          plain.seconds / spec.seconds, spec.seconds * 1e3, plain.seconds * 1e3))
        print(("with c = 0.05 the law gives %.2f"):format(serve.speedup(a, 4, 0.05)))]],
    },
  },
}
