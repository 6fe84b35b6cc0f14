"""The ops queries with the real daemons (event clock): referral's TICKETS,
RETURNED and TICKET (proto/unit.proto Query) and intake's TRIAGE
(proto/hotline.proto Query). Tickets in every state: in triage (R-I3,
R-I4), recorded (R-I2), a repeat (R-I5), open with a returned step (R-R3),
open and exempted (核减, R-C1) with its accept clock overdue (R-R4),
resolved after a late accept (R-R4: the overdue stands), closed by a
callback (R-R2). Checked: the exact lines (export shape, keys sorted, UTF-8,
nulls), paging (offset, limit, total), an unknown ticket refused, and with
CURVE on, a unit's key refused FORBIDDEN while the ops key is answered."""
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402

H = 3600 * 1000000
T0 = 1791766800000000  # 2026-10-12T09:00:00+08:00, a Monday
TZ = datetime.timezone(datetime.timedelta(hours=8))
ACCEPT, RETURN, RESOLVE = rc.SU.ACCEPT, rc.SU.RETURN, rc.SU.RESOLVE


def at(us):
    return datetime.datetime.fromtimestamp(us // 1000000, TZ).isoformat()


def line(obj):
    """The export writing (docs/exports.md)."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


wt.pgdev("start")
wt.pgdev("reset", "intake", "referral")
w = wt.Workdir("ref-queries")
ienv = ic.intake_env(w, WHISTLE_CLOCK="event")
intake, ok = ic.start_intake(w, ienv)
wt.check(ok, "intake is up")
renv = rc.referral_env(w, ienv)
ref, ok = rc.start_referral(w, renv)
wt.check(ok, "referral is up")
hc = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"])
uc = rc.UnitClient(renv["WHISTLE_REFERRAL_UNITS"])

# ---- the tickets -----------------------------------------------------------------
PHONE = "13800001234"


def ticket(no, received_us, **kw):
    f = dict(ticket_no=no, received_us=received_us, request_type="COMPLAINT",
             hotline_category="1101", caller_phone="", caller_name="张三", compound_code="C0001",
             address="幸福里小区3栋", content="楼道堆满杂物无人清理")
    f.update(kw)
    return f


tickets = [
    ticket("Q-01", T0, compound_code="", address="无名路88号 电话13912345678"),  # triage: compound
    ticket("Q-02", T0, request_type="CONSULT"),                                  # recorded
    ticket("Q-03", T0, caller_phone=PHONE, compound_code="C0003"),              # open, overdue
    ticket("Q-04", T0 + H, caller_phone=PHONE, compound_code="C0003"),          # repeat of Q-03
    ticket("Q-05", T0, compound_code="C0002"),                                   # returned step
    ticket("Q-06", T0),                                                          # resolved late
    ticket("Q-07", T0),                                                          # closed
    ticket("Q-08", T0),                                                          # exempted
    ticket("Q-09", T0, hotline_category="", compound_code="", address="某处",    # triage: both
           content="你好"),
]
frames = {i + 1: ic.submit(i + 1, **t) for i, t in enumerate(tickets)}
frames[20] = ic.exempt(20, "Q-08", T0 + H, "重复受理，核减")
frames[21] = ic.watermark(21, T0 + H)
replies = {}
for rid in sorted(frames):  # one at a time: intake applies them in this order
    replies[rid] = hc.ask(frames[rid], rid)
wt.check(all(r is not None and r.status == ic.ACCEPTED for r in replies.values()),
         "tickets, an exemption and a watermark ACCEPTED")
wt.check([replies[i].disposition for i in range(1, 10)] ==
         ["TRIAGE", "RECORDED", "DISPATCHED", "REPEAT", "DISPATCHED", "DISPATCHED", "DISPATCHED",
          "DISPATCHED", "TRIAGE"], "intake's dispositions (R-I2..R-I5)")
wt.check(rc.wait_clock(renv, T0 + H), "referral applied intake's stream up to its watermark")

# ---- the units act -------------------------------------------------------------------
ups = [("Q-05", ACCEPT, T0 + H, {}), ("Q-05", RETURN, T0 + 2 * H, {"reason": "不属于本街道辖区"}),
       ("Q-06", ACCEPT, T0 + 30 * H, {}), ("Q-06", RESOLVE, T0 + 31 * H, {"violation_confirmed": False}),
       ("Q-07", ACCEPT, T0 + H, {}), ("Q-07", RESOLVE, T0 + 2 * H, {"violation_confirmed": False})]
res = [uc.ask(rc.update(100 + i, no, 1, a, t, unit="S0101", **kw)) for i, (no, a, t, kw) in enumerate(ups)]
wt.check(all(r is not None and r.status == rc.Reply.APPLIED for r in res), "the units' updates APPLIED")
wt.check(res[2].late and not res[0].late, "Q-06's accept 6 hours after accept-by is late (R-R4)")
r = hc.ask(ic.feedback(30, "Q-07", T0 + 3 * H, "SATISFIED"), 30)
wt.check(r is not None and r.status == ic.ACCEPTED, "Q-07's callback ACCEPTED")
r = hc.ask(ic.watermark(31, T0 + 48 * H), 31)
wt.check(r is not None and r.status == ic.ACCEPTED, "a watermark 48 hours on")
wt.check(rc.wait_clock(renv, T0 + 48 * H, T0 + 48 * H),
         "referral's clocks moved to the watermark (accept clocks of Q-03 and Q-08 passed)")

# ---- TICKETS -----------------------------------------------------------------------------
B = T0 + 24 * H  # accept-by of the steps issued at T0 (24 hours)


def step(unit="S0101", state="ISSUED", accepted=None, resolved=None, a_over=False, r_over=False):
    return {"step": 1, "unit": unit, "state": state, "accepted_at": accepted and at(accepted),
            "resolved_at": resolved and at(resolved), "accept_overdue": a_over,
            "resolve_overdue": r_over}


def t(no, state, steps=(), compound="C0001", category="PS_SANITATION", repeat_of=None, exempt=False):
    return {"ticket_no": no, "category": category, "compound": compound, "repeat_of": repeat_of,
            "exempt": exempt, "state": state, "steps": list(steps)}


expect = [line(x) for x in [
    t("Q-01", "TRIAGE", compound=None),
    t("Q-02", "RECORDED"),
    t("Q-03", "OPEN", [step(a_over=True)], compound="C0003"),           # R-R4: overdue published
    t("Q-04", "REPEAT", compound="C0003", repeat_of="Q-03"),            # R-I5
    t("Q-05", "OPEN", [step(state="RETURNED", accepted=T0 + H)], compound="C0002"),  # R-R3
    t("Q-06", "RESOLVED", [step(state="RESOLVED", accepted=T0 + 30 * H, resolved=T0 + 31 * H,
                                a_over=True)]),                         # R-R4: late accept
    t("Q-07", "CLOSED", [step(state="RESOLVED", accepted=T0 + H, resolved=T0 + 2 * H)]),  # R-R2
    t("Q-08", "OPEN", [step(a_over=True)], exempt=True),                # 核减
    t("Q-09", "TRIAGE", compound=None, category="OTHER"),
]]
lines, reps = rc.query_all(uc, "TICKETS", 200)
wt.check(len(reps) == 1 and reps[0].status == rc.Reply.APPLIED and reps[0].total == 9,
         "TICKETS answered APPLIED in one page, total 9")
wt.check(list(lines) == expect, "TICKETS: every ticket in the export shape, sorted by ticket_no")
if list(lines) != expect:
    for a, b in zip(lines, expect):
        if a != b:
            wt.log("got     ", a)
            wt.log("expected", b)
paged, reps = rc.query_all(uc, "TICKETS", 300, page=2)
wt.check(paged == lines and len(reps) == 5 and all(r.total == 9 for r in reps),
         "TICKETS paged by 2: the same lines in 5 pages, each with total 9")
r = uc.ask(rc.query(310, "TICKETS", offset=8, limit=5))
wt.check(list(r.lines) == expect[8:] and r.total == 9, "offset 8 limit 5: the last line")
r = uc.ask(rc.query(311, "TICKETS", offset=50))
wt.check(r.status == rc.Reply.APPLIED and list(r.lines) == [] and r.total == 9,
         "an offset past the end: no lines, total 9")

# ---- RETURNED ----------------------------------------------------------------------------
r = uc.ask(rc.query(320, "RETURNED"))
want = [line({"ticket_no": "Q-05", "step": 1, "unit": "S0101", "returned_at": at(T0 + 2 * H),
              "reason": "不属于本街道辖区", "category": "PS_SANITATION", "compound": "C0002",
              "street": "S0101", "returns": 1})]
wt.check(r.status == rc.Reply.APPLIED and list(r.lines) == want and r.total == 1,
         f"RETURNED: Q-05's returned step waits for re-dispatch (R-R3) {list(r.lines)}")

# ---- TICKET ---------------------------------------------------------------------------------
r = uc.ask(rc.query(330, "TICKET", ticket_no="Q-06"))
one = dict(json.loads(expect[5]), received_at=at(T0), resolved_at=at(T0 + 31 * H), closed_at=None,
           close_by="2026-10-16T23:59:59+08:00")  # R-R2: 3 working days after Tuesday's resolve
one["steps"][0].update(issued_at=at(T0), accept_by=at(B), resolve_by="2026-10-19T23:59:59+08:00",
                       returned_at=None, reopened_at=None, reason="ROUTE", violation=False,
                       prohibition=None)  # R-T5: 5 working days after Monday
wt.check(r.status == rc.Reply.APPLIED and list(r.lines) == [line(one)] and r.total == 1,
         f"TICKET Q-06: the export shape with times and step details {list(r.lines)}")
r = uc.ask(rc.query(331, "TICKET", ticket_no="Q-99"))
wt.check(r.status == rc.Reply.REFUSED and r.code == rc.Reply.UNKNOWN_STEP, "TICKET of an unknown ticket: UNKNOWN_STEP")
r = uc.ask(rc.query(332, "TICKET"))
wt.check(r.status == rc.Reply.REFUSED and r.code == rc.Reply.BAD_REQUEST, "TICKET without ticket_no: BAD_REQUEST")
r = uc.ask(rc.query(333, "UNKNOWN"))
wt.check(r.status == rc.Reply.REFUSED and r.code == rc.Reply.BAD_REQUEST, "what UNKNOWN: BAD_REQUEST")

# ---- intake: TRIAGE ---------------------------------------------------------------------------
r = hc.ask(ic.query_triage(40), 40)
tri = [line({"ticket_no": "Q-01", "received_at": at(T0), "reason": "no compound name in address",
             "needs": ["compound"], "category": "PS_SANITATION", "compound": None,
             "address": "无名路88号 电话139****5678"}),  # R-I6a: masked
       line({"ticket_no": "Q-09", "received_at": at(T0), "reason": "no compound name in address",
             "needs": ["category", "compound"], "category": "OTHER", "compound": None,
             "address": "某处"})]
wt.check(r is not None and r.status == ic.ACCEPTED and list(r.lines) == tri and r.total == 2,
         f"TRIAGE: the two tickets waiting in manual triage (R-I3, R-I4) {list(r.lines) if r else r}")
r = hc.ask(ic.query_triage(41, offset=1, limit=1), 41)
wt.check(list(r.lines) == tri[1:] and r.total == 2, "TRIAGE offset 1 limit 1: the second, total 2")
r = hc.ask(ic.triage(42, "Q-01", T0 + 49 * H, compound_code="C0001"), 42)
wt.check(r.status == ic.ACCEPTED, "Q-01 completed by an operator")
r = hc.ask(ic.query_triage(43), 43)
wt.check(list(r.lines) == tri[1:] and r.total == 1, "TRIAGE after the triage: only Q-09 waits")

# ---- CURVE: only the ops identities may ask (WHISTLE_REFERRAL_OPS) ------------------------------
uc.close()
hc.close()
wt.check(ref.stop() == 0 and intake.stop() == 0, "both stop cleanly before CURVE is turned on")
keys = rc.Keys(w)
keys.make("server")
keys.make("referral", allowed_by=["intake"])
keys.make("ops", allowed_by=["referral"])
keys.make("S0101", allowed_by=["referral"])
sec = {"WHISTLE_CURVE": "1", "WHISTLE_CURVE_SECRET_KEY": w.file("server.key")}
ienv2 = dict(ienv, WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-intake"),
             WHISTLE_PSEUDONYM_KEY=w.file("server.key"), **sec)
intake2 = wt.Daemon(ic.INTAKE, ienv2, w.file("intake2.log")).start()
wt.check(wt.wait_ready(ienv2["WHISTLE_CONTROL"], curve=keys.client("server", "referral")) is not None,
         "intake is up with CURVE")
renv2 = dict(renv, WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-referral"),
             WHISTLE_CURVE_CLIENT_KEY=w.file("referral.key"),
             WHISTLE_INTAKE_SERVER_KEY=w.file("server.pub"), WHISTLE_REFERRAL_ACT_AS="ops", **sec)
ref2, ok = rc.start_referral(w, renv2, log="referral2.log", curve=keys.client("server", "ops"))
wt.check(ok, "referral is up with CURVE")
ops = rc.UnitClient(renv2["WHISTLE_REFERRAL_UNITS"], curve=keys.client("server", "ops"))
unit = rc.UnitClient(renv2["WHISTLE_REFERRAL_UNITS"], curve=keys.client("server", "S0101"))
r = unit.ask(rc.query(400, "TICKETS"))
wt.check(r is not None and r.status == rc.Reply.REFUSED and r.code == rc.Reply.FORBIDDEN and not r.lines,
         "a unit's key asking TICKETS: FORBIDDEN, no lines (R-R5)")
r = unit.ask(rc.query(401, "TICKET", ticket_no="Q-05"))
wt.check(r.status == rc.Reply.REFUSED and r.code == rc.Reply.FORBIDDEN, "a unit's key asking TICKET: FORBIDDEN")
r = ops.ask(rc.query(402, "TICKETS"))
wt.check(r is not None and r.status == rc.Reply.APPLIED and r.total == 9 and list(r.lines[1:]) == expect[1:],
         "the ops key (WHISTLE_REFERRAL_OPS, default ops) is answered the same lines")

# A scenario replay with CURVE on: an identity of WHISTLE_REFERRAL_ACT_AS sends a unit's
# update as the unit StepUpdate.unit names; any other key naming another unit is FORBIDDEN.
issued = [(json.loads(x)["ticket_no"], s) for x in r.lines for s in json.loads(x)["steps"]
          if s["state"] == "ISSUED"]
wt.check(issued, f"a step still ISSUED to act on ({len(issued)})")
if issued:
    no, st = issued[0]
    one = json.loads(ops.ask(rc.query(403, "TICKET", ticket_no=no)).lines[0])
    at = next(s for s in one["steps"] if s["step"] == st["step"])["issued_at"]
    at_us = int(datetime.datetime.fromisoformat(at).timestamp()) * 1000000 + 60 * 1000000
    other = "S0102" if st["unit"] != "S0102" else "S0103"
    r = unit.ask(rc.update(404, no, st["step"], rc.SU.ACCEPT, at_us, other if st["unit"] == "S0101" else st["unit"]))
    wt.check(r is not None and r.status == rc.Reply.REFUSED and r.code == rc.Reply.FORBIDDEN,
             "R-R5: S0101's key naming another unit is FORBIDDEN")
    r = ops.ask(rc.update(405, no, st["step"], rc.SU.ACCEPT, at_us, other))
    wt.check(r is not None and r.status == rc.Reply.REFUSED and r.code == rc.Reply.WRONG_UNIT,
             f"the act-as key naming a unit the step is not for: WRONG_UNIT ({r and r.reason})")
    r = ops.ask(rc.update(406, no, st["step"], rc.SU.ACCEPT, at_us, st["unit"]))
    wt.check(r is not None and r.status == rc.Reply.APPLIED and r.step_state == "ACCEPTED",
             f"the act-as key (WHISTLE_REFERRAL_ACT_AS) accepts {no}#{st['step']} as {st['unit']}"
             f" ({r and rc.Reply.Status.Name(r.status)} {r and r.reason})")
ops.close()
unit.close()
rc.finish(w, ref2, intake2, ref, intake)
