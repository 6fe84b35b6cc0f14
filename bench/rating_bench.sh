#!/usr/bin/env bash
# bench/rating_bench.sh: whistle-rating, each figure beside a baseline that
# Postgres alone gives in the same run on the same rows:
#   apply: two rounds of BENCH_RATING_TICKETS tickets through the real
#          whistle-intake (and so whistle-referral's steps) with rating
#          stopped; after each, rating starts and applies both streams to
#          their heads (status intake.position and referral.position against
#          the producers' stream.head): events per second from its Postgres
#          connection being up to both heads reached. Round 1 goes into an
#          empty schema (a first start catching up), round 2 into the tables
#          round 1 filled, analyzed. Beside them, the rows per second of a
#          plain INSERT ... SELECT of the rows it wrote (rating.tickets and
#          rating.steps copied into tables with the same DDL, one statement
#          each, one transaction).
#   close: ONE month close (2026-10) over BENCH_CLOSE_TICKETS counted tickets
#          of BENCH_CLOSE_PROJECTS professional compounds (BENCH_CLOSE_COMPANIES
#          companies) and one step each over BENCH_CLOSE_UNITS units (half
#          streets, half departments), rating's schema filled directly with
#          SQL (facts and per-period sums consistent, a generated registry);
#          the close is triggered by a hotline watermark past the month's
#          end through intake and referral, and timed by rating itself
#          (close_ms in its "month closed" log line: from submitting the
#          close's transaction to its commit). Beside it, the plain
#          GROUP BY over the same rows (counted tickets per compound, and
#          population / on-time counts per unit over the steps), best of 3.
#          Then the same at 1/4 of the tickets (same projects and units): a
#          close reads one row per project and per unit, so it should stay
#          flat while the GROUP BY grows with the rows.
# Knobs: BENCH_RATING_TICKETS (per round, default 20000), BENCH_CLOSE_TICKETS (1000000),
# BENCH_CLOSE_PROJECTS (10000), BENCH_CLOSE_UNITS (200),
# BENCH_CLOSE_COMPANIES (1000), BENCH_RATING_PHASES ("apply close", either
# or both). Runs on its own private cluster (as bench/run.sh). No pass/fail.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
export BUILD
BIN=$ROOT/$BUILD
N_APPLY=${BENCH_RATING_TICKETS:-20000}
N_CLOSE=${BENCH_CLOSE_TICKETS:-1000000}
PROJECTS=${BENCH_CLOSE_PROJECTS:-10000}
UNITS=${BENCH_CLOSE_UNITS:-200}
COMPANIES=${BENCH_CLOSE_COMPANIES:-1000}
PHASES=${BENCH_RATING_PHASES:-apply close}
export WHISTLE_PGDEV_DIR=${WHISTLE_PGDEV_DIR:-/tmp/whistle-bench-pg}
export WHISTLE_PGDEV_PORT=${WHISTLE_PGDEV_PORT:-54339}
PY=/usr/bin/python3
M=24321           # 2026-10 as a month index (year * 12 + month - 1)

log() { printf '%s rating-bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
. "$ROOT/bench/lib.sh"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -A -t -U postgres)
die() {
  log "error: $*"
  for f in intake referral rating; do
    [ -f "${WORK:-/nonexistent}/$f.log" ] && { echo "--- last lines of $f.log"; tail -n 8 "$WORK/$f.log"; } >&2
  done
  exit 1
}
for b in bin/whistle-intake bin/whistle-referral bin/whistle-rating tests/bin/hotlineload; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing (make build-all)"
done
if [ "$UNITS" -lt 4 ] || [ "$PROJECTS" -lt 1000 ] || [ "$COMPANIES" -lt 1 ] || [ "$COMPANIES" -gt "$PROJECTS" ]; then
  die "BENCH_CLOSE_UNITS >= 4, BENCH_CLOSE_PROJECTS >= 1000, 1 <= BENCH_CLOSE_COMPANIES <= projects"
fi
[ $(( N_CLOSE / 4 / PROJECTS )) -ge 2 ] || die "BENCH_CLOSE_TICKETS must be at least 8 per project"

