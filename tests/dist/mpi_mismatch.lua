-- mpi_mismatch.lua: the last rank skips a collective; the others must fail after
-- CHALK_DIST_TIMEOUT seconds with an error naming the collective, never hang (mpi.sh checks).
local dist = require("chalk").dist
local w = dist.init()
if w.rank ~= w.size then w:all_reduce(chalk.ones(8)) end
w:barrier()
