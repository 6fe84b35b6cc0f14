#!/usr/bin/env bash
# tools/run.sh: what `make run` starts until the business daemons exist. The
# foundation demo: the private Postgres, the test producer ledgerd and the test
# consumer sinkd in development mode (no CURVE), a sample load pushed through
# the group-commit server and the stream, and a summary of what happened.
# On a terminal the daemons keep running until Ctrl-C; otherwise (CI, stdin not
# a terminal, or WHISTLE_RUN_ONCE=1) it stops them after the summary.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
export BUILD
BIN=$ROOT/$BUILD/tests/bin
RUN=$ROOT/$BUILD/run
N=${WHISTLE_RUN_EVENTS:-20000}
INFLIGHT=${WHISTLE_RUN_INFLIGHT:-2000}
PY=/usr/bin/python3
L_SCHEMA=demo_ledger
S_SCHEMA=demo_sink

say() { printf '%s run: %s\n' "$(date +%H:%M:%S)" "$*"; }
show_log() { # file
  [ -f "$1" ] || return 0
  echo "---- last lines of $1"
  tail -n 20 "$1" | sed 's/^/    /'
}
started=0
die() {
  say "error: $*" >&2
  if [ "$started" = 1 ]; then
    show_log "$RUN/ledgerd.log" >&2
    show_log "$RUN/sinkd.log" >&2
  fi
  exit 1
}

once=0
if [ "${WHISTLE_RUN_ONCE:-0}" != 0 ] || [ ! -t 0 ]; then once=1; fi

for b in ledgerd sinkd; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run 'make' first"
done
[ -x "$PY" ] || die "$PY is missing (Debian's python3 with python3-zmq; tools/deps.sh installs it)"

