-- chalk/text.lua: text helpers shared by the lesson runner (repl/lesson.lua) and the tests.
--
--   local text = require "chalk.text"
--   text.dedent(s) -> s without its leading and trailing blank lines and the indentation all its
--                     lines share (a lesson step's code, a Python snippet written inside Lua)
local M = {}

function M.dedent(s)
  s = s:gsub("^%s*\n", ""):gsub("%s+$", "")
  local indent
  for line in (s .. "\n"):gmatch("(.-)\n") do
    if line:find("%S") then
      local lead = line:match("^[ \t]*")
      if not indent or #lead < #indent then indent = lead end
    end
  end
  if indent and #indent > 0 then
    local out = {}
    for line in (s .. "\n"):gmatch("(.-)\n") do
      out[#out + 1] = line:sub(1, #indent) == indent and line:sub(#indent + 1) or line:match("^%s*(.*)")
    end
    s = table.concat(out, "\n")
  end
  return s
end

return M
