"""tools/gen_city.py, the sample city and quarter generator: two runs with the
same seed and options write the same bytes (and another seed other bytes);
the registry has every registry (docs/formats.md) file with its exact columns and
passes whistle-intake's and whistle-referral's own registry check
(--check-config); the feed is sorted by `at`, holds every line type, no line
more than a day ahead of the latest watermark, and ends with a watermark past
the quarter; and a small city's quarter (WHISTLE_TEST_TICKETS, default 600)
replayed into intake, referral and rating (tests/lib/replay_py.py) gets every
line applied (no DUPLICATE, REJECTED or REFUSED), with referral's tickets and
steps exactly as the generator modelled them: categories (R-I3), compounds
(R-I4), repeats (R-I5), step numbers, units and states through chains (R-R2),
returns and re-dispatches (R-R3), redo after UNSATISFIED (R-R6), deadlines
(R-R4, R-T4, R-T5), closing (R-R2); and rating publishes the decisions the
feed is made for: R-C4 at streaks 1, 2 and 3, R-P3 at D = 1, 2, 3 and 4, R-S3."""
import datetime
import filecmp
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
import replay_py  # noqa: E402

GEN = os.path.join(wt.ROOT, "tools", "gen_city.py")
N = int(os.environ.get("WHISTLE_TEST_TICKETS", "600"))
COLUMNS = {
    "districts.csv": "code,name", "streets.csv": "code,name,district",
    "compounds.csv": "code,name,aliases,street,management,company,manager,households",
    "companies.csv": "code,name", "departments.csv": "code,name", "calendar.csv": "date,kind",
    "hotline_categories.csv": "hotline_code,category", "keywords.csv": "keyword,category,priority",
    "routing.csv": "category,step,unit,accept_hours,resolve_workdays",
    "categories.csv": "category,name,counts,urgent,prohibition",
}
TYPES = {"ticket", "update", "triage", "feedback", "inspection", "exempt", "watermark"}

w = wt.Workdir("gen-city")


def gen(out, *args):
    t0 = time.time()
    r = subprocess.run(["/usr/bin/python3", GEN, "--out", out, *args], capture_output=True, text=True,
                       timeout=300)
    wt.log(r.stderr.strip())
    return r.returncode, time.time() - t0


def same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(same_tree(os.path.join(a, d), os.path.join(b, d))
                                               for d in cmp.common_dirs)


def at(line):
    return datetime.datetime.fromisoformat(line["at"]).timestamp()


# ---- determinism -------------------------------------------------------------------
a, b, c = w.file("a"), w.file("b"), w.file("c")
code_a, secs = gen(a, "--seed", "7", "--tickets", str(N), "--expect")
code_b, _ = gen(b, "--seed", "7", "--tickets", str(N), "--expect")
code_c, _ = gen(c, "--seed", "8", "--tickets", str(N))
wt.check(code_a == code_b == code_c == 0, f"gen_city runs ({secs:.1f}s for {N} tickets)")
wt.check(same_tree(a, b), "the same seed and options give byte-identical output")
with open(os.path.join(a, "feed.jsonl"), "rb") as f1, open(os.path.join(c, "feed.jsonl"), "rb") as f2:
    wt.check(f1.read() != f2.read(), "another seed gives another feed")
r = subprocess.run(["/usr/bin/python3", GEN, "--help"], capture_output=True, text=True)
wt.check(r.returncode == 0 and "--tickets" in r.stdout and "--quarter" in r.stdout, "--help")

# ---- the registry ------------------------------------------------------------------
reg = os.path.join(a, "registry")
heads = {}
for name in COLUMNS:
    path = os.path.join(reg, name)
    heads[name] = open(path, encoding="utf-8").readline().rstrip("\n") if os.path.exists(path) else None
wt.check(heads == COLUMNS, "every registry (docs/formats.md) file, with its exact columns")
comps = ic.registry_rows("compounds.csv", reg)
kinds = {m: sum(1 for x in comps if x["management"] == m) for m in ("PROFESSIONAL", "SELF", "CUSTODIAL", "NONE")}
wt.check(2000 <= len(comps) <= 4000 and kinds["PROFESSIONAL"] > len(comps) / 2 and min(kinds.values()) > 0,
         f"a city of {len(comps)} compounds, {kinds}")
wt.check(200 <= len(ic.registry_rows("companies.csv", reg)) <= 400
         and 30 <= len(ic.registry_rows("streets.csv", reg)) <= 60, "companies and streets")
