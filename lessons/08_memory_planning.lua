-- 08_memory_planning.lua: module 8, memory planning: liveness of a captured training step, in-place
-- reuse, offsets packed into one arena (best fit), checked by an independent verifier; the replay
-- runs in the planned arena.
-- Numbers to reproduce (lessons.md): naive sum of tensors vs planned peak vs live lower bound, on a
-- 16-layer MLP. Pictures: the tensor-lifetime Gantt chart and the packed arena.
return {
  title = "Memory planning: liveness, in-place reuse and one packed arena",
  module = 8,
  steps = {
    {
      title = "A captured step of a 16-layer MLP",
      text = [[
        Eager execution asks the allocator for every tensor as it is made and gives it back when
        the last reference goes. A compiler that sees the whole step can do better: it knows
        when each tensor is made and when it is read for the last time, so it can plan every
        tensor's place in one block of memory before the step runs. We capture one SGD step of
        a 16-layer MLP (width 256, batch 64).]],
      code = [[
        chalk.manual_seed(0)
        layers = {}
        for i = 1, 16 do layers[#layers + 1] = nn.Linear(256, 256); layers[#layers + 1] = nn.ReLU() end
        mlp = nn.Sequential(layers)
        opt = optim.SGD(mlp:parameters(), {lr = 0.1})
        xb, yb = chalk.randn(64, 256), chalk.randn(64, 256)
        function step(xb, yb)
          opt:zero_grad()
          local loss = nn.functional.mse_loss(mlp(xb), yb)
          loss:backward(); opt:step()
          return loss
        end
        step(xb, yb)
        g = chalk.capture(step, xb, yb)
        nodes, kernels = g:totals()
        print(("%d ops (%d kernels) in one step"):format(nodes, kernels))]],
    },
    {
      title = "Liveness and the three numbers",
      text = [[
        Liveness: a tensor is live from the node that makes it to the last node that reads it
        (views are aliases of their base, so they keep the base alive). Three numbers frame
        the problem:
          naive sum     every tensor gets its own memory for the whole step;
          lower bound   the most bytes live at any one moment: no plan can use less;
          planned peak  the size of the arena after packing.
        Packing is best fit in execution order: each new tensor takes the smallest free block
        that fits, as an allocator would, but with the whole future known.]],
      code = [[
        plan = g:plan_memory()      -- print(plan) says it all on one long line
        MiB = 1024 * 1024
        print(("naive sum of tensors: %.2f MiB"):format(plan.naive / MiB))
        print(("planned peak:         %.2f MiB"):format(plan.planned / MiB))
        print(("live lower bound:     %.2f MiB"):format(plan.lower_bound / MiB))
        print(("planned / naive: %.1f%%; planned / lower bound: %.3f")
          :format(100 * plan.planned / plan.naive, plan.planned / plan.lower_bound))]],
      check = function()
        assert(plan.planned < plan.naive / 2, "the plan must be well under the naive sum")
        assert(plan.lower_bound <= plan.planned, "no plan beats the lower bound")
      end,
    },
    {
      title = "Lifetimes",
      text = [[
        One bar per tensor in the arena, from the node that makes it to its last reader.
        Forward activations (blue) live long: backward reads them in reverse order, so the
        first layer's activation lives the longest. Backward temporaries (orange) live for a
        few nodes; the optimizer's (green) for one or two. A bar outlined in black would hold
        several values (a result written over an input that died there): step 5 shows why
        this plan has none.]],
      code = [[
        lifetimes_png = g:gantt{file = "08_lifetimes.png", plan = plan}]],
    },
    {
      title = "The packed arena",
      text = [[
        The same tensors drawn at their offsets: x is time (node position), y is the address
        in the arena. Where a tensor dies, its bytes are reused by later ones. The magenta line is
        the arena's size (planned peak), the dark line under it the live lower bound.]],
      code = [[
        arena_png = g:arena{file = "08_arena.png", plan = plan}]],
    },
    {
      title = "In-place reuse",
      text = [[
        The op table marks ops that may write their result over their first input
        (elementwise ops of the same shape). When that input dies at the op, the result can
        take the input's buffer: one tensor fewer to place (here the bias add over the matmul's
        result, backward's products over their operands). But the merged buffer lives longer,
        and best fit can pack longer-lived buffers worse: so the planner also plans without
        in-place and keeps the smaller. The law: in-place reuse never makes the plan worse.]],
      code = [[
        no_inplace = g:plan_memory{inplace = false}
        with_inplace = g:plan_memory()              -- in-place where it helps (the default)
        greedy = g:plan_memory{strategy = "greedy"} -- packing by size, in place
        print(("in place: %d of %d ops that allow it reuse their input's buffer (best fit)")
          :format(with_inplace.inplace, with_inplace.inplace_candidates))
        for _, p in ipairs{{"without in-place", no_inplace}, {"in-place allowed", with_inplace},
                           {"greedy, in place", greedy}} do
          print(("%-17s %3d tensors in the arena, lower bound %.2f MiB, planned %.2f MiB")
            :format(p[1], p[2].buffers, p[2].lower_bound / MiB, p[2].planned / MiB))
        end
        print(("in-place allowed / without: %.3f (never above 1)")
          :format(with_inplace.planned / no_inplace.planned))
        plan = g:plan_memory()]],
      check = function()
        assert(with_inplace.planned <= no_inplace.planned, "in-place reuse never makes the plan worse")
        assert(greedy.inplace > 0 and greedy.buffers < no_inplace.buffers, "in-place reuse happens")
        assert(with_inplace.lower_bound <= no_inplace.lower_bound)
      end,
    },
    {
      title = "Packing strategies",
      text = [[
        Best fit in execution order is what an allocator could do online. Greedy by size
        (largest tensors first, each into the smallest gap of the tensors it overlaps in time)
        sees everything at once; naive packing never reuses. An independent verifier
        recomputes every lifetime from the graph and checks that no two live tensors share a
        byte.]],
      code = [[
        for _, s in ipairs{"bestfit", "greedy", "naive"} do
          local p = g:plan_memory{strategy = s}
          print(("%-8s planned %.2f MiB, verified: %s")
            :format(s, p.planned / MiB, tostring(g:verify_plan())))
        end
        plan = g:plan_memory()]],
    },
    {
      title = "Replay runs in the plan",
      text = [[
        g:replay() allocates the arena once and runs every node's kernel into its planned
        offset: no allocation inside the step, no Lua in the loop. The parameters and their
        gradients live outside the arena (they outlive the step); the arena holds everything
        else. Training goes on exactly as eager steps would.]],
      code = [[
        losses = {}
        for i = 1, 5 do losses[i] = g:replay():item() end
        for i, l in ipairs(losses) do print(("replay %d: loss %.6f"):format(i, l)) end
        print(("outside the arena: %.2f MiB of outputs and gradients, %.2f MiB of parameters, inputs")
          :format(plan.pinned / MiB, plan.external / MiB))]],
      check = function() assert(losses[5] < losses[1], "the replayed steps train") end,
    },
  },
}
