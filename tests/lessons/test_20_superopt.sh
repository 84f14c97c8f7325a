# test_20_superopt.sh: lesson 20 runs unattended; the superoptimizer's search-space size per depth
# (measured, growing), every verified program equal to the original in floating point, a wrong
# candidate rejected, the chosen programs, the rule-based passes missing them, and the pictures.
LESSON=20_superopt
. tests/lessons/lib.sh
run_lesson || finish
fits_screen
# the per-depth table: generated counts grow by more than 5x per depth
rows=$(sed -n '/^depth  generated/,/^search space growth/p' "$LOG" | grep '^ *[0-9]')
[ "$(echo "$rows" | wc -l)" -eq 3 ] || fail "expected 3 depth rows, got: $rows"
g1=$(echo "$rows" | awk 'NR == 1 { print $2 }')
g2=$(echo "$rows" | awk 'NR == 2 { print $2 }')
g3=$(echo "$rows" | awk 'NR == 3 { print $2 }')
at_least "depth-1 programs" "$g1" 50
at_least "growth depth 2/1" "$(awk -v a="$g2" -v b="$g1" 'BEGIN { print a / b }')" 5
at_least "growth depth 3/2" "$(awk -v a="$g3" -v b="$g2" 'BEGIN { print a / b }')" 5
# each row's fates add up to what it generated
echo "$rows" | awk '{ if ($3 + $4 + $5 + $6 + $7 + $8 != $2) exit 1 }' || fail "a depth's fates do not add up"
near "growth printed for depth 2/1" "$(number 'search space growth depth 2/1:')" \
  "$(awk -v a="$g2" -v b="$g1" 'BEGIN { printf "%.1f", a / b }')" 0.05
# every verified program equal to the original in floating point; the wrong one rejected
grep -q '^verified 1: ((x \* g) @ W) / sqrt1 ' "$LOG" || fail "the chosen RMSNorm program is not ((x * g) @ W) / sqrt1"
sed -n 's/^verified [0-9]*:.*relative float error \([0-9.e+-]*\)$/\1/p' "$LOG" >"$TMP/errs"
[ -s "$TMP/errs" ] || fail "no verified programs printed"
while read -r e; do at_least "1e-9 - float error" "$(awk -v e="$e" 'BEGIN { print 1e-9 - e }')" 0; done <"$TMP/errs"
grep -q '^wrong candidate (x \* g) @ W: differs modulo P' "$LOG" || fail "the wrong candidate was not rejected"
# the chosen program moves fewer bytes and computes the same; both times measured
b0=$(sed -n 's/^original: [0-9]* kernels, \([0-9.]*\) MB moved.*/\1/p' "$LOG")
b1=$(sed -n 's/.*; chosen: [0-9]* kernels, \([0-9.]*\) MB moved/\1/p' "$LOG")
at_least "MB saved by the chosen program" "$(awk -v a="$b0" -v b="$b1" 'BEGIN { print a - b }')" 1
at_least "1e-3 - difference chosen vs original" "$(awk -v e="$(number 'largest difference chosen vs original:')" 'BEGIN { print 1e-3 - e }')" 0
at_least "original time measured (ms)" "$(number 'measured: original')" 0.001
grep -q -- '-> chosen (exp1 @ V) / sum(exp1) ' "$LOG" || fail "softmax: normalisation not moved past the matmul"
grep -q '^attention 1: Q @ (0.125 \* K)^T ' "$LOG" || fail "scores: the scale did not move onto K"
grep -q '^matmul chain: (A @ B) @ v .* -> A @ (B @ v) (262144 flops)' "$LOG" || fail "the chain was not reassociated"
# lesson 7's passes leave every subgraph's bytes as they were; the search reduces them
grep '^[a-z]* *passes:' "$LOG" | awk '{ if ($3 != $5 || $9 >= $5) exit 1 }' || fail "passes changed bytes, or the search did not beat them"
[ "$(grep -c '^[a-z]* *passes:' "$LOG")" -eq 4 ] || fail "expected 4 pass comparisons"
for p in 20_search.png 20_original.png 20_chosen.png; do picture "$p"; done
finish
