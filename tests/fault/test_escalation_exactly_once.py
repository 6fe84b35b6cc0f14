"""R-E3 and R-E4 for whistle-escalation under redelivery and crashes: the
same feed (tickets nobody accepts over September to December 2026, so that
every step's ACCEPT and RESOLVE clocks run out, and the month, quarter,
half-year and year closes of rating) is run twice into fresh schemas:

  (a) cleanly, recording escalation's NOTICES export and its outbox;
  (b) with escalation reading its inputs in small batches, every input event
      delivered at least twice (escalation stopped, its positions in the
      referral and rating streams, escalation.stream_positions, set back to 0,
      and started again: every event comes again), and escalation killed
      with SIGKILL during issuance three times, each time between the
      assignment of the numbers and the commit that records them:
        1. while its first notice INSERT of an issuance runs,
        2. while its third notice INSERT of an issuance runs (two of the
           issuance's notices are written, uncommitted),
        3. in the COMMIT of an issuance (a deferred trigger holds it): the
           transaction commits after escalation is gone, which never hears
           of it (in doubt).
      The faults come from Postgres: triggers installed as superuser on
      escalation.notices make issuance slow and observable (pg_sleep), and
      the test kills escalation when pg_stat_activity shows its backend in
      that statement; the triggers are removed after.

Then (b)'s notices and numbers equal (a)'s exactly (R-E3: numbers in (event
time, key) order, so a replay numbers identically), and in SQL: per type and
year the numbers are 1..N with no gap and no duplicate and the counter is N;
no trigger key has two notices, every trigger has its notice (R-E4); the
outbox holds each notice's notice.issued exactly once (to its recipient), its
notice.copy once per cc, and no notice.redelivered twice; (b)'s outbox holds
the same events as (a)'s. The feed crosses a quarter (the R-E1 ladder starts
again at k = 1 in October) and a year (December's close, event time
2027-01-01T00:00+08:00, and steps due in January are numbered in 2027)."""
import json
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
import rating_client as rtc  # noqa: E402
import escalation_client as ec  # noqa: E402
from rating_feed import half_day_watermarks, local  # noqa: E402

APP = "escalation-exactly-once"
FINAL = local(2027, 1, 20)
# (compound, hotline category): streets (1101, 1103), SCJG (1105), GA (1301).
SPOTS = [("C0001", "1101"), ("C0002", "1101"), ("C0003", "1103"), ("C0006", "1101"),
         ("C0008", "1105"), ("C0011", "1301"), ("C0010", "1101")]


def feed():
    """[(kind, at_us, ...)] in time order: tickets (ticket_no, compound,
    category) and intake watermarks every 12 hours (a ticket may be at most
    a day ahead of intake's event time)."""
    out = []
    n = 0

    def tickets(days, spots, hh=9):
        nonlocal n
        for (y, m, d) in days:
            for i, (comp, cat) in enumerate(spots):
                n += 1
                out.append(("ticket", local(y, m, d, hh, i), f"E-{n:04d}", comp, cat))
    tickets([(2026, 9, 8), (2026, 9, 15), (2026, 9, 22)], SPOTS)
    tickets([(2026, 10, 12), (2026, 10, 19)], SPOTS)
    tickets([(2026, 11, 10)], SPOTS[:3])
    tickets([(2026, 12, 28), (2026, 12, 30)], SPOTS[:4])
    tickets([(2026, 12, 31)], SPOTS[:2], hh=20)  # accept clocks run out on 1 January
    out += [("wm", t) for t in half_day_watermarks(local(2026, 9, 7), FINAL)]
    out.sort(key=lambda it: (it[1], it[0] == "wm"))
    return out


FEED = feed()


