"""whistlectl replay's pipelined schedule keeps the meaning of the strictly
sequential replay (docs/formats.md, the replay rule) where lines between two
watermarks pass each other. A hand-made feed on the small scenario's registry
puts into one watermark's span the cases the schedule must hold back:

- an update right after its ticket (and a RESOLVE right after its ACCEPT):
  sent only once referral has the step, so nothing is refused;
- two updates confirming violations against the same project (R-P3): the
  first waits for its ticket to reach referral, the second could go at once,
  but confirmed violations keep their feed order, so D = 1 fires for the first
  (its ticket as evidence, its time) and D = 2 for the second;
- a satisfied callback that closes a ticket, then a new ticket of the same
  caller, compound and category (R-I5): the closure is known before the new
  ticket is judged, so it is no repeat.

Each of these is checked against the hand-computed outcome, and the
pipelined replay's exports equal the --sequential replay's byte for byte."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import scenario_run as sr  # noqa: E402

REGISTRY = os.path.join(wt.ROOT, "tests", "scenarios", "small", "registry")
A, B, T1, T2 = ("12345-20261002-000001", "12345-20261001-000002", "12345-20261001-000003",
                "12345-20261002-000004")


def ticket(at, no, caller, compound, address):
    return {"type": "ticket", "at": at, "ticket_no": no, "request_type": "COMPLAINT",
            "hotline_category": "1101", "caller_phone": caller, "caller_name": "王五",
            "compound_code": compound, "address": address, "content": "楼道垃圾多日无人清运"}


def update(at, no, unit, action, **kw):
    return dict({"type": "update", "at": at, "ticket_no": no, "step": 1, "unit": unit, "action": action}, **kw)


def wm(at):
    return {"type": "watermark", "at": at}


FEED = [
    wm("2026-10-01T00:00:00+08:00"),
    ticket("2026-10-01T08:00:00+08:00", T1, "13900000003", "C0005", "光明小区5栋"),
    update("2026-10-01T08:30:00+08:00", T1, "S0102", "ACCEPT"),
    update("2026-10-01T09:00:00+08:00", T1, "S0102", "RESOLVE", violation_confirmed=False, note="已清运"),
    ticket("2026-10-01T09:00:00+08:00", B, "13900000002", "C0001", "幸福里3栋"),
    update("2026-10-01T10:00:00+08:00", B, "S0101", "ACCEPT"),
    wm("2026-10-02T00:00:00+08:00"),
    ticket("2026-10-02T09:00:00+08:00", A, "13900000001", "C0001", "幸福里5栋"),
    update("2026-10-02T09:30:00+08:00", A, "S0101", "ACCEPT"),
    update("2026-10-02T10:00:00+08:00", A, "S0101", "RESOLVE", violation_confirmed=True, prohibition="P2",
           note="垃圾清运不及时"),
    update("2026-10-02T11:00:00+08:00", B, "S0101", "RESOLVE", violation_confirmed=True, prohibition="P8",
           note="公共收益未公开"),
    {"type": "feedback", "at": "2026-10-02T12:00:00+08:00", "ticket_no": T1, "satisfaction": "SATISFIED"},
    ticket("2026-10-02T12:30:00+08:00", T2, "+86-139-0000-0003", "C0005", "光明小区5栋"),
    wm("2026-10-03T00:00:00+08:00"),
    wm("2026-11-01T00:00:00+08:00"),
]

wt.pgdev("start")
w = wt.Workdir("replay-schedule")
feed = w.file("feed.jsonl")
with open(feed, "w", encoding="utf-8") as f:
    for o in FEED:
        f.write(json.dumps(o, ensure_ascii=False) + "\n")
s = sr.System(w, REGISTRY)
outs = {}
for mode in ("pipelined", "sequential"):
    wt.check(s.start_all(), f"{mode}: the four daemons are up on fresh schemas")
    p = s.ctl("replay", "--quiet", *(["--sequential"] if mode == "sequential" else []), REGISTRY, feed)
    wt.log(p.stdout)
    n = len(FEED)
    wt.check(p.returncode == 0 and f"{n} of {n} lines" in p.stdout and "REFUSED" not in p.stdout
             and "REJECTED" not in p.stdout,
             f"{mode}: every line taken, none refused: each update went once its step was in referral "
             f"({p.stderr[-300:]})")
    outs[mode] = w.file(f"export-{mode}")
    p = s.export(outs[mode])
    wt.check(p.returncode == 0, f"{mode}: export --all ({p.stderr[-200:]})")
    wt.check(s.stop_all() == [0] * 4, f"{mode}: the daemons exit 0 on SIGTERM")

d = outs["pipelined"]
decisions = {r["key"]: r for r in map(json.loads, open(os.path.join(d, "decisions.jsonl"), encoding="utf-8"))}
d1, d2 = decisions.get("R-P3.1|C0001|2026"), decisions.get("R-P3.2|C0001|2026")
wt.check(d1 is not None and d1["evidence"] == [A] and d1["event_at"] == "2026-10-02T10:00:00+08:00",
         f"R-P3: D = 1 fires for the violation confirmed first in the feed ({A} at 10:00): {d1}")
wt.check(d2 is not None and d2["evidence"] == [A, B] and d2["event_at"] == "2026-10-02T11:00:00+08:00",
         f"R-P3: D = 2 for the second ({B} at 11:00; both as evidence), though it could have been sent "
         f"first: {d2}")
tickets = {r["ticket_no"]: r for r in map(json.loads, open(os.path.join(d, "tickets.jsonl"), encoding="utf-8"))}
wt.check(tickets.get(T1, {}).get("state") == "CLOSED", f"R-I7: the satisfied callback closed {T1}")
wt.check(T2 in tickets and tickets[T2]["repeat_of"] is None and tickets[T2]["state"] != "REPEAT",
         f"R-I5: {T2}, same caller (written +86-139-0000-0003), compound and category after {T1} closed, "
         f"is no repeat: {tickets.get(T2)}")
ok, why = sr.same_dir(outs["pipelined"], outs["sequential"])
wt.check(ok, f"R-T2: the pipelined and the sequential replay export the same bytes ({why})")

# --strict: the first refusal stops the replay (exit 1, its line named); what
# was sent before the stop is counted, nothing after the stop's segment is sent.
bad = w.file("strict.jsonl")
lines = FEED[:9] + [update("2026-10-02T09:40:00+08:00", A, "S0101", "RESOLVE", step=9)] + FEED[9:]
with open(bad, "w", encoding="utf-8") as f:
    for o in lines:
        f.write(json.dumps(o, ensure_ascii=False) + "\n")
wt.check(s.start_all(), "strict: the four daemons are up on fresh schemas")
p = s.ctl("replay", "--quiet", "--strict", REGISTRY, bad)
wt.log(p.stdout, p.stderr)
wt.check(p.returncode == 1 and "line 10 update" in p.stderr and "--strict: the replay stops" in p.stderr
         and "STOPPED" in p.stdout and "REFUSED/UNKNOWN_STEP 1" in p.stdout,
         f"--strict: the refused update (line 10) stops the replay, exit 1 ({p.returncode})")
done = int(p.stdout.split("STOPPED: ")[1].split(" of")[0])
wt.check(10 <= done < len(lines) - 1, f"--strict: the lines up to the refusal are counted, the last watermarks "
                                        f"are not sent ({done} of {len(lines)})")
wt.check(s.stop_all() == [0] * 4, "strict: the daemons exit 0 on SIGTERM")
w.cleanup()
wt.done()
