-- lesson.lua: the lesson runner: finds, lists and steps through lessons/NAME.lua (compiled into chalk).
--
-- A lesson file returns { title = ..., module = N, steps = { {title, text, code, check}, ... } }
-- (lessons/README.md). Every step's code runs in the global environment, so state carries
-- from step to step and on to the prompt. The runner keeps one lesson at a time:
--   current.index  the step last shown (0 before the first)
--   current.done   the highest step that has run; jumping past it runs the skipped steps
--                  quietly first, so their state exists.
local host = ...

local M = {}
local current -- nil when no lesson is running

local function style(code, s)
  if host.color then return "\27[" .. code .. "m" .. s .. "\27[0m" end
  return s
end

local function warn(msg)
  io.stderr:write(msg, "\n")
end

-- The places a lesson is looked for, in order.
function M.dirs()
  local dirs = { "lessons" }
  if host.exe_dir then dirs[#dirs + 1] = host.exe_dir .. "/../lessons" end
  local env = os.getenv("CHALK_LESSONS")
  if env and env ~= "" then
    for d in env:gmatch("[^:]+") do dirs[#dirs + 1] = d end
  end
  return dirs
end

local function readable(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

local function find(name)
  if name:find("/", 1, true) or name:match("%.lua$") then
    if readable(name) then return name end
    return nil, "no lesson file " .. name
  end
  for _, d in ipairs(M.dirs()) do
    local path = d .. "/" .. name .. ".lua"
    if readable(path) then return path end
  end
  return nil, ("no lesson %q (looked in %s; :lessons lists them)"):format(name,
    table.concat(M.dirs(), ", "))
end

local function load_lesson(path)
  local chunk, err = loadfile(path)
  if not chunk then return nil, err end
  local ok, lesson = pcall(chunk)
  if not ok then return nil, tostring(lesson) end
  if type(lesson) ~= "table" then return nil, path .. ": a lesson file must return a table" end
  if type(lesson.steps) ~= "table" or #lesson.steps == 0 then
    return nil, path .. ": the lesson has no steps (steps = { {title=..., code=...}, ... })"
  end
  for i, step in ipairs(lesson.steps) do
    if type(step) ~= "table" then return nil, ("%s: step %d is not a table"):format(path, i) end
    for _, field in ipairs { "title", "text", "code" } do
      if step[field] ~= nil and type(step[field]) ~= "string" then
        return nil, ("%s: step %d: %s must be a string"):format(path, i, field)
      end
    end
    if step.check ~= nil and type(step.check) ~= "function" then
      return nil, ("%s: step %d: check must be a function"):format(path, i)
    end
  end
  lesson.title = lesson.title or path
  return lesson
end

-- Remove leading and trailing blank lines and the indentation all lines share.
local function dedent(s)
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

-- The names of the lessons found, sorted (for Tab completion).
function M.names()
  local seen, names = {}, {}
  for _, d in ipairs(M.dirs()) do
    for _, file in ipairs(host.listdir(d) or {}) do
      local name = file:match("^(.+)%.lua$")
      if name and not seen[name] then
        seen[name] = true
        names[#names + 1] = name
      end
    end
  end
  table.sort(names)
  return names
end

function M.list()
  local seen, rows = {}, {}
  for _, d in ipairs(M.dirs()) do
    local names = host.listdir(d) or {}
    for _, file in ipairs(names) do
      local name = file:match("^(.+)%.lua$")
      if name and not seen[name] then
        seen[name] = true
        local lesson, err = load_lesson(d .. "/" .. file)
        rows[#rows + 1] = {
          name = name,
          module = lesson and tonumber(lesson.module) or math.huge,
          title = lesson and lesson.title or "(cannot load: " .. tostring(err) .. ")",
          steps = lesson and #lesson.steps,
        }
      end
    end
  end
  if #rows == 0 then
    print("no lessons found (looked in " .. table.concat(M.dirs(), ", ") .. ")")
    return true
  end
  table.sort(rows, function(a, b)
    if a.module ~= b.module then return a.module < b.module end
    return a.name < b.name
  end)
  for _, r in ipairs(rows) do
    local module = r.module ~= math.huge and ("module %d: "):format(r.module) or ""
    local steps = r.steps and (" (%d steps)"):format(r.steps) or ""
    print(("  %-16s %s%s%s"):format(r.name, module, r.title, steps))
  end
  print("start one with :lesson NAME (or chalk --lesson NAME)")
  return true
end

local function show_step(i)
  local steps = current.lesson.steps
  local step = steps[i]
  print()
  print(style("1", ("[%d/%d] %s"):format(i, #steps, step.title or "")))
  if step.text then print(dedent(step.text)) end
  if step.code then
    print()
    for line in (dedent(step.code) .. "\n"):gmatch("(.-)\n") do print(style("2", "    " .. line)) end
    print()
  end
end

-- Run step i's code and check; true when both pass.
local function run_step(i)
  local step = current.lesson.steps[i]
  local ok = true
  if step.code then
    ok = host.run(dedent(step.code), ("=%s[%d]"):format(current.name, i))
  end
  if ok and step.check then
    local passed, err = pcall(step.check)
    if not passed or err == false then
      warn(("check failed in step %d: %s"):format(i, passed and "check returned false" or tostring(err)))
      ok = false
    end
  end
  current.index = i
  if i > current.done then current.done = i end
  return ok
end

-- Run f with print, io.write and pictures silenced; errors still show on stderr.
local function quietly(f)
  local saved_print, saved_write = print, io.write
  local chalk = rawget(_G, "chalk")
  local saved_picture = type(chalk) == "table" and rawget(chalk, "on_picture")
  print = function() end
  io.write = function() return io.stdout end
  if saved_picture then chalk.on_picture = function() end end
  local ok, result = pcall(f)
  print, io.write = saved_print, saved_write
  if saved_picture then chalk.on_picture = saved_picture end
  if not ok then error(result, 0) end
  return result
end

local function need_lesson()
  if current then return true end
  print("no lesson is running (:lessons lists them, :lesson NAME starts one)")
  return false
end

-- Show and run step n, first running quietly any earlier steps that never ran.
function M.step(n)
  if not need_lesson() then return false end
  local count = #current.lesson.steps
  local i = math.tointeger(tonumber(n))
  if not i or i < 1 or i > count then
    print(("no step %s: this lesson has steps 1 to %d"):format(tostring(n), count))
    return false
  end
  if current.done + 1 < i then
    local skipped = current.done + 1 == i - 1 and ("step " .. (i - 1))
      or ("steps %d-%d"):format(current.done + 1, i - 1)
    print(style("2", ("(running %s quietly to set up their state)"):format(skipped)))
    for j = current.done + 1, i - 1 do
      if not quietly(function() return run_step(j) end) then
        warn(("step %d failed; stopping at it"):format(j))
        return false
      end
    end
  end
  show_step(i)
  local ok = run_step(i)
  if i == count and not current.auto then
    print(style("2", "(last step: Enter ends the lesson; :back goes back)"))
  end
  return ok
end

function M.next()
  if not need_lesson() then return false end
  if current.index >= #current.lesson.steps then
    print(("end of lesson %q. :lessons lists more; everything you made is still here."):format(
      current.lesson.title))
    current = nil
    return true
  end
  return M.step(current.index + 1)
end

function M.back()
  if not need_lesson() then return false end
  if current.index <= 1 then
    print("this is the first step")
    return false
  end
  return M.step(current.index - 1)
end

-- Load lesson name and go to step (default 1). False when the lesson cannot be loaded, and
-- with auto also when the step fails.
function M.start(name, step, auto)
  local path, err = find(name)
  local lesson
  if path then lesson, err = load_lesson(path) end
  if not lesson then
    warn("chalk: " .. err)
    return false
  end
  current = {
    name = path:match("([^/]+)%.lua$") or name,
    lesson = lesson,
    index = 0,
    done = 0,
    auto = auto,
  }
  local module = lesson.module and ("module " .. tostring(lesson.module) .. ", ") or ""
  print(style("1", ("%s"):format(lesson.title)) .. style("2", (" (%s%d steps)"):format(module, #lesson.steps)))
  if not auto then
    print(style("2", "Enter or :next goes on, :back goes back, :step N jumps; any Lua you type runs as usual."))
  end
  local ok = M.step(step or 1)
  return ok or not auto
end

-- Run the lesson from step (default 1) to its end without pausing; false at the first failure.
function M.auto(name, step)
  if not M.start(name, step, true) then return false end
  while current.index < #current.lesson.steps do
    if not M.step(current.index + 1) then return false end
  end
  current = nil
  return true
end

function M.prompt()
  if current then return ("lesson %d/%d> "):format(current.index, #current.lesson.steps) end
  return nil
end

return M
