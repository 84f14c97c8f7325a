-- matmul.lua: a 1024x1024x1024 f32 matmul through chalk.
local B = dofile(arg[1] .. "/common.lua")
chalk.manual_seed(0)
local a, b = chalk.randn(1024, 1024), chalk.randn(1024, 1024)
B.report("matmul1024", B.median_time(function() local c = a:matmul(b) end, 3, 7, 2))
