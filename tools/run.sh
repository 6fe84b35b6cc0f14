#!/usr/bin/env bash
# tools/run.sh: what `make run` starts. The foundation demo (the private Postgres,
# the test producer ledgerd and consumer sinkd in development mode, a load through
# the group-commit server and the stream), then whistle-intake taking the sample
# hotline feed from whistle-hotline, whistle-referral with its scripted unit
# clients, whistle-rating and whistle-escalation, and a summary of each. On a terminal the
# daemons keep running until Ctrl-C; otherwise (CI, stdin not a terminal, or
# WHISTLE_RUN_ONCE=1) it stops them after the summary.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
export BUILD
BIN=$ROOT/$BUILD/tests/bin
IBIN=$ROOT/$BUILD/bin
RUN=$ROOT/$BUILD/run
N=${WHISTLE_RUN_EVENTS:-20000}
INFLIGHT=${WHISTLE_RUN_INFLIGHT:-2000}
PY=/usr/bin/python3
L_SCHEMA=demo_ledger
S_SCHEMA=demo_sink
I_SCHEMA=intake
FEED=${WHISTLE_RUN_FEED:-$ROOT/deploy/feed/sample.jsonl}

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
    show_log "$RUN/intake.log" >&2
  fi
  exit 1
}

once=0
if [ "${WHISTLE_RUN_ONCE:-0}" != 0 ] || [ ! -t 0 ]; then once=1; fi

for b in "$BIN/ledgerd" "$BIN/sinkd" "$IBIN/whistle-intake" "$IBIN/whistle-hotline" \
         "$IBIN/whistle-referral" "$IBIN/whistle-rating" "$IBIN/whistle-escalation" \
         "$IBIN/whistle-dept"; do
  [ -x "$b" ] || die "$b is missing: run 'make' first"
done
[ -r "$FEED" ] || die "the hotline feed $FEED is missing (tools/gen_feed.py writes the sample)"
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
IHOT=ipc://$SOCK/intake-hotline
ISTREAM=ipc://$SOCK/intake-stream
ICTL=ipc://$SOCK/intake-control
RUNITS=ipc://$SOCK/referral-units
RSTREAM=ipc://$SOCK/referral-stream
RCTL=ipc://$SOCK/referral-control
R_SCHEMA=referral
TREQ=ipc://$SOCK/rating-requests
TSTREAM=ipc://$SOCK/rating-stream
TCTL=ipc://$SOCK/rating-control
T_SCHEMA=rating
EREQ=ipc://$SOCK/escalation-requests
ESTREAM=ipc://$SOCK/escalation-stream
ECTL=ipc://$SOCK/escalation-control
E_SCHEMA=escalation
POLICY=$ROOT/deploy/demo/dept-policy.json

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

def rejected(path):
    """Prints the feed lines intake refused, from whistle-hotline's --replies file."""
    import json
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["status"] not in ("ACCEPTED", "DUPLICATE"):
                n += 1
                print(f"  line {r['line']:>4}  {r['type']:<9} {r['ticket_no'] or '-':<22} "
                      f"{r['status']}: {r['reason'] or ''}")
    if not n:
        print("  (none)")
    return 0

def settle(ictl, rctl, timeout):
    """Waits until referral has applied all of intake's stream and its own
    stream has not moved for 1.5 s (the units have answered everything)."""
    end = time.time() + timeout
    last, since = None, time.time()
    while time.time() < end:
        i, r = status(ictl), status(rctl)
        key = (r.get("stream.head"), r.get("server.requests"))
        caught_up = r.get("intake.position", -1) >= i.get("stream.head", 0)
        if key != last:
            last, since = key, time.time()
        elif caught_up and r.get("server.pending", 1) == 0 and time.time() - since >= 1.5:
            return 0
        time.sleep(0.1)
    return 1

def closed(tctl, month_index, timeout):
    """Waits until rating has closed the month (index year * 12 + month - 1)
    and published its watermark past it."""
    ok = wt.wait_for(lambda: status(tctl).get("rating.closed_month", 0) >= month_index, timeout,
                     "rating's month close")
    return 0 if ok else 1