cal = {x["date"]: x["kind"] for x in ic.registry_rows("calendar.csv", reg)}
wt.check(all(cal.get(f"2026-10-0{d}") == "HOLIDAY" for d in range(1, 8)) and cal.get("2026-10-10") == "WORKDAY"
         and cal.get("2026-10-08") is None and cal.get("2027-01-01") == "HOLIDAY",
         "R-T4: 国庆 2026 (Oct 1-7 off, Oct 10 worked) and New Year's Day 2027 in the calendar")

wt.pgdev("start")
w_env = {"WHISTLE_REGISTRY": reg}
ienv = ic.intake_env(w, **w_env)
renv = rc.referral_env(w, ienv, registry=reg)
for prog, env in ((ic.INTAKE, ienv), (rc.REFERRAL, renv)):
    r = subprocess.run([prog, "--check-config"], env=dict(os.environ, **wt.pg_env(), **env),
                       capture_output=True, text=True, timeout=60)
    wt.check(r.returncode == 0, f"{os.path.basename(prog)} --check-config accepts the registry"
             + ("" if r.returncode == 0 else f": {(r.stdout + r.stderr).strip()[-400:]}"))

# ---- the feed ----------------------------------------------------------------------
with open(os.path.join(a, "feed.jsonl"), encoding="utf-8") as f:
    feed = [json.loads(x) for x in f]
times = [at(x) for x in feed]
wt.check(times == sorted(times), f"the feed ({len(feed)} lines) is sorted by `at`")
wt.check({x["type"] for x in feed} == TYPES, f"every line type occurs: {sorted(TYPES)}")
ahead, mark = 0, None
for x, t in zip(feed, times):
    if x["type"] == "watermark":
        mark = t
    elif mark is None or t > mark + 86400:
        ahead += 1
wt.check(ahead == 0, "R-T3: no line is more than a day ahead of the latest watermark")
wt.check(feed[-1]["type"] == "watermark" and feed[-1]["at"] > "2027-01-01T00:00:00+08:00",
         f"the last line is a watermark past the quarter ({feed[-1]['at']})")
redispatch = [x for x in feed if x["type"] == "triage" and x.get("unit")]
wt.check(redispatch and all(isinstance(x.get("step"), int) and x["step"] > 0 for x in redispatch),
         "R-R3: re-dispatch lines (triage with a unit) name the returned step")

# ---- the replay --------------------------------------------------------------------
rp = replay_py.Replay(reg, "gen-city-replay")
wt.check(rp.st.ok, "intake, referral and rating start on the generated registry")
n = rp.run(os.path.join(a, "feed.jsonl"))
counts = dict(rp.counts)
wt.log("replies:", ", ".join(f"{k} {s} {v}" for (k, s), v in sorted(counts.items())))
wt.check(not rp.problems, f"every one of {n} lines applied (ACCEPTED/APPLIED): "
         + "; ".join(f"line {ln}: {what}" for ln, what in rp.problems[:5]))
wt.check(all(s in ("ACCEPTED", "APPLIED") for (_, s) in counts), "no DUPLICATE, REJECTED or REFUSED reply")
with open(os.path.join(a, "expect.jsonl"), encoding="utf-8") as f:
    expect = [json.loads(x) for x in f]
bad = rp.compare(expect)
wt.check(not bad, f"referral's {len(expect)} tickets and their steps are as modelled (R-I3..R-I5, R-R2..R-R6,"
         " R-T5): " + "; ".join(bad[:5]))
reasons = {s["reason"] for e in expect for s in e["steps"]}
dispositions = {e["disposition"] for e in expect}
wt.check(reasons == {"ROUTE", "REDISPATCH", "REDO"} and {"REPEAT", "RECORDED", "DISPATCHED"} <= dispositions,
         f"the feed exercises chains, re-dispatch and redo ({sorted(reasons)}), repeats and recorded calls")
summary = rp.rating(replay_py.us(feed[-1]["at"]))
got = summary["decisions"]
wt.log("decisions:", dict(sorted(got.items())))
want = ["R-C4 INTERVIEW_COMPANY", "R-C4 REPLACE_MANAGER", "R-C4 BLACKLIST", "R-P3 CREDIT_DEDUCT",
        "R-P3 STAR_DOWNGRADE", "R-P3 NONCOMPLIANT", "R-P3 BLACKLIST_COMPANY"]
wt.check(all(got.get(k) for k in want), "rating decides R-C4 at streaks 1-3 and R-P3 at D = 1-4")
wt.check(any(k.startswith("R-S3") for k in got), "R-S3: the inspections rate projects")
codes = rp.close()
wt.check(codes == [0, 0, 0], f"the daemons drain and exit 0 ({codes})")
w.cleanup()
wt.done()
