# test_11_zero.sh: lesson 11 runs unattended; the paper's example 120 / 31.4 / 16.6 / 1.9 GB; per-rank
# model states measured by the allocator equal 16P; 4P + 12P/N; 2P + 14P/N; 16P/N on the padded
# count, with the padding and comm buffer printed apart; every stage's losses equal stage 0's; bytes
# sent per step 2(N-1)/N Pp x 4; its picture.
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
near "losses vs stage 0" "$(number 'largest difference to stage 0:')" 0 0.001
picture 11_zero.png
finish
