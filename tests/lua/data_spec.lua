-- data_spec.lua: chalk.data: Fashion-MNIST from Debian's IDX files (checked against Python's own
-- reading of them), truncated / corrupt / missing files, the loader, words and synthetic sets.
package.path = "tests/lua/?.lua;" .. package.path
local chalk = require "chalk"
local data = chalk.data
local ref = require "torch_ref"

local SRC = data.fashion_mnist_dir

-- Shell helpers run without the sanitizer runtime that `make test-asan` preloads for chalk.so
-- (dd's aligned allocations trip it).
local function sh(cmd) assert(os.execute("unset LD_PRELOAD; " .. cmd), "command failed: " .. cmd) end

local function error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

describe("data.fashion_mnist", function()
  it("reads the test split: shapes, dtypes, ranges and labels 1..10", function()
    local X, Y = data.fashion_mnist("test")
    assert.are.same({ 10000, 784 }, X.shape)
    assert.are.same({ 10000 }, Y.shape)
    assert.are.equal("f32", X.dtype)
    assert.are.equal("i64", Y.dtype)
    assert.are.equal(0, X:min():item())
    assert.are.equal(1, X:max():item())
    assert.are.equal(1, Y:min():item())
    assert.are.equal(10, Y:max():item())
    assert.are.equal(10, #data.fashion_mnist_classes)
    assert.are.equal("Ankle boot", data.fashion_mnist_classes[Y[1]:item()]) -- the first test image
  end)

  it("agrees with Python's reading of the same files", function()
    local X, Y = data.fashion_mnist("train")
    assert.are.same({ 60000, 784 }, X.shape)
    local out = ref.run({}, ([[
import gzip
with gzip.open("%s/train-images-idx3-ubyte.gz") as f:
    img = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
with gzip.open("%s/train-labels-idx1-ubyte.gz") as f:
    lbl = np.frombuffer(f.read(), np.uint8, offset=8)
O["pixel_sum"] = np.array([img.astype(np.float64).sum() / 255])
O["row_sums"] = img[:20].astype(np.float64).sum(1) / 255
O["labels"] = lbl[:1000].astype(np.int64) + 1
O["hist"] = np.bincount(lbl, minlength=10).astype(np.int64)]]):format(SRC, SRC))
    assert.is_true(math.abs(X:to("f64"):sum():item() - out.pixel_sum[1]:item()) < 1e-6 * out.pixel_sum[1]:item())
    assert.is_true(ref.maxdiff(X:narrow(1, 1, 20):to("f64"):sum(2), out.row_sums) < 1e-4)
    assert.are.equal(0, (Y:narrow(1, 1, 1000) - out.labels):abs():max():item())
    for c = 1, 10 do
      assert.are.equal(out.hist[c]:item(), Y:eq(c):to("i64"):sum():item())
    end
  end)

  it("gives images for convolutions and a limit", function()
    local X, Y = data.fashion_mnist("test", { image = true, limit = 100 })
    assert.are.same({ 100, 1, 28, 28 }, X.shape)
    assert.are.same({ 100 }, Y.shape)
  end)

  it("rejects an unknown split", function()
    assert.truthy(error_of(data.fashion_mnist, "validation"):find("train", 1, true))
  end)

  describe("with damaged files", function()
    local dir
    before_each(function()
      dir = ref.tmpdir()
      sh(("cp %s/t10k-images-idx3-ubyte.gz %s/t10k-labels-idx1-ubyte.gz '%s'"):format(SRC, SRC, dir))
    end)
    after_each(function() ref.rmdir(dir) end)
    -- Loading the test split from dir fails with an error that mentions each of the strings.
    local function expect_load_error(...)
      local err = error_of(data.fashion_mnist, "test", { dir = dir })
      for _, s in ipairs({ ... }) do assert.truthy(err:find(s, 1, true), err) end
    end

    it("names the package when the files are missing", function()
      os.remove(dir .. "/t10k-labels-idx1-ubyte.gz")
      expect_load_error("dataset-fashion-mnist", dir .. "/t10k-labels-idx1-ubyte.gz")
    end)

    it("says a truncated gzip file is truncated, naming it", function()
      local f = dir .. "/t10k-images-idx3-ubyte.gz"
      sh(("head -c 200000 %s/t10k-images-idx3-ubyte.gz > '%s'"):format(SRC, f))
      expect_load_error(f, "truncated")
    end)

    it("says a corrupt gzip file is corrupt, naming it", function()
      local f = dir .. "/t10k-images-idx3-ubyte.gz"
      -- overwrite 64 bytes in the middle of the compressed stream
      sh(("printf '%%064d' 0 | dd of='%s' bs=1 seek=300000 conv=notrunc 2>/dev/null"):format(f))
      expect_load_error(f, "corrupt")
    end)

    it("checks the magic number", function()
      local f = dir .. "/t10k-labels-idx1-ubyte.gz"
      sh(("printf '\\001\\002\\010\\001\\000\\000\\000\\002\\000\\001' | gzip > '%s'"):format(f))
      expect_load_error("not an IDX file", f)
    end)

    it("checks the declared sizes against the data", function()
      local f = dir .. "/t10k-labels-idx1-ubyte.gz"
      -- declares 10000 labels, holds 3; then one with extra bytes
      sh(("printf '\\000\\000\\010\\001\\000\\000\\047\\020\\001\\002\\003' | gzip > '%s'"):format(f))
      expect_load_error("truncated", "10000")
      sh(("printf '\\000\\000\\010\\001\\000\\000\\000\\002\\001\\002\\003' | gzip > '%s'"):format(f))
      local err = error_of(data._read_idx, f, "i64", 1, 1)
      assert.truthy(err:find("bytes after the data", 1, true), err)
      -- a label file whose count does not match the images
      sh(("printf '\\000\\000\\010\\001\\000\\000\\000\\002\\001\\002' | gzip > '%s'"):format(f))
      expect_load_error("labels for 10000 images")
    end)
  end)

  it("reads IDX element types other than bytes", function()
    local dir = ref.tmpdir()
    -- a 2x3 big-endian float32 IDX file (type 0x0d) written by Python, plain (not gzipped)
    local out = ref.run({}, ([[
a = (np.arange(6).reshape(2, 3) / 4).astype(">f4")
with open("%s/f.idx", "wb") as f:
    f.write(bytes([0, 0, 0x0d, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + a.tobytes())
O["a"] = a.astype(np.float64)]]):format(dir))
    local t = data._read_idx(dir .. "/f.idx", "f64")
    assert.are.same({ 2, 3 }, t.shape)
    assert.are.equal(0, ref.maxdiff(t, out.a))
    ref.rmdir(dir)
  end)
end)

describe("data.loader", function()
  local X = chalk.arange(1, 11):view(10, 1)
  local Y = chalk.arange(1, 11):to("i64")

  it("yields batches in order without shuffling, the last one smaller", function()
    local sizes, firsts = {}, {}
    for xb, yb in data.loader(X, Y, { batch = 4 }) do
      sizes[#sizes + 1] = xb.shape[1]
      firsts[#firsts + 1] = yb[1]:item()
      assert.are.equal(xb.shape[1], yb.shape[1])
    end
    assert.are.same({ 4, 4, 2 }, sizes)
    assert.are.same({ 1, 5, 9 }, firsts)
    assert.are.equal(3, #data.loader(X, Y, { batch = 4 }))
    assert.are.equal(2, #data.loader(X, Y, { batch = 4, drop_last = true }))
  end)

  it("shuffles into a permutation, the same one for the same seed, rows kept with labels", function()
    local function order(seed)
      chalk.manual_seed(seed)
      local seen = {}
      for xb, yb in data.loader(X, Y, { batch = 3, shuffle = true }) do
        assert.are.same(xb:view(-1):totable(), yb:to("f32"):totable())
        for _, v in ipairs(yb:totable()) do seen[#seen + 1] = v end
      end
      return seen
    end
    local a, b, c = order(1), order(1), order(2)
    assert.are.same(a, b)
    assert.are_not.same(a, c)
    local sorted = { table.unpack(a) }
    table.sort(sorted)
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, sorted)
    assert.are_not.same(sorted, a)
  end)

  it("starts over for every loop, even after a break, and works without Y", function()
    local loader = data.loader(X, { batch = 5 })
    for xb in loader do
      assert.are.equal(1, xb[1][1]:item())
      break
    end
    local n = 0
    for xb, yb in loader do
      n = n + 1
      assert.is_nil(yb)
      assert.are.equal(5, xb.shape[1])
    end
    assert.are.equal(2, n)
  end)

  it("checks its arguments", function()
    assert.has_error(function() data.loader(X, chalk.zeros(3), { batch = 2 }) end)
    assert.has_error(function() data.loader(X, Y, { batch = 0 }) end)
  end)
end)

describe("data.words", function()
  it("keeps only words of the letters a-z, sorted and unique", function()
    local words = data.words()
    assert.is_true(#words > 40000, "only " .. #words .. " words")
    for i, w in ipairs(words) do
      assert.truthy(w:match("^[a-z]+$"), w)
      if i > 1 then assert.is_true(words[i - 1] < w) end
    end
  end)

  it("names the package when the word list is missing", function()
    local err = error_of(data.words, "/nonexistent/words")
    assert.truthy(err:find("wamerican", 1, true), err)
  end)
end)

describe("synthetic data", function()
  it("spirals: n points per class, labels 1..classes, radius within 1", function()
    chalk.manual_seed(3)
    local X, Y = data.spirals(50, 4)
    assert.are.same({ 200, 2 }, X.shape)
    assert.are.same({ 200 }, Y.shape)
    assert.are.equal("i64", Y.dtype)
    assert.are.equal(1, Y:min():item())
    assert.are.equal(4, Y:max():item())
    assert.is_true((X * X):sum(2):sqrt():max():item() <= 1 + 1e-6)
    chalk.manual_seed(3)
    local X2 = data.spirals(50, 4)
    assert.are.equal(0, (X - X2):abs():max():item())
  end)

  it("moons and sine", function()
    local X, Y = data.moons(101)
    assert.are.same({ 101, 2 }, X.shape)
    assert.are.equal(50, Y:eq(1):to("i64"):sum():item())
    local Xs, Ys = data.sine(64, 0)
    assert.are.same({ 64, 1 }, Xs.shape)
    assert.is_true((Ys - Xs:sin()):abs():max():item() < 1e-6)
    assert.is_true(Xs:abs():max():item() <= math.pi)
  end)
end)

describe("progress bar", function()
  local progress = chalk.progress

  local function sink()
    local s = { text = "" }
    function s:write(...)
      for _, v in ipairs { ... } do self.text = self.text .. tostring(v) end
      return self
    end
    function s:flush() return self end
    return s
  end

  it("shows epoch, step, loss and items/s when enabled", function()
    local out = sink()
    local bar = progress.new { total = 4, epoch = 2, epochs = 3, enabled = true, out = out }
    for i = 1, 4 do bar:update { loss = 1 / i, items = 32 } end
    bar:finish()
    assert.truthy(out.text:find("epoch 2/3", 1, true), out.text)
    assert.truthy(out.text:find("4/4", 1, true), out.text)
    assert.truthy(out.text:find("loss 0.2500", 1, true), out.text)
    assert.truthy(out.text:find("items/s", 1, true), out.text)
    assert.truthy(out.text:find("\n$"), "finish ends the line")
  end)

  it("writes nothing when disabled, and is disabled when stdout is not a terminal", function()
    local out = sink()
    local bar = progress.new { total = 2, enabled = false, out = out }
    bar:update { loss = 1 }
    bar:finish()
    assert.are.equal("", out.text)
    local saved = os.getenv("CHALK_PROGRESS")
    if saved == nil then -- busted's stdout here may or may not be a terminal; a pipe never is
      local p = io.popen([[lua5.4 -e 'package.cpath = "]] .. package.cpath ..
        [[" local c = require "chalk" print(c.progress.enabled())']])
      local answer = p:read("a")
      p:close()
      assert.are.equal("false\n", answer)
    end
  end)
end)
