# test_11_zero.sh: lesson 11 runs unattended; the paper's example 120 / 31.4 / 16.6 / 1.9 GB; per-rank
# model states measured by the allocator equal 16P; 4P + 12P/N; 2P + 14P/N; 16P/N on the padded
# count, with the padding and comm buffer printed apart; every stage's losses equal stage 0's; bytes
# sent per step 2(N-1)/N Pp x 4; FSDP (stage 3 by modules): 16P/N, 3(N-1)/N Pp x 4 sent, the same
# losses, the gathered bytes live only around their module; its pictures.
LESSON=11_zero
. tests/lessons/lib.sh
run_lesson || finish
fits_screen
i=0
for gb in 120.0 31.4 16.6 1.9; do
  grep -Eq "^stage $i: .*= +$gb GB per rank" "$LOG" || fail "paper example stage $i: $gb GB not printed"
  i=$((i + 1))
done
for s in 0 1 2 3; do
  check_law "stage $s model states" "stage $s model states per rank" 0
  check_law "stage $s bytes sent" "stage $s bytes sent per rank per step" 0
done
near "stage 0 = 16 Pp (Pp = 20480)" "$(number 'stage 0 model states per rank: measured')" 327680 0
near "stage 3 = 16 Pp / 4" "$(number 'stage 3 model states per rank: measured')" 81920 0
grep -q '^P = 19210, Pp = 20480: padding 1270 elements; comm buffer 16384 bytes' "$LOG" || fail "padding line"
check_law "FSDP model states" "FSDP model states per rank" 0
check_law "FSDP bytes sent" "FSDP bytes sent per rank per step" 0
near "FSDP sends 3(N-1)/N Pp 4 (Pp = 24576)" "$(number 'FSDP bytes sent per rank per step: measured')" 221184 0
near "FSDP losses vs stage 0" "$(number 'FSDP losses vs stage 0: largest difference')" 0 0.001
grep -q '^g1 56K  g2 64K  F1 64K  x1 24K  F2 24K  x2 16K  g2 24K  g1 64K  B2 64K  x2 56K  B1 56K  x1 16K$' \
  "$LOG" || fail "FSDP timeline: gathered bytes live only around their module"
grep -q '^activations at the loss: [1-9][0-9]* bytes per rank' "$LOG" || fail "activations not measured"
near "losses vs stage 0" "$(number 'largest difference to stage 0:')" 0 0.001
picture 11_zero.png
picture 11_fsdp.png
finish
