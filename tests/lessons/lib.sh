# lib.sh: helpers for the lesson tests (sourced).
#   start_lesson NAME [ENV=VALUE...]  sets LESSON=NAME, runs it (run_lesson, finishing on failure)
#                               and checks that every step fits the screen (fits_screen)
#   run_lesson [ENV=VALUE...]   runs $CHALK --lesson $LESSON --auto into a fresh output dir;
#                               $OUT is the picture dir, $LOG the combined output; checks the
#                               replay from the start (what :back and :step N show) matched
#   number LABEL                the number after LABEL on the first log line that starts with it
#   near NAME GOT WANT TOL      fails unless |GOT - WANT| <= TOL
#   at_least NAME GOT MIN       fails unless GOT >= MIN
#   picture FILE                fails unless $OUT/FILE exists and is a non-empty picture
#   fits_screen [ROWS] [COLS]   fails unless every step (header, narration, code, output,
#                               up to the next step's header) fits ROWS lines (30) of COLS (100)
#                               characters: a projected 100x35 terminal, with room for the prompt
#   longest_step                prints the number of lines of the longest step
#   check_law NAME PATTERN TOL  fails unless the line "PATTERN: measured X ... law ... = Y" has
#                               |X - Y| <= TOL
#   start_cached_lesson NAME    start_lesson, keeping the trained CharGPTs between runs of the
#                               suite (the lesson retrains a missing one)
#   finish                      exits 1 if any check failed
CHALK=${CHALK:-build/chalk}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/chalk-lesson.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
OUT=$TMP/out
LOG=$TMP/log
FAILS=0

fail() {
  echo "  $LESSON: $*" >&2
  FAILS=$((FAILS + 1))
}

run_lesson() {
  mkdir -p "$OUT"
  if ! env "$@" CHALK_PROGRESS=0 "$CHALK" --out "$OUT" --lesson "$LESSON" --auto >"$LOG" 2>&1 </dev/null; then
    fail "chalk --lesson $LESSON --auto failed; its output ends:"
    tail -n 25 "$LOG" >&2
    return 1
  fi
  # --auto replays every step from the lesson's start and compares (what :back shows)
  grep -q "^(replayed steps 1-[0-9]* from the lesson's start: the same output)" "$LOG" ||
    fail "the log does not say the replay from the start matched the first pass"
}

start_lesson() {
  LESSON=$1
  shift
  run_lesson "$@" || finish
  fits_screen # every step fits a projected 100x35 terminal (30 lines of 100 columns)
}

number() {
  sed -n "s|^ *$1 *\(-\{0,1\}[0-9][0-9.e+-]*\).*|\1|p" "$LOG" | head -n 1
}

near() {
  if [ -z "$2" ]; then fail "$1: not printed"; return; fi
  awk -v g="$2" -v w="$3" -v t="$4" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= t) }' ||
    fail "$1 = $2, expected $3 +- $4"
}

at_least() {
  if [ -z "$2" ]; then fail "$1: not printed"; return; fi
  awk -v g="$2" -v m="$3" 'BEGIN { exit !(g >= m) }' || fail "$1 = $2, expected at least $3"
}

picture() {
  f="$OUT/$1"
  if [ ! -s "$f" ]; then
    fail "picture $1 missing (pictures written: $(ls "$OUT" 2>/dev/null | tr '\n' ' '))"
    return
  fi
  case "$f" in
  *.png) head -c 8 "$f" | od -An -c | grep -q 'P   N   G' || fail "$1 is not a PNG" ;;
  *.svg) grep -q '<svg' "$f" || fail "$1 is not an SVG" ;;
  esac
}

# The steps of $LOG as "STEP LINES WIDEST" rows (a step runs from its "[i/n] title" header to the
# blank line before the next header; characters counted in UTF-8, escape sequences as shown).
step_sizes() {
  LC_ALL=C awk '
    function flush() { if (step != "") print step, lines - pending, widest }
    /^\[[0-9]+\/[0-9]+\] / { flush(); step = $1; lines = 0; widest = 0; pending = 0 }
    step != "" {
      lines++
      s = $0; gsub(/\033\[[0-9;]*m/, "", s); n = gsub(/[^\200-\277]/, "", s)
      if (n > widest) widest = n
      pending = ($0 == "") ? pending + 1 : 0
    }
    /^\(replayed steps/ { lines--; }
    END { flush() }' "$LOG"
}

fits_screen() {
  rows=${1:-30}
  cols=${2:-100}
  sizes=$(step_sizes)
  [ -n "$sizes" ] || { fail "no steps found in the output"; return; }
  echo "$sizes" | while read -r step lines widest; do
    [ "$lines" -le "$rows" ] || echo "step $step has $lines lines (a projected screen shows $rows)"
    [ "$widest" -le "$cols" ] || echo "step $step has a line of $widest characters (more than $cols)"
  done >"$TMP/fits"
  while read -r line; do fail "$line"; done <"$TMP/fits"
}

longest_step() {
  step_sizes | awk '$2 > m { m = $2 } END { print m + 0 }'
}

law() { sed -n "s|^$1: measured \([0-9.]*\).*law [^=]*= *\([0-9.]*\).*|\1 \2|p" "$LOG" | head -n 1; }

check_law() { # NAME PATTERN TOL: the measured number equals the law's
  set -- "$1" "$(law "$2")" "$3"
  [ -n "$2" ] || { fail "$1: not printed"; return; }
  near "$1 (measured vs law)" "${2% *}" "${2#* }" "$3"
}

start_cached_lesson() {
  LESSON=$1
  CACHE=${BUILD:-build}/tests/lessons/chargpt
  mkdir -p "$OUT" "$CACHE"
  cp "$CACHE"/chargpt_*.chalk "$OUT"/ 2>/dev/null
  run_lesson || finish
  cp "$OUT"/chargpt_*.chalk "$CACHE"/ 2>/dev/null
  fits_screen # every step fits a projected 100x35 terminal (30 lines of 100 columns)
}

finish() {
  [ "$FAILS" -eq 0 ] && exit 0
  exit 1
}
