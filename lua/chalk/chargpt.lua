-- chargpt.lua: nn.CharGPT, the tiny character transformer of the serving lessons (13-15, 17), with
-- its training on data.words(), its cache under chalk.out_dir, and lm:generate (KV cache or not).
--
--   lm = nn.CharGPT{layers=2, heads=4, dim=64, context=32}   -- untrained: random weights
--   lm = nn.CharGPT.pretrained()     -- trained once (seconds), saved under chalk.out_dir, reused
--   text, st = lm:generate("ca", {max_tokens=16, temperature=0, kv_cache=true})
--
-- The vocabulary is "." (the end of a word, also the start of one) and a to z: token i is
-- VOCAB:sub(i, i). A KV cache is one [B, heads, context, dim/heads] key and value tensor per
-- layer, allocated under the memory category "kv_cache", so chalk.memory_stats() shows its
-- bytes: 2 L H d_head x 4 bytes per token.
local chalk = require "chalk"
local nn = require "chalk.nn"
local data = require "chalk.data"

local CharGPT = nn.Module:extend("CharGPT")
nn.CharGPT = CharGPT

CharGPT.VOCAB = ".abcdefghijklmnopqrstuvwxyz"
local VOCAB = CharGPT.VOCAB
local V = #VOCAB
local index_of = {}
for i = 1, V do index_of[VOCAB:sub(i, i)] = i end

function CharGPT:__init(cfg)
  cfg = cfg or {}
  self.n_layer, self.n_head = cfg.layers or 2, cfg.heads or 4
  self.dim, self.context = cfg.dim or 64, cfg.context or 32
  assert(self.dim % self.n_head == 0, "nn.CharGPT: dim must be a multiple of heads")
  self.vocab = VOCAB
  self.tok = nn.Embedding(V, self.dim)
  self.pos = nn.Embedding(self.context, self.dim)
  nn.init.normal_(self.tok.weight, 0, 0.1)
  nn.init.normal_(self.pos.weight, 0, 0.1)
  for l = 1, self.n_layer do self["block" .. l] = nn.TransformerBlock(self.dim, self.n_head) end
  self.ln_f = nn.LayerNorm(self.dim)
  self.head = nn.Linear(self.dim, V)
end

function CharGPT:config()
  return { layers = self.n_layer, heads = self.n_head, dim = self.dim, context = self.context }
end

function CharGPT:extra_repr()
  return ("layers=%d, heads=%d, dim=%d, context=%d, vocab=%d"):format(self.n_layer, self.n_head, self.dim,
    self.context, V)
end

-- Token ids (1-based) of a string; an unknown character is an error naming it.
function CharGPT.encode(s)
  local ids = {}
  for i = 1, #s do
    local id = index_of[s:sub(i, i)]
    if not id then error(("CharGPT.encode: %q is not in the vocabulary (. and a-z)"):format(s:sub(i, i)), 2) end
    ids[i] = id
  end
  return ids
end

function CharGPT.decode(ids)
  local out = {}
  for i, id in ipairs(ids) do out[i] = VOCAB:sub(id, id) end
  return table.concat(out)
end

-- Token ids as an i64 tensor on the device (nil or "cpu": the host).
local function ids_tensor(rows, device)
  local t = chalk.tensor(rows, { dtype = "i64" })
  if device and device ~= "cpu" then t = t:to(device) end
  return t
end

local function positions(B, p0, T, device)
  local rows = {}
  for b = 1, B do
    local r = {}
    for t = 1, T do r[t] = p0 + t end
    rows[b] = r
  end
  return ids_tensor(rows, device)
end

-- The device the model's parameters live on ("cpu" or "cuda").
function CharGPT:device() return self.tok.weight.device end

-- Full forward: idx [B,T] of token ids -> logits [B,T,V] (every position, recomputed).
function CharGPT:forward(idx)
  local B, T = idx.shape[1], idx.shape[2]
  assert(T <= self.context, ("CharGPT: %d tokens exceed the context of %d"):format(T, self.context))
  local x = self.tok(idx) + self.pos(positions(B, 0, T, idx.device))
  for l = 1, self.n_layer do x = self["block" .. l](x) end
  return self.head(self.ln_f(x))
