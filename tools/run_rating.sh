# tools/run_rating.sh: the rating part of `make run`'s summary, sourced by
# tools/run.sh after the referral part (it uses run.sh's q, py, columns and
# die). The sample feed ends with a watermark at 2026-11-01T00:00+08:00:
# once referral's watermark follows, rating closes October and publishes
# its ranking, unit scores, credit grades and decisions.

OCT=$((2026 * 12 + 9)) # rating's month index of 2026-10
py closed "$TCTL" "$OCT" 60 || die "rating did not close October within 60 s (log: $RUN/rating.log)"
TST=$(py dump "$TCTL") || die "rating does not answer on its control endpoint"
tv() { printf '%s\n' "$TST" | sed -n "s/^$1=//p"; }
export_of() { py export "$TREQ" "$@" || die "rating did not answer the $1 query"; }
RANK=$(export_of RANKINGS 2026-10)
UNITS_OUT=$(export_of UNITS 2026-10)
CREDIT=$(export_of CREDIT 2026H2)
DECISIONS=$(export_of DECISIONS)
jl() { # JSON lines on stdin, python format expression over r -> lines
  "$PY" -c 'import json, sys
fmt = sys.argv[1]
for line in sys.stdin:
    r = json.loads(line)
    print(eval(fmt))' "$1"
}
ranking=$(printf '%s\n' "$RANK" | head -10 | jl \
  '"  %4d  %-6s %-5s %5d  %-5s %6d" % (r["rank"], r["compound"], r["company"], r["count"], "yes" if r["in_top"] else "no", r["streak"])')
units_tab=$(printf '%s\n' "$UNITS_OUT" | jl \
  '"  %-6s %10d %9.4f %10.4f %12s %7.2f %5d" % (r["unit"], r["population"], r["response"], r["resolution"], "-" if r["satisfaction"] is None else "%.4f" % r["satisfaction"], r["score"], r["rank"])')
credit_tab=$(printf '%s\n' "$CREDIT" | jl '"  %-6s %5d  %s" % (r["company"], r["score"], r["grade"])')
decisions_tab=$(printf '%s\n' "$DECISIONS" | jl \
  '"  %-26s %-22s evidence: %s" % (r["key"], r["decision"], ", ".join(r["evidence"][:3]) + (" ..." if len(r["evidence"]) > 3 else ""))')
n_ranked=$(printf '%s\n' "$RANK" | grep -c . || true)
n_top=$(printf '%s\n' "$RANK" | grep -c '"in_top": true' || true)
n_c4=$(printf '%s\n' "$DECISIONS" | grep -c '"rule": "R-C4"' || true)
n_dec=$(printf '%s\n' "$DECISIONS" | grep -c . || true)
n_out=$(q "SELECT count(*) FROM $T_SCHEMA.stream_outbox WHERE kind = 'decision'")
ok4=1
# Checks: every project in October's top list got its R-C4 decision (streak 1:
# an interview); every decision is on rating's stream once.
[ "$n_top" = "$n_c4" ] && [ "$n_dec" = "$n_out" ] && [ "$(tv pg.up)" = 1 ] || ok4=0

cat <<EOT

==== Whistle rating: rankings, nine prohibitions, credit, 三率 (whistle-rating) ====
 inputs      intake stream at $(tv intake.position), referral stream at $(tv referral.position);
             $(tv rating.tickets) tickets, $(tv rating.steps) steps, $(tv rating.violations) violations applied
 closes      $(tv rating.closes) month(s) closed on the inputs' watermarks; $(tv rating.decisions) decisions
 October     $n_ranked projects with complaints, $n_top in the top list (K = 30, ties all in)
 checks      one R-C4 decision per top-list project, each decision once on the stream: $([ $ok4 = 1 ] && echo yes || echo NO)

---- the October 2026 ranking (R-C1..R-C3), first 10
  rank  proj.  comp. count  top   streak
$ranking
---- unit scores, October 2026 (R-U1, R-U2; rank among departments or among streets)
  unit   population  response resolution satisfaction   score  rank
$units_tab
---- credit, 2026H2 (R-K1, R-K2: 100 less every deduction so far)
$credit_tab
---- decisions (R-C4 at October's close, R-P3 at each violation, R-U3 ...)
$decisions_tab
---- rating status (control endpoint $TCTL)
$(columns "$TST")

 interfaces  requests at $TREQ (proto/rating.proto: inspections, and queries answered
             in the export shapes); rating's stream at $TSTREAM (proto/rating_events.proto)
 logs        $RUN/rating.log
==================================================================================
EOT
