# test_12_tensor_pipeline.sh: lesson 12 runs unattended; every law beside its measurement: the TP MLP
# equal to unsplit, 2 all-reduces forward and 2 backward per
# transformer layer (attention + MLP), bytes of Megatron's and the naive split; p = 8,
# m = 32: 78 steps and bubble 0.179 for GPipe and 1F1B, in-flight 1F1B p - s + 1, interleaved
# idle/compute (p - 1)/(v m), the broken schedule caught, pipelined gradients equal unsplit (1e-6);
# the same run under chalk --nproc 4 (OpenMPI) when there; its pictures.
LESSON=12_tensor_pipeline
. tests/lessons/lib.sh
run_lesson || finish
fits_screen
near "TP MLP vs unsplit (f64)" "$(number 'output, input, weight gradients vs unsplit: largest difference')" 0 0.000001
grep -q '^all-reduces per rank, one layer: forward 2, backward 2 ' "$LOG" || fail "TP all-reduce counts are not 2 and 2"
check_law "Megatron forward bytes" "Megatron forward bytes sent per rank" 0
check_law "naive forward bytes" "naive forward bytes sent per rank" 0
near "naive / Megatron bytes" "$(number 'naive / Megatron:')" 2.5 0
for k in GPipe 1F1B; do
  check_law "$k steps" "$k steps" 0
  near "$k steps = 78 at p = 8, m = 32" "$(number "$k steps: measured")" 78 0
  check_law "$k bubble" "$k bubble" 0
  near "$k bubble = 0.179" "$(number "$k bubble: measured")" 0.179 0
done
check_law "1F1B in-flight stage 1" "1F1B in-flight, stage 1" 0
check_law "1F1B in-flight stage 8" "1F1B in-flight, stage 8" 0
grep -q '^GPipe activations held at most, per stage: 32 32 32 32 32 32 32 32$' "$LOG" || fail "GPipe in-flight is not m"
grep -q '^1F1B activations held at most, per stage: 8 7 6 5 4 3 2 1$' "$LOG" || fail "1F1B in-flight is not p - s + 1"
for v in 1 2 4; do check_law "interleaved v = $v" "v = $v idle/compute" 0; done
near "interleaved v = 2 idle/compute = 7/64" "$(number 'v = 2 idle/compute: measured')" 0.1094 0.00005
grep -q '^dist.pipeline: the schedule breaks a dependency: stage 3 runs F of micro-batch 3' "$LOG" ||
  fail "the broken schedule was not caught"
[ "$(grep -c '^[a-z1]* *on 4 workers: max weight-gradient difference' "$LOG")" -eq 2 ] || fail "pipeline runs missing"
near "pipelined gradients vs unsplit" "$(number 'largest difference')" 0 0.000001
# the same pipelined run (step 8's code as a script) on 4 real processes, when MPI is here
if command -v mpirun >/dev/null 2>&1 && [ "${HAVE_MPI:-1}" != 0 ]; then
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 "$CHALK" --nproc 4 tests/dist/pipeline_nproc.lua \
    >"$TMP/mpi" 2>&1 || fail "chalk --nproc 4 tests/dist/pipeline_nproc.lua failed: $(tail -n 5 "$TMP/mpi")"
  [ "$(grep -c '^rank [1-4]/4 (mpi): 1F1B stage' "$TMP/mpi")" -eq 4 ] || fail "--nproc 4: not 4 ranks"
  mpi=$(sed -n 's/^rank [1-4]\/4 (mpi).*max diff //p' "$TMP/mpi" | sort -g | tail -n 1)
  near "--nproc 4 pipelined gradients vs unsplit" "$mpi" 0 0.000001
fi
for p in 12_tp_graph.png 12_gpipe.png 12_1f1b.png 12_interleaved.png; do picture "$p"; done
finish
