-- nn.lua: neural-network modules in the style of torch.nn, on top of chalk's tensor ops.
--
--   model = nn.Sequential{ nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10) }
--   loss = nn.functional.cross_entropy(model(x), y)
--   for name, p in model:named_parameters() do print(name, p.shape) end
--
--   local MLP = nn.Module:extend("MLP")          -- a module of your own
--   function MLP:__init(d) self.layers = nn.Sequential{ nn.Linear(d, d), nn.ReLU() } end
--   function MLP:forward(x) return self.layers(x) end
--
-- Invariants:
--  - Assigning a module or an nn.Parameter to a field of a module registers it (as in PyTorch):
--    named_parameters walks registered children in the order they were assigned.
--  - A parameter is a leaf tensor that requires grad, is tagged "parameter" in the memory log,
--    and is named after its path from the outermost module that holds it ("layers.1.weight"),
--    so pictures and profiles label it; registering a module renames its subtree's parameters.
--  - Initialisation draws from chalk's seeded RNG: the same seed gives the same model.
local chalk = require "chalk"

local nn = {}
local F = {}
nn.functional = F
nn.init = {}

-- ---- parameters ---------------------------------------------------------------------------------

local is_param = setmetatable({}, { __mode = "k" }) -- tensors made by nn.Parameter

local is_tensor = chalk.is_tensor

-- nn.Parameter(t): t as a trainable leaf (requires grad, tagged "parameter").
function nn.Parameter(t, name)
  if not t.is_leaf then t = t:detach() end
  t.requires_grad = true
  chalk.tag(t, "parameter")
  if name then t.name = name end
  is_param[t] = true
  return t
end

function nn.is_parameter(t) return is_param[t] == true end

-- ---- Module ---------------------------------------------------------------------------------------

local Module = {}
nn.Module = Module

local function instance_index(self, k)
  local p = rawget(self, "_parameters")
  if p then
    local v = p[k]
    if v ~= nil then return v end
    local key = math.type(k) == "integer" and tostring(k) or k
    v = rawget(self, "_modules")[key]
    if v ~= nil then return v end
    v = rawget(self, "_buffers")[k]
    if v ~= nil then return v end
  end
  return getmetatable(self)[k]
end

local function rename_subtree(prefix, child)
  if is_param[child] then
    child.name = prefix
    return
  end
  for path, p in child:named_parameters() do p.name = prefix .. "." .. path end
end

local function remove_key(self, k)
  local order = rawget(self, "_order")
  for i = #order, 1, -1 do
    if order[i] == k then table.remove(order, i) end
  end
  rawget(self, "_parameters")[k] = nil
  rawget(self, "_modules")[k] = nil
  rawget(self, "_buffers")[k] = nil
end

