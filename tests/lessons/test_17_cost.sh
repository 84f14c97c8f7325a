# test_17_cost.sh: lesson 17 runs unattended; the parameter count and the op table's training
# FLOPs beside 6ND (within 5%, the matmuls equal to 6N + attention), the decode step beside
# T(2N + 4LTd), KV bytes per token, MFU in (0, 1), spot waste beside lesson 16's law; its pictures.
LESSON=17_cost
. tests/lessons/lib.sh
run_lesson || finish
fits_screen
pc=$(sed -n 's/^parameters counted in the model: \([0-9]*\); law: \([0-9]*\).*/\1 \2/p' "$LOG")
near "parameters counted vs law" "${pc% *}" "${pc#* }" 0
ratio=$(number 'measured / 6ND:')
near "op table FLOPs / 6ND (within 5%)" "$ratio" 1 0.05
at_least "op table FLOPs / 6ND at least 1" "$ratio" 1
mm=$(sed -n 's/^matmul FLOPs \/ 6ND: *\([0-9.]*\); law (6N + 12LTd) \/ 6N = \([0-9.]*\).*/\1 \2/p' "$LOG")
near "matmul FLOPs / 6ND vs (6N + 12LTd) / 6N" "${mm% *}" "${mm#* }" 0.002
near "decode FLOPs / T(2N + 4LTd)" "$(sed -n 's/^decode step FLOPs: .*ratio \([0-9.]*\).*/\1/p' "$LOG")" 1 0.05
kv=$(sed -n 's/^KV cache: \([0-9]*\) bytes per token (law 2 L d \* 4 = \([0-9]*\)).*/\1 \2/p' "$LOG")
near "KV bytes per token" "${kv% *}" 2048 0
near "KV law" "${kv#* }" 2048 0
mfu=$(number 'MFU =')
at_least "MFU > 0" "$mfu" 0.001
at_least "MFU < 1" "$(awk -v m="$mfu" 'BEGIN { print 1 - m }')" 0
at_least "CPU peak GFLOP/s" "$(sed -n 's/^CPU peak (sgemm): \([0-9.]*\) GFLOP.*/\1/p' "$LOG")" 1
sw=$(sed -n 's/.*simulated spot waste \([0-9.]*\) %; law .* = \([0-9.]*\) %.*/\1 \2/p' "$LOG")
near "spot waste vs law (%)" "${sw% *}" "${sw#* }" 0.6
grep -q '^H100 80GB ' "$LOG" || fail "no H100 row in the cost table"
for p in 17_roofline.png 17_cost_table.png; do picture "$p"; done
finish
