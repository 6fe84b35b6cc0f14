"""docs/architecture.md "Hostile input" on whistle-referral's unit interface: garbage,
every truncation of a valid request, oversized and deeply nested frames,
invalid UTF-8 and NUL in strings, a million evidence references, another
interface's envelope, multipart and empty frames, out-of-range numbers. Each
gets a REFUSED reply (when it carries a request id) or is dropped with a
counter; no ticket changes; good updates sent alongside are applied; the
daemon keeps serving and drains on SIGTERM."""
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
from intake_client import varint, ld, vi  # noqa: E402
from wt import zmq, stream_pb2  # noqa: E402

MAX_MSG = 65536
S = 1000000
T0 = 1790000000 * S
rng = random.Random(20261122)

wt.pgdev("start")
wt.pgdev("reset", "intake", "referral")
w = wt.Workdir("ref-hostile")
ienv = ic.intake_env(w, WHISTLE_CLOCK="event")
intake, ok = ic.start_intake(w, ienv)
renv = rc.referral_env(w, ienv, WHISTLE_MAX_MSG_BYTES=str(MAX_MSG))
ref, ok2 = rc.start_referral(w, renv)
wt.check(ok and ok2, "intake and referral are up")
hc = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"])
N = 20
frames = {i + 1: ic.submit(i + 1, ticket_no=f"H-{i:03d}", received_us=T0 + i * S, request_type="COMPLAINT",
                           hotline_category="1301", compound_code="C0001", address="x", content="噪音")
          for i in range(N)}
wt.check(len(hc.push(frames)) == N, f"{N} tickets for GA")
wt.check(wt.wait_for(lambda: wt.scalar("SELECT count(*) FROM referral.tickets") == str(N), 30, "steps"),
         "referral holds them")
before = wt.sql("SELECT ticket_no, steps::text FROM referral.tickets ORDER BY 1")
head = wt.scalar("SELECT last_seq FROM referral.stream_head")


def step_update(ticket=b"H-000", step=1, unit=b"GA", at=T0 + 60 * S, action=1, extra=b""):
    return (ld(1, ticket) + vi(2, step) + ld(3, unit) + vi(4, at) + vi(5, action) + extra)


def unit_msg(rid, body=None, version=1, field=3):
    return vi(1, version) + vi(2, rid) + ld(field, body if body is not None else step_update())


s = zmq.Context.instance().socket(zmq.DEALER)
s.linger = 0
s.connect(renv["WHISTLE_REFERRAL_UNITS"])


def replies(wait_s=1.0):
    out, end = [], time.time() + wait_s
    while time.time() < end:
        if s.poll(50):
            m = rc.UM()
            m.ParseFromString(s.recv())
            out.append(m.reply)
    return out


def refused(name, frame, rid, code=rc.Reply.BAD_REQUEST):
    s.send(frame)
    got = [r for r in replies(0.6) if r.request_id == rid]
    wt.check(len(got) == 1 and got[0].status == rc.Reply.REFUSED and got[0].code == code,
             f"{name}: REFUSED {rc.Reply.Code.Name(code)} ({got[0].reason if got else 'no reply'})")


def dropped(name, frames_):
    for f in frames_:
        s.send_multipart(f) if isinstance(f, list) else s.send(f)
    got = replies(0.5)
    wt.check(all(r.status == rc.Reply.REFUSED for r in got) and ref.alive(),
             f"{name}: refused or dropped, daemon alive ({len(got)} replies)")


