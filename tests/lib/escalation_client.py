"""Helpers for the whistle-escalation test drivers: the daemon and its
environment (reading a referral's and a rating's streams), a request client
for signatures and queries (proto/notice.proto) and the decoder of its
stream's payloads. Debian's python3-zmq and python3-protobuf only."""
import json
import os
import time

import wt
from wt import zmq
import intake_client as ic
import notice_pb2  # noqa: E402

ESCALATION = os.environ.get("WHISTLE_ESCALATION_BIN", os.path.join(wt.BUILD, "bin", "whistle-escalation"))
NM = notice_pb2.NoticeMessage
Q = notice_pb2.Query
Reply = notice_pb2.Reply


def payload(data):
    m = notice_pb2.Notice()
    m.ParseFromString(data)
    return m


def escalation_env(w, renv, tenv, registry=ic.REGISTRY, **extra):
    env = {"WHISTLE_CURVE": "0", "WHISTLE_LOG_LEVEL": "info", "WHISTLE_PG": "user=escalation",
           "WHISTLE_ESCALATION_REQUESTS": w.ep("ereq"), "WHISTLE_ESCALATION_STREAM": w.ep("estream"),
           "WHISTLE_REFERRAL_STREAM_AT": renv["WHISTLE_REFERRAL_STREAM"],
           "WHISTLE_RATING_STREAM_AT": tenv["WHISTLE_RATING_STREAM"],
           "WHISTLE_CONTROL": w.ep("ectl"), "WHISTLE_CLOCK": "event", "WHISTLE_TICK_MS": "100",
           "WHISTLE_REGISTRY": registry}
    env.update(extra)
    return env


def start_escalation(w, env, log="escalation.log", curve=None):
    d = wt.Daemon(ESCALATION, env, w.file(log)).start()
    ok = wt.wait_ready(env["WHISTLE_CONTROL"], curve=curve) is not None
    ok = ok and wt.wait_for(lambda: (wt.status(env["WHISTLE_CONTROL"], 1.0, curve=curve) or {})
                            .get("pg.up") == 1, 60, "escalation's Postgres connection")
    return d, bool(ok)


class NoticeClient:
    """A DEALER to escalation's request interface."""

    def __init__(self, endpoint, curve=None):
        self.s = zmq.Context.instance().socket(zmq.DEALER)
        self.s.linger = 0
        if curve:
            self.s.curve_serverkey, self.s.curve_publickey, self.s.curve_secretkey = curve
        self.s.connect(endpoint)
        self.rid = 0

    def ask(self, m, timeout_s=15):
        self.rid += 1
        m.version, m.request_id = 1, self.rid
        self.s.send(m.SerializeToString())
        end = time.time() + timeout_s
        while time.time() < end:
            if self.s.poll(100):
                r = NM()
                r.ParseFromString(self.s.recv())
                if r.reply.request_id == self.rid:
                    return r.reply
        return None

    def sign(self, number, at_us, recipient=""):
        m = NM()
        m.sign.number, m.sign.at_us, m.sign.recipient = number, at_us, recipient
        return self.ask(m)

    def export(self, what=Q.NOTICES, number=""):
        """Every line of a query (paging through), parsed; None on no answer."""
        out, offset = [], 0
        while True:
            m = NM()
            m.query.what, m.query.number, m.query.offset = what, number, offset
            r = self.ask(m)
            if r is None or r.status != Reply.APPLIED:
                return None
            out.extend(json.loads(x) for x in r.lines)
            offset += len(r.lines)
            if offset >= r.total or not r.lines:
                return out

    def raw(self, what=Q.NOTICES, number=""):
        m = NM()
        m.query.what, m.query.number = what, number
        return self.ask(m)

    def close(self):
        self.s.close()
