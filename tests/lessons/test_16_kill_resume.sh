# test_16_kill_resume.sh: lessons/data/kill_train.lua killed with SIGKILL at several steps (before
# the first checkpoint, just after one, mid-interval) and restarted ends with final weights whose
# bytes equal an uninterrupted run's; the restarts resumed from the expected checkpoints.
CHALK=${CHALK:-build/chalk}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/chalk-kill.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
FAILS=0
fail() { echo "  kill_resume: $*" >&2; FAILS=$((FAILS + 1)); }
STEPS=120
K=20
mkdir -p "$TMP/ref"
"$CHALK" lessons/data/kill_train.lua "$TMP/ref" $STEPS $K >"$TMP/ref/log" 2>&1 || fail "the clean run failed"
same() { # the bytes of every tensor of two state dicts, compared in key order
  "$CHALK" - "$1" "$2" <<'LUA'
local a, b = chalk.load(arg[1]), chalk.load(arg[2])
local keys = {}
for k in pairs(a) do keys[#keys + 1] = k end
table.sort(keys)
local n = 0
for _, k in ipairs(keys) do
  local fa, fb = arg[1] .. ".npy", arg[2] .. ".npy"
  chalk.save_npy(a[k], fa) chalk.save_npy(b[k], fb)
  local ha, hb = io.open(fa, "rb"), io.open(fb, "rb")
  if ha:read("a") ~= hb:read("a") then print("differs: " .. k) os.exit(1) end
  ha:close() hb:close()
  n = n + 1
end
if n == 0 then os.exit(1) end
print("identical tensors: " .. n)
LUA
}
for at in 7 21 50; do
  d="$TMP/k$at"
  mkdir -p "$d"
  "$CHALK" lessons/data/kill_train.lua "$d" $STEPS $K >"$d/log" 2>&1 &
  p=$!
  while ! grep -qx "step $at" "$d/log" 2>/dev/null; do
    kill -0 $p 2>/dev/null || break
    sleep 0.002
  done
  kill -KILL $p 2>/dev/null
  wait $p 2>/dev/null
  rc=$?
  [ "$rc" -eq 137 ] || fail "kill at step $at: exit status $rc, expected 137 (SIGKILL)"
  last=$(sed -n 's/^step \([0-9]*\)$/\1/p' "$d/log" | tail -n 1)
  [ -e "$d/final.chalk" ] && fail "kill at step $at: the run finished before the kill"
  "$CHALK" lessons/data/kill_train.lua "$d" $STEPS $K >"$d/log2" 2>&1 || fail "restart after step $at failed"
  # the last checkpoint before the last printed step (or the next one, when the kill fell between
  # a checkpoint's save and the print of its step)
  want=$((last / K * K))
  got=$(sed -n 's/^resumed at step \([0-9]*\)$/\1/p' "$d/log2")
  if [ "$want" -gt 0 ] || [ -n "$got" ]; then
    [ "$got" = "$want" ] || [ "$got" = "$((want + K))" ] ||
      fail "killed after step $last: expected to resume at $want, got '$got'"
  fi
  same "$TMP/ref/final.chalk" "$d/final.chalk" >/dev/null || fail "killed at step $at: final weights differ from the uninterrupted run"
done
[ "$FAILS" -eq 0 ] && echo "kill_resume: 3 kills, each resumed bit-identically" && exit 0
exit 1
