# test_help.sh: help(f), :help NAME and the nil-call "did you mean" line, typed as a student would.
TEST_NAME=help
. tests/repl/lib.sh
need_tmux

# every entry of the help table names something this build has (lua/chalk/help.lua)
missing=$("$CHALK" -e 'local h = require "chalk.help"
  local bad = {} for _, e in ipairs(h.entries) do if not h.exists(e) then bad[#bad + 1] = e.name end end
  print(#h.entries .. " entries; missing: " .. table.concat(bad, " "))' 2>&1)
case $missing in
*"missing: ") pass "every help entry exists ($missing)" ;;
*) fail "help entries name what this build lacks: $missing" ;;
esac

start_chalk || finish
type_line 'help(chalk.randn)'
expect "help(chalk.randn) describes it" '^chalk\.randn: Standard normal'
expect "with its signature" '^  chalk\.randn\(d1, d2'
expect "and an example" '^  example: chalk\.manual_seed'
type_line ':help viz.step'
expect ":help viz.step" '^viz\.step: Backprop one node at a time'
type_line ':help matmul'
expect ":help matmul finds the tensor method" '^x:matmul: Matrix product'
expect "an op's help has its gradient" '^  gradient: '
type_line 'help(nn.Linear)'
expect "help of a class" '^nn\.Linear: y = x W\^T \+ b'
type_line ':help softmx'
expect "a misspelt name gets the nearest" 'no help for "softmx"; did you mean x:softmax'
type_line 'x = chalk.randn(3, 4)'
type_line 'x:zzyzx(2)'
expect "a missing method with no near name points at :help ops" "^no method 'zzyzx': not in chalk; see :help ops"
type_line ':help topk'
expect ":help of a PyTorch name (issue 15)" '^x:topk: The k largest'
type_line 'x:sofmax(1)'
expect "a misspelt method suggests the nearest" "^no method 'sofmax'; did you mean softmax\?"
type_line 'chalk.rnadn(2)'
expect "swapped letters in a function of chalk" "^no field 'rnadn'; did you mean randn\?"
type_line 'prof = chalk.profile(function() for i = 1, 3 do (x + 1):relu():exp():sum() end end)'
type_line 'prof:print{top = 2}'
expect "prof:print{top=2} keeps two ops and counts the rest" '^\.\.\. 2 more ops \(prof:print\(\) lists them all\)'
finish
