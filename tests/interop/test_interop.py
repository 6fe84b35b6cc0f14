"""Interop: an integrator drives Whistle from another language with ordinary
libraries only. Everything below that speaks to a daemon is written here from
the .proto files' comments, with python3-zmq and the modules `protoc
--python_out` makes of proto/ (none of the project's Python clients): a
hotline system, two department systems (GA, XF) and an ops probe, each with
its own CURVE key pair made by whistle-keygen, against the four real daemons
with CURVE on, in event clock mode.

  - hotline.proto: tickets submitted as "hotline" with several requests in
    flight, replies matched by request_id; a resent ticket is DUPLICATE with
    the same ticket id, the same number with other fields REJECTED (R-I1);
  - stream.proto + referral_events.proto: GA subscribes to referral's stream
    from 0 with a small window, acknowledges what it processes, receives its
    step.issued and never XF's step (R-R5);
  - unit.proto: GA ACCEPTs and RESOLVEs its step (R-R2); XF's key gets
    WRONG_UNIT; a resent ACCEPT is DUPLICATE;
  - notice.proto: hotline watermarks past GA's accept deadline make referral
    publish ACCEPT_OVERDUE (R-R4) and escalation issue GA's 提示函 (R-E1 k = 1)
    numbered 提示〔YYYY〕N号 (R-E3), which GA receives on escalation's stream
    (R-E6), signs (APPLIED, then DUPLICATE; XF may not sign it) and sees
    confirmed by notice.signed;
  - control.proto: every daemon's status, and the settled signal it defines.
Waits are on replies and stream events, each with a deadline."""
import datetime
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402  (daemons, Postgres, checks; nothing of the protocol)

sys.path.insert(0, os.path.join(wt.BUILD, "gen", "py"))
import zmq  # noqa: E402
import control_pb2  # noqa: E402
import hotline_pb2  # noqa: E402
import notice_pb2  # noqa: E402
import referral_events_pb2  # noqa: E402
import stream_pb2  # noqa: E402
import unit_pb2  # noqa: E402

S = 1000000
H = 3600 * S
TZ = datetime.timezone(datetime.timedelta(hours=8))
SLOW = 3 if os.environ.get("SAN") else 1   # deadlines under the sanitizers


def local(y, m, d, hh=0, mm=0):
    """Microseconds since the epoch of a local (+08:00) time."""
    return int(datetime.datetime(y, m, d, hh, mm, tzinfo=TZ).timestamp()) * S


# ---- the integrator's client: zmq + generated modules only ----------------------------

CTX = zmq.Context.instance()


def read_key(path):
    with open(path, "rb") as f:
        return f.read().strip()


class Curve:
    """A client key pair (whistle-keygen's STEM.pub / STEM.key) and the
    server's public key: what an integrator is given and keeps."""

    def __init__(self, stem, server_pub):
        self.public = read_key(stem + ".pub")
        self.secret = read_key(stem + ".key")
        self.server = read_key(server_pub)

    def dealer(self, endpoint):
        s = CTX.socket(zmq.DEALER)
        s.linger = 0
        s.curve_serverkey = self.server
        s.curve_publickey = self.public
        s.curve_secretkey = self.secret
        s.connect(endpoint)
        return s


class Requester:
    """A DEALER for the request/reply interfaces (hotline, unit, notice): one
    frame per message, many requests in flight, replies matched by
    request_id whatever their order."""

    def __init__(self, curve, endpoint, envelope):
        self.s = curve.dealer(endpoint)
        self.envelope = envelope      # HotlineMessage, UnitMessage or NoticeMessage
        self.next_id = 0
        self.replies = {}

    def new(self):
        self.next_id += 1
        return self.envelope(version=1, request_id=self.next_id)

    def send(self, m):
        self.s.send(m.SerializeToString())
        return m.request_id

    def collect(self, ids, timeout):
        """The replies to `ids` ({request_id: Reply}); those not answered by
        the deadline are missing."""
        ids = set(ids)
        end = time.monotonic() + timeout
        while not ids <= set(self.replies) and time.monotonic() < end:
            if self.s.poll(max(1, int((end - time.monotonic()) * 1000))):
                m = self.envelope()
                m.ParseFromString(self.s.recv())
                if m.WhichOneof("body") == "reply":
                    self.replies[m.reply.request_id] = m.reply
        return {i: self.replies[i] for i in ids if i in self.replies}

    def ask(self, m, timeout):
        rid = self.send(m)
        return self.collect([rid], timeout).get(rid)

    def close(self):
        self.s.close()


