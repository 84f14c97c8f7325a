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