class Run:
    """intake, referral, rating and escalation on fresh schemas."""

    def __init__(self, name, **esc_extra):
        wt.pgdev("reset", "intake", "referral", "rating", "escalation")
        self.w = wt.Workdir(name)
        self.ienv = ic.intake_env(self.w, WHISTLE_CLOCK="event")
        self.intake, ok1 = ic.start_intake(self.w, self.ienv)
        self.renv = rc.referral_env(self.w, self.ienv)
        self.ref, ok2 = rc.start_referral(self.w, self.renv)
        self.tenv = rtc.rating_env(self.w, self.ienv, self.renv)
        self.rat, ok3 = rtc.start_rating(self.w, self.tenv)
        self.eenv = ec.escalation_env(self.w, self.renv, self.tenv,
                                      WHISTLE_PG=f"user=escalation application_name={APP}", **esc_extra)
        self.esc, ok4 = ec.start_escalation(self.w, self.eenv)
        self.ok = ok1 and ok2 and ok3 and ok4
        self.hc = ic.HotlineClient(self.ienv["WHISTLE_INTAKE_HOTLINE"])
        self.rid = 0
        self.refused = []
        self.starts = 1

    def status(self, env):
        return wt.status(env["WHISTLE_CONTROL"], 1.0) or {}

    def send(self, items):
        """Tickets and watermarks, each day's tickets together, in time order."""
        day = []

        def flush():
            if not day:
                return
            frames = {}
            for (_, at, no, comp, cat) in day:
                self.rid += 1
                frames[self.rid] = ic.submit(self.rid, ticket_no=no, received_us=at, request_type="COMPLAINT",
                                             hotline_category=cat, compound_code=comp, address="院内",
                                             content="来电反映问题", caller_phone=f"1390000{self.rid:04d}")
            got = self.hc.push(frames)
            self.refused += [r for k, r in got.items() if r.status != ic.ACCEPTED] + \
                [k for k in frames if k not in got]
            day.clear()
        for it in items:
            if it[0] == "ticket":
                if day and local_day(day[-1][1]) != local_day(it[1]):
                    flush()
                day.append(it)
            else:
                flush()
                self.rid += 1
                got = self.hc.push({self.rid: ic.watermark(self.rid, it[1])})
                if self.rid not in got or got[self.rid].status != ic.ACCEPTED:
                    self.refused.append(("watermark", it[1]))
        flush()

    def inputs_done(self):
        """Referral and rating have published everything up to FINAL."""
        r, t = self.status(self.renv), self.status(self.tenv)
        return r.get("clock.out_watermark_us", 0) >= FINAL and t.get("clock.out_watermark_us", 0) >= FINAL

    def caught_up(self):
        """Escalation has applied both input streams to their heads and
        issued up to FINAL."""
        e = self.status(self.eenv)
        rh = self.status(self.renv).get("stream.head", -1)
        th = self.status(self.tenv).get("stream.head", -1)
        return (e.get("referral.position") == rh and e.get("rating.position") == th
                and e.get("clock.out_watermark_us", 0) >= FINAL)

    def restart_escalation(self):
        self.esc, ok = ec.start_escalation(self.w, self.eenv, log=f"escalation-{self.starts}.log")
        self.starts += 1
        return ok

    def stop(self):
        codes = [d.stop() for d in (self.esc, self.rat, self.ref, self.intake)]
        self.hc.close()
        return codes


def local_day(us):
    return (us + 8 * 3600 * 1000000) // (86400 * 1000000)


def outbox():
    """escalation's outbox events but watermarks: [(seq, kind, addressee, event_us, Notice, payload hex)]."""
    rows = wt.sql("SELECT seq, kind, addressee, event_us, encode(payload, 'hex') FROM escalation.stream_outbox"
                  " WHERE kind <> 'WATERMARK' ORDER BY seq")
    return [(int(s), k, a, int(e), ec.payload(bytes.fromhex(p)), p) for s, k, a, e, p in rows]


def outbox_key(ev):
    _, kind, addr, at, _, raw = ev
    return (kind, addr, at, raw)


def export(env):
    cl = ec.NoticeClient(env["WHISTLE_ESCALATION_REQUESTS"])
    try:
        return cl.export()
    finally:
        cl.close()


wt.pgdev("start")
wt.sql("DROP SCHEMA IF EXISTS efault CASCADE")

