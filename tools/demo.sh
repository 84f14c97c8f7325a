#!/bin/sh
# demo.sh: the end of `make demo` (after deps and the build): plays lesson 2, autodiff.
# With a terminal on stdin it pauses after every step (Enter goes on, :back goes back, any Lua
# runs in the lesson's state, :quit leaves). Without one (CI=true, or stdin not a terminal) it
# runs every step unattended (--auto) and writes the pictures. Either way it ends by saying
# where the pictures are. CHALK (default build/chalk) and CHALK_OUT (default chalk-out) override.
CHALK=${CHALK:-build/chalk}
OUT=${CHALK_OUT:-chalk-out}
LESSON=02_autodiff
if [ ! -x "$CHALK" ]; then
  echo "demo: $CHALK is not built (run make first)" >&2
  exit 1
fi
mkdir -p "$OUT"
if [ -t 0 ] && [ "${CI:-}" != "true" ]; then
  echo "chalk demo: lesson $LESSON, step by step. Enter shows the next step; :quit leaves."
  "$CHALK" --out "$OUT" --lesson "$LESSON"
  status=$?
else
  echo "chalk demo: no terminal on stdin, so lesson $LESSON runs unattended (--auto)."
  "$CHALK" --out "$OUT" --lesson "$LESSON" --auto </dev/null
  status=$?
fi
pictures=$(ls "$OUT"/02_* 2>/dev/null)
if [ -n "$pictures" ]; then
  echo "chalk demo: the pictures are in $OUT/:"
  for p in $pictures; do echo "  $p"; done
else
  echo "chalk demo: no pictures were written to $OUT/"
  [ "$status" -eq 0 ] && status=1
fi
exit "$status"
