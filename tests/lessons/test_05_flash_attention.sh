# test_05_flash_attention.sh: lesson 5 runs unattended (its CPU part at small N: CHALK_LESSON_QUICK):
# attention equals its formula, flash equals naive (forward and gradients), the online softmax of
# one row equals the full softmax, memory grows as N^2 for naive and N for flash with no N x N
# block in flash, the bytes flash counts equal 2Nd + (N/Br) 2Nd and fall with the tile size, and
# the pictures exist.
. tests/lessons/lib.sh
start_lesson 05_flash_attention CHALK_LESSON_QUICK=1
near "naive vs formula" "$(number 'largest difference from O: naive')" 0 1e-6
near "online softmax" "$(number 'O_13 from the sweep against full softmax: largest difference')" 0 1e-5
near "causal" "$(number 'causal attention, naive and flash, against the masked formula:')" 0 1e-6
grep -q "^on cpu, flash against naive" "$LOG" || fail "no flash vs naive gradient line"
at_least "naive memory growth exponent" "$(number 'naive memory growth exponent:')" 1.7
near "flash memory growth exponent" "$(number 'flash memory growth exponent:')" 0.9 0.3
near "N x N bytes in flash" "$(number 'bytes in N x N blocks ever live in flash:')" 0 0
near "flash bytes vs formula" "$(number 'flash bytes counted vs formula, largest relative difference:')" 0 1e-9
near "naive bytes vs formula" "$(number 'naive bytes counted vs formula, largest relative difference:')" 0 0.01
at_least "bytes ratio Br 16 / 256" "$(number 'flash bytes at Br 16 over Br 256:')" 8
grep -q "No GPU here\|^GPU: " "$LOG" || fail "the lesson does not say whether it has a GPU"
if ! grep -q "^GPU: " "$LOG"; then # said once, then the figures recorded on an H100 (lessons/gpu_runs/)
  [ "$(grep -c '^No GPU here' "$LOG")" -eq 1 ] || fail "the lesson should say once that there is no GPU"
  grep -q "^\[[0-9]*/[0-9]*\] Recorded on an H100" "$LOG" || fail "no step shows the recorded H100 figures"
  [ "$(grep -c '^ *8192 .* ms .* ms' "$LOG")" -eq 1 ] || fail "the recorded H100 times stop short of N = 8192"
fi
for p in 05_tile_sweep.png 05_memory_naive_vs_flash.png 05_time.png; do picture "$p"; done
finish
