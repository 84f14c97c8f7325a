-- serve_speculative.lua: speculative decoding (lesson 14): a draft proposes gamma tokens, the target
-- scores gamma + 1 positions in one pass, each draft token x is kept when u < p(x) / q(x), else the
-- token is drawn from norm(max(0, p - q)) and both KV caches roll back; all kept: a bonus token
-- from the target's last position. The output has exactly the target's distribution.
--
--   text, st = serve.speculative(target, draft, "ca", {gamma=4, temperature=0, max_tokens=16, seed=1})
--   draft = serve.controlled_draft(target, 0.8)  -- accepts each token with probability ~0.8
--
-- Rolling back a cache is setting its length: positions past it are overwritten by the next feed.
local chalk = require "chalk"
local CharGPT = require "chalk.chargpt"

local M = {}

local function long(v) return chalk.tensor(v, { dtype = "i64" }) end

-- Feeds tokens[cache.len+1 .. upto] to lm; the logits rows of those positions (Lua lists).
local function feed(lm, cache, tokens, upto)
  local ids = {}
  for t = cache.len + 1, upto do ids[#ids + 1] = tokens[t] end
  local rows
  chalk.no_grad(function()
    local logits = lm:forward_cached(long { ids }, cache)
    rows = logits:reshape(#ids, -1):totable()
  end)
  return rows
end

-- Next-token probabilities of a logits row: one-hot at the argmax when temperature is 0.
local function probs(row, temperature)
  if temperature == 0 then
    local p, best = {}, 1
    for i = 1, #row do p[i] = 0; if row[i] > row[best] then best = i end end
    p[best] = 1
    return p
  end
  return CharGPT.probs(row, temperature)
end
M.probs = probs

local function sample(p, rand)
  local u, acc = rand(), 0
  for i = 1, #p do
    acc = acc + p[i]
    if u < acc then return i end
  end
  for i = #p, 1, -1 do if p[i] > 0 then return i end end
end

-- A draft from a CharGPT: its own cache, proposals from its own probabilities.
local function model_draft(lm)
  local d = { lm = lm, cache = lm:new_cache(1) }
  function d.next(tokens, temperature)
    local rows = feed(lm, d.cache, tokens, #tokens)
    return probs(rows[#rows], temperature)
  end
  function d.rollback(n) d.cache.len = math.min(d.cache.len, n) end
  return d
end

-- serve.controlled_draft(target, a): a draft for the law E = (1 - a^(g+1)) / (1 - a): it reads the
-- target's own distribution p (a copy of its cache) and proposes from q = a p + (1 - a) onehot(z),
-- z the least likely token, so a token is accepted with probability a + (1 - a) p(z) (exactly a
-- when greedy). It costs a target pass per proposal: a device for the law, not for speed.
function M.controlled_draft(target, a)
  return { controlled = true, target = target, a = a }
end

local function make_draft(draft)
  if draft.controlled then
    local d = { cache = draft.target:new_cache(1) }
    function d.next(tokens, temperature)
      local rows = feed(draft.target, d.cache, tokens, #tokens)
      local p = probs(rows[#rows], temperature)
      local z = 1
      for i = 2, #p do if p[i] < p[z] or (p[i] == p[z] and i > z) then z = i end end
      local q = {}
      for i = 1, #p do q[i] = draft.a * p[i] + (i == z and 1 - draft.a or 0) end
      return q
    end
    function d.rollback(n) d.cache.len = math.min(d.cache.len, n) end
    return d
  end
  return model_draft(draft)
end

-- serve.speculative(target, draft, prompt, {gamma=4, temperature=1, max_tokens=16, seed=1})
-- -> text, stats {acceptance (accepted / judged drafts), tokens_per_pass, passes, proposed, accepted,
-- judged, tokens, seconds, rounds}
-- (rounds: per target pass, the number of drafts accepted, whether one was rejected, the bonus).
function M.speculative(target, draft, prompt, o)
  o = o or {}
  local gamma, temperature = o.gamma or 4, o.temperature or 1
  local max_tokens = o.max_tokens or 16
  local rand = CharGPT.rng(o.seed or 1)
  local tokens = CharGPT.encode("." .. prompt)
  local start = #tokens
  local tc, d = target:new_cache(1), make_draft(draft)
  local st = { passes = 0, proposed = 0, accepted = 0, judged = 0, rounds = {} }
  local t0 = chalk.clock()
  while #tokens - start < max_tokens and #tokens < target.context do
    local n = #tokens
    local g = math.min(gamma, max_tokens - (n - start) - 1, target.context - n)
    local qs = {}
    for i = 1, g do                                   -- the draft proposes g tokens
      qs[i] = d.next(tokens, temperature)
      tokens[n + i] = sample(qs[i], rand)
    end
    local rows = feed(target, tc, tokens, n + g)      -- one target pass over g + 1 positions
    local base = #rows - g - 1
    st.passes, st.proposed = st.passes + 1, st.proposed + g
    local k, new = 0, nil
    for i = 1, g do
      local p, x = probs(rows[base + i], temperature), tokens[n + i]
      if rand() < math.min(1, p[x] / qs[i][x]) then
        k = k + 1
      else
        local r, z = {}, 0
        for j = 1, #p do r[j] = math.max(0, p[j] - qs[i][j]); z = z + r[j] end
        for j = 1, #p do r[j] = r[j] / z end
        new = sample(r, rand)
        break
      end
    end
    local bonus = new == nil
    if bonus then new = sample(probs(rows[base + g + 1], temperature), rand) end
    for i = n + k + 1, n + g do tokens[i] = nil end
    tokens[n + k + 1] = new
    tc.len = n + k                                    -- roll back: keep the pending token and k drafts
    d.rollback(n + k)
    st.accepted, st.judged = st.accepted + k, st.judged + k + (bonus and 0 or 1)
    st.rounds[#st.rounds + 1] = { accepted = k, proposed = g, rejected = not bonus, bonus = bonus }
  end
  st.seconds = chalk.clock() - t0
  local out = {}
  for i = start + 1, #tokens do out[#out + 1] = tokens[i] end
  st.tokens = #out
  st.acceptance = st.judged > 0 and st.accepted / st.judged or 0   -- per draft token the target judged
  st.tokens_per_pass = st.tokens / math.max(st.passes, 1)
  return CharGPT.decode(out), st
end

-- The law: expected tokens per target pass with acceptance a and gamma drafts, and the speed-up
-- when a draft pass costs c target passes.
function M.expected_tokens(a, g) return a == 1 and g + 1 or (1 - a ^ (g + 1)) / (1 - a) end
function M.speedup(a, g, c) return M.expected_tokens(a, g) / (g * c + 1) end

return M
