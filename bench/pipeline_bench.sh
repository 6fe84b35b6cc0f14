#!/usr/bin/env bash
# bench/pipeline_bench.sh: the whole pipeline on a generated scenario
# (tools/gen_city.py), the four daemons on event clocks and durable commits:
#   pipeline:   `whistlectl replay` (pipelined) into fresh schemas: tickets per
#               second from the first line sent to every daemon settled after
#               the last line (escalation's output watermark past the feed's
#               last watermark: every notice issued), with each daemon's CPU
#               share over that time (utime+stime from /proc/PID/stat, % of
#               one core) and its peak RSS (VmHWM); beside the intake-only
#               figure of the same run: the same ticket (and watermark) lines
#               alone through whistle-intake (whistle-hotline, pipelined),
#               tickets per second from the first send to the last answer;
#   replay:     the replay's lines/s pipelined beside the strictly sequential
#               replay's (--sequential), each into fresh schemas, and whether
#               their `whistlectl export --all` directories are identical.
# Knobs: BENCH_PIPE_SEED (1), BENCH_PIPE_TICKETS (6000: the sample quarter),
# BENCH_PIPE_SCENARIO (a scenario directory, registry/ and feed.jsonl,
# instead of generating one), BENCH_PIPE_SEQUENTIAL (1; 0 skips the
# sequential replay and the comparison), BENCH_PIPE_REPLAY_ARGS (more
# options for both replays), BENCH_PIPE_CTL (the whistlectl to measure, e.g.
# an older build's; default this build's). Runs on its own private cluster (as
# bench/run.sh). No pass/fail.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
BIN=$ROOT/$BUILD
SEED=${BENCH_PIPE_SEED:-1}
TICKETS=${BENCH_PIPE_TICKETS:-6000}
SCENARIO=${BENCH_PIPE_SCENARIO:-}
SEQUENTIAL=${BENCH_PIPE_SEQUENTIAL:-1}
CTL=${BENCH_PIPE_CTL:-$BIN/bin/whistlectl}
read -r -a XARGS <<<"${BENCH_PIPE_REPLAY_ARGS:-}"
export WHISTLE_PGDEV_DIR=${WHISTLE_PGDEV_DIR:-/tmp/whistle-bench-pg}
export WHISTLE_PGDEV_PORT=${WHISTLE_PGDEV_PORT:-54339}
PY=/usr/bin/python3
SCHEMAS=(intake referral rating escalation)

log() { printf '%s pipeline-bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
. "$ROOT/bench/lib.sh"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -A -t -U postgres)
die() {
  log "error: $*"
  for f in "${SCHEMAS[@]}"; do
    [ -f "${WORK:-/nonexistent}/$f.log" ] && { echo "--- last lines of $f.log"; tail -n 8 "$WORK/$f.log"; } >&2
  done
  exit 1
}
for b in bin/whistle-intake bin/whistle-referral bin/whistle-rating bin/whistle-escalation bin/whistlectl \
         bin/whistle-hotline; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing (make build-all)"
done

