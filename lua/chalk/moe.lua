-- moe.lua: nn.MoE, a mixture-of-experts feed-forward layer with a softmax top-k router, a capacity
-- per expert, dropped tokens, and the Switch Transformer's auxiliary load-balancing loss.
--
--   moe = nn.MoE{dim = 64, hidden = 128, experts = 8, top_k = 2, capacity_factor = 1.25}
--   y = moe(x)            -- x [..., dim] -> y [..., dim]; use it as x + moe(x), like an MLP
--   moe.aux_loss          -- E x sum_i f_i P_i of the last forward (1 for a uniform router)
--   moe.last              -- {tokens, capacity, load = {...}, kept = {...}, dropped = {...}}
--   nn.MoE.capacity(tokens, experts, top_k, factor)           -- ceil(top_k x tokens / E x factor)
--
-- Routing (GShard, Switch): router probabilities p = softmax(x W_r); each token picks its top_k
-- experts; the gate weights are p renormalised over those k. Assignments are served in priority
-- order, every token's first choice (in token order) before any second choice; an expert takes at
-- most `capacity` of them and the rest are dropped: a dropped assignment adds nothing, so a token
-- dropped by all its experts leaves the layer as 0 and the caller's residual carries it unchanged.
-- With top_k = 1 the capacity is Switch's ceil(tokens / E x factor); with top_k > 1 the k x tokens
-- assignments are what is shared among the experts (GShard's 2N/E for top-2).
-- Aux loss: f_i = the share of the k x tokens assignments that chose expert i (before dropping),
-- P_i = the mean router probability of expert i; E x sum f_i P_i is 1 when the router is uniform and
-- grows as it concentrates. f is a count (no gradient); P carries the gradient to the router.
local chalk = require "chalk"
local nn = require "chalk.nn"

local MoE = nn.Module:extend("MoE")
nn.MoE = MoE

function MoE.capacity(tokens, experts, top_k, factor)
  return math.ceil(top_k * tokens / experts * factor)
end

function MoE:__init(cfg)
  cfg = cfg or {}
  local dim = cfg.dim
  if math.type(dim) ~= "integer" or dim < 1 then
    error(("nn.MoE: dim must be a positive integer, got %s"):format(tostring(dim)), 3)
  end
  self.dim, self.hidden = dim, cfg.hidden or 4 * dim
  self.experts, self.top_k = cfg.experts or 8, cfg.top_k or 2
  self.capacity_factor = cfg.capacity_factor or 1.25
  if self.top_k < 1 or self.top_k > self.experts then
    error(("nn.MoE: top_k (%d) must be in 1..experts (%d)"):format(self.top_k, self.experts), 3)
  end
  self.router = nn.Linear(dim, self.experts, { bias = false })
  for e = 1, self.experts do
    self["expert" .. e] = nn.Sequential { nn.Linear(dim, self.hidden), nn.GELU(), nn.Linear(self.hidden, dim) }
  end
end

function MoE:extra_repr()
  return ("dim=%d, hidden=%d, experts=%d, top_k=%d, capacity_factor=%g"):format(self.dim, self.hidden,
    self.experts, self.top_k, self.capacity_factor)
end

-- The top_k experts of each row of probabilities (a Lua list of lists), highest first.
local function top_experts(probs, k)
  local choice = {}
  for t, row in ipairs(probs) do
    local order = {}
    for e = 1, #row do order[e] = e end
    table.sort(order, function(a, b) return row[a] > row[b] or (row[a] == row[b] and a < b) end)
    choice[t] = { table.unpack(order, 1, k) }
  end
  return choice
end

-- route(choice, E, k, capacity) -> slot[t][j] (position of token t's j-th choice in its expert's
-- batch, or nil if dropped), members[e] (the tokens expert e takes, in order), load[e] (assignments
-- asked of e), dropped[e].
function MoE.route(choice, E, k, capacity)
  local slot, members, load, dropped = {}, {}, {}, {}
  for e = 1, E do members[e], load[e], dropped[e] = {}, 0, 0 end
  for t = 1, #choice do slot[t] = {} end
  for j = 1, k do
    for t = 1, #choice do
      local e = choice[t][j]
      load[e] = load[e] + 1
      if #members[e] < capacity then
        members[e][#members[e] + 1] = t
        slot[t][j] = #members[e]
      else
        dropped[e] = dropped[e] + 1
      end
    end
  end
  return slot, members, load, dropped
end

function MoE:forward(x)
  local shape, d = x.shape, self.dim
  local xf = x:reshape(-1, d)
  local T, E, k = xf.shape[1], self.experts, self.top_k
  local probs = self.router(xf):softmax(-1)                               -- [T, E]
  local choice = top_experts(chalk.no_grad(function() return probs:detach():totable() end), k)
  local capacity = MoE.capacity(T, E, k, self.capacity_factor)
  local slot, members, load, dropped = MoE.route(choice, E, k, capacity)
  -- every expert runs on the tokens it kept; their outputs are stacked, then one zero row
  local outs, offset = {}, {}
  local rows = 0
  for e = 1, E do
    offset[e] = rows
    if #members[e] > 0 then
      local idx = chalk.tensor(members[e], { dtype = "i64", device = xf.device })
      outs[#outs + 1] = self["expert" .. e](xf:index_select(1, idx))
      rows = rows + #members[e]
    end
  end
  outs[#outs + 1] = chalk.zeros(1, d, { dtype = xf.dtype, device = xf.device })
  local stacked = chalk.cat(outs, 1)                                      -- [rows + 1, d]
  -- the gate weights: p of the chosen experts renormalised over them; combine by gathering rows
  local chosen = chalk.tensor(choice, { dtype = "i64", device = xf.device })                   -- [T, k]
  local gates = probs:gather(2, chosen)
  gates = gates / gates:sum(2, true)
  local y
  for j = 1, k do
    local pick = {}
    for t = 1, T do
      local s = slot[t][j]
      pick[t] = s and offset[choice[t][j]] + s or rows + 1               -- dropped: the zero row
    end
    local part = stacked:index_select(1, chalk.tensor(pick, { dtype = "i64", device = xf.device })) * gates:narrow(2, j, 1)
    y = y and y + part or part
  end
  -- the Switch auxiliary loss E x sum_i f_i P_i
  local f = {}
  for e = 1, E do f[e] = load[e] / (T * k) end
  self.aux_loss = (probs:mean(1) * chalk.tensor(f, { dtype = probs.dtype, device = probs.device })):sum() * E
  local kept = {}
  for e = 1, E do kept[e] = #members[e] end
  self.last = { tokens = T, top_k = k, capacity = capacity, load = load, kept = kept, dropped = dropped }
  return y:reshape(shape)
end

-- Parameters of all the experts, and those one token uses (router + top_k experts).
function MoE:param_counts()
  local per_expert = self.expert1:num_parameters()
  local router = self.router:num_parameters()
  return { expert = per_expert * self.experts, per_expert = per_expert, router = router,
           total = per_expert * self.experts + router, active = per_expert * self.top_k + router }
end

-- The sum of the aux losses of every MoE layer in a model after its last forward.
function MoE.aux_total(model)
  local total
  for _, m in model:named_modules() do
    if getmetatable(m) == MoE and m.aux_loss then total = total and total + m.aux_loss or m.aux_loss end
  end
  return total
end

-- nn.MoE.fit_lm(lm, opts): a CharGPT holding MoE layers trained as CharGPT:fit trains (Adam on
-- random windows of the training words) with loss = cross-entropy + opts.aux x the aux losses.
-- opts: steps (150), batch (32), lr (6e-3), seed (1), aux (0.01). Returns {train_loss, val_loss,
-- aux_first, aux_last (per MoE layer), steps, seconds}.
function MoE.fit_lm(lm, opts)
  opts = opts or {}
  local CharGPT = require "chalk.chargpt"
  local optim = require "chalk.optim"
  local tr, va = CharGPT.streams(opts.words)
  local opt = optim.Adam(lm:parameters(), { lr = opts.lr or 6e-3 })
  local rand, layers = CharGPT.rng(opts.seed or 1), 0
  for _, m in lm:named_modules() do if getmetatable(m) == MoE then layers = layers + 1 end end
  local t0, rep = chalk.clock(), { steps = opts.steps or 150 }
  for step = 1, rep.steps do
    local x, y = CharGPT.windows(tr, opts.batch or 32, lm.context, rand)
    opt:zero_grad()
    local ce = chalk.cross_entropy(lm:forward(x):reshape(-1, #CharGPT.VOCAB), y:reshape(-1))
    local aux = MoE.aux_total(lm)
    ;(ce + aux * (opts.aux or 0.01)):backward()
    opt:step()
    rep.train_loss, rep.aux_last = ce:item(), aux:item() / layers
    if step == 1 then rep.aux_first = rep.aux_last end
  end
  rep.seconds = chalk.clock() - t0
  rep.val_loss = lm:loss_on(va, 8)
  return rep
end

return MoE
