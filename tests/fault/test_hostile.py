"""Proves docs/architecture.md "Hostile input": malformed, truncated, oversized and hostile
frames on every socket of ledgerd (request, stream, control) and sinkd (control,
and its consumer facing a fake producer) get an error reply or are dropped with a
counter; the daemons keep serving, every good request sent alongside is answered
NEW, stored and delivered, nothing bogus is applied, and SIGTERM still drains."""
import atexit
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
from wt import control_pb2, ledger_pb2, stream_pb2, zmq  # noqa: E402
from zmq.utils.monitor import recv_monitor_message  # noqa: E402

MAX_MSG = 65536  # WHISTLE_MAX_MSG_BYTES of every daemon here
BAD, NEW = ledger_pb2.PutReply.BAD, ledger_pb2.PutReply.NEW
E_BAD, E_NO_SESSION = stream_pb2.StreamError.BAD_REQUEST, stream_pb2.StreamError.NO_SESSION
U64 = (1 << 64) - 1
rng = random.Random(20240611)
T0 = time.time()
SM, EV, EVS, SUB = (stream_pb2.StreamMessage, stream_pb2.Event, stream_pb2.Events,
                    stream_pb2.Subscribe)

# ---- protobuf wire format by hand (the bindings refuse to build bad frames) ----


def varint(n):
    n &= U64
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def tag(field, wtype):
    return varint((field << 3) | wtype)


def ld(field, body):
    return tag(field, 2) + varint(len(body)) + body


def vi(field, n):
    return tag(field, 0) + varint(n)


V1 = vi(1, 1)  # version = 1, the first field of every envelope


def nested(field, depth, core=b""):
    for _ in range(depth):
        core = ld(field, core)
    return core


def put_body(rid, key, addressee=b"", value=b"", event_us=0):
    return (vi(1, rid) + ld(2, key) + (ld(3, value) if value else b"") +
            (ld(4, addressee) if addressee else b"") + (vi(5, event_us) if event_us else b""))


def put_msg(rid, key, version=1, **kw):
    return vi(1, version) + ld(2, put_body(rid, key, **kw))


