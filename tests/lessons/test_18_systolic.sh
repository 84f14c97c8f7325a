# test_18_systolic.sh: lesson 18 runs unattended; the simulated systolic array's product, cycles,
# folds and utilisation against the laws (computed here, not read from the lesson), and its pictures.
LESSON=18_systolic
. tests/lessons/lib.sh
run_lesson || finish
fits_screen
grep -q "^result equals A @ B exactly: true" "$LOG" || fail "the 4 x 4 grid's integer product is not exact"
near "cycles of one fold (4x4 grid, T=6)" "$(number 'cycles measured')" $((2 * 4 + 4 + 6 - 2)) 0
near "utilisation (4x4, T=6)" "$(number 'utilisation measured')" "$(awk 'BEGIN { print 6 / 16 }')" 0.0001
near "busy cell-cycles" "$(number 'busy cell-cycles')" $((4 * 4 * 6)) 0
# folding 7x10 @ 10x9 on 4 x 4: folds and cycles per dataflow, every product exact
for row in "weight 9 144" "input 6 111" "output 6 111"; do
  set -- $row
  line=$(grep "^$1 *folds" "$LOG")
  near "$1 folds" "$(echo "$line" | awk '{ print $3 }')" "$2" 0
  near "$1 cycles" "$(echo "$line" | sed -n 's/.*cycles \([0-9]*\) .*/\1/p')" "$3" 0
  echo "$line" | grep -q "exact true$" || fail "$1: the folded product is not exact"
done
at_least "floats within 1e-6 (1e-6 - error)" "$(awk -v e="$(number 'floats: largest difference to A @ B')" 'BEGIN { print 1e-6 - e }')" 0
near "folds of 37x29 @ 29x41 on 8x8" "$(number 'folds')" $(((37 + 7) / 8 * ((41 + 7) / 8))) 0
# utilisation on 128 x 128: measured equals T / (2R + C + T - 2) = T / (382 + T)
for T in 16 64 256 1024 2048; do
  u=$(sed -n "s/^T = *$T: utilisation measured \([0-9.]*\), law.*/\1/p" "$LOG")
  near "utilisation at T=$T" "$u" "$(awk -v t=$T 'BEGIN { print t / (382 + t) }')" 0.0001
done
near "v5e-like cycles for 512^3" "$(sed -n 's/.* = \([0-9]*\) cycles; at 1.5 GHz.*/\1/p' "$LOG")" $((16 * (2 * 128 + 128 + 512 - 2))) 0
at_least "CPU time measured (us)" "$(number 'CPU measured:')" 1
for p in 18_wave.png 18_wave_summary.png 18_utilization.png 18_dataflows.png; do picture "$p"; done
finish
