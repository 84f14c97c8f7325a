# test_10_data_parallel.sh: lesson 10 runs unattended; every law beside its measurement: ring bytes
# 2(N-1)/N S in 2(N-1) messages, the PS server link N S ((N-1) S when rank 1 also works), time
# 2(N-1)a + 2(N-1)/N S/B, busbw/algbw 2(N-1)/N, DDP equal to one worker (1e-6), buckets overlapping
# backward; the MPI run when MPI is there; its pictures.
LESSON=10_data_parallel
. tests/lessons/lib.sh
run_lesson || finish
fits_screen  # every step fits a projected 100x35 terminal (30 lines of 100 columns)
check_law "ring bytes sent per rank (S)" "bytes sent per rank" 0
near "ring bytes per rank = 1.5 S at N = 4" "$(number 'bytes sent per rank: measured')" 1.5 0
check_law "ring messages per rank" "messages per rank" 0
near "ring messages = 6 at N = 4" "$(number 'messages per rank: measured')" 6 0
check_law "ring time (us)" "simulated time" 0.001
check_law "busbw/algbw" "busbw/algbw" 0.0005
near "busbw/algbw = 1.5 at N = 4" "$(number 'busbw/algbw: measured')" 1.5 0.0005
near "PS separate server receives N S" "$(number 'PS server link, separate server: received')" 4 0
near "PS server also a worker receives (N-1) S" "$(number 'PS server link, rank 1 also a worker: received')" 3 0
worst=$(number 'largest difference')
near "DDP vs one worker at the whole batch" "$worst" 0 0.000001
[ "$(grep -c '^N = [124] at batch .*: [0-9.e+-]*$' "$LOG")" -eq 3 ] || fail "DDP rows for N = 1, 2, 4 missing"
# the crossover: PS fastest at 8 B, a bandwidth-optimal algorithm at 1 GiB, 10 sizes
[ "$(grep -c ' us  [a-z_]*$' "$LOG")" -eq 10 ] || fail "the crossover table has not 10 rows"
grep -q '^ *8 B .* ps$' "$LOG" || fail "PS should be fastest at 8 B"
grep -Eq '^ *1 GiB .* (ring|halving_doubling)$' "$LOG" || fail "ring or halving-doubling should win at 1 GiB"
hidden=$(sed -n 's/.*under backward \([0-9.]*\) ms.*/\1/p' "$LOG" | head -n 1)
at_least "bucket time under backward (ms)" "$hidden" 0.001
if grep -q "^MPI is not installed here" "$LOG"; then
  ! command -v mpirun >/dev/null 2>&1 || [ "$HAVE_MPI" = 0 ] || echo "  $LESSON: mpirun found but chalk says MPI is absent" >&2
else # the same file on 2 real processes matches one worker too
  [ "$(grep -c '^rank [12]/2 (mpi): batch 16 of 32' "$LOG")" -eq 2 ] || fail "the MPI run did not print 2 ranks"
  mpi=$(sed -n 's/^rank [12]\/2 (mpi).*max diff //p' "$LOG" | sort -g | tail -n 1)
  near "MPI DDP vs one worker" "$mpi" 0 0.000001
fi
for s in 1 2 3 4 5 6; do picture "10_ring_$s.png"; done
for p in 10_ring.png 10_crossover.png 10_ddp_lanes.png; do picture "$p"; done
finish
