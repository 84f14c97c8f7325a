-- serve_spec.lua: the serving stack (lesson 13): paged_attention against dense attention, the block
-- pool's invariant under random add/finish/preempt, eviction of referenced blocks, static and
-- continuous batching giving the same tokens, and lm:generate with and without the KV cache.
local chalk = require "chalk"
local S = require "support"
local nn, serve = chalk.nn, chalk.serve

local function long(v) return chalk.tensor(v, { dtype = "i64" }) end

local function maxdiff(a, b) return (a - b):abs():max():item() end

describe("paged_attention", function()
  -- Dense reference: gather each sequence's keys and values through its table, then chalk.attention.
  local function dense(q, k, v, tab, lens, BS)
    local rows = {}
    for b = 1, #lens do
      local ks, vs = {}, {}
      for t = 1, lens[b] do
        local pb, slot = tab[b][(t - 1) // BS + 1], (t - 1) % BS + 1
        ks[t] = k:select(1, pb):select(1, slot):unsqueeze(2)  -- [H,1,D]
        vs[t] = v:select(1, pb):select(1, slot):unsqueeze(2)
      end
      local K, V = chalk.cat(ks, 2), chalk.cat(vs, 2)         -- [H,L,D]
      rows[b] = chalk.attention(q:select(1, b):unsqueeze(2), K, V):squeeze(2):unsqueeze(1)
    end
    return chalk.cat(rows, 1)
  end

  for _, dtype in ipairs { "f32", "f64" } do
    it("equals dense attention through a scattered block table (" .. dtype .. ", awkward sizes)", function()
      chalk.manual_seed(5)
      local B, H, D, BS, NB = 4, 3, 5, 3, 11
      local k = chalk.randn(NB, BS, H, D):to(dtype)
      local v = chalk.randn(NB, BS, H, D):to(dtype)
      local q = chalk.randn(B, H, D):to(dtype)
      local tab = { { 7, 2, 11, 4 }, { 9, 1, 1, 1 }, { 3, 10, 5, 8 }, { 6, 6, 6, 6 } }
      local lens = { 10, 1, 12, 3 }
      local out = chalk.paged_attention(q, k, v, long(tab), long(lens))
      assert.are.same({ B, H, D }, out.shape)
      assert.is_true(maxdiff(out, dense(q, k, v, tab, lens, BS)) < (dtype == "f32" and 1e-5 or 1e-12))
    end)
  end

  it("names the sequence whose table points outside the pool, and has no gradient", function()
    local q, k = chalk.randn(1, 1, 2), chalk.randn(2, 2, 1, 2)
    S.error_matching(function() chalk.paged_attention(q, k, k, long { { 3 } }, long { 2 }) end,
      "sequence 1, logical block 1 maps to 3")
    S.error_matching(function() chalk.paged_attention(q, k, k, long { { 1 } }, long { 3 }) end, "length 3")
    q:requires_grad_()
    local y = chalk.paged_attention(q, k, k, long { { 2 } }, long { 2 })
    S.error_matching(function() y:sum():backward() end, "paged_attention has no gradient rule")
  end)
end)

describe("block pool", function()
  it("keeps free + evictable + in use = total under random add/finish/preempt", function()
    local rand = nn.CharGPT.rng(11)
    local BS = 2
    local cache = serve.RadixCache(BS)
    local pool = serve.BlockPool(12, BS, cache)
    local live = {}
    for step = 1, 400 do
      local u = rand()
      if u < 0.5 then                                   -- add: a prompt from a small alphabet
        local toks = {}
        for i = 1, 2 + math.floor(rand() * 6) do toks[i] = 1 + math.floor(rand() * 2) end
        local got = cache:match(toks, #toks - 1)
        for _, b in ipairs(got) do pool:retain(b) end
        local ok = true
        while #got < (#toks + BS - 1) // BS do
          local b = pool:alloc()
          if not b then ok = false; break end
          got[#got + 1] = b
        end
        if ok then
          cache:insert(toks, #toks, got)
          live[#live + 1] = got
        else
          for _, b in ipairs(got) do pool:release(b) end
        end
      elseif #live > 0 then                             -- finish or preempt: drop every reference
        local i = 1 + math.floor(rand() * #live)
        for _, b in ipairs(table.remove(live, i)) do pool:release(b) end
      end
      local c = pool:check("step " .. step)
      assert.are.equal(12, c.free + c.evictable + c.in_use)
      for _, seq in ipairs(live) do
        for _, b in ipairs(seq) do assert.is_true(pool.ref[b] > 0) end
      end
    end
    assert.is_true(pool.evictions > 0, "the test should have exercised eviction")
  end)

  it("never evicts a referenced block, and fails loudly when the books do not add up", function()
    local cache = serve.RadixCache(2)
    local pool = serve.BlockPool(2, 2, cache)
    local a, b = pool:alloc(), pool:alloc()
    cache:insert({ 1, 2, 1, 2 }, 4, { a, b })
    assert.is_nil(pool:alloc())                         -- both referenced: nothing to evict
    pool:release(b)                                     -- b is an unreferenced cached leaf
    assert.are.equal(b, pool:alloc())                   -- evicted for the new allocation
    assert.are.equal(2, pool:check().in_use)
    local plain = serve.BlockPool(2, 2)
    plain.ref[plain:alloc()] = 0                        -- a block lost from the books
    S.error_matching(function() plain:check() end, "free 1 + evictable 0 + in use 0 ~= total 2")
  end)
end)

describe("serve.Engine", function()
  local lm
  setup(function()
    chalk.manual_seed(2)
    lm = nn.CharGPT { layers = 1, heads = 2, dim = 16, context = 24 }
  end)

  local function texts(r)
    local t = {}
    for i, q in ipairs(r.requests) do t[i] = q.text end
    return t
  end

  it("gives each request the same tokens under static and continuous batching and preemption", function()
    local trace = serve.trace { n = 8, seed = 4, prompt = { 2, 7 }, output = { 3, 9 } }
    local runs = {}
    for i, o in ipairs { { scheduler = "static", blocks = 64 }, { scheduler = "continuous", blocks = 64 },
                         { scheduler = "continuous", blocks = 9 } } do
      o.block_size, o.max_batch = 3, 6
      runs[i] = serve.Engine(lm, o):run(trace, { temperature = 1, seed = 3 })
    end
    assert.are.same(texts(runs[1]), texts(runs[2]))
    assert.are.same(texts(runs[1]), texts(runs[3]))
    assert.is_true(runs[3].preemptions > 0, "a 9-block pool should preempt")
    assert.is_true(runs[2].iterations < runs[1].iterations)
    assert.is_true(runs[2].waste.max_paged <= 3 - 1)
  end)

  it("reuses a shared prefix through the radix cache", function()
    local trace = serve.trace { n = 6, seed = 1, prompt = { 2, 4 }, output = { 2, 4 }, prefix = "abc.def." }
    local r = serve.Engine(lm, { block_size = 2, blocks = 64, prefix_cache = true }):run(trace)
    local plain = serve.Engine(lm, { block_size = 2, blocks = 64 }):run(trace)
    assert.is_true(r.hit_rate > 0.3, "hit rate " .. r.hit_rate)
    assert.are.same(texts(plain), texts(r))
  end)
end)

describe("nn.CharGPT", function()
  it("generates the same greedy tokens with and without the KV cache, whose bytes are 2 L H d x 4", function()
    chalk.manual_seed(3)
    local lm = nn.CharGPT { layers = 2, heads = 2, dim = 8, context = 16 }
    local a, sa = lm:generate("ab", { max_tokens = 12, temperature = 0, stop = false })
    local b = lm:generate("ab", { max_tokens = 12, temperature = 0, kv_cache = false, stop = false })
    assert.are.equal(12, #a)
    assert.are.equal(a, b)
    assert.are.equal(2 * 2 * 8 * 4, sa.kv_bytes_per_token)
    local batch = lm:generate({ "ab", "ba" }, { max_tokens = 5, temperature = 0, stop = false })
    assert.are.equal(a:sub(1, 5), batch[1])
  end)
end)

describe("serve.speculative", function()
  local target, draft
  setup(function()
    chalk.manual_seed(4)
    target = nn.CharGPT { layers = 1, heads = 2, dim = 16, context = 24 }
    chalk.manual_seed(9)
    draft = nn.CharGPT { layers = 1, heads = 1, dim = 8, context = 24 }
  end)

  it("gives the target's greedy tokens, token for token, for every gamma", function()
    local ref = target:generate("ab", { max_tokens = 18, temperature = 0, stop = false })
    for _, g in ipairs { 1, 3, 5 } do
      local text, st = serve.speculative(target, draft, "ab", { gamma = g, temperature = 0, max_tokens = 18 })
      assert.are.equal(ref, text)
      assert.is_true(st.passes <= 18)
    end
    local text, st = serve.speculative(target, target, "ab", { gamma = 4, temperature = 0, max_tokens = 18 })
    assert.are.equal(ref, text)
    assert.are.equal(1, st.acceptance)                 -- the target as its own draft: all accepted
  end)

  it("samples the target's distribution (chi-square on the second token)", function()
    -- exact marginal of the 2nd generated token: sum over x1 of p(x1) p(x2 | x1)
    local V = #nn.CharGPT.VOCAB
    local function next_probs(ids)
      local lg = target(chalk.tensor({ ids }, { dtype = "i64" }))
      return nn.CharGPT.probs(lg:select(1, 1):select(1, #ids):totable(), 1)
    end
    local p1, want = next_probs { 1, 2 }, {}
    for j = 1, V do want[j] = 0 end
    for x1 = 1, V do
      local p2 = next_probs { 1, 2, x1 }
      for j = 1, V do want[j] = want[j] + p1[x1] * p2[j] end
    end
    local N, got = 3000, {}
    for j = 1, V do got[j] = 0 end
    for s = 1, N do
      local text = serve.speculative(target, draft, "a", { gamma = 2, temperature = 1, max_tokens = 2, seed = s })
      local x2 = nn.CharGPT.encode(text:sub(2, 2))[1]
      got[x2] = got[x2] + 1
    end
    local chi, df, eo, go = 0, -1, 0, 0                -- pool cells expected under 5
    for j = 1, V do
      eo, go = eo + N * want[j], go + got[j]
      if eo >= 5 then chi, df, eo, go = chi + (go - eo) ^ 2 / eo, df + 1, 0, 0 end
    end
    assert.is_true(df >= 10, "too few cells: " .. df)
    assert.is_true(chi < df + 4 * math.sqrt(2 * df), ("chi-square %.1f with %d degrees of freedom"):format(chi, df))
  end)

  it("reproduces E = (1 - a^(g+1)) / (1 - a) with a controlled-acceptance draft", function()
    local tokens, passes = 0, 0
    for s = 1, 30 do
      local _, st = serve.speculative(target, serve.controlled_draft(target, 0.8), "",
        { gamma = 4, temperature = 0, max_tokens = 20, seed = s })
      for _, r in ipairs(st.rounds) do
        if r.proposed == 4 then tokens, passes = tokens + r.accepted + 1, passes + 1 end
      end
    end
    S.assert_close(serve.expected_tokens(0.8, 4), 3.3616, 1e-9)
    assert.is_true(math.abs(tokens / passes - 3.3616) < 0.35, "E measured " .. tokens / passes)
  end)
end)
