"""R-T3 in wall mode: intake advances its own watermark with the system clock.

Intake on the wall clock (WHISTLE_CLOCK=wall) with WHISTLE_WATERMARK_MS=100 and
WHISTLE_WATERMARK_LAG_S=1, and no hotline watermark at first:
- a subscriber of its stream receives WATERMARK events that follow the system
  clock: never past it less the lag, reaching each recent instant less the
  lag, each one later than the one before;
- a ticket the hotline delivers after a watermark, received ten minutes
  earlier, is ACCEPTED and on the stream with an event time at or after that
  watermark, its payload's received_us unchanged; so are a callback and an
  exemption stamped before the watermark (their at_us unchanged); a ticket
  received now keeps its received time as event time;
- a hotline watermark ahead of the clock is published, the wall-clock ones
  never go back below it, a late ticket then comes at it, and a hotline
  watermark behind the stream's is DUPLICATE;
- throughout, no event has an event time before a watermark published ahead
  of it. Real daemon, real sockets, the stream as any subscriber reads it."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402

S = 1000000
MIN = 60 * S
LAG = 1 * S


def now_us():
    return int(time.time() * S)


wt.pgdev("start")
wt.pgdev("reset", "intake")
w = wt.Workdir("wallwm")
env = ic.intake_env(w, WHISTLE_CLOCK="wall", WHISTLE_WATERMARK_MS="100",
                    WHISTLE_WATERMARK_LAG_S=str(LAG // S))
intake, ok = ic.start_intake(w, env)
wt.check(ok, "intake is up on the wall clock")
sub = rc.Subscriber(env["WHISTLE_INTAKE_STREAM"], "rating").open()
hc = ic.HotlineClient(env["WHISTLE_INTAKE_HOTLINE"])
rid = [0]


def ask(frame_fn, *a, **kw):
    rid[0] += 1
    r = hc.ask(frame_fn(rid[0], *a, **kw), rid[0])
    return ic.STATUS_NAME.get(r.status) if r is not None else None


def ticket(no, received):
    return ask(ic.submit, ticket_no=no, received_us=received, request_type="COMPLAINT",
               compound_code="C0001", address="幸福里3栋", content="楼道堆满杂物，无人清理")


def watermarks():
    return [e[3] for e in sub.events if e[1] == "WATERMARK"]


def last_watermark():
    return max(watermarks(), default=0)


def event_of(kind, ticket_no):
    """The (event time, payload) of the first event of kind for ticket_no, or None."""
    for _, k, _, ev_us, payload in sub.events:
        if k == kind and ic.decode(k, payload).ticket_no == ticket_no:
            return ev_us, ic.decode(k, payload)
    return None


def wait_event(kind, ticket_no):
    return rc.pump_all([sub], lambda: event_of(kind, ticket_no) is not None, 20,
                       f"{kind} of {ticket_no}")


# ---- watermarks follow the system clock ----------------------------------------------
t1 = now_us()
wt.check(rc.pump_all([sub], lambda: last_watermark() >= t1 - LAG, 20, "a watermark past t1 - lag"),
         "R-T3: without hotline watermarks, intake publishes WATERMARK events of its own in wall"
         f" mode ({len(watermarks())} so far)")
t2 = now_us()
wt.check(rc.pump_all([sub], lambda: last_watermark() >= t2 - LAG and len(watermarks()) >= 5, 20,
                     "five watermarks, the last past t2 - lag"),
         "R-T3: they advance with the system clock (a later instant less the lag is reached too)")
wms, at_check = watermarks(), now_us()
wt.check(all(b > a for a, b in zip(wms, wms[1:])),
         f"R-T3: each watermark is later than the one before ({len(wms)} watermarks)")
wt.check(all(x <= at_check - LAG for x in wms),
         "R-T3: none is past the system clock less WHISTLE_WATERMARK_LAG_S")
wt.check(all(e[2] == "*" for e in sub.events if e[1] == "WATERMARK"),
         "the watermarks are broadcast (addressee '*')")

# ---- inputs stamped before the last watermark ---------------------------------------
w0 = last_watermark()
late = now_us() - 10 * MIN
wt.check(late < w0, "a ticket received ten minutes ago is older than the last watermark")
wt.check(ticket("WM-LATE", late) == "ACCEPTED", "R-T3: the late ticket is ACCEPTED")
wt.check(wait_event("ticket.accepted", "WM-LATE"), "its ticket.accepted reaches the subscriber")
ev_us, e = event_of("ticket.accepted", "WM-LATE")
wt.check(ev_us >= w0, f"R-T3: its event time is at or after the watermark published before it"
         f" ({ev_us} >= {w0})")
wt.check(e.received_us == late, "R-T3: its payload keeps the received time the hotline gave")
wt.check(wt.scalar("SELECT received_us FROM intake.tickets WHERE ticket_no = 'WM-LATE'") == str(late),
         "R-T2: intake stores the received time unchanged")

w1 = last_watermark()
wt.check(ask(ic.feedback, "WM-LATE", late + MIN, "SATISFIED") == "ACCEPTED",
         "a callback stamped before the watermark is ACCEPTED")
wt.check(ask(ic.exempt, "WM-LATE", late + 2 * MIN, "重复来电，已核实") == "ACCEPTED",
         "an exemption stamped before the watermark is ACCEPTED")
wt.check(wait_event("ticket.feedback", "WM-LATE") and wait_event("ticket.exempted", "WM-LATE"),
         "their events reach the subscriber")
fb_us, fb = event_of("ticket.feedback", "WM-LATE")
ex_us, ex = event_of("ticket.exempted", "WM-LATE")
wt.check(fb_us >= w1 and fb.at_us == late + MIN,
         "R-T3: the callback is on the stream at or after the watermark, its at_us unchanged")
wt.check(ex_us >= w1 and ex.at_us == late + 2 * MIN,
         "R-T3: the exemption is on the stream at or after the watermark, its at_us unchanged")

fresh = now_us()
wt.check(ticket("WM-NOW", fresh) == "ACCEPTED", "a ticket received now is ACCEPTED")
wt.check(wait_event("ticket.accepted", "WM-NOW"), "its ticket.accepted reaches the subscriber")
wt.check(event_of("ticket.accepted", "WM-NOW")[0] == fresh,
         "R-T2: a ticket received after the last watermark keeps its received time as event time")

# ---- a hotline watermark ahead of the clock ----------------------------------------------
ahead = now_us() + 60 * MIN
wt.check(ask(ic.watermark, ahead) == "ACCEPTED",
         "R-T3: a hotline watermark an hour ahead (within a day of the clock) is ACCEPTED")
wt.check(rc.pump_all([sub], lambda: last_watermark() == ahead, 20, "the hotline's watermark"),
         "it is on the stream")
late2 = now_us() - 5 * MIN
wt.check(ticket("WM-AFTER-HOTLINE", late2) == "ACCEPTED", "a late ticket after it is ACCEPTED")
wt.check(wait_event("ticket.accepted", "WM-AFTER-HOTLINE"), "its event reaches the subscriber")
ev2_us, e2 = event_of("ticket.accepted", "WM-AFTER-HOTLINE")
wt.check(ev2_us >= ahead and e2.received_us == late2,
         "R-T3: it is on the stream at the hotline's watermark, its received time unchanged")
wt.check(ask(ic.watermark, now_us() - MIN) == "DUPLICATE",
         "R-T3: a hotline watermark behind the stream's last one is DUPLICATE (never back)")
wt.check(ticket("WM-CLOSE", now_us()) == "ACCEPTED" and wait_event("ticket.accepted", "WM-CLOSE"),
         "one more ticket goes through (everything before it is on the stream)")

# ---- the promise, over the whole stream --------------------------------------------------
wms = watermarks()
wt.check(all(b > a for a, b in zip(wms, wms[1:])) and wms[-1] == ahead,
         f"R-T3: watermarks never go back, the wall-clock ones not below the hotline's"
         f" ({len(wms)} watermarks)")
broken, wm = [], 0
for seq, kind, _, ev_us, _ in sub.events:
    if kind == "WATERMARK":
        wm = max(wm, ev_us)
    elif ev_us < wm:
        broken.append((seq, kind, ev_us, wm))
wt.check(not broken, f"R-T3: no event has an event time before a watermark published ahead of it"
         f" ({len(sub.events)} events; {broken[:3]})")
wt.check(sorted(e[0] for e in sub.events) == list(range(1, len(sub.events) + 1)),
         "the subscriber got every event once, in order")

sub.close()
hc.close()
wt.check(intake.stop() == 0, "intake drains and exits 0 on SIGTERM")
wt.check(ic.sanitizer_clean(intake.logfile), "no sanitizer report in intake's log")
w.cleanup()
wt.done()
