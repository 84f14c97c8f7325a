-- conv.lua: one training step of a small conv net (2 conv + 2 linear) at batch 64 on 28x28 inputs.
local B = dofile(arg[1] .. "/common.lua")
chalk.manual_seed(0)
local model = nn.Sequential{
  nn.Conv2d(1, 16, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(16, 32, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
  nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10) }
local opt = optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
local x, y = chalk.randn(64, 1, 28, 28), chalk.randint(1, 11, {64})
local step = B.train_step(model, opt, x, y)
B.report("conv_step", B.median_time(step, 3, 7, 2))
