"""The stream's window and its poison events, made to happen on purpose with
the real test producer (ledgerd) and consumer (sinkd):
- credit across a re-subscribe while an apply is in flight: the consumer's
  apply of a full window is held by a lock on its position row, the producer is
  kill -9'd and restarted, so the consumer re-subscribes with that apply
  still uncommitted. The producer must not send a second window on top of
  the first (before, it resumed after the uncommitted batch with fresh credit,
  and the consumer held 2 windows); then all events are applied once.
- a poison event: a trigger makes one event's insert fail. The consumer finds
  that event by applying fewer at a time, applies everything before it, logs
  it once with its seq, kind and error, counts it, shows it in status
  (poison_seq) and retries it with back-off; when the fault is gone it
  applies it and the rest, and status clears."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402

WINDOW = 500
N = 3 * WINDOW

wt.pgdev("start")
wt.pgdev("reset", "t_ledger", "t_sink")
w = wt.Workdir("credit")
dev = {"WHISTLE_CURVE": "0", "WHISTLE_LOG_LEVEL": "info"}
led_env = dict(dev, WHISTLE_PG="user=t_ledger", WHISTLE_LEDGER_RPC=w.ep("rpc"),
               WHISTLE_LEDGER_STREAM=w.ep("stream"), WHISTLE_CONTROL=w.ep("lctl"),
               WHISTLE_STREAM_FULL_ACCESS="sink")
sink_env = dict(dev, WHISTLE_PG="user=t_sink", WHISTLE_SINK_SOURCE=w.ep("stream"),
                WHISTLE_CONTROL=w.ep("sctl"), WHISTLE_SINK_WINDOW=str(WINDOW))
led = wt.Daemon("ledgerd", led_env, w.file("ledgerd.log")).start()
sink = wt.Daemon("sinkd", sink_env, w.file("sinkd.log")).start()
wt.check(wt.wait_ready(w.ep("lctl")) is not None and wt.wait_ready(w.ep("sctl")) is not None,
         "producer and consumer answer status")


def sink_status():
    return wt.status(w.ep("sctl")) or {}


def applied():
    return int(wt.scalar("SELECT count(*) FROM t_sink.sink"))


# ---- credit across a re-subscribe with an apply in flight ------------------------
# The consumer is stopped while the events are produced, and its position is
# locked before it comes back: it catches up, and its first apply (as many
# events as the first message carried) waits for the lock.
wt.check(wt.wait_for(lambda: wt.scalar("SELECT to_regclass('t_sink.sink') IS NOT NULL") == "t",
                     30, "the consumer's table"), "the consumer created its table")
wt.check(sink.stop() == 0, "the consumer stops")
client = wt.LedgerClient(w.ep("rpc"), inflight=2000)
replies = client.push([(f"c{i:06d}", "") for i in range(N)])
wt.check(len(replies) == N, f"{N} events committed by the producer")
# The lock is taken by a psql session that stays open until we end it.
locker = subprocess.Popen(["psql", "-X", "-q", "-At", "-U", "postgres"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ, **wt.pg_env()))
# It locks the consumer's position row: every apply transaction moves it first.
wt.sql("INSERT INTO t_sink.stream_positions (producer, last_seq) VALUES ('ledger', 0)"
       " ON CONFLICT DO NOTHING")
locker.stdin.write("BEGIN; SELECT 1 FROM t_sink.stream_positions WHERE producer = 'ledger'"
                   " FOR UPDATE;\nSELECT 'locked';\n")
locker.stdin.flush()
lines = [locker.stdout.readline().strip() for _ in range(2)]
wt.check(lines[-1] == "locked", "a session holds the consumer's position locked")
sink = wt.Daemon("sinkd", sink_env, w.file("sinkd.log")).start()
held = wt.wait_for(lambda: wt.scalar(
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
    " WHERE NOT l.granted AND a.usename = 't_sink'") != "0", 30,
    "the consumer's apply to wait for the lock")
full = wt.wait_for(lambda: sink_status().get("consumer.received") == WINDOW, 30,
                   "the consumer to receive its window")
st = sink_status()
wt.check(held and full, f"the consumer holds its window ({st.get('consumer.received')} events),"
         " part of it in an apply that waits for the lock")

led.kill9()
led = wt.Daemon("ledgerd", led_env, w.file("ledgerd.log")).start()
wt.check(wt.wait_ready(w.ep("lctl")) is not None, "the producer is back")
# The consumer notices the new producer (no session), re-subscribes, and the
# producer sends up to a window from the position the consumer gave.
resub = wt.wait_for(lambda: sink_status().get("consumer.resubscribes", 0) >= 1, 30,
                    "the consumer to re-subscribe")
sent = wt.wait_for(lambda: (wt.status(w.ep("lctl")) or {}).get("stream.sent", 0) >= WINDOW, 30,
                   "the new producer to use the window it was given")
got = wt.wait_for(lambda: sink_status().get("consumer.received", 0)
                  + sink_status().get("consumer.duplicates", 0) >= 2 * WINDOW, 30,
                  "the consumer to receive what the producer sent")
st, ls = sink_status(), wt.status(w.ep("lctl")) or {}
wt.check(resub and sent and got, "re-subscribed with the apply in flight, and sent a window")
wt.log(f"consumer: received {st.get('consumer.received')}, skipped as in flight"
       f" {st.get('consumer.duplicates')}, max unacknowledged {st.get('consumer.max_unacked')};"
       f" producer sent {ls.get('stream.sent')}, max in flight {ls.get('stream.max_inflight')}")
wt.check(st.get("consumer.max_unacked", 10 ** 9) <= WINDOW,
         f"the consumer never holds more than its window of {WINDOW} unacknowledged"
         f" ({st.get('consumer.max_unacked')}) across the re-subscribe")
wt.check(ls.get("stream.max_inflight", 10 ** 9) <= WINDOW,
         f"the producer never has more than {WINDOW} in flight ({ls.get('stream.max_inflight')})")

locker.stdin.write("COMMIT;\n\\q\n")
locker.stdin.flush()
locker.wait(30)
wt.check(wt.wait_for(lambda: applied() == N, 60, "every event applied"),
         f"with the lock gone all {N} events are applied")
wt.check(wt.scalar("SELECT count(DISTINCT seq) = count(*) AND min(seq) = 1 AND max(seq) = "
                   f"{N} FROM t_sink.sink") == "t", "each event once, none missing")
wt.check(sink_status().get("consumer.max_unacked", 10 ** 9) <= WINDOW,
         "the window held to the end")

# ---- a poison event ------------------------------------------------------------
wt.sql(r"""
CREATE FUNCTION t_sink.fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF convert_from(NEW.payload, 'UTF8') = 'toxic' THEN
    RAISE EXCEPTION 'injected fault: this event cannot be stored';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER fault BEFORE INSERT ON t_sink.sink FOR EACH ROW EXECUTE FUNCTION t_sink.fault();