# ---- (a) clean ---------------------------------------------------------------------
a = Run("esc-once-a")
wt.check(a.ok, "(a) intake, referral, rating and escalation are up")
a.send(FEED)
wt.check(not a.refused, f"(a) every ticket and watermark ACCEPTED by intake ({a.refused[:3]})")
wt.check(wt.wait_for(a.inputs_done, 120, "(a) referral and rating"), "(a) referral and rating reach the end")
wt.check(wt.wait_for(a.caught_up, 120, "(a) escalation"), "(a) escalation has issued up to the end")
notices_a = export(a.eenv)
outbox_a = outbox()
wt.check(notices_a is not None and len(notices_a) > 0, f"(a) NOTICES export: {len(notices_a or [])} notices")
notices_a = notices_a or []
types_a = Counter(n["type"] for n in notices_a)
wt.log("(a) notices by type:", dict(types_a))
codes = a.stop()
wt.check(codes == [0, 0, 0, 0], f"(a) the daemons exit 0 on SIGTERM ({codes})")

# What the feed must have exercised, in (a)'s notices (checked, so that the
# comparison below compares something).
r_e1 = [n for n in notices_a if n["rule"] == "R-E1"]
by_key = {n["key"]: n for n in notices_a}


def trace_k(env, number):
    cl = ec.NoticeClient(env["WHISTLE_ESCALATION_REQUESTS"])
    try:
        t = cl.export(ec.Q.TRACE, number)
        return t[0]["k"] if t else None
    finally:
        cl.close()


wt.check({"TISHI", "DUBAN", "WENZE"} <= set(types_a), "(a) the R-E1 ladder reached k = 1, 2 and 3+ "
         f"(提示, 督办, 问责: {types_a.get('TISHI')}, {types_a.get('DUBAN')}, {types_a.get('WENZE')})")
q4 = sorted((n for n in r_e1 if n["period"] == "2026Q4" and n["recipient"] == "S0101"),
            key=lambda n: (n["event_at"], n["key"]))
wt.check(any(n["period"] == "2026Q3" and n["recipient"] == "S0101" for n in r_e1) and q4
         and q4[0]["type"] == "TISHI",
         "(a) the ladder starts again in a new quarter: S0101's first 2026Q4 overdue notice is a 提示函 "
         f"({q4[0]['number'] if q4 else None})")
decisions = [n for n in notices_a if n["rule"] != "R-E1"]
wt.check(len(decisions) >= 3, f"(a) rating's decisions became notices ({len(decisions)}: "
         f"{sorted(Counter(n['rule'] for n in decisions).items())})")
dec_close = [n for n in decisions if n["event_at"] == "2027-01-01T00:00:00+08:00"]
wt.check(dec_close and all("〔2027〕" in n["number"] for n in dec_close),
         f"(a) December's close (event time 2027-01-01T00:00+08:00) is numbered in 2027 "
         f"({[n['number'] for n in dec_close]})")
jan = [n for n in r_e1 if n["event_at"].startswith("2027-01")]
wt.check(jan and all("〔2027〕" in n["number"] and n["period"] == "2027Q1" for n in jan),
         f"(a) steps due in January 2027 are numbered in 2027, in the ladder of 2027Q1 ({len(jan)})")
wt.check(all(n["event_at"] < "2027" or "〔2027〕" in n["number"] for n in notices_a)
         and all(n["event_at"] >= "2027" or "〔2026〕" in n["number"] for n in notices_a),
         "(a) every notice is numbered in the local year of its event time")

