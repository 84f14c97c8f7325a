-- torch_ref.lua: runs a snippet of PyTorch on chalk tensors (through .npy files) and returns
-- its results as chalk tensors, so specs compare chalk against torch at test time.
--
--   local ref = require("torch_ref")   -- with package.path including tests/lua/?.lua
--   local out = ref.run({x = x, w = w}, [[O["y"] = I["x"] @ I["w"].T]])
--   assert(ref.maxdiff(out.y, y) < 1e-5)
--
-- The snippet sees I (name -> torch tensor, float64 as saved) and torch; it fills O. Python is
-- Debian's /usr/bin/python3 (python3-torch, python3-numpy), as the rest of chalk's tests use.
local chalk = require "chalk"
local text = require "chalk.text"

local M = {}
M.python = os.getenv("CHALK_TEST_PYTHON") or "/usr/bin/python3"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  return p
end

function M.tmpdir() return tmpdir() end

function M.rmdir(d) os.execute("rm -rf '" .. d .. "'") end

local PRELUDE = [==[
import sys, os, glob
import numpy as np
import torch
torch.set_default_dtype(torch.float64)
d = sys.argv[1]
I = {}
for f in sorted(glob.glob(os.path.join(d, "in_*.npy"))):
    I[os.path.basename(f)[3:-4]] = torch.from_numpy(np.load(f))
O = {}
]==]

local POSTLUDE = [[

for k, v in O.items():
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    np.save(os.path.join(d, "out_" + k + ".npy"), np.array(v, order="C"))
with open(os.path.join(d, "outs.txt"), "w") as f:
    f.write("\n".join(O.keys()))
]]

-- Runs code with inputs (name -> tensor); returns name -> chalk tensor for every O entry.
function M.run(inputs, code)
  local d = tmpdir()
  for k, t in pairs(inputs) do chalk.save_npy(t:contiguous(), d .. "/in_" .. k .. ".npy") end
  local f = assert(io.open(d .. "/ref.py", "w"))
  f:write(PRELUDE, text.dedent(code), POSTLUDE)
  f:close()
  local cmd = ("%s '%s/ref.py' '%s' > '%s/log.txt' 2>&1"):format(M.python, d, d, d)
  local ok = os.execute(cmd)
  if not ok then
    local log = io.open(d .. "/log.txt"):read("a")
    M.rmdir(d)
    error("torch reference failed:\n" .. log, 2)
  end
  local out = {}
  for name in io.open(d .. "/outs.txt"):read("a"):gmatch("[^\n]+") do
    out[name] = chalk.load_npy(d .. "/out_" .. name .. ".npy")
  end
  M.rmdir(d)
  return out
end

-- The largest absolute difference between two tensors of the same shape (compared in f64).
function M.maxdiff(a, b)
  local sa, sb = table.concat(a.shape, "x"), table.concat(b.shape, "x")
  assert(sa == sb, ("shapes differ: [%s] vs [%s]"):format(sa, sb))
  local d = (a:to("f64") - b:to("f64")):abs()
  if d:numel() == 0 then return 0 end
  return d:max():item()
end

return M