def export(treq, what, period):
    """Prints a rating query's JSON lines (the export shapes)."""
    import rating_client as rtc
    c = rtc.RatingClient(treq)
    c.rid += 1
    r = c.ask(rtc.query(c.rid, getattr(rtc.Q, what), period))
    if r is None:
        return 1
    for line in r.lines:
        print(line)
    return 0

def main(mode, *a):
    if mode == "closed":
        return closed(a[0], int(a[1]), float(a[2]))
    if mode == "export":
        return export(a[0], a[1], a[2] if len(a) > 2 else "")
    if mode == "settle":
        return settle(a[0], a[1], float(a[2]))
    if mode == "progress":
        return progress(a[0], a[1], int(a[2]), float(a[3]), int(a[4]))
    if mode == "push":
        return push(a[0], int(a[1]), int(a[2]), a[3])
    if mode == "dump":
        return dump(a[0])
    if mode == "ready":
        return 0 if wt.status(a[0], timeout=1.0) is not None else 1
    if mode == "rejected":
        return rejected(a[0])
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
start_prog() { # name, binary, env assignments... [-- arguments...]
  local n=$1 b=$2 envs=() ; shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  started=1
  : >"$RUN/$n.log"
  env WHISTLE_CURVE=0 WHISTLE_LOG_LEVEL="${WHISTLE_LOG_LEVEL:-info}" "${envs[@]}" \
    setsid "$b" "$@" </dev/null >>"$RUN/$n.log" 2>&1 &
  PIDS+=("$!"); NAMES+=("$n")
  echo "$!" >"$RUN/$n.pid"
}
start() { # name (a test daemon in $BIN), env assignments...
  local n=$1; shift
  start_prog "$n" "$BIN/$n" "$@"
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
stop_stale intake
stop_stale referral
stop_stale rating
stop_stale escalation

# ---- Postgres -----------------------------------------------------------------
say "starting the private Postgres (tools/pgdev.sh; data in $BUILD/pg, Unix socket only)"
# A cluster caught shutting down (a test run restarting it) gets a few tries.
pg_ok=0
for _ in 1 2 3 4 5; do
  if bash tools/pgdev.sh start &&
     bash tools/pgdev.sh reset "$L_SCHEMA" "$S_SCHEMA" "$I_SCHEMA" "$R_SCHEMA" "$T_SCHEMA" \
       "$E_SCHEMA" >/dev/null; then
    pg_ok=1; break
  fi
  sleep 2
done
[ $pg_ok = 1 ] || die "the private Postgres did not start (log: $BUILD/pg/server.log)"
eval "$(bash tools/pgdev.sh env)"
export PGHOST PGPORT PGDATABASE
say "fresh schemas $L_SCHEMA, $S_SCHEMA, $I_SCHEMA, $R_SCHEMA, $T_SCHEMA and $E_SCHEMA (one login role each, owning only its schema)"
# The unit clients' positions and outputs belong to the streams just reset.
rm -f "$RUN"/dept-*.pos "$RUN"/dept-*.jsonl "$RUN"/redispatch.* "$RUN"/notices-*

# ---- daemons ------------------------------------------------------------------
say "starting ledgerd, sinkd and intake in development mode (WHISTLE_CURVE=0), endpoints in $SOCK"
start ledgerd WHISTLE_PG="user=$L_SCHEMA application_name=ledgerd" WHISTLE_SCHEMA=$L_SCHEMA \
  WHISTLE_LEDGER_RPC="$RPC" WHISTLE_LEDGER_STREAM="$STREAM" WHISTLE_CONTROL="$LCTL" \
  WHISTLE_STREAM_FULL_ACCESS=sink
LPID=$!
start sinkd WHISTLE_PG="user=$S_SCHEMA application_name=sinkd" WHISTLE_SCHEMA=$S_SCHEMA \
  WHISTLE_SINK_SOURCE="$STREAM" WHISTLE_SINK_NAME=sink WHISTLE_SINK_PRODUCER=ledger \
  WHISTLE_CONTROL="$SCTL"
SPID=$!
# intake in event clock mode: "now" moves only with the feed's times and
# watermarks (DOMAIN R-T3), so the October 2026 sample replays the same way
# every time.
start_prog intake "$IBIN/whistle-intake" WHISTLE_PG="user=$I_SCHEMA application_name=intake" \
  WHISTLE_CLOCK=event WHISTLE_REGISTRY="$ROOT/deploy/registry" \
  WHISTLE_INTAKE_HOTLINE="$IHOT" WHISTLE_INTAKE_STREAM="$ISTREAM" WHISTLE_CONTROL="$ICTL" \
  WHISTLE_REFERRAL_STREAM_AT="$RSTREAM"
IPID=$!
# referral in event clock mode too: its clocks move with intake's watermarks.
start_prog referral "$IBIN/whistle-referral" WHISTLE_PG="user=$R_SCHEMA application_name=referral" \
  WHISTLE_CLOCK=event WHISTLE_REGISTRY="$ROOT/deploy/registry" WHISTLE_INTAKE_STREAM_AT="$ISTREAM" \
  WHISTLE_REFERRAL_UNITS="$RUNITS" WHISTLE_REFERRAL_STREAM="$RSTREAM" WHISTLE_CONTROL="$RCTL"
RPID=$!
# rating reads both streams and closes a month once both watermarks pass it.
start_prog rating "$IBIN/whistle-rating" WHISTLE_PG="user=$T_SCHEMA application_name=rating" \
  WHISTLE_CLOCK=event WHISTLE_REGISTRY="$ROOT/deploy/registry" WHISTLE_INTAKE_STREAM_AT="$ISTREAM" \
  WHISTLE_REFERRAL_STREAM_AT="$RSTREAM" WHISTLE_RATING_REQUESTS="$TREQ" \
  WHISTLE_RATING_STREAM="$TSTREAM" WHISTLE_CONTROL="$TCTL" WHISTLE_TICK_MS=200
TPID=$!
# escalation reads referral's overdue events and rating's decisions and
# numbers its notices once both watermarks pass them.
start_prog escalation "$IBIN/whistle-escalation" WHISTLE_PG="user=$E_SCHEMA application_name=escalation" \
  WHISTLE_CLOCK=event WHISTLE_REGISTRY="$ROOT/deploy/registry" WHISTLE_REFERRAL_STREAM_AT="$RSTREAM" \
  WHISTLE_RATING_STREAM_AT="$TSTREAM" WHISTLE_ESCALATION_REQUESTS="$EREQ" \
  WHISTLE_ESCALATION_STREAM="$ESTREAM" WHISTLE_CONTROL="$ECTL" WHISTLE_TICK_MS=200
EPID=$!
wait_ready ledgerd "$LPID" "$LCTL"
wait_ready sinkd "$SPID" "$SCTL"
wait_ready intake "$IPID" "$ICTL"
wait_ready referral "$RPID" "$RCTL"
wait_ready rating "$TPID" "$TCTL"
wait_ready escalation "$EPID" "$ECTL"
say "ledgerd (pid $LPID), sinkd (pid $SPID), intake (pid $IPID), referral (pid $RPID), rating (pid $TPID)"
say "  and escalation (pid $EPID) are ready"
# One scripted client per department and street office (deploy/demo/dept-policy.json).
UNITS=$( (tail -n +2 "$ROOT/deploy/registry/departments.csv"; tail -n +2 "$ROOT/deploy/registry/streets.csv") |
         cut -d, -f1)
for u in $UNITS; do
  start_prog "dept-$u" "$IBIN/whistle-dept" -- run --unit "$u" --policy "$POLICY" \
    --stream "$RSTREAM" --units "$RUNITS" --position "$RUN/dept-$u.pos" --out "$RUN/dept-$u.jsonl"
done
say "$(echo $UNITS | wc -w) department and street clients (whistle-dept run) subscribed: $(echo $UNITS)"

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

# ---- the hotline feed -------------------------------------------------------------
q() { bash tools/pgdev.sh psql -tA -c "$1"; }
localtime() { # SQL expression (microseconds), format -> SQL text in local time (+08:00)
  echo "to_char(to_timestamp(($1) / 1e6) AT TIME ZONE 'Asia/Shanghai', '$2')"
}
HOTLINE=$IBIN/whistle-hotline
HOUT=$RUN/hotline.out
HREPLIES=$RUN/hotline-replies.jsonl
HQUIET=--quiet
[ -t 2 ] && HQUIET=
# Three passes keep every line's number (other lines left blank): tickets and
# operator actions, then callbacks, then watermarks, each after the units
# have answered what the previous one caused, so the replay gives the same
# result every time (a callback meets a resolved ticket, a deadline meets
# the answers stamped before it).
phase() { # n, awk condition on the line
  awk "{ if ($2) print; else print \"\" }" "$FEED" >"$RUN/feed-$1.jsonl"
}
phase 1 '!/"type":"(feedback|watermark)"/'
phase 2 '/"type":"feedback"/'
phase 3 '/"type":"watermark"/'
settle() { # waits until referral has taken everything and the units answered
  py settle "$ICTL" "$RCTL" 120 || die "referral did not settle within 120 s"
}
# The operator (人工分拣) re-dispatches each returned step (R-R3) two hours
# after its return: a street's to the city management bureau (CGZF), a
# department's to the compound's street office.
redispatch_returned() {
  local rows n=0 t st unit at
  rows=$(q "SELECT t.ticket_no, s->>'no',
                   CASE WHEN s->>'street' = 'true' THEN 'CGZF' ELSE t.street END,
                   $(localtime "(s->>'returned')::bigint + 7200000000" 'YYYY-MM-DD"T"HH24:MI:SS"+08:00"')
              FROM $R_SCHEMA.tickets t, jsonb_array_elements(t.steps) s
             WHERE t.state = 'RETURNED' AND s->>'state' = 'RETURNED'
               AND (s->>'no')::int = jsonb_array_length(t.steps) ORDER BY 1")
  while IFS='|' read -r t st unit at; do
    [ -n "$t" ] || continue
    "$IBIN/whistle-dept" redispatch "$t" "$st" "$unit" --at "$at" --units "$RUNITS" \
      --note "人工分拣重新派单" >>"$RUN/redispatch.out" 2>>"$RUN/redispatch.log" ||
      die "re-dispatching $t step $st failed (see $RUN/redispatch.out)"
    n=$((n + 1))
  done <<<"$rows"
  say "  operator: $n returned step(s) re-dispatched (whistle-dept redispatch)"
  [ "$n" = 0 ] || settle
}
say "pushing the hotline feed ${FEED#"$ROOT"/} ($(wc -l <"$FEED") lines) to intake with whistle-hotline, in three passes"
: >"$HREPLIES"
for k in 1 2 3; do
  what=("" "tickets and operator actions" "callbacks (回访)" "watermarks (event time moves on)")
  say "  pass $k: ${what[$k]}"
  hrc=0
  "$HOTLINE" $HQUIET --endpoint "$IHOT" --replies "$RUN/replies-$k.jsonl" "$RUN/feed-$k.jsonl" \
    >"$RUN/hotline-$k.out" || hrc=$?
  [ "$hrc" = 0 ] || { cat "$RUN/hotline-$k.out" >&2; die "whistle-hotline failed (exit status $hrc)"; }
  cat "$RUN/replies-$k.jsonl" >>"$HREPLIES"
  settle
  [ "$k" = 1 ] && redispatch_returned
done
cat "$RUN/hotline-1.out" "$RUN/hotline-2.out" "$RUN/hotline-3.out" >"$HOUT"
# What intake holds, before and after the whole feed is sent again (R-I1).
snapshot() {
  q "SELECT md5(coalesce((SELECT string_agg(t::text, ',' ORDER BY id) FROM $I_SCHEMA.tickets t), '')
         || coalesce((SELECT string_agg(f::text, ',' ORDER BY f) FROM $I_SCHEMA.feedback f), '')
         || coalesce((SELECT string_agg(seq || kind || md5(payload), ',' ORDER BY seq)
                        FROM $I_SCHEMA.stream_outbox), ''))"
}
before=$(snapshot)
say "sending the same feed again: intake must answer DUPLICATE (or REJECTED again) and change nothing"
hrc=0
"$HOTLINE" --quiet --endpoint "$IHOT" "$FEED" >"$RUN/hotline-again.out" || hrc=$?
[ "$hrc" = 0 ] || { cat "$RUN/hotline-again.out" >&2; die "whistle-hotline failed on the resend (exit status $hrc)"; }
after=$(snapshot)

# ---- summary ----------------------------------------------------------------------
field() { # key text: the value of key=value in text
  printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n1
}
LOADLINE=$(grep '^sent=' "$LOADOUT" | tail -n1)
LST=$(py dump "$LCTL") || die "ledgerd does not answer on its control endpoint"
SST=$(py dump "$SCTL") || die "sinkd does not answer on its control endpoint"
lv() { printf '%s\n' "$LST" | sed -n "s/^$1=//p"; }
sv() { printf '%s\n' "$SST" | sed -n "s/^$1=//p"; }

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

==================================================================================
EOF

# ---- intake summary ---------------------------------------------------------------
IST=$(py dump "$ICTL") || die "intake does not answer on its control endpoint"
iv() { printf '%s\n' "$IST" | sed -n "s/^$1=//p"; }
# The "total" row of a whistle-hotline summary: ACCEPTED DUPLICATE REJECTED
# UNAVAILABLE NO_REPLY not_sent.
hl_total() { awk '$1 == "total" { for (i = 3; i <= 8; i++) t[i] += $i }
                 END { print t[3] + 0, t[4] + 0, t[5] + 0, t[6] + 0, t[7] + 0, t[8] + 0 }' "$@"; }
read -r h_acc h_dup h_rej h_una h_none h_unsent <<<"$(hl_total "$RUN"/hotline-[123].out)"
read -r a_acc a_dup a_rej a_una a_none a_unsent <<<"$(hl_total "$RUN/hotline-again.out")"
h_feed="$(grep -c . "$FEED") lines in three passes (tickets and operator actions, callbacks, watermarks)"
h_elapsed=$(sed -n 's/^  elapsed: \([0-9.]*\) s.*/\1/p' "$HOUT" | awk '{ t += $1 } END { printf "%.2f", t }')
h_lines=$(( h_acc + h_dup + h_rej + h_una + h_none + h_unsent ))
tally() { # column table: "value n, value n, ..." by count
  q "SELECT coalesce(string_agg($1 || ' ' || n, ', ' ORDER BY n DESC, $1), 'none')
       FROM (SELECT $1, count(*) AS n FROM $2 GROUP BY 1) x"
}
n_tickets=$(q "SELECT count(*) FROM $I_SCHEMA.tickets")
n_triaged=$(q "SELECT count(*) FROM $I_SCHEMA.tickets WHERE triaged_us IS NOT NULL")
n_exempt=$(q "SELECT count(*) FROM $I_SCHEMA.tickets WHERE exempt_reason IS NOT NULL")
n_feedback=$(q "SELECT count(*) FROM $I_SCHEMA.feedback")
n_events=$(q "SELECT count(*) FROM $I_SCHEMA.stream_outbox")
by_disp=$(tally disposition "$I_SCHEMA.tickets")
by_type=$(tally request_type "$I_SCHEMA.tickets")
by_source=$(tally category_source "$I_SCHEMA.tickets")
by_sat=$(tally satisfaction "$I_SCHEMA.feedback")
by_kind=$(tally kind "$I_SCHEMA.stream_outbox")
watermark=$(q "SELECT coalesce($(localtime "max(event_us)" 'YYYY-MM-DD"T"HH24:MI:SS"+08:00"'), 'none')
                 FROM $I_SCHEMA.stream_outbox WHERE kind = 'WATERMARK'")
categories=$(q "SELECT category, count(*), count(*) FILTER (WHERE disposition = 'DISPATCHED'),
                       count(*) FILTER (WHERE disposition = 'REPEAT')
                  FROM $I_SCHEMA.tickets GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10" |
  awk -F'|' 'NR == FNR { split($0, c, ","); name[c[1]] = c[2]; next }
             { printf "  %-20s %4d tickets, %4d dispatched, %3d repeats   %s\n", $1, $2, $3, $4, name[$1] }' \
      "$ROOT/deploy/registry/categories.csv" -)
triage=$(q "SELECT ticket_no, $(localtime received_us 'MM-DD HH24:MI'), request_type, category,
                   triage_reason, address, content
              FROM $I_SCHEMA.tickets WHERE disposition = 'TRIAGE' ORDER BY received_us" |
  awk -F'|' '{ printf "  %s  %s  %-9s %-14s %s\n      address %s; content %s\n", $1, $2, $3, $4, $5, $6, $7 }
             END { if (!NR) print "  (empty)" }')
repeats=$(q "SELECT t.ticket_no, t.repeat_of, t.compound, t.category,
                    round((t.received_us - e.received_us) / 86400e6, 1)
               FROM $I_SCHEMA.tickets t JOIN $I_SCHEMA.tickets e ON e.ticket_no = t.repeat_of
              ORDER BY t.received_us" |
  awk -F'|' '{ printf "  %s repeats %s  (%s %s, %s days later)\n", $1, $2, $3, $4, $5 }
             END { if (!NR) print "  (none)" }')
rejected=$(py rejected "$HREPLIES")

# R-I6: one caller's phone, searched for in every text, JSON and bytea column of
# every schema (intake's own tables and its stream payloads included), except
# intake.callers where it belongs; then its masked form, which must be found.
phone=$(grep -o '"caller_phone":"[^"]*"' "$FEED" | sed 's/^"caller_phone":"//; s/"$//' |
        awk 'NF && !p { print; p = 1 }')
search() { # text -> columns|schemas|other schemas|rows found|where|rows in intake.callers
  q "WITH cols AS (
       SELECT c.table_schema AS s, c.table_name AS t, c.column_name AS col, c.data_type AS dt
         FROM information_schema.columns c
         JOIN information_schema.tables tb USING (table_schema, table_name)
        WHERE tb.table_type = 'BASE TABLE'
          AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
          AND c.table_schema NOT LIKE 'pg\_%'
          AND NOT (c.table_schema = '$I_SCHEMA' AND c.table_name = 'callers')
          AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea')),
     hits AS (
       SELECT s, t, col, (xpath('/row/n/text()', query_to_xml(format(CASE WHEN dt = 'bytea'
           THEN 'SELECT count(*) AS n FROM %I.%I WHERE position(convert_to(%L, ''UTF8'') IN %I) > 0'
           ELSE 'SELECT count(*) AS n FROM %I.%I WHERE %4\$I::text LIKE ''%%'' || %3\$L || ''%%''' END,
           s, t, '$1', col), false, true, '')))[1]::text::bigint AS n
         FROM cols)
     SELECT count(*), count(DISTINCT s), count(DISTINCT s) FILTER (WHERE s <> '$I_SCHEMA'),
            coalesce(sum(n), 0),
            coalesce(string_agg(s || '.' || t || '.' || col, ', ' ORDER BY s, t, col)
                     FILTER (WHERE n > 0), '-'),
            (SELECT count(*) FROM $I_SCHEMA.callers WHERE phone = '$1')
       FROM hits"
}
leaks=unknown
if [[ "$phone" =~ ^[0-9+-]{5,20}$ ]]; then
  masked=$(q "SELECT t.masked_phone FROM $I_SCHEMA.tickets t
                JOIN $I_SCHEMA.callers c ON c.ticket_id = t.id WHERE c.phone = '$phone' LIMIT 1")
  IFS='|' read -r p_cols p_schemas p_other leaks p_where p_callers <<<"$(search "$phone")"
  m_rows=0; m_where=-
  [ -n "$masked" ] && IFS='|' read -r _ _ _ m_rows m_where _ <<<"$(search "$masked")"
  privacy="caller ${masked:-?} (the feed's first caller phone, searched for in full):
             $p_callers rows in $I_SCHEMA.callers, where it belongs; $leaks rows anywhere else
             ($p_cols text, JSON and bytea columns: $I_SCHEMA's other tables and its stream
             payloads, and $p_other other schemas)
             control: the masked form ${masked:-?} is found in $m_rows rows ($m_where)"
else
  privacy="no caller phone in the feed: nothing to search for"
  leaks=0
fi

ok2=1
[ "$h_una" = 0 ] && [ "$h_none" = 0 ] && [ "$h_unsent" = 0 ] && [ "$a_acc" = 0 ] && \
  [ "$a_una" = 0 ] && [ "$a_none" = 0 ] && [ "$a_unsent" = 0 ] && [ "$before" = "$after" ] && \
  [ "$n_tickets" = "$(iv intake.accepted)" ] && [ "$leaks" = 0 ] || ok2=0

cat <<EOF

==== Whistle intake: the hotline feed -> whistle-intake (event clock) ============
 feed        ${FEED#"$ROOT"/}: $h_feed
 answered    $h_lines lines in $h_elapsed s: $h_acc ACCEPTED, $h_dup DUPLICATE, $h_rej REJECTED, $h_una UNAVAILABLE, $((h_none + h_unsent)) unanswered
 tickets     $n_tickets in $I_SCHEMA.tickets: $by_disp
             ($n_triaged of them came out of manual triage, completed by an operator)
             by request type: $by_type
             category from: $by_source
 callbacks   $n_feedback: $by_sat; exempted (核减): $n_exempt
 stream      $n_events events in $I_SCHEMA.stream_outbox: $by_kind
             last watermark $watermark
 resent      the whole feed again: $a_acc ACCEPTED, $a_dup DUPLICATE, $a_rej REJECTED;
             tickets, callbacks and stream unchanged: $([ "$before" = "$after" ] && echo yes || echo NO)
 privacy     $privacy
 checks      every line answered, nothing changed by the resend, no phone outside intake: $([ $ok2 = 1 ] && echo yes || echo NO)

---- whistle-hotline summary ($HOUT)
$(sed 's/^/  /' "$HOUT")
---- tickets by category (top 10)
$categories
---- manual triage queue (waiting for an operator's TriageComplete)
$triage
---- repeats (R-I5: same caller, compound and category within 7 days)
$repeats
---- lines intake refused (feed line, reason; every reply in $HREPLIES)
$rejected
---- intake status (control endpoint $ICTL)
$(columns "$IST")

 logs        $RUN/ledgerd.log, $RUN/sinkd.log, $RUN/intake.log (logfmt)
 Postgres    tools/pgdev.sh psql   (e.g. SELECT ticket_no, category, disposition FROM $I_SCHEMA.tickets LIMIT 5)
==================================================================================
EOF

. "$ROOT/tools/run_referral.sh"
. "$ROOT/tools/run_rating.sh"
. "$ROOT/tools/run_escalation.sh"

if [ $ok = 0 ]; then die "the demo's checks failed (see the summary above)"; fi
if [ $ok2 = 0 ]; then die "the intake checks failed (see the summary above)"; fi
if [ $ok3 = 0 ]; then die "the referral checks failed (see the summary above)"; fi
if [ $ok4 = 0 ]; then die "the rating checks failed (see the summary above)"; fi
if [ $ok5 = 0 ]; then die "the escalation checks failed (see the summary above)"; fi

if [ $once = 1 ]; then
  say "not on a terminal (or WHISTLE_RUN_ONCE=1): stopping the daemons"
  stop_all 1
  exit 0
fi

say "the daemons and the unit clients keep running; try: kill -HUP $IPID (intake reloads registry and keys),"
say "  $BUILD/bin/whistle-hotline --endpoint $IHOT FEED.jsonl,"
say "  $BUILD/bin/whistle-dept watch --unit GA --stream $RSTREAM --until-idle 2000 (GA's steps as JSON),"
say "  $BUILD/bin/whistle-dept notices --unit S0101 --stream $ESTREAM --until-idle 2000 (a street's notices),"
say "  $BUILD/bin/whistle-dept sign 'NUMBER' --unit UNIT --requests $EREQ (签收),"
say "  tail -f $RUN/dept-GA.jsonl, or query the status again."
say "Ctrl-C to stop"
while true; do
  rc=0
  wait -n "$LPID" "$SPID" "$IPID" "$RPID" "$TPID" "$EPID" || rc=$?
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
      die "${NAMES[$i]} exited unexpectedly (status $rc; log: $RUN/${NAMES[$i]}.log)"
    fi
  done
done
