-- nccl_collectives.lua: every collective the nccl backend runs, native and chalk's schedules, on GPU
-- tensors of f32 and bf16 and uneven sizes, against a plain loop on the host; one SPMD function for
-- any number of GPUs. Used by nccl_one_rank.lua (dist.run on one GPU, and chalk --nproc 1
-- --backend nccl) and, on a machine with N GPUs, by chalk --nproc N --backend nccl
-- tests/dist/nccl_one_rank.lua (tests/dist/nccl.sh). Values are small integers, exact in bf16 sums.
local chalk = require "chalk"

local M = {}

local function val(r, i) return (r * 5 + i * 7) % 17 - 8 end

local function data(w, r, n, dtype)
  local t = chalk.zeros(n)
  for i = 1, n do t[i] = val(r, i) end
  return t:to(dtype):to(w.device)
end

local function check(cond, fmt, ...)
  if not cond then error(string.format(fmt, ...), 2) end
end

-- got (a tensor anywhere) against want(i) on elements first .. first + count - 1
local function expect(what, got, want, first, count, tol)
  local h = got:to("cpu"):to("f64")
  for i = first, first + count - 1 do
    local g, e = h[i]:item(), want(i)
    check(math.abs(g - e) <= tol * math.max(1, math.abs(e)), "%s: element %d is %s, expected %s", what, i, g, e)
  end
end

function M.sizes() return {1, 7, 33, 1000, 4099} end

-- Runs every check on world w (backend nccl); returns the number of checks passed.
function M.run(w, sizes)
  assert(w.backend == "nccl" and w.device:match("^cuda:%d+$"), "an nccl world with a GPU device")
  local N, checks = w.size, 0
  local function sum(i) local s = 0 for r = 1, N do s = s + val(r, i) end return s end
  local function max(i) local m = val(1, i) for r = 2, N do m = math.max(m, val(r, i)) end return m end
  for _, S in ipairs(sizes or M.sizes()) do
    for _, dtype in ipairs {"f32", "bf16"} do
      local tol = dtype == "bf16" and 1 / 128 or 1e-6
      local tag = function(s) return string.format("%s (%s, %d elements, %d ranks)", s, dtype, S, N) end
      for _, algo in ipairs {"native", "ring", "tree", "halving_doubling"} do
        for op, want in pairs {sum = sum, mean = function(i) return sum(i) / N end, max = max} do
          local t = data(w, w.rank, S, dtype)
          check(w:all_reduce(t, {op = op, algo = algo}) == t, "all_reduce returns its tensor")
          expect(tag("all_reduce " .. algo .. " " .. op), t, want, 1, S, tol)
          checks = checks + 1
        end
      end
      local first, count = w:chunk(S)
      for _, algo in ipairs {"native", "ring"} do
        local t = data(w, w.rank, S, dtype)
        w:reduce_scatter(t, {algo = algo})
        expect(tag("reduce_scatter " .. algo), t, sum, first, count, tol)
        t = chalk.zeros(S):to(dtype)
        local mine = data(w, w.rank, S, dtype):to("cpu")
        for i = first, first + count - 1 do t[i] = mine[i]:item() end
        t = t:to(w.device)
        w:all_gather(t, {algo = algo})
        expect(tag("all_gather " .. algo), t, function(i)
          for r = 1, N do
            local f, c = w:chunk(S, r)
            if i >= f and i < f + c then return val(r, i) end
          end
        end, 1, S, 0)
        checks = checks + 2
      end
      for _, algo in ipairs {"native", "tree"} do
        local t = data(w, w.rank, S, dtype)
        w:broadcast(t, N, {algo = algo})
        expect(tag("broadcast " .. algo .. " from rank " .. N), t, function(i) return val(N, i) end, 1, S, 0)
        checks = checks + 1
      end
      local t = data(w, w.rank, S, dtype)
      local h = w:all_reduce(t, {async = true, algo = "ring"})
      expect(tag("async all_reduce"), h:wait(), sum, 1, S, tol)
      checks = checks + 1
    end
  end
  w:barrier() -- empty messages (a device byte each on nccl)
  -- a host tensor is refused, naming the device the rank expects
  local ok, err = pcall(w.all_reduce, w, chalk.ones(4))
  check(not ok and err:find(w.device, 1, true) and err:find("nccl"), "a cpu tensor on nccl is an error naming %s: %s",
        w.device, tostring(err))
  return checks + 1
end

return M
