#!/bin/sh
# run.sh: make bench-dist: bench/dist/allreduce.lua on 4 local MPI processes (skips without MPI).
CHALK=${CHALK:-build/chalk}
if [ "$HAVE_MPI" != 1 ] || ! command -v mpirun >/dev/null 2>&1; then
  echo "bench-dist: SKIPPED: OpenMPI not found (apt-get install openmpi-bin libopenmpi-dev, or make deps)"
  exit 0
fi
exec "$CHALK" --nproc "${NPROC:-4}" bench/dist/allreduce.lua "$@"
