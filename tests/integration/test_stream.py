"""The stream proven with real processes, real sockets and a real Postgres:
100,000 events reach a consumer's table exactly once and in order while the
consumer is kill -9'd twice, the producer is kill -9'd twice and Postgres is
restarted once; the window is never exceeded; a consumer that stays away while
50,000 more events are produced catches up on return; while Postgres is down
nothing is acknowledged, and it recovers when Postgres returns."""
import os
import socket
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402

N = int(os.environ.get("WHISTLE_TEST_EVENTS", "100000"))
M = N // 2
WINDOW = 1000

wt.pgdev("start")
wt.pgdev("reset", "t_ledger", "t_sink")
w = wt.Workdir("stream")
dev = {"WHISTLE_CURVE": "0", "WHISTLE_LOG_LEVEL": "info"}
with socket.socket() as so:
    so.bind(("127.0.0.1", 0))
    HTTP_PORT = so.getsockname()[1]
led_env = dict(dev, WHISTLE_HTTP=f"127.0.0.1:{HTTP_PORT}", WHISTLE_PG="user=t_ledger", WHISTLE_LEDGER_RPC=w.ep("rpc"),
               WHISTLE_LEDGER_STREAM=w.ep("stream"), WHISTLE_CONTROL=w.ep("lctl"),
               WHISTLE_STREAM_FULL_ACCESS="sink")
sink_env = dict(dev, WHISTLE_PG="user=t_sink", WHISTLE_SINK_SOURCE=w.ep("stream"),
                WHISTLE_CONTROL=w.ep("sctl"), WHISTLE_SINK_WINDOW=str(WINDOW))
led = wt.Daemon("ledgerd", led_env, w.file("ledgerd.log")).start()
sink = wt.Daemon("sinkd", sink_env, w.file("sinkd.log")).start()
wt.check(wt.wait_ready(w.ep("lctl")) is not None, "producer answers status")
wt.check(wt.wait_ready(w.ep("sctl")) is not None, "consumer answers status")

faults = {}


def fault(answered):
    """Injects the faults at fixed points of progress (by acknowledged count)."""
    global led, sink
    step = N // 7
    plan = [(1, "kill -9 consumer"), (2, "kill -9 consumer"), (3, "kill -9 producer"),
            (4, "kill -9 producer"), (5, "restart postgres")]
    for k, what in plan:
        if answered >= k * step and k not in faults:
            faults[k] = what
            wt.log(f"fault at {answered} acknowledged: {what}")
            if what == "kill -9 consumer":
                sink.kill9()
                sink = wt.Daemon("sinkd", sink_env, w.file("sinkd.log")).start()
            elif what == "kill -9 producer":
                led.kill9()
                led = wt.Daemon("ledgerd", led_env, w.file("ledgerd.log")).start()
            else:
                wt.pgdev("restart")
    if answered % 10000 == 0:
        wt.log(f"{answered} acknowledged")


items = [(f"e{i:07d}", "") for i in range(N)]
client = wt.LedgerClient(w.ep("rpc"), inflight=2000)
t0 = time.time()
replies = client.push(items, on_progress=fault)
wt.log(f"pushed {N} in {time.time() - t0:.1f} s")
wt.check(len(faults) == 5, "all five faults were injected during the run")
wt.check(len(replies) == N, f"every request was answered ({len(replies)}/{N})")
statuses = {r.status for r in replies.values()}
wt.check(statuses <= {0, 1}, f"answers are NEW or DUPLICATE only (got {sorted(statuses)})")
wt.check(wt.scalar("SELECT count(*) FROM t_ledger.ledger") == str(N),
         "every acknowledged key is in the producer's table exactly once")
wt.check(wt.scalar("SELECT count(*) = max(seq) AND min(seq) = 1 FROM t_ledger.stream_outbox") == "t",
         "the producer's outbox is gapless")
wt.check(wt.scalar("SELECT last_seq FROM t_ledger.stream_head") == str(N),
         "one event per new key")

got = wt.wait_for(lambda: wt.scalar("SELECT count(*) FROM t_sink.sink") == str(N), 180,
                  "the consumer to apply every event")
wt.check(got, f"the consumer applied all {N} events")


