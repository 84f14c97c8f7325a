# test_complete.sh: Tab completes globals, fields (nested), userdata methods, chalk fields, :commands.
TEST_NAME=complete
. tests/repl/lib.sh
need_tmux
start_chalk || finish

type_line 'foo = {alpha=1, alpine=2, sub={inner={deep=31415}}}'
wait_prompt
type_text 'foo.al'
keys Tab
expect "Tab fills in the common prefix" '^> foo\.alp *$'
keys Tab
expect "a second Tab lists the fields" '^alpha +alpine *$'
keys C-u
type_text 'foo.sub.inner.de'
keys Tab Enter
expect "nested fields complete" '^31415$'

type_text 'pri'
keys Tab
type_line '(2718)'
expect "globals complete" '^2718$'

type_text ':lesson ex'
keys Tab
expect "lesson names complete after :lesson" '^> :lesson example *$'
keys C-u
type_text ':he'
keys Tab
expect "colon commands complete" '^> :help *$'
keys C-u

type_line 'f = io.stdout'
wait_prompt
type_text 'f:se'
keys Tab
expect "methods of a userdata (metatable __index table)" '^seek +setvbuf *$'
keys C-u

type_line 'print(type(chalk) == "table" and chalk.tensor and "HAS".."TENSOR" or "NO".."TENSOR")'
if wait_for '^(HAS|NO)TENSOR$' && screen | grep -q '^HASTENSOR$'; then
  type_line 'x = chalk.tensor{{1,2},{3,4}}'
  wait_prompt
  type_text 'x:su'
  keys Tab
  expect "tensor methods complete (x:su -> sum)" '(^> x:sum|(^| )sum( |$))'
  keys C-u
  type_text 'x.sha'
  keys Tab
  expect "tensor fields complete (x.sha -> shape, from __fields)" '^> x\.shape *$'
  keys C-u
else
  skip "chalk.tensor is not there: tensor methods not tried"
fi

type_line 'print(type(chalk) == "table" and chalk.rand and "HAS".."RAND" or "NO".."RAND")'
if wait_for '^(HAS|NO)RAND$' && screen | grep -q '^HASRAND$'; then
  type_text 'chalk.ra'
  keys Tab Tab
  expect "chalk.ra<Tab> offers chalk's fields" '(^| )rand( |$)'
  keys C-u
else
  skip "chalk.rand is not there: chalk.ra<Tab> not tried"
fi
finish
