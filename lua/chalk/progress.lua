-- progress.lua: a one-line progress bar for training loops (epoch, step, loss, items/s, ETA).
--
-- Invariants: it draws only when stdout is a terminal (or CHALK_PROGRESS=1 forces it; =0 silences
-- it), so logs, pipes and `--auto` runs stay clean; it redraws at most ten times a second, so a
-- fast loop pays almost nothing; finish() always leaves the cursor on a fresh line.
--
--   local bar = progress.new{ total = #loader, epoch = 1, epochs = 5 }
--   for xb, yb in loader do ...; bar:update{ loss = loss:item(), items = xb.shape[1] } end
--   bar:finish()          -- or bar:finish{clear = true}: erase the bar
local chalk = require "chalk"

local M = {}

local Bar = {}
Bar.__index = Bar

-- A monotonic wall clock in seconds: the binding's if it has one, else os.time (1 s steps).
local function now()
  if chalk and chalk.clock then return chalk.clock() end
  return os.time()
end

local tty_cache
-- Whether stdout is a terminal. CHALK_PROGRESS overrides; the answer is computed once.
function M.enabled()
  local env = os.getenv("CHALK_PROGRESS")
  if env == "1" then return true end
  if env == "0" then return false end
  if tty_cache == nil then
    if chalk and chalk._isatty then
      tty_cache = chalk._isatty(1)
    else
      tty_cache = os.execute("test -t 1") == true
    end
  end
  return tty_cache
end

local function human(x)
  if x >= 1e6 then return ("%.1fM"):format(x / 1e6) end
  if x >= 1e3 then return ("%.1fk"):format(x / 1e3) end
  return ("%.0f"):format(x)
end

local function duration(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return ("%dh%02dm"):format(s // 3600, s % 3600 // 60) end
  if s >= 60 then return ("%dm%02ds"):format(s // 60, s % 60) end
  return ("%ds"):format(s)
end

-- opts: total (steps, optional), epoch, epochs, width (of the bar, default 24), label,
-- enabled (default M.enabled()), out (a file, default io.stdout).
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({
    total = opts.total,
    epoch = opts.epoch,
    epochs = opts.epochs,
    label = opts.label,
    width = opts.width or 24,
    out = opts.out or io.stdout,
    step = 0,
    items = 0,
    loss = nil,
    start = now(),
    last_draw = -math.huge,
    drawn = false,
  }, Bar)
  if opts.enabled == nil then self.enabled = M.enabled() else self.enabled = opts.enabled end
  return self
end

-- The bar as a string (without the leading carriage return).
function Bar:line()
  local parts = {}
  if self.label then parts[#parts + 1] = self.label end
  if self.epoch then
    parts[#parts + 1] = self.epochs and ("epoch %d/%d"):format(self.epoch, self.epochs)
      or ("epoch %d"):format(self.epoch)
  end
  local elapsed = math.max(now() - self.start, 1e-9)
  if self.total and self.total > 0 then
    local frac = math.min(self.step / self.total, 1)
    local full = math.floor(frac * self.width + 0.5)
    local bar = ("="):rep(full) .. (full < self.width and ">" or "") .. (" "):rep(math.max(self.width - full - 1, 0))
    parts[#parts + 1] = ("[%s] %d/%d"):format(bar:sub(1, self.width), self.step, self.total)
  else
    parts[#parts + 1] = ("step %d"):format(self.step)
  end
  if self.loss then parts[#parts + 1] = ("loss %.4f"):format(self.loss) end
  if self.items > 0 then parts[#parts + 1] = human(self.items / elapsed) .. " items/s" end
  if self.total and self.step > 0 and self.step < self.total then
    parts[#parts + 1] = "eta " .. duration(elapsed / self.step * (self.total - self.step))
  else
    parts[#parts + 1] = duration(elapsed)
  end
  return table.concat(parts, "  ")
end

-- Advance by one step (or opts.steps), recording loss and items; redraws at most every 0.1 s.
function Bar:update(opts)
  opts = opts or {}
  self.step = self.step + (opts.steps or 1)
  if opts.items then self.items = self.items + opts.items end
  if opts.loss then
    self.loss = type(opts.loss) == "number" and opts.loss or opts.loss:item()
  end
  if not self.enabled then return self end
  local t = now()
  if t - self.last_draw >= 0.1 or (self.total and self.step >= self.total) then
    self.last_draw = t
    self.out:write("\r", self:line(), "\27[K")
    self.out:flush()
    self.drawn = true
  end
  return self
end

-- Draw the final state and end the line; with {clear = true} erase the bar instead (a loop that
-- prints its own line per epoch keeps a projected screen short). Returns the elapsed seconds
-- and items per second.
function Bar:finish(opts)
  local elapsed = math.max(now() - self.start, 1e-9)
  if self.enabled and opts and opts.clear then
    self.out:write("\r\27[K")
    self.out:flush()
  elseif self.enabled then
    self.out:write("\r", self:line(), "\27[K\n")
    self.out:flush()
  end
  return elapsed, self.items / elapsed
end

setmetatable(M, { __call = function(_, opts) return M.new(opts) end })

return M
