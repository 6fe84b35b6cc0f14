"""Shared helpers for the Python test drivers: the private Postgres cluster,
real daemon processes, a pipelined ledger client, status queries and checks.
Uses only Debian's python3-zmq and python3-protobuf."""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
sys.path.insert(0, os.path.join(BUILD, "gen", "py"))

import zmq  # noqa: E402
import ledger_pb2  # noqa: E402
import control_pb2  # noqa: E402
import stream_pb2  # noqa: E402

PGDEV = os.path.join(ROOT, "tools", "pgdev.sh")
_checks = {"passed": 0, "failed": 0}


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def check(cond, what):
    """Records one assertion; a failed one is printed and counted."""
    if cond:
        _checks["passed"] += 1
        log("ok  ", what)
    else:
        _checks["failed"] += 1
        log("FAIL", what)


def done():
    """Prints the closing line and exits non-zero if anything failed."""
    print(f"{_checks['passed']} passed, {_checks['failed']} failed", flush=True)
    sys.exit(1 if _checks["failed"] else 0)


def pg_env():
    out = subprocess.run(["bash", PGDEV, "env"], check=True, capture_output=True, text=True).stdout
    env = {}
    for part in out.replace("export ", "").split():
        k, v = part.split("=", 1)
        env[k] = v.strip("'")
    return env


def pgdev(*args):
    subprocess.run(["bash", PGDEV, *args], check=True, stdout=subprocess.DEVNULL)


def sql(query, user="postgres"):
    """Runs a query as the cluster superuser (read-only checks); returns rows."""
    env = dict(os.environ, **pg_env())
    out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-U", user, "-c", query],
                         env=env, check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def scalar(query):
    rows = sql(query)
    return rows[0][0] if rows else None


def free_ports(n):
    """n distinct TCP ports on 127.0.0.1 that are free now: every socket stays bound until
    all are chosen, so the kernel cannot hand out the same port twice."""
    socks = []
    try:
        for _ in range(n):
            so = socket.socket()
            socks.append(so)
            so.bind(("127.0.0.1", 0))
        return [so.getsockname()[1] for so in socks]
    finally:
        for so in socks:
            so.close()


def free_port():
    return free_ports(1)[0]


class Workdir:
    """A scratch directory for endpoints, keys and daemon logs."""

    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix=f"whistle-{name}-", dir="/tmp")

    def ep(self, name):
        return f"ipc://{self.path}/{name}"

    def file(self, name):
        return os.path.join(self.path, name)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


_started = []


@atexit.register
def _kill_leftovers():
    """A test that stops on an exception must not leave daemons running."""
    for d in _started:
        if d.p is not None and d.p.poll() is None:
            d.p.kill()


