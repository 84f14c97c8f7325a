# test_interrupt_c.sh: Ctrl-C during long C work (a backward of a long chain, a big matmul) is
# answered by the core's interrupt flag with the REPL, its globals and grad mode intact, and
# pressing Ctrl-C again and again never ends chalk.
TEST_NAME=interrupt_c
. tests/repl/lib.sh
need_tmux
start_chalk || finish

type_line 'print(chalk.randn and "HAVE" .. "CORE" or "NO" .. "CORE")'
if wait_for '^NOCORE$' 1; then skip "no core behind this binding (standalone)"; finish; fi

type_line 'keep = 4242'
wait_prompt
# 1,000 matmul+tanh nodes of 256x256: about a second or more of backward, all of it in C
type_line 'W = (chalk.randn(256, 256) * 0.05):requires_grad_(); h = chalk.randn(256, 256); for i = 1, 1000 do h = h:matmul(W):tanh() end; loss = h:sum(); h = nil; print("BUILT")'
expect "the chain is built" '^BUILT$' 60
wait_prompt 10
type_line 'loss:backward()'
wait_for '^> loss:backward\(\)$'
sleep 0.3
keys C-c
expect "Ctrl-C stops a backward inside C with the core's error" 'backward: interrupted' 30
wait_prompt 10
type_line 'print(keep + 1, chalk.is_grad_enabled())'
expect "globals and grad mode survive the interrupted backward" '^4243 +true$'
type_line 'W.grad = nil; loss = nil; (W * 2):sum():backward(); print("GRAD", W.grad.shape[1])'
expect "autograd works after the interrupt" '^GRAD +256$' 20
type_line 'W = nil; collectgarbage()'
wait_prompt 10

# a single big GEMM cannot stop half-way: five presses print a note but never end chalk
type_line 'a = chalk.randn(2500, 2500); for i = 1, 4 do local c = a:matmul(a) end; print("NOT-INTERRUPTED")'
wait_for '^> a = chalk.randn'
sleep 0.3
for i in 1 2 3 4 5; do keys C-c; sleep 0.1; done
expect "repeated Ctrl-C stops the loop once C returns" 'interrupted' 60
wait_prompt 10
type_line 'print(keep + 2)'
expect "chalk survives repeated Ctrl-C" '^4244$'
keys C-d
expect "Ctrl-D exits cleanly" '^CHALK-EXITED 0$'
finish
