# test_21_autoparallel.sh: lesson 21 runs unattended; column-then-row found at batch 16, the DP equal
# to brute force on every chain of 1 to 6 layers, the crossover to data parallel as the batch grows,
# predicted step time within 10% of the simulated workers; stage slicing by DP (bottleneck 9 against
# 13 for an even split, equal to brute force); its pictures.
LESSON=21_autoparallel
. tests/lessons/lib.sh
run_lesson || finish
fits_screen
grep -q '^batch 16, MLP 1024 -> 4096 -> 1024 on 4 ranks: column, row$' "$LOG" || fail "Megatron's split not found"
[ "$(grep -c 'f: input gradient\|g: partial sums' "$LOG")" -ge 2 ] || fail "f and g collectives not listed"
line=$(sed -n 's/^DP equals brute force: measured \([0-9]*\) of \([0-9]*\) chains.*/\1 \2/p' "$LOG")
[ -n "$line" ] && [ "${line% *}" = "${line#* }" ] && [ "${line#* }" -ge 30 ] || fail "DP vs brute force: $line"
grep -q '^batch     16: column+row ' "$LOG" || fail "small batch should be tensor parallel"
grep -q '^batch  65536: replicate+replicate ' "$LOG" || fail "large batch should be data parallel"
[ "$(grep -c '^batch .*predicted .*simulated' "$LOG")" -eq 7 ] || fail "7 batch sizes expected"
grep -q '^bottleneck 9; an even split by layer count (3,3,2,2): 13$' "$LOG" || fail "stage slicing"
line=$(sed -n 's/^slicing DP equals brute force: measured \([0-9]*\) of \([0-9]*\) chains.*/\1 \2/p' "$LOG")
[ -n "$line" ] && [ "${line% *}" = "${line#* }" ] && [ "${line#* }" -ge 40 ] || fail "slicing DP vs brute force: $line"
gap=$(number 'largest gap predicted vs simulated: measured')
near "predicted vs simulated (fraction)" "$gap" 0 0.1
for p in 21_plan.png 21_times.png; do picture "$p"; done
finish
