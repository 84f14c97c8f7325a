# test_04_cuda_matmul.sh: lesson 4 runs unattended (its CPU part at small sizes: CHALK_LESSON_QUICK):
# it says whether it has a GPU, shows each rung's source from kernels/ladder.cu, runs the CPU
# ladder (every rung equal to OpenBLAS), prints the load counts (naive 2n^3 against tiled 2n^3/64)
# and measured ceilings, and draws the CPU roofline (and, on a GPU machine, the GPU roofline and
# the trace).
. tests/lessons/lib.sh
start_lesson 04_cuda_matmul CHALK_LESSON_QUICK=1
grep -q "No GPU here\|^GPU: " "$LOG" || fail "the lesson does not say whether it has a GPU"
if grep -q "^GPU: " "$LOG"; then
  for k in k_naive k_coalesced k_tiled k_register2d k_vectorized k_warptile k_wmma run_cublas; do
    grep -q "$k" "$LOG" || fail "the source of $k (kernels/ladder.cu) is not shown"
  done
else # once, the figures recorded on an H100 (lessons/gpu_runs/), a row per rung with its model
  [ "$(grep -c 'not timed here' "$LOG")" -eq 0 ] || fail "steps still say 'not timed here' without a GPU"
  [ "$(grep -c '^No GPU here' "$LOG")" -eq 1 ] || fail "the lesson should say once that there is no GPU"
  for k in naive coalesced tiled register2d vectorized warptile wmma_tf32 wmma_bf16 cublas; do
    grep -q "^$k  .* 2n/[0-9]* " "$LOG" || fail "the recorded H100 row of $k is missing"
  done
  near "recorded loads/elem of tiled" "$(sed -n 's|^tiled .* 2n/\([0-9]*\) .*|\1|p' "$LOG")" 32 0
fi
at_least "CPU intensity tiled (FLOP/B)" "$(sed -n 's/^intensity at n = [0-9]* (FLOP\/B): naive [0-9.]*, tiled \([0-9.]*\).*/\1/p' "$LOG")" 10
near "CPU rungs vs OpenBLAS" "$(number 'largest relative difference from OpenBLAS:')" 0 1e-4
ratio=$(sed -n 's/^loads naive\/tiled at n = [0-9]*: *\([0-9.]*\).*/\1/p' "$LOG" | head -n 1)
near "loads naive / tiled" "$ratio" 64 0
at_least "CPU bandwidth (GB/s)" "$(number 'CPU copy bandwidth (read + write):')" 0.1
at_least "OpenBLAS GFLOP/s" "$(sed -n 's/^OpenBLAS sgemm [0-9x]*: *\([0-9.]*\).*/\1/p' "$LOG" | head -n 1)" 0.1
picture 04_roofline_cpu.png
if grep -q "^GPU: " "$LOG"; then
  for p in 04_roofline.png 04_trace.png; do picture "$p"; done
fi
finish
