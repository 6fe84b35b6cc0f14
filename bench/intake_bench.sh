#!/usr/bin/env bash
# bench/intake_bench.sh: whistle-intake through its real hotline socket, each
# ticket acknowledged only after its transaction committed (durably:
# synchronous_commit on), printed beside two baselines measured in the same
# run on the very rows the daemon stored:
#   naive: one INSERT transaction per ticket (a ticket row, its callers row,
#          its outbox event with the stream head bumped: what intake commits
#          per ticket), one statement per ticket from one client connection;
#   COPY:  the same rows COPYed into tables with the same DDL (the ceiling).
# Then the ack latency at a fixed offered load (paced hotlineload), beside
# the disk's own fdatasync latency probed meanwhile (a stall of the disk
# delays every durable commit), and the daemon's memory. Figures are ratios against the baselines; no pass/fail.
#
# Knobs: BENCH_TICKETS (per throughput round, two rounds), BENCH_INFLIGHT,
# BENCH_INTAKE_BATCH (WHISTLE_BATCH), BENCH_NAIVE (tickets in the naive run),
# BENCH_LAT_RATE, BENCH_LAT_SECONDS, BENCH_DUMP (a directory: per-ticket
# records of the latency run). It runs on a private cluster of its own
# (WHISTLE_PGDEV_DIR/WHISTLE_PGDEV_PORT, default /tmp/whistle-bench-pg:54339,
# as bench/run.sh), so test runs that stop or restart the shared cluster stay
# out of the figures.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
BIN=$ROOT/$BUILD
N=${BENCH_TICKETS:-100000}
INFLIGHT=${BENCH_INFLIGHT:-8000}
BATCH=${BENCH_INTAKE_BATCH:-2000}
NAIVE_N=${BENCH_NAIVE:-10000}
LAT_RATE=${BENCH_LAT_RATE:-5000}
LAT_SECONDS=${BENCH_LAT_SECONDS:-10}
DUMP=${BENCH_DUMP:-}
export WHISTLE_PGDEV_DIR=${WHISTLE_PGDEV_DIR:-/tmp/whistle-bench-pg}
export WHISTLE_PGDEV_PORT=${WHISTLE_PGDEV_PORT:-54339}
PY=/usr/bin/python3

