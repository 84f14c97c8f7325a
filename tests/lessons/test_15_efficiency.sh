# test_15_efficiency.sh: lesson 15 runs unattended; the MLP trains; quantization: every element
# within d/2, bytes and bits per format, scale 127/max|w|, weight bytes measured = params x bits/8,
# accuracy and perplexity deltas, q4 reads fewer bytes at batch 1; pruning zeroes exactly the share
# asked and the masks hold through fine-tuning (largest pruned |w| = 0), fine-tuning recovers accuracy;
# 2:4 keeps at most 2 of every 4; the distilled student beats the same student on labels alone;
# LoRA trainable r(d+k) against dk, initial output = base, gradients in A and B only, merged = unmerged
# (f64 within 1e-6), LoRA and QLoRA recover the shifted task; fine-tuning memory from the allocator against
# params x 4 bytes; MoE capacity = ceil(k x tokens / E x factor) and drops = the hand count per
# factor; aux loss 1 at a uniform router and E/2 for top-2 with one expert first; the MoE char GPT
# learns; its expert against active parameters; the pictures.
. tests/lessons/lib.sh
start_cached_lesson 15_efficiency
at_least "MLP test accuracy (%)" "$(number 'MLP: [0-9]* parameters, test accuracy')" 80
# quantization: "format bits/w bytes max_err largest_d/2 over" on the first layer (256 x 784)
sed -n 's/^\(int8\|int8_channel\|q8\|q4\) *\([0-9.]*\) *\([0-9]*\) *\([0-9.e+-]*\) *\([0-9.e+-]*\) *\([0-9]*\)$/\1 \2 \3 \4 \5 \6/p' \
  "$LOG" >"$TMP/quant"
[ "$(wc -l <"$TMP/quant")" -eq 4 ] || fail "round-trip table has $(wc -l <"$TMP/quant") rows, expected 4"
while read -r f bits bytes err bound over; do
  near "elements over d/2 ($f)" "$over" 0 0
  at_least "d/2 - max error ($f)" "$(awk -v b="$bound" -v e="$err" 'BEGIN { print b - e }')" 0
  case $f in # bytes: codes + steps; q4/q8 blocks of 32 (f16 step), 25 blocks per row of 784
  int8) want=$((256 * 784 + 4)) ;;
  int8_channel) want=$((256 * 784 + 4 * 256)) ;;
  q8) want=$((256 * 25 * 34)) ;;
  q4) want=$((256 * 25 * 18)) ;;
  esac
  near "bytes of $f" "$bytes" "$want" 0
  near "bits per weight of $f" "$bits" "$(awk -v b="$want" 'BEGIN { print b * 8 / (256 * 784) }')" 0.001
done <"$TMP/quant"
sc=$(sed -n 's/^int8 scale: measured \([0-9.]*\), law 127 \/ max|w| = 127 \/ [0-9.]* = \([0-9.]*\)$/\1 \2/p' "$LOG")
near "int8 scale vs 127 / max|w|" "${sc% *}" "${sc#* }" 0.001
# bytes measured vs params x bits / 8, accuracy and perplexity per format against f32
f32=$(sed -n 's/^f32  *\([0-9.]*\)% *\([0-9.]*\)$/\1 \2/p' "$LOG")
[ -n "$f32" ] || fail "the f32 row of the bits table is missing"
sed -n 's/^\(int8\|int8_channel\|q8\|q4\)  *\([0-9]*\)  *\([0-9]*\)  *\([0-9.]*\)% *\([0-9.]*\)$/\1 \2 \3 \4 \5/p' \
  "$LOG" >"$TMP/bits"
