-- superopt.lua: g:superoptimize{depth=, budget=}, a superoptimizer over the capture IR (lesson 20).
--
--   res = g:superoptimize{depth = 3, budget = 200000}
--   res.programs        verified programs, cheapest first: {text, time, bytes, flops, kernels, ops}
--   res.best  res.original  res.stats (per depth: generated, pruned by shape / by cost, merged,
--   kept, rejected by test, verified)  res.leaves (name -> leaf expression)  res.defs (leaf texts)
--   res:check(expr)     finite-field then float test of any expression (E.mul(a, b), ...)
--   res:capture(prog)   the whole program with prog in place of the original tail, as a Graph
--   res:tree{file=}     the picture of the search (lua/chalk/superopt_draw.lua)
--
-- How: the captured graph is split in two. Ops with no meaning modulo a prime (exp, sqrt, max, ...)
-- and everything they read stay as they are (the prologue); their results, the graph's inputs and
-- bound tensors are the leaves. The tail after them is the target. The search enumerates
-- expressions bottom up, by number of ops (the depth), from the leaves with the ops of
-- superopt_sem.lua: each new expression is pruned if its shapes do not fit, or if its cost (the
-- roofline time of lessons 6-7: max(flops/peak, bytes/bandwidth) per kernel plus a launch each)
-- exceeds the original tail's, and merged with an earlier one if both give the same values on a
-- random input modulo P = 2^31 - 1 (observational equivalence). An expression with the target's
-- shape and values is a candidate: two more finite-field tests on fresh inputs, then a float test
-- (f64, fresh random inputs, the prologue recomputed) verify it. The finite-field tests use tiny
-- sizes (each distinct dimension mapped to 2, 3, 4, ...); the float test uses the real ones.
local chalk = require "chalk"
local ci = require "chalk.capture_inspect"
local sem = require "chalk.superopt_sem"

local M = {}
local E = {} -- expression builders, for res:check and tests
M.E = E
local P, ops, numel = sem.P, sem.ops, sem.numel

local Expr = {}
Expr.__index = Expr

local function shape_text(s) return "[" .. table.concat(s, ",") .. "]" end

local function num_text(c)
  if c == math.floor(c) and math.abs(c) < 1e9 then return ("%d"):format(c) end
  return ("%.4g"):format(c)
end

function Expr:__tostring()
  local a = self.args
  if self.op == "leaf" then return self.name end
  local row = ops[self.op]
  local function wrap(e)
    local s = tostring(e)
    if e.op ~= "leaf" and e.op ~= "transpose" and e.op ~= "sum" then return "(" .. s .. ")" end
    return s
  end
  if row.sym then return wrap(a[1]) .. " " .. row.sym .. " " .. wrap(a[2]) end
  if self.op == "transpose" then return wrap(a[1]) .. "^T" end
  if self.op == "mul_scalar" then return num_text(self.attr.c) .. " * " .. wrap(a[1]) end
  if self.op == "add_scalar" then return wrap(a[1]) .. " + " .. num_text(self.attr.c) end
  return self.op .. "(" .. tostring(a[1]) .. ")"
end

-- A new expression, or nil when its shapes do not fit. Costs add up over the tree.
local function make(op, args, attr, ctx)
  local shapes = {}
  for i, e in ipairs(args) do shapes[i] = e.shape end
  local shape = ops[op].shape(shapes, attr or {})
  if not shape then return nil end
  local e = setmetatable({ op = op, args = args, attr = attr or {}, shape = shape }, Expr)
  local fl, by, k = sem.cost(op, shapes, shape)
  e.flops, e.bytes, e.kernels, e.ops = fl, by, k, 1
  e.time = k > 0 and math.max(fl / ctx.peak, by / ctx.bandwidth) + ctx.launch or 0
  for _, x in ipairs(args) do
    e.flops, e.bytes, e.kernels = e.flops + x.flops, e.bytes + x.bytes, e.kernels + x.kernels
    e.time, e.ops = e.time + x.time, e.ops + x.ops
  end
  return e
end

-- evaluate(e, env, memo, apply): e's value with leaves from env, each op applied by apply(op row,
-- argument values, e); memo shares common sub-expressions.
local function evaluate(e, env, memo, apply)
  if memo[e] then return memo[e] end
  local r
  if e.op == "leaf" then
    r = env[e.name]
  else
    local vals = {}
    for i, x in ipairs(e.args) do vals[i] = evaluate(x, env, memo, apply) end
    r = apply(ops[e.op], vals, e, env)
  end
  memo[e] = r
  return r
end

local function apply_mod(op, vals, e, env)
  local sh = {}
  for i, d in ipairs(e.shape) do sh[i] = env.dims[d] or d end
  return op.mod(vals, e.attr, env.sym, sh)