end

-- A KV cache for B sequences: per layer one key and one value tensor [B, H, context, d_head],
-- allocated under the memory category "kv_cache"; cache.len is the number of positions filled.
function CharGPT:new_cache(B)
  local H, dh = self.n_head, self.dim // self.n_head
  local cache = { k = {}, v = {}, len = 0, batch = B }
  local dev = self:device()
  chalk.with_category("kv_cache", function()
    for l = 1, self.n_layer do
      cache.k[l] = chalk.zeros({ B, H, self.context, dh }, { device = dev })
      cache.v[l] = chalk.zeros({ B, H, self.context, dh }, { device = dev })
    end
  end)
  return cache
end

-- One block with the cache: x [B,T,d] holds positions p0+1 .. p0+T; their keys and values are
-- written into the cache, and their queries attend over positions 1 .. p0+T.
local function block_cached(blk, x, ck, cv, p0)
  local B, T, d = x.shape[1], x.shape[2], x.shape[3]
  local att = blk.attn
  local h = att.heads
  local dh = d // h
  local qkv = att.qkv(blk.ln1(x))
  local function split(i) return qkv:narrow(3, (i - 1) * d + 1, d):reshape(B, T, h, dh):transpose(2, 3) end
  local q = split(1)
  ck:narrow(3, p0 + 1, T):copy_(split(2))
  cv:narrow(3, p0 + 1, T):copy_(split(3))
  local L = p0 + T
  local k, v = ck:narrow(3, 1, L), cv:narrow(3, 1, L)
  local s = q:matmul(k:transpose(3, 4)) * (1 / math.sqrt(dh))     -- [B,h,T,L]
  if T > 1 then s = s + nn.causal_mask(L, x.device):narrow(1, p0 + 1, T) end -- a query sees keys <= itself
  local y = s:softmax(-1):matmul(v):transpose(2, 3):reshape(B, T, d)
  x = x + att.proj(y)
  return x + blk.mlp(blk.ln2(x))
end

-- Forward of positions cache.len+1 .. cache.len+T with the cache: logits [B,T,V].
function CharGPT:forward_cached(idx, cache)
  local B, T = idx.shape[1], idx.shape[2]
  local p0 = cache.len
  if p0 + T > self.context then
    error(("CharGPT: %d cached + %d new tokens exceed the context of %d"):format(p0, T, self.context), 2)
  end
  local x = self.tok(idx) + self.pos(positions(B, p0, T, idx.device))
  for l = 1, self.n_layer do x = block_cached(self["block" .. l], x, cache.k[l], cache.v[l], p0) end
  cache.len = p0 + T
  return self.head(self.ln_f(x))
end

-- ---- sampling -----------------------------------------------------------------------------------

-- A small seeded generator (xorshift64*), so sampling never touches math.random's stream.
function CharGPT.rng(seed)
  local s = (seed or 1) * 0x9E3779B97F4A7C15 ~ 0x2545F4914F6CDD1D
  if s == 0 then s = 1 end
  return function()
    s = s ~ (s >> 12); s = s ~ (s << 25); s = s ~ (s >> 27)
    return ((s * 0x2545F4914F6CDD1D) >> 11) / 9007199254740992.0   -- [0, 1)
  end
end

-- Probabilities of the next token from a row of logits (a Lua list), with temperature and top_k.
function CharGPT.probs(row, temperature, top_k)
  local n = #row
  local keep = {}
  if top_k and top_k < n then
    local order = {}
    for i = 1, n do order[i] = i end
    table.sort(order, function(a, b) return row[a] > row[b] or (row[a] == row[b] and a < b) end)
    for i = 1, top_k do keep[order[i]] = true end
  end
  local m = -math.huge
  for i = 1, n do if row[i] > m then m = row[i] end end
  local p, z = {}, 0
  for i = 1, n do
    p[i] = (not top_k or top_k >= n or keep[i]) and math.exp((row[i] - m) / temperature) or 0
    z = z + p[i]
  end
  for i = 1, n do p[i] = p[i] / z end
  return p
