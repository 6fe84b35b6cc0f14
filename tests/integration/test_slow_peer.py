"""A client that stops reading cannot hold up the others, through ledgerd:
one frozen client floods requests and never reads a reply, until its pipe
and then its send queue on the server are full; a healthy client's requests
are all answered meanwhile; what no longer fits the frozen client's queue is
dropped and counted (zmq.dropped_full in status and /metrics); the queue
stays within its cap and the daemon's memory within a bound; the queue is
freed once the frozen client goes away."""
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
from wt import ledger_pb2, zmq  # noqa: E402

HWM = 100          # the daemon's per-pipe high-water mark (WHISTLE_ZMQ_HWM)
QUEUE_MSGS = 1000  # messages queued per peer beyond that (WHISTLE_ZMQ_QUEUE_MSGS)
FLOOD = 30000      # requests the frozen client sends per burst, far beyond both
N = 1000           # the healthy client's requests


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def flood(sock, n):
    """Requests answered at once (bad input), so no database work is needed."""
    frame = ledger_pb2.LedgerMessage(version=2).SerializeToString()
    for _ in range(n):
        sock.send(frame)


def st_value(name):
    st = wt.status(w.ep("ctl"))
    return st.get(name) if st else None


wt.pgdev("start")
wt.pgdev("reset", "q_ledger")
w = wt.Workdir("slowpeer")
PORT = wt.free_port()
led = wt.Daemon("ledgerd", {"WHISTLE_CURVE": "0", "WHISTLE_PG": "user=q_ledger",
                            "WHISTLE_SCHEMA": "q_ledger", "WHISTLE_LEDGER_RPC": w.ep("rpc"),
                            "WHISTLE_LEDGER_STREAM": w.ep("stream"), "WHISTLE_CONTROL": w.ep("ctl"),
                            "WHISTLE_HTTP": f"127.0.0.1:{PORT}", "WHISTLE_ZMQ_HWM": str(HWM),
                            "WHISTLE_ZMQ_QUEUE_MSGS": str(QUEUE_MSGS),
                            # Under ASan, freed memory waits in a quarantine that
                            # would count in VmRSS: keep it small.
                            "ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                                   "quarantine_size_mb=8"]))},
                w.file("ledgerd.log")).start()
wt.check(wt.wait_ready(w.ep("ctl")) is not None, "ledgerd is up")
rss0 = rss_kib(led.p.pid)
base = wt.status(w.ep("ctl"))["server.requests"]

ctx = zmq.Context.instance()
frozen = ctx.socket(zmq.DEALER)
frozen.linger = 0
frozen.rcvhwm = 1
frozen.sndhwm = FLOOD
frozen.connect(w.ep("rpc"))
# Bursts until replies are dropped: how many fit in the pipe and the socket
# buffers on the way depends on the system, not on the daemon.
sent = 0
taken = full = False
while sent < 30 * FLOOD:
    flood(frozen, FLOOD)
    sent += FLOOD
    taken = wt.wait_for(lambda: st_value("server.requests") >= base + sent, 120,
                        "the frozen client's requests") is not None
    full = (st_value("zmq.dropped_full") or 0) > 0
    if not taken or full:
        break
wt.check(taken, f"ledgerd took all {sent} requests of the frozen client, which reads none of the replies")
wt.check(full, "the frozen client's queue filled up: replies beyond it are dropped and counted")
st = wt.status(w.ep("ctl"))
wt.check(st.get("zmq.queue_peers", 0) >= 1 and 0 < st.get("zmq.queue_msgs", 0) <= QUEUE_MSGS,
         f"its queue holds at most {QUEUE_MSGS} messages "
         f"({st.get('zmq.queue_msgs')} queued for {st.get('zmq.queue_peers')} peer(s))")

# The healthy client, while the frozen one holds a full queue.
healthy = ctx.socket(zmq.DEALER)
healthy.linger = 0
healthy.connect(w.ep("rpc"))
for i in range(N):
    healthy.send(wt.LedgerClient.frame(i + 1, f"h{i:05d}"))
answered = {}
end = time.time() + 60
while len(answered) < N and time.time() < end:
    if healthy.poll(200):
        r = ledger_pb2.LedgerMessage()
        r.ParseFromString(healthy.recv())
        answered[r.reply.req_id] = r.reply.status
wt.check(len(answered) == N and all(s == ledger_pb2.PutReply.NEW for s in answered.values()),
         f"the healthy client's {N} requests are all answered NEW ({len(answered)} answered)")
st = wt.status(w.ep("ctl"))
wt.check(st.get("zmq.queue_peers", 0) >= 1,
         "meanwhile the frozen client still had its queue on the server")

# More of the same: the queue stays capped, drops grow, memory stays bounded.
dropped = st.get("zmq.dropped_full", 0)
base = st["server.requests"]
flood(frozen, FLOOD)
wt.check(wt.wait_for(lambda: st_value("server.requests") >= base + FLOOD, 120,
                     "the second burst") is not None, "a second burst is taken too")
st = wt.status(w.ep("ctl"))
now_dropped = st.get("zmq.dropped_full", 0)
wt.check(now_dropped >= dropped + FLOOD and st.get("zmq.queue_msgs", -1) <= QUEUE_MSGS,
         f"every reply of the second burst is dropped ({now_dropped - dropped}), "
         f"the queue still holds at most {QUEUE_MSGS}")
rss1 = rss_kib(led.p.pid)
wt.check(rss1 - rss0 < 64 * 1024, f"ledgerd's memory stays bounded (VmRSS {rss0} -> {rss1} KiB)")
with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics", timeout=5) as resp:
    metrics = resp.read().decode()
wt.check(f'whistle_zmq_dropped_full_total{{service="ledgerd"}} {now_dropped}' in metrics,
         "the drop counter is in /metrics")

# The frozen client goes away: its queue is freed.
frozen.close()
wt.check(wt.wait_for(lambda: st_value("zmq.queue_peers") == 0 and st_value("zmq.queue_msgs") == 0,
                     30, "the queue to be freed") is not None,
         "once the frozen client is gone its queue is freed")
healthy.close()
rc = led.stop()
wt.check(rc == 0, f"ledgerd drains and exits 0 ({rc})")
text = led.log_text()
wt.check("AddressSanitizer" not in text and "runtime error:" not in text
         and "LeakSanitizer" not in text, "no sanitizer report")
w.cleanup()
wt.done()
