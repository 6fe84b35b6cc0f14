"""Postgres connections survive faults (docs/architecture.md), with real daemons under
load (ledgerd producing, sinkd consuming): the producer's write backend is
terminated; Postgres is stopped and started; the postmaster and the write
backend are frozen (SIGSTOP) for longer than the batch timeout, which the
daemon must notice on its own (no result in time), then thawed. Then a
conninfo with a host name, over TCP through a relay on 127.0.0.1: the name is
resolved off the loop, the sockets have TCP keepalives, and a frozen TCP path
is noticed by the batch timeout too; and a conninfo that cannot be parsed is
never logged. Each time, nothing acknowledged is lost
and nothing is duplicated: ledger rows, outbox events (one per row) and the
consumer's rows are checked in SQL."""
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
from wt import ledger_pb2, zmq  # noqa: E402

N = int(os.environ.get("WHISTLE_TEST_EVENTS", "20000"))
BATCH_TIMEOUT_MS = 2000
NOTICE_S = 30  # how long a fault may take to be noticed (the bound is 2 s)
PGDIR = os.environ.get("WHISTLE_PGDEV_DIR", os.path.join(wt.ROOT, "build", "pg"))

wt.pgdev("start")
wt.pgdev("reset", "pf_ledger", "pf_sink", "pf_host")
w = wt.Workdir("pgfaults")
dev = {"WHISTLE_CURVE": "0", "WHISTLE_PG_BATCH_TIMEOUT_MS": str(BATCH_TIMEOUT_MS),
       "WHISTLE_PG_WAIT_S": "10"}
led_env = dict(dev, WHISTLE_PG="user=pf_ledger connect_timeout=2", WHISTLE_SCHEMA="pf_ledger",
               WHISTLE_LEDGER_RPC=w.ep("rpc"), WHISTLE_LEDGER_STREAM=w.ep("stream"),
               WHISTLE_CONTROL=w.ep("lctl"), WHISTLE_STREAM_FULL_ACCESS="sink")
sink_env = dict(dev, WHISTLE_PG="user=pf_sink connect_timeout=2", WHISTLE_SCHEMA="pf_sink",
                WHISTLE_SINK_SOURCE=w.ep("stream"), WHISTLE_CONTROL=w.ep("sctl"))

# A connection string that cannot be parsed: the daemon exits 1, and its log
# names the problem without quoting the string (it holds a password here).
# (libpq's own message for this one quotes the whole string.)
bad = wt.Daemon("ledgerd", dict(led_env, WHISTLE_PG="postgresql://pf_ledger:hunter2@[::1/whistle"),
                w.file("ledgerd-bad.log")).start()
try:
    rc = bad.p.wait(30)
except wt.subprocess.TimeoutExpired:
    bad.kill9()
    rc = None
text = bad.log_text()
wt.check(rc == 2 and "cannot be parsed" in text and "hunter2" not in text,
         f"an unparsable conninfo is refused as a configuration error: exit 2 ({rc}), the"
         " password is not logged")

led = wt.Daemon("ledgerd", led_env, w.file("ledgerd.log")).start()
sink = wt.Daemon("sinkd", sink_env, w.file("sinkd.log")).start()
wt.check(wt.wait_ready(w.ep("lctl")) is not None, "producer answers status")
wt.check(wt.wait_ready(w.ep("sctl")) is not None, "consumer answers status")


def backend(user, app="write"):
    rows = wt.sql(f"SELECT pid FROM pg_stat_activity WHERE usename = '{user}'"
                  f" AND application_name = '{app}'")
    return int(rows[0][0]) if rows else None


def postmaster():
    with open(os.path.join(PGDIR, "data", "postmaster.pid")) as f:
        return int(f.readline())


def pg_down(ctl):
    st = wt.status(ctl, 1.0)
    return st is not None and st["pg.up"] == 0


class Probe:
    """One Put on its own connection, so that the daemon has work to do
    while a fault is on, whatever the load client is doing."""

    def __init__(self, endpoint, key):
        self.key = key
        self.s = zmq.Context.instance().socket(zmq.DEALER)
        self.s.linger = 0
        self.s.connect(endpoint)
        self.s.send(wt.LedgerClient.frame(1, key))

    def answer(self, timeout_s):
        ok = self.s.poll(int(timeout_s * 1000))
        r = ledger_pb2.LedgerMessage()
        if ok:
            r.ParseFromString(self.s.recv())
        self.s.close()
        return r.reply.status if ok else None