WORK=$(mktemp -d /tmp/whistle-rating-bench-XXXXXX)
declare -A PID=()
cleanup() {
  stop rating referral intake
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_pg_start

# The daemons on ipc endpoints under WORK, event clocks (time moves only with
# the tickets' and the hotline's watermarks: no ticks in the streams).
start() { start_daemon "$1" "$2"; } # name, registry directory
declare -A CTL=([intake]=ipc://$WORK/ictl [referral]=ipc://$WORK/rctl [rating]=ipc://$WORK/rtctl)
ctl() { printf '%s' "${CTL[$1]}"; }

# Python helpers on the test library (status queries, the hotline client).
pyhelp() { # command, args...
  "$PY" - "$@" <<'PYEOF'
import os, sys, time
sys.path.insert(0, "bench")
from bench_status import common, st, wt  # noqa: F401 (ready, get, follow)
cmd, args = sys.argv[1], sys.argv[2:]
rc = common(cmd, args)
if rc is not None:
    sys.exit(rc)
if cmd == "catchup":  # rating endpoint, intake head, referral head, timeout s
    ep, ih, rh, tmo = args[0], int(args[1]), int(args[2]), float(args[3])
    t_start = time.monotonic()
    t0 = None
    end = time.time() + tmo
    while time.time() < end:
        s = wt.status(ep, 1.0) or {}
        now = time.monotonic()
        if t0 is None and s.get("pg.up") == 1:
            t0 = now
        if t0 is not None and s.get("intake.position", -1) >= ih and s.get("referral.position", -1) >= rh:
            print(f"secs={now - t0:.3f} from_start={now - t_start:.3f} tickets={s.get('rating.tickets')} "
                  f"steps={s.get('rating.steps')} batches={s.get('intake.batches', 0) + s.get('referral.batches', 0)}")
            sys.exit(0)
        time.sleep(0.02)
    sys.exit(1)
elif cmd == "close":  # hotline endpoint, ISO local time, rating endpoint, timeout s
    # Pushes a hotline watermark and prints the seconds from its ACCEPTED
    # reply to rating's status counting the close.
    import datetime
    import intake_client as ic
    at = int(datetime.datetime.fromisoformat(args[1]).timestamp()) * 1000000
    hc = ic.HotlineClient(args[0])
    r = hc.ask(ic.watermark(1, at), 1, 30)
    if r is None or r.status != ic.ACCEPTED:
        sys.exit(1)
    t0, end = time.monotonic(), time.time() + float(args[3])
    while time.time() < end:
        if st(args[2]).get("rating.closes", 0) >= 1:
            print(f"{time.monotonic() - t0:.3f}")
            sys.exit(0)
        time.sleep(0.01)
    sys.exit(1)
PYEOF
}

# ==== apply: both streams, to their heads ======================================
# One round: N_APPLY tickets through intake (referral following) with rating
# stopped, then rating started and timed to both heads. Sets R_RATE R_SECS
# R_EVENTS R_IH R_RH.
apply_round() { # round number
  local r=$1 out c
  log "apply round $r: $N_APPLY tickets through whistle-intake (and referral's steps), rating stopped"
  out=$("$BIN/tests/bin/hotlineload" --endpoint "ipc://$WORK/hotline" --registry "$ROOT/deploy/registry" \
        --count "$N_APPLY" --inflight 4000 --prefix "a$r-" --seed "$((10 + r))" --timeout 180) ||
    die "hotlineload failed: $out"
  log "hotlineload: $out"
  pyhelp follow "$(ctl referral)" intake.position "$(ctl intake)" stream.head 300 >/dev/null ||
    die "referral did not catch up with intake"
  local ih rh
  read -r ih < <(pyhelp get "$(ctl intake)" stream.head)
  read -r rh < <(pyhelp get "$(ctl referral)" stream.head)
  settle intake referral rating >/dev/null
  log "apply round $r: starting whistle-rating on intake's events $((R_IH + 1))..$ih and referral's $((R_RH + 1))..$rh"
  start rating "$ROOT/deploy/registry"
  c=$(pyhelp catchup "$(ctl rating)" "$ih" "$rh" 900) || die "rating did not reach both heads"
  log "apply round $r: $c"
  stop rating
  R_EVENTS=$((ih - R_IH + rh - R_RH))
  R_IH=$ih R_RH=$rh
  R_SECS=$(field secs "$c")
  R_RATE=$(awk -v n="$R_EVENTS" -v s="$R_SECS" 'BEGIN { printf "%.0f", n / s }')
}

apply_phase() {
  stop rating referral intake
  bash tools/pgdev.sh reset intake referral rating b_rating >/dev/null
  start intake "$ROOT/deploy/registry"
  start referral "$ROOT/deploy/registry"
  for d in intake referral; do pyhelp ready "$(ctl "$d")" || die "$d not ready"; done
  R_IH=0 R_RH=0
  # Round 1 into rating's empty schema (a first start catching up); round 2
  # into the same tables once analyzed (settle), rating restarted.
  apply_round 1
  local rate1=$R_RATE secs1=$R_SECS ev1=$R_EVENTS
  apply_round 2
  local rate2=$R_RATE secs2=$R_SECS ev2=$R_EVENTS
  local rows_t rows_s
  rows_t=$("${PSQL[@]}" -c "SELECT count(*) FROM rating.tickets")
  rows_s=$("${PSQL[@]}" -c "SELECT count(*) FROM rating.steps")
  settle rating >/dev/null
  # The baseline: the same rows, one INSERT ... SELECT per table, one transaction.
  "${PSQL[@]}" <<SQL
CREATE TABLE b_rating.tickets (LIKE rating.tickets INCLUDING ALL);
CREATE TABLE b_rating.steps (LIKE rating.steps INCLUDING ALL);
SQL
  local b bs=() best
  for _ in 1 2; do
    b=$("${PSQL[@]}" <<SQL
TRUNCATE b_rating.tickets, b_rating.steps;
CHECKPOINT;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
BEGIN;
INSERT INTO b_rating.tickets SELECT * FROM rating.tickets;
INSERT INTO b_rating.steps SELECT * FROM rating.steps;
COMMIT;
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 4);
SQL
)
    bs+=("$b")
  done
  "${PSQL[@]}" -c "DROP TABLE b_rating.tickets, b_rating.steps"
  local rows=$((rows_t + rows_s)) r1 r2
  r1=$(awk -v n="$rows" -v s="${bs[0]}" 'BEGIN { printf "%.0f", n / s }')
  r2=$(awk -v n="$rows" -v s="${bs[1]}" 'BEGIN { printf "%.0f", n / s }')
  best=$(best "$r1" "$r2")
  APPLY_LINES=(
    "$(printf '%-46s %14s   %s' "events applied/s, into an empty schema" "$rate1 /s" \
        "INSERT ... SELECT of its rows $best rows/s: $(ratio "$rate1" "$best")")"
    "$(printf '%-46s %14s   %s' "events applied/s, into analyzed tables" "$rate2 /s" \
        "INSERT ... SELECT of its rows $best rows/s: $(ratio "$rate2" "$best")")"
    "$(printf '%-46s %14s   %s' "  events per round, seconds" "$ev1, $ev2" \
        "$secs1 s, $secs2 s; rows: $rows_t tickets + $rows_s steps; INSERT ... SELECT ${bs[0]} s and ${bs[1]} s")"
  )
}

# ==== close: one month over the schema filled directly ======================
# The registry: deploy/registry with PROJECTS professional compounds of
# COMPANIES companies on UNITS/2 streets (10 districts), and UNITS/2
# departments (deploy's own first, then generated ones); plus lists of the
# compounds and units for the SQL below.
make_registry() {
  local dir=$WORK/registry
  rm -rf "$dir"
  cp -r "$ROOT/deploy/registry" "$dir"
  "$PY" - "$dir" "$PROJECTS" "$UNITS" "$COMPANIES" <<'PYEOF'
import csv, sys
d, P, U, C = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
S = U // 2
with open(f"{d}/departments.csv", newline="", encoding="utf-8") as f:
    depts = [r["code"] for r in csv.DictReader(f)]
D = U - S
extra = [f"DP{i:03d}" for i in range(len(depts) + 1, D + 1)]
with open(f"{d}/departments.csv", "a", encoding="utf-8") as f:
    for c in extra:
        f.write(f"{c},部门{c}\n")
depts = (depts + extra)[:D]
def w(name, header, rows):
    with open(f"{d}/{name}", "w", encoding="utf-8") as f:
        f.write(header + "\n")
        for r in rows:
            f.write(",".join(str(x) for x in r) + "\n")
dist = lambda s: f"D{s % 10 + 1:02d}"
w("districts.csv", "code,name", [(f"D{i:02d}", f"区{i:02d}") for i in range(1, 11)])
w("streets.csv", "code,name,district", [(f"S{s:03d}", f"街道{s:03d}", dist(s)) for s in range(S)])
w("companies.csv", "code,name", [(f"E{c:04d}", f"物业公司{c:04d}") for c in range(C)])
w("compounds.csv", "code,name,aliases,street,management,company,manager,households",
  [(f"K{p:05d}", f"小区{p:05d}", f"小区{p:05d}号", f"S{p % S:03d}", "PROFESSIONAL", f"E{p % C:04d}",
    f"经理{p:05d}", 100 + p % 900) for p in range(P)])
# For the SQL: compounds (index, code, company, street, district) and units
# (index, code, street_unit, district; departments first).
w("b_compounds.csv", "p,code,company,street,district",
  [(p, f"K{p:05d}", f"E{p % C:04d}", f"S{p % S:03d}", dist(p % S)) for p in range(P)])
w("b_units.csv", "u,code,street_unit,district",
  [(u, c, "f", "") for u, c in enumerate(depts)] + [(D + s, f"S{s:03d}", "t", dist(s)) for s in range(S)])
PYEOF
}

# Fills rating's schema (already migrated by the daemon) for N tickets of
# month M: project p has a = N / PROJECTS tickets, the first 40 projects
# 40..1 more (distinct counts at the top: 30 R-C4 decisions), 820 others one
# fewer, the last N mod PROJECTS one more; every ticket counted, with one step
# (unit (31 p + i) mod UNITS) on time except a per-unit share (per mille:
# departments 10 + 2 u, streets 5 + u mod 50) accepted and resolved late;
# project_month and unit_month are the sums of exactly those rows.
populate() { # tickets
  local n=$1
  "${PSQL[@]}" <<SQL
SET search_path = rating;
CREATE TEMP TABLE b_compounds (p int PRIMARY KEY, code text, company text, street text, district text);
CREATE TEMP TABLE b_units (u int PRIMARY KEY, code text, street_unit boolean, district text);
\copy b_compounds FROM '$WORK/registry/b_compounds.csv' WITH (FORMAT csv, HEADER)
\copy b_units FROM '$WORK/registry/b_units.csv' WITH (FORMAT csv, HEADER, FORCE_NOT_NULL (district))
SELECT $n / $PROJECTS AS a, $n % $PROJECTS AS r, extract(epoch FROM timestamptz '2026-10-01 00:00+08')::bigint * 1000000 AS t0 \gset
CREATE TEMP TABLE b_counts AS
  SELECT p, :a + CASE WHEN p < 40 THEN 40 - p ELSE 0 END - CASE WHEN p >= 40 AND p < 860 THEN 1 ELSE 0 END
              + CASE WHEN p >= $PROJECTS - :r THEN 1 ELSE 0 END AS c
    FROM generate_series(0, $PROJECTS - 1) p;
CREATE TEMP TABLE b_t AS
  SELECT format('B%s-%s', c.code, i) AS ticket_no, c.code, c.company, c.street, c.district,
         :t0 + ((p::bigint * 7919 + i * 104729) % (24 * 86400)) * 1000000 AS received_us,
         (31 * p + i) % $UNITS AS u, (p * 7919 + i * 104729) % 1000 AS h
    FROM b_counts JOIN b_compounds c USING (p), generate_series(1, b_counts.c) i;
INSERT INTO tickets (ticket_no, known, request_type, category, compound, company, street, district,
                     management, received_us, month, counting_category, triage, repeat, referred,
                     exempt, counted)
  SELECT ticket_no, true, 'COMPLAINT', 'PS_SANITATION', code, company, street, district,
         'PROFESSIONAL', received_us, $M, true, false, false, true, false, true FROM b_t;
INSERT INTO steps (ticket_no, step, unit, street_unit, district, issued_us, accept_by_us, resolve_by_us,
                   accepted_us, resolved_us, returned_us, reopened_us, month, in_pop, acc_ok, res_ok)
  SELECT t.ticket_no, 1, un.code, un.street_unit, un.district, t.received_us + 60000000,
         t.received_us + 60000000 + 24 * 3600000000::bigint, t.received_us + 60000000 + 5 * 86400000000::bigint,
         t.received_us + 60000000 + CASE WHEN late THEN 30 ELSE 1 END * 3600000000::bigint,
         t.received_us + 60000000 + CASE WHEN late THEN 6 ELSE 2 END * 86400000000::bigint,
         0, 0, $M, true, NOT late, NOT late
    FROM (SELECT b_t.*, h < CASE WHEN un.street_unit THEN 5 + u % 50 ELSE 10 + 2 * u END AS late
            FROM b_t JOIN b_units un USING (u)) t JOIN b_units un USING (u);
INSERT INTO project_month (month, compound, company, count)
  SELECT $M, c.code, c.company, b_counts.c FROM b_counts JOIN b_compounds c USING (p);
INSERT INTO unit_month (month, unit, street_unit, district, population, accepted, resolved, callbacks, satisfied)
  SELECT $M, unit, street_unit, district, count(*), count(*) FILTER (WHERE acc_ok),
         count(*) FILTER (WHERE res_ok), count(*) / 10, count(*) / 10 * 8 / 10
    FROM steps WHERE month = $M AND in_pop GROUP BY unit, street_unit, district;
UPDATE clock SET first_month = $M, closed_month = 0;
SQL
}

# The baseline: the GROUP BY a close would need without the sums, best of 3
# (ms, tickets then steps), checked against the sums once.
groupby() {
  local out
  out=$("${PSQL[@]}" <<SQL
\o /dev/null
SELECT compound, count(*) FROM rating.tickets WHERE month = $M AND counted GROUP BY compound;
SELECT unit, count(*), count(*) FILTER (WHERE acc_ok), count(*) FILTER (WHERE res_ok)
  FROM rating.steps WHERE month = $M AND in_pop GROUP BY unit;
\o
SELECT 1e9 AS bt, 1e9 AS bs \gset
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
\o /dev/null
SELECT compound, count(*) FROM rating.tickets WHERE month = $M AND counted GROUP BY compound;
\o
SELECT least(:bt, 1000 * (extract(epoch FROM clock_timestamp()) - :t0)) AS bt, extract(epoch FROM clock_timestamp()) AS t0 \gset
\o /dev/null
SELECT unit, count(*), count(*) FILTER (WHERE acc_ok), count(*) FILTER (WHERE res_ok)
  FROM rating.steps WHERE month = $M AND in_pop GROUP BY unit;
\o
SELECT least(:bs, 1000 * (extract(epoch FROM clock_timestamp()) - :t0)) AS bs, extract(epoch FROM clock_timestamp()) AS t0 \gset
\o /dev/null
SELECT compound, count(*) FROM rating.tickets WHERE month = $M AND counted GROUP BY compound;
\o
SELECT least(:bt, 1000 * (extract(epoch FROM clock_timestamp()) - :t0)) AS bt, extract(epoch FROM clock_timestamp()) AS t0 \gset
\o /dev/null
SELECT unit, count(*), count(*) FILTER (WHERE acc_ok), count(*) FILTER (WHERE res_ok)
  FROM rating.steps WHERE month = $M AND in_pop GROUP BY unit;
\o
SELECT least(:bs, 1000 * (extract(epoch FROM clock_timestamp()) - :t0)) AS bs, extract(epoch FROM clock_timestamp()) AS t0 \gset
\o /dev/null
SELECT compound, count(*) FROM rating.tickets WHERE month = $M AND counted GROUP BY compound;
\o
SELECT least(:bt, 1000 * (extract(epoch FROM clock_timestamp()) - :t0)) AS bt, extract(epoch FROM clock_timestamp()) AS t0 \gset
\o /dev/null
SELECT unit, count(*), count(*) FILTER (WHERE acc_ok), count(*) FILTER (WHERE res_ok)
  FROM rating.steps WHERE month = $M AND in_pop GROUP BY unit;
\o
SELECT least(:bs, 1000 * (extract(epoch FROM clock_timestamp()) - :t0)) AS bs \gset
SELECT round(:bt::numeric, 1) || ' ' || round(:bs::numeric, 1);
SQL
)
  printf '%s' "$out"
}

close_once() { # tickets; sets CLOSE_MS, WAIT_S, GB_T, GB_S, RANKED, UNITS_SCORED, DECISIONS
  local n=$1
  stop rating referral intake
  bash tools/pgdev.sh reset intake referral rating >/dev/null
  # rating migrates its schema at start; stopped again before the rows go in.
  start rating "$WORK/registry"
  pyhelp ready "$(ctl rating)" || die "rating not ready (migrations)"
  stop rating
  log "close: filling rating's schema: $n tickets of $PROJECTS projects, one step each over $UNITS units"
  local t0=$SECONDS
  populate "$n"
  settle rating >/dev/null
  log "close: filled in $((SECONDS - t0)) s; starting intake, referral and rating (no tickets)"
  start intake "$WORK/registry"
  start referral "$WORK/registry"
  start rating "$WORK/registry"
  for d in intake referral rating; do pyhelp ready "$(ctl "$d")" || die "$d not ready"; done
  log "close: hotline watermark 2026-11-02T00:00+08:00 -> intake -> referral -> rating"
  WAIT_S=$(pyhelp close "ipc://$WORK/hotline" 2026-11-02T00:00:00+08:00 "$(ctl rating)" 900) ||
    die "rating did not close 2026-10 (or the watermark was refused)"
  local line
  line=$(grep 'msg="month closed"' "$WORK/rating.log" | tail -n 1)
  CLOSE_MS=$(tr ' ' '\n' <<<"$line" | sed -n 's/^close_ms=//p')
  RANKED=$(tr ' ' '\n' <<<"$line" | sed -n 's/^projects=//p')
  UNITS_SCORED=$(tr ' ' '\n' <<<"$line" | sed -n 's/^units=//p')
  DECISIONS=$(tr ' ' '\n' <<<"$line" | sed -n 's/^decisions=//p')
  log "close: $line (status saw it $WAIT_S s after the watermark was accepted)"
  stop rating referral intake
  [ "$("${PSQL[@]}" -c "SELECT count(*) FROM rating.rankings WHERE month = $M")" = "$PROJECTS" ] ||
    die "rankings of 2026-10: not one per project"
  [ "$("${PSQL[@]}" -c "SELECT count(*) FROM rating.unit_scores WHERE month = $M")" = "$UNITS" ] ||
    die "unit scores of 2026-10: not one per unit"
  local g
  g=$(groupby)
  GB_T=${g% *}
  GB_S=${g#* }
  local bad
  bad=$("${PSQL[@]}" <<SQL
SELECT (SELECT count(*) FROM (SELECT compound, count(*) AS c FROM rating.tickets WHERE month = $M AND counted
          GROUP BY compound) g FULL JOIN (SELECT * FROM rating.project_month WHERE month = $M) pm USING (compound)
         WHERE g.c IS DISTINCT FROM pm.count)
     + (SELECT count(*) FROM (SELECT unit, count(*) AS c, count(*) FILTER (WHERE acc_ok) AS a,
          count(*) FILTER (WHERE res_ok) AS r FROM rating.steps WHERE month = $M AND in_pop GROUP BY unit) g
          FULL JOIN (SELECT * FROM rating.unit_month WHERE month = $M) um USING (unit)
         WHERE (g.c, g.a, g.r) IS DISTINCT FROM (um.population, um.accepted, um.resolved));
SQL
)
  [ "$bad" = 0 ] || die "the sums disagree with the rows ($bad)"
  log "close: GROUP BY tickets ${GB_T} ms, steps ${GB_S} ms (best of 3)"
}

close_phase() {
  make_registry
  local quarter=$((N_CLOSE / 4))
  close_once "$N_CLOSE"
  local c1=$CLOSE_MS t1=$GB_T s1=$GB_S w1=$WAIT_S r1=$RANKED u1=$UNITS_SCORED d1=$DECISIONS
  close_once "$quarter"
  local c2=$CLOSE_MS t2=$GB_T s2=$GB_S w2=$WAIT_S d2=$DECISIONS
  local g1 g2
  g1=$(awk -v a="$t1" -v b="$s1" 'BEGIN { printf "%.1f", a + b }')
  g2=$(awk -v a="$t2" -v b="$s2" 'BEGIN { printf "%.1f", a + b }')
  # The whole reset between the two: the second close's tables are as fresh as the first's.
  CLOSE_LINES=(
    "$(printf '%-46s %14s   %s' "month close, $N_CLOSE tickets" "$c1 ms" \
        "GROUP BY of the same rows $g1 ms: $(times "$c1" "$g1") (target <= 2.0x)")"
    "$(printf '%-46s %14s   %s' "month close, $quarter tickets (1/4)" "$c2 ms" \
        "GROUP BY of the same rows $g2 ms: $(times "$c2" "$g2")")"
    "$(printf '%-46s %14s   %s' "  growth from 1/4 to all the tickets" "$(times "$c1" "$c2")" \
        "GROUP BY $(times "$g1" "$g2") (a close reads the sums: flat)")"
    "$(printf '%-46s %14s   %s' "  GROUP BY tickets + steps, all / 1/4" "$t1+$s1 ms" "$t2+$s2 ms")"
    "$(printf '%-46s %14s   %s' "  close seen in status after the watermark" "${w1} s" \
        "${w2} s at 1/4 (watermark through intake and referral, status polled)")"
    "$(printf '%-46s %14s   %s' "  published" "$r1 projects" \
        "$u1 units, $d1 decisions ($d2 at 1/4): rankings, unit scores, credit, R-C4 and R-U3 with evidence")"
  )
}

APPLY_LINES=()
CLOSE_LINES=()
for ph in $PHASES; do
  case $ph in
    apply) apply_phase ;;
    close) close_phase ;;
    *) die "unknown phase $ph (apply, close)" ;;
  esac
