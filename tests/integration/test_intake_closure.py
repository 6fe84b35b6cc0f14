"""Referral's closures reach intake (intake reads referral's stream for
ticket.closed): R-I5, a ticket whose referral is closed (销号) is no longer a
repeat target, while an open one is; R-I6, the caller's phone and name are
erased once the retention period after closing has passed, and kept for a
ticket still open, and so is the original of a content with a number typed
in (R-I6a), the masked content staying. Real daemons, real sockets, event
time."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402

S = 1000000
H = 3600 * S
DAY = 24 * H
T0 = 1790000000 * S
PHONE = "13912345678"

wt.pgdev("start")
wt.pgdev("reset", "intake", "referral")
w = wt.Workdir("closure")
ienv = ic.intake_env(w, WHISTLE_CLOCK="event", WHISTLE_RETENTION_DAYS="1",
                     WHISTLE_PURGE_INTERVAL_S="1", WHISTLE_REFERRAL_STREAM_AT=w.ep("rstream"))
intake, ok = ic.start_intake(w, ienv)
wt.check(ok, "intake is up, reading referral's stream for closures")
renv = rc.referral_env(w, ienv)
ref, ok = rc.start_referral(w, renv)
wt.check(ok, "referral is up")
hc = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"])
rid = [0]


CONTENT = "楼道堆满杂物，请回电13811112222"   # R-I6a: a number typed in


def ticket(no, at):
    rid[0] += 1
    return hc.ask(ic.submit(rid[0], ticket_no=no, received_us=at, request_type="COMPLAINT",
                            hotline_category="1101", compound_code="C0001", caller_phone=PHONE,
                            caller_name="张三", address="幸福里3栋", content=CONTENT), rid[0])


def hotline(frame_fn, *a):
    rid[0] += 1
    r = hc.ask(frame_fn(rid[0], *a), rid[0])
    return r is not None and r.status == ic.ACCEPTED


a = ticket("CL-A", T0)
b = ticket("CL-B", T0 + H)
wt.check(a.disposition == "DISPATCHED" and b.disposition == "REPEAT",
         f"R-I5: a second call about the same matter while the first is open is a REPEAT ({b.disposition})")
wt.check(wt.wait_for(lambda: wt.scalar("SELECT count(*) FROM referral.tickets WHERE ticket_no = 'CL-A'"
                                       " AND jsonb_array_length(steps) = 1") == "1", 30, "step"),
         "referral issued CL-A's step")
unit = wt.scalar("SELECT steps->0->>'unit' FROM referral.tickets WHERE ticket_no = 'CL-A'")
cli = rc.UnitClient(renv["WHISTLE_REFERRAL_UNITS"])
r1 = cli.ask(rc.update(1, "CL-A", 1, rc.SU.ACCEPT, T0 + 2 * H, unit))
r2 = cli.ask(rc.update(2, "CL-A", 1, rc.SU.RESOLVE, T0 + 3 * H, unit, note="已清理"))
wt.check(r1.status == r2.status == rc.Reply.APPLIED and r2.ticket_state == "RESOLVED",
         f"{unit} accepts and resolves CL-A's step")
wt.check(hotline(ic.feedback, "CL-A", T0 + 4 * H, "SATISFIED"), "a SATISFIED callback for CL-A")
wt.check(wt.wait_for(lambda: wt.scalar("SELECT closed_us FROM intake.tickets WHERE ticket_no = 'CL-A'")
                     == str(T0 + 4 * H), 30, "closure"),
         "referral closes CL-A and intake records when (closed_us from ticket.closed)")
late = ticket("CL-L", T0 + 3 * H + 30 * 60 * S)
wt.check(late.disposition == "REPEAT",
         f"R-I5: a call received before the closure, delivered after it, is still a REPEAT: closure is"
         f" decided in event time ({late.disposition})")
c = ticket("CL-C", T0 + 5 * H)
wt.check(c.disposition == "DISPATCHED",
         f"R-I5: after the earlier referral is closed, the same call is not a repeat ({c.disposition})")

# R-I6: a day after closing (WHISTLE_RETENTION_DAYS=1), CL-A's caller is erased.
wt.check(hotline(ic.watermark, T0 + 3 * DAY), "a watermark three days on")
ERASED = ("SELECT count(*) FROM intake.callers c JOIN intake.tickets t ON t.id = c.ticket_id"
          " WHERE t.ticket_no = '{}' AND c.phone IS NULL AND c.name IS NULL AND c.erased_us IS NOT NULL")
wt.check(wt.wait_for(lambda: wt.scalar(ERASED.format("CL-A")) == "1", 30, "purge"),
         "R-I6: the phone and name of a ticket closed over a retention period ago are erased")
wt.check(wt.scalar(ERASED.format("CL-C")) == "0" and wt.scalar(
    "SELECT c.phone FROM intake.callers c JOIN intake.tickets t ON t.id = c.ticket_id"
    " WHERE t.ticket_no = 'CL-C'") == PHONE, "R-I6: an open ticket's caller is kept")
wt.check(wt.scalar("SELECT pseudonym <> '' FROM intake.tickets WHERE ticket_no = 'CL-A'") == "t",
         "R-I6: the pseudonym stays")
ORIGINAL = ("SELECT coalesce(c.content_original, 'NULL') FROM intake.callers c JOIN intake.tickets t"
            " ON t.id = c.ticket_id WHERE t.ticket_no = '{}'")
wt.check(wt.scalar(ORIGINAL.format("CL-A")) == "NULL" and wt.scalar(ORIGINAL.format("CL-C")) == CONTENT,
         "R-I6a: the original content is erased with them, and kept for the open ticket")
wt.check(wt.scalar("SELECT content FROM intake.tickets WHERE ticket_no = 'CL-A'")
         == "楼道堆满杂物，请回电138****2222", "R-I6a: the masked content stays")
cli.close()
rc.finish(w, intake, ref)
