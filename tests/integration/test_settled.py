"""The settled signal of proto/control.proto, the contract replay tools follow
(docs/formats.md): every daemon's status reply carries the stream it
publishes (head, watermark) and the streams it reads (position, watermark,
whether it drives the clock). With the four daemons in event clock mode:

  - the reply shows each daemon's output and inputs by producer name, with
    `clock` set exactly where a watermark drives the daemon's clock;
  - after a load of tickets and one watermark past October (R-T3: the
    watermark moves event time), the first pass that finds the system settled
    already sees every effect: referral has issued a step for every
    dispatched ticket and published an ACCEPT_OVERDUE for every step past its
    accept clock and a RESOLVE_OVERDUE past its resolve clock (R-R4), rating has closed October (its rankings answer, not
    pending; R-C1), and escalation has numbered a notice for every overdue
    event (R-E1, R-E3). Nothing is waited for beyond the signal."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
import rating_client as rtc  # noqa: E402
import escalation_client as ec  # noqa: E402
from rating_feed import local  # noqa: E402

wt.pgdev("start")
wt.pgdev("reset", "intake", "referral", "rating", "escalation")
w = wt.Workdir("settled")

ienv = ic.intake_env(w, WHISTLE_CLOCK="event")
i, ok1 = ic.start_intake(w, ienv)
renv = rc.referral_env(w, ienv, WHISTLE_STREAM_FULL_ACCESS="rating,escalation,intake,ops")
r, ok2 = rc.start_referral(w, renv)
tenv = rtc.rating_env(w, ienv, renv)
t, ok3 = rtc.start_rating(w, tenv)
eenv = ec.escalation_env(w, renv, tenv)
e, ok4 = ec.start_escalation(w, eenv)
wt.check(ok1 and ok2 and ok3 and ok4, "intake, referral, rating and escalation are up (event clock)")
CTL = [ienv["WHISTLE_CONTROL"], renv["WHISTLE_CONTROL"], tenv["WHISTLE_CONTROL"],
       eenv["WHISTLE_CONTROL"]]

shape = {}
for name, ep in zip(("intake", "referral", "rating", "escalation"), CTL):
    rep = wt.status_reply(ep)
    shape[name] = (rep.output.stream if rep.HasField("output") else None,
                   sorted((x.input, x.clock) for x in rep.inputs))
wt.check(shape == {"intake": ("intake", []),
                   "referral": ("referral", [("intake", True)]),
                   "rating": ("rating", [("intake", True), ("referral", True)]),
                   "escalation": ("escalation", [("rating", True), ("referral", True)])},
         f"each reply names its output and its inputs, clock inputs marked ({shape})")

# Tickets through October, most of them on the street's sanitation routing
# (accept within 24 hours: nobody accepts, so each goes overdue).
hc = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"])
mk = ic.TicketMaker(7)
frames = {}
for n in range(1, 401):
    at = local(2026, 10, 1 + (n % 30), 9, n % 60)
    frames[n] = ic.submit(n, **mk.ticket(f"ST-{n:05d}", at))
replies = hc.push(frames)
dispatched = {f"ST-{n:05d}" for n, x in replies.items() if x.disposition == "DISPATCHED"}
wt.check(len(replies) == 400 and all(x.status == ic.ACCEPTED for x in replies.values())
         and len(dispatched) > 100, f"400 tickets ACCEPTED ({len(dispatched)} dispatched)")
wm = hc.ask(ic.watermark(1000, local(2026, 11, 1, 0, 0, 1)), 1000)
wt.check(wm is not None and wm.status == ic.ACCEPTED, "a watermark one second past October is ACCEPTED")

ok = wt.wait_for(lambda: wt.settled(CTL), 120, "the settled signal", interval=0.002)
wt.check(ok, "the system settles")

# Everything is there at the first settled pass.
sub = rc.Subscriber(renv["WHISTLE_REFERRAL_STREAM"], "ops").open()
rhead = wt.status_reply(CTL[1]).output.head
rc.pump_all([sub], lambda: sub.last >= rhead, 30, "referral's stream up to its head")
issued = {rc.payload(k, p).ticket_no for _, k, _, _, p in sub.events if k == "step.issued"}
accept_due = [k for _, k, _, _, p in sub.events if k == "ACCEPT_OVERDUE"]
overdue = [k for _, k, _, _, p in sub.events if k in ("ACCEPT_OVERDUE", "RESOLVE_OVERDUE")]
wt.check(issued == dispatched, f"R-R1: a step for every dispatched ticket ({len(issued)} of {len(dispatched)})")
wt.check(len(accept_due) == len(issued),
         f"R-R4: an ACCEPT_OVERDUE for every step nobody accepted ({len(accept_due)})")
rt = rtc.RatingClient(tenv["WHISTLE_RATING_REQUESTS"])
rk = rt.ask(rtc.query(1, rtc.Q.RANKINGS, "2026-10"))
wt.check(rk is not None and rk.status == rtc.Reply.APPLIED and not rk.pending and rk.total > 0,
         f"R-C1: October is closed, its ranking answered ({rk and rk.total} projects)")
nc = ec.NoticeClient(eenv["WHISTLE_ESCALATION_REQUESTS"])
notices = nc.export()
r_e1 = [n for n in notices or [] if n["rule"] == "R-E1"]
wt.check(len(r_e1) == len(overdue),
         f"R-E1, R-E3: a numbered notice for every overdue event ({len(r_e1)} of {len(overdue)})")

# And the signal is not given while an input is behind: a rating that
# reads a stream nobody has caught up with (stopped) is not settled.
t.kill9()
wt.check(not wt.settled(CTL, timeout=0.5), "not settled while rating does not answer")

sub.close()
rt.close()
nc.close()
hc.close()
e.stop()
r.stop()
i.stop()
wt.done()
