# test_14_speculative.sh: lesson 14 runs unattended; greedy speculative output is the target's token
# for token; E measured with a controlled-acceptance draft sits on (1 - a^(g+1))/(1 - a) (3.36 at
# a = 0.8, g = 4); the sampled second token passes a chi-square test against the target's exact
# distribution; the speed-up law is printed from the measured a and c; its two pictures.
. tests/lessons/lib.sh
start_cached_lesson 14_speculative
grep -q '^identical: true' "$LOG" || fail "greedy speculative output differs from the target's"
[ "$(sed -n 's/^target alone: //p' "$LOG")" = "$(sed -n 's/^speculative:  //p' "$LOG")" ] ||
  fail "the two printed greedy outputs differ"
at_least "greedy tokens per target pass" "$(sed -n 's/.*: \([0-9.]*\) tokens per pass$/\1/p' "$LOG")" 1.2
sed -n 's/^ *\(0\.[0-9]\) *\([0-9]\) *\([0-9.]*\) *\([0-9.]*\)$/\1 \2 \3 \4/p' "$LOG" >"$TMP/law"
[ "$(wc -l <"$TMP/law")" -eq 6 ] || fail "the law table has $(wc -l <"$TMP/law") rows, expected 6"
while read -r a g e law; do
  near "law at a = $a, g = $g" "$law" "$(awk -v a="$a" -v g="$g" 'BEGIN { print (1 - a ^ (g + 1)) / (1 - a) }')" 0.001
  near "E measured at a = $a, g = $g" "$e" "$law" "$(awk -v l="$law" 'BEGIN { print 0.08 * l }')"
done <"$TMP/law"
near "law at a = 0.8, g = 4 is 3.36" "$(awk '$1 == "0.8" && $2 == "4" { print $4 }' "$TMP/law")" 3.362 0.001
chi=$(sed -n 's/^chi-square \([0-9.]*\) with \([0-9]*\) degrees of freedom.*/\1 \2/p' "$LOG")
[ -n "$chi" ] || fail "no chi-square line"
at_least "degrees of freedom" "$(echo "$chi" | cut -d' ' -f2)" 10
at_least "chi-square below its 0.1% critical value" \
  "$(echo "$chi" | awk '{ print $2 + 3.1 * sqrt(2 * $2) - $1 }')" 0
law=$(sed -n 's/^a = \([0-9.]*\), g = 4, c = \([0-9.]*\): law speed-up \([0-9.]*\)$/\1 \2 \3/p' "$LOG")
near "speed-up law from a and c" "$(echo "$law" | awk '{print $3}')" \
  "$(echo "$law" | awk '{ a = $1; c = $2; printf "%.2f", (1 - a ^ 5) / ((1 - a) * (4 * c + 1)) }')" 0.011
at_least "speed-up measured printed" "$(number 'speed-up measured')" 0.01
for p in 14_timeline.png 14_acceptance.png; do picture "$p"; done
finish
