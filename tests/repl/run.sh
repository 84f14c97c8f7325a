#!/bin/sh
# run.sh: run every tests/repl/test_*.sh against $CHALK (default build/chalk); `make check-repl`.
# Exits nonzero if any test failed. The tmux-driven ones are skipped, saying so, without tmux.
CHALK=${CHALK:-build/chalk}
export CHALK
if [ ! -x "$CHALK" ]; then
  echo "check-repl: $CHALK is not built" >&2
  exit 1
fi
failed=""
start=$(date +%s)
for t in tests/repl/test_*.sh; do
  if ! sh "$t"; then failed="$failed $(basename "$t")"; fi
done
elapsed=$(($(date +%s) - start))
if [ -n "$failed" ]; then
  echo "check-repl: FAILED:$failed (${elapsed}s)"
  exit 1
fi
echo "check-repl: all REPL tests passed (${elapsed}s)"
