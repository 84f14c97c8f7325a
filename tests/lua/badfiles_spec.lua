-- badfiles_spec.lua: crafted .chalk, .npy and IDX files whose shapes overflow or disagree with
-- their bytes (checksums recomputed) are refused with a clean error, never loaded (issue 14).
local chalk = require "chalk"
local data = require "chalk.data"
local ref = require "torch_ref"

local function write(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end
local function read(p) local f = assert(io.open(p, "rb")); local s = f:read("a"); f:close(); return s end
local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, but the call succeeded")
  return tostring(err)
end
local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do
    c = c ~ s:byte(i)
    for _ = 1, 8 do c = (c >> 1) ~ (0xEDB88320 & -(c & 1)) end
  end
  return (~c) & 0xFFFFFFFF
end

describe("crafted files", function()
  local dir
  before_each(function() dir = ref.tmpdir() end)

  -- a save of ones(4) whose i64 dim is replaced by `dim`, with the checksum recomputed
  local function chalk_with_dim(dim)
    chalk.save(chalk.ones(4), dir .. "/ok.chalk")
    local s = read(dir .. "/ok.chalk")
    local payload = s:sub(9, #s - 20)
    local rec = "T\3f32\1" .. string.pack("<i8", 4)
    local i = assert(payload:find(rec, 1, true), "tensor record not found")
    payload = payload:sub(1, i - 1) .. "T\3f32\1" .. string.pack("<i8", dim) .. payload:sub(i + #rec)
    local p = dir .. "/bad.chalk"
    write(p, "CHALKSV1" .. payload .. "CHALKEND" .. string.pack("<I8I4", #payload, crc32(payload)))
    return p
  end

  it(".chalk: the crafting is faithful (dim 4 loads)", function()
    assert.are.same({ 1, 1, 1, 1 }, chalk.load(chalk_with_dim(4)):totable())
  end)

  it(".chalk: huge, flipped-bit, and negative dims with a valid checksum are refused", function()
    local err = error_of(chalk.load, chalk_with_dim(1 << 62))
    assert.truthy(err:find("size too large", 1, true) and err:find("4611686018427387904", 1, true), err)
    err = error_of(chalk.load, chalk_with_dim(4 | (1 << 40))) -- one bit flipped
    assert.truthy(err:find("does not match its shape", 1, true), err)
    err = error_of(chalk.load, chalk_with_dim(-4))
    assert.truthy(err:find("negative size", 1, true), err)
  end)

  local function npy(shape, descr, nbytes)
    local h = ("{'descr': '%s', 'fortran_order': False, 'shape': %s, }"):format(descr, shape)
    local total = 10 + #h + 1
    h = h .. string.rep(" ", (total + 63) // 64 * 64 - total) .. "\n"
    local p = dir .. "/bad.npy"
    write(p, "\147NUMPY\1\0" .. string.pack("<I2", #h) .. h .. string.rep("\0", nbytes))
    return p
  end

  it(".npy: element or byte counts past 2^63 are refused; a flipped dim is truncated", function()
    assert.are.same({ 0, 0, 0, 0 }, chalk.load_npy(npy("(4,)", "<f4", 16)):totable())
    local err = error_of(chalk.load_npy, npy("(4294967296, 4294967296)", "<f4", 16))
    assert.truthy(err:find("size too large", 1, true), err)
    err = error_of(chalk.load_npy, npy("(2305843009213693952, 2)", "<f8", 16))
    assert.truthy(err:find("size too large", 1, true), err)
    err = error_of(chalk.load_npy, npy("(1099511627780,)", "<f4", 16))
    assert.truthy(err:find("truncated", 1, true), err)
  end)

  it("IDX: dims whose product wraps to 0 are refused", function()
    local p = dir .. "/bad.idx"
    write(p, "\0\0\8\3" .. string.pack(">I4I4I4", 1 << 18, 1 << 18, 1 << 28))
    local err = error_of(data._read_idx, p, "f64")
    assert.truthy(err:find("implausible size", 1, true), err)
  end)
end)
