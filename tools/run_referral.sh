# tools/run_referral.sh: the referral part of `make run`'s summary, sourced by
# tools/run.sh once the feed has gone through intake and referral and the
# department and street clients have answered (it uses run.sh's q, py, tally,
# columns and die). What referral holds: steps per unit, late, overdue,
# returned, the three-step chain, closing; and what the units received.

RST=$(py dump "$RCTL") || die "referral does not answer on its control endpoint"
rv() { printf '%s\n' "$RST" | sed -n "s/^$1=//p"; }
# One row per step, from the tickets' steps (jsonb) in referral's schema.
STEPS="(SELECT t.ticket_no, t.state AS ticket_state, s->>'unit' AS unit, s->>'state' AS state,
               (s->>'accepted')::bigint AS accepted, (s->>'accept_by')::bigint AS accept_by,
               (s->>'resolved')::bigint AS resolved, (s->>'resolve_by')::bigint AS resolve_by,
               (s->>'returned')::bigint AS returned,
               (s->>'overdue')::int AS overdue, s->>'why' AS why
          FROM $R_SCHEMA.tickets t, jsonb_array_elements(t.steps) s) st"
per_unit=$(q "SELECT unit, count(*),
                     count(*) FILTER (WHERE accepted > 0),
                     count(*) FILTER (WHERE state IN ('RESOLVED', 'REOPENED')),
                     count(*) FILTER (WHERE state = 'RETURNED'),
                     count(*) FILTER (WHERE accepted >= accept_by + 1000000
                                         OR resolved >= resolve_by + 1000000),
                     count(*) FILTER (WHERE overdue & 2 > 0), count(*) FILTER (WHERE overdue & 8 > 0)
                FROM $STEPS GROUP BY unit ORDER BY 2 DESC, 1" |
  awk -F'|' 'BEGIN { printf "  %-6s %6s %9s %9s %9s %6s %15s %16s\n", "unit", "steps", "accepted",
                     "resolved", "returned", "late", "ACCEPT_OVERDUE", "RESOLVE_OVERDUE" }
             { printf "  %-6s %6d %9d %9d %9d %6d %15d %16d\n", $1, $2, $3, $4, $5, $6, $7, $8 }')
by_state=$(tally state "$R_SCHEMA.tickets")
n_rsteps=$(q "SELECT count(*) FROM $STEPS")
by_why=$(q "SELECT string_agg(why || ' ' || n, ', ' ORDER BY n DESC)
              FROM (SELECT why, count(*) n FROM $STEPS GROUP BY 1) x")
by_rkind=$(tally kind "$R_SCHEMA.stream_outbox")
n_consult=$(q "SELECT count(*) FROM $R_SCHEMA.tickets WHERE consult")
chains=$(q "SELECT ticket_no, string_agg(s->>'unit' || ' ' || (s->>'state'), ' -> ' ORDER BY (s->>'no')::int)
              FROM $R_SCHEMA.tickets t, jsonb_array_elements(t.steps) s
             WHERE category = 'V_ILLEGAL_BUILD' GROUP BY 1 ORDER BY 1 LIMIT 6" |
  awk -F'|' '{ printf "  %s  %s\n", $1, $2 } END { if (!NR) print "  (none)" }')
returned=$(q "SELECT t.ticket_no, s->>'unit', coalesce((SELECT n->>'unit' || ' as step ' || (n->>'no')
                     FROM jsonb_array_elements(t.steps) n WHERE (n->>'repl')::int = (s->>'no')::int
                      AND n->>'why' = 'REDISPATCH'), ''), t.state
                FROM $R_SCHEMA.tickets t, jsonb_array_elements(t.steps) s
               WHERE s->>'state' = 'RETURNED' ORDER BY 1, (s->>'no')::int LIMIT 10" |
  awk -F'|' '{ printf "  %s  returned by %-6s %s; ticket now %s\n", $1, $2,
                      $3 == "" ? "waits for an operator" : "re-dispatched to " $3, $4 }
             END { if (!NR) print "  (none)" }')
dispatched=$(q "SELECT count(*) FROM $I_SCHEMA.tickets WHERE disposition = 'DISPATCHED'")
referred=$(q "SELECT count(*) FROM $R_SCHEMA.tickets WHERE jsonb_array_length(steps) > 0")
unit_lines=0
foreign=0
for u in $UNITS; do
  f=$RUN/dept-$u.jsonl
  [ -f "$f" ] || continue
  unit_lines=$(( unit_lines + $(wc -l <"$f") ))
  # Each line names the unit that received it; a step of another unit would carry its own.
  foreign=$(( foreign + $(grep '"kind":"step\.' "$f" | grep -vc "\"unit\":\"$u\"" || true) ))
done
sample=$(grep -m1 '"kind":"step.issued"' "$RUN/dept-GA.jsonl" 2>/dev/null | cut -c1-300 || true)
ok3=1
[ "$referred" = "$dispatched" ] && [ "$foreign" = 0 ] && [ "$(rv pg.up)" = 1 ] || ok3=0

cat <<EOF

==== Whistle referral: 吹哨报到 (whistle-referral, event clock) ====================
 tickets     $(q "SELECT count(*) FROM $R_SCHEMA.tickets") from intake's stream: $by_state
             dispatched tickets referred to a unit: $referred of $dispatched
 steps       $n_rsteps issued ($by_why); $n_consult ticket(s) flagged for joint consultation (会商)
 clocks      $(rv referral.warnings) warnings at 80%, $(rv referral.overdue) overdue events (one per step and clock),
             $(rv referral.closed) tickets closed (销号), $(rv referral.violations) violations confirmed (九不准)
 units       $(echo $UNITS | wc -w) scripted clients (deploy/demo/dept-policy.json) sent $(rv referral.updates) updates
             ($(rv referral.duplicates) resent and answered DUPLICATE, $(rv referral.refused) refused);
             they wrote $unit_lines events to $RUN/dept-*.jsonl, $foreign of them another unit's step
 stream      $by_rkind
 checks      every dispatched ticket referred, no unit saw another's step: $([ $ok3 = 1 ] && echo yes || echo NO)

---- steps per unit (late: an action stamped after its clock, recorded; overdue: the clock passed without it)
$per_unit
---- illegal construction (私搭乱建): the three-step chain ZRZY -> SF -> CGZF
$chains
---- returned steps (退单, R-R3)
$returned
---- what GA's client received first ($RUN/dept-GA.jsonl, cut)
  ${sample:-(nothing)}
---- referral status (control endpoint $RCTL)
$(columns "$RST")

 logs        $RUN/referral.log, $RUN/dept-*.log
 rating and escalation read this stream (below).
==================================================================================
EOF
