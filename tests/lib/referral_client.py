"""Helpers for the whistle-referral test drivers: a registry with as many
street offices as a test needs, CURVE keys, the referral daemon and its
environment, a unit's update client (proto/unit.proto) and a stream
subscriber that acknowledges, resumes from its last seq and records every
event it receives (proto/stream.proto). Debian's python3-zmq and
python3-protobuf only."""
import os
import shutil
import time

import wt
from wt import zmq, stream_pb2
import intake_client as ic
import unit_pb2  # noqa: E402
import referral_events_pb2 as rev  # noqa: E402

REFERRAL = os.environ.get("WHISTLE_REFERRAL_BIN", os.path.join(wt.BUILD, "bin", "whistle-referral"))
UM = unit_pb2.UnitMessage
SU = unit_pb2.StepUpdate
Reply = unit_pb2.Reply
DEPARTMENTS = ["ZRZY", "SF", "CGZF", "GA", "XF", "SCJG", "ZJ", "FGW", "STHJ", "YJGL", "MZ"]
PAYLOAD = {"step.issued": rev.StepIssued, "step.warning": rev.StepClock,
           "ACCEPT_OVERDUE": rev.StepClock, "RESOLVE_OVERDUE": rev.StepClock,
           "violation.confirmed": rev.ViolationConfirmed, "ticket.feedback": rev.Feedback}


def payload(kind, data):
    """The decoded payload of a referral event."""
    cls = PAYLOAD.get(kind) or (rev.StepChanged if kind.startswith("step.") else rev.TicketState)
    m = cls()
    m.ParseFromString(data)
    return m


def make_registry(dst, n_streets):
    """The sample registry with n_streets street offices (S01.., two per
    district D01/D02) and two PROFESSIONAL compounds per street."""
    shutil.copytree(ic.REGISTRY, dst)
    with open(os.path.join(dst, "streets.csv"), "w", encoding="utf-8") as f:
        f.write("code,name,district\n")
        for i in range(1, n_streets + 1):
            f.write(f"S{i:02d},第{i}街道,D0{1 + i % 2}\n")
    with open(os.path.join(dst, "compounds.csv"), "w", encoding="utf-8") as f:
        f.write("code,name,aliases,street,management,company,manager,households\n")
        for i in range(1, n_streets + 1):
            for j in (1, 2):
                mgmt, co, mgr = ("PROFESSIONAL", f"E00{1 + (i + j) % 4}", "经理") if j == 1 else \
                                ("NONE", "", "")
                f.write(f"C{i:02d}{j},小区{i}-{j},,S{i:02d},{mgmt},{co},{mgr},100\n")
    return [f"S{i:02d}" for i in range(1, n_streets + 1)]


class Keys:
    """CURVE key files in a work directory; allowed/<svc>/ hold client keys."""

    def __init__(self, w):
        self.w = w
        self.keys = {}

    def make(self, name, allowed_by=()):
        pub, sec = zmq.curve_keypair()
        self.keys[name] = (pub, sec)
        for ext, k in (("pub", pub), ("key", sec)):
            with open(self.w.file(f"{name}.{ext}"), "wb") as f:
                f.write(k + b"\n")
        for svc in allowed_by:
            os.makedirs(self.w.file(f"allowed-{svc}"), exist_ok=True)
            with open(self.w.file(f"allowed-{svc}/{name}.pub"), "wb") as f:
                f.write(pub + b"\n")

    def client(self, server, name):
        return (self.keys[server][0], self.keys[name][0], self.keys[name][1])


def referral_env(w, ienv, registry=ic.REGISTRY, **extra):
    env = {"WHISTLE_CURVE": "0", "WHISTLE_LOG_LEVEL": "info", "WHISTLE_PG": "user=referral",
           "WHISTLE_REFERRAL_UNITS": w.ep("units"), "WHISTLE_REFERRAL_STREAM": w.ep("rstream"),
           "WHISTLE_INTAKE_STREAM_AT": ienv["WHISTLE_INTAKE_STREAM"],
           "WHISTLE_CONTROL": w.ep("rctl"), "WHISTLE_CLOCK": "event",
           "WHISTLE_REGISTRY": registry}
    env.update(extra)
    return env


def start_referral(w, env, log="referral.log", curve=None):
    d = wt.Daemon(REFERRAL, env, w.file(log)).start()
    ok = wt.wait_ready(env["WHISTLE_CONTROL"], curve=curve) is not None
    ok = ok and wt.wait_for(lambda: (wt.status(env["WHISTLE_CONTROL"], 1.0, curve=curve) or {})
                            .get("pg.up") == 1, 60, "referral's Postgres connection")
    return d, bool(ok)


def update(rid, ticket_no, step, action, at_us, unit="", **kw):
    m = UM(version=1, request_id=rid)
    u = m.update
    u.ticket_no, u.step, u.action, u.at_us, u.unit = ticket_no, step, action, at_us, unit
    for k, v in kw.items():
        if k == "evidence":
            u.evidence.extend(v)
        else:
            setattr(u, k, v)
    return m.SerializeToString()


def redispatch(rid, ticket_no, step, unit, at_us, note=""):
    m = UM(version=1, request_id=rid)
    r = m.redispatch
    r.ticket_no, r.step, r.unit, r.at_us, r.note = ticket_no, step, unit, at_us, note
    return m.SerializeToString()


