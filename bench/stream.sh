#!/usr/bin/env bash
# bench/stream.sh: the stream benchmark (run by bench/run.sh). Starts the
# private Postgres and ledgerd -> sinkd in development mode, then measures
# durable stream throughput against a same-run COPY of the same rows,
# end-to-end and ack latency at a fixed offered load, and the producer's memory.
# BENCH_STORE=0 measures the stream alone (ledgerd appends events only);
# BENCH_STORE=1 adds the producer's own business row per event (a ledger row).
#
# Knobs: BENCH_EVENTS, BENCH_INFLIGHT, BENCH_BATCH, BENCH_LAT_RATE, BENCH_LAT_SECONDS,
# BENCH_SINK_WINDOW, BENCH_DUMP (see below). To keep test runs that restart the
# shared cluster out of the figures, point tools/pgdev.sh at a cluster of its
# own: WHISTLE_PGDEV_DIR=/tmp/whistle-bench-pg WHISTLE_PGDEV_PORT=54339 make bench
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
BIN=$ROOT/$BUILD/tests/bin
N=${BENCH_EVENTS:-200000}          # events per throughput round (two rounds)
INFLIGHT=${BENCH_INFLIGHT:-12000}  # requests in flight in the throughput run
BATCH=${BENCH_BATCH:-4000}         # ledgerd's most requests per transaction
LAT_RATE=${BENCH_LAT_RATE:-5000}   # offered load of the latency run, events/s
LAT_SECONDS=${BENCH_LAT_SECONDS:-10}
SINK_WINDOW=${BENCH_SINK_WINDOW:-5000}
DUMP=${BENCH_DUMP:-}               # a directory: per-event records of the latency run
PY=/usr/bin/python3

# Progress goes to stderr (stdout of helpers is captured); the table to stdout.
log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
. "$ROOT/bench/lib.sh"
die() {
  log "error: $*"
  local f
  for f in "${WORK:-/nonexistent}"/ledgerd.log "${WORK:-/nonexistent}"/sinkd.log; do
    [ -f "$f" ] && { echo "--- last lines of $(basename "$f")"; tail -n 15 "$f"; } >&2
  done
  exit 1
}

for b in ledgerd sinkd ledgerload; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing (make build-all)"
done

WORK=$(mktemp -d /tmp/whistle-bench-XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting the private Postgres"
bash tools/pgdev.sh start
eval "$(bash tools/pgdev.sh env)"
bash tools/pgdev.sh reset b_ledger b_sink b_copy >/dev/null
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -A -t -U postgres)
SINK_PG="user=postgres host=$PGHOST port=$PGPORT dbname=$PGDATABASE"

log "starting ledgerd and sinkd (WHISTLE_CURVE=0, ipc endpoints in $WORK)"
WHISTLE_CURVE=0 WHISTLE_LOG_LEVEL=info WHISTLE_PG="user=b_ledger" WHISTLE_SCHEMA=b_ledger \
  WHISTLE_LEDGER_RPC="ipc://$WORK/rpc" WHISTLE_LEDGER_STREAM="ipc://$WORK/stream" \
  WHISTLE_CONTROL="ipc://$WORK/lctl" WHISTLE_STREAM_FULL_ACCESS=sink WHISTLE_BATCH="$BATCH" \
  WHISTLE_LEDGER_STORE="${BENCH_STORE:-0}" \
  "$BIN/ledgerd" 2>"$WORK/ledgerd.log" &
LEDGERD=$!
PIDS+=("$LEDGERD")
WHISTLE_CURVE=0 WHISTLE_LOG_LEVEL=info WHISTLE_PG="user=b_sink" WHISTLE_SCHEMA=b_sink \
  WHISTLE_SINK_SOURCE="ipc://$WORK/stream" WHISTLE_SINK_WINDOW="$SINK_WINDOW" \
  WHISTLE_CONTROL="ipc://$WORK/sctl" \
  "$BIN/sinkd" 2>"$WORK/sinkd.log" &
SINKD=$!
PIDS+=("$SINKD")

