#!/usr/bin/env bash
# tools/run.sh: what `make run` does. Starts the private Postgres and the four
# daemons (whistle-intake, -referral, -rating, -escalation) on fresh schemas,
# in event clock mode and development mode (no CURVE), with their endpoints
# under build/run; then whistlectl replays a scenario through them
# (`whistlectl replay`), writes every export to build/run/export/
# (`whistlectl export --all`) and prints a summary (`whistlectl summary`).
#
#   make run                    the sample city and quarter (tools/gen_city.py --seed 1)
#   make run SCENARIO=DIR       DIR/registry/ and DIR/feed.jsonl instead
#
# On a terminal the daemons keep running until Ctrl-C (try the whistlectl
# commands it prints); otherwise (CI, stdin not a terminal, or
# WHISTLE_RUN_ONCE=1) they are stopped after the summary.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
IBIN=$ROOT/$BUILD/bin
RUN=$ROOT/$BUILD/run
EXPORT=$RUN/export
PY=/usr/bin/python3
CTL=$IBIN/whistlectl
SCHEMAS=(intake referral rating escalation)

say() { printf '%s run: %s\n' "$(date +%H:%M:%S)" "$*"; }
started=0
die() {
  say "error: $*" >&2
  if [ "$started" = 1 ]; then
    for n in "${SCHEMAS[@]}"; do
      [ -f "$RUN/$n.log" ] || continue
      echo "---- last lines of $RUN/$n.log" >&2
      tail -n 12 "$RUN/$n.log" | sed 's/^/    /' >&2
    done
  fi
  exit 1
}

once=0
if [ "${WHISTLE_RUN_ONCE:-0}" != 0 ] || [ ! -t 0 ]; then once=1; fi

for n in "${SCHEMAS[@]}"; do
  [ -x "$IBIN/whistle-$n" ] || die "$IBIN/whistle-$n is missing: run 'make' first"
done
[ -x "$CTL" ] || die "$CTL is missing: run 'make' first"
mkdir -p "$RUN"

# ---- the scenario ---------------------------------------------------------------
if [ -n "${SCENARIO:-}" ]; then
  SCEN=$(cd "$SCENARIO" 2>/dev/null && pwd) || die "SCENARIO=$SCENARIO: no such directory"
  what="the scenario $SCENARIO"
else
  # The sample city and quarter, generated once per version of the generator.
  SCEN=$RUN/sample
  stamp="$(sha256sum tools/gen_city.py | cut -c1-16) seed 1"
  if [ "$(cat "$SCEN/.generated" 2>/dev/null)" != "$stamp" ]; then
    say "generating the sample city and quarter (tools/gen_city.py --seed 1) in $SCEN"
    rm -rf "$SCEN"
    "$PY" tools/gen_city.py --seed 1 --out "$SCEN" || die "tools/gen_city.py failed"
    echo "$stamp" >"$SCEN/.generated"
  fi
  what="the sample city and quarter"
fi
REG=$SCEN/registry
FEED=$SCEN/feed.jsonl
[ -d "$REG" ] || die "$REG is missing (a scenario directory holds registry/ and feed.jsonl)"
[ -r "$FEED" ] || die "$FEED is missing (a scenario directory holds registry/ and feed.jsonl)"
# A city registry without letter templates uses the project's.
TEMPLATES=
[ -d "$REG/notice_templates" ] || TEMPLATES=$ROOT/deploy/registry/notice_templates

