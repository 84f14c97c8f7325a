-- collectives.lua: every algorithm and reduction against a plain loop, as one SPMD function; run
-- on sim by dist_spec.lua (N = 1, 2, 3, 4, 7, 8) and on MPI by mpi.sh (chalk --nproc 2 and 4).
-- Each rank makes every rank's data itself (a function of rank and index), so it knows the answer.
local chalk = require "chalk"

local M = {}

local function val(r, i) return ((r * 7919 + i * 104729) % 2001) / 100 - 10 end

local function data(r, n, dtype)
  local t = chalk.zeros(n, {dtype = dtype})
  for i = 1, n do t[i] = dtype:sub(1, 1) == "i" and math.floor(val(r, i) * 10) or val(r, i) end
  return t
end

local function check(cond, fmt, ...)
  if not cond then error(string.format(fmt, ...), 2) end
end

function M.sizes() return {1, 7, 33, 1000} end

-- Runs every check on world w; returns the number of checks passed.
function M.run(w, sizes)
  local checks, N = 0, w.size
  local reduce = {
    sum = function(a, b) return a + b end, mean = function(a, b) return a + b end,
    max = math.max, min = math.min,
  }
  for _, S in ipairs(sizes or M.sizes()) do
    for _, algo in ipairs {"ring", "tree", "halving_doubling", "ps", "native"} do
      for _, op in ipairs {"sum", "mean", "max", "min"} do
        for _, dtype in ipairs(op == "mean" and {"f32", "f64"} or {"f64", "i32"}) do
          local t = data(w.rank, S, dtype)
          w:all_reduce(t, {op = op, algo = algo})
          for i = 1, S do
            local want = dtype == "i32" and math.floor(val(1, i) * 10) or val(1, i)
            for r = 2, N do
              want = reduce[op](want, dtype == "i32" and math.floor(val(r, i) * 10) or val(r, i))
            end
            if op == "mean" then want = want / N end
            local got = t[i]:item()
            check(math.abs(got - want) <= 1e-4 * (1 + math.abs(want)),
                  "all_reduce %s %s %s S=%d N=%d rank %d [%d]: %g, want %g", algo, op, dtype, S, N, w.rank, i, got, want)
          end
          checks = checks + 1
        end
      end
    end
    -- reduce_scatter: this rank's chunk is reduced
    local t = data(w.rank, S, "f64")
    w:reduce_scatter(t, {op = "sum"})
    local first, len = w:chunk(S)
    for i = first, first + len - 1 do
      local want = 0
      for r = 1, N do want = want + val(r, i) end
      check(math.abs(t[i]:item() - want) < 1e-9, "reduce_scatter S=%d rank %d [%d]", S, w.rank, i)
    end
    -- all_gather: every chunk from its owner
    local g = chalk.full({S}, -1, {dtype = "f64"})
    for i = first, first + len - 1 do g[i] = val(w.rank, i) end
    w:all_gather(g)
    for r = 1, N do
      local f, l = w:chunk(S, r)
      for i = f, f + l - 1 do check(g[i]:item() == val(r, i), "all_gather S=%d rank %d [%d]", S, w.rank, i) end
    end
    -- broadcast from the last rank
    local b = data(w.rank, S, "f64")
    w:broadcast(b, N)
    for i = 1, S do check(b[i]:item() == val(N, i), "broadcast S=%d rank %d", S, w.rank) end
    -- all_to_all of N chunks of S
    local a = data(w.rank, S * N, "f64")
    w:all_to_all(a)
    for q = 1, N do
      for i = 1, S do
        check(a[(q - 1) * S + i]:item() == val(q, (w.rank - 1) * S + i), "all_to_all S=%d rank %d", S, w.rank)
      end
    end
    checks = checks + 4
  end
  -- send/recv round the ring, then a barrier
  if N > 1 then
    local nxt, prv = w.rank % N + 1, (w.rank - 2) % N + 1
    local out, inn = chalk.full({5}, w.rank), chalk.zeros(5)
    if w.rank % 2 == 1 then w:send(out, nxt); w:recv(inn, prv) else w:recv(inn, prv); w:send(out, nxt) end
    check(inn[1]:item() == prv, "recv from %d got %g", prv, inn[1]:item())
    checks = checks + 1
  end
  w:barrier()
  -- split into two colours: a sub-group all_reduce
  local sub = w:split(w.rank % 2, -w.rank)
  local u = chalk.full({3}, w.rank, {dtype = "f64"})
  sub:all_reduce(u)
  local want = 0
  for r = 1, N do if r % 2 == w.rank % 2 then want = want + r end end
  check(u[1]:item() == want, "split all_reduce rank %d: %g, want %g", w.rank, u[1]:item(), want)
  check(sub.size == (N + (w.rank % 2)) // 2, "split size")
  return checks + 1
end

-- Ring byte counts against the law: 2(N-1)/N S per rank in 2(N-1) messages (S a multiple of N).
function M.ring_bytes(w, elems)
  w:reset_stats()
  local t = chalk.ones(elems)
  w:all_reduce(t, {algo = "ring"})
  local s = w:stats().by.all_reduce.ring
  local S, N = elems * 4, w.size
  check(s.sent == 2 * (N - 1) / N * S, "ring sent %g bytes, law %g", s.sent, 2 * (N - 1) / N * S)
  check(s.messages == 2 * (N - 1), "ring sent %d messages, law %d", s.messages, 2 * (N - 1))
  check(N == 1 or math.abs(s.busbw / s.algbw - 2 * (N - 1) / N) < 1e-12, "busbw/algbw")
  return s
end

return M
