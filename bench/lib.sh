# shellcheck shell=bash
# bench/lib.sh: helpers the bench scripts share (sourced, not run): arithmetic
# for the figures, reading ledgerload/hotlineload summaries and /proc, and
# settling Postgres between phases. The caller defines log and PSQL.

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
# given schemas' tables, which autovacuum would otherwise start mid-phase, and
# a checkpoint), so the next phase measures what it means to.
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
}
