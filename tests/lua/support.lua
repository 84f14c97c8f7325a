-- support.lua: helpers shared by the busted specs of the Lua binding (not a spec itself).
local M = {}

-- Run fn, expect it to raise, and check that the message contains every given plain string.
-- Returns the message.
function M.error_matching(fn, ...)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error, but the call succeeded")
  err = tostring(err)
  for _, needle in ipairs({ ... }) do
    assert(err:find(needle, 1, true), ("error message %q does not contain %q"):format(err, needle))
  end
  return err
end

-- t after a `local x <close> = t` block has ended: closed, and still referenced.
function M.closed_tensor(t)
  local kept
  do
    local x <close> = t
    kept = x
  end
  return kept
end

-- Whether two numbers, or two nested tables of numbers, agree within tol.
function M.close(a, b, tol)
  tol = tol or 1e-5
  if type(a) == "number" and type(b) == "number" then
    return math.abs(a - b) <= tol * math.max(1, math.abs(b))
  end
  if type(a) ~= "table" or type(b) ~= "table" or #a ~= #b then return false end
  for i = 1, #a do
    if not M.close(a[i], b[i], tol) then return false end
  end
  return true
end

-- assert.is_true(close(...)) with a message showing both sides.
function M.assert_close(actual, expected, tol)
  local function show(v)
    if type(v) ~= "table" then return tostring(v) end
    local parts = {}
    for i = 1, #v do parts[i] = show(v[i]) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  assert(M.close(actual, expected, tol), ("expected %s, got %s"):format(show(expected), show(actual)))
end

-- The whole file at path p as a string (binary).
function M.read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- CRC-32 (IEEE, as zlib's crc32) of the string s: what a .chalk file's trailer checks.
function M.crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do
    c = c ~ s:byte(i)
    for _ = 1, 8 do c = (c >> 1) ~ (0xEDB88320 & -(c & 1)) end
  end
  return (~c) & 0xFFFFFFFF
end

-- Resident set size of this process in bytes (Linux /proc/self/statm, second field in pages).
function M.rss()
  local f = assert(io.open("/proc/self/statm"))
  local line = f:read("l")
  f:close()
  local resident = tonumber(line:match("^%d+%s+(%d+)"))
  return resident * 4096
end

return M
