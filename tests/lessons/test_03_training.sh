# test_03_training.sh: lesson 3 on a 3000-image subset (3 epochs): the loss starts near ln 10,
# the model learns (>= 70% test accuracy on the subset; the full lesson reaches >= 85%), and the
# profile, memory timeline and loss curve pictures exist.
. tests/lessons/lib.sh
start_lesson 03_training CHALK_LESSON_SUBSET=3000
near "initial loss" "$(number 'before training: loss')" 2.303 0.3
at_least "subset test accuracy" "$(number 'final test accuracy')" 70
grep -q "matmul" "$LOG" || fail "the profile table does not list matmul"
for p in 03_step_trace.png 03_step_memory.png 03_loss_curve.png; do picture "$p"; done
finish
