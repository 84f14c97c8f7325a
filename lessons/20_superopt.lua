-- 20_superopt.lua: module 20, superoptimization: enumerate every program up to a few ops that
-- computes the same function as a small captured subgraph (RMSNorm then matmul, a softmax chain,
-- an attention score block), prune by shape and cost, test candidates modulo a prime and in
-- floating point, keep the cheapest by the cost model of lessons 6-7, and time it.
-- Numbers to reproduce (lessons.md): search-space size per depth; every kept candidate equals the
-- original on random inputs; the chosen program's measured time vs the original's.
-- Pictures: the search tree; the chosen program's graph beside the original's.
return {
  title = "Superoptimization over the capture IR",
  module = 20,
  seed = 20,
  -- best(g, reps): the shortest of reps replays of a captured graph, in ms
  setup = [[
    best = require("chalk.lessonkit").best_replay_ms
    E = chalk.superopt.E]],
  steps = {
    {
      title = "A small captured subgraph: RMSNorm then matmul",
      text = [[
        Lesson 7's passes rewrite a graph by rules someone wrote down. A superoptimizer instead
        searches: it enumerates programs built from the op table's rows and keeps any that
        computes the same function more cheaply. We start from RMSNorm followed by a projection,
        y = (x / rms(x) * g) @ W, as a transformer block computes it, captured as in lesson 6.]],
      code = [[
        chalk.manual_seed(0)
        x = chalk.randn(512, 512); x.name = "x"
        gain = chalk.rand(512) + 0.5; gain.name = "g"
        W = chalk.randn(512, 64) * 0.05; W.name = "W"
        function rmsnorm_proj(x)
          local r = 1 / ((x * x):mean(-1, true) + 1e-6):sqrt()
          return ((x * r) * gain):matmul(W)
        end
        g = chalk.capture(rmsnorm_proj, x)
        print(g)]],
    },
    {
      title = "The search, depth by depth",
      text = [[
        sqrt has no meaning modulo a prime, so it and what it reads stay as they are; its result
        becomes a leaf beside x, g, W and the constant 1. The search builds every expression of
        1, 2, 3 ops over the leaves (add, sub, mul, div, matmul, transpose, sum) bottom up. It
        prunes one whose shapes do not fit or whose roofline time exceeds the original's, and
        merges one whose values on a random input modulo p = 2^31 - 1 equal a cheaper one's.]],
      code = [[
        res = g:superoptimize{depth = 3, budget = 200000}
        print("tail searched: " .. tostring(res.original) .. ";  " .. table.concat(res.defs, "; "))
        print("depth  generated  pruned:shape  pruned:cost  merged   kept  rejected  verified")
        for d, s in ipairs(res.stats) do
          print(("%5d %10d %13d %12d %7d %6d %9d %9d"):format(d, s.generated, s.shape, s.cost,
            s.merged, s.kept, s.rejected, s.verified))
        end
        for d = 2, #res.stats do
          print(("search space growth depth %d/%d: %.1fx"):format(d, d - 1,
            res.stats[d].generated / res.stats[d - 1].generated))
        end]],
      check = function() assert(#res.programs >= 1 and res.stats[3].generated > res.stats[2].generated) end,
    },
    {
      title = "Testing the candidates",
      text = [[
        A candidate (the target's shape and values modulo p) is tested twice more modulo p on
        fresh random inputs at tiny sizes, as Mirage does, then in floating point (f64, fresh
        random x, g, W, the sqrt leaf recomputed) at the real sizes. A deliberately wrong
        candidate, the projection without the 1/rms scale, fails the first test.]],
      code = [[
        for i, p in ipairs(res.programs) do
          print(("verified %d: %-28s roofline %.1f us, %d kernels, relative float error %.0e")
            :format(i, tostring(p), p.time * 1e6, p.kernels, p.float_err))
        end
        print(("original:   %-28s roofline %.1f us, %d kernels"):format(tostring(res.original),
          res.original.time * 1e6, res.original.kernels))
        L = res.leaves
        wrong = E.matmul(E.mul(L.x, L.g), L.W)
        print("wrong candidate " .. tostring(wrong) .. ": " .. select(2, res:check(wrong)))
        res:tree{file = "20_search.png", title = "superoptimizing RMSNorm then matmul, depth 3"}]],
      check = function()
        for _, p in ipairs(res.programs) do assert(p.float_err <= 1e-9) end
        assert(not res:check(wrong))
      end,
    },
    {
      title = "The chosen program against the original",
      text = [[
        The cheapest verified program scales each row of the product instead of each row of x:
        the division by rms moves past the matmul, onto 512 x 64 values instead of 512 x 512.
        We capture it as a Graph, compare the graph's own cost totals and time both replays.]],
      timing = "^measured",
      code = [[
        chosen = res:capture(res.best)
        y0, y1 = g:replay(), chosen:replay()
        n0, k0, b0 = g:totals(); n1, k1, b1 = chosen:totals()
        print(("original: %d kernels, %.2f MB moved; chosen: %d kernels, %.2f MB moved")
          :format(k0, b0 / 2^20, k1, b1 / 2^20))
        print(("largest difference chosen vs original: %.1e"):format((y1 - y0):abs():max():item()))
        t0, t1 = best(g, 20), best(chosen, 20)
        print(("measured: original %.3f ms, chosen %.3f ms (%.2fx)"):format(t0, t1, t0 / t1))
        viz.graph(g, {file = "20_original.png", title = "original"})
        viz.graph(chosen, {file = "20_chosen.png", title = "chosen: ((x * g) @ W) / sqrt1"})]],
      check = function() assert(b1 < b0 and (y1 - y0):abs():max():item() < 1e-3) end,
    },
    {
      title = "A softmax chain: normalise after the matmul",
      text = [[
        softmax(s) @ V divides every row of exp(s - max) by its sum, then multiplies by V. exp
        and max stay; the search finds (exp1 @ V) / sum(exp1): divide the N x d result instead of
        the N x N probabilities. FlashAttention defers its normalisation the same way.]],
      code = [[
        s = chalk.randn(256, 256); s.name = "s"
        V = chalk.randn(256, 32); V.name = "V"
        function softmax_v(s)
          local e = (s - s:max({-1}, true)):exp()
          return (e / e:sum(-1, true)):matmul(V)
        end
        gs = chalk.capture(softmax_v, s)
        rs = gs:superoptimize{depth = 3}
        print(("softmax tail %s (%.1f us)"):format(tostring(rs.original), rs.original.time * 1e6))
        print(("  -> chosen %s (%.1f us), %d verified"):format(tostring(rs.best), rs.best.time * 1e6,
          #rs.programs))]],
      check = function() assert(tostring(rs.best) == "(exp1 @ V) / sum(exp1)") end,
    },
    {
      title = "An attention score block: the scale moves",
      text = [[
        Scores are (Q @ K^T) * 1/sqrt(d). Scaling the N x N scores touches N^2 values; scaling
        K (N x d) first gives the same numbers. The search tries the scale on every operand and
        keeps the cheapest.]],
      code = [[
        Q = chalk.randn(256, 32); Q.name = "Q"
        K = chalk.randn(256, 32); K.name = "K"
        ga = chalk.capture(function(Q) return Q:matmul(K:transpose(1, 2)) * (1 / math.sqrt(64)) end, Q)
        ra = ga:superoptimize{depth = 3}
        for i, p in ipairs(ra.programs) do
          print(("attention %d: %-22s %.1f us, %.0f KB moved"):format(i, tostring(p), p.time * 1e6,
            p.bytes / 1024))
        end]],
      check = function() assert(ra.best.bytes < ra.original.bytes) end,
    },
    {
      title = "What the rule-based passes of lesson 7 do not find",
      text = [[
        (A @ B) @ v with a vector v costs 2n^3 + 2n^2 flops; A @ (B @ v) costs 4n^2. No pass of
        lesson 7 reassociates matmuls, and none moves a scale or a division past one: run them on
        each subgraph and the bytes stay. The search finds all of these from the op table alone.]],
      timing = "^measured",
      code = [[
        A = chalk.randn(256, 256); A.name = "A"
        B = chalk.randn(256, 256); B.name = "B"
        v = chalk.randn(256, 1); v.name = "v"
        gm = chalk.capture(function(v) return A:matmul(B):matmul(v) end, v)
        rm = gm:superoptimize{depth = 2}
        print(("matmul chain: %s (%.0f flops) -> %s (%.0f flops)"):format(tostring(rm.original),
          rm.original.flops, tostring(rm.best), rm.best.flops))
        cases = {{"rmsnorm", g, res}, {"softmax", gs, rs}, {"scores", ga, ra}, {"chain", gm, rm}}
        for _, c in ipairs(cases) do
          local _, _, before = c[2]:totals()
          local r = c[2]:optimize{"dce", "cse", "fold", "algebra"}
          local _, _, after = c[2]:totals()
          print(("%-8s passes: %.1f -> %.1f KB moved;  search: %.1f KB"):format(c[1], before / 1024,
            after / 1024, (before - c[3].original.bytes + c[3].best.bytes) / 1024))
        end
        mchosen = rm:capture(rm.best)
        print(("measured: (A @ B) @ v %.3f ms, A @ (B @ v) %.3f ms")
          :format(best(gm, 10), best(mchosen, 10)))]],
      check = function() assert(tostring(rm.best) == "A @ (B @ v)") end,
    },
  },
}
