# test_19_warp_specialization.sh: lesson 19 runs unattended; the simulated producer/consumer
# pipeline against the laws (computed here, not read from the lesson): law 1, the period
# max(c, p, (p+L+c)/S); law 2, no overlap with one slot; law 3, the consumers busy once
# S >= (p+L+c)/c; without a GPU, the recorded H100 figures (launch overhead, ops x overhead saved,
# overlap from the stamps, the GEMM's fraction of cuBLAS) and the pictures.
LESSON=19_warp_specialization
. tests/lessons/lib.sh
start_lesson "$LESSON"
L=6 C=2 P=0.5
law() { awk -v s="$1" -v l=$L -v c=$C -v p=$P 'BEGIN { t = (p + l + c) / s; m = c; if (p > m) m = p; if (t > m) m = t; print m }'; }
# law 1, step 1: S = 1 and S = 4
for S in 1 4; do
  got=$(sed -n "s/^S = $S slots: period measured \([0-9.]*\);.*/\1/p" "$LOG")
  near "law 1: period with $S slot(s) (step 1)" "$got" "$(law $S)" 1e-9
done
# law 1 for 1..8 slots (step 3), law 2: overlap 0 with one slot, law 3: busy near 1 from 5 slots
for S in 1 2 3 4 5 6 7 8; do
  line=$(grep "^S = $S: overlap" "$LOG")
  near "law 1: period with $S slots (step 3)" "$(echo "$line" | sed -n 's/.*period \([0-9.]*\) (law.*/\1/p')" "$(law $S)" 0.001
  busy=$(echo "$line" | sed -n 's/.*busy \([0-9.]*\),.*/\1/p')
  [ "$S" -ge 5 ] && at_least "law 3: consumers busy with $S >= (p+L+c)/c = 4.25 slots" "$busy" 0.95
  [ "$S" -le 4 ] && at_least "law 3: not yet busy with $S slots (busy <= law c S/(p+L+c))" \
    "$(awk -v b="$busy" -v s=$S 'BEGIN { print 2 * s / 8.5 - b }')" 0
done
near "law 2: overlap with one slot" "$(sed -n 's/^S = 1: overlap \([0-9.]*\),.*/\1/p' "$LOG")" 0 0
grep -q "^overlap 0\.[0-9]*: the fraction" "$LOG" || fail "step 2 does not print the simulated overlap"
# the recorded GPU figures (step 8 without a GPU; the GPU's own steps with one)
if grep -q "^No GPU here" "$LOG"; then
  grep -q "^recorded: NVIDIA H100" "$LOG" || fail "the recorded figures do not name their device"
  for S in 1 2 4; do grep -q "^ws_gemm stages $S: .* of cuBLAS" "$LOG" || fail "no recorded ws_gemm with $S slots"; done
  at_least "recorded overlap with 4 slots above 1 slot's" "$(awk '/^stamps stages 4:/ { a = $5 } /^stamps stages 1:/ { b = $5 }
    END { print a - b }' FS='[ ,]+' "$LOG")" 0
  at_least "recorded empty-kernel launch (us)" "$(number 'empty kernel:')" 0.1
  grep -q "^MLP batch 64: .*equal: true" "$LOG" || fail "recorded modes of the MLP forward differ"
  grep -q "^saved batch 64: " "$LOG" || fail "no recorded ops x overhead saved"
  picture 19_recorded_bars.png
fi
for p in 19_sim_timeline.png 19_stages.png; do picture "$p"; done
finish
