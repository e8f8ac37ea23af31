#!/usr/bin/env bash
# Fuzz every target of a -Dfuzz=true build for SECONDS each, starting from a
# scratch copy of its seed corpus (new inputs are not written into the repo).
# A crash leaves its reproducer in $ARTIFACTS and fails the run: turn it into
# a regression input in tests/fuzz/corpus/<target>/ once fixed.
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail
BUILD="$1"
SECONDS_EACH="${2:-15}"
SRC=$(cd "$(dirname "$0")" && pwd)
ARTIFACTS="${FUZZ_ARTIFACTS:-$BUILD/fuzz-artifacts}"
mkdir -p "$ARTIFACTS"
status=0
passed=0
failed=0
for exe in "$BUILD"/tests/fuzz/fuzz_*; do
  [ -f "$exe" ] && [ -x "$exe" ] || continue
  name=$(basename "$exe"); name=${name#fuzz_}
  case "$name" in replay_*) continue ;; esac
  work=$(mktemp -d)
  cp -r "$SRC/corpus/$name/." "$work/"
  if "$exe" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$ARTIFACTS/$name-" -print_final_stats=1 "$work" >"$work.log" 2>&1; then
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work.log" | grep -oE '[0-9]+$' || echo "?")
    echo "ok   fuzz_$name: $runs executions in ${SECONDS_EACH}s"
    passed=$((passed + 1))
  else
    echo "FAIL fuzz_$name (reproducer in $ARTIFACTS):"
    tail -n 40 "$work.log"
    failed=$((failed + 1))
    status=1
  fi
  rm -rf "$work" "$work.log"
done
echo "$passed passed, $failed failed"
exit $status