log() { printf '%s intake-bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
. "$ROOT/bench/lib.sh"
die() {
  log "error: $*"
  [ -f "${WORK:-/nonexistent}/intake.log" ] && { echo "--- last lines of intake.log"; tail -n 15 "$WORK/intake.log"; } >&2
  exit 1
}

[ -x "$BIN/bin/whistle-intake" ] || die "$BIN/bin/whistle-intake missing (make build-all)"
[ -x "$BIN/tests/bin/hotlineload" ] || die "$BIN/tests/bin/hotlineload missing (make build-all)"
[ "$NAIVE_N" -le "$N" ] || die "BENCH_NAIVE must not exceed BENCH_TICKETS"

WORK=$(mktemp -d /tmp/whistle-intake-bench-XXXXXX)
INTAKE=
cleanup() {
  if [ -n "$INTAKE" ]; then
    kill -TERM "$INTAKE" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$INTAKE" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$INTAKE" 2>/dev/null || true
    wait "$INTAKE" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PSQL=(psql -X -q -v ON_ERROR_STOP=1 -A -t -U postgres)
bench_pg_start
bash tools/pgdev.sh reset intake b_naive b_copy >/dev/null
[ "$("${PSQL[@]}" -c 'SHOW fsync')" = on ] || die "fsync is not on"

log "starting whistle-intake (WHISTLE_CURVE=0, wall clock, batches of up to $BATCH)"
WHISTLE_CURVE=0 WHISTLE_LOG_LEVEL=info WHISTLE_PG="user=intake" \
  WHISTLE_INTAKE_HOTLINE="ipc://$WORK/hotline" WHISTLE_INTAKE_STREAM="ipc://$WORK/stream" \
  WHISTLE_CONTROL="ipc://$WORK/ctl" WHISTLE_REGISTRY="$ROOT/deploy/registry" \
  WHISTLE_BATCH="$BATCH" "$BIN/bin/whistle-intake" 2>"$WORK/intake.log" &
INTAKE=$!
for _ in $(seq 1 300); do
  grep -q 'msg="stream ready"' "$WORK/intake.log" 2>/dev/null && break
  kill -0 "$INTAKE" 2>/dev/null || die "whistle-intake exited"
  sleep 0.1
done
grep -q 'msg="stream ready"' "$WORK/intake.log" || die "whistle-intake not ready after 30 s"

# hotlineload prints key=value pairs; field NAME LINE extracts one.
load() { # label, then hotlineload options
  local label=$1 out; shift
  out=$("$BIN/tests/bin/hotlineload" --endpoint "ipc://$WORK/hotline" \
        --registry "$ROOT/deploy/registry" "$@") || { log "$label: $out"; die "$label run failed"; }
  log "$label: $out"
  printf '%s' "$out"
}
counter() { # name: one counter of intake's status
  "$PY" - "ipc://$WORK/ctl" "$1" <<'PYEOF' 2>/dev/null || echo "?"
import sys
sys.path.insert(0, "tests/lib")
import wt
st = wt.status(sys.argv[1], 3.0) or {}
print(st.get(sys.argv[2], "?"))
PYEOF
}
head_seq() { "${PSQL[@]}" -c "SELECT last_seq FROM intake.stream_head"; }
rate_of() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }


log "warm-up: 2000 tickets"
load warm-up --count 2000 --inflight 500 --prefix w- --seed 7 >/dev/null

round() { # round number: N tickets as fast as possible
  local out b0 b1
  settle intake b_naive b_copy
  log "throughput round $1: $N tickets, $INFLIGHT in flight"
  b0=$(counter server.batches)
  out=$(load "round $1" --count "$N" --inflight "$INFLIGHT" --prefix "t$1-" --seed "$1" --timeout 120)
  b1=$(counter server.batches)
  [ "$(field accepted "$out")" = "$N" ] || die "round $1: not every ticket was ACCEPTED"
  log "round $1: $(per_txn "$N" "$b0" "$b1") tickets per transaction"
  printf '%s' "$out"
}
H0=$(head_seq)
TP1=$(round 1)
H1=$(head_seq)

# ---- the baselines, on round 1's rows ----------------------------------------
settle intake b_naive b_copy
log "baselines: tables with intake's DDL; the rows of round 1 exported"
"${PSQL[@]}" <<SQL
CREATE TABLE b_copy.tickets (LIKE intake.tickets INCLUDING ALL EXCLUDING DEFAULTS);
CREATE TABLE b_copy.callers (LIKE intake.callers INCLUDING ALL,
  FOREIGN KEY (ticket_id) REFERENCES b_copy.tickets (id));
CREATE TABLE b_copy.stream_outbox (LIKE intake.stream_outbox INCLUDING ALL);
CREATE TABLE b_naive.tickets (LIKE intake.tickets INCLUDING ALL EXCLUDING DEFAULTS);
CREATE SEQUENCE b_naive.tickets_id_seq OWNED BY b_naive.tickets.id;
ALTER TABLE b_naive.tickets ALTER id SET DEFAULT nextval('b_naive.tickets_id_seq');
CREATE TABLE b_naive.callers (LIKE intake.callers INCLUDING ALL,
  FOREIGN KEY (ticket_id) REFERENCES b_naive.tickets (id));
CREATE TABLE b_naive.stream_outbox (LIKE intake.stream_outbox INCLUDING ALL);
CREATE TABLE b_naive.stream_head (LIKE intake.stream_head INCLUDING ALL);
INSERT INTO b_naive.stream_head VALUES (1, 0);
\copy (SELECT t.* FROM intake.tickets t WHERE t.ticket_no LIKE 't1-%' ORDER BY t.id) TO '$WORK/tickets.csv' WITH (FORMAT csv)
\copy (SELECT c.* FROM intake.callers c JOIN intake.tickets t ON t.id = c.ticket_id WHERE t.ticket_no LIKE 't1-%' ORDER BY c.ticket_id) TO '$WORK/callers.csv' WITH (FORMAT csv)
\copy (SELECT * FROM intake.stream_outbox WHERE seq > $H0 AND seq <= $H1 ORDER BY seq) TO '$WORK/outbox.csv' WITH (FORMAT csv)
SQL
for f in tickets callers outbox; do
  rows=$(wc -l <"$WORK/$f.csv")
  [ "$rows" -eq "$N" ] || die "$f of round 1: $rows rows, expected $N"
done
# The naive client's statements: per ticket, its row, its caller and its
# event (the head bumped for a gapless seq), one statement = one transaction.
"${PSQL[@]}" -o "$WORK/naive.sql" <<SQL
WITH t AS (SELECT t.*, c.phone, c.name, row_number() OVER (ORDER BY t.id) AS k
             FROM intake.tickets t JOIN intake.callers c ON c.ticket_id = t.id
            WHERE t.ticket_no LIKE 't1-%'),
     e AS (SELECT o.*, row_number() OVER (ORDER BY o.seq) AS k FROM intake.stream_outbox o
            WHERE o.seq > $H0 AND o.seq <= $H1)
SELECT format('WITH h AS (UPDATE b_naive.stream_head SET last_seq = last_seq + 1 RETURNING last_seq),'
  ' t AS (INSERT INTO b_naive.tickets (ticket_no, fingerprint, received_us, request_type,'
  ' hotline_category, category, category_source, compound, street, district, address, content,'
  ' urgency, pseudonym, masked_phone, disposition, repeat_of, triage_reason) VALUES (%L, %L, %s,'
  ' %L, %L, %L, %L, %L, %L, %L, %L, %L, %s, %L, %L, %L, %L, %L) RETURNING id),'
  ' c AS (INSERT INTO b_naive.callers (ticket_id, phone, name) SELECT id, %L, %L FROM t)'
  ' INSERT INTO b_naive.stream_outbox (seq, event_us, kind, addressee, payload)'
  ' SELECT last_seq, %s, %L, %L, decode(%L, ''hex'') FROM h;',
  t.ticket_no, t.fingerprint, t.received_us, t.request_type, t.hotline_category, t.category,
  t.category_source, t.compound, t.street, t.district, t.address, t.content, t.urgency,
  t.pseudonym, t.masked_phone, t.disposition, t.repeat_of, t.triage_reason, t.phone, t.name,
  e.event_us, e.kind, e.addressee, encode(e.payload, 'hex'))
  FROM t JOIN e USING (k) ORDER BY k LIMIT $NAIVE_N;
SQL
[ "$(wc -l <"$WORK/naive.sql")" -eq "$NAIVE_N" ] || die "naive statements: expected $NAIVE_N"

copy_once() {
  "${PSQL[@]}" <<SQL
TRUNCATE b_copy.callers, b_copy.tickets, b_copy.stream_outbox;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
\copy b_copy.tickets FROM '$WORK/tickets.csv' WITH (FORMAT csv)
\copy b_copy.callers FROM '$WORK/callers.csv' WITH (FORMAT csv)
\copy b_copy.stream_outbox FROM '$WORK/outbox.csv' WITH (FORMAT csv)
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 4);
SQL
}
naive_once() {
  "${PSQL[@]}" <<SQL
TRUNCATE b_naive.callers, b_naive.tickets, b_naive.stream_outbox;
UPDATE b_naive.stream_head SET last_seq = 0;
CHECKPOINT;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
\i $WORK/naive.sql
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 4);
SQL
}
log "baseline COPY: the $N tickets' rows (tickets, callers, outbox), twice"
C1=$(copy_once); C2=$(copy_once)
COPY1=$(rate_of "$N" "$C1"); COPY2=$(rate_of "$N" "$C2")
log "COPY: $N tickets in ${C1} s and ${C2} s ($COPY1 and $COPY2 tickets/s)"
log "baseline naive: $NAIVE_N tickets, one INSERT transaction each, twice"
NV1=$(naive_once); NV2=$(naive_once)
NAIVE1=$(rate_of "$NAIVE_N" "$NV1"); NAIVE2=$(rate_of "$NAIVE_N" "$NV2")
log "naive: $NAIVE_N tickets in ${NV1} s and ${NV2} s ($NAIVE1 and $NAIVE2 tickets/s)"
[ "$("${PSQL[@]}" -c "SELECT count(*) FROM b_naive.stream_outbox")" = "$NAIVE_N" ] \
  || die "the naive run did not store every ticket"