class Subscriber:
    """A stream.proto subscriber: Subscribe from its last processed seq with a
    fresh session, take Events of that session only, check from_seq against
    the last seq received (else subscribe again), acknowledge each Events
    message once processed (credit for `window` more), Ack about once a
    second when idle, subscribe again after an error or a few silent
    seconds. `events` keeps what was processed: (seq, kind, addressee,
    event_time_us, payload)."""

    def __init__(self, curve, endpoint, identity, window):
        self.curve, self.endpoint, self.identity, self.window = curve, endpoint, identity, window
        self.s = None
        self.session = 0
        self.last = 0            # last seq received and processed
        self.events = []
        self.head = 0            # the producer's head from its latest Heartbeat
        self.heartbeat_after = 0  # seq position when that Heartbeat came
        self.max_unacked = 0
        self.errors = []
        self.resubscribed = 0
        self._subscribe()

    def _send(self, **body):
        m = stream_pb2.StreamMessage(version=1)
        for k, v in body.items():
            getattr(m, k).CopyFrom(v)
        self.s.send(m.SerializeToString())

    def _subscribe(self):
        if self.s is not None:
            self.s.close()
            self.resubscribed += 1
        self.s = self.curve.dealer(self.endpoint)
        self.s.rcvhwm = 0
        self.session += 1
        self._send(subscribe=stream_pb2.Subscribe(consumer=self.identity, after_seq=self.last,
                                                  window=self.window, session=self.session))
        self.heard = self.acked_at = time.monotonic()
        self.unacked = 0

    def _ack(self):
        self._send(ack=stream_pb2.Ack(seq=self.last))
        self.acked_at = time.monotonic()
        self.unacked = 0

    def pump(self, ms):
        """Handles what arrives within `ms` milliseconds."""
        end = time.monotonic() + ms / 1000
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            if not self.s.poll(max(1, int(min(left, 0.2) * 1000))):
                if time.monotonic() - self.heard > 5:
                    self._subscribe()      # silent for a few seconds
                elif time.monotonic() - self.acked_at > 1:
                    self._ack()            # our position, about once a second
                continue
            m = stream_pb2.StreamMessage()
            m.ParseFromString(self.s.recv())
            self.heard = time.monotonic()
            body = m.WhichOneof("body")
            if body == "events":
                ev = m.events
                if ev.session != self.session:
                    continue               # an earlier session's message still in flight
                if ev.from_seq != self.last:
                    self._subscribe()      # something was lost
                    continue
                for e in ev.events:
                    # "Durably processed": kept in order; a redelivered seq is ignored.
                    if e.seq > self.last:
                        self.events.append((e.seq, e.kind, e.addressee, e.event_time_us, e.payload))
                        self.last = e.seq
                self.unacked += len(ev.events)
                self.max_unacked = max(self.max_unacked, self.unacked)
                self._ack()
            elif body == "heartbeat":
                self.head = m.heartbeat.head_seq
                self.heartbeat_after = self.last
                if time.monotonic() - self.acked_at > 1:
                    self._ack()
            elif body == "error":
                self.errors.append((m.error.code, m.error.message))
                self._subscribe()

    def wait(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = pred()
            if v:
                return v
            self.pump(100)
        wt.log("timed out waiting for", what)
        return None

    def of(self, kind, payload_type):
        out = []
        for seq, k, addressee, t, data in self.events:
            if k == kind:
                p = payload_type()
                p.ParseFromString(data)
                out.append((seq, addressee, p))
        return out

    def close(self):
        self.s.close()


def control_status(curve, endpoint, timeout=2.0):
    """control.proto: one StatusRequest, the StatusReply or None."""
    s = curve.dealer(endpoint)
    try:
        m = control_pb2.ControlMessage(version=1)
        m.status_request.SetInParent()
        s.send(m.SerializeToString())
        if not s.poll(int(timeout * 1000)):
            return None
        r = control_pb2.ControlMessage()
        r.ParseFromString(s.recv())
        return r.status_reply if r.WhichOneof("body") == "status_reply" else None
    finally:
        s.close()


def counters(reply):
    return {c.name: c.value for c in reply.counters} if reply else {}


# ---- the deployment: keys (whistle-keygen), Postgres, four daemons with CURVE ----------

w = wt.Workdir("interop")
KEYGEN = os.path.join(wt.BUILD, "bin", "whistle-keygen")
DAEMONS = ["intake", "referral", "rating", "escalation"]
# Who each daemon admits (its allowed-keys directory): file name = identity.
ADMITS = {"intake": ["hotline", "referral", "rating", "ops"],
          "referral": ["GA", "XF", "rating", "escalation", "ops"],
          "rating": ["escalation", "ops"],
          "escalation": ["GA", "XF", "ops"]}
for name in DAEMONS + ["hotline", "GA", "XF", "ops"]:
    subprocess.run([KEYGEN, w.file(name)], check=True, capture_output=True)
for d, ids in ADMITS.items():
    os.makedirs(w.file(f"allowed-{d}"))
    for i in ids:
        with open(w.file(f"{i}.pub"), "rb") as src, open(w.file(f"allowed-{d}/{i}.pub"), "wb") as dst:
            dst.write(src.read())
with open(w.file("pseudonym.key"), "w") as f:
    f.write("interop-pseudonym-key-0123456789\n")

ports = iter(wt.free_ports(9))
EP = {k: f"tcp://127.0.0.1:{next(ports)}" for k in
      ("hotline", "units", "rstream", "ereq", "estream", "ictl", "rctl", "tctl", "ectl")}
REGISTRY = os.path.join(wt.ROOT, "deploy", "registry")
common = {"WHISTLE_CURVE": "1", "WHISTLE_LOG_LEVEL": "info", "WHISTLE_CLOCK": "event",
          "WHISTLE_REGISTRY": REGISTRY}


def server(d):
    return {"WHISTLE_CURVE_SECRET_KEY": w.file(f"{d}.key"), "WHISTLE_CURVE_ALLOWED_DIR": w.file(f"allowed-{d}"),
            "WHISTLE_PG": f"user={d}"}


ENV = {
    "intake": dict(common, **server("intake"), WHISTLE_PSEUDONYM_KEY=w.file("pseudonym.key"),
                   WHISTLE_INTAKE_HOTLINE=EP["hotline"], WHISTLE_INTAKE_STREAM=w.ep("istream"),
                   WHISTLE_CONTROL=EP["ictl"]),
    "referral": dict(common, **server("referral"), WHISTLE_CURVE_CLIENT_KEY=w.file("referral.key"),
                     WHISTLE_INTAKE_SERVER_KEY=w.file("intake.pub"), WHISTLE_INTAKE_STREAM_AT=w.ep("istream"),
                     WHISTLE_REFERRAL_UNITS=EP["units"], WHISTLE_REFERRAL_STREAM=EP["rstream"],
                     WHISTLE_CONTROL=EP["rctl"]),
    "rating": dict(common, **server("rating"), WHISTLE_CURVE_CLIENT_KEY=w.file("rating.key"),
                   WHISTLE_INTAKE_SERVER_KEY=w.file("intake.pub"), WHISTLE_INTAKE_STREAM_AT=w.ep("istream"),
                   WHISTLE_REFERRAL_SERVER_KEY=w.file("referral.pub"), WHISTLE_REFERRAL_STREAM_AT=EP["rstream"],
                   WHISTLE_RATING_REQUESTS=w.ep("treq"), WHISTLE_RATING_STREAM=w.ep("tstream"),
                   WHISTLE_CONTROL=EP["tctl"], WHISTLE_TICK_MS="100"),
    "escalation": dict(common, **server("escalation"), WHISTLE_CURVE_CLIENT_KEY=w.file("escalation.key"),
                       WHISTLE_REFERRAL_SERVER_KEY=w.file("referral.pub"), WHISTLE_REFERRAL_STREAM_AT=EP["rstream"],
                       WHISTLE_RATING_SERVER_KEY=w.file("rating.pub"), WHISTLE_RATING_STREAM_AT=w.ep("tstream"),
                       WHISTLE_ESCALATION_REQUESTS=EP["ereq"], WHISTLE_ESCALATION_STREAM=EP["estream"],
                       WHISTLE_CONTROL=EP["ectl"], WHISTLE_TICK_MS="100"),
}
CTL = {"intake": EP["ictl"], "referral": EP["rctl"], "rating": EP["tctl"], "escalation": EP["ectl"]}
OPS = {d: Curve(w.file("ops"), w.file(f"{d}.pub")) for d in DAEMONS}

wt.pgdev("start")
wt.pgdev("reset", *DAEMONS)
procs = {}
for d in DAEMONS:
    procs[d] = wt.Daemon(os.path.join(wt.BUILD, "bin", f"whistle-{d}"), ENV[d], w.file(f"{d}.log")).start()
    up = wt.wait_for(lambda: counters(control_status(OPS[d], CTL[d], 1.0)).get("pg.up") == 1, 60 * SLOW,
                     f"{d} up")
    wt.check(up, f"whistle-{d} answers ops' CURVE client on its control endpoint, Postgres up")

# ---- 1. hotline.proto: tickets in flight, matched by request_id; R-I1 ----------------

hot = Requester(Curve(w.file("hotline"), w.file("intake.pub")), EP["hotline"], hotline_pb2.HotlineMessage)
T0 = local(2026, 11, 2, 9)   # Monday 2 November 2026
TICKETS = {   # ticket_no: (hotline category, compound, minutes after T0, request type)
    "IOP-GA-1": ("1301", "C0001", 0, "COMPLAINT"),     # V_NOISE -> GA (12 h / 3 working days)
    "IOP-GA-2": ("1301", "C0003", 10, "COMPLAINT"),    # GA too; nobody accepts it
    "IOP-XF-1": ("1401", "C0002", 20, "COMPLAINT"),    # V_FIRE_LANE -> XF
    "IOP-Q-1": ("", "C0004", 30, "CONSULT"),           # a consultation: recorded, not referred
}


def submit_msg(ticket_no, content="夜间装修噪音扰民"):
    cat, comp, mins, rtype = TICKETS[ticket_no]
    m = hot.new()
    t = m.submit
    t.ticket_no, t.received_us, t.request_type = ticket_no, T0 + mins * 60 * S, rtype
    t.hotline_category, t.compound_code, t.address, t.content = cat, comp, "院内", content
    t.caller_phone, t.caller_name = f"1390000{mins:04d}", "张三"
    return m


sent = {}
for no in TICKETS:
    sent[hot.send(submit_msg(no))] = no        # all in flight before any reply is read
got = hot.collect(sent, 30 * SLOW)
wt.check(len(got) == len(sent) and all(r.status == hotline_pb2.Reply.ACCEPTED for r in got.values()),
         f"{len(sent)} tickets sent without waiting, each reply matched by request_id: ACCEPTED "
         f"({[(sent[i], hotline_pb2.Reply.Status.Name(r.status), r.reason) for i, r in got.items()]})")
ticket_id = {sent[i]: r.ticket_id for i, r in got.items()}
by_no = {sent[i]: r for i, r in got.items()}
wt.check(len(set(ticket_id.values())) == len(sent) and all(ticket_id.values()), "each has its own ticket id")
wt.check(all(by_no[n].disposition == "DISPATCHED" for n in ("IOP-GA-1", "IOP-GA-2", "IOP-XF-1"))
         and by_no["IOP-GA-1"].category == "V_NOISE" and by_no["IOP-XF-1"].category == "V_FIRE_LANE"
         and by_no["IOP-GA-1"].compound == "C0001" and by_no["IOP-Q-1"].disposition == "RECORDED",
         "the replies say what intake decided: category, compound, DISPATCHED (a CONSULT: RECORDED, R-I2)")
r = hot.ask(submit_msg("IOP-GA-1"), 30 * SLOW)
wt.check(r is not None and r.status == hotline_pb2.Reply.DUPLICATE and r.ticket_id == ticket_id["IOP-GA-1"],
         f"R-I1: the same ticket resent is DUPLICATE with the original ticket id ({r and r.ticket_id})")
r = hot.ask(submit_msg("IOP-GA-1", content="内容不同的同号工单"), 30 * SLOW)
wt.check(r is not None and r.status == hotline_pb2.Reply.REJECTED and r.reason,
         f"R-I1: the same number with other fields is REJECTED ({r and r.reason})")

# ---- 2. stream.proto on referral's stream as GA (and XF) ------------------------------

ga_curve = {d: Curve(w.file("GA"), w.file(f"{d}.pub")) for d in ("referral", "escalation")}
xf_curve = {d: Curve(w.file("XF"), w.file(f"{d}.pub")) for d in ("referral", "escalation")}
WINDOW = 2
ga_ref = Subscriber(ga_curve["referral"], EP["rstream"], "GA", WINDOW)
xf_ref = Subscriber(xf_curve["referral"], EP["rstream"], "XF", WINDOW)
RE = referral_events_pb2


def issued(sub, no):
    return next((x for x in sub.of("step.issued", RE.StepIssued) if x[2].ticket_no == no), None)


ok = ga_ref.wait(lambda: issued(ga_ref, "IOP-GA-1") and issued(ga_ref, "IOP-GA-2"), 30 * SLOW,
                 "GA's step.issued")
wt.check(ok, "R-R5: GA, subscribed from 0, receives step.issued of its two tickets")
seq1, addr1, st1 = issued(ga_ref, "IOP-GA-1") or (0, "", RE.StepIssued())
wt.check(addr1 == "GA" and st1.unit == "GA" and st1.step == 1 and st1.unit_kind == "DEPARTMENT"
         and st1.category == "V_NOISE" and st1.issued_us == T0 and st1.accept_by_us == T0 + 12 * H
         and st1.reason == "ROUTE" and st1.rule_set,
         f"step.issued decodes: step 1 for GA, issued at the received time, accept by +12 h "
         f"(R-R2, R-R4) ({st1.step} {st1.unit} {st1.accept_by_us - st1.issued_us})")
wt.check(st1.masked_phone and "13900000000" not in st1.SerializeToString().decode("utf-8", "replace")
         and st1.pseudonym, f"R-I6: the unit sees a masked phone and a pseudonym ({st1.masked_phone})")
xf_ok = xf_ref.wait(lambda: issued(xf_ref, "IOP-XF-1"), 30 * SLOW, "XF's step.issued")
wt.check(xf_ok, "XF receives its own step.issued")
xf_seq = (issued(xf_ref, "IOP-XF-1") or (0,))[0]

# ---- 3. unit.proto: ACCEPT and RESOLVE as GA; XF gets WRONG_UNIT ----------------------

UR = unit_pb2.Reply
SU = unit_pb2.StepUpdate
ga_units = Requester(Curve(w.file("GA"), w.file("referral.pub")), EP["units"], unit_pb2.UnitMessage)
xf_units = Requester(Curve(w.file("XF"), w.file("referral.pub")), EP["units"], unit_pb2.UnitMessage)


def update(client, ticket_no, step, action, at_us, **kw):
    m = client.new()
    u = m.update
    u.ticket_no, u.step, u.action, u.at_us = ticket_no, step, action, at_us
    for k, v in kw.items():
        setattr(u, k, v)
    return client.ask(m, 30 * SLOW)


def show(r):
    return r and f"{UR.Status.Name(r.status)} {UR.Code.Name(r.code)} {r.step_state} {r.reason}"


r = update(xf_units, "IOP-GA-1", 1, SU.ACCEPT, T0 + H)
wt.check(r is not None and r.status == UR.REFUSED and r.code == UR.WRONG_UNIT,
         f"R-R5: XF's key accepting GA's step is REFUSED WRONG_UNIT ({show(r)})")
r = update(ga_units, "IOP-GA-1", 1, SU.ACCEPT, T0 + H)
wt.check(r is not None and r.status == UR.APPLIED and r.step_state == "ACCEPTED" and not r.late,
         f"R-R2: GA accepts (签收) step 1 of IOP-GA-1: APPLIED, ACCEPTED ({show(r)})")
r = update(ga_units, "IOP-GA-1", 1, SU.ACCEPT, T0 + H)
wt.check(r is not None and r.status == UR.DUPLICATE, f"the same ACCEPT resent: DUPLICATE ({show(r)})")
r = update(ga_units, "IOP-GA-1", 1, SU.RESOLVE, T0 + 5 * H, note="已劝导，噪音停止", violation_confirmed=False)
wt.check(r is not None and r.status == UR.APPLIED and r.step_state == "RESOLVED" and r.ticket_state == "RESOLVED",
         f"R-R2: GA resolves (办结) it, no violation: the step and the ticket RESOLVED ({show(r)} {r and r.ticket_state})")
r = update(xf_units, "IOP-GA-1", 1, SU.RESOLVE, T0 + 5 * H)
wt.check(r is not None and r.status == UR.REFUSED and r.code == UR.WRONG_UNIT,
         f"R-R5: XF's key resolving GA's step: WRONG_UNIT ({show(r)})")


def changed(sub, kind, no):
    return [x for x in sub.of(kind, RE.StepChanged) if x[2].ticket_no == no]


ok = ga_ref.wait(lambda: changed(ga_ref, "step.accepted", "IOP-GA-1") and changed(ga_ref, "step.resolved",
                                                                                   "IOP-GA-1"),
                 30 * SLOW, "GA's step.accepted and step.resolved")
wt.check(ok, "GA's stream shows its step.accepted and step.resolved")

# ---- 4. a notice: watermarks past GA's accept deadline (R-R4, R-E1) -------------------

deadline = T0 + 10 * 60 * S + 12 * H   # IOP-GA-2, never accepted: 2 November 21:10
LAST_WM = local(2026, 11, 3, 12)
for t in (local(2026, 11, 2, 12), local(2026, 11, 3), LAST_WM):   # as a hotline's clock goes on
    m = hot.new()
    m.watermark.at_us = t
    r = hot.ask(m, 30 * SLOW)      # the next line only once the watermark is answered
    wt.check(r is not None and r.status == hotline_pb2.Reply.ACCEPTED, f"hotline watermark {t}: ACCEPTED")


def overdue(sub, no):
    return [x for x in sub.of("ACCEPT_OVERDUE", RE.StepClock) if x[2].ticket_no == no]


ok = ga_ref.wait(lambda: overdue(ga_ref, "IOP-GA-2"), 60 * SLOW, "ACCEPT_OVERDUE of IOP-GA-2")
od = ok[0][2] if ok else RE.StepClock()
wt.check(ok and od.deadline_us == deadline and od.key == "R-E1|IOP-GA-2|1|ACCEPT" and od.rule == "R-R4"
         and ok[0][1] == "GA", f"R-R4: GA receives ACCEPT_OVERDUE for IOP-GA-2 step 1, key {od.key}")
wt.check(not overdue(ga_ref, "IOP-GA-1"), "no overdue for the step GA accepted in time")

ga_esc = Subscriber(ga_curve["escalation"], EP["estream"], "GA", WINDOW)
NT = notice_pb2


def notice_issued(sub):
    return [x for x in sub.of("notice.issued", NT.Notice) if x[2].key == "R-E1|IOP-GA-2|1|ACCEPT"]


ok = ga_esc.wait(lambda: notice_issued(ga_esc), 60 * SLOW, "GA's notice.issued")
n_seq, n_addr, notice = ok[0] if ok else (0, "", NT.Notice())
year = datetime.datetime.fromtimestamp(deadline // S, TZ).year
wt.check(ok and re.fullmatch(f"提示〔{year}〕[1-9][0-9]*号", notice.number) and notice.type == "TISHI"
         and notice.type_name == "提示函" and notice.recipient == "GA" and n_addr == "GA",
         f"R-E1, R-E3: GA receives notice.issued {notice.number} ({notice.type_name}, k = 1) on escalation's stream")
wt.check(notice.rule == "R-E1" and notice.k == 1 and notice.event_us == deadline and notice.period == "2026Q4"
         and "IOP-GA-2" in " ".join(notice.evidence) and notice.rule_set,
         f"R-E2a, R-E5: event time the deadline, quarter 2026Q4, evidence {list(notice.evidence)}")
wt.check(notice.number in notice.text and "提示函" in notice.text and len(notice.text) > 20,
         f"the rendered letter names its number: {notice.text[:80]!r}…")

# Sign (签收): only the recipient, once.
ga_sign = Requester(Curve(w.file("GA"), w.file("escalation.pub")), EP["ereq"], NT.NoticeMessage)
xf_sign = Requester(Curve(w.file("XF"), w.file("escalation.pub")), EP["ereq"], NT.NoticeMessage)
NR = NT.Reply


def sign(client, number, at_us, recipient):
    m = client.new()
    m.sign.number, m.sign.at_us, m.sign.recipient = number, at_us, recipient
    return client.ask(m, 30 * SLOW)


SIGN_AT = local(2026, 11, 3, 10)
r = sign(xf_sign, notice.number, SIGN_AT, "XF")
wt.check(r is not None and r.status == NR.REFUSED, f"R-E6: XF cannot sign GA's notice: REFUSED ({r and r.reason})")
r = sign(ga_sign, notice.number, SIGN_AT, "GA")
wt.check(r is not None and r.status == NR.APPLIED and r.signed_us == SIGN_AT,
         f"R-E6: GA signs {notice.number}: APPLIED at {r and r.signed_us}")
r = sign(ga_sign, notice.number, SIGN_AT + H, "GA")
wt.check(r is not None and r.status == NR.DUPLICATE and r.signed_us == SIGN_AT,
         f"signing again: DUPLICATE, the first signature kept ({r and r.signed_us})")


def signed(sub):
    return [x for x in sub.of("notice.signed", NT.Notice) if x[2].number == notice.number]


ok = ga_esc.wait(lambda: signed(ga_esc), 30 * SLOW, "notice.signed")
wt.check(ok and len(ok) == 1 and ok[0][2].signed_us == SIGN_AT and ok[0][1] == "GA",
         "GA's stream confirms the signature once: notice.signed with the signing time")

# ---- 5. control.proto: every daemon's status, and the settled signal ------------------


def settled_pass():
    """One pass in the order intake, referral, rating, escalation, as
    control.proto defines the settled signal; the replies, or None."""
    st = {d: control_status(OPS[d], CTL[d]) for d in DAEMONS}
    if any(v is None for v in st.values()):
        return None
    heads = {st[d].output.stream: st[d].output.head for d in DAEMONS if st[d].HasField("output")}
    for d in DAEMONS:
        ins = st[d].inputs
        if any(i.input not in heads or i.position < heads[i.input] for i in ins):
            return None
        clocks = [i.watermark_us for i in ins if i.clock]
        if clocks and st[d].output.watermark_us < min(clocks):
            return None
    return st


def esc_watermark():
    return max([t for _, k, _, t, _ in ga_esc.events if k == "WATERMARK"] or [0])


wt.check(ga_esc.wait(lambda: esc_watermark() >= LAST_WM, 60 * SLOW, "escalation's watermark"),
         "the hotline's last watermark reaches GA through escalation's stream (a broadcast WATERMARK event)")
st = {d: control_status(OPS[d], CTL[d]) for d in DAEMONS}
for d in DAEMONS:
    s, c = st[d], counters(st[d])
    wt.check(s is not None and s.service == d and s.build_version and c.get("pg.up") == 1 and len(c) > 5,
             f"{d} answers a plain control client: service {s and s.service}, version {s and s.build_version}, "
             f"{len(c)} counters")
# The settled signal (output, inputs) is the contract for drivers; a daemon
# that fills neither does not report it, which is not the same as settled.
if any(s.HasField("output") or s.inputs for s in st.values() if s):
    st = wt.wait_for(settled_pass, 60 * SLOW, "the settled signal")
    wt.check(st is not None and all(st[d].HasField("output") and st[d].output.stream == d
                                    and st[d].output.head > 0 for d in DAEMONS),
             "the system settles by control.proto's definition; each daemon reports its output stream")
    st = st or {}
    want_inputs = {"intake": set(), "referral": {"intake"}, "rating": {"intake", "referral"},
                   "escalation": {"referral", "rating"}}
    wt.check(all(st.get(d) and {i.input for i in st[d].inputs if i.clock} == want_inputs[d] for d in DAEMONS),
             f"each daemon reports the inputs that drive its clock "
             f"({ {d: [(i.input, i.position, i.clock) for i in st[d].inputs] for d in st} })")
    wt.check(st.get("intake") and st["intake"].output.watermark_us == LAST_WM
             and st.get("escalation") and st["escalation"].output.watermark_us >= LAST_WM,
             "the hotline's last watermark is intake's output watermark and escalation's")
else:
    wt.log("note: no daemon of this build fills StatusReply.output/inputs (the settled signal); not checked")

# ---- what each unit saw: its own and the broadcast, nobody else's --------------------
ga_ref.wait(lambda: ga_ref.heartbeat_after == ga_ref.last and ga_ref.head >= xf_seq and ga_ref.last > xf_seq,
            30 * SLOW, "GA's reader idle past XF's step")
wt.check(ga_ref.last > xf_seq and all(a in ("GA", "*") for _, _, a, _, _ in ga_ref.events)
         and not [e for e in ga_ref.events if e[0] == xf_seq]
         and not any(b"IOP-XF-1" in e[4] for e in ga_ref.events),
         f"R-R5: GA read past seq {xf_seq} (XF's step.issued) and received only its own and broadcast events "
         f"({len(ga_ref.events)}), never XF's")
wt.check(all(a in ("XF", "*") for _, _, a, _, _ in xf_ref.events)
         and not any(b"IOP-GA" in e[4] for e in xf_ref.events), "XF likewise never received GA's")
wt.check(all(a in ("GA", "*") for _, _, a, _, _ in ga_esc.events)
         and all(p.recipient == "GA" for _, _, p in ga_esc.of("notice.issued", NT.Notice)),
         "R-E6: on escalation's stream GA receives its own notices only")
wt.check(any(k == "WATERMARK" and a == "*" for _, k, a, _, _ in ga_esc.events),
         "watermarks are broadcast to GA as well")
subs = (ga_ref, xf_ref, ga_esc)
wt.check(all(s.max_unacked <= WINDOW for s in subs),
         f"never more than window = {WINDOW} events sent unacknowledged ({[s.max_unacked for s in subs]})")
wt.check(all(not s.errors for s in subs), f"no StreamError ({[s.errors for s in subs]})")
seqs = [e[0] for e in ga_ref.events]
wt.check(seqs == sorted(set(seqs)), "GA's events arrive in seq order, each once")

for c in (hot, ga_units, xf_units, ga_sign, xf_sign) + subs:
    c.close()
codes = {d: procs[d].stop() for d in reversed(DAEMONS)}
wt.check(all(c == 0 for c in codes.values()), f"every daemon exits 0 on SIGTERM ({codes})")
for d in DAEMONS:
    text = procs[d].log_text()
    wt.check("AddressSanitizer" not in text and "runtime error:" not in text and "LeakSanitizer" not in text,
             f"{d}.log: no sanitizer report")
w.cleanup()
wt.done()
