#!/bin/sh
# tests/house/debug_test.sh: CHALK_DEBUG=0..3 print what obs/debug.h promises, and nothing when off.
# usage: tests/house/debug_test.sh [path/to/chalk]
set -u
CHALK=${1:-build/chalk}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
PROG='local x = chalk.ones(3, 3); local y = (x * 2):exp():sum(); print(y:item())
local g = chalk.capture(function(t) return ((t * 2):exp() + 1):relu() end, x)
g:optimize { "dce", "fuse" }
local p = chalk.profile(function() return (x + x):sum() end); print(p)'
run() { CHALK_DEBUG=$1 "$CHALK" -e "$PROG" > "$T/out$1" 2> "$T/err$1" || { echo "FAIL CHALK_DEBUG=$1 exited $?"; cat "$T/err$1"; fails=$((fails + 1)); }; }
has() { # has LEVEL PATTERN: stderr at LEVEL matches the extended regex
  if grep -Eq "$2" "$T/err$1"; then echo "ok   CHALK_DEBUG=$1 prints /$2/"; else echo "FAIL CHALK_DEBUG=$1 lacks /$2/"; sed 's/^/     /' "$T/err$1" | head -20; fails=$((fails + 1)); fi
}
hasnt() {
  if grep -Eq "$2" "$T/err$1"; then echo "FAIL CHALK_DEBUG=$1 prints /$2/"; fails=$((fails + 1)); else echo "ok   CHALK_DEBUG=$1 omits /$2/"; fi
}
for l in 0 1 2 3; do run $l; done
hasnt 0 '^\[chalk\]'
has 1 '^\[chalk\] op +mul_scalar +cpu +[0-9.]+ us$'
has 1 '^\[chalk\] op +exp +cpu +[0-9.]+ us$'
hasnt 1 'flops|alloc|pass '
has 2 '^\[chalk\] op +exp +cpu +[0-9.]+ us +9 flops +72 bytes'
has 2 '^\[chalk\] alloc input +cpu +36 bytes +live [0-9]+'
has 2 '^\[chalk\] free '
hasnt 2 'pass |source of'
has 3 '^\[chalk\] pass fuse:'
has 3 '^fuse: 1 change; nodes 4 -> 1'
has 3 '^\[chalk\] source of node 1:'
has 3 'expf\('
for l in 0 1 2 3; do
  if grep -Eq '^[0-9]+\.[0-9]+$' "$T/out$l"; then echo "ok   CHALK_DEBUG=$l stdout still has the result"; else echo "FAIL CHALK_DEBUG=$l stdout: $(cat "$T/out$l")"; fails=$((fails + 1)); fi
done
for l in 0 1 2 3; do # a profile still records its window while CHALK_DEBUG prints
  if grep -Eq '^profile: .* 2 ops' "$T/out$l" && grep -Eq '^add +1 ' "$T/out$l"; then echo "ok   CHALK_DEBUG=$l profile records"; else echo "FAIL CHALK_DEBUG=$l profile: $(cat "$T/out$l")"; fails=$((fails + 1)); fi
done
[ $fails = 0 ] && echo "debug_test: all passed" || { echo "debug_test: $fails failed"; exit 1; }
