-- chalk/core.lua: the Lua half of the binding: what reads better in Lua than in C.
-- Loaded first by luaopen_chalk; it extends the chalk table and returns nothing.
--
--   chalk.no_grad(fn, ...)           run fn with autograd recording off
--   chalk.enable_grad(fn, ...)       run fn with it on (inside a no_grad)
--   chalk.with_category(cat, fn, ...) tensors made inside fn are tagged cat ("parameter", ...)
--
-- Each restores the previous mode even when fn raises (pcall), then re-raises the error, so a
-- Ctrl-C or a mistake inside never leaves the REPL with recording off.
local chalk = require "chalk"

local unpack = table.unpack

-- Call fn(...) between set(value) and set(previous), re-raising any error after restoring.
local function around(set, value, fn, ...)
  if type(fn) ~= "function" then
    error("expected a function, got " .. type(fn), 3)
  end
  local previous = set(value)
  local result = table.pack(pcall(fn, ...))
  set(previous)
  if not result[1] then
    error(result[2], 0)
  end
  return unpack(result, 2, result.n)
end

function chalk.no_grad(fn, ...)
  return around(chalk.set_grad_enabled, false, fn, ...)
end

function chalk.enable_grad(fn, ...)
  return around(chalk.set_grad_enabled, true, fn, ...)
end

function chalk.with_category(category, fn, ...)
  return around(chalk.set_default_category, category, fn, ...)
end

-- Contexts (chalk.context, design decision 11): whoever runs a simulated worker switches its
-- context in around each resume, so a worker's grad mode, RNG stream, event lane, memory
-- statistics and clock are its own. A yield inside chalk.no_grad then leaves grad mode off in
-- the yielding worker's context only: the resumer is back on its own context when resume returns.
local context = chalk.context

-- chalk.context.resume(ctx, co, ...): coroutine.resume(co, ...) with ctx current while co runs.
function context.resume(ctx, co, ...)
  local previous = context.switch(ctx)
  local result = table.pack(coroutine.resume(co, ...))
  context.switch(previous)
  return unpack(result, 1, result.n)
end

-- chalk.context.wrap(ctx, fn): as coroutine.wrap(fn), each resume under ctx; errors propagate.
function context.wrap(ctx, fn)
  local co = coroutine.create(fn)
  return function(...)
    local result = table.pack(context.resume(ctx, co, ...))
    if not result[1] then
      error(result[2], 0)
    end
    return unpack(result, 2, result.n)
  end
end

-- chalk.context.run(ctx, fn, ...) (also ctx:run): fn(...) with ctx current, its results returned.
-- fn may yield (called from a worker coroutine): ctx is switched out for the yield, passed on to
-- whoever resumes the caller, and back in when the caller is resumed.
function context.run(ctx, fn, ...)
  if type(fn) ~= "function" then
    error("context.run: expected a function, got " .. type(fn), 2)
  end
  local co = coroutine.create(fn)
  local args = table.pack(...)
  while true do
    local result = table.pack(context.resume(ctx, co, unpack(args, 1, args.n)))
    if not result[1] then
      error(result[2], 0)
    end
    if coroutine.status(co) == "dead" then
      return unpack(result, 2, result.n)
    end
    args = table.pack(coroutine.yield(unpack(result, 2, result.n)))
  end
end

context.Context.run = context.run -- ctx:run(fn, ...), ctx:resume(co, ...), ctx:wrap(fn)
context.Context.resume = context.resume
context.Context.wrap = context.wrap
