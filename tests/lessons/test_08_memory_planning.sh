# test_08_memory_planning.sh: lesson 8 runs unattended; on a 16-layer MLP step the planned peak is
# well under the naive sum and not under the live lower bound; its pictures.
. tests/lessons/lib.sh
start_lesson 08_memory_planning
naive=$(number 'naive sum of tensors:')
planned=$(number 'planned peak:')
lower=$(number 'live lower bound:')
at_least "naive / planned" "$(awk -v a="$naive" -v b="$planned" 'BEGIN { print a / b }')" 3
at_least "planned - lower bound (MiB)" "$(awk -v a="$planned" -v b="$lower" 'BEGIN { print a - b }')" 0
# in-place reuse never makes the plan worse (the ratio printed beside its law), and it happens
ratio=$(sed -n 's/^in-place allowed \/ without: \([0-9.]*\).*/\1/p' "$LOG")
near "in-place / without (at most 1)" "$ratio" 0.5 0.5
at_least "greedy in-place tensors fewer than without" \
  "$(($(sed -n 's/^without in-place *\([0-9]*\) tensors.*/\1/p' "$LOG") - $(sed -n 's/^greedy, in place *\([0-9]*\) tensors.*/\1/p' "$LOG")))" 1
for p in 08_lifetimes.png 08_arena.png; do picture "$p"; done
finish
