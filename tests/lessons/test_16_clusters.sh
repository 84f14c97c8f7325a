# test_16_clusters.sh: lesson 16 runs unattended; the policies' numbers beside their laws (SRTF
# best with known durations, LAS close, FIFO's head-of-line blocking), cluster MTBF = m/N, the
# checkpoint sweep's optimum beside Young's and Daly's intervals, the killed run resumed
# bit-identically, both bit flips detected; its pictures.
LESSON=16_clusters
. tests/lessons/lib.sh
run_lesson || finish
fits_screen
# policies: SRTF beats SJF (it preempts), LAS within 40% of SRTF without knowing durations, FIFO far behind
at_least "sjf / srtf avg JCT (srtf best)" "$(awk -v r="$(number 'srtf / sjf avg JCT:')" 'BEGIN { print 1 / r }')" 1
near "las / srtf avg JCT" "$(number 'las / srtf avg JCT:')" 1.2 0.2
near "2d-las / srtf avg JCT" "$(number '2d-las / srtf avg JCT:')" 1.2 0.2
at_least "fifo / srtf avg JCT (head-of-line blocking)" "$(number 'fifo / srtf avg JCT:')" 3
for p in fifo sjf srtf las 2d-las; do
  u=$(sed -n "s/^$p *avg JCT.*utilization \([0-9.]*\).*/\1/p" "$LOG" | head -n 1)
  near "$p utilization" "$u" 0.3 0.1
done
# cluster MTBF = node MTBF / N (20000 simulated failures: within 3%)
mtbf=$(sed -n 's/^cluster MTBF measured \([0-9.]*\) h; law m \/ N = \([0-9.]*\) h.*/\1 \2/p' "$LOG")
near "cluster MTBF (h)" "${mtbf% *}" "${mtbf#* }" 0.72
near "law m / N (h)" "${mtbf#* }" 24 0
# Young and Daly against the simulated optimum, within the sweep's step (200 s) plus one
near "Young sqrt(2CM)" "$(number 'Young sqrt(2CM) =')" 3220 1
near "Daly" "$(sed -n 's/.*Daly = \([0-9]*\) s.*/\1/p' "$LOG" | head -n 1)" 3180 1
opt=$(number 'simulated optimum:')
near "simulated optimum vs Daly (s)" "$opt" 3180 400
near "simulated waste at the optimum (%)" "$(sed -n 's/^simulated optimum: .* waste \([0-9.]*\) %.*/\1/p' "$LOG")" 3.7 0.15
near "law's waste at Young (%)" "$(number "waste at Young's interval (law):")" 3.76 0.01
# the real kill: SIGKILL (137), resumed from a checkpoint, bit-identical
grep -q '^SIGKILL sent once the child printed step [0-9]*: exit status 137 = 128 + 9' "$LOG" || fail "the child was not killed by SIGKILL"
grep -q '^  child printed: resumed at step [0-9]*' "$LOG" || fail "the restarted child did not resume from a checkpoint"
grep -q '^final weights bit-identical to the uninterrupted run: true' "$LOG" || fail "resumed weights differ"
# silent data corruption
grep -q 'load ok: false' "$LOG" || fail "a flipped checkpoint bit loaded"
grep -q 'is corrupt: checksum mismatch' "$LOG" || fail "no checksum error for the flipped bit"
grep -q '^skipped steps on each rank: 3 | 3 | 3 | 3' "$LOG" || fail "the gradient flip was not caught at step 3 on every rank"
grep -q '^clean run skipped: 0 steps' "$LOG" || fail "the clean run skipped a step"
for p in 16_gantt.png 16_jct_cdf.png 16_las_demotions.png 16_checkpoint_ucurve.png; do picture "$p"; done
finish
