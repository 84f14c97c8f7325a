# test_cli.sh: the command line: scripts, -e, stdin, --lesson --auto, --lessons, --out, flags.
TEST_NAME=cli
. tests/repl/lib.sh
T=$TEST_HOME

# check NAME COMMAND...: PASS when the command succeeds.
check() {
  _name=$1
  shift
  if "$@"; then pass "$_name"; else fail "$_name"; fi
}

out=$("$CHALK" --version)
check "--version" [ "${out#chalk 0.1.0 (Lua 5.4}" != "$out" ]
"$CHALK" --help >"$T/out"
check "--help exits 0" [ $? -eq 0 ]
check "--help names the flags" grep -q -- '--lesson NAME' "$T/out"
"$CHALK" --no-such-flag >/dev/null 2>&1
check "an unknown flag exits 1" [ $? -eq 1 ]

out=$("$CHALK" -e 'print(40 + 2)')
check "-e runs code" [ "$out" = 42 ]
"$CHALK" -e 'x = = 1' >/dev/null 2>&1
check "-e with an error exits 1" [ $? -eq 1 ]

printf 'print(arg[0], arg[1], arg[2], select("#", ...))\n' >"$T/args.lua"
out=$("$CHALK" "$T/args.lua" one two)
check "a script gets arg and ..." [ "$out" = "$(printf '%s\tone\ttwo\t2' "$T/args.lua")" ]

printf 'local x = 1\nerror("script failed here")\n' >"$T/bad.lua"
"$CHALK" "$T/bad.lua" >"$T/out" 2>"$T/err"
status=$?
check "a script error exits 1" [ $status -eq 1 ]
check "the message goes to stderr" grep -q 'bad.lua:2: script failed here' "$T/err"
check "and nothing to stdout" [ ! -s "$T/out" ]

out=$(printf 'y = 6\nprint(y * 7)\n' | "$CHALK")
check "stdin that is not a terminal runs as a script" [ "$out" = 42 ]

"$CHALK" --lesson example --auto >"$T/out" 2>&1
check "--lesson example --auto exits 0" [ $? -eq 0 ]
check "--auto runs every step" grep -q '^\[[0-9]*/[0-9]*\] Your turn' "$T/out"
"$CHALK" --lesson example --step 3 --auto >"$T/out" 2>&1
check "--step 3 --auto exits 0 (steps 1-2 run quietly)" [ $? -eq 0 ]
check "--step 3 starts at step 3" grep -q '^\[3/' "$T/out"
if grep -q '^\[1/' "$T/out"; then fail "--step 3 shows step 1"; else pass "--step 3 skips showing step 1"; fi

cat >"$T/broken.lua" <<'LESSON'
return { title = "broken", steps = {
  { title = "fine", code = [[print("fine")]] },
  { title = "fails", code = [[error("step two breaks")]] },
  { title = "never", code = [[print("never")]] } } }
LESSON
"$CHALK" --lesson "$T/broken.lua" --auto >"$T/out" 2>"$T/err"
check "a failing step in --auto exits 1" [ $? -eq 1 ]
check "with the error on stderr" grep -q 'step two breaks' "$T/err"
if grep -q '^never$' "$T/out"; then fail "--auto went on after a failure"; else pass "--auto stops at the failure"; fi
"$CHALK" --lesson no_such_lesson --auto >/dev/null 2>&1
check "a missing lesson exits 1" [ $? -eq 1 ]

out=$(cd "$T" && CHALK_LESSONS="$REPO/lessons" "$CHALK" --lessons)
check "--lessons finds \$CHALK_LESSONS from any directory" [ "${out#*example}" != "$out" ]

out=$(cd "$T" && "$CHALK" --out pics/run1 -e 'print(chalk.out_dir, os.getenv("CHALK_OUT"))')
check "--out creates the directory" [ -d "$T/pics/run1" ]
check "--out sets chalk.out_dir and CHALK_OUT" [ "$out" = "$(printf 'pics/run1\tpics/run1')" ]
out=$(cd "$T" && CHALK_OUT=elsewhere "$CHALK" -e 'print(chalk.out_dir)')
check "\$CHALK_OUT is the default" [ "$out" = elsewhere ]

out=$(TERM=xterm-kitty KITTY_WINDOW_ID=1 "$CHALK" -e 'chalk.on_picture("a.png")')
check "pictures print their path, never inline when stdout is not a terminal" [ "$out" = "picture: a.png" ]
out=$("$CHALK" -e 'print(nn == chalk.nn, optim == chalk.optim, data == chalk.data, viz == chalk.viz)')
check "nn, optim, data, viz are globals as in chalk" [ "$out" = "$(printf 'true\ttrue\ttrue\ttrue')" ]
out=$("$CHALK" -e 'print(require("chalk") == chalk)')
check "require 'chalk' is the global chalk" [ "$out" = true ]
finish
