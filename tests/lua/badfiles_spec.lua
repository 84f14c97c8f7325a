-- badfiles_spec.lua: crafted .chalk, .npy and IDX files whose shapes overflow or disagree with
-- their bytes (checksums recomputed) are refused with a clean error, never loaded (issue 14).
local chalk = require "chalk"
local data = require "chalk.data"
local ref = require "torch_ref"
local S = require "support"

local function write(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end
local read = S.read
local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, but the call succeeded")
  return tostring(err)
end
local crc32 = S.crc32

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
  -- a valid save of ones(4) split into its parts: payload and a writer of files from parts
  local function chalk_parts()
    chalk.save(chalk.ones(4), dir .. "/ok.chalk")
    local s = read(dir .. "/ok.chalk")
    return s, s:sub(9, #s - 20)
  end
  local function chalk_from_payload(payload)
    local p = dir .. "/bad.chalk"
    write(p, "CHALKSV1" .. payload .. "CHALKEND" .. string.pack("<I8I4", #payload, crc32(payload)))
    return p
  end

  it(".chalk: bad magic, truncation, a bad checksum, a bad dtype and a cut record are refused", function()
    local s, payload = chalk_parts()
    local p = dir .. "/x.chalk"
    write(p, "CHALKSV9" .. s:sub(9))
    assert.truthy(error_of(chalk.load, p):find("not a chalk save file", 1, true))
    write(p, "")
    assert.truthy(error_of(chalk.load, p):find("load", 1, true))
    for _, cut in ipairs({ 4, 8, #s // 2, #s - 1 }) do
      write(p, s:sub(1, cut))
      local err = error_of(chalk.load, p)
      assert.truthy(err:find("truncated", 1, true) or err:find("not a chalk save file", 1, true), err)
    end
    local flipped = s:sub(1, #s - 30) .. string.char(s:byte(#s - 29) ~ 1) .. s:sub(#s - 28)
    write(p, flipped)
    assert.truthy(error_of(chalk.load, p):find("checksum mismatch", 1, true))
    local bad = payload:gsub("T\3f32", "T\3q32", 1)
    local err = error_of(chalk.load, chalk_from_payload(bad))
    assert.truthy(err:find("unknown dtype 'q32'", 1, true), err)
    err = error_of(chalk.load, chalk_from_payload(payload:sub(1, #payload - 5))) -- cut, checksum recomputed
    assert.truthy(err:find("corrupt", 1, true), err)
    err = error_of(chalk.load, chalk_from_payload(payload .. "\255"))
    assert.truthy(err:find("corrupt", 1, true), err)
  end)

  it(".npy: bad magic, a bad version, a cut header, truncated data and unknown dtypes are refused", function()
    local p = dir .. "/x.npy"
    write(p, "NOTNUMPY\1\0")
    assert.truthy(error_of(chalk.load_npy, p):find("not a .npy file", 1, true))
    local good = read(npy("(4,)", "<f4", 16))
    write(p, good:sub(1, 6) .. "\9" .. good:sub(8))
    assert.truthy(error_of(chalk.load_npy, p):find("version", 1, true))
    write(p, good:sub(1, 30))
    assert.truthy(error_of(chalk.load_npy, p):find("truncated", 1, true))
    local err = error_of(chalk.load_npy, npy("(4,)", "<f4", 15))
    assert.truthy(err:find("truncated", 1, true), err)
    for _, d in ipairs({ "<c8", "|O", "<q9", "" }) do
      err = error_of(chalk.load_npy, npy("(4,)", d, 64))
      assert.truthy(err:find("load_npy", 1, true) and (err:find("dtype", 1, true) or err:find("header", 1, true)), err)
    end
    err = error_of(chalk.load_npy, npy("(4, -2)", "<f4", 16))
    assert.truthy(err:find("load_npy", 1, true), err)
  end)

  it("IDX: bad magic, a bad type code, bad ranks, truncation and trailing bytes are refused", function()
    local p = dir .. "/x.idx"
    local function idx_err(s) write(p, s); return error_of(data._read_idx, p, "f32") end
    write(p, "\0\0\8\2" .. string.pack(">I4I4", 2, 2) .. "\1\2\3\4")
    assert.same({ { 1, 2 }, { 3, 4 } }, data._read_idx(p, "f32"):totable())
    assert.truthy(idx_err("\1\2\8\2" .. string.pack(">I4I4", 2, 2) .. "\1\2\3\4"):find("not an IDX file", 1, true))
    assert.truthy(idx_err("\0\0\7\2" .. string.pack(">I4I4", 2, 2) .. "\1\2\3\4"):find("not an IDX file", 1, true))
    assert.truthy(idx_err("\0\0\8\0"):find("dimensions", 1, true))
    assert.truthy(idx_err("\0\0\8\200" .. string.rep("\0", 16)):find("dimensions", 1, true))
    assert.truthy(idx_err("\0\0\8\2" .. string.pack(">I4I4", 2, 2) .. "\1\2\3"):find("truncated", 1, true))
    assert.truthy(idx_err("\0\0\8\2" .. string.pack(">I4", 2)):find("truncated", 1, true))
    assert.truthy(idx_err("\0\0"):find("truncated", 1, true))
    assert.truthy(idx_err("\0\0\8\2" .. string.pack(">I4I4", 2, 2) .. "\1\2\3\4\5"):find("after the data", 1, true))
    assert.truthy(idx_err("\0\0\8\1" .. string.pack(">I4", 0xFFFFFFFF) .. "\1"):find("read_idx", 1, true))
    assert.truthy(idx_err("\31\139\8\0garbage, not a gzip stream"):find("read_idx", 1, true))
  end)

  it("IDX: a plausible but huge header is refused by the memory limit before any allocation (fuzzer)", function()
    local p = dir .. "/x.idx"
    write(p, "\0\0\8\3" .. string.pack(">I4I4I4", 1 << 12, 1 << 12, 1 << 10) .. "\1\2")
    local old = chalk.set_memory_limit(1 << 30)
    local ok, err = pcall(data._read_idx, p, "f32")
    chalk.set_memory_limit(old)
    assert.is_false(ok)
    assert.truthy(err:find("read_idx: out of memory: shape [4096,4096,1024] of f32 needs 64 GiB", 1, true), err)
  end)
end)
