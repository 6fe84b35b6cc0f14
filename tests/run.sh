#!/usr/bin/env bash
# Runs every test suite against the binaries in $BUILD and prints one closing
# line "N passed, N failed". Unit suites are Check programs; integration,
# fault and interop suites are Python drivers that start the real daemons
# against the private Postgres cluster (tools/pgdev.sh).
set -u
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
passed=0; failed=0; failures=()

run() { # name, command...
  local name=$1; shift
  local log="$BUILD/test-logs/$name.log"
  mkdir -p "$(dirname "$log")"
  local t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); echo "PASS $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "FAIL $name ($((SECONDS - t0)) s): see $log"
    tail -n 30 "$log" | sed 's/^/    /'
  fi
}

for t in "$BUILD"/tests/unit/test_*; do
  [ -x "$t" ] || continue
  case "$t" in *.o|*.d) continue ;; esac
  run "unit/$(basename "$t")" "$t"
done

bash tools/pgdev.sh start || { echo "0 passed, 1 failed"; exit 1; }
eval "$(bash tools/pgdev.sh env)"
for t in "$BUILD"/tests/integration/check_*; do
  [ -x "$t" ] || continue
  case "$t" in *.o|*.d) continue ;; esac
  run "integration/$(basename "$t")" "$t"
done
for t in tests/integration/test_*.py tests/fault/test_*.py tests/interop/test_*.py; do
  [ -f "$t" ] || continue
  name=${t#tests/}; name=${name%.py}
  run "$name" env BUILD="$BUILD" "$PY" "$t"
done

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
