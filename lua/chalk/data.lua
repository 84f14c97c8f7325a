-- data.lua: data sets a course trains on, and a batching loader.
--
--   X, Y = data.fashion_mnist("train")   -- X f32 [60000,784] in [0,1], Y i64 [60000] in 1..10
--   for xb, yb in data.loader(X, Y, {batch=128, shuffle=true}) do ... end
--   words = data.words()                 -- /usr/share/dict/words, lowercase a-z only
--   X, Y = data.spirals(100, 3)          -- synthetic: also data.moons, data.sine
--
-- Invariants: real data comes from Debian packages (dataset-fashion-mnist, wamerican) and a
-- missing file is an error naming the package to install; class labels are 1-based (the user
-- contract); data sets and the batches copied from them are tagged "input" in the memory log;
-- every random choice (shuffles, noise) draws from chalk's seeded RNG, so
-- chalk.manual_seed(s) makes a run repeatable.
local chalk = require "chalk"

local M = {}

-- The progress bar for training loops lives in chalk.progress; it is loaded with data, the
-- module every training loop already uses, so chalk.progress exists wherever data does.
chalk.progress = chalk.progress or require "chalk.progress"

M.fashion_mnist_dir = "/usr/share/datasets/fashion-mnist"
M.words_file = "/usr/share/dict/words"