probes = []


def freeze_and_thaw(ctl, pids, what):
    """SIGSTOPs pids, waits (with a deadline) for the daemon to report
    Postgres down by itself, then SIGCONTs them."""
    t0 = time.time()
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        noticed = wt.wait_for(lambda: pg_down(ctl), NOTICE_S, f"the daemon to notice {what}")
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    wt.check(noticed, f"{what}: noticed by the batch timeout after {time.time() - t0:.1f} s"
             f" (bound {BATCH_TIMEOUT_MS} ms)")


faults = {}


def fault(answered):
    """Injects the faults at fixed points of progress (by acknowledged count)."""
    step = N // 4
    plan = [(1, "terminate"), (2, "stop postgres"), (3, "freeze")]
    for k, what in plan:
        if answered < k * step or k in faults:
            continue
        faults[k] = what
        wt.log(f"fault at {answered} acknowledged: {what}")
        if what == "terminate":
            pids = [backend("pf_ledger"), backend("pf_sink", "apply")]
            wt.check(all(pids), f"the write backends are found by application_name ({pids})")
            before = wt.status(w.ep("lctl"))["pg.reconnects"]
            wt.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE pid IN (%s)" % ",".join(str(p) for p in pids if p))
            wt.check(wt.wait_for(lambda: wt.status(w.ep("lctl"))["pg.reconnects"] > before
                                 and wt.status(w.ep("lctl"))["pg.up"] == 1, NOTICE_S,
                                 "the producer to reconnect"),
                     "terminated backend: the producer reconnects")
        elif what == "stop postgres":
            probes.append(Probe(w.ep("rpc"), "probe-stop"))
            wt.pgdev("stop")
            wt.check(wt.wait_for(lambda: pg_down(w.ep("lctl")), NOTICE_S, "pg.up=0"),
                     "stopped Postgres: the producer reports it down")
            wt.pgdev("start")
        else:
            pids = [postmaster(), backend("pf_ledger")]
            wt.check(all(pids), f"postmaster and write backend found ({pids})")
            probes.append(Probe(w.ep("rpc"), "probe-freeze"))
            freeze_and_thaw(w.ep("lctl"), [p for p in pids if p], "a frozen postmaster and backend")


items = [(f"f{i:06d}", "") for i in range(N)]
client = wt.LedgerClient(w.ep("rpc"), inflight=2000)
t0 = time.time()
replies = client.push(items, on_progress=fault)
wt.log(f"pushed {N} in {time.time() - t0:.1f} s")
wt.check(len(faults) == 3, "all three faults were injected during the run")
wt.check(len(replies) == N, f"every request was answered ({len(replies)}/{N})")
statuses = {r.status for r in replies.values()}
wt.check(statuses <= {0, 1}, f"answers are NEW or DUPLICATE only (got {sorted(statuses)})")
for p in probes:
    st = p.answer(60)
    wt.check(st == 0, f"the request sent during the fault ({p.key}) is acknowledged NEW ({st})")
TOTAL = N + len(probes)


def verify(schema, sink_schema, total, label):
    wt.check(wt.scalar(f"SELECT count(*) FROM {schema}.ledger") == str(total),
             f"{label}: every acknowledged key is in the ledger exactly once ({total})")
    wt.check(wt.scalar(f"SELECT count(*) = max(seq) AND min(seq) = 1 AND count(*) = {total}"
                       f" FROM {schema}.stream_outbox") == "t",
             f"{label}: the outbox is gapless, one event per row")
    wt.check(wt.scalar(f"SELECT count(DISTINCT o.payload) FROM {schema}.stream_outbox o"
                       f" JOIN {schema}.ledger l ON convert_from(o.payload, 'UTF8') = l.key")
             == str(total), f"{label}: each row's event carries its own key, none twice")
    if sink_schema:
        got = wt.wait_for(lambda: wt.scalar(f"SELECT count(*) FROM {sink_schema}.sink") == str(total),
                          120, "the consumer to apply every event")
        wt.check(got and wt.scalar(f"SELECT count(DISTINCT seq) = count(*) AND min(seq) = 1 AND"
                                   f" max(seq) = {total} FROM {sink_schema}.sink") == "t",
                 f"{label}: the consumer applied each of seq 1..{total} exactly once")