wait_ready() { # name pid logfile
  for _ in $(seq 1 300); do
    grep -q 'msg=ready' "$3" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { tail -n 20 "$3" >&2; die "$1 exited"; }
    sleep 0.1
  done
  tail -n 20 "$3" >&2
  die "$1 not ready after 30 s"
}
wait_ready ledgerd "$LEDGERD" "$WORK/ledgerd.log"
wait_ready sinkd "$SINKD" "$WORK/sinkd.log"

# ledgerload prints key=value pairs; field NAME LINE extracts one.
load() { # label, then ledgerload options
  local label=$1 out; shift
  out=$("$BIN/ledgerload" --endpoint "ipc://$WORK/rpc" --sink-poll "$SINK_PG" \
        --sink-table b_sink.sink "$@") || { log "$label: $out"; die "$label run failed"; }
  log "$label: $out"
  printf '%s' "$out"
}

counters() { # control endpoint, counter names...
  local ep=$1; shift
  "$PY" - "$ep" "$@" <<'PYEOF' 2>/dev/null || true
import sys
sys.path.insert(0, "tests/lib")
import wt
st = wt.status(sys.argv[1], 3.0) or {}
print(" ".join(f"{k}={st.get(k, '?')}" for k in sys.argv[2:]))
PYEOF
}
batches() { # ledgerd batches, sinkd batches
  printf '%s %s' "$(counters "ipc://$WORK/lctl" server.batches | cut -d= -f2)" \
    "$(counters "ipc://$WORK/sctl" consumer.batches | cut -d= -f2)"
}



log "warm-up: 2000 events end to end"
load warm-up --count 2000 --inflight 500 --prefix w >/dev/null

# One throughput round: N Puts as fast as possible; the rate is events durably
# applied at the sink per second, from the first send to the sink holding all N.
round() { # round number
  local tp lb0 sb0 lb1 sb1
  settle b_ledger b_sink b_copy
  log "throughput round $1: $N events, $INFLIGHT in flight, as fast as possible"
  read -r lb0 sb0 <<<"$(batches)"
  tp=$(load "round $1" --count "$N" --inflight "$INFLIGHT" --prefix "t$1-" --poll-ms 50 --timeout 120)
  read -r lb1 sb1 <<<"$(batches)"
  log "round $1: ledgerd $(per_txn "$N" "$lb0" "$lb1") requests per transaction, sinkd $(per_txn "$N" "$sb0" "$sb1") events per transaction"
  printf '%s' "$tp"
}
HEAD0=$("${PSQL[@]}" -c "SELECT coalesce(max(seq), 0) FROM b_sink.sink")
TP1=$(round 1)

# The baseline: the very rows round 1 applied, COPYed into a table with
# sinkd's DDL (its migration 001_sink), best of two.
settle b_ledger b_sink b_copy
log "baseline: COPY of the same $N rows into an identical table"
"${PSQL[@]}" <<SQL
CREATE TABLE b_copy.sink (apply_order bigserial PRIMARY KEY, seq bigint NOT NULL UNIQUE,
  event_us bigint NOT NULL, kind text NOT NULL, addressee text NOT NULL, payload bytea NOT NULL);
ALTER TABLE b_copy.sink OWNER TO b_copy;
\copy (SELECT seq, event_us, kind, addressee, payload FROM b_sink.sink WHERE seq > $HEAD0 ORDER BY seq LIMIT $N) TO '$WORK/rows.csv' WITH (FORMAT csv)
SQL
ROWS=$(wc -l <"$WORK/rows.csv")
[ "$ROWS" -eq "$N" ] || die "the sink holds $ROWS rows of round 1, expected $N"
copy_once() {
  "${PSQL[@]}" <<SQL
TRUNCATE b_copy.sink;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
\copy b_copy.sink (seq, event_us, kind, addressee, payload) FROM '$WORK/rows.csv' WITH (FORMAT csv)
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 4);
SQL
}
C1=$(copy_once)
C2=$(copy_once)
COPY1=$(awk -v n="$N" -v s="$C1" 'BEGIN { printf "%.0f", n / s }')
COPY2=$(awk -v n="$N" -v s="$C2" 'BEGIN { printf "%.0f", n / s }')
log "COPY: $N rows in ${C1} s and ${C2} s ($COPY1 and $COPY2 rows/s)"

