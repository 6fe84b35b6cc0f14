"""whistle-intake with real processes, real sockets and a real Postgres, its
stream recorded by sinkd subscribed as "referral":
- R-I1 durability: 20,000 varied tickets pushed with 2,000 in flight while
  intake is kill -9'd and restarted twice at fixed progress points; every
  ticket acknowledged is in intake.tickets exactly once and on the stream
  exactly once, nothing else is on the stream, and resubmitting all of them is
  DUPLICATE with the same ticket ids and changes nothing;
- with Postgres stopped nothing is ACCEPTED (no answer, or UNAVAILABLE); when
  it returns the waiting tickets are ACCEPTED and new ones too;
- R-I8 hostile input on one connection: garbage, a wrong envelope, oversized
  and over-long contents, invalid UTF-8 in every text field, NULs, received
  times in 1970 and 2100, missing fields are REJECTED with a reason; every good
  ticket sent alongside is ACCEPTED; SQL metacharacters are stored byte for byte;
- R-I6: the caller's phone and name appear in no table outside intake's schema
  (sinkd's table included) and in no stream event, which carries the pseudonym
  and the masked phone instead.
Any sanitizer report in a daemon log fails the test."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
from wt import stream_pb2  # noqa: E402

N = int(os.environ.get("WHISTLE_TEST_TICKETS", "20000"))
INFLIGHT = 2000
KILL_AT = (N * 3 // 10, N * 13 // 20)  # answered counts at which intake is kill -9'd
MAX_MSG = 4 * 1024 * 1024

wt.pgdev("start")
wt.pgdev("reset", "intake", "i_sink")
w = wt.Workdir("intake")
env = ic.intake_env(w, WHISTLE_MAX_MSG_BYTES=str(MAX_MSG))
logs = [w.file("intake.log"), w.file("sinkd.log")]
intake, ok = ic.start_intake(w, env)
wt.check(ok, "intake starts, answers status and connects to Postgres")
sink, ok = ic.start_sink(w)
wt.check(ok, "sinkd (subscribed as referral) answers status")

now_us = int(time.time() * 1e6)
BASE = now_us - 5 * ic.DAY_US  # received times: the last few days (wall clock mode)

# ---- R-I1: 20,000 tickets through two kill -9s -------------------------------
maker = ic.TicketMaker(seed=12345)
tickets = {i + 1: maker.ticket(f"K{i + 1:06d}", BASE + i * 10000) for i in range(N)}
frames = {rid: ic.submit(rid, **ic.ticket_fields(t)) for rid, t in tickets.items()}
kills = []


def fault(answered):
    global intake
    for k, point in enumerate(KILL_AT):
        if answered >= point and len(kills) == k:
            wt.log(f"kill -9 intake at {answered} answered")
            intake.kill9()
            intake, up = ic.start_intake(w, env)
            kills.append((answered, up))
    if answered % 5000 == 0:
        wt.log(f"{answered} answered")


cli = ic.HotlineClient(env["WHISTLE_INTAKE_HOTLINE"])
t0 = time.time()
replies = cli.push(frames, inflight=INFLIGHT, resend_s=3.0, timeout=150, on_progress=fault)
wt.log(f"pushed {N} tickets in {time.time() - t0:.1f} s")
wt.check(len(kills) == 2 and all(up for _, up in kills),
         f"R-I1: intake was kill -9'd and restarted twice at fixed progress points ({kills})")
wt.check(len(replies) == N, f"R-I1: every ticket was answered in the end ({len(replies)}/{N})")
by_status = {}
for r in replies.values():
    by_status[ic.STATUS_NAME[r.status]] = by_status.get(ic.STATUS_NAME[r.status], 0) + 1
wt.log(f"answers: {by_status}")
wt.check(set(by_status) <= {"ACCEPTED", "DUPLICATE"},
         f"R-I1: answers are ACCEPTED, or DUPLICATE for a resend of a committed ticket ({by_status})")
wt.check(by_status.get("DUPLICATE", 0) <= 2 * INFLIGHT,
         "R-I1: DUPLICATE only for tickets in flight at a kill")
accepted = {tickets[rid]["ticket_no"]: r.ticket_id for rid, r in replies.items()
            if r.status == ic.ACCEPTED}
answered_ids = {tickets[rid]["ticket_no"]: r.ticket_id for rid, r in replies.items()}

rows = {no: int(i) for no, i in wt.sql("SELECT ticket_no, id FROM intake.tickets"
                                       " WHERE ticket_no LIKE 'K%'")}
wt.check(wt.scalar("SELECT count(*) = count(DISTINCT ticket_no) FROM intake.tickets") == "t",
         "R-I1: no ticket number is in intake.tickets twice")
wt.check(all(rows.get(no) == tid for no, tid in accepted.items()),
         f"R-I1: each of the {len(accepted)} ACCEPTED tickets is in intake.tickets with the id"
         " its reply gave")
wt.check(len(rows) == N and all(rows.get(no) == tid for no, tid in answered_ids.items()),
         f"R-I1: all {N} answered tickets are stored once, ids as answered ({len(rows)} rows)")
wt.check(wt.scalar("SELECT count(*) FROM intake.tickets t LEFT JOIN intake.callers c"
                   " ON c.ticket_id = t.id WHERE c.ticket_id IS NULL") == "0",
         "R-I1: every ticket has its callers row (committed together)")
wt.check(wt.scalar("SELECT count(*) = max(seq) AND min(seq) = 1 FROM intake.stream_outbox") == "t",
         "R-I1: intake's outbox is gapless")

wt.check(ic.wait_sink_caught_up(), "the stream consumer caught up with intake's outbox")
events = ic.sink_events()
per_ticket, ids_on_stream = {}, {}
for seq, ev_us, kind, addr, payload in events:
    if kind == "ticket.accepted":
        e = ic.decode(kind, payload)
        per_ticket[e.ticket_no] = per_ticket.get(e.ticket_no, 0) + 1
        ids_on_stream[e.ticket_no] = e.ticket_id
wt.check(all(per_ticket.get(no) == 1 for no in accepted),
         f"R-I1: every ACCEPTED ticket is on the stream exactly once ({len(accepted)} tickets)")
wt.check(all(per_ticket.get(no) == 1 for no in rows),
         "R-I1: every stored ticket is on the stream exactly once")
wt.check(set(per_ticket) <= set(rows), "R-I1: no ticket.accepted event for a ticket not stored")
wt.check(all(ids_on_stream[no] == rows[no] for no in rows),
         "R-I1: each event carries its ticket's id")
wt.check(all(a == ("*" if k == "WATERMARK" else "") for _, _, k, a, _ in events),
         "intake's events are internal (addressee ''), its watermarks broadcast ('*')")
wt.check(wt.scalar("SELECT count(DISTINCT seq) = count(*) AND count(*) = max(seq) AND max(seq) <="
                   " (SELECT last_seq FROM intake.stream_head) FROM i_sink.sink") == "t",
         "the consumer holds each event of the outbox once")

data0, rows0 = ic.data_events(), wt.scalar("SELECT count(*) FROM intake.tickets")
cli.close()
cli = ic.HotlineClient(env["WHISTLE_INTAKE_HOTLINE"])
again = cli.push(frames, inflight=INFLIGHT, resend_s=10.0, timeout=120)
wt.check(len(again) == N and all(r.status == ic.DUPLICATE for r in again.values()),
         f"R-I1: resubmitting all {N} tickets is DUPLICATE for every one")
wt.check(all(again[rid].ticket_id == answered_ids[t["ticket_no"]] for rid, t in tickets.items()
             if rid in again), "R-I1: each DUPLICATE carries the original ticket id")
wt.check(wt.scalar("SELECT count(*) FROM intake.tickets") == rows0 and ic.data_events() == data0,
         f"R-I1: and changes nothing: rows {rows0}, stream events {data0} (watermarks aside)"
         " unchanged")

# ---- Postgres stopped: never ACCEPTED; recovers when it returns ----------------
OUT = 20
out_t = {9000 + i: {"ticket_no": f"PGDOWN-{i}", "received_us": now_us - 3600 * 10 ** 6 + i,
                    "request_type": "COMPLAINT", "address": "阳光花园小区5栋",
                    "content": "楼道堆物，消防通道被占", "caller_phone": "13700000000"}
         for i in range(OUT)}
out_f = {rid: ic.submit(rid, **t) for rid, t in out_t.items()}
wt.pgdev("stop")
wt.log("Postgres stopped")
for rid in sorted(out_f):
    cli.send(out_f[rid])
during = cli.collect(out_f, 5.0)
wt.check(all(r.status == ic.UNAVAILABLE for r in during.values()),
         f"with Postgres stopped intake answers nothing or UNAVAILABLE, never ACCEPTED"
         f" ({len(during)} answers: {sorted({ic.STATUS_NAME[r.status] for r in during.values()})})")
st = wt.status(env["WHISTLE_CONTROL"], 5.0)
wt.check(st is not None and st.get("pg.up") == 0, "intake keeps answering status and reports pg.up=0")
wt.pgdev("start")
wt.log("Postgres started")
after = {rid: r for rid, r in cli.collect([r for r in out_f if r not in during], 60).items()}
resend = [rid for rid in out_f if rid not in after or after[rid].status == ic.UNAVAILABLE]
if resend:  # answered UNAVAILABLE during the outage: the hotline sends them again
    more = cli.push({rid: out_f[rid] for rid in resend}, resend_s=10.0, timeout=60)
    after.update(more)
wt.check(len(after) == OUT and all(r.status == ic.ACCEPTED for r in after.values()),
         f"after Postgres returns, the {OUT} tickets that waited are ACCEPTED"
         f" ({sorted({ic.STATUS_NAME[r.status] for r in after.values()})})")
r = cli.ask(ic.submit(9100, ticket_no="PGUP-1", received_us=now_us - 60 * 10 ** 6,
                      request_type="REPORT", address="翠湖苑3栋", content="私搭乱建，顶楼加盖"), 9100)
wt.check(r is not None and r.status == ic.ACCEPTED, "a new ticket is ACCEPTED after the outage")
wt.check(wt.scalar("SELECT count(*) FROM intake.tickets WHERE ticket_no LIKE 'PGDOWN-%'"
                   " OR ticket_no = 'PGUP-1'") == str(OUT + 1), "and all of them are stored once")

# ---- R-I8: hostile input on one connection ----------------------------------------
hc = ic.HotlineClient(env["WHISTLE_INTAKE_HOTLINE"])
good, bad, unaddressed = {}, {}, 0   # rid -> (what, frame[, expected reason word])
rid = 20000


def nxt():
    global rid
    rid += 1
    return rid


def good_ticket(tag, **over):
    t = {"ticket_no": f"GOOD-{tag}", "received_us": now_us - 7200 * 10 ** 6,
         "request_type": "COMPLAINT", "address": "锦绣华庭小区2栋", "content": "电梯故障，困人",
         "caller_phone": "13600001111", "caller_name": "赵六"}
    t.update(over)
    i = nxt()
    good[i] = (f"good ticket {tag}", ic.submit(i, **t))
    return t


def bad_ticket(what, word, frame_fn, **over):
    t = {"ticket_no": f"BAD-{len(bad)}", "received_us": now_us - 7200 * 10 ** 6,
         "request_type": "HELP", "address": "光明小区1栋", "content": "单元门损坏"}
    t.update(over)
    i = nxt()
    bad[i] = (what, frame_fn(i, t), word)


def as_raw(i, t):
    return ic.raw_submit(i, {k: v.encode() if isinstance(v, str) else v for k, v in t.items()})


SQL_META = {
    "ticket_no": "SQL--x__1",
    "hotline_category": "1101' OR '1'='1",
    "caller_phone": "+86-138--0013-8000",
    "caller_name": "O'Brien\"; DROP TABLE intake.tickets; --",
    "compound_code": "C0001'); DELETE FROM intake.tickets; --",
    "district": "D01\\'; $1 $$ E'\\x00' %s",
    "address": "幸福里小区'); TRUNCATE intake.callers; -- \\ % _ $$ ;",
    "content": "噪音扰民 '; DROP TABLE tickets; --\t\\x27 $1 %% \"quoted\" /* c */ 1=1 \\",
}
stream_subscribe = stream_pb2.StreamMessage(version=1)
stream_subscribe.subscribe.consumer = "referral"
stream_subscribe.subscribe.window = 10

good_ticket(1)
hc.send(bytes(range(256)) * 3)   # garbage
unaddressed += 1
good_ticket(2)
hc.send(stream_subscribe.SerializeToString())  # another interface's envelope
unaddressed += 1
hc.send(b"")                                   # an empty frame
unaddressed += 1
bad_ticket("a 1 MiB content", "content", lambda i, t: ic.submit(i, **t), content="举" * ((1 << 20) // 3))
bad_ticket("a 1 MiB ASCII content", "content", lambda i, t: ic.submit(i, **t), content="a" * (1 << 20))
good_ticket(3)
bad_ticket("a content of 4,001 characters", "content", lambda i, t: ic.submit(i, **t),
           content="楼" * 4001)
good_ticket("4000", content="楼" * 3996 + "电梯故障")   # exactly 4,000 characters
bad_ticket("an empty content", "content", lambda i, t: ic.submit(i, **t), content="")
for f in ic.TEXT_FIELDS:
    bad_ticket(f"invalid UTF-8 in {f}", "UTF-8", as_raw, **{f: b"ok\xc3\x28\xff"})
    bad_ticket(f"a NUL in {f}", "", as_raw, **{f: b"ab\x00cd"})
for what, f, v in [("an overlong NUL (C0 80)", "content", b"a\xc0\x80b"),
                   ("a UTF-16 surrogate (ED A0 80)", "caller_name", b"\xed\xa0\x80"),
                   ("a code point above U+10FFFF", "address", "幸福里".encode() + b"\xf4\x90\x80\x80"),
                   ("a truncated sequence at the end", "content", "电梯".encode() + b"\xe6\x97")]:
    bad_ticket(f"{what} in {f}", "UTF-8", as_raw, **{f: v})
good_ticket(4)
bad_ticket("received in 1970", "received_us", lambda i, t: ic.submit(i, **t),
           received_us=86400 * 10 ** 6)
bad_ticket("received in 2100", "received_us", lambda i, t: ic.submit(i, **t),
           received_us=4102444800 * 10 ** 6)
bad_ticket("no received time", "received_us", lambda i, t: ic.submit(i, **t), received_us=0)
bad_ticket("an unknown request type", "request_type", lambda i, t: ic.submit(i, **t),
           request_type="complaint")
bad_ticket("neither address nor compound", "address", lambda i, t: ic.submit(i, **t), address="")
bad_ticket("a ticket_no with a quote", "ticket_no", lambda i, t: ic.submit(i, **t),
           ticket_no="X'1")
bad_ticket("a ticket_no of 65 characters", "ticket_no", lambda i, t: ic.submit(i, **t),
           ticket_no="A" * 65)
bad_ticket("a phone with letters", "caller_phone", lambda i, t: ic.submit(i, **t),
           caller_phone="1380000abcd")
bad_ticket("urgency 7", "urgency", lambda i, t: ic.submit(i, **t), urgency=7)
bad_ticket("an address of 1,001 characters", "address", lambda i, t: ic.submit(i, **t),
           address="幸福里小区" + "号" * 996)
bad_ticket("version 2", "version", lambda i, t: ic.submit(i, **t)[:1] + b"\x02" + ic.submit(i, **t)[2:])
bad_ticket("an envelope without a body", "",
           lambda i, t: ic.vi(1, 1) + ic.vi(2, i))
bad_ticket("a reply sent as a request", "",
           lambda i, t: ic.vi(1, 1) + ic.vi(2, i) + ic.ld(8, ic.vi(2, 0)))
meta = good_ticket("meta", **SQL_META)
meta_rid = rid
good_ticket(5, caller_phone="", caller_name="")
privacy = good_ticket("privacy", ticket_no="PRIVACY-1", caller_phone="+86-139-1234-5678",
                      caller_name="隐私测试员", request_type="REPORT", address="滨江明珠小区8栋",
                      content="飞线充电，电动车上楼")
good_ticket(6)

order = sorted(list(good) + list(bad))
for i in order:
    hc.send((good.get(i) or bad.get(i))[1])
got = hc.collect(order, 60)
wt.check(len(got) == len(order), f"R-I8: every addressed request got an answer ({len(got)}/{len(order)})")
for i in sorted(bad):
    what, _, word = bad[i]
    r = got.get(i)
    wt.check(r is not None and r.status == ic.REJECTED and r.reason and word in r.reason,
             f"R-I8: {what}: REJECTED with a reason ({r and repr(r.reason)})")
for i in sorted(good):
    r = got.get(i)
    wt.check(r is not None and r.status == ic.ACCEPTED,
             f"R-I8: {good[i][0]} sent alongside: ACCEPTED ({r and ic.STATUS_NAME[r.status]})")
stray = [s for s in hc.stray if s.request_id == 0]
wt.check(len(stray) == unaddressed and all(s.status == ic.REJECTED and s.reason for s in stray),
         f"R-I8: garbage, a StreamMessage and an empty frame: REJECTED with a reason"
         f" ({[(ic.STATUS_NAME[s.status], s.reason) for s in stray]})")
wt.check(wt.scalar("SELECT count(*) FROM intake.tickets WHERE ticket_no LIKE 'BAD-%'"
                   " OR ticket_no IN ('X''1', repeat('A', 65))") == "0",
         "R-I8: no rejected ticket was stored")
wt.check(intake.alive(), "R-I8: intake is still running")

q = ("SELECT encode(convert_to(t.{0}, 'UTF8'), 'hex') FROM intake.tickets t"
     " JOIN intake.callers c ON c.ticket_id = t.id WHERE t.ticket_no = 'SQL--x__1'")
for col, key in [("ticket_no", "ticket_no"), ("hotline_category", "hotline_category"),
                 ("address", "address"), ("content", "content")]:
    v = wt.scalar(q.format(col))
    wt.check(v is not None and bytes.fromhex(v) == SQL_META[key].encode(),
             f"R-I8: SQL metacharacters in {key} are stored byte for byte")
for col, key in [("phone", "caller_phone"), ("name", "caller_name")]:
    v = wt.scalar(q.replace("t.{0}", "c.{0}").format(col))
    wt.check(v is not None and bytes.fromhex(v) == SQL_META[key].encode(),
             f"R-I8: SQL metacharacters in {key} are stored byte for byte (callers)")
wt.check(wt.scalar("SELECT category || ' ' || category_source || ' ' || compound FROM intake.tickets"
                   " WHERE ticket_no = 'SQL--x__1'") == "V_NOISE keyword C0001",
         "R-I8: a hotline category and a compound code full of metacharacters are only unmapped"
         " values (keyword and address decide)")
wt.check(wt.scalar("SELECT count(*) FROM intake.tickets") == str(int(rows0) + OUT + 1 + len(good)),
         "R-I8: the tables are intact (the metacharacters executed nothing)")

# ---- R-I6: personal data stays in intake's schema ---------------------------------
wt.check(ic.wait_sink_caught_up(), "the consumer caught up with the hostile-input tickets")
events = ic.sink_events()
acc = {}
for _, _, kind, _, payload in events:
    if kind == "ticket.accepted":
        e = ic.decode(kind, payload)
        acc[e.ticket_no] = e
meta_ev = acc.get(SQL_META["ticket_no"])
wt.check(meta_ev is not None and meta_ev.content == SQL_META["content"]
         and meta_ev.address == SQL_META["address"],
         "R-I8: the event carries the metacharacter content and address byte for byte")
pv = acc.get("PRIVACY-1")
pseud = wt.scalar("SELECT pseudonym FROM intake.tickets WHERE ticket_no = 'PRIVACY-1'")
wt.check(pv is not None and pv.masked_phone == "139****5678",
         f"R-I6: the event carries the masked phone ({pv and pv.masked_phone})")
wt.check(pv is not None and len(pv.pseudonym) == 64 and pv.pseudonym == pseud
         and "13912345678" not in pv.pseudonym,
         "R-I6: the event carries the caller's pseudonym (the stored keyed hash)")
wt.check(all(e.pseudonym and e.masked_phone for e in acc.values()
             if e.ticket_no.startswith("GOOD-") and e.ticket_no != "GOOD-5"),
         "R-I6: every event of a ticket with a phone carries pseudonym and masked phone")
wt.check(acc.get("GOOD-5") is not None and acc["GOOD-5"].pseudonym == ""
         and acc["GOOD-5"].masked_phone == "", "R-I6: a ticket without a phone has neither")

NEEDLES = ["13912345678", "+86-139-1234-5678", "隐私测试员", "8613912345678"]
cols = wt.sql("SELECT c.table_schema, c.table_name, c.column_name, c.data_type"
              " FROM information_schema.columns c JOIN information_schema.tables t"
              " USING (table_catalog, table_schema, table_name)"
              " WHERE t.table_type = 'BASE TABLE' AND c.data_type IN"
              " ('text', 'character varying', 'character', 'bytea', 'json', 'jsonb', 'ARRAY',"
              "  'USER-DEFINED', 'name')"
              " AND c.table_schema NOT IN ('pg_catalog', 'information_schema')"
              " AND (c.table_schema <> 'intake' OR c.table_name LIKE 'stream%')")


def qi(s):
    return '"' + s.replace('"', '""') + '"'


def cond(column, dtype, needle):
    lit = "'" + needle.replace("'", "''") + "'"
    if dtype == "bytea":
        return f"position(convert_to({lit}, 'UTF8') in {qi(column)}) > 0"
    return f"position({lit} in {qi(column)}::text) > 0"


def search(schema, table, columns):
    """[(column, needle)] of the needles found in the columns of one table."""
    pairs = [(c, d, n) for c, d in columns for n in NEEDLES]
    q = ", ".join(f"count(*) FILTER (WHERE {cond(c, d, n)})" for c, d, n in pairs)
    counts = wt.sql(f"SELECT {q} FROM {qi(schema)}.{qi(table)}")[0]
    return [(c, n) for (c, d, n), k in zip(pairs, counts) if int(k)]


tables = {}
for s_, t_, c_, d_ in cols:
    tables.setdefault((s_, t_), []).append((c_, d_))
schemas = sorted({s_ for s_, _ in tables})
wt.log(f"searching {len(cols)} text/bytea columns of {len(tables)} tables in schemas {schemas}")
found = [(s_, t_, hit) for (s_, t_), cs in sorted(tables.items()) for hit in search(s_, t_, cs)]
wt.check(("i_sink", "sink", "payload", "bytea") in [tuple(c) for c in cols]
         and ("intake", "stream_outbox", "payload", "bytea") in [tuple(c) for c in cols],
         "R-I6: the search covers sinkd's table and intake's stream_outbox payloads")
wt.check(not found, f"R-I6: the caller's phone (any form) and name are in no table outside"
         f" intake's schema nor in its outbox ({found})")
wt.check(sorted(search("intake", "callers", [("phone", "text"), ("name", "text")]))
         == [("name", "隐私测试员"), ("phone", "+86-139-1234-5678")],
         "R-I6: (the same search finds them in intake.callers)")
digits = {p for (p,) in wt.sql("SELECT DISTINCT phone FROM intake.callers WHERE phone ~ '^1[0-9]{10}$'")}
digits.add("13912345678")
leaked = set()
for _, _, kind, _, payload in events:
    leaked |= ic.phone_digit_hits(payload, digits)
outbox = [bytes.fromhex(p) for (p,) in wt.sql("SELECT encode(payload, 'hex') FROM intake.stream_outbox"
                                               " WHERE kind <> 'WATERMARK'")]
events = [e for e in events if e[2] != "WATERMARK"]  # empty payloads, and more keep coming
for payload in outbox:
    leaked |= ic.phone_digit_hits(payload, digits)
wt.check(len(events) == len(outbox) and ic.phone_digit_hits(b"x13912345678y", digits),
         f"R-I6: (searching the raw bytes of all {len(events)} events for {len(digits)} phones)")
wt.check(not leaked, f"R-I6: no stream event carries any caller's phone digits ({sorted(leaked)[:5]})")
raw_name = "隐私测试员".encode()
wt.check(not any(raw_name in p for p in outbox), "R-I6: no stream event carries the caller's name")

# ---- a ticket the database refuses is answered alone ---------------------------------
# New tickets go in with one statement per batch; a trigger refusing some of
# them fails that statement, and the server retries the batch in halves until
# each refused ticket is alone: it alone is UNAVAILABLE.
wt.sql("CREATE FUNCTION intake.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS"
       " $$BEGIN IF NEW.ticket_no LIKE 'POISON-%' THEN RAISE EXCEPTION 'refused'; END IF;"
       " RETURN NEW; END$$")
wt.sql("CREATE TRIGGER refuse_poison BEFORE INSERT ON intake.tickets FOR EACH ROW"
       " EXECUTE FUNCTION intake.refuse_poison()")
pm = ic.TicketMaker(seed=4242)
data0 = ic.data_events()
burst = {}
for k in range(400):
    no = f"POISON-{k}" if k in (3, 4, 250) else f"NEIGHBOUR-{k}"
    i = nxt()
    burst[i] = (no, ic.submit(i, **ic.ticket_fields(pm.ticket(no, BASE + k * 1000))))
for i, (_, frame) in burst.items():
    hc.send(frame)
got = hc.collect(list(burst), 60)
poisoned = [i for i, (no, _) in burst.items() if no.startswith("POISON-")]
wt.check(all(got.get(i) is not None and got[i].status == ic.UNAVAILABLE for i in poisoned),
         "a ticket the database refuses is answered UNAVAILABLE")
wt.check(all(got.get(i) is not None and got[i].status == ic.ACCEPTED
             for i in burst if i not in poisoned),
         "the tickets staged in the same batches are ACCEPTED")
wt.check(wt.scalar("SELECT count(*) FROM intake.tickets WHERE ticket_no LIKE 'NEIGHBOUR-%'") == "397"
         and wt.scalar("SELECT count(*) FROM intake.tickets WHERE ticket_no LIKE 'POISON-%'") == "0",
         "they are stored, the refused ones are not")
wt.check(ic.data_events() == data0 + 397, "one event per stored ticket, none for the refused ones")
wt.sql("DROP TRIGGER refuse_poison ON intake.tickets; DROP FUNCTION intake.refuse_poison()")

# ---- shutdown -----------------------------------------------------------------------
hc.close()
cli.close()
rc1, rc2 = intake.stop(), sink.stop()
wt.check(rc1 == 0 and rc2 == 0, f"intake and sinkd drain and exit 0 on SIGTERM ({rc1}, {rc2})")
wt.check(ic.sanitizer_clean(*logs), "no sanitizer report in any daemon log")
if wt._checks["failed"] == 0:
    w.cleanup()
else:
    wt.log(f"logs kept in {w.path}")
wt.done()
