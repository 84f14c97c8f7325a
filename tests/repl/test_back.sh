# test_back.sh: :back and :step N in lesson 02 show the numbers of the first pass (df/dx1 = 5.5,
# never 11 from a second backward on top of the first), by replaying steps 1..k-1 from the start.
TEST_NAME=back
. tests/repl/lib.sh
need_tmux
start_chalk --lesson 02_autodiff || finish
expect "step 1 shows" '^\[1/[0-9]+\] '
keys Enter
expect "step 2 shows" '^\[2/[0-9]+\] ' 10
keys Enter
expect "step 3: backward gives df/dx1 = 5.5" '^backward: df/dx1 = 5\.5000$' 10
keys Enter
expect "step 4 shows" '^\[4/[0-9]+\] ' 10
type_line ':back'
expect ":back replays steps 1-2 quietly from the start" "^\(running steps 1-2 quietly from the lesson's start\)" 10
expect_count ":back shows step 3 again with df/dx1 = 5.5" '^backward: df/dx1 = 5\.5000$' 2 10
type_line ':step 3'
expect_count ":step 3 on step 3 shows 5.5 a third time" '^backward: df/dx1 = 5\.5000$' 3 10
if screen | grep -q 'df/dx1 = 11'; then fail "a replayed step doubled the gradient"; screen_dump; else pass "no doubled gradient"; fi
type_line ':step 5'
expect ":step 5 forward runs step 4 quietly" '^\(running step 4 quietly to set up their state\)' 10
expect "finite differences agree" '^largest difference: ' 10
type_line 'x1.grad:item()'
expect "the state at the prompt is the replayed one" '^5\.5$' 5
finish
