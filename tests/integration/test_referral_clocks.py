"""R-R4 exactly once: every step gets at most one ACCEPT_OVERDUE and one
RESOLVE_OVERDUE, exactly when its clock passed without the action (an action
stamped within the deadline second is on time), also when referral is
kill -9ed around the deadlines, when Postgres restarts, and when the same
update is sent twice
(answered DUPLICATE). R-R2/R-R3 abuse of the state machine: resolve before
accept, the wrong unit, an unknown step or ticket, a double resolve, an
update of a closed ticket, malformed frames: each gets its reason and
changes nothing. R-R2/R-R6/R-I7 through intake's callbacks: SATISFIED closes
a resolved ticket, UNSATISFIED reopens its step and issues a redo to the
same unit with a 3-working-day resolve clock; resolved tickets without a
callback close 3 working days later. All through the real sockets, in event
time (R-T3)."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402

M = int(os.environ.get("WHISTLE_TEST_STEPS", "400"))
S = 1000000
H = 3600 * S
T0 = 1790000000 * S
SU, Reply = rc.SU, rc.Reply

wt.pgdev("start")
wt.pgdev("reset", "intake", "referral", "r_sink")
w = wt.Workdir("ref-clocks")
ienv = ic.intake_env(w, WHISTLE_CLOCK="event")
intake, ok = ic.start_intake(w, ienv)
wt.check(ok, "intake is up")
renv = rc.referral_env(w, ienv)
ref, ok = rc.start_referral(w, renv)
wt.check(ok, "referral is up")
sink = wt.Daemon("sinkd", {"WHISTLE_CURVE": "0", "WHISTLE_PG": "user=r_sink",
                           "WHISTLE_SCHEMA": "r_sink", "WHISTLE_SINK_SOURCE": renv["WHISTLE_REFERRAL_STREAM"],
                           "WHISTLE_SINK_NAME": "rating", "WHISTLE_SINK_PRODUCER": "referral",
                           "WHISTLE_SINK_WINDOW": "2000", "WHISTLE_CONTROL": w.ep("sctl")},
                 w.file("sinkd.log")).start()
hc = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"])
rid = [0]


def hotline(frame_fn, *a):
    rid[0] += 1
    r = hc.ask(frame_fn(rid[0], *a), rid[0])
    return r is not None and r.status in (ic.ACCEPTED, ic.DUPLICATE)


# M tickets to single-step categories (hotline codes), compounds of the sample city.
codes = ["1101", "1102", "1103", "1105", "1202", "1301", "1401", "1501"]
comps = [r["code"] for r in ic.registry_rows("compounds.csv")]
frames = {i + 1: ic.submit(i + 1, ticket_no=f"K-{i:05d}", received_us=T0 + i * S,
                           request_type="COMPLAINT", hotline_category=codes[i % len(codes)],
                           compound_code=comps[i % len(comps)], address="x", content="来电")
          for i in range(M)}
replies = hc.push(frames)
wt.check(len(replies) == M and all(r.status == ic.ACCEPTED for r in replies.values()),
         f"{M} tickets ACCEPTED")
SINK = "SELECT count(*) FROM r_sink.sink WHERE kind = '{}'"
wt.check(wt.wait_for(lambda: wt.scalar(SINK.format("step.issued")) == str(M), 60, "steps"),
         f"{M} steps issued and recorded by a full-access reader")
steps = {}
for (payload,) in wt.sql("SELECT encode(payload, 'hex') FROM r_sink.sink WHERE kind = 'step.issued'"):
    p = rc.payload("step.issued", bytes.fromhex(payload))
    steps[p.ticket_no] = p

cli = rc.UnitClient(renv["WHISTLE_REFERRAL_UNITS"])
n = [0]


def upd(p, action, at, unit=None, **kw):
    n[0] += 1
    return cli.ask(rc.update(n[0], p.ticket_no, p.step, action, at, unit or p.unit, **kw))


# Per ticket i: 0 accept and resolve on time (both sent twice), 1 accept
# exactly in the deadline second, 2 accept one second late, 3 nothing.
expect = {}
dups = bad = 0
for no, p in sorted(steps.items()):
    i = int(no[2:]) % 4
    if i == 0:
        for _ in range(2):
            a, r = upd(p, SU.ACCEPT, p.issued_us + 60 * S), None
            r = upd(p, SU.RESOLVE, p.issued_us + 2 * H, note="已处理")
        dups += a.status == Reply.DUPLICATE and r.status == Reply.DUPLICATE
        bad += a.status != Reply.DUPLICATE
    elif i == 1:
        a = upd(p, SU.ACCEPT, p.accept_by_us + 999999)
        bad += a.status != Reply.APPLIED or a.late
    elif i == 2:
        a = upd(p, SU.ACCEPT, p.accept_by_us + S)
        bad += a.status != Reply.APPLIED or not a.late
    expect[(no, 1, "ACCEPT_OVERDUE")] = 1 if i in (2, 3) else 0
    expect[(no, 1, "RESOLVE_OVERDUE")] = 0 if i == 0 else 1
wt.check(bad == 0, "updates applied; on the deadline second not late, one second after late")
wt.check(dups == (M + 3) // 4, f"the same accept and resolve sent twice are answered DUPLICATE ({dups})")

# Callbacks through intake on two resolved tickets (R-R2, R-R6).
happy, redo = steps["K-00000"], steps["K-00004"]
wt.check(hotline(ic.feedback, happy.ticket_no, happy.issued_us + 3 * H, "SATISFIED") and
         hotline(ic.feedback, redo.ticket_no, redo.issued_us + 3 * H, "UNSATISFIED"),
         "a SATISFIED and an UNSATISFIED callback ACCEPTED by intake")
wt.check(wt.wait_for(lambda: wt.scalar(SINK.format("step.issued")) == str(M + 1), 30, "redo"),
         "the UNSATISFIED callback issued one redo step")
row = wt.sql("SELECT encode(payload, 'hex') FROM r_sink.sink WHERE kind = 'step.issued' ORDER BY seq DESC LIMIT 1")
r2 = rc.payload("step.issued", bytes.fromhex(row[0][0]))
wt.check(r2.ticket_no == redo.ticket_no and r2.step == 2 and r2.unit == redo.unit and r2.reason == "REDO"
         and r2.replaces_step == 1 and r2.accept_by_us - r2.issued_us == redo.accept_by_us - redo.issued_us,
         f"R-R6: the redo is step 2 to the same unit ({r2.unit}) with the category's accept clock")
wt.check(wt.scalar(f"SELECT steps->0->>'state' FROM referral.tickets WHERE ticket_no = '{redo.ticket_no}'")
         == "REOPENED", "R-R6: the resolved step is REOPENED")
wt.check(wt.scalar(f"SELECT state FROM referral.tickets WHERE ticket_no = '{happy.ticket_no}'") == "CLOSED",
         "R-R2: SATISFIED closes the resolved ticket at once")
expect[(redo.ticket_no, 2, "ACCEPT_OVERDUE")] = 1
expect[(redo.ticket_no, 2, "RESOLVE_OVERDUE")] = 1

# Move event time across the deadlines, killing referral around them.
accept_bys = sorted(p.accept_by_us for p in steps.values())
marks = [accept_bys[0] - H, accept_bys[len(accept_bys) // 2] + S, accept_bys[-1] + S,
         T0 + 20 * 24 * H, T0 + 40 * 24 * H]
for k, mark in enumerate(marks):
    rid[0] += 1
    got_ = hc.push({rid[0]: ic.watermark(rid[0], mark)}, timeout=120)
    wt.check(rid[0] in got_ and got_[rid[0]].status == ic.ACCEPTED, f"watermark {k + 1} ACCEPTED by intake")
    if k == 2:
        wt.pgdev("restart")  # every daemon loses its connections around the deadlines (raises on failure)
        wt.log("Postgres restarted around the accept deadlines")
    if k in (1, 3):
        time.sleep(0.05 * k)
        ref.kill9()
        ref, ok = rc.start_referral(w, renv, log=f"referral-{k}.log")
        wt.check(ok, f"referral restarted after kill -9 around watermark {k + 1}")
wt.check(wt.wait_for(lambda: int((wt.status(renv["WHISTLE_CONTROL"], 1.0) or {}).get(
    "clock.out_watermark_us", 0)) >= marks[-1], 60, "clock"), "referral's clocks reached the last watermark")
wt.check(wt.wait_for(lambda: wt.scalar("SELECT max(event_us) FROM r_sink.sink WHERE kind = 'WATERMARK'")
                     == str(marks[-1]), 60, "sink"), "the reader has everything up to the referral watermark")

got = {}
for kind, payload in wt.sql("SELECT kind, encode(payload, 'hex') FROM r_sink.sink WHERE kind LIKE '%_OVERDUE'"):
    c = rc.payload(kind, bytes.fromhex(payload))
    k = (c.ticket_no, c.step, kind)
    got[k] = got.get(k, 0) + 1
    if c.key != f"R-E1|{c.ticket_no}|{c.step}|{c.clock}":
        got[("bad key", 0, c.key)] = 1
wrong = [(k, v, got.get(k, 0)) for k, v in expect.items() if got.get(k, 0) != v]
wrong += [(k, 0, v) for k, v in got.items() if k not in expect]
wt.check(not wrong, f"exactly one overdue per step and clock where the clock passed without the action,"
                    f" none elsewhere ({len(wrong)} wrong, e.g. {wrong[:3]})")
warn = wt.scalar("SELECT count(*) FROM r_sink.sink WHERE kind = 'step.warning'")
warn_keys = wt.scalar("SELECT count(DISTINCT payload) FROM r_sink.sink WHERE kind = 'step.warning'")
wt.check(warn == warn_keys and int(warn) > 0, f"each warning once ({warn} warnings)")
late = [r for r in wt.sql("SELECT seq FROM r_sink.sink s WHERE kind LIKE '%_OVERDUE' AND event_us >"
                          " (SELECT min(event_us) FROM r_sink.sink w WHERE w.kind = 'WATERMARK' AND w.seq > s.seq)")]
wt.check(not late, "no event comes after a watermark that promised nothing earlier")
closed = int(wt.scalar("SELECT count(*) FROM r_sink.sink WHERE kind = 'ticket.closed'"))
wt.check(closed == (M + 3) // 4 - 1, f"the other resolved tickets closed 3 working days later without callback ({closed})")
nocb = wt.scalar("SELECT count(*) FROM referral.tickets WHERE state = 'CLOSED' AND closed_us = close_by_us")
wt.check(int(nocb) == closed - 1, f"closing without callback happens at the deadline, in event time ({nocb})")

# ---- abuse: each refused with its reason, nothing changes ----
fresh = sorted(no for no in steps if int(no[2:]) % 4 == 3)[0]
done = sorted(no for no in steps if int(no[2:]) % 4 == 0)[0]
p, q = steps[fresh], steps[done]
before = wt.sql("SELECT ticket_no, state, steps::text FROM referral.tickets ORDER BY 1")
head = wt.scalar("SELECT last_seq FROM referral.stream_head")
cases = [
    ("resolve before accept", upd(p, SU.RESOLVE, p.issued_us + H), Reply.WRONG_STATE),
    ("the wrong unit", upd(p, SU.ACCEPT, p.issued_us + H, unit="MZ"), Reply.WRONG_UNIT),
    ("an unknown step", cli.ask(rc.update(9001, p.ticket_no, 7, SU.ACCEPT, p.issued_us + H, p.unit)),
     Reply.UNKNOWN_STEP),
    ("an unknown ticket", cli.ask(rc.update(9002, "NO-SUCH", 1, SU.ACCEPT, T0, "GA")), Reply.UNKNOWN_STEP),
    ("a double resolve", upd(q, SU.RESOLVE, q.issued_us + 3 * H), Reply.WRONG_STATE),
    ("progress on a closed ticket", upd(q, SU.PROGRESS, q.issued_us + 3 * H, note="再看看"), Reply.WRONG_STATE),
    ("a step stamped before its issue", upd(p, SU.ACCEPT, p.issued_us - S), Reply.BAD_REQUEST),
    ("a return without reason", upd(p, SU.RETURN, p.issued_us + H), Reply.BAD_REQUEST),
    ("a prohibition without violation", upd(p, SU.RESOLVE, p.issued_us + H, prohibition="P2"),
     Reply.BAD_REQUEST),
    ("re-dispatch of a step that is not returned",
     cli.ask(rc.redispatch(9003, p.ticket_no, 1, "GA", p.issued_us + H)), Reply.WRONG_STATE),
]
for what, r, code in cases:
    wt.check(r is not None and r.status == Reply.REFUSED and r.code == code and r.reason,
             f"{what}: REFUSED {Reply.Code.Name(code)} ({r and r.reason})")
cli.s.send(b"\xff\x00garbage")
cli.s.send(b"")
r = cli.ask(rc.update(9004, p.ticket_no, 1, 0, p.issued_us + H, p.unit))
wt.check(r is not None and r.code == Reply.BAD_REQUEST, f"an unknown action: BAD_REQUEST ({r and r.reason})")
wt.check(ref.alive(), "malformed frames do not crash referral (it answered the request after them)")
after = wt.sql("SELECT ticket_no, state, steps::text FROM referral.tickets ORDER BY 1")
wt.check(before == after and head == wt.scalar("SELECT last_seq FROM referral.stream_head"),
         "no refused request changed a ticket or published an event")
r = upd(p, SU.ACCEPT, p.accept_by_us + 2 * H)
wt.check(r.status == Reply.APPLIED and r.late, "a late accept is accepted and recorded as late")

cli.close()
rc.finish(w, sink, ref, intake)
