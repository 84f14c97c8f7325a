-- tp.lua: tensor parallelism (Megatron): dist.ColumnLinear, dist.RowLinear, the f and g operators, the TP MLP.
--
--   col = dist.ColumnLinear(linear, world)  rank r keeps rows (r-1) n/N + 1 .. r n/N of W [out,in] and of b:
--                                           y_r = x W_r^T + b_r, its slice of the output columns
--   row = dist.RowLinear(linear, world)     rank r keeps columns (r-1) k/N + 1 .. r k/N of W: a partial
--                                           sum x_r W_r^T; the bias is added once, after g's all-reduce
--   mlp = dist.TensorParallelMLP(fc1, fc2, world, {act = chalk.tanh})   f, column, act, row, g
--   y = mlp(x);  mlp:backward()               see below
--   att = dist.TensorParallelAttention(wq, wk, wv, wo, heads, world)  (nn.Linear without bias for q,
--         k, v) the attention block split by heads: q, k, v column, the output projection row
--
-- f and g (Megatron, section 3): f is the identity forward and an all-reduce of the input's gradient
-- backward; g an all-reduce of the partial sums forward and the identity backward. g's forward is an
-- all_reduce on a detached copy, joined to the graph as y = partial + (reduced - partial) with the
-- difference constant: the value is the sum, the gradient flows to partial unchanged. f's all-reduce
-- must happen inside backward, which on simulated workers cannot yield to the other ranks, so f is a
-- boundary: its output is a fresh leaf; mlp:backward(), called after loss:backward(), all-reduces
-- that leaf's gradient (f backward) and passes it on into the input's graph (x:backward(g)).
-- Both carry their names ("f: all_reduce bwd", "g: all_reduce fwd") into graph pictures.
-- So one all-reduce per MLP forward (g) and one backward (f); a transformer layer (attention + MLP)
-- has two of each.
local chalk = require "chalk"

local M = {}

local function shard(t, dim, world, what)
  local n = t.shape[dim]
  if n % world.size ~= 0 then
    error(("dist.%s: dimension %d of size %d does not divide over %d ranks"):format(what, dim, n, world.size), 4)
  end
  local k = n // world.size
  return t:detach():narrow(dim, (world.rank - 1) * k + 1, k):clone():requires_grad_(true)
end

local function layer(kind, linear, world, fwd)
  if type(linear) ~= "table" or not linear.weight then error("dist." .. kind .. "(linear, world): linear is an nn.Linear", 3) end
  local l = setmetatable({kind = kind, world = world}, {__call = function(self, x) return fwd(self, x) end})
  return l
end

function M.ColumnLinear(linear, world)
  local l = layer("ColumnLinear", linear, world, function(self, x) return chalk.nn.functional.linear(x, self.weight, self.bias) end)
  l.weight = shard(linear.weight, 1, world, "ColumnLinear")
  l.bias = linear.bias and shard(linear.bias, 1, world, "ColumnLinear") or nil
  return l
end

function M.RowLinear(linear, world)
  local l = layer("RowLinear", linear, world, function(self, x) return chalk.nn.functional.linear(x, self.weight) end)
  l.weight = shard(linear.weight, 2, world, "RowLinear")
  l.bias = linear.bias and linear.bias:detach():clone():requires_grad_(true) or nil
  return l
end

-- g: all-reduce forward (the partial sums of the row layer), identity backward.
function M.g(partial, world)
  local reduced = partial:detach():clone()
  world:all_reduce(reduced)
  local y = partial + (reduced - partial:detach())
  y.name = "g: all_reduce fwd"
  return y
end

-- f: identity forward, a leaf whose gradient mlp:backward() all-reduces (see the header).
function M.f(x)
  local leaf = x:detach():clone():requires_grad_(true)
  leaf.name = "f: all_reduce bwd"
  return leaf
end

local MLP = {}
MLP.__index = MLP
MLP.__call = function(self, x) return self:forward(x) end

