-- costmodel.lua: a cost model of a model and a run (lesson 17): parameters, FLOPs per token
-- (6N training, 2N inference, plus attention), bytes per token, KV bytes per token, arithmetic
-- intensity, and dollars from a price table, next to what chalk.profile measures.
--
--   cm = require "chalk.costmodel"
--   model, cfg = cm.model_for_cost{d = 128, layers = 2, heads = 4, ctx = 16}   -- the ONE place
--   x, y = cm.batch(cfg, 16)              -- characters of data.words(), next-character targets
--   law = cm.laws(cfg)                    -- n_matmul, train_flops_per_token, ...
--
-- model_for_cost builds the model every number of the lesson is measured on: nn.CharGPT, the
-- small causal character transformer of the serving lessons (lua/chalk/chargpt.lua).
local chalk = require "chalk"
local nn = chalk.nn or require "chalk.nn"

local M = {}

M.alphabet = "\nabcdefghijklmnopqrstuvwxyz" -- index 1 is the word separator

function M.model_for_cost(o)
  o = o or {}
  local cfg = {d = o.d or 128, layers = o.layers or 2, heads = o.heads or 4, ctx = o.ctx or 16,
    vocab = #M.alphabet, mlp = 4}
  chalk.manual_seed(o.seed or 17)
  require "chalk.chargpt" -- nn.CharGPT, the serving lessons' model
  return nn.CharGPT{layers = cfg.layers, heads = cfg.heads, dim = cfg.d, context = cfg.ctx}, cfg
end

-- A stream of characters: the words of data.words() joined by "\n", as 1-based indices.
function M.corpus(n)
  local words = chalk.data.words()
  local ids, map = {}, {}
  for i = 1, #M.alphabet do map[M.alphabet:sub(i, i)] = i end
  local k = 0
  for i = 1, #words, 7 do -- every 7th word: a spread over the alphabet
    for c in (words[i] .. "\n"):gmatch(".") do
      k = k + 1
      ids[k] = map[c]
      if k >= n then return ids end
    end
  end
  return ids
end

-- Batch b of B sequences (inputs and next-character targets), consecutive windows of the corpus.
function M.batch(cfg, B, ids, b)
  b = b or 1
  local xs, ys = {}, {}
  for s = 1, B do
    local off = ((b - 1) * B + (s - 1)) * cfg.ctx
    local xr, yr = {}, {}
    for t = 1, cfg.ctx do
      xr[t], yr[t] = ids[off + t], ids[off + t + 1]
    end
    xs[s], ys[s] = xr, yr
  end
  return chalk.tensor(xs):long(), chalk.tensor(ys):long()
end

-- The laws for a config (f32: 4 bytes a number). n_matmul counts the weights of every matmul
-- (attention, MLP, head); embeddings are lookups, not FLOPs. Attention as computed here (the full
-- T x T score matrix, masked): per token and layer 2Td for q k^T and 2Td for att v forward.
function M.laws(cfg, bytes)
  bytes = bytes or 4
  local d, L, T, V = cfg.d, cfg.layers, cfg.ctx, cfg.vocab
  local per_layer = 3 * d * d + d * d + 2 * cfg.mlp * d * d -- qkv, proj, mlp
  local n_matmul = L * per_layer + d * V
  local n_total = n_matmul + L * (3 * d + d + cfg.mlp * d + d + 4 * d) + V + (V + T) * d + 2 * d
  local attn_fwd = 4 * L * T * d
  return {
    n_matmul = n_matmul, n_params = n_total,
    train_6n = 6 * n_matmul, train_attention = 3 * attn_fwd,
    infer_2n = 2 * n_matmul, infer_attention = attn_fwd,
    kv_bytes_per_token = 2 * L * d * bytes, -- K and V of every layer
    weight_bytes = n_total * bytes,
  }
end

-- A small price table: $ per device-hour, on-demand and spot (illustrative list prices of 2024
-- cloud offerings; spot capacity can be taken back at any time).
M.prices = {
  {name = "CPU, 16 cores", on_demand = 0.68, spot = 0.24},
  {name = "A100 80GB", on_demand = 4.10, spot = 1.60},
  {name = "H100 80GB", on_demand = 6.98, spot = 2.80},
}

return M