""")
items = [(f"p{i:05d}", "") for i in range(300)] + [("toxic", "")] + \
        [(f"q{i:05d}", "") for i in range(300)]
client.replies = {}
replies = client.push(items)
wt.check(len(replies) == len(items), "601 more events committed by the producer")
poison_seq = int(wt.scalar("SELECT seq FROM t_ledger.stream_outbox"
                           " WHERE convert_from(payload, 'UTF8') = 'toxic'"))
found = wt.wait_for(lambda: sink_status().get("consumer.poison_seq") == poison_seq
                    and sink_status().get("consumer.poison_tries", 0) >= 3, 60,
                    "the consumer to single out the poison event and retry it")
st = sink_status()
wt.check(found, f"status shows the poison event's seq ({st.get('consumer.poison_seq')}) and its"
         f" failed attempts ({st.get('consumer.poison_tries')})")
wt.check(applied() == poison_seq - 1 and st.get("consumer.position") == poison_seq - 1,
         f"everything before it is applied ({applied()} events, position"
         f" {st.get('consumer.position')}), nothing after it")
text = sink.log_text()
lines = [ln for ln in text.splitlines() if "event cannot be applied" in ln]
wt.check(len(lines) == 1 and f"seq={poison_seq}" in lines[0] and "kind=ledger.put" in lines[0]
         and "injected fault" in lines[0],
         "it is logged once, with its seq, kind and the error, however often it is retried")
wt.check(st.get("consumer.poisoned") == 1, "the poisoned counter counts it once")
wt.sql("DROP TRIGGER fault ON t_sink.sink")
before_fewer = sink.log_text().count("retrying fewer")
total = N + len(items)
wt.check(wt.wait_for(lambda: applied() == total, 90, "the poison event and the rest"),
         "once the fault is gone the event and everything after it are applied")
st = sink_status()
wt.check(st.get("consumer.poison_seq") == 0, "status no longer shows a poison event")
wt.check("event applied after failing" in sink.log_text(), "its recovery is logged")

# ---- a transient error is not a poison event ------------------------------------
# A serialization failure (SQLSTATE 40001) for the next three attempts, whatever
# the events: the consumer retries the same apply, without narrowing it down.
wt.sql(r"""
CREATE SEQUENCE t_sink.attempts;
ALTER SEQUENCE t_sink.attempts OWNER TO t_sink;
CREATE FUNCTION t_sink.busy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('t_sink.attempts') <= 3 THEN
    RAISE EXCEPTION 'injected: could not serialize access' USING ERRCODE = '40001';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER busy BEFORE INSERT ON t_sink.sink FOR EACH STATEMENT EXECUTE FUNCTION t_sink.busy();
""")
before = sink_status()
more = [(f"r{i:05d}", "") for i in range(200)]
client.replies = {}
wt.check(len(client.push(more)) == len(more), "200 more events committed by the producer")
total += len(more)
wt.check(wt.wait_for(lambda: applied() == total, 60, "the events after the transient errors"),
         "after three serialization failures every event is applied")
st = sink_status()
wt.check(st.get("consumer.poisoned") == before.get("consumer.poisoned") and
         st.get("consumer.errors", 0) - before.get("consumer.errors", 0) == 3,
         f"three failed attempts, none taken for a poison event ({st.get('consumer.errors', 0) - before.get('consumer.errors', 0)} errors)")
wt.check("cannot apply events for now; retrying them" in sink.log_text() and
         sink.log_text().count("retrying fewer") == before_fewer,
         "they are logged as transient, and the apply was not narrowed down")

rc1, rc2 = led.stop(), sink.stop()
wt.check(rc1 == 0 and rc2 == 0, f"both daemons drain and exit 0 on SIGTERM ({rc1}, {rc2})")
for d in (led, sink):
    t = d.log_text()
    wt.check("AddressSanitizer" not in t and "runtime error:" not in t,
             f"{os.path.basename(d.prog)}: no sanitizer report")
w.cleanup()
wt.done()
