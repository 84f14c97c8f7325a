# test_13_serving.sh: lesson 13 runs unattended; the CharGPT beats the unigram baseline; KV bytes per
# token measured = 2 L H d x 4; decode FLOPs per token flat with the cache and growing without;
# paged attention = dense; continuous beats static on throughput and latency with the same tokens;
# preemption keeps the tokens; paged waste <= block_size - 1 per sequence and far under the
# reservation's; the prefix cache hits; its four pictures.
. tests/lessons/lib.sh
start_cached_lesson 13_serving
val=$(sed -n 's/^validation loss: \([0-9.]*\) nats\/char (unigram baseline \([0-9.]*\))/\1 \2/p' "$LOG")
at_least "unigram - validation loss (nats)" "$(echo "$val" | awk '{print $2 - $1}')" 0.4
kv=$(number 'KV bytes per token measured:')
law=$(sed -n 's/^law 2 L H d x 4 = 2 x \([0-9]*\) x \([0-9]*\) x \([0-9]*\) x 4 = \([0-9]*\)$/\1 \2 \3 \4/p' "$LOG")
near "KV bytes per token vs law" "$kv" "$(echo "$law" | awk '{print 2 * $1 * $2 * $3 * 4}')" 0
near "printed law" "$(echo "$law" | awk '{print $4}')" "$kv" 0
# FLOPs per token: with the cache within 5% of its value at 8 tokens; without, the ratio grows ~ n/2
sed -n 's/^ *\([0-9][0-9]*\) *\([0-9][0-9]*\) *\([0-9][0-9]*\) *\([0-9.][0-9.]*\)$/\1 \2 \3 \4/p' "$LOG" >"$TMP/decode"
[ "$(wc -l <"$TMP/decode")" -eq 3 ] || fail "decode table has $(wc -l <"$TMP/decode") rows, expected 3"
first=$(head -n 1 "$TMP/decode" | cut -d' ' -f2)
while read -r n with without ratio; do
  near "FLOPs/token with cache at n = $n" "$with" "$first" "$(awk -v f="$first" 'BEGIN { print 0.05 * f }')"
  at_least "ratio without/with at n = $n grows with n" "$ratio" "$(awk -v n="$n" 'BEGIN { print n / 2 }')"
done <"$TMP/decode"
near "paged vs dense" "$(number 'paged vs dense, 10 tokens in 3 blocks: max difference')" 0 1e-5
grep -q '^gradient: no gradient' "$LOG" || fail "the paged_attention row should say it has no gradient"
st=$(sed -n 's/^static *\([0-9]*\) *\([0-9]*\) tok\/s *\([0-9.]*\) *\([0-9.]*\) .*/\1 \2 \3 \4/p' "$LOG")
co=$(sed -n 's/^continuous *\([0-9]*\) *\([0-9]*\) tok\/s *\([0-9.]*\) *\([0-9.]*\) .*/\1 \2 \3 \4/p' "$LOG")
[ -n "$st" ] && [ -n "$co" ] || fail "the batching table is missing"
at_least "continuous / static throughput" "$(echo "$st $co" | awk '{print $6 / $2}')" 1.1
at_least "static / continuous mean latency" "$(echo "$st $co" | awk '{print $3 / $7}')" 1.1
at_least "static / continuous p99 latency" "$(echo "$st $co" | awk '{print $4 / $8}')" 1.1
grep -q '^same tokens per request: true' "$LOG" || fail "static and continuous should give the same tokens"
inv=$(sed -n 's/^after step 12: free \([0-9]*\) + evictable \([0-9]*\) + in use \([0-9]*\) = total \([0-9]*\)$/\1 \2 \3 \4/p' "$LOG")
near "free + evictable + in use - total" "$(echo "$inv" | awk '{print $1 + $2 + $3 - $4}')" 0 0
at_least "preemptions with 20 blocks" "$(number 'preemptions:')" 1
grep -q 'tokens equal to the 96-block run: true' "$LOG" || fail "preemption changed the tokens"
maxw=$(number 'largest paged waste of one sequence:')
at_least "block_size - 1 - largest paged waste" "$((3 - ${maxw:-99}))" 0
at_least "contiguous / paged waste" "$(awk -v c="$(number 'contiguous waste (reserved + internal):')" \
  -v p="$(number 'paged waste (empty slots, last blocks):')" 'BEGIN { print c / p }')" 3
at_least "prefix hit rate" "$(number 'prefix hit rate:')" 0.5
for p in 13_gantt.png 13_blocks.png 13_waste.png 13_radix.png; do picture "$p"; done
finish