function M.MLP(fc1, fc2, world, o)
  o = o or {}
  return setmetatable({fc1 = M.ColumnLinear(fc1, world), fc2 = M.RowLinear(fc2, world), world = world,
                       act = o.act or chalk.tanh}, MLP)
end

function MLP:forward(x)
  self.x, self.leaf = x, M.f(x)
  local y = M.g(self.fc2(self.act(self.fc1(self.leaf))), self.world)
  return self.fc2.bias and y + self.fc2.bias or y
end

-- f backward: all-reduce the input gradient and pass it into x's graph. Returns the reduced gradient.
function MLP:backward()
  local g = self.leaf.grad
  if not g then error("TensorParallelMLP:backward(): call it after loss:backward()", 2) end
  g = g:clone()
  self.world:all_reduce(g)
  if self.x.requires_grad then self.x:backward(g) end
  return g
end

function MLP:parameters()
  local ps = {self.fc1.weight, self.fc2.weight}
  if self.fc1.bias then ps[#ps + 1] = self.fc1.bias end
  if self.fc2.bias then ps[#ps + 1] = self.fc2.bias end
  return ps
end

-- Self-attention over x [T, d] with `heads` heads (no mask): q, k, v = x Wq^T, x Wk^T, x Wv^T split
-- into heads of d/heads, softmax(q k^T / sqrt(dh)) v, heads side by side again; the caller applies Wo.
function M.attention_heads(x, wq, wk, wv, heads)
  local T, dh = x.shape[1], wq.shape[1] // heads
  local function split(w) -- [T, heads*dh] -> [heads, T, dh]
    return chalk.nn.functional.linear(x, w):view(T, heads, dh):permute(2, 1, 3)
  end
  local q, k, v = split(wq), split(wk), split(wv)
  local att = (chalk.matmul(q, k:transpose(2, 3)) * (1 / math.sqrt(dh))):softmax(-1)
  return chalk.matmul(att, v):permute(2, 1, 3):contiguous():view(T, heads * dh)
end

-- Megatron's attention block: Wq, Wk, Wv split by heads (ColumnLinear: rank r keeps heads
-- (r-1) h/N + 1 .. r h/N), Wo by input columns (RowLinear); f before, g after, as in the MLP.
local Attn = {}
Attn.__index = Attn
Attn.__call = function(self, x) return self:forward(x) end
Attn.backward = MLP.backward

function M.Attention(q, k, v, o, heads, world)
  if heads % world.size ~= 0 then
    error(("dist.TensorParallelAttention: %d heads do not divide over %d ranks"):format(heads, world.size), 3)
  end
  return setmetatable({q = M.ColumnLinear(q, world), k = M.ColumnLinear(k, world), v = M.ColumnLinear(v, world),
                       o = M.RowLinear(o, world), heads = heads // world.size, world = world}, Attn)
end

function Attn:forward(x)
  self.x, self.leaf = x, M.f(x)
  local h = M.attention_heads(self.leaf, self.q.weight, self.k.weight, self.v.weight, self.heads)
  local y = M.g(self.o(h), self.world)
  return self.o.bias and y + self.o.bias or y
end

-- The naive split: both layers split on their outputs (column), so every layer's full output is
-- all-gathered (the hidden activation, 4 times wider than the output, and the output).
function M.naive_mlp(fc1, fc2, world, x, act)
  act = act or chalk.tanh
  local function gather(y) -- [b, n/N] per rank -> [b, n]: all_gather on the transposed layout
    local full = chalk.zeros(world.size, y.shape[1], y.shape[2]):to(y.dtype)
    full:select(1, world.rank):copy_(y:detach())
    world:all_gather(full)
    return full:permute(2, 1, 3):contiguous():view(y.shape[1], y.shape[2] * world.size)
  end
  local c1, c2 = M.ColumnLinear(fc1, world), M.ColumnLinear(fc2, world)
  return gather(c2(gather(act(c1(x)))))
end

return M
