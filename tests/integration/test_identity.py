"""Per-subscriber filtering by authenticated identity, with CURVE on: a
subscriber with identity A never receives an event addressed to B; a client
whose key is not allowed gets nothing; a client cannot claim another identity;
a plain (non-CURVE) client gets nothing; allowed keys reload on SIGHUP."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
from wt import zmq, stream_pb2  # noqa: E402

N = 3000
ADDRS = ["GA", "XF", "*", ""]

wt.pgdev("start")
wt.pgdev("reset", "i_ledger", "i_ga", "i_xf", "i_all")
w = wt.Workdir("identity")
keys = {}
os.makedirs(w.file("allowed"))
for name in ["server", "GA", "XF", "rating", "hotline", "intruder"]:
    pub, sec = zmq.curve_keypair()
    keys[name] = (pub.decode(), sec.decode())
    with open(w.file(f"{name}.key"), "w") as f:
        f.write(sec.decode() + "\n")
    with open(w.file(f"{name}.pub"), "w") as f:
        f.write(pub.decode() + "\n")
    if name not in ("server", "intruder", "XF"):  # XF is allowed later, on SIGHUP
        with open(w.file(f"allowed/{name}.pub"), "w") as f:
            f.write(pub.decode() + "\n")


def curve_of(name):
    return (keys["server"][0].encode(), keys[name][0].encode(), keys[name][1].encode())


sec = {"WHISTLE_CURVE": "1", "WHISTLE_LOG_LEVEL": "info"}
led = wt.Daemon("ledgerd", dict(sec, WHISTLE_PG="user=i_ledger", WHISTLE_SCHEMA="i_ledger",
                                WHISTLE_LEDGER_RPC=w.ep("rpc"),
                                WHISTLE_LEDGER_STREAM=w.ep("stream"), WHISTLE_CONTROL=w.ep("ctl"),
                                WHISTLE_CURVE_SECRET_KEY=w.file("server.key"),
                                WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed"),
                                WHISTLE_STREAM_FULL_ACCESS="rating", WHISTLE_WATERMARK_MS="200"), w.file("ledgerd.log")).start()
admin = curve_of("hotline")
wt.check(wt.wait_ready(w.ep("ctl"), curve=admin) is not None, "producer answers an allowed client")

# Control and request sockets refuse clients without an allowed key too.
wt.check(wt.status(w.ep("ctl"), 2.0) is None, "a plain client gets no status from a CURVE socket")
wt.check(wt.status(w.ep("ctl"), 2.0, curve=curve_of("intruder")) is None,
         "a client with a key not allowed gets no status")

items = [(f"k{i:05d}", ADDRS[i % 4]) for i in range(N)]
cli = wt.LedgerClient(w.ep("rpc"), curve=admin)
replies = cli.push(items)
wt.check(len(replies) == N and all(r.status == 0 for r in replies.values()),
         f"{N} events addressed to GA, XF, everyone and internal are committed")

bad = wt.LedgerClient(w.ep("rpc"), curve=curve_of("intruder"))
bad.s.send(wt.LedgerClient.frame(1, "intruder-key"))
wt.check(not bad.s.poll(2000), "a request from a key not allowed is not answered")
bad.s.close()
wt.check(wt.scalar("SELECT count(*) FROM i_ledger.ledger WHERE key = 'intruder-key'") == "0",
         "and changes nothing")


def sinkd(name, schema, log):
    return wt.Daemon("sinkd", dict(sec, WHISTLE_PG=f"user={schema}", WHISTLE_SCHEMA=schema,
                                   WHISTLE_SINK_SOURCE=w.ep("stream"),
                                   WHISTLE_SINK_NAME=name, WHISTLE_CURVE_CLIENT_KEY=w.file(f"{name}.key"),
                                   WHISTLE_SINK_SERVER_KEY=w.file("server.pub")), w.file(log)).start()


ga = sinkd("GA", "i_ga", "ga.log")
full = sinkd("rating", "i_all", "rating.log")
expect_ga = sum(1 for _, a in items if a in ("GA", "*"))
GA_DATA = "SELECT count(*) FROM i_ga.sink WHERE kind <> 'WATERMARK'"
wt.check(wt.wait_for(lambda: wt.scalar(GA_DATA) == str(expect_ga), 60, "GA"),
         f"GA receives its {expect_ga} events (its own and broadcast)")
wt.check(wt.scalar("SELECT count(*) FROM i_ga.sink WHERE addressee NOT IN ('GA', '*')") == "0",
         "GA never receives an event addressed to another unit or internal")
wt.check(wt.wait_for(lambda: wt.scalar("SELECT count(*) FROM i_all.sink WHERE kind <> 'WATERMARK'")
                     == str(N), 60, "rating"), "a full-access identity receives every event")
wt.check(wt.wait_for(lambda: int(wt.scalar("SELECT count(*) FROM i_ga.sink WHERE kind = 'WATERMARK'"
                                           " AND addressee = '*'")) >= 2, 10, "watermarks"),
         "watermark events are broadcast to every subscriber")
wt.check(wt.scalar("SELECT count(*) FROM (SELECT event_us, lag(event_us) OVER (ORDER BY seq) p FROM i_ga.sink"
                   " WHERE kind = 'WATERMARK') x WHERE p >= event_us") == "0",
         "watermarks only move forward")


def raw_subscribe(curve, claim, wait_ms=2500):
    """Subscribes by hand; returns the list of StreamMessages received."""
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.linger = 0
    if curve:
        s.curve_serverkey, s.curve_publickey, s.curve_secretkey = curve
    s.connect(w.ep("stream"))
    m = stream_pb2.StreamMessage(version=1)
    m.subscribe.consumer = claim
    m.subscribe.after_seq = 0
    m.subscribe.window = 100
    m.subscribe.session = 7
    s.send(m.SerializeToString())
    got = []
    end = time.time() + wait_ms / 1000
    while time.time() < end:
        if s.poll(100):
            r = stream_pb2.StreamMessage()
            r.ParseFromString(s.recv())
            got.append(r)
    s.close()
    return got


msgs = raw_subscribe(curve_of("GA"), "XF")
errs = [m for m in msgs if m.WhichOneof("body") == "error"]
evs = [m for m in msgs if m.WhichOneof("body") == "events"]
wt.check(errs and errs[0].error.code == stream_pb2.StreamError.FORBIDDEN and not evs,
         "GA's key claiming to be XF is refused FORBIDDEN and gets no event")
msgs = raw_subscribe(curve_of("GA"), "rating")
wt.check(not [m for m in msgs if m.WhichOneof("body") == "events"],
         "GA's key cannot claim the full-access identity")
wt.check(raw_subscribe(curve_of("intruder"), "intruder") == [], "a key not allowed gets nothing")
wt.check(raw_subscribe(curve_of("XF"), "XF") == [], "XF gets nothing before its key is allowed")
wt.check(raw_subscribe(None, "GA") == [], "a plain client gets nothing")

# Allow XF and reload on SIGHUP.
with open(w.file("allowed/XF.pub"), "w") as f:
    f.write(keys["XF"][0] + "\n")
led.p.send_signal(signal.SIGHUP)
wt.wait_for(lambda: "allowed keys reloaded" in led.log_text(), 10, "reload")
xf = sinkd("XF", "i_xf", "xf.log")
expect_xf = sum(1 for _, a in items if a in ("XF", "*"))
wt.check(wt.wait_for(lambda: wt.scalar("SELECT count(*) FROM i_xf.sink WHERE kind <> 'WATERMARK'")
                     == str(expect_xf), 60, "XF"),
         f"after SIGHUP allows its key, XF receives its {expect_xf} events")
wt.check(wt.scalar("SELECT count(*) FROM i_xf.sink WHERE addressee NOT IN ('XF', '*')") == "0",
         "XF never receives another unit's event")

st = wt.status(w.ep("ctl"), curve=admin)
wt.check(st["zap.denied"] > 0 and st["stream.refused"] >= 2,
         f"refusals are counted (zap.denied={st['zap.denied']}, stream.refused={st['stream.refused']})")
codes = [d.stop() for d in (ga, full, xf, led)]
wt.check(codes == [0, 0, 0, 0], f"every daemon exits 0 on SIGTERM ({codes})")
for d in (ga, full, xf, led):
    text = d.log_text()
    wt.check("AddressSanitizer" not in text and "runtime error:" not in text,
             f"{d.logfile}: no sanitizer report")
w.cleanup()
wt.done()
