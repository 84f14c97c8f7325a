# test_06_fusion.sh: lesson 6 runs unattended; kernels before/after fusion, the softmax's memory
# traffic unfused (~5MN read, ~3MN written) and fused (~MN in and out), and its pictures.
. tests/lessons/lib.sh
start_lesson 06_fusion
near "kernels before fusion" "$(number 'kernels launched before fusion:')" 4 0
near "kernels after fusion" "$(number 'kernels launched after fusion:')" 2 0
near "unfused softmax kernels" "$(number 'unfused softmax kernels:')" 5 0
near "unfused softmax reads (MN)" "$(number 'unfused softmax reads (in MN):')" 5 0.05
near "unfused softmax writes (MN)" "$(number 'unfused softmax writes (in MN):')" 3 0.05
near "fused softmax kernels" "$(number 'fused softmax kernels:')" 1 0
near "fused softmax reads (MN)" "$(number 'fused softmax reads (in MN):')" 1 0.05
near "fused softmax writes (MN)" "$(number 'fused softmax writes (in MN):')" 1 0.05
# beyond the last-level cache the ReLU tail's traffic falls from 9MN to 3MN (the law); the measured
# speed-up is printed beside it, but a timing is not a test on a shared machine (bench/ compares
# speeds side by side): the test checks that it was measured, a positive ratio
near "ReLU tail traffic unfused (MN)" "$(number 'ReLU tail: traffic unfused')" 9 0.01
near "ReLU tail traffic fused (MN)" "$(sed -n 's/^ReLU tail: traffic .*, fused \([0-9.]*\) MN.*/\1/p' "$LOG")" 3 0.01
at_least "ReLU tail fused speed-up measured" "$(sed -n 's/^ReLU tail: unfused .* ms: \([0-9.]*\)x$/\1/p' "$LOG")" 0.01
for p in 06_before.png 06_after.png 06_autotune.png; do picture "$p"; done
finish