end

-- The next token from a row of logits: argmax when temperature is 0, else a draw with rand().
function CharGPT.pick(row, temperature, top_k, rand)
  if not temperature or temperature == 0 then
    local best = 1
    for i = 2, #row do if row[i] > row[best] then best = i end end
    return best
  end
  local p = CharGPT.probs(row, temperature, top_k)
  local u, acc = rand(), 0
  for i = 1, #p do
    acc = acc + p[i]
    if u < acc then return i end
  end
  return #p
end

-- lm:generate(prompt, opts) -> text, stats. prompt is a string (or a list of strings of one length:
-- a batch, then text is a list). opts: max_tokens (16), temperature (1; 0 is greedy), top_k, seed (1),
-- kv_cache (true; false recomputes every position each step), stop (true: a sequence ends at ".").
-- stats: tokens, seconds, tokens_per_s, kv_cache, kv_bytes (allocator, category kv_cache).
function CharGPT:generate(prompt, opts)
  opts = opts or {}
  local batch = type(prompt) == "table"
  local prompts = batch and prompt or { prompt }
  local B = #prompts
  local max_tokens, temperature = opts.max_tokens or 16, opts.temperature or 1
  local use_cache, stop = opts.kv_cache ~= false, opts.stop ~= false
  local rand = CharGPT.rng(opts.seed or 1)
  local seqs, done, out = {}, {}, {}
  for b = 1, B do
    seqs[b] = CharGPT.encode("." .. prompts[b])
    if #seqs[b] ~= #seqs[1] then error("CharGPT:generate: the prompts of a batch must have one length", 2) end
    out[b] = {}
  end
  local P = #seqs[1]
  max_tokens = math.min(max_tokens, self.context - P)
  local dev = self:device()
  local kind = dev:match("^%a+")   -- memory_stats() is keyed by device type ("cuda" for "cuda:0")
  local function kv_now() return (chalk.memory_stats()[kind] or {})["kv_cache"] or 0 end
  local before = kv_now()
  local t0 = chalk.clock()
  local cache = use_cache and self:new_cache(B)
  local kv_bytes = kv_now() - before
  local produced = 0
  chalk.no_grad(function()
    local next_in = seqs
    for step = 1, max_tokens do
      local logits
      if use_cache then logits = self:forward_cached(ids_tensor(next_in, dev), cache)
      else logits = self:forward(ids_tensor(seqs, dev)) end
      local T = logits.shape[2]
      local last = logits:narrow(2, T, 1):reshape(B, V):totable()
      local col, all_done = {}, true
      for b = 1, B do
        local id = CharGPT.pick(last[b], temperature, opts.top_k, rand)
        seqs[b][#seqs[b] + 1] = id
        col[b] = { id }
        if not done[b] then
          if stop and id == 1 then done[b] = true else out[b][#out[b] + 1] = id; produced = produced + 1 end
        end
        all_done = all_done and done[b]
      end
      next_in = col
      if all_done and step < max_tokens then break end
    end
  end)
  local seconds = chalk.clock() - t0
  local texts = {}
  for b = 1, B do texts[b] = CharGPT.decode(out[b]) end
  local st = { tokens = produced, seconds = seconds, tokens_per_s = produced / math.max(seconds, 1e-9),
               kv_cache = use_cache, kv_bytes = kv_bytes,
               kv_bytes_per_token = use_cache and kv_bytes / (B * self.context) or 0 }
  if batch then return texts, st end
  return texts[1], st
end

-- ---- training on data.words() -------------------------------------------------------------------

-- The words as one stream ".word.word." split into training and validation words (every tenth
-- word is validation), as lists of token ids.
function CharGPT.streams(words)
  words = words or data.words()
  local tr, va = { 1 }, { 1 }
  for i, w in ipairs(words) do
    local s = (i % 10 == 0) and va or tr
    for _, id in ipairs(CharGPT.encode(w)) do s[#s + 1] = id end
    s[#s + 1] = 1
  end
  return tr, va
end

-- Unigram baseline: cross-entropy (nats) of the validation stream under training letter frequencies.
function CharGPT.unigram_loss(tr, va)
  local count = {}
  for i = 1, V do count[i] = 1 end
  for _, id in ipairs(tr) do count[id] = count[id] + 1 end
  local n = #tr + V
  local loss = 0
  for _, id in ipairs(va) do loss = loss - math.log(count[id] / n) end
  return loss / #va
end

local function windows(stream, B, T, rand)
  local x, y = {}, {}
  for b = 1, B do
    local s = 1 + math.floor(rand() * (#stream - T - 1))
    local xr, yr = {}, {}
    for t = 1, T do xr[t], yr[t] = stream[s + t - 1], stream[s + t] end
    x[b], y[b] = xr, yr
  end
  return ids_tensor(x), ids_tensor(y)
end
CharGPT.windows = windows -- B random windows of T tokens and their next tokens (nn.MoE.fit_lm uses it)

-- Mean cross-entropy (nats per character) on n windows of a stream (fixed seed).
function CharGPT:loss_on(stream, n, B)
  local rand = CharGPT.rng(7)
  local total = 0
  chalk.no_grad(function()
    for _ = 1, n do
      local x, y = windows(stream, B or 32, self.context, rand)
      local logits = self:forward(x)
      total = total + chalk.cross_entropy(logits:reshape(-1, V), y:reshape(-1)):item()
    end
  end)
  return total / n
end

-- lm:fit{steps=, batch=, lr=, seed=}: Adam on random windows of the training words.
-- Returns {train_loss, val_loss, unigram_loss, steps, seconds}.
function CharGPT:fit(opts)
  opts = opts or {}
  local optim = require "chalk.optim"
  local tr, va = CharGPT.streams(opts.words)
  local opt = optim.Adam(self:parameters(), { lr = opts.lr or 6e-3 })
  local rand = CharGPT.rng(opts.seed or 1)
  local B, steps = opts.batch or 32, opts.steps or 150
  local t0, last = chalk.clock(), 0
  for _ = 1, steps do
    local x, y = windows(tr, B, self.context, rand)
    opt:zero_grad()
    local loss = chalk.cross_entropy(self:forward(x):reshape(-1, V), y:reshape(-1))
    loss:backward()
    opt:step()
    last = loss:item()
  end
  return { train_loss = last, val_loss = self:loss_on(va, 8), unigram_loss = CharGPT.unigram_loss(tr, va),
           steps = steps, seconds = chalk.clock() - t0 }
end

-- nn.CharGPT.pretrained([cfg, {steps=, file=}]): the model trained once and cached in
-- chalk.out_dir (file chargpt_L<l>H<h>D<d>C<c>.chalk); retrained (seconds) when the file is missing.
-- The training report is lm.report.
function CharGPT.pretrained(cfg, opts)
  cfg, opts = cfg or {}, opts or {}
  local lm = CharGPT(cfg)
  local steps = opts.steps or 150
  local dir = chalk.out_dir or os.getenv("CHALK_OUT") or "chalk-out"
  local file = opts.file or ("%s/chargpt_L%dH%dD%dC%d_s%d.chalk"):format(dir, lm.n_layer, lm.n_head, lm.dim,
    lm.context, steps)
  local ok, saved = pcall(chalk.load, file)
  if ok and type(saved) == "table" and saved.vocab == VOCAB then
    lm:load_state_dict(saved.state)
    lm.report = saved.report
    lm.report.cached = true
    return lm
  end
  chalk.manual_seed(opts.seed or 1)
  lm = CharGPT(cfg)
  lm.report = lm:fit { steps = steps, seed = opts.seed }
  os.execute(("mkdir -p '%s'"):format(dir))
  chalk.save({ vocab = VOCAB, config = lm:config(), state = lm:state_dict(), report = lm.report }, file)
  lm.report.cached = false
  return lm
end

return CharGPT