refused("invalid UTF-8 in ticket_no", unit_msg(11, step_update(ticket=b"H-\xff\xfe")), 11)
refused("a NUL inside unit", unit_msg(12, step_update(unit=b"G\x00A")), 12)
refused("an overlong encoding in note", unit_msg(13, step_update(extra=ld(8, b"a\xc0\xafb"))), 13)
refused("version 2", unit_msg(14, version=2), 14)
refused("a Reply sent as a request", unit_msg(15, b"", field=5), 15)
refused("step 0", unit_msg(16, step_update(step=0)), 16)
# step is a uint32: a larger varint is cut to 32 bits by the decoder.
refused("step 2^64-1", unit_msg(17, step_update(step=(1 << 64) - 1)), 17, rc.Reply.UNKNOWN_STEP)
refused("at_us negative", unit_msg(18, step_update(at=(1 << 64) - 5)), 18)
refused("action 99", unit_msg(19, step_update(action=99)), 19)
refused("a ticket_no of 5,000 characters", unit_msg(20, step_update(ticket=b"H" * 5000)), 20)
refused("21 evidence references", unit_msg(21, step_update(action=2, extra=ld(6, b"r") + ld(7, b"e") * 21)), 21)
refused("a 2,001-character progress note",
        unit_msg(22, step_update(action=3, extra=ld(8, "记".encode() * 2001))), 22)
refused("prohibition P0", unit_msg(23, step_update(action=4, extra=vi(9, 1) + ld(10, b"P0"))), 23)
refused("a SQL-looking unit", unit_msg(24, step_update(unit=b"GA'; DROP TABLE tickets;--")), 24)

valid = unit_msg(30)
dropped("every truncation of a valid request", [valid[:k] for k in range(1, len(valid))])
dropped("random garbage", [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(200)])
dropped("deeply nested length-delimited fields", [vi(1, 1) + vi(2, 31) + ld(3, ld(7, ld(7, ld(7, b"x" * 10))) * 50)])
dropped("a stream Subscribe on the unit socket",
        [stream_pb2.StreamMessage(version=1, subscribe=stream_pb2.Subscribe(consumer="GA")).SerializeToString()])
dropped("multipart and empty frames", [[b"", b""], [valid, valid], b""])
many = unit_msg(32, step_update(action=2, extra=ld(6, b"r") + b"\x3a\x00" * 30000))
s.send(many)  # 60 kB on the wire, 30,000 strings to allocate: over the decode budget
got = replies(0.6)
wt.check(len(many) < MAX_MSG and len(got) == 1 and got[0].status == rc.Reply.REFUSED and ref.alive(),
         f"30,000 empty evidence entries: over the allocation budget, REFUSED ({got[0].reason if got else '-'})")
big = unit_msg(33, step_update(extra=ld(8, b"x" * (MAX_MSG + 10))))
mon = s.get_monitor_socket(zmq.EVENT_DISCONNECTED)
s.send(big)
dropped = mon.poll(10000)  # the daemon closes the connection: wait for that, not for a time
wt.check(dropped and ref.alive(),
         "a frame over WHISTLE_MAX_MSG_BYTES: the connection is dropped, the daemon lives")
s.disable_monitor()
s.close()
s = zmq.Context.instance().socket(zmq.DEALER)
s.linger = 0
s.connect(renv["WHISTLE_REFERRAL_UNITS"])

# Everything above was answered or dropped; a good request behind it proves it.
probe = rc.UnitClient(renv["WHISTLE_REFERRAL_UNITS"])
wt.check(probe.ask(rc.update(9, "NO-SUCH", 1, rc.SU.ACCEPT, T0, "GA")) is not None,
         "referral still answers after the hostile frames")
probe.close()
after = wt.sql("SELECT ticket_no, steps::text FROM referral.tickets ORDER BY 1")
wt.check(before == after and head == wt.scalar("SELECT last_seq FROM referral.stream_head"),
         "no ticket changed and nothing was published")
cli = rc.UnitClient(renv["WHISTLE_REFERRAL_UNITS"])
good = [cli.ask(rc.update(100 + i, f"H-{i:03d}", 1, rc.SU.ACCEPT, T0 + (i + 60) * S, "GA")) for i in range(N)]
wt.check(all(r is not None and r.status == rc.Reply.APPLIED for r in good),
         f"after all that, {N} good updates are APPLIED")
st = wt.status(renv["WHISTLE_CONTROL"]) or {}
wt.check(st.get("referral.refused", 0) >= 14, f"refusals are counted ({st.get('referral.refused')})")
cli.close()
s.close()
rc.finish(w, ref, intake)