TP2=$(round 2)
S1=$(field sink_rate "$TP1"); S2=$(field sink_rate "$TP2")
A1=$(field rate "$TP1"); A2=$(field rate "$TP2")
STREAM_RATE=$(best "$S1" "$S2")
ACK_RATE=$(best "$A1" "$A2")
COPY_RATE=$(best "$COPY1" "$COPY2")

settle b_ledger b_sink b_copy
LAT_N=$((LAT_RATE * LAT_SECONDS))
log "latency: $LAT_N events offered at $LAT_RATE/s for $LAT_SECONDS s"
DUMP_OPT=()
[ -n "$DUMP" ] && mkdir -p "$DUMP" && DUMP_OPT=(--dump "$DUMP/latency.txt")
LT=$(load latency --count "$LAT_N" --rate "$LAT_RATE" --inflight "$INFLIGHT" --prefix l --poll-ms 2 "${DUMP_OPT[@]}")

L_RSS=$(rss "$LEDGERD" VmRSS); L_HWM=$(rss "$LEDGERD" VmHWM)
S_RSS=$(rss "$SINKD" VmRSS); S_HWM=$(rss "$SINKD" VmHWM)
log "ledgerd: $(counters "ipc://$WORK/lctl" server.requests server.batches server.rejected stream.sent stream.max_inflight)"
log "sinkd: $(counters "ipc://$WORK/sctl" consumer.applied consumer.batches consumer.resubscribes consumer.errors)"

E50=$(field e2e_p50_us "$LT"); E99=$(field e2e_p99_us "$LT")
K50=$(field ack_p50_us "$LT"); K99=$(field ack_p99_us "$LT")
row() { printf '%-40s %14s   %s\n' "$@"; }
echo
TARGET="(target >= 25%)"
[ "${BENCH_STORE:-0}" = 1 ] && TARGET="(3 rows per event against COPY's 1)"
if [ "${BENCH_STORE:-0}" = 1 ]; then
  echo "== Whistle stream bench, with the producer's business row (a ledger row per event) =="
else
  echo "== Whistle stream bench: ledgerd -> stream -> sinkd, durable apply (same-run baselines) =="
fi
row "figure" "value" "baseline and ratio"
row "stream throughput (best of 2 rounds)" "$STREAM_RATE ev/s" \
  "COPY $COPY_RATE rows/s; stream/COPY = $(ratio "$STREAM_RATE" "$COPY_RATE") $TARGET"
row "  rounds: events applied at the sink" "$S1, $S2" "COPY runs: $COPY1, $COPY2 rows/s"
row "  producer acks (committed Puts)" "$ACK_RATE req/s" "acks/COPY = $(ratio "$ACK_RATE" "$COPY_RATE")"
row "latency at $LAT_RATE ev/s: end to end p50" "$(ms "$E50")" "ack p50 $(ms "$K50"); e2e/ack = $(times "$E50" "$K50")"
row "latency at $LAT_RATE ev/s: end to end p99" "$(ms "$E99")" "ack p99 $(ms "$K99"); e2e/ack = $(times "$E99" "$K99")"
row "  offered load achieved" "$(field rate "$LT") ev/s" "sink saw $(field sink_rows "$LT") of $LAT_N events"
row "ledgerd memory VmRSS" "$((L_RSS / 1024)) MiB" "peak VmHWM $((L_HWM / 1024)) MiB"
row "sinkd memory VmRSS" "$((S_RSS / 1024)) MiB" "peak VmHWM $((S_HWM / 1024)) MiB"
echo "Throughput: first send to the sink holding all $N events (sink polled every 50 ms)."
echo "Settings: $INFLIGHT requests in flight, ledgerd batches of up to $BATCH, consumer window $SINK_WINDOW."
echo "End to end: Put.event_us at send to the row seen in b_sink.sink (libpq poll every 2 ms)."
echo "Ack: send to the committed reply. COPY: \\copy of round 1's rows into sinkd's table DDL."
