# shellcheck shell=bash
# bench/lib.sh: helpers the bench scripts share (sourced, not run): arithmetic
# for the figures, reading ledgerload/hotlineload summaries and /proc,
# settling Postgres between phases, starting and stopping the daemons. The
# caller defines log and PSQL.

# key=value field NAME of a load generator's summary line.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p" | head -n1; }
# N items over the counter moving from A to B: items per transaction.
per_txn() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { if (b > a) printf "%.0f", n / (b - a); else print "?" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "n/a" }'; }
times() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "n/a" }'; }
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.1f ms", u / 1000 }'; }
# A /proc/PID/status value in kB: rss PID VmRSS.
rss() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# Does the previous phase's background work now (vacuum and analyze of the
# given schemas' tables, which autovacuum would otherwise start mid-phase, a
# checkpoint, and the writeback of whatever the bench itself left dirty in
# the page cache, which the kernel would otherwise start up to 30 s later,
# stalling the disk's fsyncs), so the next phase measures what it means to.
settle() { # schema...
  local list
  list=$(printf "'%s'," "$@")
  for _ in $(seq 1 150); do
    [ "$("${PSQL[@]}" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" = 0 ] && break
    sleep 0.1
  done
  "${PSQL[@]}" <<SQL
SELECT format('VACUUM (ANALYZE) %I.%I', schemaname, relname) FROM pg_stat_user_tables
 WHERE schemaname IN (${list%,}) \gexec
CHECKPOINT;
SQL
  sync
}

# Starts the bench's private cluster (WHISTLE_PGDEV_DIR, WHISTLE_PGDEV_PORT)
# and points psql at it; durable commits must be on, or the figures mean
# nothing. The caller defines die.
bench_pg_start() {
  log "starting the private Postgres in $WHISTLE_PGDEV_DIR (port $WHISTLE_PGDEV_PORT)"
  bash tools/pgdev.sh start
  eval "$(bash tools/pgdev.sh env)"
  [ "$("${PSQL[@]}" -c 'SHOW synchronous_commit')" = on ] || die "synchronous_commit is not on"
}

# The disk's own commit latency, as a baseline for ack latencies: for SECONDS,
# writes 8 kB and fdatasyncs it every 10 ms in a file under DIR (the cluster's
# disk), then prints "max_us=… over20=…" (syncs slower than 20 ms). A stall
# of the disk itself delays every durable commit made meanwhile. Start it in
# the background: fsync_probe DIR SECONDS >FILE &
fsync_probe() { # dir, seconds
  /usr/bin/python3 - "$1" "$2" <<'PYEOF'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe.%d" % os.getpid())
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
end, worst, slow, buf = time.monotonic() + float(sys.argv[2]), 0.0, 0, b"\0" * 8192
try:
    while time.monotonic() < end:
        t0 = time.monotonic()
        os.pwrite(fd, buf, 0)
        os.fdatasync(fd)
        d = time.monotonic() - t0
        worst, slow = max(worst, d), slow + (d > 0.020)
        time.sleep(0.010)
finally:
    os.close(fd)
    os.unlink(path)
print("max_us=%d over20=%d" % (worst * 1e6, slow))
PYEOF
}

# A daemon as the benches run it: development mode (no CURVE), event clock,
# every endpoint an ipc socket under WORK (requests: hotline, units, rreq,
# ereq; streams: istream, rstream, rtstream, estream; control: ictl, rctl,
# rtctl, ectl), its log WORK/NAME.log, its pid in PID[NAME]. The caller
# defines BIN, WORK and PID (declare -A).
start_daemon() { # name, registry directory, more VAR=value for it...
  local n=$1 reg=$2 w=ipc://$WORK
  shift 2
  local e=(WHISTLE_CURVE=0 WHISTLE_LOG_LEVEL=info WHISTLE_CLOCK=event WHISTLE_TICK_MS=100
           "WHISTLE_PG=user=$n application_name=$n" "WHISTLE_REGISTRY=$reg")
  case $n in
    intake) e+=("WHISTLE_INTAKE_HOTLINE=$w/hotline" "WHISTLE_INTAKE_STREAM=$w/istream"
                "WHISTLE_REFERRAL_STREAM_AT=$w/rstream" "WHISTLE_CONTROL=$w/ictl") ;;
    referral) e+=("WHISTLE_REFERRAL_UNITS=$w/units" "WHISTLE_REFERRAL_STREAM=$w/rstream"
                  "WHISTLE_INTAKE_STREAM_AT=$w/istream" "WHISTLE_CONTROL=$w/rctl") ;;
    rating) e+=("WHISTLE_RATING_REQUESTS=$w/rreq" "WHISTLE_RATING_STREAM=$w/rtstream"
                "WHISTLE_INTAKE_STREAM_AT=$w/istream" "WHISTLE_REFERRAL_STREAM_AT=$w/rstream"
                "WHISTLE_CONTROL=$w/rtctl") ;;
    escalation) e+=("WHISTLE_ESCALATION_REQUESTS=$w/ereq" "WHISTLE_ESCALATION_STREAM=$w/estream"
                    "WHISTLE_REFERRAL_STREAM_AT=$w/rstream" "WHISTLE_RATING_STREAM_AT=$w/rtstream"
                    "WHISTLE_CONTROL=$w/ectl") ;;
  esac
  env "${e[@]}" "$@" "$BIN/bin/whistle-$n" 2>>"$WORK/$n.log" &
  PID[$n]=$!
}

# The daemons a bench started (names in its PID map, logged with its log).
stop() { # name...: SIGTERM, wait up to 30 s, then SIGKILL
  local n p
  for n in "$@"; do
    p=${PID[$n]:-}
    [ -n "$p" ] || continue
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset "PID[$n]"
  done
}
