#!/usr/bin/env bash
# bench/referral_bench.sh: tickets from intake's acknowledgement to the step
# visible on the referral stream (what a unit's subscriber receives), with
# whistle-intake and whistle-referral on their real sockets and durable
# commits. Printed beside the intake-only figure of the same run (the
# hotline load's own acknowledged rate):
#   throughput: BENCH_REF_TICKETS as fast as the load can push them: tickets
#               per second from the first send to the last step received;
#   latency:    a paced load at BENCH_REF_RATE tickets/s for
#               BENCH_REF_SECONDS: per dispatched ticket, step received minus
#               the ticket's ACCEPTED reply (p50/p99), beside intake's ack p50/p99.
# The subscriber is whistle-dept watching the whole referral stream (it
# writes and fsyncs every event, as a unit's client does).
# Runs on its own private cluster (as bench/run.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
BIN=$ROOT/$BUILD
N=${BENCH_REF_TICKETS:-20000}
RATE=${BENCH_REF_RATE:-2000}
SECS=${BENCH_REF_SECONDS:-10}
export WHISTLE_PGDEV_DIR=${WHISTLE_PGDEV_DIR:-/tmp/whistle-bench-pg}
export WHISTLE_PGDEV_PORT=${WHISTLE_PGDEV_PORT:-54339}
PY=/usr/bin/python3

log() { printf '%s referral-bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
. "$ROOT/bench/lib.sh"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -A -t -U postgres)
die() { log "error: $*"; exit 1; }
for b in bin/whistle-intake bin/whistle-referral bin/whistle-dept tests/bin/hotlineload; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing (make build-all)"
done