# ZeroMQ ipc endpoints are Unix sockets, whose paths are limited to ~100
# bytes: a deep checkout gets them under /tmp instead.
SOCK=$RUN
if [ ${#SOCK} -gt 80 ]; then
  SOCK=/tmp/whistle-run-$(printf '%s' "$RUN" | cksum | cut -d' ' -f1)
  mkdir -p "$SOCK"
fi
export WHISTLE_INTAKE_HOTLINE=ipc://$SOCK/intake-hotline WHISTLE_INTAKE_CONTROL=ipc://$SOCK/intake-control
export WHISTLE_REFERRAL_UNITS=ipc://$SOCK/referral-units WHISTLE_REFERRAL_CONTROL=ipc://$SOCK/referral-control
export WHISTLE_RATING_REQUESTS=ipc://$SOCK/rating-requests WHISTLE_RATING_CONTROL=ipc://$SOCK/rating-control
export WHISTLE_ESCALATION_REQUESTS=ipc://$SOCK/escalation-requests
export WHISTLE_ESCALATION_CONTROL=ipc://$SOCK/escalation-control
ISTREAM=ipc://$SOCK/intake-stream RSTREAM=ipc://$SOCK/referral-stream
TSTREAM=ipc://$SOCK/rating-stream ESTREAM=ipc://$SOCK/escalation-stream

# ---- the daemons: started in their own sessions, drained on the way out ----------
PIDS=()
NAMES=()
stop_all() { # verbose
  local i p n rc
  for i in "${!PIDS[@]}"; do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
  for i in "${!PIDS[@]}"; do
    p=${PIDS[$i]}; n=${NAMES[$i]}
    for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
      say "$n did not stop within 20 s: SIGKILL"
      kill -KILL "$p" 2>/dev/null || true
    fi
    rc=0; wait "$p" 2>/dev/null || rc=$?
    [ "$1" = 1 ] && say "$n stopped (exit status $rc)"
    rm -f "$RUN/$n.pid"
  done
  PIDS=(); NAMES=()
}
trap 'stop_all 0' EXIT
trap 'echo; say "stopping (SIGTERM to the daemons, waiting for them to drain)"; stop_all 1; exit 0' INT TERM HUP

# A previous run left running (its terminal closed, say): stop it first.
for n in "${SCHEMAS[@]}"; do
  f=$RUN/$n.pid
  [ -f "$f" ] || continue
  p=$(cat "$f")
  if [ -n "$p" ] && grep -qa "whistle-$n" "/proc/$p/cmdline" 2>/dev/null; then
    say "stopping $n (pid $p) left over from an earlier run"
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  fi
  rm -f "$f"
done

say "starting the private Postgres (tools/pgdev.sh; data in $BUILD/pg, Unix socket only)"
pg_ok=0
for _ in 1 2 3 4 5; do # a cluster caught shutting down (a test run restarting it) gets a few tries
  if bash tools/pgdev.sh start && bash tools/pgdev.sh reset "${SCHEMAS[@]}" >/dev/null; then
    pg_ok=1; break
  fi
  sleep 2
done
[ $pg_ok = 1 ] || die "the private Postgres did not start (log: $BUILD/pg/server.log)"
eval "$(bash tools/pgdev.sh env)"
export PGHOST PGPORT PGDATABASE

start() { # name, env assignments...
  local n=$1; shift
  started=1
  : >"$RUN/$n.log"
  env WHISTLE_CURVE=0 WHISTLE_CLOCK=event WHISTLE_LOG_LEVEL="${WHISTLE_LOG_LEVEL:-info}" \
    WHISTLE_PG="user=$n application_name=$n" WHISTLE_REGISTRY="$REG" WHISTLE_TICK_MS=100 "$@" \
    setsid "$IBIN/whistle-$n" </dev/null >>"$RUN/$n.log" 2>&1 &
  PIDS+=("$!"); NAMES+=("$n")
  echo "$!" >"$RUN/$n.pid"
}
say "starting the four daemons (event clock, development mode: no CURVE), endpoints in $SOCK"
start intake WHISTLE_INTAKE_HOTLINE="$WHISTLE_INTAKE_HOTLINE" WHISTLE_INTAKE_STREAM="$ISTREAM" \
  WHISTLE_CONTROL="$WHISTLE_INTAKE_CONTROL" WHISTLE_REFERRAL_STREAM_AT="$RSTREAM"
start referral WHISTLE_INTAKE_STREAM_AT="$ISTREAM" WHISTLE_REFERRAL_UNITS="$WHISTLE_REFERRAL_UNITS" \
  WHISTLE_REFERRAL_STREAM="$RSTREAM" WHISTLE_CONTROL="$WHISTLE_REFERRAL_CONTROL"
start rating WHISTLE_INTAKE_STREAM_AT="$ISTREAM" WHISTLE_REFERRAL_STREAM_AT="$RSTREAM" \
  WHISTLE_RATING_REQUESTS="$WHISTLE_RATING_REQUESTS" WHISTLE_RATING_STREAM="$TSTREAM" \
  WHISTLE_CONTROL="$WHISTLE_RATING_CONTROL"
start escalation WHISTLE_REFERRAL_STREAM_AT="$RSTREAM" WHISTLE_RATING_STREAM_AT="$TSTREAM" \
  WHISTLE_ESCALATION_REQUESTS="$WHISTLE_ESCALATION_REQUESTS" WHISTLE_ESCALATION_STREAM="$ESTREAM" \
  WHISTLE_CONTROL="$WHISTLE_ESCALATION_CONTROL" WHISTLE_NOTICE_TEMPLATES="$TEMPLATES"
for i in "${!PIDS[@]}"; do # ready: the log says so (a daemon that exits is reported with its log)
  for t in $(seq 1 600); do
    kill -0 "${PIDS[$i]}" 2>/dev/null || die "${NAMES[$i]} exited during start-up (log: $RUN/${NAMES[$i]}.log)"
    grep -q 'msg=ready' "$RUN/${NAMES[$i]}.log" 2>/dev/null && break
    [ "$t" = 600 ] && die "${NAMES[$i]} not ready after 60 s (log: $RUN/${NAMES[$i]}.log)"
    sleep 0.1
  done
done

# ---- replay, export, summary: whistlectl's ------------------------------------------
say "replaying $what: $(wc -l <"$FEED") lines ($FEED)"
"$CTL" replay "$REG" "$FEED" || die "the replay failed"
rm -rf "$EXPORT"
"$CTL" export --all "$EXPORT" || die "the export failed"
say "exports written to ${EXPORT#"$ROOT"/}/: $(cd "$EXPORT" && ls | tr '\n' ' ')"
"$CTL" summary --export "$EXPORT" || die "the summary failed"

if [ $once = 1 ]; then
  say "not on a terminal (or WHISTLE_RUN_ONCE=1): stopping the daemons"
  stop_all 1
  exit 0
fi
cat <<EOF

The daemons keep running (logs in $RUN/*.log). In another terminal:
  export $(env | grep -E '^WHISTLE_(INTAKE|REFERRAL|RATING|ESCALATION)_(HOTLINE|UNITS|REQUESTS|CONTROL)=' | sort | tr '\n' ' ')
  $BUILD/bin/whistlectl status                 every daemon, its streams, positions and watermarks
  $BUILD/bin/whistlectl trace TICKET_NO        a ticket, its steps, decisions and notices
  $BUILD/bin/whistlectl triage                 what waits for an operator
  $BUILD/bin/whistlectl export notices         (or decisions, tickets, rankings --month 2026-10, ...)
Ctrl-C to stop.
EOF
while true; do
  rc=0
  wait -n "${PIDS[@]}" || rc=$?
  for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[$i]}" 2>/dev/null || die "${NAMES[$i]} exited unexpectedly (status $rc; log: $RUN/${NAMES[$i]}.log)"
  done
done
