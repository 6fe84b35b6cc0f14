# tools/run_escalation.sh: the escalation part of `make run`'s summary, sourced
# by tools/run.sh after the rating part (it uses run.sh's q, py, columns and die).
# Once escalation's watermark is past the end of October (both its inputs'
# watermarks have passed it): the notices of
# the sample run by type, the R-E1 ladder per unit and quarter, one letter in
# full, and the checks (numbers gapless per type and year, each notice once
# on the stream, read with whistle-dept notices as the ops identity).

ESCPY=$(cat <<'PYEOF'
import collections, json, os, re, sys, time
sys.path.insert(0, os.path.join(os.environ["WHISTLE_ROOT"], "tests", "lib"))
import wt

END_OCT_US = 1793462400000001  # just past 2026-11-01T00:00:00+08:00 (the watermark sent below)


def wait(ctl, timeout):
    """Until the out watermark is past the end of October: every notice and
    redelivery before it is committed in the same transaction as it."""
    ok = wt.wait_for(lambda: (wt.status(ctl, timeout=2.0) or {}).get("clock.out_watermark_us", 0)
                     >= END_OCT_US, timeout, "escalation's watermark past October")
    return 0 if ok else 1


def export(req, what, number=""):
    """The JSON lines of a NOTICES or TRACE query, paged through."""
    import escalation_client as ec
    c = ec.NoticeClient(req)
    rows = c.export(getattr(ec.Q, what), number)
    c.close()
    if rows is None:
        return 1
    for r in rows:
        print(json.dumps(r, ensure_ascii=False, sort_keys=True))
    return 0


def pad(text, width):
    """text padded to width terminal columns (CJK characters take two)."""
    import unicodedata
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - cols)


NUM = re.compile(r"^(.+)〔(\d{4})〕(\d+)号$")
LADDER = ("TISHI", "DUBAN", "WENZE")


