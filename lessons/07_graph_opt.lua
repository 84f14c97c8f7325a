-- 07_graph_opt.lua: module 7, graph-level optimization: dead-code elimination, common
-- subexpressions, constant folding and algebraic rewrites (A@B + A@C -> A@(B+C)), one pass at a
-- time on a captured function, then all of them on a captured training step.
-- Numbers to reproduce (lessons.md): op count and bytes moved before and after, measured from
-- the graphs. Pictures: the graph before and after.
return {
  title = "Graph-level optimization: DCE, CSE, constant folding, algebraic rewrites",
  module = 7,
  steps = {
    {
      title = "A function with waste in it",
      text = [[
        Real model code is full of small waste: a debugging value nobody reads, the same
        activation computed twice, a scale factor recomputed from constants on every call, a
        multiplication by one left from a refactoring, and two matmuls that share a factor
        (a "two-branch" layer x W1 + x W2). Eager execution runs all of it, every time. We
        capture the function once and let passes clean it up.]],
      code = [[
        chalk.manual_seed(0)
        d = 256
        x = chalk.randn(128, d); x.name = "x"
        W1 = chalk.randn(d, d) * 0.05; W1.name = "W1"
        W2 = chalk.randn(d, d) * 0.05; W2.name = "W2"
        function layer(x)
          local debug_norm = x:exp():sum()                 -- dead: nobody reads it
          local one = chalk.tensor(1)
          local h = (x:matmul(W1) + x:matmul(W2)) * one    -- A@B + A@C, and x*1
          local scale = 1 / chalk.tensor(d):sqrt()         -- constants only: foldable
          local a = (h * scale):tanh()
          local b = (h * scale):tanh()                     -- the same as a: CSE
          return a + b
        end
        g = chalk.capture(layer, x)
        want = layer(x)
        n_before, k_before, bytes_before = g:totals()
        MB = 1024 * 1024
        print(("before: %d ops (%d kernels), %.2f MB moved")
          :format(n_before, k_before, bytes_before / MB))]],
    },
    {
      title = "The captured graph",
      text = [[
        print(g) lists the nodes in execution order with what each reads, makes, computes
        and moves; %n names node n's result. The picture draws the same graph.]],
      code = [[
        print(g)
        viz.graph(g, {file = "07_before.png", title = "as captured"})]],
    },
    {
      title = "Dead-code elimination",
      text = [[
        DCE walks the graph from the end: a node none of whose results is read (by another
        node, as an output, or as a gradient) is removed, and then its inputs may become dead
        too. In-place writes (optimizer updates) are side effects and are never removed.]],
      code = [[
        g:optimize{"dce"}
        print(g:explain("dce"))]],
    },
    {
      title = "Common subexpressions",
      text = [[
        CSE finds a node that repeats an earlier one: same op, same attributes, same inputs
        (and no in-place write to those inputs in between). Its readers use the earlier
        result. (h * scale) and its tanh were computed twice.]],
      code = [[
        g:optimize{"cse"}
        print(g:explain("cse"))]],
    },
    {
      title = "Constant folding",
      text = [[
        A node whose inputs are all constants of the graph (numbers the function made, never
        parameters or inputs, which can change between replays) runs once now, at compile
        time; its result becomes a constant. 1/sqrt(256) is computed once instead of on every
        call.]],
      code = [[
        g:optimize{"fold"}
        print(g:explain("fold"))]],
    },
    {
      title = "Algebraic rewrites",
      text = [[
        Identities of arithmetic: x*1 -> x, x+0 -> x, transpose(transpose(x)) -> x, and the
        distributive law A@B + A@C -> A@(B+C), which trades a matmul (2*128*256*256 flops) for
        an add of two weight matrices. Floating point is not exactly associative, so this one
        changes results by rounding; the others change nothing. A second CSE/DCE round tidies
        up what the rewrites left.]],
      code = [[
        g:optimize{"algebra"}
        print(g:explain("algebra"))
        for _, r in ipairs(g:optimize{"cse", "dce"}) do print(r) end]],
    },
    {
      title = "Before and after",
      text = [[
        The optimized graph computes the same function with fewer ops and less memory
        traffic. We replay it and compare with the original function run eagerly.]],
      code = [[
        n_after, k_after, bytes_after, flops_after = g:totals()
        got = g:replay()
        diff = (got - want):abs():max():item()
        print(("op count before: %d"):format(n_before))
        print(("op count after: %d"):format(n_after))
        print(("bytes moved before (MB): %.2f"):format(bytes_before / MB))
        print(("bytes moved after (MB): %.2f"):format(bytes_after / MB))
        print(("largest difference to eager: %.2g"):format(diff))
        viz.graph(g, {file = "07_after.png", title = "after dce, cse, fold, algebra"})]],
      check = function()
        assert(n_after <= n_before - 6 and bytes_after < bytes_before, "every pass must have removed something")
        assert(diff < 1e-5, "same function")
      end,
    },
    {
      title = "The same passes on a training step",
      text = [[
        A captured training step (forward, backward, SGD update) has its own redundancy: the
        backward of a mean divides by a constant count, gradients of x*x multiply g by x twice,
        transposes of transposes appear in matmul gradients. Fusion (lesson 6) comes last.]],
      code = [[
        model = nn.Sequential{ nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 10) }
        opt = optim.SGD(model:parameters(), {lr = 0.05})
        xb, yb = chalk.randn(32, 64), chalk.randn(32, 10)
        function step(xb, yb)
          opt:zero_grad(); local loss = nn.functional.mse_loss(model(xb), yb)
          loss:backward(); opt:step(); return loss
        end
        step(xb, yb)
        ts = chalk.capture(step, xb, yb)
        tn0, tk0, tb0 = ts:totals()
        for _, r in ipairs(ts:optimize{"dce", "cse", "fold", "algebra", "fuse"}) do print(r) end
        tn1, tk1, tb1 = ts:totals()
        print(("training step op count before: %d, bytes moved %.1f KB"):format(tn0, tb0 / 1024))
        print(("training step op count after: %d, bytes moved %.1f KB"):format(tn1, tb1 / 1024))
        local l1, l2, l3 = ts:replay():item(), ts:replay():item(), ts:replay():item()
        print(("three replayed steps, loss %.4f, %.4f, %.4f"):format(l1, l2, l3))]],
      check = function() assert(tn1 < tn0 and tb1 < tb0, "the step shrinks too") end,
    },
  },
}
