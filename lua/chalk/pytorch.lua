-- chalk/pytorch.lua: the PyTorch names students type, composed from table ops (so each has the
-- gradient of its parts): mm, bmm, einsum, sort, topk, logsumexp, masked_fill, triu, tril,
-- multinomial, tolist, all, any, allclose, equal, norm, repeat, split, chunk, flip, the in-place
-- add_/sub_/mul_/div_/exp_/clamp_/uniform_/normal_, and `x == y` made an error that says what to
-- use. argsort and cumsum are op rows (core/ops/ops_sort.c, bound in lua/lchalk_pytorch.c).
-- Dims and indices are 1-based, as everywhere in chalk. Loaded after chalk.core; returns nothing.
local chalk = require "chalk"
local T = chalk.Tensor
local had = {} -- the methods before this file: the ones it adds get an argument check at the end
for k in pairs(T) do had[k] = true end

local function shape_str(x) return "[" .. table.concat(x.shape, ", ") .. "]" end
local function dim_of(x, d, op)
  local nd = math.max(x.ndim, 1)
  if d == nil then return nd end
  if math.type(d) ~= "integer" or d == 0 or d > nd or d < -nd then
    error(("%s: dim %s is out of range for a tensor of %d dims (1-based)"):format(op, tostring(d), x.ndim), 3)
  end
  return d < 0 and nd + 1 + d or d
end

-- ---- matrix products -------------------------------------------------------------------------
function T.mm(a, b)
  if a.ndim ~= 2 or b.ndim ~= 2 or a.shape[2] ~= b.shape[1] then
    error(("mm: expected 2-D tensors [n, k] and [k, m], got %s and %s"):format(shape_str(a), shape_str(b)), 2)
  end
  return a:matmul(b)
end
function T.bmm(a, b)
  if a.ndim ~= 3 or b.ndim ~= 3 or a.shape[1] ~= b.shape[1] or a.shape[3] ~= b.shape[2] then
    error(("bmm: expected 3-D tensors [b, n, k] and [b, k, m], got %s and %s"):format(shape_str(a), shape_str(b)), 2)
  end
  return a:matmul(b)
end

