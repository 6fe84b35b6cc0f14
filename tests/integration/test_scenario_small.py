"""The small hand-checked scenario (tests/scenarios/small, see its README):
its registry and feed replayed through the four real daemons in event clock
mode, every export written as docs/formats.md defines it, each compared byte for
byte with the hand-computed file in expected/ (a unified diff on mismatch).

replay_and_export() is the whole replay: registry + feed in, a directory of
export files out. It is the one piece to swap for `whistlectl replay` and
`whistlectl export ...` once that tool exists; the comparison does not care
which produced the files.

tickets.jsonl comes from referral's ops query (UnitMessage{query TICKETS}).
Debian's python3-zmq and python3-protobuf only."""
import datetime
import difflib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import referral_client as rc  # noqa: E402
import rating_client as rtc  # noqa: E402
import escalation_client as ec  # noqa: E402
from rating_feed import Stack, SU, H, month_end  # noqa: E402

SCENARIO = os.path.join(wt.ROOT, "tests", "scenarios", "small")
DIMS = ["sanitation", "garbage", "greening", "order", "facilities", "disclosure", "governance"]


def at_us(text):
    """Microseconds of an RFC 3339 time with offset."""
    return int(datetime.datetime.fromisoformat(text).timestamp()) * 1000000


def dumps(obj):
    """One export line as docs/formats.md writes it."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


# ---- periods the exports cover ------------------------------------------------------


def periods(first_us, last_us):
    """The months, quarters and half-years from first_us's month to the last
    month that ends by last_us (closed), and the halves touched."""
    d = datetime.datetime.fromtimestamp(first_us // 1000000, datetime.timezone(datetime.timedelta(hours=8)))
    y, m = d.year, d.month
    months = []
    while month_end(f"{y}-{m:02d}") <= last_us:
        months.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    quarters = [f"{mo[:4]}Q{int(mo[5:]) // 3}" for mo in months if int(mo[5:]) % 3 == 0]
    halves = sorted({f"{mo[:4]}H{1 if int(mo[5:]) <= 6 else 2}" for mo in months})
    return months, quarters, halves


# ---- the replay (to be replaced by whistlectl) ----------------------------------------


def replay_and_export(registry, feed, out):
    """Replays feed (docs/formats.md JSON Lines) on registry through intake,
    referral, rating and escalation in event clock mode, one line at a time
    in order, then writes every export file into out. Returns (ok, problems):
    problems lists the feed lines a daemon did not take as expected."""
    wt.pgdev("start")
    wt.pgdev("reset", "escalation")
    st = Stack("scenario-small", rating_registry=registry, registry=registry)
    eenv = ec.escalation_env(st.w, st.renv, st.tenv, registry=registry)
    esc, ok4 = ec.start_escalation(st.w, eenv)
    nc = ec.NoticeClient(eenv["WHISTLE_ESCALATION_REQUESTS"])
    problems = []
    try:
        if not (st.ok and ok4):
            return False, ["the four daemons did not all start"]
        lines = [json.loads(x) for x in open(feed, encoding="utf-8") if x.strip()]
        returned = {}  # ticket_no -> the step number last returned
        first = last = None
        for n, o in enumerate(lines, 1):
            t = at_us(o["at"])
            first = t if first is None else min(first, t)
            last = t if last is None else max(last, t)
            kind = o["type"]
            before = len(st.unexpected)
            if kind == "ticket":
                st.ticket(t, o["ticket_no"], **{k: o[k] for k in (
                    "request_type", "hotline_category", "caller_phone", "caller_name", "compound_code",
                    "address", "content") if o.get(k)})
            elif kind == "update":
                kw = {k: o[k] for k in ("violation_confirmed", "prohibition", "note", "reason") if o.get(k)}
                if o.get("evidence"):
                    kw["evidence"] = o["evidence"]
                st.settle()
                st.unit(t, o["ticket_no"], o["step"], SU.Action.Value(o["action"]), **kw)
                if o["action"] == "RETURN":
                    returned[o["ticket_no"]] = o["step"]
            elif kind == "triage":
                if o.get("unit"):
                    st.settle()
                    st.redispatch(t, o["ticket_no"], returned.pop(o["ticket_no"], 1), o["unit"])
                else:
                    st.triage(t, o["ticket_no"], o.get("compound_code", ""), o.get("category", ""))
            elif kind == "feedback":
                st.feedback(t, o["ticket_no"], o["satisfaction"])
            elif kind == "exempt":
                st.exempt(t, o["ticket_no"], o["reason"])
            elif kind == "watermark":
                st.watermark(t)
            elif kind == "inspection":
                st.settle()
                # rating takes an inspection at most a day past its clock (R-T3)
                wt.wait_for(lambda: st.rating_clock() >= t - 23 * H, 30, "rating's clock")
                iid = o.get("inspection_id") or f"feed-line-{n}"
                st.inspect(t, iid, o["compound_code"], [int(o[k]) for k in DIMS])
            else:
                return False, [f"feed line {n}: unknown type {kind!r}"]
            problems += [f"feed line {n} ({kind} {o['at']}): {w}: {r}" for w, r in st.unexpected[before:]]
        st.settle()
        months, quarters, halves = periods(first, last)
        # every close done, and escalation past every decision and overdue
        ok = wt.wait_for(lambda: st.closes() >= len(months) and st.rating_clock() >= last, 120,
                         "rating's closes and watermark")
        ok = ok and wt.wait_for(lambda: (wt.status(eenv["WHISTLE_CONTROL"], 1.0) or {}).get(
            "clock.out_watermark_us", 0) >= last, 120, "escalation's watermark")
        if not ok:
            return False, problems + ["the daemons did not reach the feed's last watermark"]
        os.makedirs(out, exist_ok=True)
        tickets, _ = rc.query_all(st.uc, "TICKETS", 900000)
        files = {"notices.jsonl": nc.export(ec.Q.NOTICES), "decisions.jsonl": st.export(rtc.Q.DECISIONS),
                 "tickets.jsonl": [json.loads(x) for x in tickets] if tickets else None}
        for mo in months:
            files[f"rankings-{mo}.jsonl"] = st.export(rtc.Q.RANKINGS, mo)
            files[f"units-{mo}.jsonl"] = st.export(rtc.Q.UNITS, mo)
        for q in quarters:
            files[f"stars-{q}.jsonl"] = st.export(rtc.Q.STARS, q)
        for h in halves:
            files[f"credit-{h}.jsonl"] = st.export(rtc.Q.CREDIT, h)
        for name, rows in files.items():
            if rows is None:
                problems.append(f"{name}: no answer from the query")
                continue
            with open(os.path.join(out, name), "w", encoding="utf-8") as f:
                f.writelines(dumps(r) + "\n" for r in rows)
        return True, problems
    finally:
        nc.close()
        st.close()
        codes = [d.stop() for d in [esc] + st.daemons()]
        wt.check(codes == [0] * 4, f"escalation, rating, referral and intake exit 0 on SIGTERM ({codes})")
        if os.environ.get("SCENARIO_KEEP"):
            wt.log("daemon logs kept in", st.w.path)
        else:
            st.w.cleanup()


# ---- the comparison -------------------------------------------------------------------


def compare(expected_dir, got_dir):
    for name in sorted(os.listdir(expected_dir)):
        want = open(os.path.join(expected_dir, name), encoding="utf-8").read()
        path = os.path.join(got_dir, name)
        got = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
        same = got == want
        wt.check(same, f"{name}: the export equals the hand-computed file")
        if not same:
            sys.stdout.writelines(difflib.unified_diff(
                want.splitlines(True), got.splitlines(True), f"expected/{name}", f"replay/{name}"))
    extra = sorted(set(os.listdir(got_dir)) - set(os.listdir(expected_dir)))
    wt.check(not extra, f"no export file without an expected one ({extra})")


def main():
    out = wt.Workdir("scenario-small-out")
    ok, problems = replay_and_export(os.path.join(SCENARIO, "registry"), os.path.join(SCENARIO, "feed.jsonl"),
                                     out.file("exports"))
    for p in problems:
        wt.log("feed:", p)
    wt.check(ok, "the feed replays to its last watermark")
    wt.check(not problems, "every feed line is taken as the scenario intends")
    if ok:
        compare(os.path.join(SCENARIO, "expected"), out.file("exports"))
    if os.environ.get("SCENARIO_KEEP"):
        wt.log("exports kept in", out.file("exports"))
    else:
        out.cleanup()
    wt.done()


if __name__ == "__main__":
    main()
