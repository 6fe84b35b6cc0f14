"""R-T3 in wall mode, with the real whistle-intake and whistle-referral: no
input moves "now" more than a day past the system clock.
- The ratchet: 185 watermarks, each stamped "intake's now + 1 day - 10 min" are
  sent one after the other, as a hostile feed would; the first is ACCEPTED,
  every later one is REJECTED (each is past the system clock + 1 day), so the
  clock stays within a day of the system clock; a ticket dated 150 days ahead
  is REJECTED with a reason; the retention purge (R-I6) runs on the system
  clock: a caller 200 days old is erased, callers of 30 days and 1 day ago
  keep their phone and name.
- Referral refuses a unit update stamped more than a day past the system clock.
- A clock restored from the database ahead of the system clock (dragged
  before inputs were bounded) is reported in the log and in status.
- R-I8: content or address of only white space or invisible characters
  (U+200B..U+200D, U+FEFF, U+3000) is REJECTED with a reason; a frame that
  does not decode is answered with the request id its envelope shows."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402

S = 1000000
MIN = 60 * S
DAY = 86400 * S

wt.pgdev("start")
wt.pgdev("reset", "intake", "referral")
w = wt.Workdir("wallclock")
ienv = ic.intake_env(w, WHISTLE_CLOCK="wall", WHISTLE_RETENTION_DAYS="180",
                     WHISTLE_PURGE_INTERVAL_S="1")
intake, ok = ic.start_intake(w, ienv)
wt.check(ok, "intake is up on the wall clock")
renv = rc.referral_env(w, ienv, WHISTLE_CLOCK="wall")
ref, ok = rc.start_referral(w, renv)
wt.check(ok, "referral is up on the wall clock")
hc = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"])
rid = [0]


def ask(frame_fn, *a, **kw):
    rid[0] += 1
    return hc.ask(frame_fn(rid[0], *a, **kw), rid[0])


def recorded(no, at, phone):
    """A CONSULT ticket (RECORDED: its caller is erased R-I6 days after it)."""
    return ask(ic.submit, ticket_no=no, received_us=at, request_type="CONSULT", hotline_category="1101",
               compound_code="C0001", caller_phone=phone, caller_name="李四",
               address="幸福里3栋", content="咨询物业费标准")


def phone_of(no):
    return wt.scalar("SELECT coalesce(c.phone, '(erased)') FROM intake.callers c JOIN intake.tickets t"
                     f" ON t.id = c.ticket_id WHERE t.ticket_no = '{no}'")


def purged():
    return (wt.status(ienv["WHISTLE_CONTROL"]) or {}).get("intake.purged", 0)


now = int(time.time() * S)
r_old = recorded("WC-OLD1", now - 200 * DAY, "13900000001")
r_30 = recorded("WC-30D", now - 30 * DAY, "13900000002")
r_1 = recorded("WC-1D", now - DAY, "13900000003")
wt.check(all(r is not None and r.status == ic.ACCEPTED for r in (r_old, r_30, r_1)),
         "three RECORDED tickets with callers: 200 days, 30 days and 1 day old")
wt.check(wt.wait_for(lambda: purged() >= 1, 30, "the first purge"),
         "R-I6: the purge erases the caller of 200 days ago")

# ---- the ratchet -------------------------------------------------------------------
answers = []
for i in range(185):
    clock_now = (wt.status(ienv["WHISTLE_CONTROL"]) or {}).get("clock.now_us", 0)
    r = ask(ic.watermark, clock_now + DAY - 10 * MIN)
    answers.append(ic.STATUS_NAME[r.status] if r else "none")
wt.log(f"watermarks stamped now + 1 day - 10 min, 185 times: {answers.count('ACCEPTED')} ACCEPTED, "
       f"{answers.count('REJECTED')} REJECTED")
wt.check(answers[0] == "ACCEPTED" and all(a == "REJECTED" for a in answers[1:]),
         "R-T3: the first watermark is ACCEPTED, each later step past the system clock + 1 day"
         " is REJECTED")
st = wt.status(ienv["WHISTLE_CONTROL"]) or {}
wall = int(time.time() * S)
wt.check(st.get("clock.now_us", 0) <= wall + DAY,
         "R-T3: intake's clock stays within a day of the system clock"
         f" ({(st.get('clock.now_us', 0) - wall) / DAY:.2f} days ahead)")
r = ask(ic.submit, ticket_no="WC-FUTURE", received_us=wall + 150 * DAY, request_type="COMPLAINT", hotline_category="1101",
        compound_code="C0001", caller_phone="13900000004", address="幸福里3栋", content="噪音扰民")
wt.check(r is not None and r.status == ic.REJECTED and "1 day" in r.reason,
         f"R-T3: a ticket dated 150 days ahead is REJECTED ({r and r.reason})")
r_old2 = recorded("WC-OLD2", now - 200 * DAY, "13900000005")
wt.check(r_old2 is not None and r_old2.status == ic.ACCEPTED, "another caller of 200 days ago")
wt.check(wt.wait_for(lambda: purged() >= 2, 30, "a purge after the ratchet"),
         "R-I6: a purge after the ratchet erases it")
wt.check(phone_of("WC-30D") == "13900000002" and phone_of("WC-1D") == "13900000003",
         "R-T3/R-I6: no personal data is erased early: callers of 30 days and 1 day ago are kept")
wt.check(phone_of("WC-OLD1") == "(erased)" and phone_of("WC-OLD2") == "(erased)",
         "R-I6: the callers past retention are erased")

# ---- referral: a unit update past the bound --------------------------------------------
r = ask(ic.submit, ticket_no="WC-REF", received_us=wall - 10 * MIN, request_type="COMPLAINT", hotline_category="1101",
        compound_code="C0001", caller_phone="13900000006", address="幸福里3栋",
        content="楼道堆满杂物")
wt.check(r is not None and r.status == ic.ACCEPTED and r.disposition == "DISPATCHED",
         "a dispatched ticket")
wt.check(wt.wait_for(lambda: wt.scalar("SELECT count(*) FROM referral.tickets WHERE ticket_no ="
                                       " 'WC-REF' AND jsonb_array_length(steps) = 1") == "1",
                     30, "its step"), "referral issued its step")
unit = wt.scalar("SELECT steps->0->>'unit' FROM referral.tickets WHERE ticket_no = 'WC-REF'")
cli = rc.UnitClient(renv["WHISTLE_REFERRAL_UNITS"])
far = cli.ask(rc.update(1, "WC-REF", 1, rc.SU.ACCEPT, wall + 2 * DAY, unit))
wt.check(far is not None and far.status == rc.Reply.REFUSED and "1 day" in far.reason,
         f"R-T3: an accept stamped 2 days ahead is refused ({far and far.reason})")
ok_r = cli.ask(rc.update(2, "WC-REF", 1, rc.SU.ACCEPT, wall, unit))
wt.check(ok_r is not None and ok_r.status == rc.Reply.APPLIED, "the same accept stamped now applies")

# ---- R-I8: blank text; undecodable frames answered with their request id -------------------
for what, content, address in (("spaces", "   ", "幸福里3栋"), ("U+200B", "\u200b\u200b", "幸福里3栋"),
                               ("U+3000 and U+FEFF", "\u3000\ufeff", "幸福里3栋"),
                               ("a blank address", "楼道堆满杂物", " \u200c\u200d ")):
    r = ask(ic.submit, ticket_no=f"WC-BLANK-{rid[0]}", received_us=wall - MIN,
            request_type="COMPLAINT", address=address, content=content)
    wt.check(r is not None and r.status == ic.REJECTED and "white space" in r.reason,
             f"R-I8: {what} is REJECTED with a reason ({r and r.reason})")
wt.check(wt.scalar("SELECT count(*) FROM intake.tickets WHERE ticket_no LIKE 'WC-BLANK%'") == "0",
         "R-I8: nothing of them is stored")
# An envelope with request_id 4242 (field 2), then a truncated field.
frame = bytes([0x08, 0x01, 0x10]) + ic.varint(4242) + bytes([0x1a, 0x40, 0x0a])
hc.send(frame)
got = hc.collect([4242], 10).get(4242)
wt.check(got is not None and got.status == ic.REJECTED,
         "R-I8: a frame that does not decode is answered with the request id its envelope shows")
ucli = rc.UnitClient(renv["WHISTLE_REFERRAL_UNITS"])
ucli.s.send(bytes([0x08, 0x01, 0x10]) + ic.varint(777) + bytes([0x1a, 0x40, 0x0a]))
got = None
if ucli.s.poll(10000):
    got = rc.UM.FromString(ucli.s.recv()).reply
wt.check(got is not None and got.request_id == 777 and got.status == rc.Reply.REFUSED,
         "R-I8: so does referral's unit interface")

# ---- a clock restored ahead of the system clock --------------------------------------------
wt.check(intake.stop() == 0, "intake stops")
ahead = int(time.time() * S) + 30 * DAY
# As an intake before the bound could have left it: a watermark 30 days ahead.
wt.sql("WITH h AS (UPDATE intake.stream_head SET last_seq = last_seq + 1 RETURNING last_seq)"
       " INSERT INTO intake.stream_outbox (seq, event_us, kind, addressee, payload)"
       f" SELECT last_seq, {ahead}, 'WATERMARK', '*', ''::bytea FROM h")
intake, ok = ic.start_intake(w, ienv)
wt.check(ok, "intake restarts")
st = wt.status(ienv["WHISTLE_CONTROL"]) or {}
wt.check(st.get("clock.ahead_us", 0) > 29 * DAY,
         f"R-T3: status reports the restored clock ahead ({st.get('clock.ahead_us', 0) / DAY:.1f} days)")
wt.check("clock restored ahead of the system clock" in intake.log_text(),
         "R-T3: and the log says so at start")

hc.close()
rc_i, rc_r = intake.stop(), ref.stop()
wt.check(rc_i == 0 and rc_r == 0, f"both drain and exit 0 ({rc_i}, {rc_r})")
wt.check(ic.sanitizer_clean(w.file("intake.log"), w.file("referral.log")), "no sanitizer report")
w.cleanup()
wt.done()
