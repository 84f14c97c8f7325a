# test_interrupt.sh: Ctrl-C stops running code with state intact, clears the line at the prompt.
TEST_NAME=interrupt
. tests/repl/lib.sh
need_tmux
start_chalk || finish

type_line 'keep = 4242'
wait_prompt
type_line 'while true do end'
wait_for '^> while true do end$'
sleep 0.3
keys C-c
expect "Ctrl-C interrupts a running loop" 'interrupted!'
wait_prompt
type_line 'print(keep + 1)'
expect "state survives the interrupt" '^4243$'
type_line 'print(1 + 1000)'
expect "the next line works" '^1001$'

type_text 'abc'
wait_for '^> abc$'
keys C-c
wait_prompt
type_line 'print(3 * 333)'
expect "Ctrl-C at the prompt clears the line" '^999$'

type_line 'function unfinished('
wait_for '^>> ?$'
keys C-c
wait_prompt
type_line 'print(7 * 111)'
expect "Ctrl-C drops an unfinished chunk" '^777$'

type_line 'for i = 1, 1e12 do local s = tostring(i) end'
wait_for '^> for i = 1'
sleep 0.3
keys C-c
expect_count "Ctrl-C interrupts a loop calling functions" 'interrupted!' 2
keys C-d
expect "Ctrl-D exits cleanly" '^CHALK-EXITED 0$'
finish
