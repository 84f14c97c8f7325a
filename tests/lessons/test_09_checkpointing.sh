# test_09_checkpointing.sh: lesson 9 runs unattended; sqrt(n) segments cut the activation peak at
# least 2x for at most about one extra forward, with gradients identical; its pictures.
. tests/lessons/lib.sh
start_lesson 09_checkpointing
at_least "activation peak reduction" "$(number 'activation peak reduction with sqrt(n) segments:')" 2
extra=$(number 'extra forwards computed with sqrt(n) segments:')
near "extra forwards" "$extra" 0.75 0.3
near "gradient difference" "$(number 'largest gradient difference to store-all:')" 0 0
# the sweep beside its law: every k's peak within 15% of (k + n/k) activations, smallest near sqrt(n)
sed -n 's/^k = *\([0-9]*\): activation peak *\([0-9.]*\) MiB, law .* = *\([0-9.]*\) MiB, extra forwards \([0-9.]*\).*/\1 \2 \3 \4/p' "$LOG" >"$TMP/sweep"
[ "$(wc -l <"$TMP/sweep")" -eq 7 ] || fail "the sweep printed $(wc -l <"$TMP/sweep") rows, expected 7"
while read -r k peak law extra; do
  near "k = $k peak vs law (MiB)" "$peak" "$law" "$(awk -v l="$law" 'BEGIN { print 0.15 * l }')"
  at_least "k = $k extra forwards at most 1.05" "$(awk -v e="$extra" 'BEGIN { print 1.05 - e }')" 0
done <"$TMP/sweep"
kmin=$(sort -k2 -g "$TMP/sweep" | head -n 1 | cut -d' ' -f1)
near "k of the smallest peak (sqrt(32) = 5.7)" "$kmin" 6 2
for p in 09_timelines.png 09_memory_vs_segments.png 09_memory_vs_time.png; do picture "$p"; done
finish
