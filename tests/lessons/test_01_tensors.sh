# test_01_tensors.sh: lesson 1 runs unattended; views copy 0 bytes, contiguous() numel*itemsize.
LESSON=01_tensors
. tests/lessons/lib.sh
run_lesson || finish
near "transpose copied" "$(number 'transpose copied')" 0 0
near "narrow + select copied" "$(number 'narrow + select copied')" 0 0
near "expand copied" "$(number 'expand copied')" 0 0
near "x + b allocated" "$(number 'x + b allocated')" 48 0
near "y:contiguous() copied" "$(number 'y:contiguous() copied')" 48 0
near "x:contiguous() copied" "$(number 'x:contiguous() copied')" 0 0
near "big.T:contiguous()" "$(number 'big.T:contiguous():')" 4000000 0
for p in 01_storage.png 01_transpose.png 01_narrow.png 01_expand.png 01_contiguous.png; do picture "$p"; done
finish