-- einsum: one or two operands. Repeated letters in one operand take the diagonal; letters absent
-- from the output are summed; two operands contract with one batched matmul over
-- [batch, a-only, contracted] x [batch, contracted, b-only].
local function letters(s)
  local t = {}
  for c in s:gmatch("%a") do t[#t + 1] = c end
  return t
end
local function index_of(list, c)
  for i, v in ipairs(list) do if v == c then return i end end
end
-- x with subscripts subs: take diagonals of repeated letters, sum letters not in keep; returns
-- the tensor and its remaining letters.
local function reduce_operand(x, subs, keep, op)
  if #subs ~= x.ndim then
    error(("%s: subscripts '%s' name %d dims but the operand has shape %s"):format(op, table.concat(subs), #subs, shape_str(x)), 4)
  end
  subs = { table.unpack(subs) }
  local i = 1
  while i <= #subs do
    local j = index_of({ table.unpack(subs, i + 1) }, subs[i])
    if j then
      j = j + i
      local n = x.shape[i]
      if x.shape[j] ~= n then error(("%s: repeated subscript '%s' has sizes %d and %d"):format(op, subs[i], n, x.shape[j]), 4) end
      local eye = chalk.eye(n, { dtype = x.dtype, device = x.device })
      local shape = {}
      for d = 1, x.ndim do shape[d] = (d == i or d == j) and n or 1 end
      x = (x * eye:reshape(shape)):sum(j)
      table.remove(subs, j)
    else
      i = i + 1
    end
  end
  for d = #subs, 1, -1 do
    if not keep[subs[d]] then x = x:sum(d); table.remove(subs, d) end
  end
  return x, subs
end
local function permute_to(x, from, to)
  local perm, same = {}, true
  for k, c in ipairs(to) do perm[k] = index_of(from, c); same = same and perm[k] == k end
  if same or #perm < 2 then return x end
  return x:permute(perm)
end
function chalk.einsum(eq, a, b, extra)
  if type(eq) ~= "string" then error("einsum: expected an equation string first, as einsum('ij,jk->ik', a, b)", 2) end
  if extra ~= nil then error("einsum: at most two operands are supported", 2) end
  eq = eq:gsub("%s", "")
  local lhs, rhs = eq:match("^([^-]*)%->(.*)$")
  if not lhs then -- implicit output: the letters that appear once, in alphabetical order
    lhs = eq
    local count, out = {}, {}
    for c in lhs:gmatch("%a") do count[c] = (count[c] or 0) + 1 end
    for c, k in pairs(count) do if k == 1 then out[#out + 1] = c end end
    table.sort(out)
    rhs = table.concat(out)
  end
  if lhs:find("%.") then error("einsum: '...' is not supported; name every dim", 2) end
  local sa, sb = lhs:match("^(%a*),(%a*)$")
  if (sa ~= nil) ~= (b ~= nil) then error(("einsum: '%s' names %s operands but %d were given"):format(eq, sa and "two" or "one", b and 2 or 1), 2) end
  local out = letters(rhs)
  if not sa then
    local keep = {}
    for _, c in ipairs(out) do keep[c] = true end
    local x, subs = reduce_operand(a, letters(lhs), keep, "einsum")
    return permute_to(x, subs, out)
  end
  local la, lb = letters(sa), letters(sb)
  local keep_a, keep_b, in_out = {}, {}, {}
  for _, c in ipairs(out) do in_out[c] = true end
  for _, c in ipairs(la) do keep_a[c] = in_out[c] or index_of(lb, c) ~= nil end
  for _, c in ipairs(lb) do keep_b[c] = in_out[c] or index_of(la, c) ~= nil end
  local x, xs = reduce_operand(a, la, keep_a, "einsum")
  local y, ys = reduce_operand(b, lb, keep_b, "einsum")
  local batch, aonly, contr, bonly = {}, {}, {}, {}
  for _, c in ipairs(xs) do
    if index_of(ys, c) then
      if in_out[c] then batch[#batch + 1] = c else contr[#contr + 1] = c end
    else aonly[#aonly + 1] = c end
  end
  for _, c in ipairs(ys) do if not index_of(xs, c) then bonly[#bonly + 1] = c end end
  local size = {}
  for k, c in ipairs(xs) do size[c] = x.shape[k] end
  for k, c in ipairs(ys) do
    if size[c] and size[c] ~= y.shape[k] then
      error(("einsum: subscript '%s' has size %d in the first operand and %d in the second"):format(c, size[c], y.shape[k]), 2)
    end
    size[c] = y.shape[k]
  end
  local function prod(list) local p = 1 for _, c in ipairs(list) do p = p * size[c] end return p end
  local function cat(...) local r = {} for _, l in ipairs({ ... }) do for _, c in ipairs(l) do r[#r + 1] = c end end return r end
  local B, M, K, N = prod(batch), prod(aonly), prod(contr), prod(bonly)
  local xm = permute_to(x, xs, cat(batch, aonly, contr)):reshape(B, M, K)
  local ym = permute_to(y, ys, cat(batch, contr, bonly)):reshape(B, K, N)
  local r, rs = xm:matmul(ym), cat(batch, aonly, bonly)
  local shape = {}
  for k, c in ipairs(rs) do shape[k] = size[c] end
  r = #shape == 0 and r:reshape({}) or r:reshape(shape)
  return permute_to(r, rs, out)
end
chalk.mm, chalk.bmm = T.mm, T.bmm

-- ---- ordering ------------------------------------------------------------------------------
-- x:sort([dim [, descending]]) (or x:sort{dim=, descending=}): values and 1-based indices.
function T.sort(x, dim, descending)
  if type(dim) == "table" then dim, descending = dim.dim, dim.descending end
  dim = dim_of(x, dim, "sort")
  local idx = x:argsort(dim, descending)
  if x.ndim == 0 then return x:clone(), idx end
  return x:gather(dim, idx), idx
end
-- x:topk(k [, dim [, largest [, sorted]]]): the k largest (smallest) values and their indices.
function T.topk(x, k, dim, largest)
  dim = dim_of(x, dim, "topk")
  local n = x.ndim == 0 and 1 or x.shape[dim]
  if math.type(k) ~= "integer" or k < 0 or k > n then
    error(("topk: k = %s is out of range for dim %d of size %d"):format(tostring(k), dim, n), 2)
  end
  if largest == nil then largest = true end
  local idx = x:argsort(dim, largest)
  if x.ndim == 0 then return x:clone(), idx end
  idx = idx:narrow(dim, 1, k)
  return x:gather(dim, idx), idx
end

-- ---- reductions ----------------------------------------------------------------------------
-- logsumexp(dim [, keepdim]) = m + log(sum(exp(x - m))), m the (detached) max: never overflows.
function T.logsumexp(x, dim, keepdim)
  dim = dim_of(x, dim, "logsumexp")
  local m = x:detach():max(dim, true)
  m = chalk.where(m:abs():eq(math.huge), 0, m) -- all -inf rows give -inf, not NaN
  local r = (x - m):exp():sum(dim, true):log() + m
  if not keepdim then r = r:squeeze(dim) end
  return r
end
local function count_true(x, dim, keepdim)
  local nz = x:ne(0)
  if dim == nil then return nz:sum(), x:numel() end
  dim = dim_of(x, dim, "all/any")
  return nz:sum(dim, keepdim), x.shape[dim]
end
function T.all(x, dim, keepdim) local c, n = count_true(x, dim, keepdim) return c:eq(n) end
function T.any(x, dim, keepdim) local c = count_true(x, dim, keepdim) return c:gt(0) end
-- x:allclose(y [, rtol [, atol [, equal_nan]]]): one Lua boolean, |x - y| <= atol + rtol |y|.
function T.allclose(x, y, rtol, atol, equal_nan)
  rtol, atol = rtol or 1e-5, atol or 1e-8
  local a, b = x:detach():double(), (chalk.is_tensor(y) and y or chalk.tensor(y)):detach():double()
  local ok = (a - b):abs():le((b:abs() * rtol) + atol):long() + a:eq(b):long() -- eq: equal infinities
  if equal_nan then ok = ok + a:ne(a):long() * b:ne(b):long() end
  return chalk.equal(ok:gt(0):all(), chalk.tensor(true))
end
-- chalk.equal(x, y): same shape and every element equal (one Lua boolean), as torch.equal.
function chalk.equal(x, y)
  if table.concat(x.shape, ",") ~= table.concat(y.shape, ",") then return false end
  return x:eq(y):all():item() == true
end
-- x:norm([p [, dim [, keepdim]]]): p = 2 (default, also "fro"), 1, math.huge ("inf"), -math.huge, any p > 0.
function T.norm(x, p, dim, keepdim)
  if type(p) == "table" then p, dim, keepdim = p.p, p.dim, p.keepdim end
  if p == nil or p == "fro" then p = 2 end
  if p == "inf" then p = math.huge end
  if type(p) ~= "number" then error("norm: p must be a number, 'fro' or 'inf', got " .. tostring(p), 2) end
  local a = x:abs()
  local function red(t, fn)
    if dim == nil then return t[fn](t) end
    local dims = type(dim) == "table" and dim or { dim }
    local sorted = {}
    for k, d in ipairs(dims) do sorted[k] = dim_of(x, d, "norm") end
    table.sort(sorted, function(u, v) return u > v end)
    for _, d in ipairs(sorted) do t = t[fn](t, d, keepdim) end
    return t
  end
  if p == math.huge or p == -math.huge then
    local fn = p > 0 and "max" or "min"
    if dim == nil then return a[fn](a) end
    local dims = type(dim) == "table" and dim or { dim }
    local sorted = {}
    for k, d in ipairs(dims) do sorted[k] = dim_of(x, d, "norm") end
    table.sort(sorted, function(u, v) return u > v end)
    for _, d in ipairs(sorted) do a = (a[fn](a, d, keepdim)) end
    return a
  end
  if p == 1 then return red(a, "sum") end
  if p == 2 then return red(x * x, "sum"):sqrt() end
  if p <= 0 then error("norm: p must be > 0 (or +-inf), got " .. p, 2) end
  return red(a ^ p, "sum") ^ (1 / p)
end

-- ---- masks ---------------------------------------------------------------------------------
function T.masked_fill(x, mask, value)
  if mask.dtype ~= "bool" then error("masked_fill: the mask must be a bool tensor, got " .. mask.dtype, 2) end
  if chalk.is_tensor(value) then value = value:to(x.dtype) end
  return chalk.where(mask, value, x)
end
local function tri_mask(x, k, upper, op)
  if x.ndim < 2 then error(("%s: expected a tensor of at least 2 dims, got %s"):format(op, shape_str(x)), 3) end
  local m, n = x.shape[x.ndim - 1], x.shape[x.ndim]
  local rows = chalk.arange(1, m + 1, { device = x.device }):reshape(m, 1)
  local cols = chalk.arange(1, n + 1, { device = x.device }):reshape(1, n)
  local diff = cols - rows
  return upper and diff:ge(k or 0) or diff:le(k or 0)
end
function T.triu(x, k) return chalk.where(tri_mask(x, k, true, "triu"), x, 0) end
function T.tril(x, k) return chalk.where(tri_mask(x, k, false, "tril"), x, 0) end

-- ---- shapes --------------------------------------------------------------------------------
-- x:repeat_(...) is Lua's spelling problem: `repeat` is a keyword, so x["repeat"](x, 2, 3) or x:tile.
local function repeat_(x, ...)
  local sizes = select("#", ...) == 1 and type((...)) == "table" and (...) or { ... }
  if #sizes < x.ndim then
    error(("repeat: %d repeat counts for a tensor of %d dims (need at least %d)"):format(#sizes, x.ndim, x.ndim), 2)
  end
  local shape = {}
  local lead = #sizes - x.ndim
  for d = 1, #sizes do shape[d] = d > lead and x.shape[d - lead] or 1 end
  local inter, big, final = {}, {}, {}
  for d = 1, #sizes do
    inter[#inter + 1], inter[#inter + 2] = 1, shape[d]
    big[#big + 1], big[#big + 2] = sizes[d], shape[d]
    final[d] = sizes[d] * shape[d]
  end
  return x:reshape(inter):expand(big):reshape(final)
end
T["repeat"], T.tile = repeat_, repeat_
-- x:split(size or {sizes}, [dim]): views along dim (default 1), as torch.split.
function T.split(x, size, dim)
  dim = dim_of(x, dim or 1, "split")
  local n, parts, start = x.shape[dim], {}, 1
  if type(size) == "table" then
    local total = 0
    for _, s in ipairs(size) do total = total + s end
    if total ~= n then error(("split: sizes sum to %d but dim %d has size %d"):format(total, dim, n), 2) end
    for _, s in ipairs(size) do parts[#parts + 1] = x:narrow(dim, start, s); start = start + s end
    return parts
  end
  if math.type(size) ~= "integer" or size < 1 then error("split: size must be a positive integer, got " .. tostring(size), 2) end
  while start <= n do
    local len = math.min(size, n - start + 1)
    parts[#parts + 1] = x:narrow(dim, start, len)
    start = start + len
  end
  return parts
end
function T.chunk(x, chunks, dim)
  dim = dim_of(x, dim or 1, "chunk")
  if math.type(chunks) ~= "integer" or chunks < 1 then error("chunk: chunks must be a positive integer, got " .. tostring(chunks), 2) end
  return x:split(math.max(1, -(-x.shape[dim] // chunks)), dim)
end
function T.flip(x, dims)
  dims = type(dims) == "table" and dims or { dims }
  for _, d in ipairs(dims) do
    d = dim_of(x, d, "flip")
    local n = x.shape[d]
    x = x:index_select(d, chalk.arange(n, 0, -1, { device = x.device }))
  end
  return x
end
function T.tolist(x) return x:totable() end

-- ---- sampling ------------------------------------------------------------------------------
-- probs:multinomial(n [, replacement]): 1-based i64 class indices per row, drawn with the Gumbel
-- trick from chalk's Philox stream (argmax of log p + Gumbel noise; top-n without replacement).
function T.multinomial(p, n, replacement)
  if p.ndim < 1 or p.ndim > 2 then error("multinomial: expected probabilities of 1 or 2 dims, got " .. shape_str(p), 2) end
  local C = p.shape[p.ndim]
  return chalk.no_grad(function()
    local lp = p:double()
    if lp:lt(0):any():item() then error("multinomial: probabilities must be >= 0", 4) end
    lp = lp:log()
    local function gumbel(shape) return -(-(chalk.rand(shape, { dtype = "f64" }):clamp(1e-300, 1)):log()):log() end
    if not replacement then
      local nz = p:ne(0):sum(p.ndim):min():item()
      if n > nz then error(("multinomial: cannot draw %d samples without replacement from %d non-zero categories"):format(n, nz), 4) end
      local _, idx = (lp + gumbel(p.shape)):topk(n, p.ndim)
      return idx
    end
    local shape = { table.unpack(p.shape) }
    table.insert(shape, #shape, n)
    return (lp:unsqueeze(p.ndim) + gumbel(shape)):argmax(p.ndim + 1)
  end)
end

-- ---- in place (each bumps the storage's version counter: saved copies go stale) ------------
function T.add_(x, y, alpha) return x:axpby_(1, y, alpha or 1) end
function T.sub_(x, y, alpha) return x:axpby_(1, y, -(alpha or 1)) end
function T.mul_(x, y) return x:copy_(x * y) end
function T.div_(x, y) return x:copy_(x / y) end
function T.exp_(x) return x:copy_(x:exp()) end
function T.clamp_(x, lo, hi) return x:copy_(x:clamp(lo, hi)) end
function T.uniform_(x, a, b)
  a, b = a or 0, b or 1
  return x:copy_(chalk.rand(x.shape, { dtype = x.dtype, device = x.device }) * (b - a) + a)
end
function T.normal_(x, mean, std)
  return x:copy_(chalk.randn(x.shape, { dtype = x.dtype, device = x.device }) * (std or 1) + (mean or 0))
end

-- Every method added above checks that it is called on a tensor, so chalk.topk(5) says so instead
-- of failing inside with "attempt to index a number value".
for name, f in pairs(T) do
  if not had[name] and type(f) == "function" then
    T[name] = function(x, ...)
      if not chalk.is_tensor(x) then
        error(("%s: argument 1 must be a tensor, got %s"):format(name, type(x)), 2)
      end
      return f(x, ...)
    end
  end
end
do
  local einsum = chalk.einsum
  function chalk.einsum(eq, a, b, ...)
    if type(eq) ~= "string" then error(("einsum: argument 1 must be an equation string, got %s"):format(type(eq)), 2) end
    if not chalk.is_tensor(a) then error(("einsum: argument 2 must be a tensor, got %s"):format(type(a)), 2) end
    if b ~= nil and not chalk.is_tensor(b) and type(b) ~= "table" then
      error(("einsum: argument 3 must be a tensor, got %s"):format(type(b)), 2)
    end
    return einsum(eq, a, b, ...)
  end
end

-- torch.X(x, ...) for the methods above, as chalk.X
for _, name in ipairs({ "sort", "topk", "logsumexp", "all", "any", "allclose", "norm", "masked_fill", "triu", "tril",
  "split", "chunk", "flip", "multinomial", "tile" }) do
  chalk[name] = T[name]
end

-- ---- x == y ----------------------------------------------------------------------------------
-- Lua turns whatever __eq returns into one boolean, so elementwise == cannot exist; comparing two
-- distinct tensors says what to use instead of silently comparing identity.
getmetatable(chalk.zeros(1)).__eq = function()
  error("x == y cannot compare tensors elementwise in Lua (== always gives one boolean): use x:eq(y) for "
    .. "the elementwise comparison, chalk.equal(x, y) for one boolean, or rawequal(x, y) for identity", 2)
end
