"""The group-commit request/reply server, through ledgerd: many requests in
flight are committed in far fewer transactions; a request that violates a
constraint gets an error reply while every good request of its batch is
committed; bad input is answered at once and changes nothing; a duplicate is
answered DUPLICATE; each reply follows the commit of its request."""
import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
from wt import ledger_pb2  # noqa: E402

def http_get(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def run(MODE):
    PORT = wt.free_port()
    wt.pgdev("start")
    wt.pgdev("reset", "s_ledger")
    w = wt.Workdir("server")
    led = wt.Daemon("ledgerd", {"WHISTLE_CURVE": "0", "WHISTLE_PG": "user=s_ledger",
                                "WHISTLE_SCHEMA": "s_ledger", "WHISTLE_LEDGER_RPC": w.ep("rpc"),
                                "WHISTLE_LEDGER_STREAM": w.ep("stream"), "WHISTLE_CONTROL": w.ep("ctl"),
                                "WHISTLE_LEDGER_BULK": MODE, "WHISTLE_HTTP": f"127.0.0.1:{PORT}"},
                    w.file("ledgerd.log")).start()
    wt.check(wt.wait_ready(w.ep("ctl")) is not None,
             f"ledgerd is up ({'bulk staging, failures bisected' if MODE == '1' else 'per-request staging, failures pinned'})")

    N = 20000
    cli = wt.LedgerClient(w.ep("rpc"), inflight=5000)
    items = [(f"g{i:06d}", "") for i in range(N)]
    for i in range(0, N, 997):
        items[i] = (f"poison{i}", "")
    poison = {i + 1 for i in range(0, N, 997)}
    replies = cli.push(items)
    wt.check(len(replies) == N, "every request is answered")
    errs = {rid for rid, r in replies.items() if r.status == ledger_pb2.PutReply.ERROR}
    news = {rid for rid, r in replies.items() if r.status == ledger_pb2.PutReply.NEW}
    wt.check(errs == poison, f"exactly the {len(poison)} poisoned requests get ERROR ({len(errs)})")
    wt.check(len(news) == N - len(poison), "every good request of the same batches is NEW")
    wt.check(all("no_poison" in replies[rid].reason for rid in errs), "the error reply names the cause")
    wt.check(wt.scalar("SELECT count(*) FROM s_ledger.ledger") == str(N - len(poison)),
             "exactly the good requests are committed")
    wt.check(wt.scalar("SELECT last_seq FROM s_ledger.stream_head") == str(N - len(poison)),
             "one event per committed request, none for the failed ones")
    st = wt.status(w.ep("ctl"))
    wt.check(0 < st["server.batches"] < N // 10,
             f"group commit: {N} requests in {st['server.batches']} transactions")

    # Bad input is answered at once and changes nothing.
    bad = [
        (b"\xff\x00garbage", "not a LedgerMessage"),
        (ledger_pb2.LedgerMessage(version=2).SerializeToString(), "unsupported version"),
        (ledger_pb2.LedgerMessage(version=1).SerializeToString(), "expected Put"),
    ]
    m = ledger_pb2.LedgerMessage(version=1)
    m.put.req_id = 5
    m.put.key = "k" * 201
    bad.append((m.SerializeToString(), "key must be"))
    m = ledger_pb2.LedgerMessage(version=1)
    m.put.req_id = 6
    m.put.key = "x'); DROP TABLE ledger; --"
    m.put.addressee = "a b"
    bad.append((m.SerializeToString(), "bad addressee"))
    before = wt.scalar("SELECT count(*) FROM s_ledger.ledger")
    for frame, why in bad:
        cli.s.send(frame)
        ok = cli.s.poll(3000)
        r = ledger_pb2.LedgerMessage()
        if ok:
            r.ParseFromString(cli.s.recv())
        wt.check(ok and r.reply.status == ledger_pb2.PutReply.BAD and why in r.reply.reason,
                 f"bad input answered BAD: {why!r} (got {r.reply.reason!r})")
    wt.check(wt.scalar("SELECT count(*) FROM s_ledger.ledger") == before, "bad input changed nothing")

    cli.replies = {}
    again = cli.push(items[1:101])
    wt.check(all(r.status == ledger_pb2.PutReply.DUPLICATE for r in again.values()),
             "resubmitting committed keys answers DUPLICATE")
    wt.check(wt.scalar("SELECT count(*) FROM s_ledger.ledger") == before, "and changes nothing")

    code, body = http_get(PORT, "/healthz")
    wt.check(code == 200 and body == "ok\n", "HTTP /healthz answers 200 while Postgres is up")
    code, body = http_get(PORT, "/metrics")
    wt.check(code == 200 and f'whistle_server_requests_total{{service="ledgerd"}} {st["server.requests"] + len(bad) + 100}' in body
             and "# TYPE whistle_pg_up gauge" in body, "HTTP /metrics serves the status counters")
    wt.check(http_get(PORT, "/nope")[0] == 404 and http_get(PORT, "/metrics", "POST")[0] == 405,
             "HTTP: unknown paths 404, other methods 405")
    rc = led.stop()

    wt.check(rc == 0, f"ledgerd drains and exits 0 ({rc})")
    text = led.log_text()
    wt.check("AddressSanitizer" not in text and "runtime error:" not in text
             and "LeakSanitizer" not in text, "no sanitizer report")
    w.cleanup()


for mode in ("1", "0"):  # bulk staging (failures bisected), per-request (failures pinned)
    run(mode)
wt.done()
