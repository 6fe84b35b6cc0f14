"""whistle-dept as a recipient's client of whistle-escalation, with all four
daemons in event mode (R-E6: recipients receive their notices over the
stream and sign for them). Tickets that nobody accepts become overdue events
and October's close ranks their compounds, so escalation issues R-E1
notices to the street and R-C4 notices to the company. `notices` writes
exactly the notices addressed or copied to its unit as JSON lines (number,
type, key, the letter), resumes from its position without losing or
repeating a line, and later shows the signature's confirmation; `sign`
prints the reply as one JSON line, exit 0 on APPLIED and DUPLICATE, 1 when
the notice is not the unit's."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
import rating_client as rtc  # noqa: E402
import escalation_client as ec  # noqa: E402

DEPT = os.path.join(wt.BUILD, "bin", "whistle-dept")
S = 1000000


def local(y, m, d, hh=0, mm=0):
    import datetime
    tz = datetime.timezone(datetime.timedelta(hours=8))
    return int(datetime.datetime(y, m, d, hh, mm, tzinfo=tz).timestamp()) * S


def dept(*args, timeout=60):
    p = subprocess.run([DEPT, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(x) for x in f if x.strip()]


wt.pgdev("start")
wt.pgdev("reset", "intake", "referral", "rating", "escalation")
w = wt.Workdir("dept-notices")
ienv = ic.intake_env(w, WHISTLE_CLOCK="event")
intake, ok1 = ic.start_intake(w, ienv)
renv = rc.referral_env(w, ienv)
ref, ok2 = rc.start_referral(w, renv)
tenv = rtc.rating_env(w, ienv, renv)
rat, ok3 = rtc.start_rating(w, tenv)
eenv = ec.escalation_env(w, renv, tenv)
esc, ok4 = ec.start_escalation(w, eenv)
wt.check(ok1 and ok2 and ok3 and ok4, "intake, referral, rating and escalation are up (event clock)")
ESTREAM = ["--stream", eenv["WHISTLE_ESCALATION_STREAM"]]
EREQ = ["--requests", eenv["WHISTLE_ESCALATION_REQUESTS"]]

# Complaints about three compounds of street S0101 that no unit ever accepts,
# then a watermark past October: overdue events (R-E1) and October's close (R-C4).
hc = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"])
frames, rid = {}, 0
for comp, n in (("C0001", 3), ("C0002", 2), ("C0004", 1)):
    for i in range(n):
        rid += 1
        frames[rid] = ic.submit(rid, ticket_no=f"N-{comp}-{i}", received_us=local(2026, 10, 5 + i, 9),
                                request_type="COMPLAINT", hotline_category="1101", compound_code=comp,
                                address="x", content="楼道垃圾", caller_phone=f"1380000{rid:04d}")
r = hc.push(frames)
wt.check(len(r) == rid and all(v.status == ic.ACCEPTED for v in r.values()), f"{rid} tickets ACCEPTED")
rid += 1
r = hc.push({rid: ic.watermark(rid, local(2026, 11, 2))})
wt.check(r.get(rid) is not None and r[rid].status == ic.ACCEPTED, "the watermark past October is ACCEPTED")

ECTL = eenv["WHISTLE_CONTROL"]
wt.check(wt.wait_for(lambda: (wt.status(ECTL, 1.0) or {}).get("clock.out_watermark_us", 0) >= local(2026, 11, 1),
                     60, "escalation's watermark"), "escalation's watermark passes October")


def settled():
    """Escalation's status once its watermark has reached the hotline's last
    one: every notice and redelivery before it is committed with it."""
    wm = local(2026, 11, 2)
    if not wt.wait_for(lambda: (wt.status(ECTL, 1.0) or {}).get("clock.out_watermark_us", 0) >= wm, 30,
                       "escalation's watermark at the last one"):
        return None
    return wt.status(ECTL, 1.0)


st = settled()
wt.check(st is not None, "escalation settled")
cl = ec.NoticeClient(eenv["WHISTLE_ESCALATION_REQUESTS"])
export = cl.export() or []
by_number = {n["number"]: n for n in export}
to_s = sorted(n["number"] for n in export if n["recipient"] == "S0101")
cc_s = sorted(n["number"] for n in export if "S0101" in n["cc"])
to_e = sorted(n["number"] for n in export if n["recipient"] == "E001")
wt.check(len(to_s) >= 3 and any(n["type"] == "DUBAN" for n in export) and to_e,
         f"escalation issued R-E1 notices to S0101 ({len(to_s)}) and R-C4 ones to E001 ({len(to_e)})")

# notices: stopped after 3 lines, then resumed from the position.
out, pos = w.file("s0101.jsonl"), w.file("s0101.pos")
c1, _, err = dept("notices", "--unit", "S0101", *ESTREAM, "--position", pos, "--out", out, "--max", "3")
wt.check(c1 == 0 and len(lines(out)) == 3, f"notices --max 3 wrote 3 lines and exited 0 ({c1} {err[-200:]})")
c2, _, err = dept("notices", "--unit", "S0101", *ESTREAM, "--position", pos, "--out", out, "--until-idle", "1500")
got = lines(out)
seqs = [g["seq"] for g in got]
wt.check(c2 == 0 and seqs == sorted(set(seqs)), f"resumed: every line once, in seq order ({c2}, {len(got)} lines)")
wt.check(all(g["unit"] == "S0101" and g["kind"].startswith("notice.") for g in got),
         "only S0101's notice events; no WATERMARK lines")
issued = sorted(g["number"] for g in got if g["kind"] == "notice.issued")
copies = sorted(g["number"] for g in got if g["kind"] == "notice.copy")
wt.check(issued == to_s, f"notice.issued: each notice addressed to S0101 exactly once ({len(issued)})")
wt.check(copies == cc_s and all(g["copy_to"] == "S0101" for g in got if g["kind"] == "notice.copy"),
         f"notice.copy: each notice S0101 is cc'd on, once ({len(copies)})")
ok = all(g["number"] in by_number and g["type"] == by_number[g["number"]]["type"] and
         g["key"] == by_number[g["number"]]["key"] and g["number"] in g["text"] and g["type_name"] in g["text"]
         for g in got if g["kind"] in ("notice.issued", "notice.copy"))
wt.check(ok, "each line has the notice's number, type and key and the rendered letter naming them")
redel = [g for g in got if g["kind"] == "notice.redelivered"]
wt.check(all(g["number"] in to_s for g in redel) and len(redel) == len({g["number"] for g in redel}),
         f"notice.redelivered: S0101's unsigned notices delivered again once each ({len(redel)})")
first_duban = next(n for n in export if n["type"] == "DUBAN")
line = next(g for g in got if g["kind"] == "notice.issued" and g["number"] == first_duban["number"])
wt.check(line["event_at"] == first_duban["event_at"] and line["rule"] == "R-E1" and line["k"] == 2
         and line["signed"] is None, f"{first_duban['number']}: event time, R-E1, k = 2, unsigned")

# The company's client sees its own notices only.
eo = w.file("e001.jsonl")
c3, _, _ = dept("notices", "--unit", "E001", *ESTREAM, "--out", eo, "--until-idle", "1500")
ge = lines(eo)
wt.check(c3 == 0 and sorted(g["number"] for g in ge if g["kind"] == "notice.issued") == to_e and
         all(g["recipient"] == "E001" or g.get("copy_to") == "E001" for g in ge),
         f"E001's client: its {len(to_e)} notices, nobody else's")

# sign: APPLIED, then DUPLICATE with the first time; not S0101's: REFUSED.
num = first_duban["number"]
at = "2026-11-03T09:00:00+08:00"
code, o, _ = dept("sign", num, "--unit", "S0101", "--at", at, *EREQ)
r1 = json.loads(o) if o.strip() else {}
wt.check(code == 0 and r1.get("status") == "APPLIED" and r1.get("signed_at") == at and r1.get("number") == num,
         f"sign: {o.strip()}")
code, o, _ = dept("sign", num, "--unit", "S0101", "--at", "2026-11-04T09:00:00+08:00", *EREQ)
r2 = json.loads(o) if o.strip() else {}
wt.check(code == 0 and r2.get("status") == "DUPLICATE" and r2.get("signed_at") == at,
         f"the same sign again: DUPLICATE, signed at the first time ({o.strip()})")
code, o, _ = dept("sign", to_e[0], "--unit", "S0101", "--at", at, *EREQ)
r3 = json.loads(o) if o.strip() else {}
wt.check(code == 1 and r3.get("status") == "REFUSED" and r3.get("reason"),
         f"signing another recipient's notice: REFUSED, exit 1 ({o.strip()})")
code, o, _ = dept("sign", "督办〔2026〕999号", "--unit", "S0101", "--at", at, *EREQ)
wt.check(code == 1 and json.loads(o).get("status") == "REFUSED", f"an unknown number: REFUSED ({o.strip()})")
code, _, err = dept("sign", num, *EREQ)
wt.check(code == 2 and "--unit" in err, "sign without --unit is bad usage (exit 2)")

export2 = {n["number"]: n for n in (cl.export() or [])}
wt.check(export2.get(num, {}).get("signed_at") == at and
         all(v["signed_at"] is None for k, v in export2.items() if k != num),
         "the export shows the signature on that notice only")
c4, _, _ = dept("notices", "--unit", "S0101", *ESTREAM, "--position", pos, "--out", out, "--until-idle", "1500")
new = lines(out)[len(got):]
wt.check(c4 == 0 and len(new) == 1 and new[0]["kind"] == "notice.signed" and new[0]["number"] == num and
         new[0]["signed"] == at, f"resumed again: just the confirmation notice.signed ({[g['kind'] for g in new]})")

cl.close()
for d in (esc, rat, ref, intake):
    d.stop()
wt.done()
