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
    for _, field in ipairs { "title", "text", "code", "setup" } do
      if step[field] ~= nil and type(step[field]) ~= "string" then
        return nil, ("%s: step %d: %s must be a string"):format(path, i, field)
      end
    end
    if step.check ~= nil and type(step.check) ~= "function" then
      return nil, ("%s: step %d: check must be a function"):format(path, i)
    end
  end
  if lesson.setup ~= nil and type(lesson.setup) ~= "string" then
    return nil, path .. ": setup must be a string of Lua"
  end
  -- gpu = true: a step only with a CUDA device; gpu = false: only without one (it shows
  -- what was recorded on a GPU instead). The steps left are numbered 1..n.
  local chalk = rawget(_G, "chalk")
  local has_gpu = type(chalk) == "table" and chalk.cuda and chalk.cuda.is_available() or false
  local kept = {}
  for _, step in ipairs(lesson.steps) do
    if step.gpu == nil or step.gpu == has_gpu then kept[#kept + 1] = step end
  end
  lesson.steps = kept
  lesson.title = lesson.title or path
  return lesson
end

-- Remove leading and trailing blank lines and the indentation all lines share.
local dedent = require("chalk.text").dedent

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
  -- the live page and :save get the step as one event (repl/serve.c), not as the text below
  host.announce(current.name, i, #steps, step.title, step.text and dedent(step.text), step.code and dedent(step.code))
  host.record_output(false)
  print()
  print(style("1", ("[%d/%d] %s"):format(i, #steps, step.title or "")))
  if step.text then print(dedent(step.text)) end
  if step.code then
    print()
    for line in (dedent(step.code) .. "\n"):gmatch("(.-)\n") do print(style("2", "    " .. line)) end
    print()
  end
  host.record_output(true)
end

-- Run step i's code and check; true when both pass. current.index becomes i: the state now
-- is that after steps 1..i.
local function run_step(i)
  local step = current.lesson.steps[i]
  local ok = true
  if step.setup then -- plumbing the step needs but does not show (its output is dropped)
    ok = host.capture(function() return host.run(dedent(step.setup), ("=%s[%d] setup"):format(current.name, i)) end)
  end
  if ok and step.code then
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
  return ok
end

-- ---- the lesson's state --------------------------------------------------------------------
-- A step's numbers must not depend on how the student got there, so the runner can put the
-- state back as it was when the lesson started: the globals and the fields of the tables
-- chalk, nn, optim, data and viz (restored shallowly), chalk's autograd switches, and both
-- random streams reseeded (chalk's Philox stream with its seed and offset 0, Lua's
-- math.random with lesson.seed or 0).
local WATCHED = { "chalk", "nn", "optim", "data", "viz" }

local function chalk_table()
  local chalk = rawget(_G, "chalk")
  return type(chalk) == "table" and chalk or nil
end

local function snapshot()
  local s = { globals = {}, tables = {} }
  for k, v in pairs(_G) do s.globals[k] = v end
  for _, name in ipairs(WATCHED) do
    local t = rawget(_G, name)
    if type(t) == "table" and not s.tables[t] then
      local copy = {}
      for k, v in pairs(t) do copy[k] = v end
      s.tables[t] = copy
    end
  end
  local chalk = chalk_table()
  if chalk then
    if chalk.initial_seed then s.seed = chalk.initial_seed() end
    if chalk.is_grad_enabled then s.grad_enabled = chalk.is_grad_enabled() end
    if chalk.set_retain_all_grads then
      s.retain_all_grads = chalk.set_retain_all_grads(false)
      chalk.set_retain_all_grads(s.retain_all_grads)
    end
  end
  return s
end

local function reseed()
  local chalk = chalk_table()
  if chalk and chalk.manual_seed and current.fresh.seed then chalk.manual_seed(current.fresh.seed) end
  math.randomseed(math.tointeger(current.lesson.seed) or 0)
end

-- Back to the state of the lesson's start: nothing a step made survives.
local function reset()
  local s = current.fresh
  for k in pairs(_G) do
    if s.globals[k] == nil then _G[k] = nil end
  end
  for k, v in pairs(s.globals) do rawset(_G, k, v) end
  for t, copy in pairs(s.tables) do
    for k in pairs(t) do
      if copy[k] == nil then t[k] = nil end
    end
    for k, v in pairs(copy) do rawset(t, k, v) end
  end
  local chalk = chalk_table()
  if chalk then
    if s.grad_enabled ~= nil then chalk.set_grad_enabled(s.grad_enabled) end
    if s.retain_all_grads ~= nil then chalk.set_retain_all_grads(s.retain_all_grads) end
  end
  collectgarbage()
  collectgarbage()
  reseed()
  current.index = 0
  return M.setup()
end

-- The lesson's hidden setup (helpers its steps share), run at its start and after each reset.
function M.setup()
  local code = current.lesson.setup
  if not code then return true end
  local ok = host.capture(function() return host.run(dedent(code), ("=%s[setup]"):format(current.name)) end)
  if not ok then warn("chalk: the lesson's setup failed") end
  return ok
end

-- Call f with what it prints captured; pictures are not shown, only named ("picture: PATH",
-- as the REPL names them) so the text can be compared. Returns f's result and the text.
local function captured(f)
  local chalk = chalk_table()
  local saved_picture = chalk and rawget(chalk, "on_picture")
  if saved_picture then
    chalk.on_picture = function(path) io.write("picture: ", tostring(path), "\n") end
  end
  local ok, out = host.capture(f)
  if saved_picture then chalk.on_picture = saved_picture end
  return ok, out
end

-- Run steps from..to with their output and pictures suppressed; false at the first failure.
local function replay(from, to)
  for j = from, to do
    if not captured(function() return run_step(j) end) then
      warn(("step %d failed while replaying it; stopping at it"):format(j))
      return false
    end
  end
  return true
end

local function need_lesson()
  if current then return true end
  print("no lesson is running (:lessons lists them, :lesson NAME starts one)")
  return false
end

-- Show and run step n in the state after steps 1..n-1. Going forward from the current step
-- runs the steps in between quietly; going back (or to the same step) starts again from the
-- lesson's fresh state and replays steps 1..n-1 quietly, so every number shown is the one
-- the first pass showed.
function M.step(n)
  if not need_lesson() then return false end
  local count = #current.lesson.steps
  local i = math.tointeger(tonumber(n))
  if not i or i < 1 or i > count then
    print(("no step %s: this lesson has steps 1 to %d"):format(tostring(n), count))
    return false
  end
  local from = current.index + 1
  if i <= current.index then
    if not reset() then return false end
    from = 1
  end
  if from < i then
    local skipped = from == i - 1 and ("step " .. from) or ("steps %d-%d"):format(from, i - 1)
    print(style("2", ("(running %s quietly%s)"):format(skipped,
      from == 1 and " from the lesson's start" or " to set up their state")))
    if not replay(from, i - 1) then return false end
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
local function begin(name, auto)
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
    auto = auto,
  }
  current.fresh = snapshot()
  reseed()
  host.announce(current.name, 0, #lesson.steps, lesson.title, nil, lesson.setup and dedent(lesson.setup))
  if not M.setup() then return false end
  local module = lesson.module and ("module " .. tostring(lesson.module) .. ", ") or ""
  print(style("1", ("%s"):format(lesson.title)) .. style("2", (" (%s%d steps)"):format(module, #lesson.steps)))
  if not auto then
    print(style("2", "Enter or :next goes on, :back goes back, :step N jumps; any Lua you type runs as usual."))
  end
  return true
end

function M.start(name, step)
  if not begin(name, false) then return false end
  M.step(step or 1)
  return true
end

-- The lines of a step's output that must come out the same every time: all but those matching
-- one of the step's (or the lesson's) `timing` patterns, which mark measured times and other
-- numbers that vary from run to run.
local function patterns(v)
  if type(v) == "string" then return { v } end
  return type(v) == "table" and v or {}
end

local function stable_lines(i, out)
  local pats = {}
  for _, p in ipairs(patterns(current.lesson.timing)) do pats[#pats + 1] = p end
  for _, p in ipairs(patterns(current.lesson.steps[i].timing)) do pats[#pats + 1] = p end
  local lines = {}
  for line in (out .. "\n"):gmatch("(.-)\n") do
    local keep = not line:find("\27", 1, true) -- terminal images and styles: display only
    for _, p in ipairs(pats) do
      if line:find(p) then
        keep = false
        break
      end
    end
    if keep then lines[#lines + 1] = line end
  end
  return lines
end

-- Replays the lesson from its fresh state and compares every step's output with the first
-- pass's; false (saying where) on the first difference.
local function verify(first)
  if not reset() then return false end
  for i = 1, #current.lesson.steps do
    local ok, out = captured(function() return run_step(i) end)
    if not ok then
      warn(("chalk: step %d failed when replayed from the lesson's start"):format(i))
      return false
    end
    local a, b = stable_lines(i, first[i]), stable_lines(i, out)
    for k = 1, math.max(#a, #b) do
      if a[k] ~= b[k] then
        warn(("chalk: step %d shows different output when replayed from the lesson's start " ..
          "(what :back and :step N show):\n  first pass: %s\n  replayed:   %s\n" ..
          "(mark lines that are timings with the step's timing = {PATTERN, ...})"):format(
          i, a[k] or "(no line)", b[k] or "(no line)"))
        return false
      end
    end
  end
  print(style("2", ("(replayed steps 1-%d from the lesson's start: the same output)"):format(
    #current.lesson.steps)))
  return true
end

-- Run the lesson from step (default 1) to its end without pausing. From step 1, then replay
-- it from its fresh state and check each step prints what it printed the first time (what
-- :back and :step N will show). False at the first failure or difference.
function M.auto(name, step)
  if not begin(name, true) then return false end
  local count = #current.lesson.steps
  local from = math.tointeger(tonumber(step)) or 1
  if from ~= 1 then
    for i = from, count do
      if not M.step(i) then return false end
    end
    current = nil
    return true
  end
  local first = {}
  for i = 1, count do
    show_step(i)
    io.stdout:flush()
    local ok, out = host.capture(function() return run_step(i) end)
    io.write(out)
    io.stdout:flush()
    first[i] = out
    if not ok then return false end
  end
  local ok = verify(first)
  current = nil
  return ok
end

function M.prompt()
  if current then return ("lesson %d/%d> "):format(current.index, #current.lesson.steps) end
  return nil
end

return M
