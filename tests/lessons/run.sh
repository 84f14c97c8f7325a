#!/bin/sh
# run.sh: `make check-lessons`: runs tests/lessons/test_*.sh against $CHALK (default build/chalk).
# Each test runs one lesson unattended and checks the numbers it printed and the pictures it wrote.
# Prints "lessons: N passed, N failed" and exits nonzero if any failed.
CHALK=${CHALK:-build/chalk}
export CHALK
if [ ! -x "$CHALK" ]; then
  echo "check-lessons: $CHALK is not built" >&2
  exit 1
fi
passed=0
failed=0
names=""
for t in tests/lessons/test_*.sh; do
  start=$(date +%s)
  if sh "$t"; then
    passed=$((passed + 1))
    echo "ok   $(basename "$t") ($(($(date +%s) - start))s)"
  else
    failed=$((failed + 1))
    names="$names $(basename "$t")"
    echo "FAIL $(basename "$t") ($(($(date +%s) - start))s)"
  fi
done
echo "lessons: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || { echo "check-lessons: FAILED:$names"; exit 1; }
