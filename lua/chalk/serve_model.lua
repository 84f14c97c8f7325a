-- serve_model.lua: nn.CharGPT run over a paged KV pool (serve.Engine's model half): per layer one
-- key and one value pool [blocks, block_size, heads, d_head] under the memory category "kv_cache";
-- prefill with dense attention over keys gathered through the block table, batched decode with
-- chalk.paged_attention.
local chalk = require "chalk"
local nn = require "chalk.nn"

local M = {}
local Paged = {}
Paged.__index = Paged

function M.PagedModel(lm, blocks, block_size)
  local H, D = lm.n_head, lm.dim // lm.n_head
  local pm = setmetatable({ lm = lm, blocks = blocks, S = block_size, H = H, D = D, k = {}, v = {}, kf = {}, vf = {} },
    Paged)
  chalk.with_category("kv_cache", function()
    for l = 1, lm.n_layer do
      pm.k[l], pm.v[l] = chalk.zeros(blocks, block_size, H, D), chalk.zeros(blocks, block_size, H, D)
      pm.kf[l], pm.vf[l] = pm.k[l]:reshape(blocks * block_size, H, D), pm.v[l]:reshape(blocks * block_size, H, D)
    end
  end)
  return pm
end

-- Bytes of the pool and per token slot (2 L H d_head x element size).
function Paged:bytes() return 2 * self.lm.n_layer * self.blocks * self.S * self.H * self.D * 4 end
function Paged:bytes_per_token() return 2 * self.lm.n_layer * self.H * self.D * 4 end

-- The flat slot (1-based) of token t of a sequence with block table blocks.
function Paged:slot(blocks, t) return (blocks[(t - 1) // self.S + 1] - 1) * self.S + (t - 1) % self.S + 1 end

local function long(v) return chalk.tensor(v, { dtype = "i64" }) end

local function embed(lm, ids, pos)
  return lm.tok(long(ids)) + lm.pos(long(pos))
end

-- Layer l's queries [N,H,D] for the N rows of x; their keys and values go to the cache slots[1..N].
function Paged:project(l, x, N, slots)
  local blk, H, D, d = self.lm["block" .. l], self.H, self.D, self.lm.dim
  local qkv = blk.attn.qkv(blk.ln1(x)):reshape(N, 3 * d)
  local q = qkv:narrow(2, 1, d):reshape(N, H, D)
  local k, v = qkv:narrow(2, d + 1, d):reshape(N, H, D), qkv:narrow(2, 2 * d + 1, d):reshape(N, H, D)
  for i = 1, N do
    self.kf[l]:select(1, slots[i]):copy_(k:select(1, i))
    self.vf[l]:select(1, slots[i]):copy_(v:select(1, i))
  end
  return q
end
-- Prefill of one sequence: tokens[p0+1 .. #tokens] with keys 1 .. p0 already in the pool.
-- Returns the logits of the last position (a Lua list).
function Paged:prefill(tokens, blocks, p0)
  local lm, D = self.lm, self.D
  local L, T, d = #tokens, #tokens - p0, lm.dim
  local ids, pos, slots, new_slots = {}, {}, {}, {}
  for t = 1, T do ids[t], pos[t] = tokens[p0 + t], p0 + t end
  for t = 1, L do slots[t] = self:slot(blocks, t) end
  for t = 1, T do new_slots[t] = slots[p0 + t] end
  local slot_t = long(slots)
  local mask = nn.causal_mask(L):narrow(1, p0 + 1, T)
  local x = embed(lm, { ids }, { pos })                               -- [1,T,d]
  for l = 1, lm.n_layer do
    local blk = lm["block" .. l]
    local q = self:project(l, x, T, new_slots)
    local K = self.kf[l]:index_select(1, slot_t):transpose(1, 2)        -- [H,L,D]
    local V = self.vf[l]:index_select(1, slot_t):transpose(1, 2)
    local s = q:transpose(1, 2):matmul(K:transpose(2, 3)) * (1 / math.sqrt(D)) + mask
    local y = s:softmax(-1):matmul(V):transpose(1, 2):reshape(1, T, d)
    x = x + blk.attn.proj(y)
    x = x + blk.mlp(blk.ln2(x))
  end
  local logits = lm.head(lm.ln_f(x:narrow(2, T, 1)))
  return logits:reshape(-1):totable()
end

-- One decode token for each of a batch of sequences: seqs[i] = {tokens=, blocks=}, whose last token
-- is the new one. Returns a list of logits rows.
function Paged:decode(seqs)
  local lm, d = self.lm, self.lm.dim
  local B = #seqs
  local ids, pos, lens, slots, width = {}, {}, {}, {}, 1
  for i, s in ipairs(seqs) do
    local n = #s.tokens
    ids[i], pos[i], lens[i] = { s.tokens[n] }, { n }, n
    slots[i] = self:slot(s.blocks, n)
    width = math.max(width, #s.blocks)
  end
  local tab = {}
  for i, s in ipairs(seqs) do
    local row = {}
    for j = 1, width do row[j] = s.blocks[j] or 1 end   -- entries past the length are never read
    tab[i] = row
  end
  local table_t, len_t = long(tab), long(lens)
  local x = embed(lm, ids, pos)                                       -- [B,1,d]
  for l = 1, lm.n_layer do
    local blk = lm["block" .. l]
    local q = self:project(l, x, B, slots)
    local y = chalk.paged_attention(q, self.k[l], self.v[l], table_t, len_t):reshape(B, 1, d)
    x = x + blk.attn.proj(y)
    x = x + blk.mlp(blk.ln2(x))
  end
  return lm.head(lm.ln_f(x)):reshape(B, -1):totable()
end

return M
