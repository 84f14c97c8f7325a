-- save_spec.lua: chalk.save / chalk.load (round trips, checksums, atomic replacement, a writer
-- killed mid-save) and chalk.save_npy / chalk.load_npy against NumPy.
package.path = "tests/lua/?.lua;" .. package.path
local chalk = require "chalk"
local nn = chalk.nn
local ref = require "torch_ref"

local function error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function same(a, b)
  return a.dtype == b.dtype and table.concat(a.shape, ",") == table.concat(b.shape, ",")
    and (a:numel() == 0 or (a:to("f64") - b:to("f64")):abs():max():item() == 0)
end

local function listdir(dir)
  local p = io.popen("ls -A '" .. dir .. "'")
  local names = {}
  for l in p:lines() do names[#names + 1] = l end
  p:close()
  return names
end

-- every test of this file gets a fresh temporary directory
local dir
before_each(function() dir = ref.tmpdir() end)
after_each(function() ref.rmdir(dir) end)

describe("chalk.save and chalk.load", function()
  it("round-trips tensors of every dtype, names and requires_grad", function()
    chalk.manual_seed(1)
    for _, dt in ipairs { "f32", "f64", "f16", "bf16", "i32", "i64", "i8", "bool" } do
      local t
      if dt == "bool" then t = chalk.randn(3, 4):gt(0)
      elseif dt:sub(1, 1) == "i" then t = chalk.randint(-100, 100, { 3, 4 }, { dtype = dt })
      else t = chalk.randn(3, 4, { dtype = dt }) end
      chalk.save(t, dir .. "/t.chalk")
      local u = chalk.load(dir .. "/t.chalk")
      assert.is_true(same(t, u), "round trip of " .. dt)
    end
    local p = nn.Parameter(chalk.randn(2, 2), "layer.weight")
    chalk.save(p, dir .. "/p.chalk")
    local q = chalk.load(dir .. "/p.chalk")
    assert.are.equal("layer.weight", q.name)
    assert.is_true(q.requires_grad)
    local s = chalk.tensor(3.5)
    chalk.save(s, dir .. "/s.chalk")
    assert.are.equal(3.5, chalk.load(dir .. "/s.chalk"):item())
    local e = chalk.zeros(0, 3)
    chalk.save(e, dir .. "/e.chalk")
    assert.are.same({ 0, 3 }, chalk.load(dir .. "/e.chalk").shape)
  end)

  it("saves views by their values", function()
    local x = chalk.arange(1, 13):view(3, 4)
    local v = x:transpose(1, 2):narrow(1, 2, 2)
    chalk.save(v, dir .. "/v.chalk")
    local u = chalk.load(dir .. "/v.chalk")
    assert.is_true(same(v:contiguous(), u))
    assert.is_true(u:is_contiguous())
  end)

  it("round-trips nested tables: state dicts, numbers, strings, booleans", function()
    chalk.manual_seed(2)
    local model = nn.Sequential { nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2) }
    local value = {
      model = model:state_dict(),
      epoch = 7, lr = 0.001, tag = "run-1\0binary", done = false,
      history = { 1.5, 1.25, 1.0 },
      [3] = { deep = { deeper = { chalk.ones(2) } } },
    }
    chalk.save(value, dir .. "/ckpt.chalk")
    local got = chalk.load(dir .. "/ckpt.chalk")
    assert.are.equal(7, got.epoch)
    assert.are.equal("integer", math.type(got.epoch))
    assert.are.equal(0.001, got.lr)
    assert.are.equal("run-1\0binary", got.tag)
    assert.are.equal(false, got.done)
    assert.are.same({ 1.5, 1.25, 1.0 }, got.history)
    assert.is_true(same(chalk.ones(2), got[3].deep.deeper[1]))
    local other = nn.Sequential { nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2) }
    other:load_state_dict(got.model)
    local x = chalk.randn(5, 4)
    assert.are.equal(0, (model(x) - other(x)):abs():max():item())
  end)

  it("refuses values it cannot write, before touching the file", function()
    chalk.save({ a = chalk.ones(1) }, dir .. "/keep.chalk")
    local before = read(dir .. "/keep.chalk")
    local err = error_of(chalk.save, { a = { b = print } }, dir .. "/keep.chalk")
    assert.truthy(err:find("a.b", 1, true) and err:find("function", 1, true), err)
    local cyc = {}
    cyc.self = cyc
    err = error_of(chalk.save, cyc, dir .. "/keep.chalk")
    assert.truthy(err:find("contains itself", 1, true), err)
    err = error_of(chalk.save, { [true] = 1 }, dir .. "/keep.chalk")
    assert.truthy(err:find("key", 1, true), err)
    assert.are.equal(before, read(dir .. "/keep.chalk"))
    assert.are.same({ "keep.chalk" }, listdir(dir))
  end)

  it("detects a flipped byte with its checksum, and truncation", function()
    chalk.save({ w = chalk.randn(64, 64) }, dir .. "/c.chalk")
    local s = read(dir .. "/c.chalk")
    local i = #s // 2
    write(dir .. "/bad.chalk", s:sub(1, i - 1) .. string.char((s:byte(i) + 1) % 256) .. s:sub(i + 1))
    local err = error_of(chalk.load, dir .. "/bad.chalk")
    assert.truthy(err:find("checksum", 1, true) and err:find("bad.chalk", 1, true), err)
    write(dir .. "/short.chalk", s:sub(1, #s - 100))
    err = error_of(chalk.load, dir .. "/short.chalk")
    assert.truthy(err:find("truncated", 1, true), err)
    write(dir .. "/other.chalk", "hello, world")
    err = error_of(chalk.load, dir .. "/other.chalk")
    assert.truthy(err:find("not a chalk save file", 1, true), err)
    err = error_of(chalk.load, dir .. "/missing.chalk")
    assert.truthy(err:find("missing.chalk", 1, true), err)
  end)

  it("replaces the file atomically and leaves no temporary behind", function()
    chalk.save(chalk.ones(3), dir .. "/a.chalk")
    chalk.save(chalk.zeros(3), dir .. "/a.chalk")
    assert.is_true(same(chalk.zeros(3), chalk.load(dir .. "/a.chalk")))
    assert.are.same({ "a.chalk" }, listdir(dir))
    local err = error_of(chalk.save, chalk.ones(1), dir .. "/no/such/dir/x.chalk")
    assert.truthy(err:find("no/such/dir", 1, true), err)
  end)

  it("keeps the old file intact when the writer is killed mid-save", function()
    local target = dir .. "/model.chalk"
    chalk.manual_seed(5)
    local old = { w = chalk.randn(100, 100), step = 1 }
    chalk.save(old, target)
    local before = read(target)
    -- A child process saves 400 MB over the same path; it is SIGKILLed as soon as its temporary
    -- file has grown past 1 MB, i.e. in the middle of writing.
    local script = dir .. "/writer.lua"
    write(script, ([[
package.cpath = %q
local chalk = require "chalk"
local big = { w = chalk.ones(100 * 1000 * 1000), step = 2 }
io.open(%q, "w"):close()
chalk.save(big, %q)
]]):format(package.cpath, dir .. "/ready", target))
    local runner = dir .. "/run.sh"
    write(runner, ([[
lua5.4 '%s' &
pid=$!
i=0
while [ $i -lt 6000 ]; do
  tmp=$(ls '%s'/model.chalk.tmp.* 2>/dev/null | head -n 1)
  if [ -n "$tmp" ] && [ "$(stat -c %%s "$tmp")" -gt 1000000 ]; then
    kill -9 $pid; wait $pid 2>/dev/null; echo killed; exit 0
  fi
  if ! kill -0 $pid 2>/dev/null; then echo "finished"; exit 0; fi
  sleep 0.01; i=$((i + 1))
done
kill -9 $pid; echo timeout
]]):format(script, dir))
    local p = io.popen("sh '" .. runner .. "'")
    local outcome = p:read("l")
    p:close()
    assert.are.equal("killed", outcome, "the writer should have been killed mid-write")
    assert.are.equal(before, read(target), "the old file changed")
    local got = chalk.load(target)
    assert.are.equal(1, got.step)
    assert.is_true(same(old.w, got.w))
    -- the killed writer's temporary is the only other file
    local names = listdir(dir)
    local stray = 0
    for _, n in ipairs(names) do
      if n:match("^model%.chalk%.tmp%.") then stray = stray + 1 end
    end
    assert.are.equal(1, stray)
  end)
end)

describe("NumPy .npy", function()
  it("writes files NumPy reads with the same values, shapes and dtypes", function()
    chalk.manual_seed(3)
    local tensors = {
      f32 = chalk.randn(3, 4), f64 = chalk.randn(2, 3, 2, { dtype = "f64" }), i64 = chalk.randint(-5, 5, { 7 }, { dtype = "i64" }),
      i32 = chalk.randint(-5, 5, { 2, 2 }, { dtype = "i32" }), b = chalk.randn(5):gt(0), s = chalk.tensor(2.5),
      t = chalk.arange(1, 7):to("f32"):view(2, 3):transpose(1, 2), f16 = chalk.randn(4, { dtype = "f16" }),
      i8 = chalk.randint(-100, 100, { 3 }, { dtype = "i8" }),
    }
    local lines = {}
    for k, t in pairs(tensors) do
      chalk.save_npy(t, dir .. "/" .. k .. ".npy")
      lines[#lines + 1] = ('a = np.load("%s/%s.npy"); print("%s", a.dtype.str, a.shape, repr(a.astype(np.float64).sum()))')
        :format(dir, k, k)
    end
    local p = io.popen(ref.python .. " -c 'import numpy as np\n" .. table.concat(lines, "\n") .. "'")
    local got = {}
    for l in p:lines() do
      local k, rest = l:match("^(%S+) (.*)$")
      got[k] = rest
    end
    p:close()
    local descr = { f32 = "<f4", f64 = "<f8", i64 = "<i8", i32 = "<i4", b = "|b1", s = "<f4", t = "<f4", f16 = "<f2", i8 = "|i1" }
    for k, t in pairs(tensors) do
      assert.is_not_nil(got[k], "numpy did not read " .. k)
      local dt, shape, sum = got[k]:match("^(%S+) (%(.-%)) (.*)$")
      assert.are.equal(descr[k], dt, k)
      local want_shape = #t.shape == 0 and "()" or #t.shape == 1 and ("(" .. t.shape[1] .. ",)")
        or "(" .. table.concat(t.shape, ", ") .. ")"
      assert.are.equal(want_shape, shape, k)
      local mine = t:to("f64"):sum():item()
      assert.is_true(math.abs(tonumber(sum) - mine) <= 1e-6 * math.max(1, math.abs(mine)), k .. ": " .. sum .. " vs " .. mine)
    end
  end)

  it("reads what NumPy writes: dtypes, byte orders, Fortran order, 0-d", function()
    assert(os.execute(ref.python .. " -c '" .. ([[
import numpy as np
d = "%s"
a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8
np.save(d + "/c.npy", a)
np.save(d + "/f.npy", np.asfortranarray(a))
np.save(d + "/be.npy", a.astype(">f8"))
np.save(d + "/u8.npy", np.arange(250, 256, dtype=np.uint8))
np.save(d + "/i16.npy", np.array([-3, 7], dtype=np.int16))
np.save(d + "/b.npy", np.array([True, False, True]))
np.save(d + "/z.npy", np.float64(4.25))
np.save(d + "/obj.npy", np.array(["x"], dtype=object), allow_pickle=True)
]]):format(dir) .. "'"))
    local want = chalk.arange(0, 24):view(2, 3, 4) / 8
    local c = chalk.load_npy(dir .. "/c.npy")
    assert.are.equal("f32", c.dtype)
    assert.is_true(same(want, c))
    assert.is_true(same(want, chalk.load_npy(dir .. "/f.npy")))
    local be = chalk.load_npy(dir .. "/be.npy")
    assert.are.equal("f64", be.dtype)
    assert.is_true(same(want:to("f64"), be))
    assert.are.same({ 250, 251, 252, 253, 254, 255 }, chalk.load_npy(dir .. "/u8.npy"):totable())
    assert.are.same({ -3, 7 }, chalk.load_npy(dir .. "/i16.npy"):totable())
    assert.are.same({ true, false, true }, chalk.load_npy(dir .. "/b.npy"):totable())
    assert.are.equal(4.25, chalk.load_npy(dir .. "/z.npy"):item())
    local err = error_of(chalk.load_npy, dir .. "/obj.npy")
    assert.truthy(err:find("dtype", 1, true), err)
  end)

  it("round-trips through NumPy and reports damaged files", function()
    local x = chalk.randn(5, 6)
    chalk.save_npy(x, dir .. "/x.npy")
    assert(os.execute(ref.python .. (" -c 'import numpy as np; np.save(\"%s/y.npy\", np.load(\"%s/x.npy\") * 2)'")
      :format(dir, dir)))
    assert.is_true(same(x * 2, chalk.load_npy(dir .. "/y.npy")))
    local s = read(dir .. "/x.npy")
    write(dir .. "/short.npy", s:sub(1, #s - 4))
    local err = error_of(chalk.load_npy, dir .. "/short.npy")
    assert.truthy(err:find("truncated", 1, true) and err:find("short.npy", 1, true), err)
    write(dir .. "/junk.npy", "not numpy at all")
    err = error_of(chalk.load_npy, dir .. "/junk.npy")
    assert.truthy(err:find("not a .npy file", 1, true), err)
    err = error_of(chalk.save_npy, chalk.ones(2, { dtype = "bf16" }), dir .. "/bf.npy")
    assert.truthy(err:find("bf16", 1, true), err)
  end)
end)
