-- checkpoint.lua: nn.checkpoint, activation checkpointing in eager mode (the graph-level form is
-- g:optimize{"checkpoint"} on a captured step).
--
--   block = nn.checkpoint(nn.Sequential{ nn.Linear(d, d), nn.ReLU() })   -- a module: a module
--   y = block(x)                  -- forward keeps only x; backward recomputes the block
--   f = nn.checkpoint(function(x) return (x @ w):tanh() end, {w})         -- a function + params
--
-- Invariants: forward runs the wrapped code without recording (its activations are freed at
-- once) and keeps its tensor inputs; backward runs it again with recording on and takes the
-- gradients of that run, so gradients equal the uncheckpointed ones; a module's parameters are
-- found by :parameters(), a function's must be given (a leaf the function uses but was not given
-- is an error in backward, never a silently missing gradient).
local chalk = require "chalk"
local nn = chalk.nn or require "chalk.nn"

local Checkpoint = nn.Module:extend("Checkpoint")

function Checkpoint:__init(inner)
  self.inner = inner
end

local function tensors_of(args)
  local ins = {}
  for i = 1, args.n do
    if chalk.is_tensor(args[i]) then ins[#ins + 1] = args[i] end
  end
  return ins
end

-- fn(...) with the tensors of args replaced by the recomputation's own tensors
local function run_with(fn, args)
  return function(...)
    local fresh, k, call = { ... }, 0, {}
    for i = 1, args.n do
      if chalk.is_tensor(args[i]) then
        k = k + 1
        call[i] = fresh[k]
      else
        call[i] = args[i]
      end
    end
    return fn(table.unpack(call, 1, args.n))
  end
end

function Checkpoint:forward(...)
  local args = table.pack(...)
  local inner = self.inner
  return chalk._checkpoint(run_with(function(...) return inner(...) end, args), tensors_of(args), inner:parameters())
end

function Checkpoint:extra_repr() return "recomputed in backward" end

-- nn.checkpoint(module) -> a module; nn.checkpoint(fn, params) -> a function.
function nn.checkpoint(f, params)
  if type(f) == "table" and f.parameters then
    assert(params == nil, "nn.checkpoint(module): the module's own parameters are used")
    return Checkpoint(f)
  end
  assert(type(f) == "function", "nn.checkpoint expects a module or a function")
  assert(params == nil or type(params) == "table", "nn.checkpoint(fn, params): params must be a list of tensors")
  return function(...)
    local args = table.pack(...)
    return chalk._checkpoint(run_with(f, args), tensors_of(args), params or {})
  end
end

nn.Checkpoint = Checkpoint
return nn.checkpoint
