-- fuzz_api.lua: random calls over chalk's Lua API (issue 14): constructors, chalk.* functions and
-- tensor methods with random shapes (0, 1, awkward, 2^31, 2^62, negative), dtypes, devices and
-- argument types, each in pcall. Fails on a non-string or empty error, on an error that is a raw
-- Lua error ("attempt to ...") from a C function, on grad mode or the live-tensor count not being
-- restored, and on chalk not working afterwards; a crash ends the process (make reports it).
-- usage: lua5.4 tests/fuzz/fuzz_api.lua [iterations=2000] [seed=1] [--trace]  (see tests/fuzz/README.md)
local chalk = require "chalk"

local N = tonumber(arg and arg[1]) or 2000
local SEED = tonumber(arg and arg[2]) or 1
local TRACE = arg and (arg[3] == "--trace" or arg[2] == "--trace")
math.randomseed(SEED)
chalk.manual_seed(SEED)
-- a huge but legal size must be refused by the limit, not handed to the kernel: keep it low
chalk.set_memory_limit(64 << 20)

local R = math.random
local function pick(t) return t[R(#t)] end

-- constructors, functions and methods not called: file and terminal I/O, global settings the
-- fuzzer checks itself, and calls that take callbacks or run lessons
local SKIP = {
  save = true, save_npy = true, load = true, load_npy = true, _read_idx = true, _isatty = true,
  set_memory_limit = true, set_default_category = true, set_grad_enabled = true, set_printoptions = true,
  set_retain_all_grads = true, manual_seed = true, no_grad = true, enable_grad = true, with_category = true,
  profile = true, capture = true, _checkpoint = true, autotune = true, clock = true, grad = true,
  backward = true, -- exercised separately below, on small graphs
}

local SIZES = { 0, 1, 1, 2, 3, 4, 5, 7, 17, 2^31, 2^32, 2^62, 1 << 62, -1, -2, math.maxinteger, math.mininteger, 2^63 }
local SMALL = { 0, 1, 2, 3, 4, 5 }
local DTYPES = { "f32", "f64", "i32", "i64", "bool", "f16", "bf16", "i8", "u8", "nonsense" }
local DEVICES = { "cpu", "cuda", "cuda:1", "cpu:3", "tpu" }
local NUMBERS = { 0, 1, -1, 2, 0.5, -3.25, 1e300, -1e300, 0 / 0, math.huge, -math.huge, 2^31, 2^62, -2^63,
  math.maxinteger, math.mininteger }

local function small_shape()
  local s = {}
  for i = 1, R(0, 4) do s[i] = pick(SMALL) end
  return s
end

local function rand_tensor()
  local dt = pick({ "f32", "f32", "f64", "i32", "i64", "bool" })
  local shape = small_shape()
  local ok, t = pcall(chalk.rand, shape)
  if not ok then return chalk.zeros(1) end
  if dt ~= "f32" then t = (t * 10 - 5):to(dt) end
  if R() < 0.2 and t:dim() > 1 then t = t:transpose(1, 2) end
  if R() < 0.2 and dt:sub(1, 1) == "f" then t:requires_grad_(true) end
  return t
end

-- well-typed arguments are most of them, so that calls get past argument checking into the ops
local function typed_arg(self)
  if not chalk.is_tensor(self) then self = nil end
  local r = R(6)
  if r == 1 and self then return self:clone():detach()
  elseif r == 2 and self and self:dim() > 0 and self:size(1) > 0 then return self:select(1, 1):detach()
  elseif r <= 4 then return R(-3, 3)
  elseif r == 5 then return small_shape()
  else return pick({ 0.5, 2, -1, 1e-3 })
  end
end

local function rand_arg(self)
  if R() < 0.6 then return typed_arg(self) end
  local r = R(12)
  if r <= 4 then return rand_tensor()
  elseif r == 5 then return pick(SIZES)
  elseif r == 6 then return pick(NUMBERS)
  elseif r == 7 then return pick(SMALL)
  elseif r == 8 then
    local s = {}
    for i = 1, R(0, 3) do s[i] = R() < 0.7 and pick(SMALL) or pick(SIZES) end
    return s
  elseif r == 9 then
    local o = {}
    if R() < 0.7 then o.dtype = pick(DTYPES) end
    if R() < 0.4 then o.device = pick(DEVICES) end
    if R() < 0.2 then o.requires_grad = R() < 0.5 end
    if R() < 0.1 then o.bogus = 1 end
    return o
  elseif r == 10 then return pick({ pick(DTYPES), pick(DEVICES), "", "sum" })
  elseif r == 11 then return pick({ true, false, nil })
  else return pick({ {}, { rand_tensor(), rand_tensor() }, function() end, chalk.zeros(0) })
  end
end

local function describe_arg(v)
  if chalk.is_tensor(v) then
    local ok, s = pcall(function() return ("%s%s"):format(v.dtype, table.concat(v:size(), "x")) end)
    return ok and ("tensor(" .. s .. ")") or "tensor(?)"
  elseif type(v) == "table" then
    local p = {}
    for k, x in pairs(v) do p[#p + 1] = (type(k) == "string" and k .. "=" or "") .. describe_arg(x) end
    return "{" .. table.concat(p, ",") .. "}"
  elseif type(v) == "string" then return ("%q"):format(v)
  end
  return tostring(v)
end

-- the callables: chalk.* functions, chalk.nn.functional.*, and tensor methods (self is a tensor)
local FUNCS, METHODS = {}, {}
for k, v in pairs(chalk) do
  if type(v) == "function" and not SKIP[k] then FUNCS[#FUNCS + 1] = { "chalk." .. k, v } end
end
for k, v in pairs(chalk.nn.functional or {}) do
  if type(v) == "function" then FUNCS[#FUNCS + 1] = { "chalk.nn.functional." .. k, v } end
end
for k, v in pairs(chalk.Tensor) do
  if type(v) == "function" and not SKIP[k] then METHODS[#METHODS + 1] = { "x:" .. k, v } end
end
local function byname(a, b) return a[1] < b[1] end
table.sort(FUNCS, byname) -- pairs order is not reproducible; the seed must be
table.sort(METHODS, byname)

local failures, calls, errors, by_kind, raw = {}, 0, 0, {}, {}
local function fail(msg)
  failures[#failures + 1] = msg
  io.stderr:write("FUZZ FAIL: ", msg, "\n")
end

local function is_c(f) return debug.getinfo(f, "S").what == "C" end

local function check_error(name, f, desc, err)
  if type(err) ~= "string" or #err == 0 then
    fail(("%s raised a %s, not a message"):format(desc, type(err)))
  elseif err:find("attempt to ", 1, true) then
    if is_c(f) then fail(("%s: raw Lua error from C: %s"):format(desc, err))
    else raw[name] = raw[name] or err end -- lua/chalk/*.lua: listed in the summary
  end
  local kind = err and tostring(err):gsub("^[^:]*:%d+: ", ""):match("^([%w_%.]+)") or "?"
  by_kind[kind] = (by_kind[kind] or 0) + 1
  return name
end

local function live() collectgarbage(); collectgarbage(); return chalk.memory_stats().live_tensors end

local base_live = live()
local t0 = os.clock()
for it = 1, N do
  local grad = chalk.is_grad_enabled()
  local name, f, args
  if R() < 0.5 then
    name, f = table.unpack(FUNCS[R(#FUNCS)])
    args = {}
    for i = 1, R(0, 4) do args[i] = i == 1 and R() < 0.5 and rand_tensor() or rand_arg(args[1]) end
  else
    name, f = table.unpack(METHODS[R(#METHODS)])
    args = { rand_tensor() }
    for i = 2, R(1, 4) do args[i] = rand_arg(args[1]) end
  end
  local parts = {}
  for i = 1, #args do parts[i] = describe_arg(args[i]) end
  local desc = ("#%d %s(%s)"):format(it, name, table.concat(parts, ", "))
  if TRACE then io.stdout:write(desc, "\n"); io.stdout:flush() end
  calls = calls + 1
  local ok, err = pcall(f, table.unpack(args, 1, #args))
  if not ok then
    errors = errors + 1
    check_error(name, f, desc, err)
  elseif chalk.is_tensor(err) and err:numel() <= 1 << 20 and R() < 0.3 then
    -- (an expand to 2^62 elements is a legal view; summing it would take years, not a bug)
    -- use the result: print it, reduce it, and take a gradient when it has one
    local ok2, e2 = pcall(function()
      local y = err
      tostring(y)
      if y.requires_grad and y:numel() > 0 and y.dtype:sub(1, 1) == "f" then y:sum():backward() end
    end)
    if not ok2 then check_error(name, f, desc .. " (using the result)", e2) end
  end
  if chalk.is_grad_enabled() ~= grad then
    fail(desc .. ": grad mode changed")
    chalk.set_grad_enabled(grad)
  end
  args, err = nil, nil
  if it % 200 == 0 then
    local n = live()
    if n > base_live + 64 then fail(("after #%d: %d live tensors, %d at the start"):format(it, n, base_live)) end
  end
end

-- the loaders over mutated files: random bytes changed, cut short, and (.chalk) the checksum
-- recomputed so the mutation reaches the record parser
local support = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "../lua/support.lua")
local crc32, slurp = support.crc32, support.read
local function spit(p, x) local f = assert(io.open(p, "wb")); f:write(x); f:close() end
local function mutate(x)
  for _ = 1, R(1, 4) do
    local i = R(math.max(1, #x))
    x = x:sub(1, i - 1) .. string.char(R(0, 255)) .. x:sub(i + 1)
  end
  if R() < 0.3 then x = x:sub(1, R(0, #x)) end
  return x
end
local tmp = os.tmpname()
chalk.save({ w = chalk.rand(3, 2), b = chalk.zeros(2, { dtype = "i64" }), n = 3 }, tmp)
local good_chalk = slurp(tmp)
chalk.save_npy(chalk.rand(2, 3), tmp)
local good_npy = slurp(tmp)
local good_idx = "\0\0\8\2" .. string.pack(">I4I4", 2, 3) .. "\1\2\3\4\5\6"
local files = 0
for it = 1, math.max(50, N // 20) do
  local kind, x = R(3), nil
  if kind == 1 then
    x = mutate(good_chalk)
    if R() < 0.7 and #x > 28 then
      local payload = x:sub(9, #x - 20)
      x = "CHALKSV1" .. payload .. "CHALKEND" .. string.pack("<I8I4", #payload, crc32(payload))
    end
  elseif kind == 2 then x = mutate(good_npy)
  else x = mutate(good_idx)
  end
  spit(tmp, x)
  local f = ({ chalk.load, chalk.load_npy, function(p) return chalk._read_idx(p, "f32") end })[kind]
  local ok, err = pcall(f, tmp)
  files = files + 1
  if not ok and (type(err) ~= "string" or not err:find("load") and not err:find("read_idx")) then
    fail(("file #%d (%s): error does not name the loader: %s"):format(it, ({ "load", "load_npy", "read_idx" })[kind], tostring(err)))
  end
end
os.remove(tmp)

local n = live()
if n ~= base_live then fail(("live tensors: %d after the run, %d before"):format(n, base_live)) end
local ok, v = pcall(function() return chalk.ones(2, 2):sum():item() end)
if not ok or v ~= 4 then fail("chalk does not work after the run: " .. tostring(v)) end
chalk.set_memory_limit(nil)

local kinds = {}
for k, c in pairs(by_kind) do kinds[#kinds + 1] = { k, c } end
table.sort(kinds, function(a, b) return a[2] > b[2] end)
local top = {}
for i = 1, math.min(6, #kinds) do top[i] = kinds[i][1] .. "=" .. kinds[i][2] end
print(("fuzz_api: seed %d, %d calls (%d functions, %d methods), %d clean errors, %d mutated files, %.1fs; most errors from: %s"):format(
  SEED, calls, #FUNCS, #METHODS, errors, files, os.clock() - t0, table.concat(top, " ")))
local rawn = {}
for k in pairs(raw) do rawn[#rawn + 1] = k end
table.sort(rawn)
if #rawn > 0 then print("fuzz_api: raw Lua errors (not failures: Lua-side argument checks) from " .. table.concat(rawn, ", ")) end
if os.getenv("FUZZ_VERBOSE") then for _, k in ipairs(rawn) do print("  " .. k .. ": " .. raw[k]) end end
if #failures > 0 then
  print(("fuzz_api: %d FAILURES"):format(#failures))
  os.exit(1)
end