# ---- (b) redelivery and SIGKILL during issuance ------------------------------------
FAULTS_SQL = """
DROP SCHEMA IF EXISTS efault CASCADE;
CREATE SCHEMA efault;
CREATE TABLE efault.armed (site text PRIMARY KEY);
CREATE SEQUENCE efault.hits;
GRANT USAGE ON SCHEMA efault TO escalation;
-- Each notice INSERT: with 'first' armed, every one sleeps; with 'third'
-- armed, the third of a transaction does.
-- (No SET clause on these functions: it would undo their set_config at exit.)
CREATE FUNCTION efault.on_insert() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE n int := coalesce(nullif(current_setting('efault.rows', true), ''), '0')::int + 1;
BEGIN
  PERFORM set_config('efault.rows', n::text, true);
  IF EXISTS (SELECT 1 FROM efault.armed WHERE site = 'first')
     OR (n = 3 AND EXISTS (SELECT 1 FROM efault.armed WHERE site = 'third')) THEN
    PERFORM nextval('efault.hits');
    PERFORM pg_sleep(60);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER efault_insert BEFORE INSERT ON escalation.notices
  FOR EACH ROW EXECUTE FUNCTION efault.on_insert();
-- At COMMIT, with 'commit' armed: the first row of the transaction sleeps
-- (a deferred constraint trigger runs inside COMMIT), then lets it commit.
CREATE FUNCTION efault.at_commit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  IF current_setting('efault.slept', true) IS DISTINCT FROM 'y'
     AND EXISTS (SELECT 1 FROM efault.armed WHERE site = 'commit') THEN
    PERFORM set_config('efault.slept', 'y', true);
    PERFORM nextval('efault.hits');
    PERFORM pg_sleep(4);
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER efault_commit AFTER INSERT ON escalation.notices
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION efault.at_commit();
"""
REMOVE_SQL = "DROP SCHEMA IF EXISTS efault CASCADE"


def arm(site):
    wt.sql("DELETE FROM efault.armed" + (f"; INSERT INTO efault.armed VALUES ('{site}')" if site else ""))


def backend(query_like):
    """(pid, xact) of escalation's backend running a statement like query_like
    in pg_sleep, or None."""
    rows = wt.sql("SELECT pid, backend_xid FROM pg_stat_activity WHERE application_name = '" + APP + "'"
                  f" AND state = 'active' AND wait_event = 'PgSleep' AND query LIKE '{query_like}'")
    return rows[0] if rows else None


