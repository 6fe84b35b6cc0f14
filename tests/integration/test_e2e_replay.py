"""End to end: a generated quarter (tools/gen_city.py: a city of a few
thousand compounds and a quarter of tickets, unit actions, returns and
re-dispatches, callbacks, exemptions, inspections and watermarks) replayed
with whistlectl through the four real daemons into fresh databases twice,
pipelined and then strictly sequentially (--sequential, the replay rule's
baseline): both give byte-identical exports (R-T2), every feed line is taken
(nothing REJECTED or REFUSED), and the exports have the shapes and orders the
export contract defines (docs/formats.md): sorted keys, UTF-8 unescaped, one
object per line, the sort orders of each file, and every closed month,
quarter and half-year present."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import scenario_run as sr  # noqa: E402

TICKETS = int(os.environ.get("WHISTLE_E2E_TICKETS", "2000"))

wt.pgdev("start")
w = wt.Workdir("e2e-replay")
scen = w.file("scenario")
n = sr.generate(scen, seed=3, tickets=TICKETS)
wt.log(f"generated a quarter of {n} feed lines ({TICKETS} tickets)")
s = sr.System(w, os.path.join(scen, "registry"))
outs = {}
for mode in ("pipelined", "sequential"):
    wt.check(s.start_all(), f"{mode}: the four daemons are up on fresh schemas")
    p = s.replay(scen, *(["--sequential"] if mode == "sequential" else []))
    wt.log(p.stdout)
    wt.check(p.returncode == 0 and f"{n} of {n} lines" in p.stdout,
             f"{mode}: whistlectl replay takes every line, exit 0 ({p.stderr[-300:]})")
    wt.check("REJECTED" not in p.stdout and "REFUSED" not in p.stdout,
             f"{mode}: no line REJECTED or REFUSED")
    outs[mode] = w.file(f"export-{mode}")
    p = s.export(outs[mode])
    wt.check(p.returncode == 0, f"{mode}: export --all ({p.stderr[-200:]})")
    wt.check(s.stop_all() == [0] * 4, f"{mode}: the daemons exit 0 on SIGTERM")

ok, why = sr.same_dir(outs["pipelined"], outs["sequential"])
wt.check(ok, f"R-T2: the pipelined and the sequential replay export the same bytes ({why})")

# ---- the export contract's shapes -----------------------------------------------------
d = outs["pipelined"]
names = sorted(os.listdir(d))
want = {"notices.jsonl", "decisions.jsonl", "tickets.jsonl", "credit-2026H2.jsonl", "stars-2026Q4.jsonl"} | \
    {f"{k}-2026-{m}.jsonl" for k in ("rankings", "units") for m in ("10", "11", "12")}
wt.check(want <= set(names), f"every file of the quarter is there ({names})")
rows = {}
bad = []
for name in names:
    text = open(os.path.join(d, name), encoding="utf-8").read()
    rows[name] = [json.loads(x) for x in text.splitlines()]
    again = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows[name])
    if again != text:
        bad.append(name)
wt.check(not bad, f"every line is json.dumps(obj, ensure_ascii=False, sort_keys=True) ({bad})")
KEYS = {"notices": {"number", "type", "recipient", "cc", "rule", "rule_set", "period", "key", "event_at",
                    "evidence", "measures", "signed_at"},
        "decisions": {"key", "rule", "decision", "subject", "period", "event_at", "measures", "evidence"},
        "rankings": {"month", "compound", "company", "count", "rank", "in_top", "streak"},
        "units": {"month", "unit", "population", "response", "resolution", "satisfaction", "score", "rank"},
        "credit": {"company", "score", "grade"},
        "stars": {"compound", "score", "stars"},
        "tickets": {"ticket_no", "category", "compound", "repeat_of", "exempt", "state", "steps"}}
bad = [n for n in names if any(set(r) != KEYS[n.split("-")[0].split(".")[0]] for r in rows[n])]
wt.check(not bad, f"every object has exactly its export's keys ({bad})")


def num(number):  # 督办〔2026〕7号 -> (2026, 7)
    y = number.split("〔")[1].split("〕")[0]
    return int(y), int(number.split("〕")[1].rstrip("号"))


order = {"notices": lambda r: (r["type"], num(r["number"])),
         "decisions": lambda r: r["key"].encode(),
         "rankings": lambda r: (r["rank"], r["compound"].encode()),
         "units": lambda r: r["unit"].encode(), "credit": lambda r: r["company"].encode(),
         "stars": lambda r: r["compound"].encode(), "tickets": lambda r: r["ticket_no"].encode()}
bad = [n for n in names if rows[n] != sorted(rows[n], key=order[n.split("-")[0].split(".")[0]])]
wt.check(not bad, f"every file is in its export's order ({bad})")
by_type = {}
for r in rows["notices.jsonl"]:
    by_type.setdefault((r["type"], num(r["number"])[0]), []).append(num(r["number"])[1])
gaps = {k: v for k, v in by_type.items() if v != list(range(1, len(v) + 1))}
wt.check(by_type and not gaps, f"R-E3: numbers run 1..N without a gap per type and year ({len(by_type)} series"
         f"{'; ' + str(gaps)[:200] if gaps else ''})")
types = sorted({r["type"] for r in rows["notices.jsonl"]})
wt.log(f"notices by type: {types}; {len(rows['tickets.jsonl'])} tickets, {len(rows['decisions.jsonl'])} decisions")
wt.check(len(rows["tickets.jsonl"]) > TICKETS * 0.9 and len(types) >= 5,
         f"the quarter produces tickets and several notice types ({len(rows['tickets.jsonl'])}, {types})")
w.cleanup()
wt.done()