end

local function apply_float(op, vals, e) return op.float(vals, e.attr) end

local function eval_mod(e, env, memo) return evaluate(e, env, memo, apply_mod) end

local function eval_float(e, env, memo) return evaluate(e, env, memo, apply_float) end

-- ---- reading the captured graph ----------------------------------------------------------------

local function extract(g)
  local nodes = g:nodes()
  local producer, graph_inputs = {}, {}
  for i, n in ipairs(nodes) do
    if #n.outputs ~= 1 then error(("superoptimize: node %d (%s) has %d outputs"):format(i, n.op, #n.outputs), 3) end
    producer[n.outputs[1]] = i
    if not ops[n.op] then
      error(("superoptimize: op %s (node %d) is not in the superoptimizer's table (superopt_sem.lua)"):format(n.op, i), 3)
    end
  end
  for i, t in ipairs(g:inputs()) do graph_inputs[i] = t end
  -- prologue: nodes with no modular meaning and everything they read
  local pro = {}
  local function mark(i)
    if pro[i] then return end
    pro[i] = true
    for _, v in ipairs(nodes[i].inputs) do if producer[v] then mark(producer[v]) end end
  end
  for i, n in ipairs(nodes) do if not ops[n.op].mod then mark(i) end end
  local x = { nodes = nodes, producer = producer, pro = pro, leaves = {}, leaf_list = {}, tensors = {},
              vname = {}, defs = {}, counter = {} }
  local function leaf_of(v)
    if x.vname[v] then return x.leaves[x.vname[v]] end
    local val, name = g:value(v), nil
    local t = ci.tensor(g, v)
    if t and t:numel() == 1 and val.constant then
      name = num_text(t:item())
    elseif t then
      name = t.name or ("v" .. v)
    else
      local op = nodes[producer[v]].op
      x.counter[op] = (x.counter[op] or 0) + 1
      name = op .. x.counter[op]
    end
    local e = setmetatable({ op = "leaf", name = name, v = v, shape = val.shape, flops = 0, bytes = 0,
                             kernels = 0, time = 0, ops = 0, args = {} }, Expr)
    e.constant = t and val.constant or false
    e.is_input = val.input
    x.vname[v], x.leaves[name], x.tensors[name] = name, e, t
    x.leaf_list[#x.leaf_list + 1] = e
    return e
  end
  x.leaf_of = leaf_of
  return x
end

-- The tail as an expression over the leaves; the prologue as float steps.
local function build_target(x, ctx)
  local memo = {}
  local function expr_of(v)
    if memo[v] then return memo[v] end
    local i = x.producer[v]
    local e
    if not i or x.pro[i] then
      e = x.leaf_of(v)
    else
      local n = x.nodes[i]
      local attr, why = sem.attrs(n.op, ci.attrs(ctx.g, i))
      if not attr then error("superoptimize: node " .. i .. ": " .. why, 4) end
      local args = {}
      for k, w in ipairs(n.inputs) do args[k] = expr_of(w) end
      e = make(n.op, args, attr, ctx)
      if not e then error(("superoptimize: node %d (%s): shapes do not fit"):format(i, n.op), 4) end
    end
    memo[v] = e
    return e
  end
  local last = x.nodes[#x.nodes]
  return expr_of(last.outputs[1])
end

-- env[name] for every leaf of x: a value known in byv, a prologue result recomputed from those
-- (float rules), else unknown(v); byv (value id -> tensor) is filled on the way.
local function leaf_values(x, ctx, byv, unknown)
  local env = {}
  local function value(v)
    if byv[v] then return byv[v] end
    local i = x.producer[v]
    if not i then
      byv[v] = unknown(v)
      return byv[v]
    end
    local n = x.nodes[i]
    local args = {}
    for k, w in ipairs(n.inputs) do args[k] = value(w) end
    byv[v] = ops[n.op].float(args, sem.attrs(n.op, ci.attrs(ctx.g, i)))
    return byv[v]
  end
  for _, e in ipairs(x.leaf_list) do env[e.name] = value(e.v) end
  return env
end

-- Float values of every leaf: graph inputs and bound tensors random (f64) or as given, constants
-- as captured, prologue results recomputed from them.
local function float_env(x, ctx, random)
  local byv = {}
  for _, e in ipairs(x.leaf_list) do -- in leaf order, so the random draws repeat
    local t = x.tensors[e.name]
    if t then
      if random and not e.constant then t = chalk.randn(table.unpack(e.shape)) end
      byv[e.v] = t:to("f64")
    end
  end
  local function unknown(v)
    local val = ctx.g:value(v)
    local t = (random and not val.constant) and chalk.randn(table.unpack(val.shape)) or ci.tensor(ctx.g, v)
    return t:to("f64")
  end
  return leaf_values(x, ctx, byv, unknown)
end

local function mod_env(x, dims, seed_sym)
  local env = { dims = dims, sym = seed_sym }
  for _, e in ipairs(x.leaf_list) do
    local sh, vals = {}, {}
    for i, d in ipairs(e.shape) do sh[i] = dims[d] or d end
    if e.constant then
      local c = x.tensors[e.name]:item()
      for k = 1, numel(sh) do vals[k] = sem.scalar(seed_sym, c) end
    else
      for k = 1, numel(sh) do vals[k] = math.random(0, P - 1) end
    end
    env[e.name] = { shape = sh, v = vals }
  end
  return env
end

local function key_of(e, vals)
  return shape_text(e.shape) .. table.concat(vals.v, ",")
end

-- ---- the search ----------------------------------------------------------------------------------

local Result = {}
Result.__index = Result

function M.superoptimize(g, opts)
  opts = opts or {}
  local ctx = { g = g, peak = opts.peak or 50e9, bandwidth = opts.bandwidth or 20e9, launch = opts.launch or 5e-6 }
  local depth, budget = opts.depth or 3, opts.budget or 200000
  local x = extract(g)
  local target = build_target(x, ctx)
  -- tiny sizes for the finite-field tests: each distinct dimension > 1 -> 2, 3, 4, ...
  local sizes, dims = {}, {}
  for _, e in ipairs(x.leaf_list) do for _, d in ipairs(e.shape) do if d > 1 then sizes[d] = true end end end
  local list = {}
  for d in pairs(sizes) do list[#list + 1] = d end
  table.sort(list)
  for i, d in ipairs(list) do dims[d] = i + 1 end
  local sym = {}
  local env = mod_env(x, dims, sym)
  local want = eval_mod(target, env, {})
  local want_key = key_of(target, want)
  -- the ops the search may apply: the binary rows, transpose, sums over each dim, and every scalar
  -- the tail uses
  local unary = { { "transpose", {} } }
  for _, dim in ipairs { -1, -2 } do unary[#unary + 1] = { "sum", { dim = dim, keepdim = true } } end
  local seen_c = {}
  local function scan(e)
    if e.op == "mul_scalar" and not seen_c[e.attr.c] then
      seen_c[e.attr.c] = true
      unary[#unary + 1] = { "mul_scalar", { c = e.attr.c } }
    end
    for _, a in ipairs(e.args) do scan(a) end
  end
  scan(target)
  local binary = { "add", "sub", "mul", "div", "matmul" }
  local bound = target.time * (opts.bound or 1) * (1 + 1e-9)
  local res = setmetatable({ x = x, ctx = ctx, target = target, env = env, dims = dims, sym = sym,
                             leaves = x.leaves, programs = {}, stats = {} }, Result)
  local seen = {}
  local bank = { [0] = {} }
  for _, e in ipairs(x.leaf_list) do
    bank[0][#bank[0] + 1] = e
    seen[key_of(e, env[e.name])] = e
    e.vals = env[e.name]
  end
  local generated_total, truncated = 0, false
  for d = 1, depth do
    local st = { depth = d, generated = 0, shape = 0, cost = 0, merged = 0, kept = 0, rejected = 0, verified = 0 }
    res.stats[d] = st
    bank[d] = {}
    local function try(op, args, attr)
      if generated_total >= budget then truncated = true; return end
      generated_total = generated_total + 1
      st.generated = st.generated + 1
      local e = make(op, args, attr, ctx)
      if not e then st.shape = st.shape + 1; return end
      if e.time > bound then st.cost = st.cost + 1; return end
      local vals = {}
      for i, a in ipairs(args) do vals[i] = a.vals end
      local sh = {}
      for i, dd in ipairs(e.shape) do sh[i] = dims[dd] or dd end
      e.vals = ops[op].mod(vals, e.attr, sym, sh)
      local key = key_of(e, e.vals)
      local old = seen[key]
      if old and old.time <= e.time then st.merged = st.merged + 1; return end
      seen[key] = e
      bank[d][#bank[d] + 1] = e
      if key == want_key then
        local ok, why = res:check(e)
        if ok then
          st.verified = st.verified + 1
          res.programs[#res.programs + 1] = e
        else
          st.rejected = st.rejected + 1
          e.why = why
        end
      elseif sem.same(e.shape, target.shape) then
        st.rejected = st.rejected + 1
      else
        st.kept = st.kept + 1
      end
    end
    for _, u in ipairs(unary) do
      for _, e in ipairs(bank[d - 1]) do try(u[1], { e }, u[2]) end
    end
    for d1 = 0, d - 1 do
      local d2 = d - 1 - d1
      for _, op in ipairs(binary) do
        local comm = ops[op].commutative
        if not (comm and d1 > d2) then
          for i, a in ipairs(bank[d1]) do
            for j, b in ipairs(bank[d2]) do
              if not (comm and d1 == d2 and j < i) then try(op, { a, b }) end
            end
          end
        end
      end
    end
  end
  table.sort(res.programs, function(a, b)
    if a.time ~= b.time then return a.time < b.time end
    return a.ops < b.ops
  end)
  res.best = res.programs[1]
  res.original = target
  res.truncated = truncated
  res.generated = generated_total
  res.defs = {} -- "sqrt1 = sqrt(mean(x * x) + 1e-06)": how each prologue leaf is computed
  local function pro_text(v, top)
    local i = x.producer[v]
    if not i then
      local t = ci.tensor(g, v)
      if t and t:numel() == 1 then return num_text(t:item()) end
      return (t and t.name) or ("v" .. v)
    end
    if not top and x.vname[v] then return x.vname[v] end
    local n, a = x.nodes[i], {}
    for k, w in ipairs(n.inputs) do a[k] = pro_text(w) end
    local attr = sem.attrs(n.op, ci.attrs(g, i)) or {}
    local sym = ops[n.op].sym
    if sym then return a[1] .. " " .. sym .. " " .. a[2] end
    if n.op == "add_scalar" then return a[1] .. " + " .. num_text(attr.c) end
    if n.op == "mul_scalar" then return num_text(attr.c) .. " * " .. a[1] end
    if attr.c then a[#a + 1] = num_text(attr.c) end
    return n.op .. "(" .. table.concat(a, ", ") .. ")"
  end
  for _, e in ipairs(x.leaf_list) do
    if x.producer[e.v] then res.defs[#res.defs + 1] = e.name .. " = " .. pro_text(e.v, true) end
  end
  return res
end

-- Finite-field tests on fresh random inputs (tiny sizes), then a float test (f64, real sizes).
function Result:check(e, trials)
  if not sem.same(e.shape, self.target.shape) then
    return false, "shape " .. shape_text(e.shape) .. ", want " .. shape_text(self.target.shape)
  end
  for _ = 1, trials or 2 do
    local env = mod_env(self.x, self.dims, self.sym)
    local a, b = eval_mod(e, env, {}), eval_mod(self.target, env, {})
    if table.concat(a.v, ",") ~= table.concat(b.v, ",") then return false, "differs modulo P" end
  end
  local env = float_env(self.x, self.ctx, true)
  local a, b = eval_float(e, env, {}), eval_float(self.target, env, {})
  local err = (a - b):abs():max():item() / math.max(b:abs():max():item(), 1e-300)
  e.float_err = err
  if err > 1e-9 then return false, ("differs in floating point (relative %.2g)"):format(err) end
  return true
end

-- A Lua function of the graph's inputs computing the prologue then e (for chalk.capture).
function Result:fn(e)
  local x, ctx = self.x, self.ctx
  return function(...)
    local args = { ... }
    local byv = {}
    for i, v in ipairs(ci.input_values(ctx.g)) do byv[v] = args[i] end
    return eval_float(e, leaf_values(x, ctx, byv, function(v) return ci.tensor(ctx.g, v) end), {})
  end
end

function Result:capture(e)
  return chalk.capture(self:fn(e), table.unpack(self.ctx.g:inputs()))
end

function Result:tree(opts) return require("chalk.superopt_draw").tree(self, opts or {}) end

-- ---- expression builders: E.mul(a, b), E.matmul(a, b), E.sum(a), E.T(a), E.scale(a, c) ------------

local function builder(op, attr_of)
  return function(...)
    local args, n = { ... }, ops[op].arity
    local attr = attr_of and attr_of(select(n + 1, ...)) or {}
    local a = { table.unpack(args, 1, n) }
    local ctx = { peak = 50e9, bandwidth = 20e9, launch = 5e-6 }
    local e = make(op, a, attr, ctx)
    if not e then error(("E.%s: shapes do not fit"):format(op), 2) end
    return e
  end
end
for _, op in ipairs { "add", "sub", "mul", "div", "matmul" } do E[op] = builder(op) end
E.T = builder("transpose")
E.sum = builder("sum", function(dim) return { dim = dim or -1, keepdim = true } end)
E.scale = builder("mul_scalar", function(c) return { c = c } end)

chalk.Graph.superoptimize = function(g, opts) return M.superoptimize(g, opts) end

return M
