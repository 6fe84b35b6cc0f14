"""Helpers for the whistle-intake test drivers: a pipelined hotline client
(proto/hotline.proto), hand-built protobuf frames for input the bindings
refuse to build (invalid UTF-8), realistic ticket generation from the registry
CSVs, the intake and sinkd daemons with their environments, and readers of the
stream as recorded by sinkd. Uses only Debian's python3-zmq and python3-protobuf."""
import csv
import os
import random
import re
import time

import wt
from wt import zmq
import hotline_pb2  # noqa: E402  (wt put build/gen/py on the path)
import intake_events_pb2  # noqa: E402

HM = hotline_pb2.HotlineMessage
Reply = hotline_pb2.Reply
ACCEPTED, DUPLICATE, REJECTED, UNAVAILABLE = (Reply.ACCEPTED, Reply.DUPLICATE, Reply.REJECTED,
                                              Reply.UNAVAILABLE)
STATUS_NAME = {ACCEPTED: "ACCEPTED", DUPLICATE: "DUPLICATE", REJECTED: "REJECTED",
               UNAVAILABLE: "UNAVAILABLE"}
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
DAY_US = 86400 * 1000000
INTAKE = os.path.join(wt.BUILD, "bin", "whistle-intake")
REGISTRY = os.path.join(wt.ROOT, "deploy", "registry")

# Field numbers of TicketSubmit (proto/hotline.proto), for hand-built frames.
SUBMIT_FIELDS = {"ticket_no": 1, "received_us": 2, "request_type": 3, "hotline_category": 4,
                 "caller_phone": 5, "caller_name": 6, "compound_code": 7, "district": 8,
                 "address": 9, "content": 10, "urgency": 11}
TEXT_FIELDS = [k for k in SUBMIT_FIELDS if k not in ("received_us", "urgency")]

# ---- frames -----------------------------------------------------------------


def submit(rid, **fields):
    """A HotlineMessage carrying a TicketSubmit; fields by their proto names."""
    m = HM(version=1, request_id=rid)
    m.submit.SetInParent()
    for k, v in fields.items():
        setattr(m.submit, k, v)
    return m.SerializeToString()


def feedback(rid, ticket_no, at_us, satisfaction):
    m = HM(version=1, request_id=rid)
    m.feedback.ticket_no, m.feedback.received_us, m.feedback.satisfaction = (
        ticket_no, at_us, satisfaction)
    return m.SerializeToString()


def watermark(rid, at_us):
    m = HM(version=1, request_id=rid)
    m.watermark.at_us = at_us
    return m.SerializeToString()


def triage(rid, ticket_no, at_us, compound_code="", category=""):
    m = HM(version=1, request_id=rid)
    m.triage.ticket_no, m.triage.at_us = ticket_no, at_us
    m.triage.compound_code, m.triage.category = compound_code, category
    return m.SerializeToString()


def exempt(rid, ticket_no, at_us, reason):
    m = HM(version=1, request_id=rid)
    m.exempt.ticket_no, m.exempt.at_us, m.exempt.reason = ticket_no, at_us, reason
    return m.SerializeToString()


# The protobuf wire format by hand: the bindings refuse to serialise strings
# that are not valid UTF-8, which is exactly what R-I8 tests must send.
def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def ld(field, body):
    return varint((field << 3) | 2) + varint(len(body)) + body


def vi(field, n):
    return varint(field << 3) + varint(n)


def raw_submit(rid, fields):
    """A HotlineMessage{version 1, request_id, submit} built byte by byte;
    fields maps proto names to bytes (text) or int (received_us, urgency)."""
    body = b""
    for name, v in sorted(fields.items(), key=lambda kv: SUBMIT_FIELDS[kv[0]]):
        num = SUBMIT_FIELDS[name]
        body += vi(num, v) if isinstance(v, int) else ld(num, v)
    return vi(1, 1) + vi(2, rid) + ld(3, body)


def ticket_fields(t):
    """The TicketSubmit fields of a ticket dict (what submit() takes)."""
    return {k: v for k, v in t.items() if k in SUBMIT_FIELDS}


# ---- the client ---------------------------------------------------------------


