-- kill_train.lua: a training run that can be killed at any moment and resumed bit-identically
-- (lesson 16). chalk lessons/data/kill_train.lua DIR STEPS K
-- Trains a small MLP with Adam and dropout on a fixed synthetic task; every K steps it saves
-- DIR/ckpt.chalk atomically and checksummed (chalk.save) with everything the next step depends
-- on: the weights, Adam's state (m, v, step count), chalk's random stream (seed and offset: batch
-- indices and dropout masks are drawn from it) and the data position (the step). On start it
-- resumes from DIR/ckpt.chalk when present. It prints "step N" after each step and writes the
-- final weights to DIR/final.chalk.
local chalk = require "chalk"
local nn, optim = chalk.nn, chalk.optim
local dir, steps, K = arg[1], tonumber(arg[2] or 200), tonumber(arg[3] or 20)
assert(dir, "usage: chalk kill_train.lua DIR [STEPS] [K]")
io.stdout:setvbuf("line")

chalk.manual_seed(1234)
local X = chalk.randn(4096, 64)             -- the data set: fixed by the seed
local Y = (X:narrow(2, 1, 8):sum(2):gt(0)):long():view(-1) + 1  -- labels 1 or 2
local model = nn.Sequential{nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 2)}
local opt = optim.Adam(model:parameters(), {lr = 1e-3})
local step = 0
chalk.manual_seed(99)                        -- the training stream

local ckpt = dir .. "/ckpt.chalk"
local f = io.open(ckpt, "rb")
if f then
  f:close()
  local s = chalk.load(ckpt)                 -- checks the CRC32 before trusting a byte
  model:load_state_dict(s.model)
  opt:load_state_dict(s.optim)
  chalk.set_rng_state(s.rng)
  step = s.step
  print(("resumed at step %d"):format(step))
end

while step < steps do
  step = step + 1
  local idx = chalk.randint(1, 4097, {64})   -- the data loader: a random batch from the stream
  local loss = nn.functional.cross_entropy(model(X:index_select(1, idx)), Y:index_select(1, idx))
  opt:zero_grad()
  loss:backward()
  opt:step()
  if step % K == 0 then
    chalk.save({model = model:state_dict(), optim = opt:state_dict(), rng = chalk.rng_state(), step = step}, ckpt)
  end
  print(("step %d"):format(step))
end
chalk.save(model:state_dict(), dir .. "/final.chalk")
print("done")