class Daemon:
    """A real daemon process with its environment; logs go to a file."""

    def __init__(self, prog, env, logfile):
        self.prog = os.path.join(BUILD, "tests", "bin", prog) if "/" not in prog else prog
        self.env = dict(os.environ, **pg_env(), **env)
        self.logfile = logfile
        self.p = None

    def start(self):
        with open(self.logfile, "a") as f:
            self.p = subprocess.Popen([self.prog], env=self.env, stdout=f, stderr=f)
        _started.append(self)
        return self

    def kill9(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait()

    def stop(self, timeout=30):
        """SIGTERM and wait for a clean exit; returns the exit code."""
        if not self.p or self.p.poll() is not None:
            return self.p.returncode if self.p else None
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def log_text(self):
        with open(self.logfile, errors="replace") as f:
            return f.read()


def status(endpoint, timeout=5.0, ctx=None, curve=None):
    """Asks a daemon's control endpoint for its counters; None on timeout."""
    r = status_reply(endpoint, timeout, ctx, curve)
    return None if r is None else {c.name: c.value for c in r.counters}


def settled(endpoints, timeout=1.0, curve=None):
    """The settled signal of proto/control.proto: the daemons' control
    endpoints in the order intake, referral, rating, escalation (any prefix of
    them); True when, in one pass, every input has reached the head its
    producer reported and every daemon's output watermark has reached the
    least watermark of its clock inputs. False if one does not answer."""
    heads = {}
    for ep in endpoints:
        r = status_reply(ep, timeout, curve=curve)
        if r is None:
            return False
        for i in r.inputs:
            if i.input in heads and i.position < heads[i.input]:
                return False
        clock = [i.watermark_us for i in r.inputs if i.clock]
        if clock and r.HasField("output") and r.output.watermark_us < min(clock):
            return False
        if r.HasField("output"):
            heads[r.output.stream] = r.output.head
    return True


def status_reply(endpoint, timeout=5.0, ctx=None, curve=None):
    """The daemon's StatusReply (proto/control.proto), or None on timeout."""
    ctx = ctx or zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    if curve:
        s.curve_serverkey, s.curve_publickey, s.curve_secretkey = curve
    s.connect(endpoint)
    m = control_pb2.ControlMessage(version=1)
    m.status_request.SetInParent()
    s.send(m.SerializeToString())
    try:
        if not s.poll(int(timeout * 1000)):
            return None
        r = control_pb2.ControlMessage()
        r.ParseFromString(s.recv())
        return r.status_reply
    finally:
        s.close()


def wait_for(pred, timeout, what, interval=0.1):
    """Polls an observable condition (a query, a status counter) until true."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            v = pred()
        except subprocess.CalledProcessError:
            v = None  # e.g. the table a daemon creates at start-up is not there yet
        if v:
            return v
        time.sleep(interval)
    log("timed out waiting for", what)
    return None


def wait_ready(endpoint, timeout=30, curve=None):
    return wait_for(lambda: status(endpoint, 1.0, curve=curve), timeout, f"status of {endpoint}")


class LedgerClient:
    """Pushes Put requests with many in flight; resends what is unanswered
    after `resend_s` (the daemon may have been killed), like a real client."""

    def __init__(self, endpoint, inflight=2000, resend_s=3.0, curve=None):
        self.endpoint = endpoint
        self.inflight = inflight
        self.resend_s = resend_s
        self.curve = curve
        self.ctx = zmq.Context.instance()
        self._connect()
        self.replies = {}

    def _connect(self):
        self.s = self.ctx.socket(zmq.DEALER)
        self.s.linger = 0
        self.s.sndhwm = 100000
        self.s.rcvhwm = 100000
        if self.curve:
            self.s.curve_serverkey, self.s.curve_publickey, self.s.curve_secretkey = self.curve
        self.s.connect(self.endpoint)

    @staticmethod
    def frame(req_id, key, addressee="", value=b"", event_us=0):
        m = ledger_pb2.LedgerMessage(version=1)
        m.put.req_id = req_id
        m.put.key = key
        m.put.addressee = addressee
        m.put.value = value
        m.put.event_us = event_us
        return m.SerializeToString()

    def push(self, items, on_progress=None, timeout=180):
        """items: list of (key, addressee). Returns {req_id: PutReply}; every
        item is resent until answered or timeout."""
        pending = {}
        todo = list(range(len(items)))
        todo.reverse()
        end = time.time() + timeout
        answered = 0
        while (todo or pending) and time.time() < end:
            while todo and len(pending) < self.inflight:
                i = todo.pop()
                key, addr = items[i]
                self.s.send(self.frame(i + 1, key, addr), copy=False)
                pending[i + 1] = time.time()
            if self.s.poll(100):
                while True:
                    try:
                        raw = self.s.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    r = ledger_pb2.LedgerMessage()
                    r.ParseFromString(raw)
                    rid = r.reply.req_id
                    if rid in pending:
                        del pending[rid]
                        self.replies[rid] = r.reply
                        answered += 1
                        if on_progress:
                            on_progress(answered)
            now = time.time()
            stale = [rid for rid, t in pending.items() if now - t > self.resend_s]
            if stale:
                # The daemon may have restarted: a fresh connection, and resend.
                self.s.close()
                self._connect()
                for rid in stale:
                    key, addr = items[rid - 1]
                    self.s.send(self.frame(rid, key, addr), copy=False)
                    pending[rid] = now
        return self.replies