"${PSQL[@]}" -c "TRUNCATE b_naive.callers, b_naive.tickets, b_naive.stream_outbox, b_copy.callers, b_copy.tickets, b_copy.stream_outbox"
# The exported rows (a few hundred MB) are not needed any more: removed now,
# the kernel never writes them back in the middle of a later phase.
rm -f "$WORK"/*.csv "$WORK/naive.sql"

TP2=$(round 2)
A1=$(field accepted_rate "$TP1"); A2=$(field accepted_rate "$TP2")
RATE=$(best "$A1" "$A2")
COPY_RATE=$(best "$COPY1" "$COPY2")
NAIVE_RATE=$(best "$NAIVE1" "$NAIVE2")

settle intake b_naive b_copy
LAT_N=$((LAT_RATE * LAT_SECONDS))
log "latency: $LAT_N tickets offered at $LAT_RATE/s for $LAT_SECONDS s"
DUMP_OPT=()
[ -n "$DUMP" ] && mkdir -p "$DUMP" && DUMP_OPT=(--dump "$DUMP/intake-latency.txt")
LB0=$(counter server.batches)
fsync_probe "$WHISTLE_PGDEV_DIR" "$LAT_SECONDS" >"$WORK/fsync.txt" &
PROBE=$!
LT=$(load latency --count "$LAT_N" --rate "$LAT_RATE" --inflight "$INFLIGHT" --prefix l- --seed 3 \
     "${DUMP_OPT[@]}")
LB1=$(counter server.batches)
wait "$PROBE" || true
FS=$(cat "$WORK/fsync.txt")

RSS=$(rss "$INTAKE" VmRSS); HWM=$(rss "$INTAKE" VmHWM)
ROWS=$("${PSQL[@]}" -c "SELECT count(*) FROM intake.tickets")
log "intake: accepted=$(counter intake.accepted) rejected=$(counter intake.rejected) batches=$(counter server.batches) tickets stored=$ROWS"

K50=$(field ack_p50_us "$LT"); K99=$(field ack_p99_us "$LT"); KMAX=$(field ack_max_us "$LT")
row() { printf '%-44s %16s   %s\n' "$@"; }
echo
echo "== Whistle intake bench: hotline socket -> whistle-intake -> Postgres, ack after durable commit (same-run baselines) =="
row "figure" "value" "baseline and ratio"
row "ACCEPTED tickets/s (best of 2 rounds)" "$RATE /s" \
  "naive (1 INSERT txn per ticket) $NAIVE_RATE /s: $(times "$RATE" "$NAIVE_RATE") (target >= 10x)"
row "" "" "COPY of the same rows $COPY_RATE /s: $(ratio "$RATE" "$COPY_RATE") (target >= 40%)"
row "  rounds of $N tickets" "$A1, $A2" "naive runs $NAIVE1, $NAIVE2; COPY runs $COPY1, $COPY2"
row "ack latency at $LAT_RATE/s offered: p50" "$(ms "$K50")" ""
row "ack latency at $LAT_RATE/s offered: p99" "$(ms "$K99")" "max $(ms "$KMAX") (target p99 <= 20 ms)"
row "  the disk's own fdatasync meanwhile: max" "$(ms "$(field max_us "$FS")")" \
  "$(field over20 "$FS") syncs over 20 ms (8 kB every 10 ms in the cluster directory: stalls of the disk itself)"
row "  offered load achieved" "$(field rate "$LT") /s" \
  "$(per_txn "$LAT_N" "$LB0" "$LB1") tickets per transaction at this load"
row "whistle-intake memory VmRSS" "$((RSS / 1024)) MiB" "peak VmHWM $((HWM / 1024)) MiB, $ROWS tickets stored"
echo "Tickets: varied from deploy/registry by hotlineload (compounds by name, alias or code, keywords,"
echo "all request types, callers' phones and names); every one ACCEPTED, committed with its caller row"
echo "and its ticket.accepted outbox event. Settings: $INFLIGHT in flight, WHISTLE_BATCH=$BATCH, no"
echo "stream subscriber. Naive: $NAIVE_N of round 1's tickets, one statement (ticket + caller + event,"
echo "head bumped) per transaction from one psql connection. COPY: round 1's rows into the same DDL."
