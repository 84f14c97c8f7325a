-- dispatch.lua: 100,000 adds of two 16-element tensors from Lua (per-op overhead).
local B = dofile(arg[1] .. "/common.lua")
local a, b = chalk.randn(16), chalk.randn(16)
local function loop() for _ = 1, 100000 do local c = a + b end end
B.report("dispatch_add16", B.median_time(loop, 1, 5, 1) / 100000)
