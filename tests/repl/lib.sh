# lib.sh: helpers for the REPL tests: run chalk in a detached tmux, type at it, poll the screen.
# Sourced by each tests/repl/test_*.sh. $CHALK is the executable under test (build/chalk).
# Every wait polls capture-pane until a pattern shows or a timeout passes; no fixed sleeps.

CHALK=${CHALK:-build/chalk}
case $CHALK in /*) ;; *) CHALK=$(pwd)/$CHALK ;; esac
REPO=$(pwd)
TEST_HOME=$(mktemp -d "${TMPDIR:-/tmp}/chalk-test.XXXXXX")
TMUX_SOCKET=chalk-test-$$
failures=0

pass() { echo "PASS $TEST_NAME: $*"; }
fail() { echo "FAIL $TEST_NAME: $*"; failures=$((failures + 1)); }
skip() { echo "SKIP $TEST_NAME: $*"; }

tm() { tmux -L "$TMUX_SOCKET" "$@"; }

cleanup() {
  tm kill-server 2>/dev/null
  rm -rf "$TEST_HOME"
}
trap cleanup EXIT

# start_chalk [ARGS...]: chalk in a fresh 200x50 tmux session with HOME=$TEST_HOME; waits for it.
# Each start makes a new session and only then ends the previous one: ending the server's last
# session would stop the server under the next start.
SESSION=
session_count=0
start_chalk() {
  session_count=$((session_count + 1))
  _old=$SESSION
  SESSION=chalk$session_count
  tm new-session -d -x 200 -y 50 -s "$SESSION" \
    "cd '$REPO' && env HOME='$TEST_HOME' TERM=xterm-256color NO_COLOR=1 '$CHALK' $*; echo CHALK-EXITED \$?; sleep 60"
  [ -n "$_old" ] && tm kill-session -t "$_old" 2>/dev/null
  wait_for 'chalk [0-9.]+ \(Lua' 10 || { fail "chalk did not start"; screen_dump; return 1; }
}

# type_line TEXT: type TEXT literally, then Enter.
type_line() {
  tm send-keys -t "$SESSION" -l "$1"
  tm send-keys -t "$SESSION" Enter
}
type_text() { tm send-keys -t "$SESSION" -l "$1"; }
keys() { tm send-keys -t "$SESSION" "$@"; }

screen() { tm capture-pane -p -J -t "$SESSION" -S -500 2>/dev/null; }
screen_dump() {
  echo "---- screen of $TEST_NAME:"
  screen | grep -v '^$' | tail -25 | sed 's/^/    /'
  echo "----"
}

# wait_for ERE [SECONDS]: until a line on the screen matches.
wait_for() {
  _deadline=$(($(date +%s) + ${2:-5}))
  while :; do
    screen | grep -Eq -- "$1" && return 0
    [ "$(date +%s)" -ge "$_deadline" ] && return 1
    sleep 0.05
  done
}

# wait_count ERE N [SECONDS]: until at least N lines match.
wait_count() {
  _deadline=$(($(date +%s) + ${3:-5}))
  while :; do
    [ "$(screen | grep -Ec -- "$1")" -ge "$2" ] && return 0
    [ "$(date +%s)" -ge "$_deadline" ] && return 1
    sleep 0.05
  done
}

# expect NAME ERE [SECONDS]: PASS if the pattern shows, else FAIL with the screen.
expect() {
  if wait_for "$2" "${3:-5}"; then pass "$1"; else fail "$1 (no line matching /$2/)"; screen_dump; fi
}
expect_count() {
  if wait_count "$2" "$3" "${4:-5}"; then pass "$1"; else fail "$1 (fewer than $3 lines matching /$2/)"; screen_dump; fi
}

# A prompt with nothing typed after it: the last non-empty line is "> " (or "lesson i/n> ").
wait_prompt() {
  _deadline=$(($(date +%s) + ${1:-5}))
  while :; do
    screen | grep -v '^$' | tail -1 | grep -Eq '^(lesson [0-9]+/[0-9]+)?> ?$' && return 0
    [ "$(date +%s)" -ge "$_deadline" ] && return 1
    sleep 0.05
  done
}

finish() {
  [ "$failures" -eq 0 ] && exit 0
  exit 1
}

need_tmux() {
  command -v tmux >/dev/null 2>&1 || { skip "tmux is not installed"; exit 0; }
}