WORK=$(mktemp -d /tmp/whistle-referral-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
  [ "${EVDIR:-$WORK}" = "$WORK" ] || rm -rf "$EVDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_pg_start
bash tools/pgdev.sh reset intake referral >/dev/null

common=(WHISTLE_CURVE=0 WHISTLE_LOG_LEVEL=warn WHISTLE_REGISTRY="$ROOT/deploy/registry")
env "${common[@]}" WHISTLE_PG=user=intake WHISTLE_INTAKE_HOTLINE="ipc://$WORK/hotline" \
  WHISTLE_INTAKE_STREAM="ipc://$WORK/istream" WHISTLE_CONTROL="ipc://$WORK/ictl" \
  "$BIN/bin/whistle-intake" 2>"$WORK/intake.log" &
PIDS+=($!)
env "${common[@]}" WHISTLE_PG=user=referral WHISTLE_REFERRAL_UNITS="ipc://$WORK/units" \
  WHISTLE_REFERRAL_STREAM="ipc://$WORK/rstream" WHISTLE_INTAKE_STREAM_AT="ipc://$WORK/istream" \
  WHISTLE_CONTROL="ipc://$WORK/rctl" "$BIN/bin/whistle-referral" 2>"$WORK/referral.log" &
PIDS+=($!)

# The reader: whistle-dept watching the whole referral stream (the
# full-access identity rating) with --stamp: each line carries when it was
# received. A unit's own subscriber gets the same events, filtered.
"$PY" -c "import sys; sys.path.insert(0,'tests/lib'); import wt; sys.exit(0 if wt.wait_ready('ipc://$WORK/rctl', 60) else 1)" ||
  die "whistle-referral not ready (see its log)"
# Its file lives in memory (/dev/shm when there is one): a unit's client runs
# on its own machine, and its fsyncs must not queue behind the daemons' commits.
EVDIR=$WORK
[ -d /dev/shm ] && [ -w /dev/shm ] && EVDIR=$(mktemp -d /dev/shm/whistle-referral-bench-XXXXXX)
"$BIN/bin/whistle-dept" watch --unit rating --stream "ipc://$WORK/rstream" --stamp \
  --out "$EVDIR/events.jsonl" 2>"$WORK/dept.log" &
READER=$!
PIDS+=($READER)

load() { # label, options
  local label=$1; shift
  "$BIN/tests/bin/hotlineload" --endpoint "ipc://$WORK/hotline" --registry "$ROOT/deploy/registry" "$@" ||
    die "$label load failed"
}
steps() { grep -c '"kind":"step.issued"' "$EVDIR/events.jsonl" 2>/dev/null || true; }
# ticket_no and received_us of every step.issued, for the reports below.
arrivals() {
  "$PY" -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    if e["kind"] == "step.issued":
        print(e["ticket_no"], e["received_us"])' "$EVDIR/events.jsonl" >"$WORK/steps.txt"
}
wait_steps() { # count, timeout s
  local i last=-1 same=0
  for i in $(seq 1 $(( $2 * 10 ))); do
    local s; s=$(steps)
    [ "$s" -ge "$1" ] && return 0
    if [ "$s" = "$last" ]; then same=$((same + 1)); else same=0; last=$s; fi
    [ "$same" -ge 50 ] && return 0  # 5 s without a new step: the rest went to triage/recorded
    sleep 0.1
  done
}

log "warm-up: 2000 tickets"
load warm-up --count 2000 --inflight 500 --prefix w- --seed 7 >/dev/null
wait_steps 2000 30

settle intake referral >/dev/null
echo
echo "== Whistle referral bench: hotline -> intake -> referral -> a unit's subscriber (same-run intake figures) =="
log "throughput: $N tickets as fast as the load can send them"
s0=$(steps)
t0=$(date +%s%N)
TP=$(load throughput --count "$N" --inflight 4000 --prefix t- --seed 1 --timeout 180 --dump "$WORK/tp.txt")
wait_steps $(( s0 + N )) 180
arrivals
"$PY" - "$WORK" "$t0" "$TP" <<'PYEOF'
import sys
work, t0, tp = sys.argv[1], int(sys.argv[2]) // 1000, sys.argv[3]
f = dict(kv.split("=") for kv in tp.split())
arr = {}
for line in open(f"{work}/steps.txt"):
    no, at = line.split()
    if no.startswith("t-"):
        arr[no] = int(at)
rows = [l.split() for l in open(f"{work}/tp.txt") if not l.startswith("#")]
first_send = min(int(r[1]) for r in rows)
last_ack = max(int(r[1]) + int(r[2]) for r in rows)
n = int(f["accepted"])
intake_secs = (last_ack - first_send) / 1e6
secs = (max(max(arr.values()), last_ack) - first_send) / 1e6
print(f"throughput ({n} tickets, {len(arr)} of them dispatched to a unit):")
print(f"  intake only (first send -> last ACCEPTED)       {n / intake_secs:>8.0f} tickets/s")
print(f"  with referral (first send -> last step visible) {n / secs:>8.0f} tickets/s"
      f"  ({100 * intake_secs / secs:.0f}% of intake only)")
PYEOF

log "settling (vacuum, checkpoint, writeback) before the latency run"
settle intake referral >/dev/null
log "latency: $RATE tickets/s offered for $SECS s"
LAT=$(load latency --count $(( RATE * SECS )) --rate "$RATE" --inflight 4000 --prefix l- --seed 2 \
      --timeout 120 --dump "$WORK/lat.txt")
wait_steps $(( $(steps) + RATE * SECS )) 60
arrivals
"$PY" - "$WORK" "$LAT" <<'PYEOF'
import sys
work, lat = sys.argv[1], sys.argv[2]
f = dict(kv.split("=") for kv in lat.split())
arr = {}
for line in open(f"{work}/steps.txt"):
    no, at = line.split()
    if no.startswith("l-"):
        arr[no] = int(at)
d = []
for line in open(f"{work}/lat.txt"):
    if line.startswith("#"):
        continue
    n, send, ack, st = line.split()
    no = f"l-{n}"
    if st == "1" and no in arr:
        d.append(arr[no] - (int(send) + int(ack)))
d.sort()
pct = lambda p: d[min(len(d) - 1, int(len(d) * p / 100))] / 1000 if d else float("nan")
print(f"latency at {float(f['rate']):.0f} tickets/s offered ({len(d)} dispatched tickets):")
print(f"  intake ack (send -> ACCEPTED)        p50 {int(f['ack_p50_us']) / 1000:7.1f} ms"
      f"  p99 {int(f['ack_p99_us']) / 1000:7.1f} ms")
print(f"  ACCEPTED -> step on referral stream  p50 {pct(50):7.1f} ms  p99 {pct(99):7.1f} ms")
PYEOF
