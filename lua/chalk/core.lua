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