def verify(total, label):
    wt.check(wt.scalar("SELECT count(DISTINCT seq) = count(*) AND min(seq) = 1 AND max(seq) = "
                       f"{total} FROM t_sink.sink") == "t",
             f"{label}: each of seq 1..{total} applied exactly once")
    wt.check(wt.scalar("SELECT count(*) FROM (SELECT seq, lag(seq) OVER (ORDER BY apply_order) AS p"
                       " FROM t_sink.sink) x WHERE p >= seq") == "0",
             f"{label}: applied in stream order")
    wt.check(wt.scalar("SELECT count(*) FROM t_sink.sink s JOIN t_ledger.ledger l"
                       " ON convert_from(s.payload, 'UTF8') = l.key") == str(total),
             f"{label}: every event carries its own key")
    wt.check(wt.scalar("SELECT last_seq FROM t_sink.stream_positions WHERE producer = 'ledger'")
             == str(total), f"{label}: the consumer's position is {total}")


verify(N, "after faults")
ls = wt.status(w.ep("lctl"))
ss = wt.status(w.ep("sctl"))
wt.check(ls and 0 < ls["stream.max_inflight"] <= WINDOW,
         f"the producer never had more than {WINDOW} unacknowledged ({ls and ls['stream.max_inflight']})")
wt.check(ss and ss["consumer.max_unacked"] <= WINDOW,
         f"the consumer never held more than {WINDOW} unacknowledged ({ss and ss['consumer.max_unacked']})")
wt.check("window exceeded" not in sink.log_text(), "no consumer incarnation saw the window exceeded")

# Offline catch-up: the consumer is away while M more events are produced.
rc = sink.stop()
wt.check(rc == 0, f"the consumer drains and exits 0 on SIGTERM (got {rc})")
more = [(f"m{i:07d}", "") for i in range(M)]
client.replies = {}
replies = client.push(more)
wt.check(len(replies) == M and all(r.status == 0 for r in replies.values()),
         f"{M} more events acknowledged NEW while the consumer is away")
wt.check(wt.scalar("SELECT count(*) FROM t_sink.sink") == str(N), "nothing applied while away")
sink = wt.Daemon("sinkd", sink_env, w.file("sinkd.log")).start()
got = wt.wait_for(lambda: wt.scalar("SELECT count(*) FROM t_sink.sink") == str(N + M), 180,
                  "catch-up")
wt.check(got, f"the returning consumer caught up on {M} events")
verify(N + M, "after catch-up")

# Postgres down: nothing is acknowledged; service resumes when it returns.
wt.pgdev("stop")
probe = wt.LedgerClient(w.ep("rpc"), resend_s=60)
probe.s.send(wt.LedgerClient.frame(1, "during-outage"))
wt.check(not probe.s.poll(3000), "with Postgres stopped the producer acknowledges nothing")
st = wt.status(w.ep("lctl"))
wt.check(st is not None and st["pg.up"] == 0, "the producer keeps answering status and reports pg.up=0")
try:
    urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/healthz", timeout=5)
    code = 200
except urllib.error.HTTPError as e:
    code = e.code
wt.check(code == 503, f"HTTP /healthz answers 503 while Postgres is down (got {code})")
wt.pgdev("start")
ok = probe.s.poll(30000)
if ok:
    r = wt.ledger_pb2.LedgerMessage()
    r.ParseFromString(probe.s.recv())
    ok = r.reply.status == 0
wt.check(ok, "the request waiting during the outage is committed and acknowledged NEW after it")
wt.check(wt.wait_for(lambda: wt.scalar("SELECT count(*) FROM t_sink.sink") == str(N + M + 1), 60,
                     "the outage event"), "its event reaches the consumer")
probe.s.close()

rc1, rc2 = led.stop(), sink.stop()
wt.check(rc1 == 0 and rc2 == 0, f"both daemons drain and exit 0 on SIGTERM ({rc1}, {rc2})")
for d in (led, sink):
    text = d.log_text()
    wt.check("AddressSanitizer" not in text and "runtime error:" not in text,
             f"{os.path.basename(d.prog)}: no sanitizer report")
w.cleanup()
wt.done()