[ "$(wc -l <"$TMP/bits")" -eq 4 ] || fail "bits table has $(wc -l <"$TMP/bits") rows, expected 4"
while read -r f measured law a p; do
  case $f in q4 | q8) tol=0 ;; *) tol=$(awk -v l="$law" 'BEGIN { print 0.05 * l }') ;; esac
  near "GPT weight bytes measured vs params x bits / 8 ($f)" "$measured" "$law" "$tol"
  case $f in q4) da=3 dp=0.05 ;; *) da=1 dp=0.02 ;; esac
  near "MLP accuracy delta ($f)" "$a" "${f32% *}" "$da"
  near "perplexity relative delta ($f)" "$(awk -v p="$p" -v r="${f32#* }" 'BEGIN { print p / r - 1 }')" 0 "$dp"
done <"$TMP/bits"
ratio1=$(sed -n 's/^batch 1, q4: \([0-9.]*\)x the bytes of f32, [0-9.]*x its time: .*/\1/p' "$LOG")
near "q4 / f32 bytes read at batch 1" "$ratio1" 0.14 0.01
grep -q '^batch 256, q4: [0-9.]*x the bytes of f32, [0-9.]*x its time: \(the bytes win\|unpacking costs more\)' \
  "$LOG" ||
  fail "the batch-256 verdict on the dequantizing matmul is missing"
# sparsity table: "  S%  zeros  pruned%  tuned%  largest"
sed -n 's/^ *\([0-9]*\)% *\([0-9.]*\) *\([0-9.]*\)% *\([0-9.]*\)% *\([0-9.e+-]*\)$/\1 \2 \3 \4 \5/p' "$LOG" \
  >"$TMP/sparsity"
[ "$(wc -l <"$TMP/sparsity")" -eq 6 ] || fail "sparsity table has $(wc -l <"$TMP/sparsity") rows, expected 6"
while read -r s zeros pruned tuned largest; do
  near "share of zeros at $s%" "$zeros" "$(awk -v s="$s" 'BEGIN { print s / 100 }')" 0.001
  near "largest pruned |w| after fine-tuning at $s%" "$largest" 0 0
  [ "$s" -ge 70 ] && at_least "fine-tuned - pruned accuracy at $s%" "$(awk -v a="$tuned" -v b="$pruned" 'BEGIN { print a - b }')" 5
done <"$TMP/sparsity"
near "2:4 sparsity" "$(number '2:4: sparsity')" 0.5 0
near "most nonzeros in a group of 4" "$(number 'most nonzeros in a group of 4 after fine-tuning:')" 2 0
alone=$(number 'student on labels alone:')
taught=$(number 'student distilled (T = 4, a = 0.9):')
at_least "distilled - labels-alone accuracy (points)" "$(awk -v a="$taught" -v b="$alone" 'BEGIN { print a - b }')" 1
# LoRA counts: "LoRA DxK: A RxK + B DxR = N = r(d+k); W = M = dk"
sed -n 's/^LoRA \([0-9]*\)x\([0-9]*\): A \([0-9]*\)x[0-9]* + B [0-9]*x[0-9]* = \([0-9]*\) = r(d+k); W = \([0-9]*\) = dk$/\1 \2 \3 \4 \5/p' \
  "$LOG" >"$TMP/lora"
[ "$(wc -l <"$TMP/lora")" -eq 2 ] || fail "LoRA count lines: $(wc -l <"$TMP/lora"), expected 2"
sum=0
while read -r d k r n m; do
  near "r(d+k) for $d x $k" "$n" "$((r * (d + k)))" 0
  near "dk for $d x $k" "$m" "$((d * k))" 0
  sum=$((sum + n))
done <"$TMP/lora"
near "trainable = sum of r(d+k)" "$(number 'trainable')" "$sum" 0
near "initial LoRA output - base" "$(number 'initial output - base output: max')" 0 0
[ "$(grep -c 'base\.[a-z]* .* no gradient$' "$LOG")" -eq 4 ] || fail "the 4 frozen tensors should have no gradient"
[ "$(grep -c '^[13]\.[AB] .* gradient, ' "$LOG")" -eq 4 ] || fail "A and B of both layers should have gradients"
shifted=$(number 'trained MLP on shifted images:')
at_least "LoRA - base accuracy on the shifted task" "$(awk -v a="$(number 'LoRA r = 8 ( *[0-9]* trained):')" \
  -v b="$shifted" 'BEGIN { print a - b }')" 30
at_least "QLoRA - base accuracy on the shifted task" "$(awk -v a="$(number 'QLoRA r = 8 on a q4 base:')" \
  -v b="$shifted" 'BEGIN { print a - b }')" 30
near "f64 merged - unmerged" "$(number 'f64: merged - unmerged, 10000 images: max')" 0 1e-6
f32=$(sed -n 's/^f32: merged - unmerged, 10000 images: max \([0-9.e+-]*\) (logits up to \([0-9.]*\))$/\1 \2/p' "$LOG")
near "f32 merged - unmerged, relative to the logits" "$(echo "$f32" | awk '{ print $1 / $2 }')" 0 1e-5
# memory (KiB): full gradients = params x 4 bytes, Adam state = 2 x that; LoRA's = its trainable values
params=$(number 'MLP:')
full=$(sed -n 's/^full  *\([0-9.]*\) *\([0-9.]*\) *\([0-9.]*\) *\([0-9.]*\)$/\1 \2 \3 \4/p' "$LOG")
lora=$(sed -n 's/^lora  *\([0-9.]*\) *\([0-9.]*\) *\([0-9.]*\) *\([0-9.]*\)$/\1 \2 \3 \4/p' "$LOG")
near "full fine-tuning gradients (KiB)" "$(echo "$full" | cut -d' ' -f2)" "$(awk -v p="$params" 'BEGIN { print p * 4 / 1024 }')" 0.1
near "full fine-tuning Adam state (KiB)" "$(echo "$full" | cut -d' ' -f3)" "$(awk -v p="$params" 'BEGIN { print p * 8 / 1024 }')" 0.1
near "LoRA gradients (KiB)" "$(echo "$lora" | cut -d' ' -f2)" "$(awk -v p="$sum" 'BEGIN { print p * 4 / 1024 }')" 0.1
qlora=$(sed -n 's/^qlora  *\([0-9.]*\) *\([0-9.]*\) *\([0-9.]*\) *\([0-9.]*\)$/\1 \2 \3 \4/p' "$LOG")
near "QLoRA gradients = LoRA's (KiB)" "$(echo "$qlora" | cut -d' ' -f2)" "$(echo "$lora" | cut -d' ' -f2)" 0
at_least "LoRA / QLoRA parameter bytes" "$(awk -v l="${lora%% *}" -v q="${qlora%% *}" 'BEGIN { print l / q }')" 4
near "LoRA Adam state (KiB)" "$(echo "$lora" | cut -d' ' -f3)" "$(awk -v p="$sum" 'BEGIN { print p * 8 / 1024 }')" 0.1
# MoE: "factor capacity dropped hand"
sed -n 's/^ *\([0-9]\.[0-9][0-9]\)  *\([0-9][0-9]*\)  *\([0-9][0-9]*\)  *\([0-9][0-9]*\)$/\1 \2 \3 \4/p' "$LOG" \
  >"$TMP/moe"
[ "$(wc -l <"$TMP/moe")" -eq 3 ] || fail "MoE table has $(wc -l <"$TMP/moe") rows, expected 3"
prev=99999
while read -r f cap dropped hand; do
  near "capacity at factor $f" "$cap" "$(awk -v f="$f" 'BEGIN { c = 2 * 1024 / 8 * f; print (c == int(c)) ? c : int(c) + 1 }')" 0
  near "drops vs hand count at factor $f" "$dropped" "$hand" 0
  at_least "drops fall as the factor grows ($f)" "$((prev - dropped))" 0
  prev=$dropped
done <"$TMP/moe"
at_least "drops at factor 1.0" "$(head -n 1 "$TMP/moe" | cut -d' ' -f3)" 1
near "aux loss at a uniform router" "$(number 'uniform router (W_r = 0): aux =')" 1 1e-6
near "aux loss, one expert first (top-2)" "$(number "expert 1 is every token's first choice: aux =")" 4 1e-3
pc=$(sed -n 's/^per layer: experts \([0-9]*\) parameters, used per token \([0-9]*\) .*/\1 \2/p' "$LOG")
at_least "MoE parameters / active per token" "$(echo "$pc" | awk '{ print $1 / $2 }')" 3.5
val=$(sed -n 's/^validation loss: MoE \([0-9.]*\), dense \([0-9.]*\) nats\/char$/\1 \2/p' "$LOG")
at_least "dense + 0.2 - MoE validation loss" "$(echo "$val" | awk '{ print $2 + 0.2 - $1 }')" 0
for p in 15_q4_histogram.png 15_bits_error.png 15_bits_perplexity.png 15_sparsity.png \
  15_lora_graph.png 15_moe_tokens.png; do picture "$p"; done
finish
