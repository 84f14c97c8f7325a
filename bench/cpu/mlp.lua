-- mlp.lua: one training step (forward, backward, SGD) of a 784-512-256-10 MLP at batch 128.
local B = dofile(arg[1] .. "/common.lua")
chalk.manual_seed(0)
local model = nn.Sequential{ nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10) }
local opt = optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
local x, y = chalk.randn(128, 784), chalk.randint(1, 11, {128})
local step = B.train_step(model, opt, x, y)
B.report("mlp_step", B.median_time(step, 10, 7, 5))