class HotlineClient:
    """A DEALER to intake's hotline ROUTER. Replies are matched by request_id;
    push() keeps many requests in flight and resends what stays unanswered
    (the daemon may have been killed), like the hotline system would."""

    def __init__(self, endpoint, hwm=100000, curve=None):
        self.endpoint = endpoint
        self.ctx = zmq.Context.instance()
        self.hwm = hwm
        self.curve = curve  # (server public, client public, client secret) or None
        self.s = None
        self.stray = []  # replies nobody waited for (request_id 0, late duplicates)
        self.connect()

    def connect(self):
        if self.s is not None:
            self.s.close()
        self.s = self.ctx.socket(zmq.DEALER)
        self.s.linger = 0
        self.s.sndhwm = self.s.rcvhwm = self.hwm
        if self.curve:
            self.s.curve_serverkey, self.s.curve_publickey, self.s.curve_secretkey = self.curve
        self.s.connect(self.endpoint)

    def close(self):
        self.s.close()

    def send(self, frame):
        self.s.send(frame, copy=False)

    def recv(self, timeout_s):
        """One reply, or None after timeout_s."""
        if not self.s.poll(int(timeout_s * 1000)):
            return None
        m = HM()
        m.ParseFromString(self.s.recv())
        return m.reply

    def collect(self, rids, timeout_s):
        """Waits for the replies to the given request ids; returns {rid: Reply}
        (missing ones absent). Other replies go to self.stray."""
        want, got = set(rids), {}
        end = time.time() + timeout_s
        while want - got.keys():
            left = end - time.time()
            if left <= 0:
                break
            r = self.recv(left)
            if r is None:
                break
            if r.request_id in want and r.request_id not in got:
                got[r.request_id] = r
            else:
                self.stray.append(r)
        return got

    def ask(self, frame, rid, timeout_s=15):
        """Sends one request and waits for its reply (None on timeout)."""
        self.send(frame)
        return self.collect([rid], timeout_s).get(rid)

    def push(self, frames, inflight=2000, resend_s=3.0, timeout=180, on_progress=None):
        """frames: {rid: frame}. Sends with up to `inflight` unanswered, resends
        (on a fresh connection) whatever is unanswered after resend_s, and
        returns {rid: first Reply}. UNAVAILABLE is not an answer: resent too."""
        todo = sorted(frames, reverse=True)
        pending, replies = {}, {}
        end = time.time() + timeout
        while (todo or pending) and time.time() < end:
            while todo and len(pending) < inflight:
                rid = todo.pop()
                self.send(frames[rid])
                pending[rid] = time.time()
            if self.s.poll(100):
                while True:
                    try:
                        raw = self.s.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    m = HM()
                    m.ParseFromString(raw)
                    r = m.reply
                    if r.request_id not in pending:
                        self.stray.append(r)
                        continue
                    if r.status == UNAVAILABLE:
                        continue  # resent when stale
                    del pending[r.request_id]
                    replies[r.request_id] = r
                    if on_progress:
                        on_progress(len(replies))
            now = time.time()
            stale = [rid for rid, t in pending.items() if now - t > resend_s]
            if stale:
                self.connect()
                for rid in stale:
                    self.send(frames[rid])
                    pending[rid] = now
        return replies


# ---- realistic tickets ----------------------------------------------------------