WORK=$(mktemp -d /tmp/whistle-pipeline-bench-XXXXXX)
declare -A PID=()
cleanup() {
  stop escalation rating referral intake
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_pg_start

if [ -n "$SCENARIO" ]; then
  SCEN=$(cd "$SCENARIO" && pwd) || die "BENCH_PIPE_SCENARIO=$SCENARIO: no such directory"
else
  SCEN=$WORK/scenario
  log "generating the city and quarter: tools/gen_city.py --seed $SEED --tickets $TICKETS"
  "$PY" tools/gen_city.py --seed "$SEED" --tickets "$TICKETS" --out "$SCEN" >&2 || die "gen_city.py failed"
fi
REG=$SCEN/registry
FEED=$SCEN/feed.jsonl
[ -d "$REG" ] && [ -r "$FEED" ] || die "$SCEN holds no registry/ and feed.jsonl"
TEMPLATES=
[ -d "$REG/notice_templates" ] || TEMPLATES=$ROOT/deploy/registry/notice_templates
LINES=$(grep -c . "$FEED")
NTICKETS=$(grep -c '"type": *"ticket"' "$FEED" || true)

export WHISTLE_INTAKE_HOTLINE=ipc://$WORK/hotline WHISTLE_INTAKE_CONTROL=ipc://$WORK/ictl
export WHISTLE_REFERRAL_UNITS=ipc://$WORK/units WHISTLE_REFERRAL_CONTROL=ipc://$WORK/rctl
export WHISTLE_RATING_REQUESTS=ipc://$WORK/rreq WHISTLE_RATING_CONTROL=ipc://$WORK/rtctl
export WHISTLE_ESCALATION_REQUESTS=ipc://$WORK/ereq WHISTLE_ESCALATION_CONTROL=ipc://$WORK/ectl

# The daemons as `make run` starts them: event clocks, development mode.
start() { # name
  : >"$WORK/$1.log"
  case $1 in
    escalation) start_daemon "$1" "$REG" WHISTLE_NOTICE_TEMPLATES="$TEMPLATES" ;;
    *) start_daemon "$1" "$REG" ;;
  esac
}
# Fresh schemas and the given daemons, each ready (its log says so).
fresh() { # name...
  local n t
  stop escalation rating referral intake
  bash tools/pgdev.sh reset "${SCHEMAS[@]}" >/dev/null
  settle "${SCHEMAS[@]}" >/dev/null
  for n in "$@"; do start "$n"; done
  for n in "$@"; do
    for t in $(seq 1 600); do
      kill -0 "${PID[$n]}" 2>/dev/null || die "$n exited during start-up"
      grep -q 'msg=ready' "$WORK/$n.log" && break
      [ "$t" = 600 ] && die "$n not ready after 60 s"
      sleep 0.1
    done
  done
}
# CPU ticks (utime + stime) of a process.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# One replay into fresh schemas: its summary in WORK/replay-LABEL.txt, exports
# in WORK/export-LABEL, each daemon's CPU ticks over the replay in CPU_<name>
# and peak RSS in RSS_<name>.
replay() { # label, replay options...
  local label=$1 n; shift
  fresh "${SCHEMAS[@]}"
  declare -gA CPU0=() CPU=() RSS=()
  for n in "${SCHEMAS[@]}"; do CPU0[$n]=$(ticks "${PID[$n]}"); done
  log "replay $label: $LINES lines ($*)"
  "$CTL" replay --quiet "$@" ${XARGS[@]+"${XARGS[@]}"} "$REG" "$FEED" >"$WORK/replay-$label.txt" ||
    { cat "$WORK/replay-$label.txt" >&2; die "the $label replay failed"; }
  for n in "${SCHEMAS[@]}"; do
    CPU[$n]=$(( $(ticks "${PID[$n]}") - CPU0[$n] ))
    RSS[$n]=$(rss "${PID[$n]}" VmHWM)
  done
  sed 's/^/  /' "$WORK/replay-$label.txt" | grep -E 'settled|done|STOPPED' >&2
  "$CTL" export --all "$WORK/export-$label" >/dev/null || die "export --all after $label failed"
  stop escalation rating referral intake
}
# "N of M lines in S s (R lines/s)" of a replay's summary: seconds and rate.
secs_of() { sed -n 's/.* lines in \([0-9.]*\) s (.*/\1/p' "$WORK/replay-$1.txt"; }
rate_of() { sed -n 's/.* s (\([0-9]*\) lines\/s).*/\1/p' "$WORK/replay-$1.txt"; }
settle_of() { sed -n 's/.*settled \([0-9]*\) times.*, \([0-9.]*\) s waiting.*/\1 settles, \2 s waiting/p' "$WORK/replay-$1.txt"; }

# ==== the whole pipeline: the pipelined replay =================================
replay pipelined
P_SECS=$(secs_of pipelined)
P_RATE=$(rate_of pipelined)
T_RATE=$(awk -v n="$NTICKETS" -v s="$P_SECS" 'BEGIN { printf "%.0f", n / s }')
declare -A P_CPU=() P_RSS=()
for n in "${SCHEMAS[@]}"; do
  P_CPU[$n]=$(awk -v t="${CPU[$n]}" -v hz="$HZ" -v s="$P_SECS" 'BEGIN { printf "%.0f%%", 100 * t / hz / s }')
  P_RSS[$n]=$(awk -v k="${RSS[$n]}" 'BEGIN { printf "%.0f MB", k / 1024 }')
done
NOTICES=$(grep -c . "$WORK/export-pipelined/notices.jsonl" 2>/dev/null || echo 0)

