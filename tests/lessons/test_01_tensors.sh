# test_01_tensors.sh: lesson 1 runs unattended; views copy 0 bytes, contiguous() numel*itemsize.
. tests/lessons/lib.sh
start_lesson 01_tensors
near "transpose copied" "$(number 'transpose copied')" 0 0
near "narrow + select copied" "$(number 'narrow + select copied')" 0 0
near "expand copied" "$(number 'expand copied')" 0 0
near "x + b allocated" "$(number 'x + b allocated')" 48 0
near "y:contiguous() copied" "$(number 'y:contiguous() copied')" 48 0
near "x:contiguous() copied" "$(number 'x:contiguous() copied')" 0 0
near "big.T:contiguous()" "$(number 'big.T:contiguous():')" 4000000 0
near "law: numel * itemsize" "$(sed -n 's/^big.T:contiguous(): .*numel \* itemsize = \([0-9]*\)$/\1/p' "$LOG")" 4000000 0
at_least "warm copy bandwidth (GB/s)" "$(sed -n 's/^warm copy: .* ms, \([0-9.]*\) GB\/s.*/\1/p' "$LOG")" 0.5
for p in 01_storage.png 01_transpose.png 01_narrow.png 01_expand.png 01_contiguous.png; do picture "$p"; done
finish