def registry_rows(name, directory=REGISTRY):
    with open(os.path.join(directory, name), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class TicketMaker:
    """Deterministic, varied tickets from the registry: addresses naming a
    compound (by name or alias, sometimes the code given, sometimes none),
    contents with keywords or none, all five request types, phones from a
    pool (so some callers call again), names."""

    TYPES = ["COMPLAINT"] * 5 + ["REPORT"] * 2 + ["HELP"] * 2 + ["CONSULT", "SUGGEST"]
    SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
    GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"
    FILLER = ["，已经持续一周了", "，希望尽快处理", "，多次反映无果", "。", "，影响居民生活",
              "，老人孩子出行不便", "，请相关部门核实"]

    def __init__(self, seed, phones=5000):
        self.rng = random.Random(seed)
        self.compounds = registry_rows("compounds.csv")
        self.keywords = registry_rows("keywords.csv")
        self.hotline = registry_rows("hotline_categories.csv")
        self.phones = [f"1{self.rng.choice('3456789')}{self.rng.randrange(10 ** 9):09d}"
                       for _ in range(phones)]

    def ticket(self, ticket_no, received_us):
        rng = self.rng
        c = rng.choice(self.compounds)
        names = [c["name"]] + [a for a in c["aliases"].split("|") if a]
        t = {"ticket_no": ticket_no, "received_us": received_us,
             "request_type": rng.choice(self.TYPES)}
        roll = rng.random()
        if roll < 0.1:
            t["compound_code"] = c["code"]
            t["address"] = f"{rng.randrange(1, 30)}号楼{rng.randrange(1, 6)}单元"
        elif roll < 0.95:
            t["address"] = f"{rng.choice(names)}{rng.randrange(1, 30)}栋{rng.randrange(101, 2800)}室"
        else:
            t["address"] = f"某路{rng.randrange(1, 999)}号附近"  # no compound: triage
        kroll = rng.random()
        if kroll < 0.8:
            kw = rng.choice(self.keywords)["keyword"]
            t["content"] = f"{kw}{rng.choice(self.FILLER)}"
        else:
            t["content"] = f"来电反映情况{rng.randrange(100000)}{rng.choice(self.FILLER)}"
        if rng.random() < 0.2:
            t["hotline_category"] = rng.choice(self.hotline)["hotline_code"]
        if rng.random() < 0.9:
            t["caller_phone"] = rng.choice(self.phones)
            t["caller_name"] = rng.choice(self.SURNAMES) + rng.choice(self.GIVEN) + \
                (rng.choice(self.GIVEN) if rng.random() < 0.5 else "")
        if rng.random() < 0.05:
            t["urgency"] = 1
        return t


# ---- daemons ------------------------------------------------------------------


def intake_env(w, **extra):
    env = {"WHISTLE_CURVE": "0", "WHISTLE_LOG_LEVEL": "info",
           "WHISTLE_INTAKE_HOTLINE": w.ep("hotline"), "WHISTLE_INTAKE_STREAM": w.ep("stream"),
           "WHISTLE_CONTROL": w.ep("ictl"), "WHISTLE_REGISTRY": REGISTRY,
           "WHISTLE_PG": "user=intake"}
    env.update(extra)
    return env


def start_intake(w, env, log="intake.log"):
    d = wt.Daemon(INTAKE, env, w.file(log)).start()
    ok = wt.wait_ready(env["WHISTLE_CONTROL"]) is not None
    ok = ok and wt.wait_for(lambda: (wt.status(env["WHISTLE_CONTROL"], 1.0) or {}).get("pg.up") == 1,
                            60, "intake's Postgres connection")
    return d, bool(ok)


def sink_env(w, schema="i_sink"):
    return {"WHISTLE_CURVE": "0", "WHISTLE_LOG_LEVEL": "info", "WHISTLE_PG": f"user={schema}",
            "WHISTLE_SCHEMA": schema, "WHISTLE_SINK_SOURCE": w.ep("stream"),
            "WHISTLE_SINK_NAME": "referral", "WHISTLE_SINK_PRODUCER": "intake",
            "WHISTLE_SINK_WINDOW": "2000", "WHISTLE_CONTROL": w.ep("sctl")}


def start_sink(w, schema="i_sink", log="sinkd.log"):
    env = sink_env(w, schema)
    d = wt.Daemon("sinkd", env, w.file(log)).start()
    return d, wt.wait_ready(env["WHISTLE_CONTROL"]) is not None


def stream_head():
    return int(wt.scalar("SELECT last_seq FROM intake.stream_head"))


def data_events():
    """Events in intake's outbox other than watermarks (in wall mode intake adds
    its own every WHISTLE_WATERMARK_MS, R-T3)."""
    return int(wt.scalar("SELECT count(*) FROM intake.stream_outbox WHERE kind <> 'WATERMARK'"))


def wait_sink_caught_up(schema="i_sink", timeout=120):
    """Until sinkd's table holds every event of intake's outbox."""
    return wt.wait_for(lambda: wt.scalar(f"SELECT coalesce(max(seq), 0) FROM {schema}.sink")
                       == str(stream_head()), timeout, "sinkd to catch up with intake's stream")


def sink_events(schema="i_sink", where="true"):
    """[(seq, event_us, kind, addressee, payload bytes)] in seq order."""
    rows = wt.sql(f"SELECT seq, event_us, kind, addressee, encode(payload, 'hex') FROM {schema}.sink"
                  f" WHERE {where} ORDER BY seq")
    return [(int(s), int(e), k, a, bytes.fromhex(p)) for s, e, k, a, p in rows]


EVENT_TYPES = {"ticket.accepted": intake_events_pb2.TicketAccepted,
               "ticket.triaged": intake_events_pb2.TicketTriaged,
               "ticket.feedback": intake_events_pb2.TicketFeedback,
               "ticket.exempted": intake_events_pb2.TicketExempted}


def decode(kind, payload):
    m = EVENT_TYPES[kind]()
    m.ParseFromString(payload)
    return m


def sanitizer_clean(*logfiles):
    """True when no daemon log holds a sanitizer report."""
    for path in logfiles:
        if not os.path.exists(path):
            continue
        with open(path, errors="replace") as f:
            text = f.read()
        if any(mark in text for mark in SANITIZER_MARKS):
            return False
    return True


def phone_digit_hits(payload, digit_set, width=11):
    """The phone numbers of digit_set (all `width` digits long) that occur in
    the raw bytes of payload."""
    hits = set()
    for run in re.findall(rb"[0-9]{%d,}" % width, payload):
        for i in range(len(run) - width + 1):
            s = run[i:i + width].decode()
            if s in digit_set:
                hits.add(s)
    return hits


def query_triage(rid, offset=0, limit=0):
    """A HotlineMessage carrying the ops Query TRIAGE."""
    m = HM(version=1, request_id=rid)
    m.query.what, m.query.offset, m.query.limit = hotline_pb2.Query.TRIAGE, offset, limit
    return m.SerializeToString()
