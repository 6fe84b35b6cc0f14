"""Helpers for the whistle-rating test drivers: the daemon and its
environment (reading an intake's and a referral's streams), a request client
for inspections and queries (proto/rating.proto), and decoders of rating's
stream events (proto/rating_events.proto). Debian's python3-zmq and
python3-protobuf only."""
import json
import os
import time

import wt
from wt import zmq
import intake_client as ic
import rating_pb2  # noqa: E402
import rating_events_pb2 as rtev  # noqa: E402

RATING = os.environ.get("WHISTLE_RATING_BIN", os.path.join(wt.BUILD, "bin", "whistle-rating"))
RM = rating_pb2.RatingMessage
Q = rating_pb2.Query
Reply = rating_pb2.Reply
PAYLOAD = {"decision": rtev.Decision, "period.closed": rtev.PeriodClosed}


def payload(kind, data):
    m = PAYLOAD[kind]()
    m.ParseFromString(data)
    return m


def rating_env(w, ienv, renv, registry=ic.REGISTRY, **extra):
    env = {"WHISTLE_CURVE": "0", "WHISTLE_LOG_LEVEL": "info", "WHISTLE_PG": "user=rating",
           "WHISTLE_RATING_REQUESTS": w.ep("rreq"), "WHISTLE_RATING_STREAM": w.ep("rtstream"),
           "WHISTLE_INTAKE_STREAM_AT": ienv["WHISTLE_INTAKE_STREAM"],
           "WHISTLE_REFERRAL_STREAM_AT": renv["WHISTLE_REFERRAL_STREAM"],
           "WHISTLE_CONTROL": w.ep("rtctl"), "WHISTLE_CLOCK": "event", "WHISTLE_TICK_MS": "100",
           "WHISTLE_REGISTRY": registry}
    env.update(extra)
    return env


def start_rating(w, env, log="rating.log"):
    d = wt.Daemon(RATING, env, w.file(log)).start()
    ok = wt.wait_ready(env["WHISTLE_CONTROL"]) is not None
    ok = ok and wt.wait_for(lambda: (wt.status(env["WHISTLE_CONTROL"], 1.0) or {}).get("pg.up") == 1,
                            60, "rating's Postgres connection")
    return d, bool(ok)


def inspection(rid, inspection_id, compound, at_us, dims):
    """dims: sanitation, garbage, greening, order, facilities, disclosure, governance."""
    m = RM(version=1, request_id=rid)
    i = m.inspection
    i.inspection_id, i.compound, i.at_us = inspection_id, compound, at_us
    (i.sanitation, i.garbage, i.greening, i.order, i.facilities, i.disclosure,
     i.governance) = dims
    return m.SerializeToString()


def query(rid, what, period="", offset=0, limit=0):
    m = RM(version=1, request_id=rid)
    m.query.what, m.query.period, m.query.offset, m.query.limit = what, period, offset, limit
    return m.SerializeToString()


class RatingClient:
    """A DEALER to rating's request interface."""

    def __init__(self, endpoint):
        self.s = zmq.Context.instance().socket(zmq.DEALER)
        self.s.linger = 0
        self.s.connect(endpoint)
        self.rid = 0

    def ask(self, frame, timeout_s=15):
        """Sends one request and returns its Reply (None on timeout)."""
        self.s.send(frame)
        rid = RM.FromString(frame).request_id if frame else 0
        end = time.time() + timeout_s
        while time.time() < end:
            if self.s.poll(100):
                m = RM()
                m.ParseFromString(self.s.recv())
                if m.reply.request_id == rid:
                    return m.reply
        return None

    def inspect(self, inspection_id, compound, at_us, dims):
        self.rid += 1
        return self.ask(inspection(self.rid, inspection_id, compound, at_us, dims))

    def export(self, what, period=""):
        """Every line of a query (paging through), as parsed objects; None if
        the period is not closed (pending) or on no answer."""
        out, offset = [], 0
        while True:
            self.rid += 1
            r = self.ask(query(self.rid, what, period, offset))
            if r is None or r.status != Reply.APPLIED or r.pending:
                return None
            out.extend(json.loads(x) for x in r.lines)
            offset += len(r.lines)
            if offset >= r.total or not r.lines:
                return out

    def close(self):
        self.s.close()
