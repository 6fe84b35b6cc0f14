#!/usr/bin/env bash
# bench/escalation_bench.sh: whistle-escalation, from overdue events and
# rating decisions to numbered notices on its stream, beside the raw stream
# read of the same run:
#   set-up:   BENCH_ESC_TICKETS tickets through the real whistle-intake (event
#             clocks), dispatched by whistle-referral, nobody accepting them;
#             a hotline watermark BENCH_ESC_DAYS days ahead then makes
#             referral append an ACCEPT_OVERDUE and a RESOLVE_OVERDUE per
#             step at its deadlines, and rating close the months it passes
#             (its decisions). Escalation is stopped meanwhile.
#   notices:  whistle-escalation starts on both streams from the beginning,
#             with a subscriber (whistle-dept notices, the full-access
#             identity ops) on its stream: notices per second from
#             escalation's Postgres connection being up to the subscriber
#             having received every notice.issued (and, beside it, to
#             escalation's status counting them all: issued and committed).
#   baseline: the same subscriber (whistle-dept watch, the full-access
#             identity rating) reading referral's whole stream, which holds
#             those overdue events, from the beginning: events per second
#             from its start to the last event received; and a fresh
#             subscriber reading escalation's stream of notices again.
# Both subscribers write their JSON lines to memory (/dev/shm when there is
# one), as the referral bench's does. Knobs: BENCH_ESC_TICKETS (default
# 20000), BENCH_ESC_DAYS (60), BENCH_ESC_PERF (a directory: perf record (DWARF call graphs) of
# whistle-escalation and its Postgres backends during the notices phase, its
# figures then from the recording's start: not the headline ones). Runs on
# its own private cluster (as bench/run.sh). No pass/fail.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
export BUILD
BIN=$ROOT/$BUILD
N=${BENCH_ESC_TICKETS:-20000}
DAYS=${BENCH_ESC_DAYS:-60}
PERF=${BENCH_ESC_PERF:-}   # a directory: perf record of the notices phase (perf.data)
export WHISTLE_PGDEV_DIR=${WHISTLE_PGDEV_DIR:-/tmp/whistle-bench-pg}
export WHISTLE_PGDEV_PORT=${WHISTLE_PGDEV_PORT:-54339}
PY=/usr/bin/python3

log() { printf '%s escalation-bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
. "$ROOT/bench/lib.sh"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -A -t -U postgres)
die() {
  log "error: $*"
  for f in intake referral rating escalation; do
    [ -f "${WORK:-/nonexistent}/$f.log" ] && { echo "--- last lines of $f.log"; tail -n 8 "$WORK/$f.log"; } >&2
  done
  exit 1
}
for b in bin/whistle-intake bin/whistle-referral bin/whistle-rating bin/whistle-escalation bin/whistle-dept \
         tests/bin/hotlineload; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing (make build-all)"
done
[ "$N" -ge 100 ] || die "BENCH_ESC_TICKETS must be at least 100"

