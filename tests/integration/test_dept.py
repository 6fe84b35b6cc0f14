"""whistle-dept against the real intake and referral daemons: `watch` writes
a unit's events as JSON Lines and, with a position file, resumes after being
stopped without losing or repeating a line (R-R5); the one-shot commands
print the reply as one JSON line with the exit status saying APPLIED /
DUPLICATE (0) or REFUSED (1); `run` answers every step issued to its unit as
its policy says, in event time, and a restarted `run` is answered DUPLICATE
for what it had already done."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402

DEPT = os.path.join(wt.BUILD, "bin", "whistle-dept")
S = 1000000
H = 3600 * S
T0 = 1790000000 * S

wt.pgdev("start")
wt.pgdev("reset", "intake", "referral")
w = wt.Workdir("dept")
ienv = ic.intake_env(w, WHISTLE_CLOCK="event")
intake, ok = ic.start_intake(w, ienv)
renv = rc.referral_env(w, ienv)
ref, ok2 = rc.start_referral(w, renv)
wt.check(ok and ok2, "intake and referral are up")
STREAM = ["--stream", renv["WHISTLE_REFERRAL_STREAM"]]
EPS = STREAM + ["--units", renv["WHISTLE_REFERRAL_UNITS"]]


def dept(*args, timeout=60):
    p = subprocess.run([DEPT, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(x) for x in f if x.strip()]


hc = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"])
N = 60  # V_NOISE tickets (hotline 1301) route to GA
frames = {i + 1: ic.submit(i + 1, ticket_no=f"D-{i:03d}", received_us=T0 + i * 60 * S,
                           request_type="COMPLAINT", hotline_category="1301" if i % 2 else "1401",
                           compound_code="C0001", address="x", content="噪音")
          for i in range(N)}
replies = hc.push(frames)
wt.check(len(replies) == N and all(r.status == ic.ACCEPTED for r in replies.values()), f"{N} tickets ACCEPTED")
wt.check(wt.wait_for(lambda: wt.scalar("SELECT count(*) FROM referral.tickets WHERE jsonb_array_length(steps) = 1")
                     == str(N), 30, "steps"), "each got its step (GA: noise, XF: fire lanes)")

# watch, stopped after 10 events, then resumed: every event once, in order.
out, pos = w.file("ga.jsonl"), w.file("ga.pos")
rc1, _, err = dept("watch", "--unit", "GA", *STREAM, "--position", pos, "--out", out, "--max", "10")
wt.check(rc1 == 0 and len(lines(out)) == 10, f"watch --max 10 wrote 10 lines and exited 0 ({rc1} {err[-200:]})")
rc2, _, err = dept("watch", "--unit", "GA", *STREAM, "--position", pos, "--out", out, "--until-idle", "1500")
got = lines(out)
seqs = [g["seq"] for g in got]
ga_steps = [g for g in got if g["kind"] == "step.issued"]
wt.check(rc2 == 0 and len(ga_steps) == N // 2 and seqs == sorted(set(seqs)),
         f"resumed from its position: all {N // 2} of GA's steps, each once, in order ({len(ga_steps)})")
wt.check(all(g["unit"] == "GA" and g.get("ticket_no", "D-").startswith("D-") for g in got if g["kind"] != "WATERMARK"),
         "GA's file holds only GA's events")
first = ga_steps[0]
wt.check(first["accept_by"].endswith("+08:00") and first["issued"].endswith("+08:00") and
         first["category"] == "V_NOISE" and "content" in first,
         "times are RFC 3339 in local time; the payload's fields are there")

# One-shot commands.
no, st = first["ticket_no"], str(first["step"])
at = "2026-09-22T08:00:00+08:00"
code, o, _ = dept("accept", no, st, "--unit", "GA", "--at", at, "--units", renv["WHISTLE_REFERRAL_UNITS"])
r = json.loads(o)
wt.check(code == 0 and r["status"] == "APPLIED" and r["step_state"] == "ACCEPTED", f"accept: {o.strip()}")
code, o, _ = dept("accept", no, st, "--unit", "GA", "--at", at, "--units", renv["WHISTLE_REFERRAL_UNITS"])
wt.check(code == 0 and json.loads(o)["status"] == "DUPLICATE", f"the same accept again: DUPLICATE ({o.strip()})")
code, o, _ = dept("resolve", no, st, "--unit", "XF", "--units", renv["WHISTLE_REFERRAL_UNITS"])
r = json.loads(o)
wt.check(code == 1 and r["code"] == "WRONG_UNIT" and not r["step_state"] and not r["ticket_state"],
         f"another unit's resolve: exit 1, WRONG_UNIT, and nothing about the step ({o.strip()})")
code, o, _ = dept("resolve", no, st, "--unit", "GA", "--violation", "--prohibition", "P3", "--note", "已处理",
                  "--at", "2026-09-22T18:00:00+08:00", "--units", renv["WHISTLE_REFERRAL_UNITS"])
wt.check(code == 0 and json.loads(o)["ticket_state"] == "RESOLVED", f"resolve: {o.strip()}")
code, _, err = dept("resolve", no, "x", "--unit", "GA")
wt.check(code == 2 and err, "bad usage: exit 2 with a message")

# run: XF answers its steps by policy; a second run is answered DUPLICATE.
policy = w.file("policy.json")
with open(policy, "w") as f:
    f.write('{"accept_after_min": 30, "resolve_after_min": 600, "late_every": 0, "return_every": 5,'
            ' "violation_every": 0, "ignore_every": 0}')
args = ["run", "--unit", "XF", "--policy", policy, *EPS, "--until-idle", "2000"]
code, _, err = dept(*args, "--out", w.file("xf.jsonl"), "--position", w.file("xf.pos"), timeout=120)
xf = wt.sql("SELECT steps->0->>'state', count(*) FROM referral.tickets WHERE steps->0->>'unit' = 'XF' GROUP BY 1")
states = {s: int(n) for s, n in xf}
wt.check(code == 0 and states.get("ISSUED", 0) == 0 and states.get("RESOLVED", 0) > 0 and
         states.get("RETURNED", 0) > 0, f"run answered every XF step: {states} ({err.strip()[-160:]})")
on_time = wt.scalar("SELECT count(*) FROM referral.tickets WHERE steps->0->>'unit' = 'XF' AND"
                    " (steps->0->>'accepted')::bigint = (steps->0->>'issued')::bigint + 1800000000")
wt.check(int(on_time) == N // 2,
         f"accepts stamped 30 minutes after issue, in event time ({on_time})")
code, _, err = dept(*args, "--out", w.file("xf2.jsonl"), timeout=120)
st_ = (wt.status(renv["WHISTLE_CONTROL"]) or {})
wt.check(code == 0 and st_.get("referral.duplicates", 0) > 0,
         f"a second run from the start is answered DUPLICATE ({st_.get('referral.duplicates')})")
rc.finish(w, ref, intake)
