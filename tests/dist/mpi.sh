#!/bin/sh
# mpi.sh: the dist tests on real processes: tests/dist/collectives.lua under chalk --nproc 2 and 4
# (oversubscribed on small machines), examples/ddp.lua on 2 processes (DDP equals one worker), and a
# rank that skips a collective must end in an error within the watchdog's timeout, not a hang. Skips, saying why, without MPI.
CHALK=${CHALK:-build/chalk}
if [ "$HAVE_MPI" != 1 ] || ! command -v mpirun >/dev/null 2>&1; then
  echo "check-dist: mpi tests SKIPPED: OpenMPI not found (apt-get install openmpi-bin libopenmpi-dev, or make deps)"
  exit 0
fi
fail=0
for n in 2 4; do
  out=$(CHALK_DIST_TIMEOUT=30 timeout 300 "$CHALK" --nproc $n tests/dist/mpi_collectives.lua 2>&1)
  rc=$?
  echo "$out" | grep -E "^mpi rank|rror" | head -8
  if [ $rc != 0 ] || [ "$(echo "$out" | grep -c 'checks passed')" != $n ]; then
    echo "check-dist: FAILED: chalk --nproc $n tests/dist/mpi_collectives.lua (rc $rc)"; echo "$out" | tail -20; fail=1
  fi
done
# DDP on 2 processes ends with one worker's weights at the whole batch (1e-6)
out=$(CHALK_DIST_TIMEOUT=30 timeout 300 "$CHALK" --nproc 2 examples/ddp.lua 2>&1)
rc=$?
worst=$(echo "$out" | sed -n 's/.*weights vs 1 worker at batch [0-9]*: max diff //p' | sort -g | tail -n 1)
if [ $rc != 0 ] || [ "$(echo "$out" | grep -c '(mpi): batch 16 of 32')" != 2 ] ||
   ! awk -v w="$worst" 'BEGIN { exit !(w != "" && w + 0 <= 1e-6) }'; then
  echo "check-dist: FAILED: chalk --nproc 2 examples/ddp.lua (rc $rc, worst $worst)"; echo "$out" | tail -20; fail=1
else
  echo "mpi ddp: 2 processes at batch 16 match one worker at batch 32, max weight difference $worst"
fi
start=$(date +%s)
out=$(CHALK_DIST_TIMEOUT=3 timeout 120 "$CHALK" --nproc 2 tests/dist/mpi_mismatch.lua 2>&1)
rc=$?
took=$(( $(date +%s) - start ))
# Both ranks wait 3 s (rank 1 in the all_reduce rank 2 skipped, rank 2 in the barrier rank 1 has
# not reached); whichever watchdog fires first ends the job, so either error is right.
why='all_reduce #1 \(ring\) on rank 1 of 2: waited 3 s for rank 2|barrier #1 \(dissemination\) on rank 2 of 2: waited 3 s for rank 1'
if [ $rc = 0 ] || [ $rc = 124 ] || ! echo "$out" | grep -Eq "$why"; then
  echo "check-dist: FAILED: a skipped collective on mpi should fail after 3 s (rc $rc, ${took} s):"; echo "$out" | tail -20
  fail=1
else
  echo "mpi mismatch: failed after ${took} s: $(echo "$out" | grep -m1 -Eo '(all_reduce|barrier) #1.*waited 3 s for rank [12]')"
fi
[ $fail = 0 ] && echo "check-dist: mpi tests passed (chalk --nproc 2 and 4, and the timeout)"
exit $fail