WORK=$(mktemp -d /tmp/whistle-escalation-bench-XXXXXX)
# The subscribers' files live in memory: a recipient's client runs on its own
# machine, and its fsyncs must not queue behind the daemons' commits.
EVDIR=$WORK
[ -d /dev/shm ] && [ -w /dev/shm ] && EVDIR=$(mktemp -d /dev/shm/whistle-escalation-bench-XXXXXX)
declare -A PID=()
cleanup() {
  [ -z "${PID[perf]:-}" ] || kill -INT "${PID[perf]}" 2>/dev/null || true
  stop reader escalation rating referral intake
  rm -rf "$WORK"
  [ "$EVDIR" = "$WORK" ] || rm -rf "$EVDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_pg_start

# The daemons on ipc endpoints under WORK, event clocks (time moves only with
# the tickets' and the hotline's watermarks).
start() { start_daemon "$1" "$ROOT/deploy/registry"; } # name
declare -A CTL=([intake]=ipc://$WORK/ictl [referral]=ipc://$WORK/rctl [rating]=ipc://$WORK/rtctl
                [escalation]=ipc://$WORK/ectl)
ctl() { printf '%s' "${CTL[$1]}"; }

# Python helpers on the test library (status queries, the hotline client).
pyhelp() { # command, args...
  "$PY" - "$@" <<'PYEOF'
import json, os, sys, time
sys.path.insert(0, "bench")
from bench_status import common, st, wt  # noqa: F401 (ready, get, follow)
cmd, args = sys.argv[1], sys.argv[2:]
rc = common(cmd, args)
if rc is not None:
    sys.exit(rc)
if cmd == "watermark":  # hotline endpoint, from us, to us
    # Intake takes a time at most a day past its clock (R-I8), which in event
    # mode the watermarks move: the hotline's watermark goes forward 20 hours
    # at a time.
    import intake_client as ic
    hc = ic.HotlineClient(args[0])
    at, to, rid = int(args[1]), int(args[2]), 0
    while at < to:
        at = min(to, at + 20 * 3600 * 1000000)
        rid += 1
        r = hc.ask(ic.watermark(rid, at), rid, 30)
        if r is None or r.status != ic.ACCEPTED:
            print(f"watermark {at} refused: {r}", file=sys.stderr)
            sys.exit(1)
elif cmd == "settled":  # referral ctl, rating ctl, watermark us, timeout s: both streams final
    rf, rt, wm, end = args[0], args[1], int(args[2]), time.time() + float(args[3])
    last, same = None, 0
    while time.time() < end:
        a, b = st(rf), st(rt)
        cur = (a.get("stream.head"), b.get("stream.head"))
        if (a.get("clock.out_watermark_us", 0) >= wm and b.get("clock.out_watermark_us", 0) >= wm
                and b.get("referral.position", -1) >= (cur[0] or 0) and cur == last):
            same += 1
            if same >= 3:
                print(f"referral_head={cur[0]} rating_head={cur[1]} overdue={a.get('referral.overdue')} "
                      f"steps={a.get('referral.steps')} closes={b.get('rating.closes')} "
                      f"referral_wm={a.get('clock.out_watermark_us')} rating_wm={b.get('clock.out_watermark_us')}")
                sys.exit(0)
        else:
            same = 0
        last = cur
        time.sleep(0.2)
    sys.exit(1)
elif cmd == "issue":
    # escalation ctl, referral head, rating head, out watermark to reach,
    # subscriber's file, timeout s. From escalation's Postgres connection up:
    # the seconds to its status counting every notice (both inputs at their
    # heads, its watermark out) and to the subscriber's last notice.issued.
    ep, rh, th, wm, path, tmo = args[0], int(args[1]), int(args[2]), int(args[3]), args[4], float(args[5])
    t0 = t0_wall = t_done = t_in = None
    notices = 0
    t_start = time.monotonic()
    end = time.time() + tmo
    while time.time() < end and t_done is None:
        s = wt.status(ep, 1.0) or {}
        now = time.monotonic()
        if t0 is None and s.get("pg.up") == 1:
            t0, t0_wall = now, time.time()
        inputs = s.get("referral.position", -1) >= rh and s.get("rating.position", -1) >= th
        if t0 is not None and inputs and t_in is None:
            t_in = now
        if t0 is not None and inputs and s.get("clock.out_watermark_us", 0) >= wm:
            t_done, notices = now, s.get("escalation.notices", 0)
            st_final = s
        time.sleep(0.02)
    if t_done is None:
        sys.exit(1)
    got, last_us = 0, 0
    while time.time() < end:
        got, last_us = 0, 0
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if not line.endswith("\n"):
                        break
                    e = json.loads(line)
                    if e.get("kind") == "notice.issued":
                        got += 1
                        last_us = max(last_us, e["received_us"])
        except FileNotFoundError:
            pass
        if got >= notices:
            break
        time.sleep(0.1)
    if got < notices:
        sys.exit(2)
    deliver = last_us / 1e6 - t0_wall
    print(f"secs={deliver:.3f} issued_secs={t_done - t0:.3f} inputs_secs={t_in - t0:.3f} from_start={t0 - t_start:.3f} notices={notices} "
          f"triggers={st_final.get('escalation.triggers')} skipped={st_final.get('escalation.skipped')} "
          f"redelivered={st_final.get('escalation.redelivered')} stream_head={st_final.get('stream.head')}")
elif cmd == "read":  # file, kind prefix, start wall us: events of that kind and the seconds to the last
    path, prefix, t0 = args[0], args[1], int(args[2])
    n, last = 0, 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            if e.get("kind", "").startswith(prefix):
                n += 1
            last = max(last, e.get("received_us", 0))
    print(f"events={n} secs={(last - t0) / 1e6:.3f}")
PYEOF
}

now_us() { echo $(( $(date +%s%N) / 1000 )); }

# A subscriber reading a whole stream from its beginning until idle:
# whistle-dept (watch or notices) as IDENTITY, until MAX events are written.
# Prints "events= secs=" for the events whose kind starts with PREFIX.
read_stream() { # watch|notices, identity, endpoint, max events, kind prefix, label
  local out=$EVDIR/$6.jsonl t0
  rm -f "$out"
  t0=$(now_us)
  "$BIN/bin/whistle-dept" "$1" --unit "$2" --stream "$3" --stamp --max "$4" --until-idle 2000 \
    --out "$out" 2>>"$WORK/dept.log" || die "whistle-dept $1 of $3 failed (see dept.log)"
  pyhelp read "$out" "$5" "$t0"
}

# ==== set-up: overdue events on referral's stream, escalation stopped ==========
bash tools/pgdev.sh reset intake referral rating escalation >/dev/null
for d in intake referral rating; do start "$d"; done
for d in intake referral rating; do pyhelp ready "$(ctl "$d")" || die "$d not ready"; done
log "set-up: $N tickets through whistle-intake (referral dispatching, nobody accepting)"
out=$("$BIN/tests/bin/hotlineload" --endpoint "ipc://$WORK/hotline" --registry "$ROOT/deploy/registry" \
      --count "$N" --inflight 4000 --prefix e- --seed 21 --timeout 180) || die "hotlineload failed: $out"
log "hotlineload: $out"
pyhelp follow "$(ctl referral)" intake.position "$(ctl intake)" stream.head 300 >/dev/null ||
  die "referral did not catch up with intake"
T0=$(now_us)
WM=$(( T0 + DAYS * 86400 * 1000000 ))
log "set-up: hotline watermark $DAYS days ahead -> referral's overdue events, rating's closes"
pyhelp watermark "ipc://$WORK/hotline" "$T0" "$WM" || die "the hotline watermark was refused"
S=$(pyhelp settled "$(ctl referral)" "$(ctl rating)" "$((WM - 86400 * 1000000))" 900) ||
  die "referral and rating did not settle on the watermark"
log "set-up: $S"
RH=$(field referral_head "$S")
TH=$(field rating_head "$S")
OVERDUE=$(field overdue "$S")
OUT_WM=$(pyhelp get "$(ctl rating)" clock.out_watermark_us)
RWM=$(field referral_wm "$S")
[ "$RWM" -lt "$OUT_WM" ] && OUT_WM=$RWM
[ "$OVERDUE" -gt 0 ] || die "no overdue events on referral's stream"
settle intake referral rating escalation >/dev/null

# ==== baseline: a subscriber reading referral's stream ========================
log "baseline: whistle-dept watch reading referral's $RH events from the beginning"
B=$(read_stream watch rating "ipc://$WORK/rstream" "$RH" "" referral)
log "baseline: $B"
B_EV=$(field events "$B")
B_SECS=$(field secs "$B")
B_RATE=$(awk -v n="$B_EV" -v s="$B_SECS" 'BEGIN { printf "%.0f", n / s }')
B2=$(read_stream watch rating "ipc://$WORK/rstream" "$RH" "" referral)
B_RATE=$(best "$B_RATE" "$(awk -v n="$(field events "$B2")" -v s="$(field secs "$B2")" 'BEGIN { printf "%.0f", n / s }')")
log "baseline again: $B2"

# ==== escalation: both streams from the beginning to every notice delivered ====
log "notices: starting whistle-escalation on referral's $RH and rating's $TH events"
rm -f "$EVDIR/notices.jsonl"
start escalation
"$BIN/bin/whistle-dept" notices --unit ops --stream "ipc://$WORK/estream" --stamp \
  --out "$EVDIR/notices.jsonl" 2>>"$WORK/dept.log" &
PID[reader]=$!
if [ -n "$PERF" ]; then # profile escalation and its Postgres backends from their connection up
  pyhelp ready "$(ctl escalation)" || die "escalation not ready"
  pids=$("${PSQL[@]}" -c "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE usename = 'escalation'")
  perf record --call-graph dwarf,16384 -o "$PERF/perf.data" -p "${PID[escalation]},$pids" 2>"$PERF/perf.log" &
  PID[perf]=$!
  log "perf: recording whistle-escalation (${PID[escalation]}) and its backends ($pids) into $PERF/perf.data"
fi
I=$(pyhelp issue "$(ctl escalation)" "$RH" "$TH" "$OUT_WM" "$EVDIR/notices.jsonl" 900) ||
  die "escalation did not issue every notice, or the subscriber did not receive them"
log "notices: $I"
stop reader
[ -z "$PERF" ] || { kill -INT "${PID[perf]}"; wait "${PID[perf]}" || true; unset "PID[perf]"; }
E_SECS=$(field secs "$I")
E_ISECS=$(field issued_secs "$I")
E_INSECS=$(field inputs_secs "$I")
REDELIVERED=$(field redelivered "$I")
NOTICES=$(field notices "$I")
EH=$(field stream_head "$I")
E_RATE=$(awk -v n="$NOTICES" -v s="$E_SECS" 'BEGIN { printf "%.0f", n / s }')
E_IRATE=$(awk -v n="$NOTICES" -v s="$E_ISECS" 'BEGIN { printf "%.0f", n / s }')
DECISIONS=$(( $(field triggers "$I") - OVERDUE ))
# Every trigger up to the watermark issued, one notice each.
[ "$("${PSQL[@]}" -c "SELECT (SELECT count(*) FROM escalation.notices) = $NOTICES
    AND NOT EXISTS (SELECT 1 FROM escalation.triggers WHERE NOT issued AND event_us < $OUT_WM)")" = t ] ||
  die "escalation's tables disagree with its status: not one notice per trigger issued"
grep 'msg="notices issued"' "$WORK/escalation.log" | sed 's/^/  /' | tail -n 5 >&2 || true

# A fresh subscriber reading escalation's stream again (the notices at rest).
log "baseline: whistle-dept notices reading escalation's $EH events again"
C=$(read_stream notices ops "ipc://$WORK/estream" "$EH" notice.issued notices-again)
# notices writes no line for a watermark: it stops idle once all are in
C_RATE=$(awk -v n="$(field events "$C")" -v s="$(field secs "$C")" 'BEGIN { printf "%.0f", n / s }')
log "baseline: $C"
stop escalation rating referral intake

echo
echo "== Whistle escalation bench: overdue events and decisions -> notices on escalation's stream (same run) =="
printf '%-50s %14s   %s\n' "figure" "value" "baseline and ratio"
printf '%-50s %14s   %s\n' "notices/s issued and delivered (to subscriber)" "$E_RATE /s" \
  "referral's stream read $B_RATE events/s: $(ratio "$E_RATE" "$B_RATE")"
printf '%-50s %14s   %s\n' "notices/s issued (escalation's status, committed)" "$E_IRATE /s" \
  "referral's stream read $B_RATE events/s: $(ratio "$E_IRATE" "$B_RATE")"
printf '%-50s %14s   %s\n' "  escalation's stream read again (notice.issued)" "$C_RATE /s" \
  "notices/s delivered: $(ratio "$E_RATE" "$C_RATE") of it"
printf '%-50s %14s   %s\n' "  notices, seconds" "$NOTICES" \
  "$E_SECS s to the subscriber, $E_ISECS s to the status; $OVERDUE overdue events + $DECISIONS decisions"
printf '%-50s %14s   %s\n' "  where the time goes" "$E_INSECS s" \
  "both inputs applied; issued and committed $(awk -v a="$E_ISECS" -v b="$E_INSECS" 'BEGIN { printf "%.3f", a - b }') s later; delivered $(awk -v a="$E_SECS" -v b="$E_ISECS" 'BEGIN { d = a - b; printf "%.3f", (d > 0 ? d : 0) }') s after (status polled every 20 ms)"
printf '%-50s %14s   %s\n' "  escalation's stream: events, redelivered at once" "$EH" \
  "$REDELIVERED (R-E6: issued later than 2 working days after their event time)"
printf '%-50s %14s   %s\n' "  referral's stream: events read, seconds" "$B_EV" "$B_SECS s the first time (the rate: best of 2 reads)"
echo "Notices: $N hotlineload tickets (deploy/registry) through whistle-intake and whistle-referral (event"
echo "clocks), nobody accepting; a hotline watermark $DAYS days ahead: two overdue events per step on"
echo "referral's stream and rating's month closes (decisions), with escalation stopped. Then escalation"
echo "starts on both streams: from its Postgres connection up to the subscriber (whistle-dept notices,"
echo "identity ops, file in memory) having every notice.issued, and to its status counting them all."
echo "Each issuance is one transaction over every trigger both inputs' watermarks have passed."
echo "Baseline: whistle-dept watch (identity rating, file in memory) reading referral's whole stream,"
echo "the same overdue events among them, from the beginning: events/s from its start to the last."
