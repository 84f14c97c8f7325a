-- mpi_collectives.lua: tests/dist/collectives.lua on real processes (chalk --nproc N, by mpi.sh).
package.path = "tests/dist/?.lua;" .. package.path
local dist = require("chalk").dist
local C = require "collectives"
local w = dist.init()
local n = C.run(w, {1, 7, 33})
local s = C.ring_bytes(w, 1024 * w.size)
print(string.format("mpi rank %d of %d: %d checks passed; ring sent %d bytes in %d messages", w.rank, w.size, n,
                    s.sent, s.messages))