done

echo
echo "== Whistle rating bench: whistle-rating against Postgres alone on the same rows (same run) =="
printf '%-46s %14s   %s\n' "figure" "value" "baseline and ratio"
for l in "${APPLY_LINES[@]}" "${CLOSE_LINES[@]}"; do echo "$l"; done
[ ${#APPLY_LINES[@]} -eq 0 ] || {
  echo "Apply: two rounds of $N_APPLY hotlineload tickets (deploy/registry) through whistle-intake and"
  echo "whistle-referral (event clocks), rating started after each (WHISTLE_BATCH=1000: one durable"
  echo "transaction per batch of events; each event a fact row and its period sum), timed from its"
  echo "Postgres connection up to both heads. Round 1: rating's tables grow from empty during the round"
  echo "(its rate depends on the round's size); round 2: after VACUUM ANALYZE of what round 1 wrote."
  echo "Baseline: all the rows it wrote, INSERT ... SELECT into the same DDL, one transaction (best of 2)."
}
[ ${#CLOSE_LINES[@]} -eq 0 ] || {
  echo "Close: 2026-10 over $PROJECTS professional compounds ($COMPANIES companies) and $UNITS units; the"
  echo "close's own duration (close_ms: its transaction from submission to commit). Baseline: the"
  echo "plain GROUP BYs per compound (tickets) and per unit (steps) over the same rows, best of 3."
}