mkdir -p "$RUN"
# ZeroMQ ipc endpoints are Unix sockets, whose paths are limited to ~100
# bytes: a deep checkout gets them under /tmp instead.
SOCK=$RUN
if [ ${#SOCK} -gt 80 ]; then
  SOCK=/tmp/whistle-run-$(printf '%s' "$RUN" | cksum | cut -d' ' -f1)
  mkdir -p "$SOCK"
fi
RPC=ipc://$SOCK/ledger-rpc
STREAM=ipc://$SOCK/ledger-stream
LCTL=ipc://$SOCK/ledgerd-control
SCTL=ipc://$SOCK/sinkd-control

# ---- the helper for status queries and progress (Debian's python3) ---------
PYHELP=$(cat <<'PYEOF'
import os, sys, time
sys.path.insert(0, os.path.join(os.environ["WHISTLE_ROOT"], "tests", "lib"))
import wt

def status(ep):
    return wt.status(ep, timeout=2.0) or {}

def running(pid):
    """True while pid runs (a finished child stays a zombie until reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False

def progress(lctl, sctl, target, timeout, loader):
    """Prints committed/applied until the consumer has applied target events;
    gives up at the timeout, or 10 s after the loader ended without progress."""
    tty = sys.stdout.isatty()
    end = time.time() + timeout
    last_print = 0.0
    seen, moved, printed = None, time.time(), None
    while True:
        l, s = status(lctl), status(sctl)
        head, pos = l.get("stream.head", 0), s.get("consumer.position", 0)
        now = time.time()
        if (head, pos) != seen:
            seen, moved = (head, pos), now
        elif not running(loader) and now - moved > 10:
            end = 0.0
        finished = head >= target and pos >= target
        gap = now - last_print
        if tty or finished or (gap >= 1.0 and (head, pos) != printed) or gap >= 5.0:
            printed = (head, pos)
            line = (f"  committed by ledgerd {head:>7}/{target}   "
                    f"applied by sinkd {pos:>7}/{target}")
            if tty:
                sys.stdout.write("\r" + line + ("\n" if finished else ""))
            else:
                print(line)
            sys.stdout.flush()
            last_print = now
        if finished:
            return 0
        if now > end:
            if tty:
                print()
            print(f"  gave up: committed {head}, applied {pos} of {target}", flush=True)
            return 1
        time.sleep(0.2)

def push(rpc, count, inflight, prefix):
    """Fallback load when ledgerload is not built: prints a ledgerload-style line."""
    items = [(f"{prefix}{i}", "*") for i in range(count)]
    t0 = time.time()
    replies = wt.LedgerClient(rpc, inflight=inflight).push(items, timeout=300)
    secs = time.time() - t0
    st = {}
    for r in replies.values():
        st[r.status] = st.get(r.status, 0) + 1
    P = wt.ledger_pb2.PutReply
    print(f"sent={count} new={st.get(P.NEW, 0)} dup={st.get(P.DUPLICATE, 0)} "
          f"bad={st.get(P.BAD, 0)} err={st.get(P.ERROR, 0) + count - len(replies)} "
          f"seconds={secs:.3f} rate={len(replies) / secs if secs else 0:.0f}", flush=True)
    return 0

def dump(ep):
    """Prints name=value lines of a daemon's status counters."""
    st = wt.status(ep, timeout=3.0)
    if st is None:
        print("  (no answer)")
        return 1
    for k in sorted(st):
        print(f"{k}={st[k]}")
    return 0

def main(mode, *a):
    if mode == "progress":
        return progress(a[0], a[1], int(a[2]), float(a[3]), int(a[4]))
    if mode == "push":
        return push(a[0], int(a[1]), int(a[2]), a[3])
    if mode == "dump":
        return dump(a[0])
    if mode == "ready":
        return 0 if wt.status(a[0], timeout=1.0) is not None else 1
    return 2

try:
    sys.exit(main(*sys.argv[1:]))
except KeyboardInterrupt:  # Ctrl-C: the script stops the daemons
    sys.exit(130)
PYEOF
)
export WHISTLE_ROOT=$ROOT
py() { "$PY" -c "$PYHELP" "$@"; }

# ---- stopping ---------------------------------------------------------------
PIDS=()
NAMES=()
# Sends SIGTERM (drain) to each daemon still running and waits for it; SIGKILL
# after 20 s. Prints each exit status when verbose is 1.
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
LOADPID=
stop_load() { [ -n "$LOADPID" ] && kill -TERM "$LOADPID" 2>/dev/null; LOADPID=; }
trap 'stop_load; stop_all 0' EXIT
trap 'echo; stop_load; say "stopping (SIGTERM to the daemons, waiting for them to drain)"; stop_all 1; exit 0' INT TERM HUP

# A previous run left running (its terminal closed, say): stop it first.
stop_stale() { # name
  local f=$RUN/$1.pid p
  [ -f "$f" ] || return 0
  p=$(cat "$f")
  if [ -n "$p" ] && grep -qa "$1" "/proc/$p/cmdline" 2>/dev/null; then
    say "stopping $1 (pid $p) left over from an earlier run"
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  fi
  rm -f "$f"
}

# Starts a daemon in its own session (a Ctrl-C on the terminal reaches only
# this script, which then drains the daemons one signal each).
start() { # name, env assignments...
  local n=$1; shift
  started=1
  : >"$RUN/$n.log"
  env WHISTLE_CURVE=0 WHISTLE_LOG_LEVEL="${WHISTLE_LOG_LEVEL:-info}" "$@" \
    setsid "$BIN/$n" </dev/null >>"$RUN/$n.log" 2>&1 &
  PIDS+=("$!"); NAMES+=("$n")
  echo "$!" >"$RUN/$n.pid"
}

wait_ready() { # name pid control-endpoint
  local i
  for i in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || die "$1 exited during start-up (log: $RUN/$1.log)"
    if grep -q 'msg=ready' "$RUN/$1.log" 2>/dev/null && py ready "$3"; then return 0; fi
    [ "$i" = 50 ] && say "still waiting for $1 ..."
    sleep 0.1
  done
  die "$1 not ready after 30 s (log: $RUN/$1.log)"
}

stop_stale ledgerd
stop_stale sinkd

# ---- Postgres -----------------------------------------------------------------
say "starting the private Postgres (tools/pgdev.sh; data in $BUILD/pg, Unix socket only)"
# A cluster caught shutting down (a test run restarting it) gets a few tries.
pg_ok=0
for _ in 1 2 3 4 5; do
  if bash tools/pgdev.sh start && bash tools/pgdev.sh reset "$L_SCHEMA" "$S_SCHEMA" >/dev/null; then
    pg_ok=1; break
  fi
  sleep 2
done
[ $pg_ok = 1 ] || die "the private Postgres did not start (log: $BUILD/pg/server.log)"
eval "$(bash tools/pgdev.sh env)"
export PGHOST PGPORT PGDATABASE
say "fresh schemas $L_SCHEMA and $S_SCHEMA (one login role each, owning only its schema)"

# ---- daemons ------------------------------------------------------------------
say "starting ledgerd and sinkd in development mode (WHISTLE_CURVE=0), endpoints in $SOCK"
start ledgerd WHISTLE_PG="user=$L_SCHEMA application_name=ledgerd" WHISTLE_SCHEMA=$L_SCHEMA \
  WHISTLE_LEDGER_RPC="$RPC" WHISTLE_LEDGER_STREAM="$STREAM" WHISTLE_CONTROL="$LCTL" \
  WHISTLE_STREAM_FULL_ACCESS=sink
LPID=$!
start sinkd WHISTLE_PG="user=$S_SCHEMA application_name=sinkd" WHISTLE_SCHEMA=$S_SCHEMA \
  WHISTLE_SINK_SOURCE="$STREAM" WHISTLE_SINK_NAME=sink WHISTLE_SINK_PRODUCER=ledger \
  WHISTLE_CONTROL="$SCTL"
SPID=$!
wait_ready ledgerd "$LPID" "$LCTL"
wait_ready sinkd "$SPID" "$SCTL"
say "ledgerd (pid $LPID) and sinkd (pid $SPID) are ready"

# ---- load -----------------------------------------------------------------------
PREFIX=demo-$(date +%s)-
LOADOUT=$RUN/load.out
say "pushing $N Put requests ($INFLIGHT in flight): each new key is one committed row and one stream event"
t0=$(date +%s.%N)
if [ -x "$BIN/ledgerload" ]; then
  "$BIN/ledgerload" --endpoint "$RPC" --count "$N" --inflight "$INFLIGHT" --prefix "$PREFIX" \
    >"$LOADOUT" 2>&1 &
else
  py push "$RPC" "$N" "$INFLIGHT" "$PREFIX" >"$LOADOUT" 2>&1 &
fi
LOADPID=$!
prc=0
py progress "$LCTL" "$SCTL" "$N" 180 "$LOADPID" || prc=$?
lrc=0
[ "$prc" = 0 ] || kill -TERM "$LOADPID" 2>/dev/null || true
wait "$LOADPID" || lrc=$?
LOADPID=
t1=$(date +%s.%N)
[ "$lrc" = 0 ] || { cat "$LOADOUT" >&2; die "the load generator failed (exit status $lrc)"; }
[ "$prc" = 0 ] || die "sinkd did not apply all $N events in time"

# ---- summary ----------------------------------------------------------------------
field() { # key text: the value of key=value in text
  printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n1
}
LOADLINE=$(grep '^sent=' "$LOADOUT" | tail -n1)
LST=$(py dump "$LCTL") || die "ledgerd does not answer on its control endpoint"
SST=$(py dump "$SCTL") || die "sinkd does not answer on its control endpoint"
lv() { printf '%s\n' "$LST" | sed -n "s/^$1=//p"; }
sv() { printf '%s\n' "$SST" | sed -n "s/^$1=//p"; }
q() { bash tools/pgdev.sh psql -tA -c "$1"; }

head_seq=$(lv stream.head); batches=$(lv server.batches); requests=$(lv server.requests)
applied=$(sv consumer.applied); cbatches=$(sv consumer.batches); position=$(sv consumer.position)
ledger_rows=$(q "SELECT count(*) FROM $L_SCHEMA.ledger")
outbox_rows=$(q "SELECT count(*) FROM $L_SCHEMA.stream_outbox")
sink_stats=$(q "SELECT count(*) || ' ' || count(DISTINCT seq) || ' ' || coalesce(min(seq),0) || ' ' || coalesce(max(seq),0) FROM $S_SCHEMA.sink")
read -r sink_rows sink_distinct sink_min sink_max <<<"$sink_stats"
out_of_order=$(q "SELECT count(*) FROM (SELECT seq, lag(seq) OVER (ORDER BY apply_order) AS prev FROM $S_SCHEMA.sink) x WHERE prev IS NOT NULL AND seq <> prev + 1")
stored_pos=$(q "SELECT coalesce(max(last_seq), 0) FROM $S_SCHEMA.stream_positions WHERE producer = 'ledger'")
columns() { printf '%s\n' "$1" | pr -3 -t -w 96 | expand | sed 's/^/  /; s/[[:space:]]*$//'; }
avg() { [ "${2:-0}" -gt 0 ] && echo $(( $1 / $2 )) || echo 0; }
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')

ok=1
[ "$head_seq" = "$N" ] && [ "$ledger_rows" = "$N" ] && [ "$sink_rows" = "$N" ] && \
  [ "$sink_distinct" = "$N" ] && [ "$sink_min" = 1 ] && [ "$sink_max" = "$N" ] && \
  [ "$out_of_order" = 0 ] && [ "$stored_pos" = "$N" ] || ok=0

cat <<EOF

==== Whistle foundation demo: ledgerd -> stream -> sinkd =========================
 load        $(field sent "$LOADLINE") Put requests answered in $(field seconds "$LOADLINE") s ($(field rate "$LOADLINE")/s): $(field new "$LOADLINE") new, $(field dup "$LOADLINE") duplicate, $(field bad "$LOADLINE") refused, $(field err "$LOADLINE") errors
 ledgerd     $requests requests committed in $batches transactions (group commit: ~$(avg "$requests" "$batches") per transaction)
             $ledger_rows rows in $L_SCHEMA.ledger, $outbox_rows events in $L_SCHEMA.stream_outbox, stream head seq $head_seq
 sinkd       $applied events applied in $cbatches transactions (~$(avg "$applied" "$cbatches") per transaction), position seq $position
             $sink_rows rows in $S_SCHEMA.sink: seq $sink_min..$sink_max, $sink_distinct distinct, $out_of_order out of order
             position stored with the rows ($S_SCHEMA.stream_positions): $stored_pos
 end to end  $N events committed and applied in ${wall} s
 exactly once, in order: $([ $ok = 1 ] && echo yes || echo NO)

---- ledgerd status (control endpoint $LCTL)
$(columns "$LST")
---- sinkd status (control endpoint $SCTL)
$(columns "$SST")

 logs        $RUN/ledgerd.log, $RUN/sinkd.log (logfmt)
 Postgres    tools/pgdev.sh psql   (e.g. SELECT * FROM $S_SCHEMA.sink ORDER BY seq DESC LIMIT 5)
 Whistle's business daemons (intake, referral, rating, escalation) are not part of
 \`make run\` yet; this demo exercises the shared library they run on.
==================================================================================
EOF

if [ $ok = 0 ]; then die "the demo's checks failed (see the summary above)"; fi

if [ $once = 1 ]; then
  say "not on a terminal (or WHISTLE_RUN_ONCE=1): stopping the daemons"
  stop_all 1
  exit 0
fi

say "ledgerd and sinkd keep running; try: kill -HUP $LPID (reload keys), or query the status again."
say "Ctrl-C to stop"
while true; do
  rc=0
  wait -n "$LPID" "$SPID" || rc=$?
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
      die "${NAMES[$i]} exited unexpectedly (status $rc; log: $RUN/${NAMES[$i]}.log)"
    fi
  done
done
