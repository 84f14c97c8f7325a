-- chalk/nn_extra.lua: more of torch.nn: Identity, ModuleList, BatchNorm1d/2d, the MSELoss and
-- CrossEntropyLoss modules and functional.one_hot (BatchNorm's running statistics are persistent
-- buffers: chalk.nn's state_dict carries them). Extends chalk.nn (loaded after it); returns nothing.
local chalk = require "chalk"
local nn = chalk.nn
local F, Module = nn.functional, nn.Module

-- F.one_hot(idx [, num_classes]): 1-based classes; num_classes defaults to the largest index.
function F.one_hot(idx, num_classes)
  return chalk.one_hot(idx, num_classes or idx:max():item())
end

local Identity = Module:extend("Identity")
nn.Identity = Identity
function Identity:__init() end
function Identity:forward(x) return x end

-- nn.ModuleList{m1, m2, ...}: children "1", "2", ... registered (parameters found), no forward.
local ModuleList = Module:extend("ModuleList")
nn.ModuleList = ModuleList
function ModuleList:__init(list)
  for _, m in ipairs(list or {}) do self:append(m) end
end
function ModuleList:append(m)
  self[#rawget(self, "_order") + 1] = m
  return self
end
function ModuleList:__len() return #rawget(self, "_order") end
function ModuleList:forward()
  error("nn.ModuleList has no forward: iterate it (for i, m in ipairs(list) do x = m(x) end)", 2)
end

-- ---- BatchNorm -----------------------------------------------------------------------------
-- nn.BatchNorm1d(C [, {eps=1e-5, momentum=0.1, affine=true, track_running_stats=true}]) on [N, C]
-- or [N, C, L]; BatchNorm2d on [N, C, H, W]. Training normalizes with the batch's statistics
-- (biased variance) and updates running_mean/running_var (unbiased variance), as torch; eval
-- uses the running statistics.
local function batchnorm(name, dims_ok)
  local cls = Module:extend(name)
  nn[name] = cls
  function cls:__init(C, opts)
    opts = opts or {}
    if math.type(C) ~= "integer" or C < 1 then error(("nn.%s: num_features must be a positive integer, got %s"):format(name, tostring(C)), 4) end
    rawset(self, "num_features", C)
    rawset(self, "eps", opts.eps or 1e-5)
    rawset(self, "momentum", opts.momentum == nil and 0.1 or opts.momentum)
    rawset(self, "affine", opts.affine ~= false)
    rawset(self, "track", opts.track_running_stats ~= false)
    if self.affine then
      self.weight = nn.Parameter(chalk.ones(C))
      self.bias = nn.Parameter(chalk.zeros(C))
    end
    if self.track then
      self:register_buffer("running_mean", chalk.zeros(C))
      self:register_buffer("running_var", chalk.ones(C))
      rawset(self, "_persistent", { "running_mean", "running_var" })
    end
  end
  function cls:forward(x)
    if not dims_ok[x.ndim] or x.shape[2] ~= self.num_features then
      error(("nn.%s(%d): expected input of shape %s with %d channels in dim 2, got [%s]"):format(name, self.num_features,
        dims_ok.text, self.num_features, table.concat(x.shape, ", ")), 2)
    end
    local dims, bshape = { 1 }, { 1, self.num_features }
    for d = 3, x.ndim do dims[#dims + 1] = d; bshape[d] = 1 end
    local mean, var
    if self.training or not self.track then
      mean = x:mean(dims, true)
      var = x:var(dims, { unbiased = false, keepdim = true })
      if self.training and self.track then
        local n = x:numel() // self.num_features
        chalk.no_grad(function()
          local m = self.momentum
          self.running_mean:copy_(self.running_mean * (1 - m) + mean:detach():reshape(self.num_features) * m)
          local unbiased = var:detach():reshape(self.num_features) * (n / math.max(n - 1, 1))
          self.running_var:copy_(self.running_var * (1 - m) + unbiased * m)
        end)
      end
    else
      mean, var = self.running_mean:reshape(bshape), self.running_var:reshape(bshape)
    end
    local y = (x - mean) / (var + self.eps):sqrt()
    if self.affine then y = y * self.weight:reshape(bshape) + self.bias:reshape(bshape) end
    return y
  end
  function cls:extra_repr()
    return ("%d, eps=%g, momentum=%g, affine=%s"):format(self.num_features, self.eps, self.momentum, tostring(self.affine))
  end
end
batchnorm("BatchNorm1d", { [2] = true, [3] = true, text = "[N, C] or [N, C, L]" })
batchnorm("BatchNorm2d", { [4] = true, text = "[N, C, H, W]" })

-- ---- loss modules --------------------------------------------------------------------------
local MSELoss = Module:extend("MSELoss")
nn.MSELoss = MSELoss
function MSELoss:forward(a, b) return F.mse_loss(a, b) end
local CrossEntropyLoss = Module:extend("CrossEntropyLoss")
nn.CrossEntropyLoss = CrossEntropyLoss
function CrossEntropyLoss:forward(logits, target) return F.cross_entropy(logits, target) end