# ==== intake alone: the same ticket and watermark lines =========================
fresh intake
grep -E '"type": *"(ticket|watermark)"' "$FEED" >"$WORK/tickets.jsonl"
log "intake alone: $NTICKETS ticket lines (and the watermarks) through whistle-hotline"
I_CPU0=$(ticks "${PID[intake]}")
i0=$(date +%s%N)
"$BIN/bin/whistle-hotline" --quiet --endpoint "$WHISTLE_INTAKE_HOTLINE" --deadline-s 600 "$WORK/tickets.jsonl" \
  >"$WORK/hotline.txt" || { cat "$WORK/hotline.txt" >&2; die "whistle-hotline failed"; }
i1=$(date +%s%N)
I_CPU=$(( $(ticks "${PID[intake]}") - I_CPU0 ))
stop intake
I_SECS=$(awk -v a="$i0" -v b="$i1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
I_RATE=$(awk -v n="$NTICKETS" -v s="$I_SECS" 'BEGIN { printf "%.0f", n / s }')
I_CPUP=$(awk -v t="$I_CPU" -v hz="$HZ" -v s="$I_SECS" 'BEGIN { printf "%.0f%%", 100 * t / hz / s }')
log "intake alone: $(grep -E 'elapsed|total' "$WORK/hotline.txt" | tr -s ' ' | tr '\n' ';')"

# ==== the strictly sequential replay, and the comparison =========================
S_RATE=skipped S_SECS=- SAME="not compared"
if [ "$SEQUENTIAL" != 0 ]; then
  replay sequential --sequential
  S_SECS=$(secs_of sequential)
  S_RATE=$(rate_of sequential)
  if diff -r "$WORK/export-pipelined" "$WORK/export-sequential" >"$WORK/export.diff"; then
    SAME="identical ($(ls "$WORK/export-pipelined" | wc -l) files, $(cat "$WORK"/export-pipelined/* | wc -l) lines)"
  else
    SAME="DIFFERENT: $(grep -c '^[<>]' "$WORK/export.diff") lines differ ($(grep -E '^(diff|Only)' "$WORK/export.diff" | sed 's/.*export-pipelined\///; s/ .*//' | sort -u | tr '\n' ' '))"
  fi
fi

echo
echo "== Whistle pipeline bench: a generated quarter through the four daemons (same run) =="
printf '%-46s %14s   %s\n' "figure" "value" "baseline and ratio"
printf '%-46s %14s   %s\n' "tickets/s, hotline to notices issued" "$T_RATE /s" \
  "intake alone $I_RATE tickets/s: $(ratio "$T_RATE" "$I_RATE")"
printf '%-46s %14s   %s\n' "  tickets, lines, notices" "$NTICKETS" \
  "$LINES lines in $P_SECS s; $NOTICES notices; intake alone $I_SECS s (CPU $I_CPUP)"
for n in "${SCHEMAS[@]}"; do
  printf '%-46s %14s   %s\n' "  whistle-$n: CPU, peak RSS" "${P_CPU[$n]}" "${P_RSS[$n]}"
done
printf '%-46s %14s   %s\n' "replay lines/s pipelined" "$P_RATE /s" \
  "sequential $S_RATE lines/s: $(times "$P_RATE" "${S_RATE//[!0-9]/}")"
printf '%-46s %14s   %s\n' "  seconds, settling" "$P_SECS s" "$(settle_of pipelined)"
[ "$SEQUENTIAL" = 0 ] ||
  printf '%-46s %14s   %s\n' "  sequential: seconds, settling" "$S_SECS s" "$(settle_of sequential)"
printf '%-46s %14s   %s\n' "export --all, pipelined vs sequential" "" "$SAME"
echo "Scenario: $( [ -n "$SCENARIO" ] && echo "$SCENARIO" || echo "tools/gen_city.py --seed $SEED --tickets $TICKETS"),"
echo "replayed by whistlectl (registry loaded by every daemon, event clocks, durable commits) into fresh"
echo "schemas each time. Tickets/s: the feed's ticket lines over the pipelined replay, from the first"
echo "line sent to every daemon settled after the last (escalation's watermark past the last watermark:"
echo "every notice issued). CPU: utime+stime over that time, % of one core. Intake alone: the same"
echo "ticket and watermark lines through whistle-hotline (pipelined) into a fresh intake, nothing else running."