def escalation_backends():
    return int(wt.scalar(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{APP}'"))


def rewind():
    """Escalation is down: its positions in both input streams go back to 0,
    so that every event it applied comes again."""
    wt.sql("UPDATE escalation.stream_positions SET last_seq = 0")
    return [int(x) for (x,) in wt.sql("SELECT last_seq FROM escalation.stream_positions")]


def notices_count():
    return int(wt.scalar("SELECT count(*) FROM escalation.notices"))


b = Run("esc-once-b", WHISTLE_BATCH="7")
wt.check(b.ok, "(b) intake, referral, rating and escalation are up (escalation: batches of 7 events)")
wt.sql(FAULTS_SQL)
try:
    # Kill 1: in the first notice INSERT of an issuance.
    arm("first")
    b.send(FEED)
    wt.check(not b.refused, "(b) every ticket and watermark ACCEPTED by intake")
    hit = wt.wait_for(lambda: backend("INSERT INTO notices%"), 120, "a notice INSERT in pg_sleep")
    before = notices_count()
    b.esc.kill9()
    wt.check(hit is not None, f"(b) kill 1: escalation SIGKILLed while its backend ({hit}) inserts the first "
             "notice of an issuance (numbers assigned, nothing committed)")
    wt.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{APP}'")
    wt.check(wt.wait_for(lambda: escalation_backends() == 0, 30, "escalation's backends to go"),
             "(b) kill 1: escalation's backends are gone (its transaction rolled back)")
    wt.check(notices_count() == before, f"(b) kill 1: no notice committed by the killed issuance ({before})")
    wt.check(rewind() and b.status(b.renv).get("stream.head", 0) > 0, "(b) positions set back to 0")

    # Kill 2: in the third notice INSERT (two written, uncommitted).
    arm("third")
    wt.check(b.restart_escalation(), "(b) escalation restarts")
    hit = wt.wait_for(lambda: backend("INSERT INTO notices%"), 120, "a third notice INSERT in pg_sleep")
    before = notices_count()
    b.esc.kill9()
    wt.check(hit is not None, f"(b) kill 2: escalation SIGKILLed while its backend ({hit}) inserts the third "
             "notice of an issuance")
    wt.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{APP}'")
    wt.check(wt.wait_for(lambda: escalation_backends() == 0, 30, "escalation's backends to go"),
             "(b) kill 2: escalation's backends are gone")
    wt.check(notices_count() == before, f"(b) kill 2: no notice committed by the killed issuance ({before})")
    rewind()

    # Kill 3: in COMMIT; the backend commits after escalation is gone.
    arm("commit")
    wt.check(b.restart_escalation(), "(b) escalation restarts")
    hit = wt.wait_for(lambda: backend("COMMIT%"), 120, "a COMMIT in pg_sleep")
    before = notices_count()
    b.esc.kill9()
    wt.check(hit is not None, f"(b) kill 3: escalation SIGKILLed while its backend ({hit}) commits an issuance")
    wt.check(wt.wait_for(lambda: escalation_backends() == 0, 30, "the committing backend to finish"),
             "(b) kill 3: the backend finished its COMMIT and went")
    after = notices_count()
    wt.check(after > before, f"(b) kill 3: the issuance committed without escalation hearing it "
             f"(notices {before} -> {after}: in doubt)")
    hits = int(wt.scalar("SELECT last_value FROM efault.hits"))
    wt.check(hits >= 3, f"(b) the three fault sites were reached ({hits} sleeps)")
finally:
    wt.sql(REMOVE_SQL)
wt.log("fault triggers removed")
rewind()
wt.check(b.restart_escalation(), "(b) escalation restarts without faults, positions at 0")
wt.check(wt.wait_for(b.inputs_done, 120, "(b) referral and rating"), "(b) referral and rating reach the end")
wt.check(wt.wait_for(b.caught_up, 180, "(b) escalation"), "(b) escalation has issued up to the end")

# Every input event once more, from the end state.
codes = b.esc.stop()
wt.check(codes == 0, f"(b) escalation exits 0 on SIGTERM ({codes})")
triggers_before = int(wt.scalar("SELECT count(*) FROM escalation.triggers"))
rewind()
wt.check(b.restart_escalation(), "(b) escalation restarts with its positions at 0 once more")
wt.check(wt.wait_for(b.caught_up, 180, "(b) escalation again"), "(b) escalation has taken every event again")
st = b.status(b.eenv)
wt.check(st.get("referral.applied", 0) > 0 and st.get("rating.applied", 0) > 0,
         f"(b) the events came again (applied: referral {st.get('referral.applied')}, "
         f"rating {st.get('rating.applied')})")
wt.check(int(wt.scalar("SELECT count(*) FROM escalation.triggers")) == triggers_before,
         f"(b) no new trigger from events delivered again ({triggers_before})")

notices_b = export(b.eenv) or []
outbox_b = outbox()

# ---- the checks ---------------------------------------------------------------------
wt.check(len(notices_b) == len(notices_a) and notices_b == notices_a,
         f"R-E3/R-E4: (b)'s notices and numbers equal (a)'s exactly ({len(notices_b)} vs {len(notices_a)})")
if notices_b != notices_a:
    sa = {(n["number"], n["key"]) for n in notices_a}
    sb = {(n["number"], n["key"]) for n in notices_b}
    wt.log("only in (a):", sorted(sa - sb)[:10])
    wt.log("only in (b):", sorted(sb - sa)[:10])

gaps = wt.sql("SELECT type, year, count(*), count(DISTINCT n), min(n), max(n) FROM escalation.notices"
              " GROUP BY type, year HAVING count(*) <> count(DISTINCT n) OR min(n) <> 1 OR max(n) <> count(*)")
wt.check(not gaps, f"R-E3: per type and year, numbers 1..N, no gap, no duplicate (bad: {gaps})")
per_ty = wt.sql("SELECT type, year, count(*) FROM escalation.notices GROUP BY type, year ORDER BY 1, 2")
wt.log("per type and year:", per_ty)
bad_counter = wt.sql("SELECT c.type, c.year, c.n, count(x.number) FROM escalation.counters c"
                     " FULL JOIN escalation.notices x ON x.type = c.type AND x.year = c.year"
                     " GROUP BY c.type, c.year, c.n HAVING c.n IS DISTINCT FROM count(x.number)")
wt.check(not bad_counter, f"R-E3: each counter equals its notices' count (bad: {bad_counter})")
bad_num = wt.sql("SELECT number, type, year, n FROM escalation.notices"
                 " WHERE number <> (CASE type WHEN 'TISHI' THEN '提示' WHEN 'DUBAN' THEN '督办'"
                 " WHEN 'WENZE' THEN '问责' WHEN 'YUETAN' THEN '约谈' WHEN 'ZHENGGAI' THEN '整改'"
                 " WHEN 'HEIBANG' THEN '黑榜' WHEN 'JIANGXING' THEN '降星' WHEN 'QINGTUI' THEN '清退'"
                 " WHEN 'HEIMINGDAN' THEN '黑名单' WHEN 'ZHONGDIAN' THEN '重点' WHEN 'HUANGPAI' THEN '黄牌' END)"
                 " || '〔' || year || '〕' || n || '号'"
                 " OR year <> extract(year FROM to_timestamp(event_us / 1e6) AT TIME ZONE INTERVAL '+08:00')")
wt.check(not bad_num, f"R-E3: number = <prefix>〔YYYY〕N号 with YYYY the local year of the event time (bad: {bad_num[:3]})")
dup_keys = wt.sql("SELECT key, count(*) FROM escalation.notices GROUP BY key HAVING count(*) > 1")
wt.check(not dup_keys, f"R-E4: no trigger key has two notices ({dup_keys[:3]})")
orphans = wt.sql("SELECT t.key, t.issued, count(n.number) FROM escalation.triggers t"
                 " LEFT JOIN escalation.notices n ON n.key = t.key GROUP BY t.key, t.issued"
                 " HAVING count(n.number) <> 1 OR NOT t.issued")
wt.check(not orphans, f"R-E4: every trigger issued, with exactly one notice ({orphans[:3]})")
wt.check(int(wt.scalar("SELECT count(*) FROM escalation.notices n WHERE NOT EXISTS"
                       " (SELECT 1 FROM escalation.triggers t WHERE t.key = n.key)")) == 0,
         "R-E4: every notice has its trigger")

rows = {r[0]: r for r in wt.sql("SELECT number, recipient, array_to_json(cc)::text, redelivered::text"
                                " FROM escalation.notices")}
issued = Counter(p.number for _, k, _, _, p, _ in outbox_b if k == "notice.issued")
issued_to = {(p.number, a) for _, k, a, _, p, _ in outbox_b if k == "notice.issued"}
copies = Counter((p.number, a) for _, k, a, _, p, _ in outbox_b if k == "notice.copy")
redel = Counter(p.number for _, k, _, _, p, _ in outbox_b if k == "notice.redelivered")
wt.check(set(issued) == set(rows) and all(v == 1 for v in issued.values()),
         f"R-E4: the outbox holds each notice's notice.issued exactly once ({len(issued)} notices, "
         f"twice: {[k for k, v in issued.items() if v > 1][:3]}, missing: {sorted(set(rows) - set(issued))[:3]})")
wt.check(all((num, r[1]) in issued_to for num, r in rows.items()), "each notice.issued goes to its recipient")
want_copies = Counter((num, c) for num, r in rows.items() for c in json.loads(r[2]))
wt.check(copies == want_copies, f"each notice.copy once per cc ({sum(copies.values())} vs {sum(want_copies.values())})")
wt.check(all(v == 1 for v in redel.values()) and set(redel) == {n for n, r in rows.items() if r[3] == "true"},
         f"R-E6: each unsigned notice due again delivered again once ({len(redel)})")
oa, ob = Counter(map(outbox_key, outbox_a)), Counter(map(outbox_key, outbox_b))
wt.check(oa == ob, f"(b)'s outbox holds the same notice events as (a)'s ({sum(ob.values())} vs {sum(oa.values())};"
         f" only (a): {sum((oa - ob).values())}, only (b): {sum((ob - oa).values())})")

codes = b.stop()
wt.check(codes == [0, 0, 0, 0], f"(b) the daemons exit 0 on SIGTERM ({codes})")
logs = [os.path.join(r.w.path, f) for r in (a, b) for f in os.listdir(r.w.path) if f.endswith(".log")]
for lf in logs:
    with open(lf, errors="replace") as f:
        wt.check(not any(m in f.read() for m in ic.SANITIZER_MARKS), f"{os.path.basename(lf)}: no sanitizer report")
a.w.cleanup()
b.w.cleanup()
wt.done()