class UnitClient:
    """A DEALER to referral's unit interface."""

    def __init__(self, endpoint, curve=None):
        self.s = zmq.Context.instance().socket(zmq.DEALER)
        self.s.linger = 0
        if curve:
            self.s.curve_serverkey, self.s.curve_publickey, self.s.curve_secretkey = curve
        self.s.connect(endpoint)

    def ask(self, frame, timeout_s=15):
        """Sends one request and returns its Reply (None on timeout)."""
        self.s.send(frame)
        rid = UM.FromString(frame).request_id if frame else 0
        end = time.time() + timeout_s
        while time.time() < end:
            if self.s.poll(100):
                m = UM()
                m.ParseFromString(self.s.recv())
                if m.reply.request_id == rid:
                    return m.reply
        return None

    def close(self):
        self.s.close()


class Subscriber:
    """A unit (or full-access) subscriber of the referral stream. Records
    (seq, kind, addressee, event_us, payload bytes) of every event; acks as it
    goes; resumes after its last seq."""

    def __init__(self, endpoint, name, curve=None, window=1000):
        self.endpoint, self.name, self.curve, self.window = endpoint, name, curve, window
        self.events = []
        self.last = 0
        self.session = 0
        self.s = None
        self.errors = []
        self.heard = 0.0
        self.acked = 0.0

    def open(self):
        self.s = zmq.Context.instance().socket(zmq.DEALER)
        self.s.linger = 0
        self.s.rcvhwm = 0
        if self.curve:
            self.s.curve_serverkey, self.s.curve_publickey, self.s.curve_secretkey = self.curve
        self.s.connect(self.endpoint)
        self.session += 1
        m = stream_pb2.StreamMessage(version=1)
        m.subscribe.consumer, m.subscribe.after_seq = self.name, self.last
        m.subscribe.window, m.subscribe.session = self.window, self.session
        self.s.send(m.SerializeToString())
        self.heard = time.time()
        return self

    def close(self):
        if self.s is not None:
            self.s.close()
            self.s = None

    def _ack(self):
        m = stream_pb2.StreamMessage(version=1)
        m.ack.seq = self.last
        self.s.send(m.SerializeToString())
        self.acked = time.time()

    def pump(self, max_ms=0):
        """Takes whatever has arrived (waiting up to max_ms for the first);
        returns the number of events taken."""
        if self.s is None:
            return 0
        n = 0
        wait = max_ms
        while self.s.poll(wait):
            wait = 0
            m = stream_pb2.StreamMessage()
            m.ParseFromString(self.s.recv())
            self.heard = time.time()
            body = m.WhichOneof("body")
            if body == "error":
                self.errors.append(m.error.code)
                self.close()
                self.open()
                return n
            if body != "events" or m.events.session != self.session:
                continue
            for e in m.events.events:
                if e.seq <= self.last:
                    continue
                self.events.append((e.seq, e.kind, e.addressee, e.event_time_us, e.payload))
                self.last = e.seq
                n += 1
            self._ack()
        if self.s is not None and time.time() - self.acked > 1:
            self._ack()  # our heartbeat: the producer drops silent sessions
        if time.time() - self.heard > 5:  # silent producer (restarted): subscribe again
            self.close()
            self.open()
        return n


def pump_all(subs, until, timeout, what):
    """Pumps every open subscriber until until() is true; False on timeout."""
    end = time.time() + timeout
    while time.time() < end:
        for s in subs:
            s.pump(0)
        if until():
            return True
        time.sleep(0.02)
    if what:
        wt.log(f"timed out waiting for {what}")
    return False


def finish(w, *daemons):
    """The end of a test: every daemon drains and exits 0 on SIGTERM, left no
    sanitizer report in its log; the work directory goes; the closing line."""
    codes = [d.stop() for d in daemons]
    wt.check(codes == [0] * len(daemons), f"every daemon drains and exits 0 on SIGTERM ({codes})")
    for d in daemons:
        wt.check(not any(m in d.log_text() for m in ic.SANITIZER_MARKS), f"{d.logfile}: no sanitizer report")
    w.cleanup()
    wt.done()


# ---- ops queries (proto/unit.proto Query) -------------------------------------

Q = unit_pb2.Query


def query(rid, what, ticket_no="", offset=0, limit=0):
    """A UnitMessage carrying an ops Query (what: "TICKETS", "RETURNED", "TICKET")."""
    m = UM(version=1, request_id=rid)
    m.query.what, m.query.ticket_no = Q.What.Value(what), ticket_no
    m.query.offset, m.query.limit = offset, limit
    return m.SerializeToString()


def query_all(client, what, rid0, page=0, **kw):
    """Every line of a query's answer, asking page by page (limit page, 0:
    the daemon's maximum): (lines, [Reply of each page])."""
    lines, replies, offset = [], [], 0
    while True:
        r = client.ask(query(rid0 + len(replies), what, offset=offset, limit=page, **kw))
        replies.append(r)
        if r is None or r.status != Reply.APPLIED:
            return lines, replies
        lines.extend(r.lines)
        offset += len(r.lines)
        if not r.lines or offset >= r.total:
            return lines, replies


def wait_clock(env, in_us, out_us=0, timeout=60, curve=None):
    """Waits until referral has applied intake's stream up to its watermark
    in_us (every event before it committed) and, if out_us, moved its clocks
    and published its own watermark to out_us (overdue events before it out)."""
    def ok():
        st = wt.status(env["WHISTLE_CONTROL"], 1.0, curve=curve) or {}
        return st.get("clock.in_watermark_us", 0) >= in_us and \
            st.get("clock.out_watermark_us", 0) >= out_us
    return wt.wait_for(ok, timeout, f"referral's clock at {in_us}/{out_us}")
