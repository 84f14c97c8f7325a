-- chalk/optim_extra.lua: optim.RMSprop and optim.lr_scheduler (StepLR, CosineAnnealingLR), as
-- torch defines them. Extends chalk.optim (loaded after it); returns nothing.
local chalk = require "chalk"
local optim = chalk.optim

-- optim.RMSprop(params, {lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=false})
--   g = g + wd p;  v = alpha v + (1-alpha) g^2;  centered: avg = v - gavg^2 (gavg = alpha gavg + (1-alpha) g)
--   momentum: buf = momentum buf + g / (sqrt(avg) + eps); p = p - lr buf;  else p = p - lr g / (sqrt(avg) + eps)
optim._class("RMSprop", { lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false },
  function(_, g, p, grad, st)
    if g.weight_decay ~= 0 then grad = grad + p * g.weight_decay end
    if not st.square_avg then
      st.square_avg = optim._state_like(p, "square_avg")
      if g.centered then st.grad_avg = optim._state_like(p, "grad_avg") end
      if g.momentum > 0 then st.momentum_buffer = optim._state_like(p, "momentum_buffer") end
    end
    st.square_avg:axpby_(g.alpha, grad * grad, 1 - g.alpha)
    local avg = st.square_avg
    if g.centered then
      st.grad_avg:axpby_(g.alpha, grad, 1 - g.alpha)
      avg = avg - st.grad_avg * st.grad_avg
    end
    local step = grad / (avg:sqrt() + g.eps)
    if g.momentum > 0 then
      st.momentum_buffer:axpby_(g.momentum, step, 1)
      step = st.momentum_buffer
    end
    p:axpby_(1, step, -g.lr)
  end)

-- ---- learning-rate schedulers ------------------------------------------------------------------
local lr_scheduler = {}
optim.lr_scheduler = lr_scheduler

local Scheduler = {}
Scheduler.__index = Scheduler
-- sched:step(): one epoch on; sets every group's lr. sched:get_last_lr(): the lrs, one per group.
function Scheduler:step()
  self.last_epoch = self.last_epoch + 1
  for i, g in ipairs(self.optimizer.param_groups) do g.lr = self:lr_at(self.base_lrs[i], self.last_epoch) end
end
function Scheduler:get_last_lr()
  local lrs = {}
  for i, g in ipairs(self.optimizer.param_groups) do lrs[i] = g.lr end
  return lrs
end
function Scheduler:state_dict() return { last_epoch = self.last_epoch, base_lrs = { table.unpack(self.base_lrs) } } end
function Scheduler:load_state_dict(sd)
  self.last_epoch, self.base_lrs = sd.last_epoch, { table.unpack(sd.base_lrs) }
end

local function scheduler(name, lr_at, init)
  local cls = setmetatable({ lr_at = lr_at }, { __index = Scheduler })
  cls.__index = cls
  lr_scheduler[name] = function(opt, ...)
    if type(opt) ~= "table" or not opt.param_groups then error("lr_scheduler." .. name .. ": expected an optimizer first", 2) end
    local self = setmetatable({ optimizer = opt, last_epoch = 0, base_lrs = {} }, cls)
    for i, g in ipairs(opt.param_groups) do self.base_lrs[i] = g.lr end
    init(self, ...)
    return self
  end
end
-- StepLR(opt, step_size [, gamma=0.1]): lr = base * gamma^(epoch // step_size)
scheduler("StepLR", function(s, base, t) return base * s.gamma ^ (t // s.step_size) end, function(s, step_size, gamma)
  if math.type(step_size) ~= "integer" or step_size < 1 then error("lr_scheduler.StepLR: step_size must be a positive integer", 3) end
  s.step_size, s.gamma = step_size, gamma or 0.1
end)
-- CosineAnnealingLR(opt, T_max [, eta_min=0]): lr = eta_min + (base - eta_min)(1 + cos(pi t / T_max)) / 2
scheduler("CosineAnnealingLR", function(s, base, t)
  return s.eta_min + (base - s.eta_min) * (1 + math.cos(math.pi * t / s.T_max)) / 2
end, function(s, T_max, eta_min)
  if type(T_max) ~= "number" or T_max <= 0 then error("lr_scheduler.CosineAnnealingLR: T_max must be > 0", 3) end
  s.T_max, s.eta_min = T_max, eta_min or 0
end)
