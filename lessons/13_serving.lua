-- 13_serving.lua: module 13, serving a language model: a tiny character GPT trained on the word list,
-- its KV cache, paged KV blocks read by the paged_attention op, static against continuous batching
-- on a Poisson trace with recompute preemption, and a radix prefix cache.
-- Numbers to reproduce (lessons.md row 13): KV bytes/token = 2 L H d x 4 measured from the allocator;
-- decode FLOPs per token with and without the cache; reservation waste vs paged waste (< block_size
-- per sequence); throughput and mean/p99 latency static vs continuous; prefix hit rate; the pool's
-- invariant free + evictable + in use = total after every step.
return {
  title = "Serving: KV cache, paged blocks, continuous batching, prefix sharing",
  module = 13,
  timing = { "wall", "tokens/s", "trained in" },
  -- report(name, r): one row of the batching table (simulated clock)
  setup = [[
    -- enqueue(engine, trace): add a trace's requests to an engine that is then stepped by hand
    function enqueue(e, trace)
      for _, t in ipairs(trace) do e:add(t.prompt, {max_tokens = t.max_tokens, arrival = t.arrival}) end
    end
    -- flops_per_token(n, kv): profiler FLOPs per generated token over n greedy tokens, and the text
    function flops_per_token(n, kv)
      local out
      local prof = chalk.profile(function()
        out = lm:generate("", {max_tokens = n, temperature = 0, kv_cache = kv, stop = false})
      end)
      local _, flops = serve.cost(prof)
      return flops / n, out
    end
    function report(name, r)
      print(("%-11s %6d %8.0f tok/s %9.2f %9.2f %9.2f %6d"):format(name, r.iterations, r.throughput,
        r.mean_latency * 1e3, r.p99_latency * 1e3, r.mean_ttft * 1e3, r.preemptions))
    end]],
  steps = {
    {
      title = "A tiny character GPT",
      text = [[
        Our model reads and writes words one letter at a time: 27 tokens ('.' ends a word).
        nn.CharGPT is 2 pre-norm transformer blocks of width 64 with 4 heads, trained with Adam
        on the Debian word list for 150 steps (about 20 s, once: the weights are saved in the
        output folder and reused). Its validation loss must beat the unigram baseline, the loss
        of a model that only knows how often each letter occurs.]],
      code = [[
        lm = nn.CharGPT.pretrained()
        rep = lm.report
        print(lm:extra_repr())
        print(("trained in %.1f s"):format(rep.seconds))
        print(("validation loss: %.3f nats/char (unigram baseline %.3f)"):format(rep.val_loss,
          rep.unigram_loss))
        for s = 1, 6 do io.write(lm:generate("", {temperature = 0.8, seed = s}), "  ") end
        print()]],
    },
    {
      title = "The KV cache: bytes per token",
      text = [[
        Generating token t needs the keys and values of tokens 1..t-1 in every layer. The KV cache
        keeps them: per token 2 (K and V) x L layers x H heads x d (head dim) x 4 bytes. The
        cache is allocated under its own memory category, so the allocator counts it.]],
      code = [[
        L, H, d = lm.n_layer, lm.n_head, lm.dim // lm.n_head
        text, st = lm:generate("sta", {max_tokens = 12, temperature = 0})
        print("sta -> " .. text)
        print(("KV bytes per token measured: %d (allocator, category kv_cache)"):format(
          st.kv_bytes_per_token))
        print(("law 2 L H d x 4 = 2 x %d x %d x %d x 4 = %d"):format(L, H, d, 2 * L * H * d * 4))]],
    },
    {
      title = "Decode with and without the cache",
      text = [[
        Without the cache every new token re-runs the whole prefix: the FLOPs of step t grow
        with t. With it, a step runs one position. flops_per_token(n, kv) profiles n greedy
        tokens (FLOPs from the op table); both ways give the same greedy tokens.]],
      code = [[
        print("tokens   FLOPs/token with cache   without     ratio")
        for _, n in ipairs {8, 16, 31} do
          local with, a = flops_per_token(n, true)
          local without, b = flops_per_token(n, false)
          assert(a == b, "greedy tokens differ with and without the cache")
          print(("%6d %22.0f %11.0f %8.2f"):format(n, with, without, without / with))
        end
        _, sa = lm:generate("", {max_tokens = 31, temperature = 0, stop = false})
        _, sb = lm:generate("", {max_tokens = 31, temperature = 0, stop = false, kv_cache = false})
        print(("wall: %.0f tokens/s with the cache, %.0f without"):format(sa.tokens_per_s,
          sb.tokens_per_s))]],
    },
    {
      title = "Paged KV: blocks and a block table",
      text = [[
        A serving engine does not reserve a whole context per request. It keeps one pool of
        blocks of block_size tokens; each sequence has a block table, logical block -> physical
        block. paged_attention is an op of the table: a decode query attends over keys and
        values read through the table. It equals dense attention over the same keys.]],
      code = [[
        chalk.manual_seed(1)
        kc, vc = chalk.randn(6, 4, 2, 8), chalk.randn(6, 4, 2, 8)      -- 6 blocks of 4 slots
        q = chalk.randn(1, 2, 8)
        tbl = chalk.tensor({{5, 2, 6}}, {dtype = "i64"})              -- logical 1,2,3 -> 5,2,6
        y = chalk.paged_attention(q, kc, vc, tbl, chalk.tensor({10}, {dtype = "i64"}))
        K = chalk.cat({kc:select(1, 5), kc:select(1, 2), kc:select(1, 6):narrow(1, 1, 2)}, 1)
        V = chalk.cat({vc:select(1, 5), vc:select(1, 2), vc:select(1, 6):narrow(1, 1, 2)}, 1)
        dense = chalk.attention(q:transpose(1, 2), K:transpose(1, 2), V:transpose(1, 2))
        print(("paged vs dense, 10 tokens in 3 blocks: max difference %.1e"):format(
          (y - dense:transpose(1, 2)):abs():max():item()))
        print("gradient: " .. chalk.op_info("paged_attention").grad)]],
    },
    {
      title = "Static against continuous batching",
      text = [[
        32 requests arrive as a Poisson process; prompts of 3-8 letters, 2-22 new tokens each.
        Static batching takes up to 8 requests and runs them until the last one finishes;
        continuous batching admits and retires at every iteration. Times are on a simulated
        A100-like clock: each op costs max(FLOPs/peak, bytes/bandwidth) + a 5 us launch.]],
      code = [[
        trace = serve.trace {n = 32, rate = 1000, seed = 1, prompt = {3, 8}, output = {2, 22}}
        runs, engines = {}, {}
        for _, s in ipairs {"static", "continuous"} do
          engines[s] = serve.Engine(lm, {block_size = 4, blocks = 96, scheduler = s, max_batch = 8})
          runs[s] = engines[s]:run(trace)
        end
        print("scheduler   iters  throughput   mean ms    p99 ms   TTFT ms  preempt")
        report("static", runs.static)
        report("continuous", runs.continuous)
        print(("same tokens per request: %s"):format(tostring(runs.static.requests[7].text ==
          runs.continuous.requests[7].text)))
        print(("wall: static %.2f s, continuous %.2f s"):format(runs.static.wall, runs.continuous.wall))
        viz.gantt(engines, {file = "13_gantt.png"})]],
    },
    {
      title = "Out of blocks: recompute preemption",
      text = [[
        With only 20 blocks the running sequences outgrow the pool. The newest running sequence
        is preempted: its blocks go back to the free list and it is recomputed later from its
        tokens. After every step the pool checks free + evictable + in use = total.
        (enqueue(engine, trace) adds a trace's requests; engine:step() runs one iteration.)]],
      code = [[
        small = serve.Engine(lm, {block_size = 4, blocks = 20, scheduler = "continuous", max_batch = 8})
        enqueue(small, trace)
        for _ = 1, 12 do small:step() end
        st = small.pool:check()
        print(("after step 12: free %d + evictable %d + in use %d = total %d"):format(st.free,
          st.evictable, st.in_use, st.total))
        viz.blocks(small, {file = "13_blocks.png"})
        while not small:done() do small:step() end
        same = true
        for i, r in ipairs(small.requests) do
          same = same and nn.CharGPT.decode(r.out) == runs.continuous.requests[i].text
        end
        print(("preemptions: %d; tokens equal to the 96-block run: %s"):format(small.preemptions,
          tostring(same)))]],
    },
    {
      title = "Memory waste: reservation against paging",
      text = [[
        A contiguous cache must reserve a whole context (32 slots) per sequence: slots for tokens
        not generated yet, and past the request's end. Paging wastes only the empty slots of each
        sequence's last block: at most block_size - 1 = 3.]],
      code = [[
        w = runs.continuous.waste
        print(("mean slots holding tokens per step:      %6.1f"):format(w.used))
        print(("contiguous waste (reserved + internal):  %6.1f"):format(w.reserved + w.internal))
        print(("paged waste (empty slots, last blocks):  %6.1f"):format(w.paged))
        print(("largest paged waste of one sequence: %d slots (law: <= block_size - 1 = 3)"):format(
          w.max_paged))
        serve.draw_waste(runs.continuous, {file = "13_waste.png", block_size = 4})]],
    },
    {
      title = "Prefix sharing with a radix tree",
      text = [[
        Every request now starts with the same 12-letter system prompt (then 2-6 letters).
        The radix cache maps full blocks of prompt tokens to physical blocks, with reference
        counts; a new request reuses the matched blocks, and unreferenced leaves are evicted
        least recently used.
        Hit rate = matched prompt tokens / prompt tokens.]],
      code = [[
        shared = serve.trace {n = 24, rate = 3000, seed = 2, prefix = "you.are.kind", prompt = {2, 6},
          output = {4, 10}}
        pc = serve.Engine(lm, {block_size = 4, blocks = 96, prefix_cache = true})
        enqueue(pc, shared)
        for _ = 1, 6 do pc:step() end
        viz.radix(pc, {file = "13_radix.png"})
        while not pc:done() do pc:step() end
        with = pc:run()
        without = serve.Engine(lm, {block_size = 4, blocks = 96}):run(shared)
        print(("prefix hit rate: %.3f (matched tokens / prompt tokens)"):format(with.hit_rate))
        print(("prefill+decode on the simulated clock: %.2f ms with the cache, %.2f ms without"):format(
          with.makespan * 1e3, without.makespan * 1e3))]],
    },
  },
}
