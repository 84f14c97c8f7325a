# test_lesson.sh: :lesson example steps with :next, Enter, :back and :step; state reaches the prompt.
TEST_NAME=lesson
. tests/repl/lib.sh
need_tmux
start_chalk || finish

type_line ':lessons'
expect ":lessons lists the example" '^ +example +.*A first look'
type_line ':lesson example'
expect "the first step shows" '^\[1/[0-9]+\] '
expect "the lesson prompt" '^lesson 1/[0-9]+>'
type_line ':next'
expect ":next shows step 2" '^\[2/[0-9]+\] '
keys Enter
expect "Enter shows step 3" '^\[3/[0-9]+\] '
type_line 'print(#squares + 100)'
expect "Lua typed mid-lesson sees the lesson's state" '^105$'
type_line ':back'
expect_count ":back shows step 2 again" '^\[2/[0-9]+\] ' 2
type_line ':step 1'
expect_count ":step 1 jumps" '^\[1/[0-9]+\] ' 2
type_line ':step 99'
expect ":step out of range says so" '^no step 99'
type_line ':step 5'
expect "the last step says so" '^\(last step'
keys Enter
expect "Enter after the last step ends the lesson" '^end of lesson'
wait_prompt
type_line 'print(x ~= nil and y ~= nil)'
expect "the lesson's state stays at the prompt" '^true$'

start_chalk --lesson example --step 2 || finish
expect "chalk --lesson NAME --step 2 starts at step 2" '^\[2/[0-9]+\] '
expect "and waits at the lesson prompt" '^lesson 2/[0-9]+>'
finish
