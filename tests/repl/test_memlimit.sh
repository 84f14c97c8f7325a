# test_memlimit.sh: an allocation above the memory limit is a clean error and the REPL goes on
# (chalk.arange(-2^31, -1) is 16 GiB: it used to meet the kernel's OOM killer; issue 14).
TEST_NAME=memlimit
. tests/repl/lib.sh
need_tmux
# the limit from the environment, so the case is the same on a machine with more than 32 GiB
CHALK_MAX_ALLOC=2G
export CHALK_MAX_ALLOC
start_chalk || finish

type_line 'x = chalk.arange(-2^31, -1)'
expect "a huge arange is refused" 'arange: out of memory: shape \[2147483647\] of f32 needs 8 GiB'
expect "naming the limit" 'above the limit of 2 GiB \(2147483648 bytes\)'
type_line 'print(chalk.memory_limit())'
expect "CHALK_MAX_ALLOC set the limit" '^2147483648$'
type_line 'y = chalk.zeros(2^16, 2^16)'
expect "a 16 GiB zeros is refused" 'out of memory: shape \[65536,65536\] of f32'
type_line 'print(chalk.ones(3):sum():item())'
expect "the REPL goes on" '^3(\.0)?$'
type_line ':quit'
expect ":quit exits cleanly" '^CHALK-EXITED 0$'
finish
