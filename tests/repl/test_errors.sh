# test_errors.sh: errors print with a short traceback and the REPL goes on; colon commands.
TEST_NAME=errors
. tests/repl/lib.sh
need_tmux
start_chalk || finish

type_line 'error("boom")'
expect "an error prints its message" '^stdin:1: boom$'
expect "with a traceback" '^stack traceback:$'
type_line 'print(6 * 7)'
expect "a working line after the error" '^42$'
type_line 'nil + 1'
expect "a runtime error" 'attempt to perform arithmetic on a nil value'
type_line 'x ='
wait_for '^>> ?$'
type_line '= 2'
expect "a syntax error" "unexpected symbol near '='"
type_line 'print(6 * 8)'
expect "the REPL goes on" '^48$'
if screen | grep -q 'in ?'; then fail "the traceback shows the REPL's own C frames"; screen_dump; else pass "no REPL frames in the traceback"; fi

type_line ':help'
expect ":help lists the commands" '^ +:lesson NAME '
expect ":help lists the flags" 'chalk --lesson NAME'
type_line ':nope'
expect "an unknown command says so" 'unknown command :nope'
type_line ':mem'
expect ":mem answers" '(^ +total |not available|no live tensors)'
type_line 'chalk.on_picture("some/picture.png")'
expect "chalk.on_picture announces a picture" '^picture: some/picture\.png$'
type_line ':show'
expect_count ":show shows it again" '^picture: some/picture\.png$' 2
type_line ':quit'
expect ":quit exits cleanly" '^CHALK-EXITED 0$'
finish
