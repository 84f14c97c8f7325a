-- optim.lua: optimizers in the style of torch.optim: SGD (momentum, dampening, weight decay,
-- Nesterov), Adam (L2 weight decay) and AdamW (decoupled weight decay).
--
--   opt = optim.Adam(model:parameters(), {lr = 1e-3})
--   opt:zero_grad(); loss:backward(); opt:step()
--
-- Invariants:
--  - The update rules are PyTorch's, term for term, so the same parameters and gradients give
--    the same numbers (tests/lua/optim_spec.lua checks Adam against torch.optim.Adam).
--  - step() runs under no_grad and writes parameters and state in place (copy_, and axpby_ for
--    SGD's y = a y + b x updates, one pass each): tensors a model or a picture holds stay the
--    same tensors; chalk.capture records both as in-place nodes. Each temporary is released (its __close) as soon
--    as the next op has consumed it, so a step's memory timeline shows at most two
--    parameter-sized temporaries, not a pile waiting for Lua's garbage collector.
--  - State tensors are created lazily on the first step, tagged "optimizer state" and named after
--    their parameter ("1.weight.exp_avg"), so memory pictures show what Adam costs (2 per param).
--  - Option fused ("auto" by default, true, false): SGD, Adam and AdamW update every parameter of
--    a group in one op (sgd_multi / adam_multi: one CUDA launch, PyTorch's fused/foreach path);
--    "auto" fuses parameters on a CUDA device, and the CPU keeps the per-parameter ops (true fuses
--    there too). Both give the same numbers (the rows round as the op chain does).
local chalk = require "chalk"

local optim = {}

-- A new zero tensor like p, tagged as optimizer state and named after p.
local function state_like(p, what)
  local t = chalk.with_category("optimizer state", chalk.zeros, p.shape, { dtype = p.dtype, device = p.device })
  t.name = (p.name or "param") .. "." .. what
  return t
end

-- Frees a temporary tensor now instead of when Lua's collector finds it (what <close> does).
local release = getmetatable(chalk.zeros(0)).__close

local DTYPE_BYTES = { f32 = 4, f64 = 8, f16 = 2, bf16 = 2, i32 = 4, i64 = 8, i8 = 1, bool = 1 }

-- ---- the base ------------------------------------------------------------------------------------

local Optimizer = {}
Optimizer.__index = Optimizer
optim.Optimizer = Optimizer

-- params: a list of tensors, or a list of groups { {params = {...}, lr = ...}, ... } whose
-- settings override the defaults.
local function make_groups(params, defaults, opts, name)
  if type(params) ~= "table" then
    error(("%s: argument params must be a list of parameters (model:parameters()), got %s"):format(name, type(params)), 3)
  end
  if type(opts) ~= "table" then error(("%s: argument opts must be a table, got %s"):format(name, type(opts)), 3) end
  local groups = {}
  local first = params[1]
  if first ~= nil and type(first) == "table" and getmetatable(first) == nil and first.params then
    for _, g in ipairs(params) do groups[#groups + 1] = g end
  else
    groups[1] = { params = params }
  end
  for _, g in ipairs(groups) do
    for k, v in pairs(defaults) do
      if g[k] == nil then
        if opts[k] ~= nil then g[k] = opts[k] else g[k] = v end
      end
    end
    if type(g.params) ~= "table" then error(("%s: a parameter group's params must be a list, got %s"):format(name, type(g.params)), 3) end
    if #g.params == 0 then error(name .. ": got an empty parameter list", 3) end
    for k, v in pairs(defaults) do
      if type(v) == "number" and type(g[k]) ~= "number" then
        error(("%s: option %s must be a number, got %s"):format(name, k, type(g[k])), 3)
      end
    end
    for i, p in ipairs(g.params) do
      if not chalk.is_tensor(p) then error(("%s: parameter %d is a %s, not a tensor"):format(name, i, type(p)), 3) end
      if not p.requires_grad then
        error(("%s: parameter %d (%s) does not require grad"):format(name, i, tostring(p.name)), 3)
      end
    end
  end
  for k in pairs(opts) do
    if defaults[k] == nil then
      local known = {}
      for d in pairs(defaults) do known[#known + 1] = d end
      table.sort(known)
      error(("%s: unknown option '%s' (options: %s)"):format(name, k, table.concat(known, ", ")), 3)
    end
  end
  return groups
end

local function new_optimizer(cls, name, params, opts, defaults)
  opts = opts or {}
  local self = setmetatable({ name = name, state = {}, defaults = defaults }, cls)
  self.param_groups = make_groups(params, defaults, opts, name)
  return self
end

-- Forgets every parameter's gradient (sets .grad to nil, as PyTorch's set_to_none).
function Optimizer:zero_grad()
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do p.grad = nil end
  end
end

-- The parameters of group g that fused_update takes together: those with a gradient, on the
-- device of the first such one, f32 or f64, contiguous, all at the same step count (others go
-- one by one). nil when the group is not fused.
local function fusable(self, g)
  if not self.fused_update or g.fused == false then return nil end
  local list, dev, dt, step = {}, nil, nil, nil
  for _, p in ipairs(g.params) do
    local grad = p.grad
    if grad then
      local st = self.state[p]
      local n = st and st.step or 0
      dev = dev or p.device
      dt = dt or p.dtype
      step = step or n
      if p.device == dev and p.dtype == dt and (dt == "f32" or dt == "f64") and n == step
        and p:is_contiguous() and grad.device == dev then
        list[#list + 1] = p
      end
    end
  end
  if #list == 0 or (g.fused ~= true and dev:sub(1, 4) ~= "cuda") then return nil end
  return list
end

-- The state of p, made on its first step, with its step count advanced.
local function next_state(self, p)
  local st = self.state[p]
  if not st then
    st = { step = 0 }
    self.state[p] = st
  end
  st.step = st.step + 1
  return st
end

-- Calls update(self, group, p, grad, state) for every parameter that has a gradient, under
-- no_grad (or fused_update(self, group, params, states) once for the fusable ones). closure
-- (optional) recomputes the loss first, as in PyTorch.
function Optimizer:step(closure)
  local loss
  if closure then loss = closure() end
  -- what a step makes is temporary (its state is tagged in state_like), as PyTorch counts it
  chalk.with_category("temporary", chalk.no_grad, function()
    for _, g in ipairs(self.param_groups) do
      local fused, done = fusable(self, g), {}
      if fused then
        local states = {}
        for i, p in ipairs(fused) do states[i], done[p] = next_state(self, p), true end
        self:fused_update(g, fused, states)
      end
      for _, p in ipairs(g.params) do
        local grad = p.grad
        if grad and not done[p] then self:update(g, p, grad, next_state(self, p)) end
      end
    end
  end)
  return loss
end

-- Bytes of optimizer state held (for lessons on memory: Adam holds two tensors per parameter).
function Optimizer:state_bytes()
  local n = 0
  for _, st in pairs(self.state) do
    for _, v in pairs(st) do
      if type(v) == "userdata" then n = n + v:numel() * DTYPE_BYTES[v.dtype] end
    end
  end
  return n
end

-- A plain table of the state, by parameter position: save it with chalk.save.
function Optimizer:state_dict()
  local out, i = { state = {}, param_groups = {} }, 0
  for gi, g in ipairs(self.param_groups) do
    local settings = {}
    for k, v in pairs(g) do
      if k ~= "params" then settings[k] = v end
    end
    out.param_groups[gi] = settings
    for _, p in ipairs(g.params) do
      i = i + 1
      local st = self.state[p]
      if st then
        local copy = {}
        for k, v in pairs(st) do copy[k] = v end
        out.state[i] = copy
      end
    end
  end
  return out
end

-- Restores what state_dict returned (tensors are copied into state of the right device).
function Optimizer:load_state_dict(sd)
  local i = 0
  for gi, g in ipairs(self.param_groups) do
    for k, v in pairs(sd.param_groups[gi] or {}) do g[k] = v end
    for _, p in ipairs(g.params) do
      i = i + 1
      local saved = sd.state[i]
      if saved then
        local st = {}
        for k, v in pairs(saved) do
          if type(v) == "userdata" then
            local t = state_like(p, k)
            chalk.no_grad(function() t:copy_(v) end)
            st[k] = t
          else
            st[k] = v
          end
        end
        self.state[p] = st
      end
    end
  end
  return self
end

function Optimizer:__tostring()
  local lines = { self.name .. " (" }
  for gi, g in ipairs(self.param_groups) do
    local keys = {}
    for k in pairs(g) do
      if k ~= "params" then keys[#keys + 1] = k end
    end
    table.sort(keys)
    lines[#lines + 1] = ("  group %d: %d parameters"):format(gi, #g.params)
    for _, k in ipairs(keys) do lines[#lines + 1] = ("    %s: %s"):format(k, tostring(g[k])) end
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

local function class(name, defaults, update, fused_update)
  local cls = setmetatable({}, { __index = Optimizer })
  cls.__index = cls
  cls.__tostring = Optimizer.__tostring
  cls.update = update
  cls.fused_update = fused_update
  optim[name] = setmetatable(cls, {
    __index = Optimizer,
    __call = function(c, params, opts) return new_optimizer(c, name, params, opts, defaults) end,
  })
  return cls
end

-- ---- SGD -----------------------------------------------------------------------------------------

-- optim.SGD(params, {lr, momentum=0, dampening=0, weight_decay=0, nesterov=false})
--   d = g + wd p;  buf = momentum buf + (1 - dampening) d  (buf = d on the first step)
--   d = nesterov and d + momentum buf or buf;  p = p - lr d
local function sgd_fused(_, g, params, states)
  if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
    error("optim.SGD: nesterov needs momentum > 0 and dampening 0", 0)
  end
  local grads, bufs, first = {}, nil, false
  for i, p in ipairs(params) do grads[i] = p.grad end
  if g.momentum ~= 0 then
    bufs = {}
    for i, p in ipairs(params) do
      local st = states[i]
      if not st.momentum_buffer then
        st.momentum_buffer = state_like(p, "momentum_buffer")
        first = true -- all params of the call share their step count (fusable), so all are new
      end
      bufs[i] = st.momentum_buffer
    end
  end
  chalk._sgd_multi_(params, bufs, grads, g.lr, g.momentum, g.dampening, g.weight_decay, g.nesterov, first)
end

class("SGD", { lr = 1e-2, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false, fused = "auto" },
  function(_, g, p, grad, st)
    if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
      error("optim.SGD: nesterov needs momentum > 0 and dampening 0", 0)
    end
    local t, u
    local d, d_owned = grad, false
    if g.weight_decay ~= 0 then -- d = g + wd p
      t = p * g.weight_decay
      d, d_owned = grad + t, true
      release(t)
    end
    if g.momentum ~= 0 then
      local buf = st.momentum_buffer
      if not buf then
        buf = state_like(p, "momentum_buffer")
        buf:copy_(d)
        st.momentum_buffer = buf
      else -- buf = momentum buf + (1 - dampening) d, in one pass
        buf:axpby_(g.momentum, d, 1 - g.dampening)
      end
      if g.nesterov then -- d = d + momentum buf
        t = buf * g.momentum
        u = d + t
        release(t)
        if d_owned then release(d) end
        d, d_owned = u, true
      else
        if d_owned then release(d) end
        d, d_owned = buf, false
      end
    end
    p:axpby_(1, d, -g.lr) -- p = p - lr d, in one pass
    if d_owned then release(d) end
  end, sgd_fused)

-- ---- Adam and AdamW ------------------------------------------------------------------------------

-- The shared body: m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
-- p = p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
-- Straight-line code, releasing each temporary as soon as the next op has consumed it, so at
-- most two parameter-sized temporaries are alive at any moment.
local function adam_update(g, p, grad, st, decoupled)
  local b1, b2 = g.betas[1], g.betas[2]
  local lr, eps, wd = g.lr, g.eps, g.weight_decay
  local t, u, w
  if wd ~= 0 and decoupled then -- AdamW: p = p (1 - lr wd), independent of the gradient
    t = p * (1 - lr * wd)
    p:copy_(t)
    release(t)
  end
  local gr, gr_owned = grad, false
  if wd ~= 0 and not decoupled then -- Adam's L2 decay: g = g + wd p
    t = p * wd
    gr, gr_owned = grad + t, true
    release(t)
  end
  if not st.exp_avg then
    st.exp_avg = state_like(p, "exp_avg")
    st.exp_avg_sq = state_like(p, "exp_avg_sq")
  end
  local m, v = st.exp_avg, st.exp_avg_sq
  -- m = m + (1 - b1) (g - m)
  t = gr - m
  u = t * (1 - b1)
  release(t)
  t = m + u
  release(u)
  m:copy_(t)
  release(t)
  -- v = b2 v + (1 - b2) g^2
  t = gr * gr
  if gr_owned then release(gr) end
  u = t * (1 - b2)
  release(t)
  t = v * b2
  w = t + u
  release(t)
  release(u)
  v:copy_(w)
  release(w)
  -- p = p - lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
  local step = st.step
  local bc1, bc2 = 1 - b1 ^ step, 1 - b2 ^ step
  t = v:sqrt()
  u = t * (1 / math.sqrt(bc2))
  release(t)
  t = u + eps
  release(u)
  u = m / t
  release(t)
  t = u * (lr / bc1)
  release(u)
  u = p - t
  release(t)
  p:copy_(u)
  release(u)
end

-- The same update for every parameter of params at once (one adam_multi op).
local function adam_fused(g, params, states, decoupled)
  local grads, m, v = {}, {}, {}
  for i, p in ipairs(params) do
    local st = states[i]
    if not st.exp_avg then
      st.exp_avg = state_like(p, "exp_avg")
      st.exp_avg_sq = state_like(p, "exp_avg_sq")
    end
    grads[i], m[i], v[i] = p.grad, st.exp_avg, st.exp_avg_sq
  end
  chalk._adam_multi_(params, m, v, grads, g.lr, g.betas[1], g.betas[2], g.eps, g.weight_decay, decoupled,
    states[1].step)
end

-- optim.Adam(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0}) (L2 decay: g + wd p)
class("Adam", { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0, fused = "auto" },
  function(_, g, p, grad, st) adam_update(g, p, grad, st, false) end,
  function(_, g, params, states) adam_fused(g, params, states, false) end)

-- optim.AdamW(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=1e-2}) (decoupled)
class("AdamW", { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 1e-2, fused = "auto" },
  function(_, g, p, grad, st) adam_update(g, p, grad, st, true) end,
  function(_, g, params, states) adam_fused(g, params, states, true) end)

-- for optim_extra.lua (RMSprop): the class maker and state allocator above
optim._class, optim._state_like = class, state_like

return optim