verify("pf_ledger", "pf_sink", TOTAL, "after the faults")
text = led.log_text()
wt.check('reason="no result for' in text, "the producer's log names the batch timeout as the reason")
st = wt.status(w.ep("lctl"))
wt.log(f"producer pg counters: reconnects={st['pg.reconnects']} indoubt={st['pg.indoubt']}"
       f" overdue={st['pg.indoubt_overdue']} retried={st['pg.retried']}")


# ---- a host name over TCP ---------------------------------------------------

class Relay:
    """TCP on 127.0.0.1 relayed to the cluster's Unix socket; freeze() stops
    carrying bytes (both ways, connections stay open), like a network path
    that silently drops everything; thaw() resumes."""

    def __init__(self, unix_path):
        self.unix_path = unix_path
        self.flowing = threading.Event()
        self.flowing.set()
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX)
            try:
                u.connect(self.unix_path)
            except OSError:
                c.close()
                continue
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                self.flowing.wait()
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def freeze(self):
        self.flowing.clear()

    def thaw(self):
        self.flowing.set()


def tcp_timers(port):
    """The timer kind of each established TCP socket connected to 127.0.0.1:port
    (from /proc/net/tcp: 2 is the keepalive timer, 0 none)."""
    out = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            rem, state, timer = parts[2], parts[3], parts[5]
            if rem == f"0100007F:{port:04X}" and state == "01":
                out.append(int(timer.split(":")[0], 16))
    return out


env = wt.pg_env()
relay = Relay(os.path.join(env["PGHOST"], f".s.PGSQL.{env['PGPORT']}"))
host_env = dict(dev, WHISTLE_PG=f"host=localhost port={relay.port} dbname={env['PGDATABASE']}"
                               " user=pf_host connect_timeout=2",
                WHISTLE_SCHEMA="pf_host", WHISTLE_LEDGER_RPC=w.ep("hrpc"),
                WHISTLE_LEDGER_STREAM=w.ep("hstream"), WHISTLE_CONTROL=w.ep("hctl"))
hled = wt.Daemon("ledgerd", host_env, w.file("ledgerd-host.log")).start()
wt.check(wt.wait_for(lambda: (wt.status(w.ep("hctl"), 1.0) or {}).get("pg.up") == 1, 30,
                     "the host-name producer to connect"),
         "a producer with host=localhost connects over TCP")
wt.check('msg="postgres host resolved" pg=write host=localhost addresses=127.0.0.1' in hled.log_text(),
         "it resolved the host name off the loop and connected to the address")
# A socket with data not yet acknowledged shows the retransmit timer (1)
# instead: wait for a moment when both connections are idle.
idle = wt.wait_for(lambda: (lambda t: len(t) >= 2 and all(x == 2 for x in t))(tcp_timers(relay.port)),
                   20, "both connections idle")
timers = tcp_timers(relay.port)
wt.check(idle, f"its TCP connections have the keepalive timer running ({timers})")
M = 500
hcli = wt.LedgerClient(w.ep("hrpc"), inflight=500)
hreplies = hcli.push([(f"h{i:04d}", "") for i in range(M)])
wt.check(len(hreplies) == M and all(r.status == 0 for r in hreplies.values()),
         f"{M} requests acknowledged NEW over TCP")

relay.freeze()
probe = Probe(w.ep("hrpc"), "probe-tcp")
noticed = wt.wait_for(lambda: pg_down(w.ep("hctl")), NOTICE_S, "a frozen TCP path to be noticed")
relay.thaw()
wt.check(noticed, "a frozen TCP path is noticed by the batch timeout")
st = probe.answer(60)
wt.check(st == 0, f"the request sent while the path was frozen is acknowledged NEW ({st})")
verify("pf_host", None, M + 1, "over TCP")

rcs = [d.stop() for d in (led, sink, hled)]
wt.check(rcs == [0, 0, 0], f"the daemons drain and exit 0 on SIGTERM ({rcs})")
for d in (led, sink, hled):
    text = d.log_text()
    wt.check("AddressSanitizer" not in text and "runtime error:" not in text
             and "LeakSanitizer" not in text, f"{os.path.basename(d.logfile)}: no sanitizer report")
w.cleanup()
wt.done()
