# test_02_autodiff.sh: lesson 2 runs unattended; f, its gradients and the finite differences.
. tests/lessons/lib.sh
start_lesson 02_autodiff
near "f(2, 5)" "$(number 'f(2, 5) =')" 11.652 0.0005
near "df/dx1" "$(number 'backward: df/dx1 =')" 5.5 0.00005
near "df/dx2" "$(number 'backward: df/dx2 =')" 1.716 0.0005
near "finite-difference df/dx1" "$(number 'finite differences: df/dx1 =')" 5.5 0.000001
near "finite-difference vs backward" "$(number 'largest difference:')" 0 0.000001
near "f64 weight finite difference vs backward" "$(number 'weight gradient difference:')" 0 0.00000001
for p in 02_f_before_backward.png 02_f_after_backward.png 02_f_forward_backward.png \
  02_mlp_forward.png 02_mlp_forward_backward.png; do picture "$p"; done
# before backward the graph says "not computed" for gradients, never 0 (viz writes the DOT beside)
finish
