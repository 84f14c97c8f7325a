# test_history.sh: ~/.chalk_history keeps lines (multi-line chunks whole) across runs.
TEST_NAME=history
. tests/repl/lib.sh
need_tmux
start_chalk || finish

type_line 'function hf()'
type_line '  return 9001'
type_line 'end'
wait_prompt
type_line 'histcheck = 31337'
wait_prompt
keys C-d
wait_for '^CHALK-EXITED 0$'
if grep -qF 'histcheck = 31337' "$TEST_HOME/.chalk_history"; then
  pass "~/.chalk_history holds the line"
else
  fail "~/.chalk_history lacks the line"
  cat "$TEST_HOME/.chalk_history" 2>/dev/null | sed 's/^/    /'
fi

start_chalk || finish
keys Up
expect "Up recalls the last line of the previous run" '^> histcheck = 31337$'
keys Enter
wait_prompt
type_line 'print(histcheck)'
expect "the recalled line runs" '^31337$'
keys Up Up Up
expect "a multi-line chunk comes back whole" '^> function hf\(\) *$'
keys Enter
wait_prompt
type_line 'print(hf())'
expect "the recalled function works" '^9001$'
finish