M.fashion_mnist_classes = {
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Reads one IDX file (gzip or plain) into a tensor: data._read_idx(path, dtype, scale, shift).
M._read_idx = chalk._read_idx

local FILES = {
  train = { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz" },
  test = { "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" },
}

-- data.fashion_mnist(split [, opts]): split "train" (60000) or "test" (10000).
-- opts.dir: where the IDX files are (default data.fashion_mnist_dir, or $CHALK_FASHION_MNIST);
-- opts.image = true gives X as [N,1,28,28] for convolutions instead of [N,784];
-- opts.limit = n keeps the first n examples (quick experiments).
function M.fashion_mnist(split, opts)
  split = split or "train"
  opts = opts or {}
  local files = FILES[split]
  if not files then
    error(("data.fashion_mnist: split must be \"train\" or \"test\", got %q"):format(tostring(split)), 2)
  end
  local dir = opts.dir or os.getenv("CHALK_FASHION_MNIST") or M.fashion_mnist_dir
  local img_path, lbl_path = dir .. "/" .. files[1], dir .. "/" .. files[2]
  for _, p in ipairs { img_path, lbl_path } do
    if not exists(p) then
      error(("data.fashion_mnist: %s is missing: install the Debian package dataset-fashion-mnist "
        .. "(apt-get install dataset-fashion-mnist, or `make deps`)"):format(p), 2)
    end
  end
  local X = M._read_idx(img_path, "f32", 1 / 255, 0)
  local Y = M._read_idx(lbl_path, "i64", 1, 1) -- classes 0..9 in the file, 1..10 for users
  local xs, ys = X.shape, Y.shape
  if #xs ~= 3 or xs[2] ~= 28 or xs[3] ~= 28 then
    error(("data.fashion_mnist: %s holds images of shape [%s], expected [N,28,28]")
      :format(img_path, table.concat(xs, ",")), 2)
  end
  if #ys ~= 1 or ys[1] ~= xs[1] then
    error(("data.fashion_mnist: %s holds %s labels for %d images in %s")
      :format(lbl_path, table.concat(ys, "x"), xs[1], img_path), 2)
  end
  local n = xs[1]
  if opts.limit and opts.limit < n then
    n = opts.limit
    X = X:narrow(1, 1, n):clone() -- a storage of its own: the full set can be freed
    Y = Y:narrow(1, 1, n):clone()
  end
  if opts.image then X = X:view(n, 1, 28, 28) else X = X:view(n, 784) end
  X.name = "X_" .. split
  Y.name = "Y_" .. split
  chalk.tag(X, "input") -- memory pictures show the data set as input, not as activations
  chalk.tag(Y, "input")
  return X, Y
end

-- A loader iterates over (x, y) batches of the rows of X (and Y): `for xb, yb in loader do`.
-- #loader is the number of batches; every traversal draws a fresh permutation when shuffling.
local Loader = {}
Loader.__index = Loader

function Loader:__len()
  if self.drop_last then return self.n // self.batch end
  return (self.n + self.batch - 1) // self.batch
end

-- Returns a fresh iterator (a stateful function) over the batches.
function Loader:iter()
  local perm = self.shuffle and chalk.randperm(self.n) or nil
  local start, n, batch, X, Y = 1, self.n, self.batch, self.X, self.Y
  local nbatches = #self
  local i = 0
  return function()
    if i >= nbatches then return nil end
    i = i + 1
    local len = math.min(batch, n - start + 1)
    local xb, yb
    if perm then
      local idx = perm:narrow(1, start, len)
      xb = chalk.tag(X:index_select(1, idx), "input")
      yb = Y and chalk.tag(Y:index_select(1, idx), "input")
    else
      xb = X:narrow(1, start, len)
      yb = Y and Y:narrow(1, start, len)
    end
    start = start + len
    return xb, yb, i
  end
end

-- `for xb, yb in loader do` calls the loader itself. A generic for passes the previous first
-- value (nil on its first call), so every new loop starts a new traversal, even after a break.
function Loader:__call(_, prev)
  if prev == nil or not self._it then self._it = self:iter() end
  local xb, yb, i = self._it()
  if xb == nil then self._it = nil end
  return xb, yb, i
end

function Loader:__tostring()
  return ("data.loader(%d rows, batch %d%s%s): %d batches"):format(self.n, self.batch,
    self.shuffle and ", shuffled" or "", self.drop_last and ", drop_last" or "", #self)
end

-- data.loader(X [, Y], opts): opts.batch (default 128), opts.shuffle (default false),
-- opts.drop_last (default false: the last batch may be smaller).
function M.loader(X, Y, opts)
  if opts == nil and type(Y) == "table" and getmetatable(Y) == nil then Y, opts = nil, Y end
  opts = opts or {}
  if not chalk.is_tensor(X) or X:dim() < 1 then
    error("data.loader: argument X must be a tensor with at least 1 dim, got " .. (chalk.is_tensor(X) and "a 0-d tensor" or type(X)), 2)
  end
  if Y ~= nil and (not chalk.is_tensor(Y) or Y:dim() < 1) then
    error("data.loader: argument Y must be a tensor with at least 1 dim (or nil), got " .. (chalk.is_tensor(Y) and "a 0-d tensor" or type(Y)), 2)
  end
  if type(opts) ~= "table" then error("data.loader: argument opts must be a table, got " .. type(opts), 2) end
  local n = X.shape[1]
  if Y and Y.shape[1] ~= n then
    error(("data.loader: X has %d rows but Y has %d"):format(n, Y.shape[1]), 2)
  end
  local batch = opts.batch or opts.batch_size or 128
  if math.type(batch) ~= "integer" or batch < 1 then
    error("data.loader: batch must be a positive integer, got " .. tostring(batch), 2)
  end
  return setmetatable({ X = X, Y = Y, n = n, batch = batch, shuffle = opts.shuffle and true or false,
    drop_last = opts.drop_last and true or false }, Loader)
end

-- data.words([path]): the words of /usr/share/dict/words made only of the letters a-z (proper
-- nouns, possessives and accented words dropped), sorted and unique, as a Lua list of strings.
function M.words(path)
  path = path or M.words_file
  local f = io.open(path, "r")
  if not f then
    error(("data.words: %s is missing: install the Debian package wamerican "
      .. "(apt-get install wamerican, or `make deps`)"):format(path), 2)
  end
  local words, seen = {}, {}
  for line in f:lines() do
    if line:match("^[a-z]+$") and not seen[line] then
      seen[line] = true
      words[#words + 1] = line
    end
  end
  f:close()
  table.sort(words)
  return words
end

-- Standard normal draws from chalk's RNG, as a Lua list.
local function normals(n)
  if n == 0 then return {} end
  return chalk.randn(n):totable()
end

-- data.spirals(n, classes [, noise]): `classes` interleaved spiral arms of n points each
-- (as in CS231n). X f32 [n*classes, 2], Y i64 [n*classes] in 1..classes.
function M.spirals(n, classes, noise)
  n, classes, noise = n or 100, classes or 3, noise or 0.2
  local eps = normals(n * classes)
  local xs, ys = {}, {}
  for c = 1, classes do
    for i = 1, n do
      local r = n > 1 and (i - 1) / (n - 1) or 0
      local t = (c - 1) * 4 + 4 * r + eps[(c - 1) * n + i] * noise
      xs[#xs + 1] = { r * math.sin(t), r * math.cos(t) }
      ys[#ys + 1] = c
    end
  end
  return chalk.tensor(xs), chalk.tensor(ys, { dtype = "i64" })
end

-- data.moons(n [, noise]): two interleaving half circles, n points in all (as scikit-learn's
-- make_moons). X f32 [n,2], Y i64 [n] in 1..2.
function M.moons(n, noise)
  n, noise = n or 200, noise or 0.1
  local outer = n // 2
  local eps = normals(2 * n)
  local xs, ys = {}, {}
  for i = 1, n do
    local x, y, c
    if i <= outer then
      local t = outer > 1 and math.pi * (i - 1) / (outer - 1) or 0
      x, y, c = math.cos(t), math.sin(t), 1
    else
      local inner = n - outer
      local t = inner > 1 and math.pi * (i - outer - 1) / (inner - 1) or 0
      x, y, c = 1 - math.cos(t), 0.5 - math.sin(t), 2
    end
    xs[i] = { x + noise * eps[2 * i - 1], y + noise * eps[2 * i] }
    ys[i] = c
  end
  return chalk.tensor(xs), chalk.tensor(ys, { dtype = "i64" })
end

-- data.sine(n [, noise]): a regression set, x uniform in [-pi, pi], y = sin(x) + noise * N(0,1).
-- X f32 [n,1], Y f32 [n,1].
function M.sine(n, noise)
  n, noise = n or 256, noise or 0.05
  local X = chalk.rand(n, 1) * (2 * math.pi) - math.pi
  local Y = X:sin() + chalk.randn(n, 1) * noise
  return X, Y
end

return M
