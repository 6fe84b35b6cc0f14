"""whistlectl with the four real daemons in event mode: replay of a small feed
with every feed line type (over deploy/registry), status, every export
checked against the export shapes and orders, trace and triage, usage
errors, a feed with a bad line, an unreachable daemon, and a second replay
into fresh schemas giving a byte-identical `export --all`."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
import rating_client as rtc  # noqa: E402
import escalation_client as ec  # noqa: E402

CTL = os.path.join(wt.BUILD, "bin", "whistlectl")


def feed_lines():
    def t(d, hh, mm=0):
        return f"2026-10-{d:02d}T{hh:02d}:{mm:02d}:00+08:00"

    def ticket(no, at, comp, phone, **kw):
        o = {"type": "ticket", "at": at, "ticket_no": no, "request_type": "COMPLAINT",
             "hotline_category": "1101", "caller_phone": phone, "caller_name": "张三",
             "compound_code": comp, "address": "幸福里小区3栋", "content": "楼道堆满杂物无人清理"}
        o.update(kw)
        return o
    return [
        ticket("W-1", t(5, 9), "C0001", "13800000001"),
        ticket("W-2", t(5, 10), "C0002", "13800000002"),
        ticket("W-3", t(5, 10, 30), "", "13800000003", hotline_category="", address="无名路1号"),
        ticket("W-4", t(5, 11), "C0003", "13800000004"),
        {"type": "update", "at": t(5, 12), "ticket_no": "W-1", "step": 1, "unit": "S0101", "action": "ACCEPT"},
        {"type": "watermark", "at": t(6, 0)},
        {"type": "triage", "at": t(6, 9), "ticket_no": "W-3", "compound_code": "C0001", "category": "", "unit": ""},
        {"type": "update", "at": t(6, 10), "ticket_no": "W-1", "step": 1, "unit": "S0101", "action": "RESOLVE",
         "violation_confirmed": False, "note": "已清理"},
        {"type": "update", "at": t(6, 12), "ticket_no": "W-2", "step": 1, "unit": "S0101", "action": "RETURN",
         "reason": "非本单位职责"},
        {"type": "feedback", "at": t(7, 9), "ticket_no": "W-1", "satisfaction": "SATISFIED"},
        {"type": "triage", "at": t(7, 10), "ticket_no": "W-2", "compound_code": "", "category": "", "unit": "S0102"},
        {"type": "exempt", "at": t(8, 9), "ticket_no": "W-4", "reason": "重复反映已核减"},
        {"type": "inspection", "at": t(10, 10), "compound_code": "C0001", "sanitation": 92, "garbage": 88,
         "greening": 75, "order": 90, "facilities": 81, "disclosure": 100, "governance": 70},
        {"type": "update", "at": t(11, 9), "ticket_no": "W-4", "step": 1, "unit": "GA", "action": "ACCEPT"},
        {"type": "ticket", "at": t(12, 9), "ticket_no": "W-5", "request_type": "COMPLAINT",
         "hotline_category": "1101", "caller_phone": "13800000001", "caller_name": "张三",
         "compound_code": "C0001", "address": "幸福里小区3栋", "content": "楼道堆满杂物无人清理"},
        {"type": "watermark", "at": "2026-11-02T00:00:00+08:00"},
    ]


def write_feed(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        for o in lines:
            f.write((o if isinstance(o, str) else json.dumps(o, ensure_ascii=False)) + "\n")


# ---- the export shapes (docs/formats.md), checked here ----------------------------------
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$")
NUM = re.compile(r"^(.+)〔(\d{4})〕(\d+)号$")
FIELDS = {
    "notices": ({"number", "type", "recipient", "cc", "rule", "rule_set", "period", "key", "event_at",
                 "evidence", "measures", "signed_at"},
                lambda r: (r["type"], int(NUM.match(r["number"]).group(2)), int(NUM.match(r["number"]).group(3)))),
    "decisions": ({"key", "rule", "decision", "subject", "period", "event_at", "measures", "evidence"},
                  lambda r: r["key"]),
    "rankings": ({"month", "compound", "company", "count", "rank", "in_top", "streak"},
                 lambda r: (r["rank"], r["compound"])),
    "units": ({"month", "unit", "population", "response", "resolution", "satisfaction", "score", "rank"},
              lambda r: r["unit"]),
    "credit": ({"company", "score", "grade"}, lambda r: r["company"]),
    "stars": ({"compound", "score", "stars"}, lambda r: r["compound"]),
    "tickets": ({"ticket_no", "category", "compound", "repeat_of", "exempt", "state", "steps"},
                lambda r: r["ticket_no"]),
}
STEP = {"step", "unit", "state", "accepted_at", "resolved_at", "accept_overdue", "resolve_overdue"}


def shape_problems(kind, text):
    fields, key = FIELDS[kind]
    rows, bad = [], []
    for i, line in enumerate(text.splitlines(), 1):
        try:
            r = json.loads(line)
        except ValueError as e:
            bad.append(f"line {i}: {e}")
            continue
        if line != json.dumps(r, ensure_ascii=False, sort_keys=True):
            bad.append(f"line {i}: not keys sorted / unescaped / ', ' ': '")
        if set(r) != fields:
            bad.append(f"line {i}: fields {sorted(r)}")
            continue
        for k in ("event_at",):
            if k in r and not TS.match(r[k]):
                bad.append(f"line {i}: {k} {r[k]}")
        if kind == "tickets" and not all(isinstance(s, dict) and set(s) == STEP for s in r["steps"]):
            bad.append(f"line {i}: steps {r['steps']}")
        if kind == "tickets" and r["state"] not in ("TRIAGE", "RECORDED", "REPEAT", "OPEN", "RESOLVED", "CLOSED"):
            bad.append(f"line {i}: state {r['state']}")
        rows.append(r)
    keys = [key(r) for r in rows]
    if keys != sorted(keys):
        bad.append("rows out of order")
    return bad, rows


def file_kind(name):
    m = re.fullmatch(r"(notices|decisions|tickets)\.jsonl|(rankings|units)-\d{4}-\d\d\.jsonl|"
                     r"credit-\d{4}H[12]\.jsonl|stars-\d{4}Q[1-4]\.jsonl", name)
    return None if not m else name.split("-")[0].split(".")[0]


# ---- the daemons ---------------------------------------------------------------------
w = wt.Workdir("whistlectl")
ienv = ic.intake_env(w, WHISTLE_CLOCK="event")
renv = rc.referral_env(w, ienv)
tenv = rtc.rating_env(w, ienv, renv)
eenv = ec.escalation_env(w, renv, tenv)
CTL_ENV = dict(os.environ,
               WHISTLE_INTAKE_CONTROL=ienv["WHISTLE_CONTROL"], WHISTLE_REFERRAL_CONTROL=renv["WHISTLE_CONTROL"],
               WHISTLE_RATING_CONTROL=tenv["WHISTLE_CONTROL"], WHISTLE_ESCALATION_CONTROL=eenv["WHISTLE_CONTROL"],
               WHISTLE_INTAKE_HOTLINE=ienv["WHISTLE_INTAKE_HOTLINE"],
               WHISTLE_REFERRAL_UNITS=renv["WHISTLE_REFERRAL_UNITS"],
               WHISTLE_RATING_REQUESTS=tenv["WHISTLE_RATING_REQUESTS"],
               WHISTLE_ESCALATION_REQUESTS=eenv["WHISTLE_ESCALATION_REQUESTS"])


SAN_REPORTS = []


def ctl(*args, env=None, timeout=300):
    t0 = time.time()
    p = subprocess.run([CTL, *args], capture_output=True, text=True, timeout=timeout, env=env or CTL_ENV)
    if any(m in p.stderr for m in ic.SANITIZER_MARKS):
        SAN_REPORTS.append((args, p.stderr[-2000:]))
    return p.returncode, p.stdout, p.stderr, time.time() - t0


def start_all():
    wt.pgdev("reset", "intake", "referral", "rating", "escalation")
    ds = []
    d, ok1 = ic.start_intake(w, ienv)
    ds.append(d)
    d, ok2 = rc.start_referral(w, renv)
    ds.append(d)
    d, ok3 = rtc.start_rating(w, tenv)
    ds.append(d)
    d, ok4 = ec.start_escalation(w, eenv)
    ds.append(d)
    wt.check(ok1 and ok2 and ok3 and ok4, "intake, referral, rating and escalation are up (event clock)")
    return ds


def stop_all(ds):
    for d in reversed(ds):
        d.stop()


wt.pgdev("start")
feed = w.file("feed.jsonl")
write_feed(feed, feed_lines())
REG = ic.REGISTRY

# Usage errors and a bad feed need no daemons.
for args, what in ((), "no command"), (("bogus",), "unknown command"), (("replay", REG), "replay without FEED"), \
        (("export", "rankings"), "rankings without --month"), (("export", "nothing"), "unknown export"), \
        (("export", "stars", "--quarter", "2026-10"), "a bad quarter"), (("status", "--timeout", "x"), "bad --timeout"):
    c, out, err, _ = ctl(*args)
    wt.check(c == 2 and err.strip(), f"usage error ({what}): exit 2 with a message ({c}: {err.strip()[:80]})")
c, out, _, _ = ctl("--help")
wt.check(c == 0 and "replay" in out and "export" in out, "--help lists the commands")
for cmd in ("status", "replay", "export", "trace", "triage", "summary"):
    c, out, _, _ = ctl(cmd, "--help")
    wt.check(c == 0 and "usage: whistlectl " + cmd in out, f"{cmd} --help")
bad = w.file("bad.jsonl")
write_feed(bad, feed_lines()[:2] + ['{"type":"ticket","at":"2026-10-05T09:00:00+08:00",'] + feed_lines()[2:])
c, _, err, _ = ctl("replay", "--quiet", REG, bad)
wt.check(c == 1 and ":3:" in err and "line 3" in err, f"a line that does not parse stops the replay at line 3 ({err.strip()[:160]})")
write_feed(bad, feed_lines()[:4] + ['{"type":"teleport","at":"2026-10-05T09:00:00+08:00"}'])
c, _, err, _ = ctl("replay", "--quiet", REG, bad)
wt.check(c == 1 and ":5:" in err and "unknown type" in err, f"an unknown type stops the replay at line 5 ({err.strip()[:160]})")

# An unreachable daemon: a clear message naming it and its endpoint, within the timeout.
dead = f"tcp://127.0.0.1:{wt.free_port()}"
c, out, err, secs = ctl("status", "--timeout", "1", env=dict(CTL_ENV, WHISTLE_RATING_CONTROL=dead))
wt.check(c == 1 and "rating" in out and dead in out and secs < 10,
         f"status with rating unreachable: exit 1 naming rating and {dead} in {secs:.1f} s")
c, out, err, secs = ctl("export", "decisions", "--timeout", "1", env=dict(CTL_ENV, WHISTLE_RATING_REQUESTS=dead))
wt.check(c == 1 and "rating" in err and dead in err and secs < 10,
         f"export with rating unreachable: exit 1 naming rating and {dead} in {secs:.1f} s ({err.strip()[:120]})")

ds = start_all()
c, out, err, secs = ctl("replay", "--quiet", "--timeout", "1", REG, feed, env=dict(CTL_ENV, WHISTLE_REFERRAL_CONTROL=dead))
wt.check(c == 1 and "referral" in err and dead in err and secs < 10,
         f"replay with referral's control endpoint unreachable: exit 1 naming it in {secs:.1f} s, nothing sent "
         f"({err.strip()[:160]})")
c, out, err, secs = ctl("replay", "--quiet", REG, feed)
wt.log(out)
wt.check(c == 0 and "done: 16 of 16 lines" in out, f"replay of every line type: exit 0, 16 lines ({c}: {err.strip()[-300:]})")
wt.check(re.search(r"update\s+4\s.*REFUSED/WRONG_UNIT 1", out) is not None,
         "the update from the wrong unit is REFUSED and counted, the replay goes on")
wt.check("inspection" in out and "APPLIED 1" in out, "the inspection is APPLIED by rating")
c, out, err, _ = ctl("status")
wt.log(out)
wt.check(c == 0 and len(re.findall(r"^\S+\s+up\s+version", out, re.M)) == 4 and "settled: yes" in out and "postgres up" in out,
         "status: four daemons up, Postgres up, settled")
wt.check("stream referral" in out and "input  intake" in out and "lag 0" in out, "status shows streams, inputs and lag")
c, out, err, _ = ctl("status", "--json")
wt.check(c == 0 and json.loads(out)["settled"] is True, "status --json")

exports = {}
for kind, period in (("notices", None), ("decisions", None), ("tickets", None), ("rankings", "--month=2026-10"),
                     ("units", "--month=2026-10"), ("credit", "--half=2026H2"), ("stars", "--quarter=2026Q4")):
    c, out, err, _ = ctl("export", kind, *([period] if period else []))
    if kind == "stars":  # the feed's last watermark closes October, not the quarter
        wt.check(c == 1 and "period not closed yet" in err and not out, "stars of 2026Q4: not closed yet, exit 1")
        continue
    probs, rows = shape_problems(kind, out)
    exports[kind] = rows
    wt.check(c == 0 and not probs, f"export {kind}: {len(rows)} rows in the export shape and order {probs[:3]}")
tk = {r["ticket_no"]: r for r in exports["tickets"]}
wt.check(tk.get("W-1", {}).get("state") == "CLOSED", f"W-1 CLOSED by the callback ({tk.get('W-1')})")
wt.check(tk.get("W-4", {}).get("exempt") is True, "W-4 exempt")
wt.check(any(s["unit"] == "S0102" for s in tk.get("W-2", {}).get("steps", [])), "W-2 re-dispatched to S0102")
wt.check(tk.get("W-3", {}).get("state") not in (None, "TRIAGE"), "W-3 completed from triage")
wt.check(tk.get("W-5", {}).get("repeat_of") is None, "W-5 is not a repeat: W-1 was closed before it")
wt.check(exports["units"] and exports["credit"], "October's unit scores and the credit are published")
c, out, err, _ = ctl("export", "rankings", "--month", "2026-12")
wt.check(c == 1 and "period not closed yet" in err, "rankings of an unclosed month: 'period not closed yet', exit 1")
o1 = w.file("o1.jsonl")
c, _, _, _ = ctl("export", "tickets", "-o", o1)
wt.check(c == 0 and open(o1, encoding="utf-8").read().count("\n") == len(exports["tickets"]), "export -o FILE")

d1 = w.file("all1")
c, out, err, _ = ctl("export", "--all", d1)
names = sorted(os.listdir(d1)) if os.path.isdir(d1) else []
wt.log(names)
ok = c == 0 and {"notices.jsonl", "decisions.jsonl", "tickets.jsonl", "rankings-2026-10.jsonl",
                 "units-2026-10.jsonl", "credit-2026H2.jsonl"} <= set(names)
wt.check(ok and all(file_kind(n) for n in names), f"export --all writes every file ({c} {err.strip()[:200]})")
for n in names:
    probs, _ = shape_problems(file_kind(n), open(os.path.join(d1, n), encoding="utf-8").read())
    wt.check(not probs, f"{n}: shape and order {probs[:3]}")

c, out, err, _ = ctl("trace", "W-1")
wt.check(c == 0 and "W-1" in out and "step 1" in out and "CLOSED" in out, f"trace W-1 ({err.strip()[:200]})")
c, out, _, _ = ctl("trace", "--json", "W-2")
wt.check(c == 0 and json.loads(out)["ticket"]["ticket_no"] == "W-2", "trace --json")
c, out, err, _ = ctl("trace", "NOPE-1")
wt.check(c == 1 and err.strip(), "trace of an unknown ticket: exit 1 with a message")
c, out, err, _ = ctl("triage")
wt.check(c == 0 and "waiting in manual triage" in out and "returned steps" in out, f"triage ({err.strip()[:200]})")
c, out, err, _ = ctl("summary", "--export", d1)
wt.log(out)
wt.check(c == 0 and "Top list (2026-10)" in out and "Notices:" in out and "Unit scores (2026-10)" in out
         and "Credit (2026H2)" in out and "whistlectl trace" in out, f"summary --export DIR ({err.strip()[:200]})")
c, out2, err, _ = ctl("summary")
wt.check(c == 0 and "one letter in full" in out2 and "----" in out2, "summary from the daemons shows a letter in full")
stop_all(ds)

# The same feed into fresh schemas: byte-identical exports.
ds = start_all()
c, out, err, _ = ctl("replay", "--quiet", "--sequential", REG, feed)
wt.check(c == 0 and "done: 16 of 16" in out, f"second replay (--sequential) into fresh schemas ({err.strip()[-200:]})")
d2 = w.file("all2")
c, _, _, _ = ctl("export", "--all", d2)
same = c == 0 and sorted(os.listdir(d2)) == names and all(
    open(os.path.join(d1, n), "rb").read() == open(os.path.join(d2, n), "rb").read() for n in names)
wt.check(same, "export --all after the second replay is byte-identical")
stop_all(ds)

# CURVE: intake and referral with CURVE on; whistlectl with the ops key and their public key.
keys = rc.Keys(w)
keys.make("server")
keys.make("referral", allowed_by=["intake"])
keys.make("ops", allowed_by=["intake", "referral"])
sec = {"WHISTLE_CURVE": "1", "WHISTLE_CURVE_SECRET_KEY": w.file("server.key")}
ienv2 = dict(ienv, WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-intake"), WHISTLE_PSEUDONYM_KEY=w.file("server.key"),
             **sec)
renv2 = dict(renv, WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-referral"), WHISTLE_CURVE_CLIENT_KEY=w.file("referral.key"),
             WHISTLE_INTAKE_SERVER_KEY=w.file("server.pub"), **sec)
i2 = wt.Daemon(ic.INTAKE, ienv2, w.file("intake-curve.log")).start()
ok = wt.wait_ready(ienv2["WHISTLE_CONTROL"], curve=keys.client("server", "ops")) is not None
r2, ok2 = rc.start_referral(w, renv2, log="referral-curve.log", curve=keys.client("server", "ops"))
wt.check(ok and ok2, "intake and referral are up with CURVE")
KEYS = ["--client-key", w.file("ops.key"), "--server-key", "intake=" + w.file("server.pub"),
        "--server-key", "referral=" + w.file("server.pub")]
c, out, err, _ = ctl("export", "tickets", *KEYS)
wt.check(c == 0 and [json.loads(x) for x in out.splitlines()] == exports["tickets"],
         f"export tickets over CURVE with the ops key ({err.strip()[:200]})")
cenv = dict(CTL_ENV, WHISTLE_CURVE_CLIENT_KEY=w.file("ops.key"), WHISTLE_REFERRAL_SERVER_KEY=w.file("server.pub"),
            WHISTLE_INTAKE_SERVER_KEY=w.file("server.pub"))
c, out, err, _ = ctl("status", "--timeout", "1", env=cenv)
wt.check(c == 1 and re.search(r"^intake\s+up", out, re.M) and re.search(r"^referral\s+up", out, re.M)
         and re.search(r"^rating\s+DOWN", out, re.M), "status over CURVE (keys from the environment): "
         "intake and referral up, rating down, exit 1")
c, out, err, secs = ctl("export", "tickets", "--timeout", "1")
wt.check(c == 1 and "referral" in err and secs < 10, f"without keys: no answer, exit 1 naming referral ({err.strip()[:120]})")
r2.stop()
i2.stop()
wt.check(ic.sanitizer_clean(*[w.file(f) for f in ("intake.log", "referral.log", "rating.log", "escalation.log",
                                                  "intake-curve.log", "referral-curve.log")]),
         "no sanitizer reports from the daemons")
for args, err in SAN_REPORTS[:3]:
    wt.log("whistlectl", args, err)
wt.check(not SAN_REPORTS, f"no sanitizer reports from whistlectl ({len(SAN_REPORTS)} runs with reports)")
w.cleanup()
wt.done()
