# test_multiline.sh: incomplete chunks continue at ">> "; bare expressions print, tab-separated.
TEST_NAME=multiline
. tests/repl/lib.sh
need_tmux
start_chalk || finish

type_line 'function sq(n)'
expect "an open function asks for more" '^>> ?$'
type_line '  return n * n'
type_line 'end'
wait_prompt
type_line 'print(sq(12))'
expect "the multi-line function runs" '^144$'
type_line 'sq(5), sq(6)'
expect "a bare expression prints its values, tab-separated" '^25 +36$'
type_line 't = {'
type_line '  10, 20,'
type_line '}'
wait_prompt
type_line '#t + 300'
expect "a multi-line table constructor" '^302$'
type_line '"a" .. "b" .. "c"'
expect "a bare string prints" '^abc$'
finish