def report(notices_path, stream_path):
    ns = [json.loads(x) for x in open(notices_path, encoding="utf-8") if x.strip()]
    ev = [json.loads(x) for x in open(stream_path, encoding="utf-8") if x.strip()]
    names = {e["type"]: e["type_name"] for e in ev if e.get("type_name")}
    problems = []
    # By type: count and first numbers.
    by_type = collections.OrderedDict()
    for n in ns:
        by_type.setdefault(n["type"], []).append(n["number"])
    print("---- notices by type (count, first numbers)")
    for t, nums in by_type.items():
        more = " ..." if len(nums) > 3 else ""
        print(f"  {t:<10} {pad(names.get(t, ''), 12)} {len(nums):>4}   {', '.join(nums[:3])}{more}")
    if not ns:
        print("  (none)")
    # Numbers gapless from 1 per type and year; the export in (type, year, N) order.
    per = collections.defaultdict(list)
    keys = []
    for n in ns:
        m = NUM.match(n["number"])
        if not m or m.group(2) != n["event_at"][:4]:
            problems.append(f"bad number {n['number']} for event time {n['event_at']}")
            continue
        per[(n["type"], m.group(2))].append(int(m.group(3)))
        keys.append((n["type"], m.group(2), int(m.group(3))))
    for (t, y), v in per.items():
        if sorted(v) != list(range(1, len(v) + 1)):
            problems.append(f"{t} {y}: numbers {sorted(v)[:10]} are not 1..{len(v)}")
    if keys != sorted(keys):
        problems.append("the export is not sorted by type, year and N")
    # R-E1 per unit and quarter: k = 1 提示函, k = 2 督办函, k >= 3 问责建议函.
    ladder = collections.defaultdict(lambda: {t: [] for t in LADDER})
    for n in ns:
        if n["rule"] == "R-E1" and n["type"] in LADDER:
            ladder[(n["recipient"], n["period"])][n["type"]].append(n["event_at"])
    print("---- the R-E1 ladder per unit and quarter (一次通报、二次约谈、三次问责)")
    print(f"  {'unit':<7} {'quarter':<8} {'提示':>4} {'督办':>4} {'问责':>4}  overdue events")
    for (u, p), c in sorted(ladder.items(), key=lambda kv: (-sum(map(len, kv[1].values())), kv[0])):
        a, b, w = (len(c[t]) for t in LADDER)
        print(f"  {u:<7} {p:<8} {a:>6} {b:>6} {w:>6}  {a + b + w:>6}")
        ok = a == 1 and b <= 1 and (w == 0 or b == 1)
        ok = ok and (not b or max(c["TISHI"]) <= min(c["DUBAN"]))
        ok = ok and (not w or max(c["DUBAN"]) <= min(c["WENZE"]))
        if not ok:
            problems.append(f"R-E1 ladder of {u} {p}: {a} 提示, {b} 督办, {w} 问责 out of order")
    if not ladder:
        print("  (no overdue events)")
    # Each notice once on the stream (notice.issued), nothing else issued.
    issued = collections.Counter(e["number"] for e in ev if e["kind"] == "notice.issued")
    want = collections.Counter(n["number"] for n in ns)
    if issued != want:
        extra = sorted((issued - want).elements())[:5]
        missing = sorted((want - issued).elements())[:5]
        problems.append(f"stream vs notices: repeated or extra {extra}, missing {missing}")
    kinds = collections.Counter(e["kind"] for e in ev)
    print("---- escalation's stream (read with whistle-dept notices as the ops identity)")
    print("  " + (", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "(empty)"))
    print("---- checks")
    print(f"  {len(ns)} notices in {len(per)} (type, year) series; {len(ladder)} unit-quarters on the ladder")
    for p in problems[:10]:
        print("  problem: " + p)
    ok = not problems
    print(f"  numbers gapless from 1 per type and year, each notice once on the stream, "
          f"R-E1 ladder in order: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


def main(mode, *a):
    if mode == "wait":
        return wait(a[0], float(a[1]))
    if mode == "export":
        return export(*a)
    if mode == "report":
        return report(*a)
    return 2


sys.exit(main(*sys.argv[1:]))
PYEOF
)
epy() { "$PY" -c "$ESCPY" "$@"; }

# October's close has the month's end as event time, and a notice is numbered
# once both of escalation's inputs' watermarks are past its event time (R-E3):
# the hotline says one second more has been delivered, so they come too.
printf '%s\n' '{"type":"watermark","at":"2026-11-01T00:00:01+08:00"}' >"$RUN/feed-past-october.jsonl"
"$HOTLINE" --quiet --endpoint "$IHOT" "$RUN/feed-past-october.jsonl" >"$RUN/hotline-past-october.out" ||
  die "whistle-hotline could not send the watermark past October (see $RUN/hotline-past-october.out)"
epy wait "$ECTL" 90 ||
  die "escalation did not reach the end of October and settle within 90 s (log: $RUN/escalation.log)"
NOTICES_OUT=$RUN/notices.jsonl
epy export "$EREQ" NOTICES >"$NOTICES_OUT" || die "escalation did not answer the NOTICES query"
# Every notice event on escalation's stream, as the ops identity (full access).
"$IBIN/whistle-dept" notices --unit ops --stream "$ESTREAM" --out "$RUN/notices-stream.jsonl" \
  --until-idle 1500 2>>"$RUN/notices-stream.log" ||
  die "whistle-dept notices could not read escalation's stream (see $RUN/notices-stream.log)"
first_duban=$(grep -m1 '"type": "DUBAN"' "$NOTICES_OUT" | sed 's/.*"number": "\([^"]*\)".*/\1/' || true)
letter="  (no 督办函 in this run)"
if [ -n "$first_duban" ]; then
  letter=$(epy export "$EREQ" TRACE "$first_duban" |
    "$PY" -c 'import json, sys
t = json.loads(sys.stdin.readline())
print("  trace: %s <- %s %s <- steps %s <- tickets %s" % (t["number"], t["source"], t["key"],
      ", ".join(t["steps"]) or "-", ", ".join(t["tickets"]) or "-"))
print()
for line in t["text"].rstrip("\n").split("\n"):
    print("    " + line if line else "")') || die "escalation did not answer the TRACE query"
fi
EST=$(py dump "$ECTL") || die "escalation does not answer on its control endpoint"
ev() { printf '%s\n' "$EST" | sed -n "s/^$1=//p"; }
at_local() { date -u -d "@$(( $1 / 1000000 + 8 * 3600 ))" '+%Y-%m-%dT%H:%M:%S+08:00'; }
# Triggers at or after the watermark (October's close: its decisions have the
# month's end as event time) wait for a watermark past them (R-E3).
pending=$(q "SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT rule || ' ' || type, ', '), '')
               FROM $E_SCHEMA.triggers WHERE NOT issued")
n_pending=${pending%% *}
pending_what=${pending#* }
ok5=1
report=$(epy report "$NOTICES_OUT" "$RUN/notices-stream.jsonl") || ok5=0
n_notices=$(grep -c . "$NOTICES_OUT" || true)
# One notice per issued trigger: the export, the counter and the triggers agree.
[ "$n_notices" = "$(ev escalation.notices)" ] && [ $((n_notices + n_pending)) = "$(ev escalation.triggers)" ] &&
  [ "$(ev pg.up)" = 1 ] || ok5=0

cat <<EOT

==== Whistle escalation: 三函 and the other notices (whistle-escalation) ==========
 inputs      referral stream at $(ev referral.position), rating stream at $(ev rating.position);
             $(ev escalation.triggers) triggers (overdue events and decisions), each issued once (R-E4)
 clock       out watermark $(at_local "$(ev clock.out_watermark_us)") (referral's $(at_local "$(ev clock.referral_watermark_us)"),
             rating's $(at_local "$(ev clock.rating_watermark_us)"))
 notices     $n_notices numbered once both watermarks passed them (R-E3), $(ev escalation.redelivered) delivered
             again unsigned after 2 working days (R-E6), $(ev escalation.signed) signed
 waiting     $n_pending trigger(s) not yet past both watermarks${pending_what:+ ($pending_what)} (October's
             close: event time 2026-11-01T00:00+08:00, numbered after the watermark one second later)
 checks      the checks below, and one notice per issued trigger (export, counters): $([ $ok5 = 1 ] && echo yes || echo NO)

$report
---- the first 督办函 (${first_duban:-none}), as its recipient receives it (TRACE query)
$letter
---- escalation status (control endpoint $ECTL)
$(columns "$EST")

 interfaces  requests at $EREQ (proto/notice.proto: Sign, Query NOTICES/TRACE/UNSIGNED);
             escalation's stream at $ESTREAM (each recipient its own notices:
             whistle-dept notices --unit UNIT; sign with whistle-dept sign NUMBER --unit UNIT)
 exports     $NOTICES_OUT (the notices export shape), $RUN/notices-stream.jsonl
 logs        $RUN/escalation.log
==================================================================================
EOT