local function instance_newindex(self, k, v)
  if math.type(k) == "integer" then k = tostring(k) end
  local is_mod = type(v) == "table" and getmetatable(v) and getmetatable(v).__is_module
  if is_mod or is_param[v] then
    local params, mods = rawget(self, "_parameters"), rawget(self, "_modules")
    local known = params[k] ~= nil or mods[k] ~= nil -- a reassignment keeps its place in order
    params[k], mods[k], rawget(self, "_buffers")[k] = nil, nil, nil
    rawset(self, k, nil)
    if not known then
      local order = rawget(self, "_order")
      order[#order + 1] = k
    end
    if is_mod then rawget(self, "_modules")[k] = v else rawget(self, "_parameters")[k] = v end
    rename_subtree(k, v)
    return
  end
  if rawget(self, "_parameters")[k] or rawget(self, "_modules")[k] then
    if v ~= nil and is_tensor(v) and rawget(self, "_parameters")[k] then
      error(("nn: assigning a plain tensor to parameter '%s'; wrap it: nn.Parameter(t)"):format(k), 2)
    end
    remove_key(self, k)
  end
  rawset(self, k, v)
end

-- The metamethods every module class carries (Lua reads metamethods raw from the metatable).
local META = { "__index", "__newindex", "__call", "__tostring", "__len", "__pairs" }

-- Class:extend(name) -> a subclass; calling it builds an instance and runs its __init.
function Module:extend(name)
  local cls = { __name = name, __is_module = true, __index = instance_index, __newindex = instance_newindex }
  for _, m in ipairs(META) do
    if cls[m] == nil and rawget(self, m) ~= nil then cls[m] = rawget(self, m) end
  end
  return setmetatable(cls, {
    __index = self,
    __call = function(c, ...) return c:new(...) end,
    __tostring = function() return "nn." .. name end,
  })
end

-- An iterator over a list of {a, b}: (a, b) at each call.
local function each_pair(list)
  local i = 0
  return function()
    i = i + 1
    if list[i] then return list[i][1], list[i][2] end
  end
end

-- The second values an iterator gives, as a list.
local function seconds(...)
  local list = {}
  for _, v in ... do list[#list + 1] = v end
  return list
end

function Module:new(...)
  local obj = { _parameters = {}, _modules = {}, _buffers = {}, _order = {}, training = true }
  setmetatable(obj, self)
  obj:__init(...)
  return obj
end

function Module:__init() end

function Module:forward()
  error(("nn.%s has no forward method"):format(getmetatable(self).__name), 2)
end

-- what a model's forward makes is an activation (memory categories as PyTorch counts them)
function Module:__call(...) return chalk.with_category("activation", self.forward, self, ...) end

-- Registers a buffer: state that is not trained but moves with the module (e.g. a mask).
function Module:register_buffer(name, t)
  rawget(self, "_buffers")[name] = t
  return t
end

-- Ordered children: an iterator of (name, module).
function Module:named_children()
  local order, mods, i = rawget(self, "_order"), rawget(self, "_modules"), 0
  return function()
    repeat
      i = i + 1
      local k = order[i]
      if k == nil then return nil end
      if mods[k] then return k, mods[k] end
    until false
  end
end

function Module:children() return seconds(self:named_children()) end

-- Every module of the tree, depth first: an iterator of (path, module); the root's path is "".
function Module:named_modules()
  local list = {}
  local function walk(prefix, m)
    list[#list + 1] = { prefix, m }
    for k, c in m:named_children() do walk(prefix == "" and k or prefix .. "." .. k, c) end
  end
  walk("", self)
  return each_pair(list)
end

-- (path, parameter) in registration order, each shared parameter once: an iterator.
function Module:named_parameters()
  local list, seen = {}, {}
  local function walk(prefix, m)
    local order, params, mods = rawget(m, "_order"), rawget(m, "_parameters"), rawget(m, "_modules")
    for _, k in ipairs(order) do
      local path = prefix == "" and k or prefix .. "." .. k
      local p = params[k]
      if p ~= nil then
        if not seen[p] then
          seen[p] = true
          list[#list + 1] = { path, p }
        end
      elseif mods[k] then
        walk(path, mods[k])
      end
    end
  end
  walk("", self)
  return each_pair(list)
end

-- The parameters as a list (what optimizers take).
function Module:parameters() return seconds(self:named_parameters()) end

function Module:num_parameters()
  local n = 0
  for _, p in self:named_parameters() do n = n + p:numel() end
  return n
end

-- Calls fn(module) on every module of the tree (children first), returns self.
function Module:apply(fn)
  for _, c in self:named_children() do c:apply(fn) end
  fn(self)
  return self
end

function Module:train(on)
  if on == nil then on = true end
  self:apply(function(m) rawset(m, "training", on) end)
  return self
end

function Module:eval() return self:train(false) end

function Module:zero_grad()
  for _, p in self:named_parameters() do p.grad = nil end
  return self
end

-- model:to(device or dtype): moves (or converts) every parameter and buffer; parameters stay
-- leaves with their names and tags. Build optimizers after moving the model.
function Module:to(where)
  chalk.no_grad(function()
    self:apply(function(m)
      local params = rawget(m, "_parameters")
      for k, p in pairs(params) do
        local moved = p:to(where)
        if not rawequal(moved, p) then -- tensors: == raises (chalk/pytorch.lua)
          local name = p.name
          moved = nn.Parameter(moved:detach(), name)
          moved.requires_grad = p.requires_grad -- a frozen parameter stays frozen
          params[k] = moved
        end
      end
      local bufs = rawget(m, "_buffers")
      for k, b in pairs(bufs) do bufs[k] = b:to(where) end
    end)
  end)
  return self
end

function Module:cuda() return self:to("cuda") end
function Module:cpu() return self:to("cpu") end

-- (path, buffer) of every persistent buffer (BatchNorm's running statistics), depth first.
function Module:named_buffers()
  local list = {}
  for path, m in self:named_modules() do
    for _, k in ipairs(rawget(m, "_persistent") or {}) do
      list[#list + 1] = { path == "" and k or path .. "." .. k, rawget(m, "_buffers")[k] }
    end
  end
  return each_pair(list)
end

-- What a state dict holds: (path, tensor) of every parameter, then of every persistent buffer.
local function named_state(m)
  local list = {}
  for path, p in m:named_parameters() do list[#list + 1] = { path, p } end
  for path, b in m:named_buffers() do list[#list + 1] = { path, b } end
  return each_pair(list)
end

-- A table path -> tensor of every parameter and persistent buffer (detached views that share storage).
function Module:state_dict()
  local sd = {}
  for path, t in named_state(self) do sd[path] = t:detach() end
  return sd
end

-- Copies values from a state dict into the parameters and persistent buffers (shapes must match);
-- strict by default: a missing or unexpected key is an error naming it.
function Module:load_state_dict(sd, strict)
  if strict == nil then strict = true end
  local used = {}
  chalk.no_grad(function()
    for path, p in named_state(self) do
      local v = sd[path]
      if v == nil then
        if strict then error("load_state_dict: missing key '" .. path .. "'", 3) end
      else
        local ps, vs = table.concat(p.shape, ","), table.concat(v.shape, ",")
        if ps ~= vs then
          error(("load_state_dict: '%s' has shape [%s] in the model but [%s] in the state dict")
            :format(path, ps, vs), 3)
        end
        p:copy_(v)
        used[path] = true
      end
    end
  end)
  if strict then
    for k in pairs(sd) do
      if not used[k] then error("load_state_dict: unexpected key '" .. tostring(k) .. "'", 2) end
    end
  end
  return self
end

-- One line of settings, shown inside the parentheses of tostring (override per class).
function Module:extra_repr() return "" end

function Module:__tostring()
  local name = getmetatable(self).__name
  local lines = {}
  for k, c in self:named_children() do
    local sub = tostring(c):gsub("\n", "\n  ")
    lines[#lines + 1] = "  (" .. k .. "): " .. sub
  end
  local extra = self:extra_repr()
  if #lines == 0 then return name .. "(" .. extra .. ")" end
  if extra ~= "" then table.insert(lines, 1, "  " .. extra) end
  return name .. "(\n" .. table.concat(lines, "\n") .. "\n)"
end

-- ---- initialisation (drawn from chalk's seeded RNG) ----------------------------------------------

local function fans(shape)
  if #shape < 2 then return shape[1], shape[1] end
  local receptive = 1
  for d = 3, #shape do receptive = receptive * shape[d] end
  return shape[2] * receptive, shape[1] * receptive
end

local GAINS = { linear = 1, sigmoid = 1, conv2d = 1, tanh = 5 / 3, relu = math.sqrt(2), selu = 3 / 4 }
local function gain(nonlinearity, a)
  if nonlinearity == "leaky_relu" then return math.sqrt(2 / (1 + (a or 0.01) ^ 2)) end
  local g = GAINS[nonlinearity or "relu"]
  if not g then error("nn.init: unknown nonlinearity '" .. tostring(nonlinearity) .. "'", 3) end
  return g
end
nn.init.calculate_gain = gain

local function fill(t, src)
  chalk.no_grad(function() t:copy_(src) end)
  return t
end

function nn.init.uniform_(t, lo, hi)
  lo, hi = lo or 0, hi or 1
  return fill(t, chalk.rand(t.shape, { dtype = t.dtype, device = t.device }) * (hi - lo) + lo)
end

function nn.init.normal_(t, mean, std)
  return fill(t, chalk.randn(t.shape, { dtype = t.dtype, device = t.device }) * (std or 1) + (mean or 0))
end

function nn.init.zeros_(t) return fill(t, 0) end
function nn.init.ones_(t) return fill(t, 1) end

-- opts: a (negative slope for leaky_relu), mode "fan_in" | "fan_out", nonlinearity (default relu).
function nn.init.kaiming_uniform_(t, opts)
  opts = opts or {}
  local fan_in, fan_out = fans(t.shape)
  local fan = opts.mode == "fan_out" and fan_out or fan_in
  local bound = gain(opts.nonlinearity or (opts.a and "leaky_relu") or "relu", opts.a) * math.sqrt(3 / fan)
  return nn.init.uniform_(t, -bound, bound)
end

function nn.init.kaiming_normal_(t, opts)
  opts = opts or {}
  local fan_in, fan_out = fans(t.shape)
  local fan = opts.mode == "fan_out" and fan_out or fan_in
  return nn.init.normal_(t, 0, gain(opts.nonlinearity or (opts.a and "leaky_relu") or "relu", opts.a) / math.sqrt(fan))
end

function nn.init.xavier_uniform_(t, g)
  local fan_in, fan_out = fans(t.shape)
  local bound = (g or 1) * math.sqrt(6 / (fan_in + fan_out))
  return nn.init.uniform_(t, -bound, bound)
end

function nn.init.xavier_normal_(t, g)
  local fan_in, fan_out = fans(t.shape)
  return nn.init.normal_(t, 0, (g or 1) * math.sqrt(2 / (fan_in + fan_out)))
end

-- A new parameter of shape, uniform in [-bound, bound] (PyTorch's default for Linear and Conv:
-- kaiming_uniform with a = sqrt(5), which is bound = 1/sqrt(fan_in)).
local function uniform_param(shape, bound)
  local t
  chalk.no_grad(function() t = chalk.rand(shape) * (2 * bound) - bound end)
  return nn.Parameter(t)
end

-- ---- functional ------------------------------------------------------------------------------------

local tensor_arg
function F.linear(x, w, b)
  tensor_arg(x, "linear")
  if not chalk.is_tensor(w) then error(("nn.functional.linear: argument 2 (weight) must be a tensor, got %s"):format(type(w)), 2) end
  -- on a GPU one op with the bias in the GEMM (chalk.linear: cuBLASLt's bias epilogue)
  if b and x.dtype == "f32" and x.device:sub(1, 4) == "cuda" then return chalk.linear(x, w, b) end
  local y = x:matmul(w.T)
  if b then y = y + b end
  return y
end

function tensor_arg(x, fn)
  if not chalk.is_tensor(x) then error(("nn.functional.%s: argument 1 must be a tensor, got %s"):format(fn, type(x)), 3) end
  return x
end
function F.relu(x) return tensor_arg(x, "relu"):relu() end
function F.gelu(x) return tensor_arg(x, "gelu"):gelu() end
function F.tanh(x) return tensor_arg(x, "tanh"):tanh() end
function F.sigmoid(x) return tensor_arg(x, "sigmoid"):sigmoid() end
function F.softmax(x, dim) return tensor_arg(x, "softmax"):softmax(dim or -1) end
function F.log_softmax(x, dim) return tensor_arg(x, "log_softmax"):log_softmax(dim or -1) end

-- logits [N,C] (or [C]), target i64 [N] of classes 1..C; the mean over the batch.
function F.cross_entropy(logits, target) return chalk.cross_entropy(logits, target) end
function F.nll_loss(logp, target) return chalk.nll_loss(logp, target) end
function F.mse_loss(a, b) return chalk.mse_loss(a, b) end

function F.dropout(x, p, training)
  if training == nil then training = true end
  return chalk.dropout(x, p or 0.5, training)
end

-- Normalises over the trailing dims given by normalized_shape (a number or a list of sizes).
function F.layer_norm(x, normalized_shape, weight, bias, eps)
  if type(normalized_shape) == "number" then normalized_shape = { normalized_shape } end
  return chalk.layer_norm(x, normalized_shape, weight, bias, eps or 1e-5)
end

function F.embedding(idx, weight) return chalk.embedding(weight, idx) end

function F.conv2d(x, w, b, stride, padding) return chalk.conv2d(x, w, b, stride or 1, padding or 0) end
function F.max_pool2d(x, kernel, stride) return chalk.max_pool2d(x, kernel, stride or kernel) end
-- q [..., Nq, d], k [..., Nk, d], v [..., Nk, dv]; opts {causal=false, impl="naive"|"flash", scale=1/sqrt(d)}
function F.attention(q, k, v, opts) return chalk.attention(q, k, v, opts) end

-- ---- layers ----------------------------------------------------------------------------------------

local Linear = Module:extend("Linear")
nn.Linear = Linear
-- nn.Linear(in, out [, {bias=true}]): y = x W^T + b, W [out,in] and b uniform in +-1/sqrt(in).
function Linear:__init(in_features, out_features, opts)
  opts = opts or {}
  for _, a in ipairs { { "in_features", in_features }, { "out_features", out_features } } do
    if math.type(a[2]) ~= "integer" or a[2] < 0 then
      error(("nn.Linear: argument %s must be a non-negative integer, got %s"):format(a[1], tostring(a[2])), 3)
    end
  end
  if type(opts) ~= "table" then error("nn.Linear: argument opts must be a table, got " .. type(opts), 3) end
  self.in_features, self.out_features = in_features, out_features
  local bound = 1 / math.sqrt(in_features)
  self.weight = uniform_param({ out_features, in_features }, bound)
  if opts.bias ~= false then self.bias = uniform_param({ out_features }, bound) end
end
function Linear:forward(x) return F.linear(x, self.weight, self.bias) end
function Linear:extra_repr()
  return ("in_features=%d, out_features=%d, bias=%s"):format(self.in_features, self.out_features,
    tostring(self.bias ~= nil))
end

local function activation(name, fn)
  local cls = Module:extend(name)
  cls.forward = function(_, x) return fn(x) end
  nn[name] = cls
  return cls
end
activation("ReLU", F.relu)
activation("GELU", F.gelu)
activation("Tanh", F.tanh)
activation("Sigmoid", F.sigmoid)

local Softmax = Module:extend("Softmax")
nn.Softmax = Softmax
function Softmax:__init(dim) self.dim = dim or -1 end
function Softmax:forward(x) return F.softmax(x, self.dim) end
function Softmax:extra_repr() return "dim=" .. self.dim end

local Sequential = Module:extend("Sequential")
nn.Sequential = Sequential
-- nn.Sequential{ m1, m2, ... } (or nn.Sequential(m1, m2, ...)): children named "1", "2", ...
function Sequential:__init(first, ...)
  local list = first
  if not (type(first) == "table" and getmetatable(first) == nil) then list = { first, ... } end
  for i, m in ipairs(list) do self[i] = m end
end
function Sequential:forward(x)
  for _, m in self:named_children() do x = m(x) end
  return x
end
function Sequential:__len() return #rawget(self, "_order") end
-- Appends a module (named by its position), returns self.
function Sequential:add(m)
  self[#self + 1] = m
  return self
end

local Flatten = Module:extend("Flatten")
nn.Flatten = Flatten
-- nn.Flatten(): [N, ...] -> [N, prod(...)]
function Flatten:forward(x) return x:reshape(x.shape[1], -1) end

local Dropout = Module:extend("Dropout")
nn.Dropout = Dropout
function Dropout:__init(p) self.p = p or 0.5 end
function Dropout:forward(x)
  if not self.training or self.p == 0 then return x end
  return F.dropout(x, self.p, true)
end
function Dropout:extra_repr() return ("p=%g"):format(self.p) end

local LayerNorm = Module:extend("LayerNorm")
nn.LayerNorm = LayerNorm
-- nn.LayerNorm(size or {sizes} [, {eps=1e-5, elementwise_affine=true}])
function LayerNorm:__init(shape, opts)
  opts = opts or {}
  if type(shape) == "number" then shape = { shape } end
  self.normalized_shape = shape
  self.eps = opts.eps or 1e-5
  if opts.elementwise_affine ~= false then
    self.weight = nn.Parameter(chalk.ones(shape))
    self.bias = nn.Parameter(chalk.zeros(shape))
  end
end
function LayerNorm:forward(x)
  return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
end
function LayerNorm:extra_repr()
  return ("(%s), eps=%g"):format(table.concat(self.normalized_shape, ", "), self.eps)
end

local Embedding = Module:extend("Embedding")
nn.Embedding = Embedding
-- nn.Embedding(num, dim): rows of a [num,dim] table, N(0,1) initialised; indices are 1-based.
function Embedding:__init(num, dim)
  self.num_embeddings, self.embedding_dim = num, dim
  self.weight = nn.Parameter(chalk.randn(num, dim))
end
function Embedding:forward(idx) return F.embedding(idx, self.weight) end
function Embedding:extra_repr() return ("%d, %d"):format(self.num_embeddings, self.embedding_dim) end

local Conv2d = Module:extend("Conv2d")
nn.Conv2d = Conv2d
-- nn.Conv2d(in, out, kernel [, {stride=1, padding=0, bias=true}]): x [N,in,H,W].
function Conv2d:__init(cin, cout, k, opts)
  opts = opts or {}
  self.in_channels, self.out_channels, self.kernel_size = cin, cout, k
  self.stride, self.padding = opts.stride or 1, opts.padding or 0
  local bound = 1 / math.sqrt(cin * k * k)
  self.weight = uniform_param({ cout, cin, k, k }, bound)
  if opts.bias ~= false then self.bias = uniform_param({ cout }, bound) end
end
function Conv2d:forward(x) return F.conv2d(x, self.weight, self.bias, self.stride, self.padding) end
function Conv2d:extra_repr()
  return ("%d, %d, kernel_size=%d, stride=%d, padding=%d"):format(self.in_channels, self.out_channels,
    self.kernel_size, self.stride, self.padding)
end

local MaxPool2d = Module:extend("MaxPool2d")
nn.MaxPool2d = MaxPool2d
function MaxPool2d:__init(k, stride)
  self.kernel_size, self.stride = k, stride or k
end
function MaxPool2d:forward(x) return F.max_pool2d(x, self.kernel_size, self.stride) end
function MaxPool2d:extra_repr() return ("kernel_size=%d, stride=%d"):format(self.kernel_size, self.stride) end

-- ---- a small causal Transformer ---------------------------------------------------------------------

-- An additive causal mask [T,T]: 0 where a query may look (key <= query), -inf above the diagonal.
local mask_cache = setmetatable({}, { __mode = "v" })
function nn.causal_mask(T, device)
  local key = T .. "@" .. (device or "cpu")
  local m = mask_cache[key]
  if m then return m end
  local rows = {}
  for i = 1, T do
    local r = {}
    for j = 1, T do r[j] = j <= i and 0 or -math.huge end
    rows[i] = r
  end
  m = chalk.tensor(rows)
  if device and device ~= "cpu" then m = m:to(device) end
  m.name = "causal mask"
  mask_cache[key] = m
  return m
end

local Attention = Module:extend("CausalSelfAttention")
nn.CausalSelfAttention = Attention
-- nn.CausalSelfAttention(d, heads): x [B,T,d] -> [B,T,d]; each position attends to itself and
-- the positions before it: softmax(q k^T / sqrt(d/heads) + mask) v, heads concatenated, projected.
function Attention:__init(d, heads)
  heads = heads or 1
  assert(d % heads == 0, "nn.CausalSelfAttention: d must be a multiple of heads")
  self.d, self.heads = d, heads
  self.qkv = Linear(d, 3 * d)
  self.proj = Linear(d, d)
end
function Attention:forward(x)
  local B, T, d = x.shape[1], x.shape[2], x.shape[3]
  local h = self.heads
  local dh = d // h
  local qkv = self.qkv(x)                                     -- [B,T,3d]
  local function split(i)                                     -- -> [B,h,T,dh]
    return qkv:narrow(3, (i - 1) * d + 1, d):reshape(B, T, h, dh):transpose(2, 3)
  end
  local q, k, v = split(1), split(2), split(3)
  local att = q:matmul(k:transpose(3, 4)) * (1 / math.sqrt(dh)) -- [B,h,T,T]
  att = (att + nn.causal_mask(T, x.device)):softmax(-1)
  self.last_attention = att
  local y = att:matmul(v)                                     -- [B,h,T,dh]
  y = y:transpose(2, 3):reshape(B, T, d)
  return self.proj(y)
end
function Attention:extra_repr() return ("d=%d, heads=%d"):format(self.d, self.heads) end

local Block = Module:extend("TransformerBlock")
nn.TransformerBlock = Block
-- nn.TransformerBlock(d, heads [, {mlp=4, dropout=0}]): a pre-norm GPT block,
-- x + attn(ln1(x)), then x + mlp(ln2(x)) with mlp = Linear(d, 4d), GELU, Linear(4d, d).
function Block:__init(d, heads, opts)
  opts = opts or {}
  local hidden = (opts.mlp or 4) * d
  self.ln1 = LayerNorm(d)
  self.attn = Attention(d, heads)
  self.ln2 = LayerNorm(d)
  self.mlp = Sequential { Linear(d, hidden), nn.GELU(), Linear(hidden, d) }
  if (opts.dropout or 0) > 0 then self.drop = Dropout(opts.dropout) end
end
function Block:forward(x)
  local a = self.attn(self.ln1(x))
  if self.drop then a = self.drop(a) end
  x = x + a
  local m = self.mlp(self.ln2(x))
  if self.drop then m = self.drop(m) end
  return x + m
end

return nn