def garbage(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def prefixes(frame):
    """Every truncation of a frame, as separate one-frame messages."""
    return [[frame[:i]] for i in range(1, len(frame))]


def smsg(version=1, **body):
    m = SM(version=version)
    for k, v in body.items():
        getattr(m, k).CopyFrom(v)
    return m.SerializeToString()


def status_req(version=1):
    return vi(1, version) + ld(2, b"")


def messages(x):
    """bytes: one one-frame message; [bytes...]: one multipart message;
    [[bytes...]...]: several messages."""
    if isinstance(x, bytes):
        return [[x]]
    return x if isinstance(x[0], list) else [x]


def dealer(ep, routing_id=None):
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.linger = 0
    s.sndhwm = s.rcvhwm = 100000
    if routing_id:
        s.setsockopt(zmq.ROUTING_ID, routing_id)
    s.connect(ep)
    return s


def disconnected(mon):
    return bool(mon.poll(5000)) and recv_monitor_message(mon)["event"] == zmq.EVENT_DISCONNECTED


def oversized(ep, frame):
    """Sends a frame over WHISTLE_MAX_MSG_BYTES; True once the far side has
    dropped the connection, as a socket monitor sees it."""
    s = dealer(ep)
    mon = s.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    s.send(frame)
    ok = disconnected(mon)
    s.disable_monitor()
    mon.close()
    s.close()
    return ok


def logfmt_keys(line):
    """The keys of one logfmt line: key=bare or key="quoted \\" value"."""
    keys, i, n = [], 0, len(line)
    while i < n:
        j = i
        while j < n and line[j] not in "= ":
            j += 1
        if j < n and line[j] == "=":
            keys.append(line[i:j])
            j += 1
            if j < n and line[j] == '"':
                j += 1
                while j < n and line[j] != '"':
                    j += 2 if line[j] == "\\" else 1
            while j < n and line[j] != " ":
                j += 1
        i = j + 1
    return keys


def rows(query, timeout=10.0):
    """wt.sql, retried while the shared cluster is briefly unreachable."""
    end = time.time() + timeout
    while True:
        try:
            return wt.sql(query)
        except subprocess.CalledProcessError:
            if time.time() > end:
                raise
            time.sleep(0.2)


def scalar(query):
    r = rows(query)
    return r[0][0] if r else None


def moved(before, after, *names):
    return sum(after.get(n, 0) - before.get(n, 0) for n in names)


def section(title):
    wt.log(f"---- {title} ({time.time() - T0:.1f} s)")


# ---- set-up -------------------------------------------------------------------

wt.pgdev("start")
wt.pgdev("reset", "f_ledger", "f_sink", "f_fake", "f_poison", "f_poison2")
w = wt.Workdir("hostile")
dev = {"WHISTLE_CURVE": "0", "WHISTLE_LOG_LEVEL": "info", "WHISTLE_MAX_MSG_BYTES": str(MAX_MSG)}
led = wt.Daemon("ledgerd", dict(dev, WHISTLE_PG="user=f_ledger", WHISTLE_SCHEMA="f_ledger",
                                WHISTLE_LEDGER_RPC=w.ep("rpc"), WHISTLE_CONTROL=w.ep("lctl"),
                                WHISTLE_LEDGER_STREAM=w.ep("stream"),
                                WHISTLE_STREAM_FULL_ACCESS="sink"),
                w.file("ledgerd.log")).start()
sink = wt.Daemon("sinkd", dict(dev, WHISTLE_PG="user=f_sink", WHISTLE_SCHEMA="f_sink",
                               WHISTLE_SINK_SOURCE=w.ep("stream"), WHISTLE_CONTROL=w.ep("sctl")),
                 w.file("sinkd.log")).start()
daemons = [led, sink]
atexit.register(lambda: [d.kill9() for d in daemons])  # none outlives an aborted run
wt.check(wt.wait_ready(w.ep("lctl")) is not None, "ledgerd answers status")
wt.check(wt.wait_ready(w.ep("sctl")) is not None, "sinkd answers status")


def lstat():
    return wt.status(w.ep("lctl")) or {}


def abort(why):
    """Ends the run at once: nothing after this would mean anything."""
    wt.check(False, why)
    for x in daemons:
        x.kill9()
    wt.done()


def need(d, where):
    if not d.alive():
        print(d.log_text()[-4000:], flush=True)
        abort(f"{os.path.basename(d.logfile)} survives {where} (exit {d.p.returncode})")


# ---- the request socket -------------------------------------------------------


class Rpc:
    """One DEALER on the request endpoint. A good Put follows every hostile
    message on the same connection: a BAD reply is sent while decoding, before
    the good Put is even read, so once the good reply is in, whatever the
    hostile message earned has arrived too."""

    def __init__(self, ep):
        self.s = dealer(ep)
        self.next_id = 1000
        self.good = {}      # req_id -> key of a request that must be NEW
        self.replies = {}   # req_id -> PutReply of good requests
        self.bad_keys = []  # keys of refused requests: must never be stored
        self.n_bad = self.n_drop = 0

    def send_good(self, key=None):
        rid = self.next_id
        self.next_id += 1
        self.good[rid] = key if key is not None else f"good-{rid}".encode()
        self.s.send(put_msg(rid, self.good[rid]))
        return rid

    def until(self, rid, timeout=10.0):
        """Replies received up to rid's; rid's own reply is kept aside."""
        others, end = [], time.time() + timeout
        while rid not in self.replies and time.time() < end:
            if self.s.poll(100):
                r = ledger_pb2.LedgerMessage.FromString(self.s.recv()).reply
                if r.req_id in self.good and r.req_id not in self.replies and r.status == NEW:
                    self.replies[r.req_id] = r
                else:
                    others.append(r)
        return others

    def case(self, name, frames, expect, req_id=0, n=1, key=None):
        """Sends the hostile message(s), then a good Put, and checks what the
        hostile ones earned: n BAD replies with a reason ('bad'), no reply
        ('drop') or NEW ('new': a valid message in disguise)."""
        for f in messages(frames):
            self.s.send_multipart(f)
        g = self.send_good()
        got = self.until(g)
        need(led, f"rpc {name}")
        tail = "" if g in self.replies else "; FAILED: the good Put after it got no NEW"
        seen = [(r.req_id, r.status, r.reason) for r in got][:3]
        if expect == "bad":
            self.n_bad += sum(1 for r in got if r.status == BAD)
            ok = len(got) == n and all(r.status == BAD and r.reason and r.req_id == req_id
                                       for r in got)
            wt.check(ok and not tail, f"rpc {name}: {n} BAD repl{'y' if n == 1 else 'ies'} with"
                                      f" a reason (got {seen}){tail}")
            if key is not None:
                self.bad_keys.append(key)
        elif expect == "drop":
            self.n_drop += 1
            wt.check(not got and not tail,
                     f"rpc {name}: dropped without a reply (got {seen}){tail}")
        else:
            ok = len(got) == 1 and got[0].status == NEW and got[0].req_id == req_id
            wt.check(ok and not tail, f"rpc {name}: accepted NEW (got {seen}){tail}")
            if ok:
                self.good[req_id], self.replies[req_id] = key, got[0]


section("ledgerd request socket")
rpc = Rpc(w.ep("rpc"))
rpc.until(rpc.send_good())
wt.check(len(rpc.replies) == 1, "a plain good Put is answered NEW")
before = lstat()


def bad(name, frames, req_id=0, n=1, key=None):
    rpc.case(name, frames, "bad", req_id=req_id, n=n, key=key)


def accepted(name, rid, key, **kw):
    rpc.case(name, put_msg(rid, key, **kw), "new", req_id=rid, key=key)


for size in (1, 7, 64, 1000):
    bad(f"random garbage of {size} bytes", garbage(size))
bad("an empty frame", b"")
frame = put_msg(77, b"truncated-key-0123456789", value=b"v" * 8)
bad("every truncation of a valid Put", prefixes(frame), n=len(frame) - 1)
bad("a StreamMessage Subscribe (wrong type)",
    smsg(subscribe=SUB(consumer="sink", after_seq=5, window=10, session=9)))
bad("a StreamMessage Events (wrong type)",
    smsg(events=EVS(from_seq=1, events=[EV(seq=2, kind="k")])))
bad("a ControlMessage StatusRequest (wrong type)", status_req())
bad("a PutReply instead of a Put", V1 + ld(3, vi(1, 5) + vi(2, 0)))
bad("version 2", put_msg(501, b"v2-key", version=2), req_id=501, key=b"v2-key")
bad("version 0", put_msg(502, b"v0-key", version=0), req_id=502, key=b"v0-key")
bad("version 2^32-1 (sent as -1)", put_msg(503, b"vm-key", version=U64), req_id=503,
    key=b"vm-key")
rpc.case("two frames from a DEALER", [put_msg(504, b"two-a"), put_msg(505, b"two-b")], "drop")
rpc.case("three frames from a DEALER", [put_msg(506, b"three")] * 3, "drop")
rpc.bad_keys += [b"two-a", b"two-b", b"three"]
bad("10,000 levels of nested unknown fields, no Put", V1 + nested(15, 10000))
rpc.case("a valid Put carrying 10,000 levels of nested unknown fields",
         put_msg(601, b"deep-unknown") + nested(15, 10000), "new", req_id=601, key=b"deep-unknown")
bad("10,000 levels of nested Put/key fields", V1 + nested(2, 10000))
bad("30,000 repeated empty Put sub-messages", V1 + ld(2, b"") * 30000)
bad("10,000 alternations of the oneof (Put/PutReply)",
    V1 + (ld(2, b"") + ld(3, b"")) * 10000 + ld(2, put_body(602, b"alt")), key=b"alt")
bad("a sub-message declaring 2^62 bytes", V1 + tag(2, 2) + varint(1 << 62) + b"\x08\x01")
bad("a sub-message declaring 2^32-1 bytes", V1 + tag(2, 2) + varint(U64 >> 32) + b"x" * 9)
bad("a key declaring 2^31 bytes", V1 + ld(2, vi(1, 603) + tag(2, 2) + varint(1 << 31) + b"k"))
bad("an 11-byte varint", b"\x08" + b"\xff" * 10 + b"\x01")
bad("wire type 7", V1 + b"\x17" + b"\x00" * 8)
bad("version sent length-delimited", ld(1, b"\x01") + ld(2, put_body(604, b"wt-key")),
    key=b"wt-key")
for label, k in (("0xff 0xfe", b"\xff\xfe"), ("an overlong '/'", b"a\xc0\xafb"),
                 ("a UTF-16 surrogate", b"\xed\xa0\x80"), ("a truncated sequence", b"ab\xe4\xb8"),
                 ("a code point above U+10FFFF", b"\xf4\x90\x80\x80")):
    bad(f"key with invalid UTF-8 ({label})", put_msg(610, k), req_id=610, key=k)
bad("addressee with invalid UTF-8", put_msg(611, b"addr-utf8", addressee=b"\xff"), req_id=611,
    key=b"addr-utf8")
bad("addressee with SQL metacharacters", put_msg(612, b"addr-sql", addressee=b"x'; --"),
    req_id=612, key=b"addr-sql")
bad("an empty key", put_msg(613, b""), req_id=613)
bad("a key of 201 bytes", put_msg(614, b"k" * 201), req_id=614, key=b"k" * 201)
bad("a key of 201 bytes of two-byte characters", put_msg(615, "é".encode() * 100 + b"k"),
    req_id=615, key="é".encode() * 100 + b"k")
bad("a key with an embedded NUL (must not be cut to 'nul-a')", put_msg(616, b"nul-a\x00tail"),
    req_id=616, key=b"nul-a")
sql_keys = ["'; DROP TABLE f_ledger.ledger; --", "Robert'); DELETE FROM ledger;--", "$1", "%_*?",
            '"quoted" \\backslash\\', "tab\there\nnewline", "键'\"\\;", "' OR '1'='1", "\\x00"]
for i, k in enumerate(sql_keys):
    accepted(f"SQL metacharacters in a key ({k!r})", 700 + i, k.encode())
accepted("a key of exactly 200 bytes", 720, b"K" * 200)
accepted("a key of 200 bytes of two-byte characters", 721, "é".encode() * 100)
accepted("req_id 2^64-1", U64, b"max-req-id")
for i, ev in enumerate((U64, 1 << 63, (1 << 63) - 1)):
    accepted(f"event_us {ev - (1 << 64) if ev >> 63 else ev}", 730 + i, f"event-us-{i}".encode(),
             event_us=ev)
accepted("a value of 60,000 bytes", 740, b"big-value", value=b"\x00\xff" * 30000)
after = lstat()
wt.check(moved(before, after, "server.rejected") == rpc.n_bad,
         f"server.rejected counted every BAD reply sent "
         f"({moved(before, after, 'server.rejected')}/{rpc.n_bad})")
wt.check(moved(before, after, "server.dropped") == rpc.n_drop,
         f"server.dropped counted every dropped multi-frame message "
         f"({moved(before, after, 'server.dropped')}/{rpc.n_drop})")

before = lstat()
rpc.case("twenty frames from a DEALER", [put_msg(800, b"twenty")] * 20, "drop")
rpc.bad_keys.append(b"twenty")
wt.check(moved(before, lstat(), "server.dropped", "server.rejected") >= 1,
         "rpc twenty frames: the drop is counted (server.dropped or server.rejected moved)")

longid = dealer(w.ep("rpc"), b"\xff" * 255)
longid.send(put_msg(802, b"long-routing-id"))
r = longid.poll(5000) and ledger_pb2.LedgerMessage.FromString(longid.recv()).reply
wt.check(r and r.req_id == 802 and r.status == NEW, "rpc a 255-byte routing id: answered NEW")
if r:
    rpc.good[802], rpc.replies[802] = b"long-routing-id", r
longid.close()

wt.check(oversized(w.ep("rpc"), put_msg(801, b"oversized", value=b"x" * (MAX_MSG + 100))),
         "rpc oversized frame: libzmq drops the connection")
rpc.bad_keys.append(b"oversized")
bad("after an oversized frame on another connection", put_msg(803, b"v9", version=9), req_id=803,
    key=b"v9")

# ---- the stream socket --------------------------------------------------------


class StreamPeer:
    """One DEALER on the stream endpoint without a session. Its sync point is
    an Ack, which a session-less peer always gets NO_SESSION for."""

    def __init__(self, ep, routing_id=None):
        self.s = dealer(ep, routing_id)
        self.n_bad = 0

    def recv(self, timeout=5.0):
        if not self.s.poll(int(timeout * 1000)):
            return None
        return SM.FromString(self.s.recv())

    def case(self, name, frames, expect="bad", n=1):
        for f in messages(frames):
            self.s.send_multipart(f)
        self.s.send(smsg(ack=stream_pb2.Ack(seq=0)))
        got, synced, end = [], False, time.time() + 5
        while not synced and time.time() < end:
            m = self.recv(0.1)
            if m and m.WhichOneof("body") == "error" and m.error.code == E_NO_SESSION:
                synced = True
            elif m:
                got.append(m)
        need(led, f"stream {name}")
        self.n_bad += n
        seen = [(m.WhichOneof("body"), m.error.code, m.error.message) for m in got][:2]
        if expect == "bad":
            ok = synced and len(got) == n and all(
                m.WhichOneof("body") == "error" and m.error.code == E_BAD and m.error.message
                for m in got)
            wt.check(ok, f"stream {name}: {n} BAD_REQUEST error(s) with a message"
                         f" (got {seen}{'' if synced else ', no NO_SESSION after it'})")
        else:
            wt.check(synced and not got, f"stream {name}: dropped without a reply (got {seen})")


section("ledgerd stream socket")
sp = StreamPeer(w.ep("stream"))
before = lstat()
for size in (1, 7, 64, 1000):
    sp.case(f"random garbage of {size} bytes", garbage(size))
sp.case("an empty frame", b"")
good_sub = smsg(subscribe=SUB(consumer="hostile-t", after_seq=3, window=9, session=1))
sp.case("every truncation of a valid Subscribe", prefixes(good_sub), n=len(good_sub) - 1)
sp.case("a LedgerMessage Put (wrong type)", put_msg(1, b"wrong-socket"))
sp.case("a ControlMessage StatusRequest (wrong type)", status_req())
sp.case("an Events from a subscriber", smsg(events=EVS(from_seq=0, events=[EV(seq=1)])))
sp.case("a Heartbeat from a subscriber", smsg(heartbeat=stream_pb2.Heartbeat(head_seq=1)))
sp.case("a StreamError from a subscriber", smsg(error=stream_pb2.StreamError(code=1)))
sp.case("an empty message of version 1", V1)
sp.case("version 2", smsg(version=2, subscribe=SUB(consumer="hostile-v")))
sp.case("version 2^32-1", vi(1, U64) + ld(2, ld(1, b"hostile-v")))
sp.case("two frames from a DEALER", [good_sub, good_sub], "drop")
sp.case("three frames from a DEALER", [good_sub] * 3, "drop")
sp.case("10,000 levels of nested unknown fields", V1 + nested(15, 10000))
sp.case("10,000 levels of nested Subscribe/consumer fields", V1 + nested(2, 10000))
sp.case("Events nested as deep as the schema allows",
        V1 + ld(3, ld(2, V1 + ld(3, b"k") + ld(5, nested(15, 5000)))))
sp.case("an Events of 30,000 empty Event entries", V1 + ld(3, ld(2, b"") * 30000))
sp.case("30,000 repeated empty Subscribe sub-messages", V1 + ld(2, b"") * 30000)
sp.case("a sub-message declaring 2^62 bytes", V1 + tag(2, 2) + varint(1 << 62) + b"\x0a\x01")
sp.case("a consumer declaring 2^31 bytes", V1 + ld(2, tag(1, 2) + varint(1 << 31) + b"x"))
sp.case("an 11-byte varint", b"\x08" + b"\xff" * 10 + b"\x01")
sp.case("consumer with invalid UTF-8", V1 + ld(2, ld(1, b"ho\xffst")))
sp.case("consumer with SQL metacharacters",
        smsg(subscribe=SUB(consumer="x'); DROP TABLE stream_outbox;--")))
sp.case("an empty consumer", smsg(subscribe=SUB(consumer="")))
sp.case("a consumer of 128 bytes", smsg(subscribe=SUB(consumer="c" * 128)))
sp.case("a consumer of 201 bytes", smsg(subscribe=SUB(consumer="c" * 201)))
after = lstat()
wt.check(moved(before, after, "stream.bad_frames") == sp.n_bad,
         f"stream.bad_frames counted every refused frame "
         f"({moved(before, after, 'stream.bad_frames')}/{sp.n_bad})")
wt.check(after.get("stream.subscribers") == before.get("stream.subscribers"),
         "no hostile frame opened a session")

nul = StreamPeer(w.ep("stream"))
nul.s.send(V1 + ld(2, ld(1, b"hostile-nul\x00x") + vi(3, 1)))
first = nul.recv(3)
wt.check(first and first.WhichOneof("body") == "error" and first.error.code == E_BAD,
         "stream consumer with an embedded NUL: BAD_REQUEST, not a session as 'hostile-nul'"
         f" (got {first and first.WhichOneof('body')})")
nul.s.close()

before = lstat()
sp.case("twenty frames from a DEALER", [good_sub] * 20, "drop")
wt.check(moved(before, lstat(), "stream.bad_frames") >= 1,
         "stream twenty frames: the drop is counted (stream.bad_frames moved)")

# Out-of-range numbers in otherwise valid subscriptions: sessions that get
# heartbeats and nothing else, and an Ack of 2^64-1 that changes nothing.
before = lstat()
odd = []
for consumer, after_seq, window in (("hostile-max", U64, U64 >> 32), ("hostile-zero", 0, 0),
                                    ("h" * 127, 1 << 63, 1)):
    p = StreamPeer(w.ep("stream"), b"\xfe" * 255 if window == 1 else None)
    p.s.send(smsg(subscribe=SUB(consumer=consumer, after_seq=after_seq, window=window,
                                session=U64)))
    p.s.send(smsg(ack=stream_pb2.Ack(seq=U64)))
    odd.append((consumer, after_seq, window, p))
for consumer, after_seq, window, p in odd:
    kinds, end = [], time.time() + 5
    while "heartbeat" not in kinds and time.time() < end:
        m = p.recv(0.1)
        if m:
            kinds.append(m.WhichOneof("body"))
    wt.check(kinds and kinds[-1] == "heartbeat" and "error" not in kinds and "events" not in kinds,
             f"stream subscribe {consumer[:12]} after_seq={after_seq} window={window}"
             f"{' from a 255-byte routing id' if window == 1 else ''}: heartbeats only"
             f" (got {kinds})")
    p.s.close()
wt.check(moved(before, lstat(), "stream.subscribers") == 3,
         "the three odd subscriptions are sessions")

wt.check(oversized(w.ep("stream"), V1 + ld(2, ld(1, b"x" * (MAX_MSG + 100)))),
         "stream oversized frame: libzmq drops the connection")
sp.case("after an oversized frame on another connection", smsg(version=2))
sp.s.close()

# ---- the control sockets ------------------------------------------------------


def control_group(name, ep, daemon):
    """Every hostile frame on a control socket is dropped and counted in
    control.bad_frames (which every status reply carries); a frame that parses
    as a StatusRequest is answered like one."""
    s = dealer(ep)

    def ping(answers):
        """A StatusRequest: its reply's counters and how many other replies
        came before it (answers to the hostile frames)."""
        s.send(status_req())
        got, end = [], time.time() + 5
        while time.time() < end and len(got) < answers + 1:
            if s.poll(100):
                got.append(control_pb2.ControlMessage.FromString(s.recv()))
        while s.poll(0):  # anything more that is already here
            got.append(control_pb2.ControlMessage.FromString(s.recv()))
        if not got or got[-1].WhichOneof("body") != "status_reply":
            return None, len(got)
        return {x.name: x.value for x in got[-1].status_reply.counters}, len(got) - 1

    seen = [(ping(0)[0] or {}).get("control.bad_frames", 0)]

    def case(what, frames, answered=False):
        msgs = messages(frames)
        for f in msgs:
            s.send_multipart(f)
        c, extra = ping(len(msgs) if answered else 0)
        need(daemon, f"{name} {what}")
        if c is None:
            wt.check(False, f"{name} {what}: the daemon answers status afterwards")
            return
        delta, seen[0] = c["control.bad_frames"] - seen[0], c["control.bad_frames"]
        if answered:
            wt.check(extra == len(msgs) and delta == 0,
                     f"{name} {what}: parses as a StatusRequest and is answered")
        else:
            wt.check(extra == 0 and delta == len(msgs),
                     f"{name} {what}: dropped and counted in control.bad_frames "
                     f"({delta}/{len(msgs)}, replies {extra})")

    for size in (1, 7, 64, 1000):
        case(f"random garbage of {size} bytes", garbage(size))
    case("an empty frame", b"")
    case("every truncation of a StatusRequest", prefixes(status_req()))
    case("a StatusReply instead of a request", V1 + ld(3, ld(1, b"x") + ld(2, ld(1, b"c"))))
    case("a StreamMessage Events (wrong type)", smsg(events=EVS(from_seq=1, session=2)))
    case("a LedgerMessage Put (wrong type, reads as a StatusRequest)", put_msg(1, b"k"),
         answered=True)
    case("version 2", status_req(2))
    case("version 2^32-1", status_req(U64))
    case("two frames from a DEALER", [status_req(), status_req()])
    case("three frames from a DEALER", [status_req()] * 3)
    case("twenty frames from a DEALER", [status_req()] * 20)
    case("10,000 levels of nested unknown fields", V1 + ld(2, nested(15, 10000)))
    case("10,000 levels of nested StatusRequest fields", V1 + nested(2, 10000))
    case("a StatusReply of 30,000 empty Counters", V1 + ld(3, ld(2, b"") * 30000))
    case("a sub-message declaring 2^62 bytes", V1 + tag(2, 2) + varint(1 << 62))
    case("an 11-byte varint", b"\x08" + b"\xff" * 10 + b"\x01")
    case("a StatusReply with invalid UTF-8", V1 + ld(3, ld(1, b"\xff\xfe")))
    wt.check(oversized(ep, status_req() + ld(15, b"x" * (MAX_MSG + 100))),
             f"{name} oversized frame: libzmq drops the connection")
    case("after an oversized frame on another connection", status_req(7))
    s.close()


section("ledgerd control socket")
control_group("ledgerd control", w.ep("lctl"), led)
section("sinkd control socket")
control_group("sinkd control", w.ep("sctl"), sink)

# ---- every good request is answered, committed and delivered ------------------

section("good requests sent alongside")
rpc.until(rpc.send_good(b"last-good"))
wt.check(len(rpc.replies) == len(rpc.good) and all(x.status == NEW for x in rpc.replies.values()),
         f"every good Put was answered NEW ({len(rpc.replies)}/{len(rpc.good)})")
want = {k.hex() for k in rpc.good.values()}
stored = {row[0] for row in rows(
    "SELECT encode(convert_to(key, 'UTF8'), 'hex') FROM f_ledger.ledger")}
wt.check(want <= stored, f"every good key is in f_ledger.ledger byte for byte "
                         f"({len(want & stored)}/{len(want)})")
refused = {k.hex() for k in rpc.bad_keys}
wt.check(not (stored & refused), f"no refused key was stored (found "
                                 f"{[bytes.fromhex(k) for k in stored & refused]})")
wt.check(not (stored - want - refused),
         f"nothing else was stored ({len(stored - want - refused)})")
delivered = wt.wait_for(lambda: scalar("SELECT count(*) FROM f_sink.sink") == str(len(stored)),
                        20, "the sink to receive every event")
wt.check(delivered and scalar(
    "SELECT count(*) FROM f_ledger.ledger l JOIN f_sink.sink s ON s.payload ="
    " convert_to(l.key, 'UTF8')") == str(len(stored)),
    f"sinkd received the event of every stored Put ({len(stored)})")
wt.check(led.alive() and sink.alive() and lstat().get("pg.up") == 1, "ledgerd and sinkd still up")
rpc.s.close()

# ---- sinkd's stream consumer against a hostile producer -----------------------


class FakeProducer:
    """A ROUTER where a sinkd's WHISTLE_SINK_SOURCE points. It records the
    consumer's Subscribes (the session to echo) and its latest routing id."""

    def __init__(self, ep):
        self.r = zmq.Context.instance().socket(zmq.ROUTER)
        self.r.linger = 0
        self.r.bind(ep)
        self.peer = None
        self.subs = []

    def pump(self, timeout_ms=0):
        while self.r.poll(timeout_ms):
            timeout_ms = 0
            parts = self.r.recv_multipart()
            self.peer = parts[0]
            m = SM.FromString(parts[-1])
            if m.WhichOneof("body") == "subscribe":
                self.subs.append(m.subscribe)

    def wait_subscribe(self, count, timeout=8.0):
        end = time.time() + timeout
        while len(self.subs) < count and time.time() < end:
            self.pump(100)
        return self.subs[count - 1] if len(self.subs) >= count else None

    def send(self, *frames):
        self.r.send_multipart([self.peer, *frames])

    def events(self, session, from_seq, evs):
        self.send(smsg(events=EVS(session=session, from_seq=from_seq, events=[
            EV(seq=q, event_time_us=q, kind="fake.put", addressee="sink", payload=p)
            for q, p in evs])))


def serve_until(fakes, payload, timeout):
    """Answers every new Subscribe of each (schema, FakeProducer) with one valid
    event after its after_seq, until every schema's sink holds such an event."""
    answered = {schema: len(fp.subs) for schema, fp in fakes}
    end = time.time() + timeout
    while time.time() < end:
        for schema, fp in fakes:
            fp.pump(50)
            if len(fp.subs) > answered[schema]:
                answered[schema] = len(fp.subs)
                s = fp.subs[-1]
                fp.events(s.session, s.after_seq, [(s.after_seq + 1, payload)])
        if all(scalar(f"SELECT count(*) FROM {schema}.sink WHERE payload = '{payload.decode()}'")
               != "0" for schema, _ in fakes):
            return True
    return False


def sink_daemon(schema):
    return wt.Daemon("sinkd", dict(dev, WHISTLE_PG=f"user={schema}", WHISTLE_SCHEMA=schema,
                                   WHISTLE_SINK_SOURCE=w.ep(schema),
                                   WHISTLE_CONTROL=w.ep(f"{schema}-ctl"),
                                   WHISTLE_SINK_WINDOW="100"),
                     w.file(f"{schema}.log"))


def sink_rows(schema):
    return rows(f"SELECT seq, kind, encode(payload, 'escape') FROM {schema}.sink ORDER BY seq")


section("sinkd against a hostile producer")
fake = FakeProducer(w.ep("f_fake"))
fsink = sink_daemon("f_fake").start()
daemons.append(fsink)
fctl = w.ep("f_fake-ctl")
s1 = fake.wait_subscribe(1)
wt.check(s1 is not None and s1.after_seq == 0 and s1.window == 100,
         "sinkd subscribes to the fake producer from 0 with its window")
if s1 is None:
    abort("sinkd never subscribed to the fake producer")
want_err = (wt.wait_for(lambda: wt.status(fctl), 10, "fake sinkd status") or {}).get(
    "consumer.errors", 0)


def errors_reach(n, timeout):
    return wt.wait_for(lambda: (lambda s: s if s and s.get("consumer.errors", 0) >= n else None)(
        wt.status(fctl)), timeout, f"consumer.errors to reach {n}")


def consumer_errors(name, frames_list):
    """Each entry is one message (frames) the consumer must count as an error."""
    global want_err
    for frames in frames_list:
        fake.send(*frames)
    want_err += len(frames_list)
    st = errors_reach(want_err, 5)
    need(fsink, f"consumer {name}")
    wt.check(st is not None and st.get("consumer.errors") == want_err,
             f"consumer {name}: counted in consumer.errors")


ev_ok = smsg(events=EVS(session=s1.session, from_seq=0, events=[
    EV(seq=1, kind="fake.put", addressee="sink", payload=b"truncated")]))
consumer_errors("random garbage", [[garbage(n)] for n in (1, 7, 64, 1000)])
consumer_errors("an empty frame (version 0)", [[b""]])
consumer_errors("every truncation of a valid Events", [p for p in prefixes(ev_ok) if p != [V1]])
consumer_errors("Events of version 2", [[smsg(version=2, events=EVS(
    session=s1.session, from_seq=0, events=[EV(seq=1, payload=b"bogus")]))]])
consumer_errors("two and three frames", [[ev_ok, ev_ok], [ev_ok] * 3])
consumer_errors("a sub-message declaring 2^62 bytes",
                [[V1 + tag(3, 2) + varint(1 << 62) + b"\x08\x00"]])
consumer_errors("an 11-byte varint", [[b"\x08" + b"\xff" * 10 + b"\x01"]])
fake.send(*([ev_ok] * 20))
fake.send(garbage(9))
wt.check(errors_reach(want_err + 2, 2) is not None,
         "consumer twenty frames: the drop is counted in consumer.errors")
want_err = (wt.status(fctl) or {}).get("consumer.errors", want_err)
fake.send(smsg(heartbeat=stream_pb2.Heartbeat(head_seq=U64, watermark_us=-1)))

# Messages the consumer must ignore or answer by re-subscribing; none applies.
fake.events(s1.session + 1, 0, [(1, b"bogus-wrong-session"), (2, b"bogus-wrong-session")])
fake.events(s1.session, 7, [(8, b"bogus-gap")])
s2 = fake.wait_subscribe(2)
wt.check(s2 is not None and s2.session != s1.session and s2.after_seq == 0,
         "consumer Events with a wrong from_seq: sinkd re-subscribes from 0 with a new session")
fake.events(s1.session, 0, [(1, b"bogus-old-session")])
fake.send(smsg(error=stream_pb2.StreamError(code=4, message="\u00ff" * 50 +
                                            '" level=error injected="x\nts=forged level=error'
                                            "\r\n" + "x" * 20000)))
s3 = fake.wait_subscribe(3)
wt.check(s3 is not None and s3.session not in (s1.session, s2.session) and s3.after_seq == 0,
         "consumer StreamError: sinkd re-subscribes from 0 with a new session")
wt.check((wt.status(fctl) or {}).get("consumer.resubscribes", 0) >= 2,
         "consumer.resubscribes counts the two re-subscriptions (not the first Subscribe)")
lines = fsink.log_text().splitlines()
wt.check(not any(line.startswith("ts=forged") or len(line) > 8192 for line in lines),
         "consumer StreamError text: logged on one bounded line, no forged log line")
keys = [logfmt_keys(line) for line in lines if "producer answered an error" in line]
wt.check(keys and all(k.count("level") == 1 and "injected" not in k for k in keys),
         "consumer StreamError text: quoted as one logfmt value, no injected field")
s3 = s3 or s1
fake.send(V1 + ld(3, vi(3, s3.session) + ld(2, b"") * 30000))
fake.send(V1 + ld(3, vi(3, s3.session) + nested(15, 10000)))
fake.send(V1 + ld(3, vi(3, s3.session) + ld(2, vi(1, 0) + ld(3, b"zero"))))
# A window's worth and more in one message (sinkd asked for 100), then more.
valid = [(i, f"valid-{i}".encode()) for i in range(1, 251)]
fake.events(s3.session, 0, valid + [(5, b"bogus-replayed"), (3, b"bogus-replayed")])
fake.events(s3.session, 250, [(251, b"valid-251"), (260, b"valid-260")])
ok = wt.wait_for(lambda: scalar("SELECT max(seq) FROM f_fake.sink") == "260", 10,
                 "valid events applied")
applied = sink_rows("f_fake")
want_payloads = [p.decode() for _, p in valid] + ["valid-251", "valid-260"]
wt.check(ok and [r[2] for r in applied] == want_payloads
         and [int(r[0]) for r in applied] == list(range(1, 252)) + [260],
         f"consumer: exactly the valid events of its session were applied, in order"
         f" ({len(applied)} rows)")
st = wt.status(fctl) or {}
wt.check(st.get("consumer.position") == 260 and st.get("consumer.errors") == want_err,
         f"consumer position 260, no further errors ({st.get('consumer.position')},"
         f" {st.get('consumer.errors')})")
wt.check(scalar("SELECT last_seq FROM f_fake.stream_positions WHERE producer = 'ledger'") == "260",
         "the recorded stream position is 260")
mon = fake.r.get_monitor_socket(zmq.EVENT_DISCONNECTED)
fake.send(V1 + ld(3, vi(3, s3.session) + ld(15, b"x" * (MAX_MSG + 100))))
wt.check(disconnected(mon), "consumer oversized frame: sinkd's libzmq drops the connection")
fake.r.disable_monitor()
mon.close()
n_subs = len(fake.subs)
ok = serve_until([("f_fake", fake)], b"after-oversized", 12)
wt.check(ok and fake.subs[n_subs].after_seq == 260 and fsink.alive(),
         "consumer oversized frame: sinkd reconnects, re-subscribes from 260 and goes on applying")

# Poison events: valid for the session, but holding what SQL must never see.
section("sinkd against poison events")
poisons = [("f_poison", "an Event kind with invalid UTF-8",
            lambda s: V1 + ld(3, vi(1, s.after_seq) + vi(3, s.session) + ld(
                2, vi(1, 1) + ld(3, b"\xff\xfe\xfd") + ld(5, b"poison")))),
           ("f_poison2", "an Event seq above 2^63",
            lambda s: smsg(events=EVS(session=s.session, from_seq=s.after_seq, events=[
                EV(seq=1 << 63, kind="k", payload=b"poison")])))]
runs = []
for schema, what, make in poisons:
    fp = FakeProducer(w.ep(schema))
    d = sink_daemon(schema).start()
    daemons.append(d)
    s = fp.wait_subscribe(1)
    wt.check(s is not None, f"poison {what}: sinkd subscribes")
    if s is None:
        continue
    fp.send(make(s))
    # Whatever the consumer does next (skip the event in this session, or
    # re-subscribe), valid events for its current session must get applied.
    fp.events(s.session, 1, [(2, b"after-poison"), (3, b"after-poison")])
    runs.append((schema, what, fp, d))
serve_until([(schema, fp) for schema, _, fp, _ in runs], b"after-poison", 5)
for schema, what, fp, d in runs:
    applied = sink_rows(schema)
    wt.check(all(r[2] == "after-poison" for r in applied), f"poison {what}: not applied")
    wt.check(applied and d.alive(),
             f"poison {what}: later valid events are applied (got {len(applied)} rows)")

# ---- shutdown and sanitizer reports ---------------------------------------------

section("shutdown")
for d in daemons:
    if d.alive():
        d.p.send_signal(signal.SIGTERM)
deadline = time.time() + 10
for d in daemons:
    name = os.path.basename(d.logfile)[:-4]
    try:
        rc = d.p.wait(max(0.1, deadline - time.time()))
    except subprocess.TimeoutExpired:
        d.kill9()
        rc = None
    wt.check(rc == 0, f"{name} drains on SIGTERM and exits 0 (exit {rc})")
for d in daemons:
    reports = [m for m in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")
               if m in d.log_text()]
    wt.check(not reports, f"{os.path.basename(d.logfile)} has no sanitizer report {reports}")
wt.log(f"finished in {time.time() - T0:.1f} s; logs in {w.path}")
if wt._checks["failed"] == 0:
    w.cleanup()
wt.done()
