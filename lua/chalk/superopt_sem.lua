-- superopt_sem.lua: what each op the superoptimizer knows computes, three ways: its output shape
-- (broadcasting, reductions, matmul), its value modulo a prime on tiny integer tensors (the
-- finite-field test, as Mirage does), and its value on chalk tensors (the float test), plus its
-- cost in the capture IR's model (flops and bytes as core/graph's op costs count them).
--
-- Invariants: a modular tensor is {shape = {...}, v = {...}} row-major with entries in [0, P);
-- every function here is pure; an op with no meaning modulo P (exp, sqrt, max, ...) has no
-- `mod` and is never built by the search (its results enter as leaves).
local M = {}
local P = 2147483647 -- 2^31 - 1: products of two residues fit in a Lua integer
M.P = P

local function numel(s)
  local n = 1
  for _, d in ipairs(s) do n = n * d end
  return n
end
M.numel = numel

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end
M.same = same

local function powmod(b, e)
  local r = 1
  b = b % P
  while e > 0 do
    if e & 1 == 1 then r = r * b % P end
    b, e = b * b % P, e >> 1
  end
  return r
end

-- ---- shapes ----------------------------------------------------------------------------------

local function broadcast(a, b)
  local n = math.max(#a, #b)
  local out = {}
  for i = 1, n do
    local x, y = a[#a - n + i] or 1, b[#b - n + i] or 1
    if x ~= y and x ~= 1 and y ~= 1 then return nil end
    out[i] = math.max(x, y)
  end
  return out
end

local function reduce_shape(a, dim, keep)
  if #a == 0 then return nil end
  local d = dim < 0 and #a + 1 + dim or dim
  if d < 1 or d > #a then return nil end
  local out = {}
  for i = 1, #a do
    if i ~= d then out[#out + 1] = a[i] elseif keep then out[#out + 1] = 1 end
  end
  return out, d
end

local function matmul_shape(a, b)
  if #a ~= 2 or #b ~= 2 or a[2] ~= b[1] then return nil end
  return { a[1], b[2] }
end

local function transpose_shape(a)
  if #a ~= 2 then return nil end
  return { a[2], a[1] }
end

-- ---- modular tensors -------------------------------------------------------------------------

local function strides(s)
  local st, acc = {}, 1
  for i = #s, 1, -1 do st[i], acc = acc, acc * s[i] end
  return st
end

local function ew(a, b, shape, f)
  local out, n = {}, numel(shape)
  local sa, sb, so = strides(a.shape), strides(b.shape), strides(shape)
  local na, nb = #a.shape, #b.shape
  for k = 0, n - 1 do
    local ia, ib, rem = 0, 0, k
    for i = 1, #shape do
      local idx = rem // so[i]
      rem = rem % so[i]
      local ja, jb = i - (#shape - na), i - (#shape - nb)
      if ja >= 1 and a.shape[ja] ~= 1 then ia = ia + idx * sa[ja] end
      if jb >= 1 and b.shape[jb] ~= 1 then ib = ib + idx * sb[jb] end
    end
    out[k + 1] = f(a.v[ia + 1], b.v[ib + 1])
  end
  return { shape = shape, v = out }
end

local function map(a, f)
  local out = {}
  for i, x in ipairs(a.v) do out[i] = f(x) end
  return { shape = a.shape, v = out }
end

local function mod_sum(a, dim, keep)
  local shape, d = reduce_shape(a.shape, dim, keep)
  local outer, inner = 1, 1
  for i = 1, d - 1 do outer = outer * a.shape[i] end
  for i = d + 1, #a.shape do inner = inner * a.shape[i] end
  local n, out = a.shape[d], {}
  for o = 0, outer - 1 do
    for i = 0, inner - 1 do
      local s = 0
      for k = 0, n - 1 do s = s + a.v[(o * n + k) * inner + i + 1] end
      out[o * inner + i + 1] = s % P
    end
  end
  return { shape = shape, v = out }
end

local function mod_matmul(a, b)
  local m, k, n = a.shape[1], a.shape[2], b.shape[2]
  local out = {}
  for i = 0, m - 1 do
    for j = 0, n - 1 do
      local s = 0
      for t = 0, k - 1 do s = (s + a.v[i * k + t + 1] * b.v[t * n + j + 1]) % P end
      out[i * n + j + 1] = s
    end
  end
  return { shape = { m, n }, v = out }
end

local function mod_transpose(a)
  local m, n, out = a.shape[1], a.shape[2], {}
  for i = 0, m - 1 do for j = 0, n - 1 do out[j * m + i + 1] = a.v[i * n + j + 1] end end
  return { shape = { n, m }, v = out }
end

-- A scalar attribute as a field element: integers are themselves; any other number stands for a
-- fixed random element (a symbol), the same for the same number within one search.
function M.scalar(sym, c)
  if c == math.floor(c) and math.abs(c) < 2 ^ 31 then return math.tointeger(c) % P end
  sym[c] = sym[c] or math.random(1, P - 1)
  return sym[c]
end

-- ---- the op rows -------------------------------------------------------------------------------
-- shape(shapes, attr) -> shape | nil;  mod(vals, attr, sym) -> modular tensor;
-- float(ts, attr) -> tensor;  kernel: false for views (no launch, no bytes).

M.ops = {
  add = { arity = 2, commutative = true, shape = function(s) return broadcast(s[1], s[2]) end,
          mod = function(v, _, _, sh) return ew(v[1], v[2], sh, function(x, y) return (x + y) % P end) end,
          float = function(t) return t[1] + t[2] end, sym = "+" },
  sub = { arity = 2, shape = function(s) return broadcast(s[1], s[2]) end,
          mod = function(v, _, _, sh) return ew(v[1], v[2], sh, function(x, y) return (x - y) % P end) end,
          float = function(t) return t[1] - t[2] end, sym = "-" },
  mul = { arity = 2, commutative = true, shape = function(s) return broadcast(s[1], s[2]) end,
          mod = function(v, _, _, sh) return ew(v[1], v[2], sh, function(x, y) return x * y % P end) end,
          float = function(t) return t[1] * t[2] end, sym = "*" },
  div = { arity = 2, shape = function(s) return broadcast(s[1], s[2]) end, -- x * y^(P-2): y's inverse
          mod = function(v, _, _, sh) return ew(v[1], v[2], sh, function(x, y) return x * powmod(y, P - 2) % P end) end,
          float = function(t) return t[1] / t[2] end, sym = "/" },
  matmul = { arity = 2, shape = function(s) return matmul_shape(s[1], s[2]) end,
             mod = function(v) return mod_matmul(v[1], v[2]) end,
             float = function(t) return t[1]:matmul(t[2]) end, sym = "@", matmul = true },
  transpose = { arity = 1, kernel = false, shape = function(s) return transpose_shape(s[1]) end,
                mod = function(v) return mod_transpose(v[1]) end,
                float = function(t) return t[1]:transpose(1, 2) end },
  sum = { arity = 1, reduce = true, shape = function(s, a) return (reduce_shape(s[1], a.dim, a.keepdim)) end,
          mod = function(v, a) return mod_sum(v[1], a.dim, a.keepdim) end,
          float = function(t, a) return t[1]:sum(a.dim, a.keepdim) end },
  mean = { arity = 1, reduce = true, shape = function(s, a) return (reduce_shape(s[1], a.dim, a.keepdim)) end,
           mod = function(v, a)
             local r = mod_sum(v[1], a.dim, a.keepdim)
             local _, d = reduce_shape(v[1].shape, a.dim, a.keepdim)
             local inv = powmod(v[1].shape[d], P - 2)
             return map(r, function(x) return x * inv % P end)
           end,
           float = function(t, a) return t[1]:mean(a.dim, a.keepdim) end },
  mul_scalar = { arity = 1, shape = function(s) return s[1] end,
                 mod = function(v, a, sym) local c = M.scalar(sym, a.c); return map(v[1], function(x) return x * c % P end) end,
                 float = function(t, a) return t[1] * a.c end },
  add_scalar = { arity = 1, shape = function(s) return s[1] end,
                 mod = function(v, a, sym) local c = M.scalar(sym, a.c); return map(v[1], function(x) return (x + c) % P end) end,
                 float = function(t, a) return t[1] + a.c end },
  neg = { arity = 1, shape = function(s) return s[1] end,
          mod = function(v) return map(v[1], function(x) return (P - x) % P end) end,
          float = function(t) return -t[1] end },
  -- no meaning modulo P: float only (their results are leaves of the search)
  exp = { arity = 1, shape = function(s) return s[1] end, float = function(t) return t[1]:exp() end },
  sqrt = { arity = 1, shape = function(s) return s[1] end, float = function(t) return t[1]:sqrt() end },
  log = { arity = 1, shape = function(s) return s[1] end, float = function(t) return t[1]:log() end },
  tanh = { arity = 1, shape = function(s) return s[1] end, float = function(t) return t[1]:tanh() end },
  pow_scalar = { arity = 1, shape = function(s) return s[1] end, float = function(t, a) return t[1]:pow(a.c) end },
  max = { arity = 1, reduce = true, shape = function(s, a) return (reduce_shape(s[1], a.dim, a.keepdim)) end,
          float = function(t, a) return t[1]:max({ a.dim }, a.keepdim) end },
}

-- Attributes of a captured node in the form above (capture_inspect's raw attrs).
function M.attrs(op, raw)
  if op == "sum" or op == "mean" or op == "max" then
    if #raw.dims ~= 1 then return nil, op .. " over several dims" end
    return { dim = raw.dims[1], keepdim = raw.keepdim }
  elseif op == "mul_scalar" or op == "add_scalar" or op == "pow_scalar" then
    return { c = raw.f[1] }
  elseif op == "transpose" then
    local a, b = raw.i[1], raw.i[2]
    if not ((a == 0 and b == 1) or (a == 1 and b == 0)) then return nil, "transpose of dims other than 1, 2" end
    return {}
  end
  return {}
end

-- flops and bytes (4 per f32 element) as the capture IR's op costs count them; views are free.
function M.cost(op, in_shapes, out_shape)
  local row = M.ops[op]
  if row.kernel == false then return 0, 0, 0 end
  local bytes = numel(out_shape)
  for _, s in ipairs(in_shapes) do bytes = bytes + numel(s) end
  local flops = numel(out_shape)
  if row.matmul then flops = 2 * in_shapes[1][1] * in_shapes[1][2] * in_shapes[2][2]
  elseif row.reduce then flops = numel(in_shapes[1]) end
  return flops, 4 * bytes, 1
end

return M
