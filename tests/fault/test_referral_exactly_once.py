"""docs/architecture.md "an event exists if and only if the transaction that appended it
committed", for whistle-referral under failures at every stage of its
pipeline while requests are in flight. The faults come from Postgres itself,
in the real daemon:

  - transient SQL errors from triggers installed (as superuser) on referral's
    tables, raising for the first K attempts only (a sequence counts the
    attempts: nextval() is not rolled back with the failed transaction):
      intake stream consumer: stage 1 (its position advance), stage 2 (the
        save of a new ticket, the intake watermark), COMMIT (a deferred
        constraint trigger on its position);
      unit server: stage 1 (loading the ticket, through a row-level security
        policy), stage 2 (saving an accepted/resolved step), COMMIT (deferred,
        on step.accepted/resolved);
      clock job: stage 1 (loading the tickets due, through the policy),
        stage 2 (saving a ticket's clock flags, the referral watermark),
        COMMIT (deferred, on ACCEPT_OVERDUE/RESOLVE_OVERDUE);
  - commits that are durable but never acknowledged, in each pipeline: the
    deferred trigger makes the transaction wait for a synchronous standby
    that never comes, and the test terminates its backend there (the
    daemon must settle the commit as in doubt, not do the work again);
  - pg_terminate_backend of referral's connections at random moments, many
    times, while tickets flow, units report and the clocks run.

Units accept and resolve their steps concurrently (some late, some twice,
some refused: resolve before accept, the wrong unit, an unknown step; R-R2,
R-R3), and intake watermarks move event time past the deadlines meanwhile so
that overdue events are emitted under the faults (R-R4). Then the outbox is
checked in SQL: exactly one step.issued per step referral stores; exactly one
step.accepted/step.resolved per update a unit got APPLIED for, none for
refused or failed ones; exactly one ACCEPT_OVERDUE/RESOLVE_OVERDUE per step
and clock referral stores as overdue; one ticket.closed per closed ticket;
gapless seqs; no event twice; and a full-access subscriber received exactly
the outbox."""
import atexit
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
from wt import zmq  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402

N = int(os.environ.get("WHISTLE_TEST_TICKETS", "400"))
KILLS = 6  # at least this many times referral loses its connections
S = 1000000
H = 3600 * S
T0 = 1790000000 * S
SU, Reply = rc.SU, rc.Reply
UM = rc.UM
rng = random.Random(20261202)

# Single-step categories, and V_ILLEGAL_BUILD (1201: a chain of three units),
# whose steps resolved with a confirmed violation issue the next step.
CODES = ["1101", "1102", "1201", "1103", "1105", "1202", "1301", "1401", "1501"]
# Fault sites and how many attempts each fails before letting the work through.
SITES = {"consumer_position": 1, "consumer_save": 2, "consumer_watermark": 1, "consumer_commit": 1,
         "consumer_indoubt": 1,
         "units_load": 3, "units_save": 4, "units_commit": 3, "units_indoubt": 2,
         "clock_load": 2, "clock_save": 2, "clock_watermark": 2, "clock_commit": 2, "clock_indoubt": 1}
INDOUBT = sum(v for k, v in SITES.items() if k.endswith("_indoubt"))

FAULTS_SQL = """
DROP SCHEMA IF EXISTS rfault CASCADE;
CREATE SCHEMA rfault;
GRANT USAGE ON SCHEMA rfault TO referral;
CREATE TABLE rfault.budget (site text PRIMARY KEY, attempts int NOT NULL);
{sites}
-- Counts an attempt at a site: true for its first `attempts` attempts.
CREATE FUNCTION rfault.attempt(which text) RETURNS boolean LANGUAGE sql SECURITY DEFINER
SET search_path = rfault, pg_temp
AS $$ SELECT nextval('rfault.' || which) <= (SELECT b.attempts FROM rfault.budget b WHERE b.site = which) $$;
-- Fails the calling statement for the site's first `attempts` attempts.
CREATE FUNCTION rfault.hit(which text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = rfault, pg_temp AS $$
BEGIN
  IF rfault.attempt(which) THEN
    RAISE EXCEPTION 'injected fault: % (%)', which, currval('rfault.' || which);
  END IF;
END $$;
-- The selected tickets: numbers ending in 2 or 7.
CREATE FUNCTION rfault.selected(no text) RETURNS boolean LANGUAGE sql IMMUTABLE
AS $$ SELECT right(no, 1) IN ('2', '7') $$;

-- Saves of tickets: a new ticket (intake consumer), a step changing state
-- (unit server), clock flags only (clock job).
CREATE FUNCTION rfault.tickets_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = rfault, pg_temp AS $$
BEGIN
  IF NOT rfault.selected(NEW.ticket_no) THEN RETURN NEW; END IF;
  IF TG_OP = 'INSERT' THEN
    IF NOT EXISTS (SELECT 1 FROM referral.tickets t WHERE t.ticket_no = NEW.ticket_no) THEN
      PERFORM rfault.hit('consumer_save');
    END IF;
  ELSIF EXISTS (SELECT 1 FROM jsonb_array_elements(NEW.steps) WITH ORDINALITY n(s, i)
                LEFT JOIN jsonb_array_elements(OLD.steps) WITH ORDINALITY o(s, i) USING (i)
                WHERE n.s->>'state' IS DISTINCT FROM o.s->>'state') THEN
    PERFORM rfault.hit('units_save');
  ELSE
    PERFORM rfault.hit('clock_save');
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER rfault_tickets BEFORE INSERT OR UPDATE ON referral.tickets
  FOR EACH ROW EXECUTE FUNCTION rfault.tickets_write();

CREATE FUNCTION rfault.positions_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = rfault, pg_temp AS $$
BEGIN
  PERFORM rfault.hit('consumer_position');
  RETURN NEW;
END $$;
CREATE TRIGGER rfault_positions BEFORE INSERT OR UPDATE ON referral.stream_positions
  FOR EACH ROW EXECUTE FUNCTION rfault.positions_write();

CREATE FUNCTION rfault.clock_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = rfault, pg_temp AS $$
BEGIN
  IF NEW.in_watermark <> OLD.in_watermark THEN PERFORM rfault.hit('consumer_watermark'); END IF;
  IF NEW.out_watermark <> OLD.out_watermark THEN PERFORM rfault.hit('clock_watermark'); END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER rfault_clock BEFORE UPDATE ON referral.clock
  FOR EACH ROW EXECUTE FUNCTION rfault.clock_write();

-- At COMMIT (deferred constraint triggers): a transaction fails there, or
-- (the "indoubt" ones) commits and then waits for a synchronous standby
-- that never comes, until the test terminates its connection: committed, and
-- the daemon never heard so. Each pipeline by what only its transactions
-- write: the consumer its position; the unit server step.accepted and
-- step.resolved; the clock overdue events.
-- A transaction made in doubt writes a row of rfault.indoubt_made: a later
-- deferred trigger of the same transaction may still fail it (one batch can
-- carry work of several pipelines), and then the row goes with it, so the
-- rows are exactly the transactions that committed in doubt, and the budget
-- counts those.
CREATE TABLE rfault.indoubt_made (pipeline text NOT NULL, txid bigint NOT NULL);
CREATE FUNCTION rfault.make_indoubt(pipeline text) RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
SET search_path = rfault, pg_temp AS $$
BEGIN
  PERFORM nextval('rfault.' || pipeline || '_indoubt');
  IF (SELECT count(*) FROM rfault.indoubt_made m WHERE m.pipeline = make_indoubt.pipeline)
     >= (SELECT b.attempts FROM rfault.budget b WHERE b.site = pipeline || '_indoubt') THEN
    RETURN false;
  END IF;
  INSERT INTO rfault.indoubt_made VALUES (pipeline, txid_current());
  RETURN true;
END $$;
CREATE FUNCTION rfault.at_commit(pipeline text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM rfault.hit(pipeline || '_commit');
  IF current_setting('synchronous_standby_names') <> '' AND current_setting('synchronous_commit') <> 'on'
     AND rfault.make_indoubt(pipeline) THEN
    PERFORM set_config('synchronous_commit', 'on', true);
  END IF;
END $$;
CREATE FUNCTION rfault.positions_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM rfault.at_commit('consumer');
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER rfault_positions_commit AFTER INSERT OR UPDATE ON referral.stream_positions
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rfault.positions_commit();
CREATE FUNCTION rfault.outbox_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.kind IN ('step.accepted', 'step.resolved') THEN PERFORM rfault.at_commit('units');
  ELSIF NEW.kind IN ('ACCEPT_OVERDUE', 'RESOLVE_OVERDUE') THEN PERFORM rfault.at_commit('clock');
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER rfault_outbox_commit AFTER INSERT ON referral.stream_outbox
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rfault.outbox_commit();

-- Reads of tickets (Postgres has no SELECT trigger: a row-level security
-- policy, forced on the owner): a unit's update loads its ticket by number,
-- the clock loads the tickets due.
CREATE FUNCTION rfault.readable(no text) RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = rfault, pg_temp AS $$
BEGIN
  IF rfault.selected(no) THEN
    IF current_query() LIKE '%next_due_us <=%' THEN PERFORM rfault.hit('clock_load');
    ELSIF current_query() LIKE '%ticket_no = ANY%' THEN PERFORM rfault.hit('units_load');
    END IF;
  END IF;
  RETURN true;
END $$;
CREATE POLICY rfault_all ON referral.tickets USING (true) WITH CHECK (true);
CREATE POLICY rfault_read ON referral.tickets AS RESTRICTIVE FOR SELECT
  USING (rfault.readable(ticket_no));
ALTER TABLE referral.tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE referral.tickets FORCE ROW LEVEL SECURITY;
"""

REMOVE_FAULTS_SQL = """
DROP SCHEMA IF EXISTS rfault CASCADE;
ALTER TABLE referral.tickets NO FORCE ROW LEVEL SECURITY;
ALTER TABLE referral.tickets DISABLE ROW LEVEL SECURITY;
"""


def psql_script(script):
    """Runs a script as the cluster superuser, stopping at the first error."""
    env = dict(os.environ, **wt.pg_env())
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres"], input=script,
                   env=env, check=True, capture_output=True, text=True)


# Commits wait for a synchronous standby (there is none) only where the fault
# asks for it: everything else in the database commits locally.
SYNC_ON = """
ALTER SYSTEM SET synchronous_standby_names = 'rfault_no_such_standby';
SELECT pg_reload_conf();
"""
SYNC_OFF = """
ALTER SYSTEM RESET synchronous_standby_names;
SELECT pg_reload_conf();
ALTER DATABASE whistle RESET synchronous_commit;
"""


@atexit.register
def _sync_off():
    """Never leave the cluster waiting for a standby, whatever happened."""
    try:
        psql_script(SYNC_OFF)
    except Exception:  # noqa: BLE001
        pass


wt.pgdev("start")
psql_script(SYNC_OFF + "DROP SCHEMA IF EXISTS rfault CASCADE;")
wt.pgdev("reset", "intake", "referral")
psql_script("ALTER DATABASE whistle SET synchronous_commit = local;")  # before the daemons connect
w = wt.Workdir("ref-exactly-once")
ienv = ic.intake_env(w, WHISTLE_CLOCK="event")
intake, ok = ic.start_intake(w, ienv)
wt.check(ok, "intake is up")
APP = "referral-exactly-once"
renv = rc.referral_env(w, ienv, WHISTLE_PG=f"user=referral application_name={APP}",
                       WHISTLE_BATCH="64", WHISTLE_TICK_MS="100")
ref, ok = rc.start_referral(w, renv)
wt.check(ok, "referral is up")
RCTL = renv["WHISTLE_CONTROL"]

psql_script(FAULTS_SQL.format(sites="\n".join(
    f"CREATE SEQUENCE rfault.{k}; INSERT INTO rfault.budget VALUES ('{k}', {v});" for k, v in SITES.items())))
psql_script(SYNC_ON)
wt.check(wt.wait_for(lambda: wt.scalar("SHOW synchronous_standby_names") == "rfault_no_such_standby", 10,
                     "the configuration reload"), "a synchronous standby is configured (and never comes)")
wt.log(f"fault triggers installed: {SITES}")

# ---- lost connections, at random moments, until told to stop ------------------
stop_killing = threading.Event()
kills = []


def terminate(where):
    """Terminates referral's backends matching where; how many."""
    try:
        rows = wt.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      f" WHERE usename = 'referral' AND application_name = '{APP}' AND {where}")
    except subprocess.CalledProcessError as e:  # a psql hiccup must not end the test
        wt.log("terminate:", e.stderr)
        return 0
    return sum(1 for (r,) in rows if r == "t")


def killer():
    """Ends a transaction waiting for the standby (it has committed) as soon as
    one does; and every referral connection at random moments."""
    krng = random.Random(rng.random())
    next_kill = time.time() + krng.uniform(0.1, 0.6)
    while not stop_killing.wait(0.05):  # polling for waiters; not synchronisation
        terminate("wait_event = 'SyncRep'")
        if time.time() >= next_kill:  # a random moment
            n = terminate("true")
            if n:
                kills.append(n)
            next_kill = time.time() + krng.uniform(0.1, 0.6)


kt = threading.Thread(target=killer, daemon=True)
kt.start()

# ---- tickets through intake ----------------------------------------------------
# Half of the tickets, intake's watermark 1 (12 h on: the 2 h and 12 h accept
# clocks of the first half pass), the other half after it: referral's
# consumer applies the second half while its clock emits the first overdue
# events and units report on the first half.
W1 = T0 + 12 * H
T1 = T0 + 13 * H
W2 = T1 + 3 * 24 * H      # every first step's accept clock, some resolve clocks
W3 = T0 + 40 * 24 * H     # every clock, and the closings
comps = [r["code"] for r in ic.registry_rows("compounds.csv")]
hc = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"])
hrid = [N]


def watermark(at):
    hrid[0] += 1
    got = hc.push({hrid[0]: ic.watermark(hrid[0], at)}, timeout=60)
    return hrid[0] in got and got[hrid[0]].status == ic.ACCEPTED


def tickets(lo, hi, t):
    frames = {i + 1: ic.submit(i + 1, ticket_no=f"X-{i:05d}", received_us=t + i * S,
                               request_type="COMPLAINT", hotline_category=CODES[i % len(CODES)],
                               compound_code=comps[i % len(comps)], address="x", content="来电")
              for i in range(lo, hi)}
    replies = hc.push(frames)
    return len(replies) == hi - lo and all(r.status == ic.ACCEPTED for r in replies.values())


wt.check(tickets(0, N // 2, T0) and watermark(W1) and tickets(N // 2, N, T1),
         f"{N // 2} tickets, watermark 1, {N - N // 2} more tickets ACCEPTED by intake")


# ---- units ------------------------------------------------------------------------
# Every update a unit means to make is one "logical" update; it is sent again
# (new request id) when answered UNAVAILABLE, until APPLIED, DUPLICATE or
# REFUSED. Steps are learnt from the referral stream, as units do.
sub = rc.Subscriber(renv["WHISTLE_REFERRAL_STREAM"], "rating", window=5000).open()
socks = {}
poller = zmq.Poller()
updates = []   # dicts: key, unit, frame(rid), expect, replies
by_rid = {}
next_rid = [0]
steps = {}     # (ticket_no, step) -> StepIssued
expect_next = set()


def sock(unit):
    if unit not in socks:
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.linger = 0
        s.connect(renv["WHISTLE_REFERRAL_UNITS"])
        socks[unit] = s
        poller.register(s, zmq.POLLIN)
    return socks[unit]


def send(u):
    next_rid[0] += 1
    rid = next_rid[0]
    by_rid[rid] = u
    u["sent"] = time.time()
    sock(u["via"]).send(u["frame"](rid))


def plan(p, action, at, expect, unit=None, step=None, then=None, **kw):
    unit = unit or p.unit
    step = step or p.step
    u = {"ticket": p.ticket_no, "step": step, "action": action, "at": at, "unit": unit, "via": p.unit,
         "expect": expect, "replies": [], "then": then,
         "frame": lambda rid: rc.update(rid, p.ticket_no, step, action, at, unit, **kw)}
    updates.append(u)
    send(u)


def on_step(p):
    """What the unit does with a step: by the ticket's number (i % 4): A accept
    and resolve on time, the accept sent twice; B accept late; C accept on
    time, resolve late; D only refused updates. A later step of a chain is
    accepted on time."""
    i = int(p.ticket_no[2:])
    chain = p.chain_len > 1
    if p.step > 1:
        plan(p, SU.ACCEPT, p.issued_us + 60 * S, Reply.APPLIED)
        return
    kind = "ABCD"[i % 4]
    if kind == "A":
        plan(p, SU.ACCEPT, p.issued_us + 60 * S, Reply.APPLIED, then=lambda: (
            plan(p, SU.ACCEPT, p.issued_us + 60 * S, Reply.DUPLICATE),
            plan(p, SU.RESOLVE, p.issued_us + H, Reply.APPLIED, violation_confirmed=chain, note="已处理")))
    elif kind == "B":
        plan(p, SU.ACCEPT, p.accept_by_us + S, Reply.APPLIED)
    elif kind == "C":
        plan(p, SU.ACCEPT, p.issued_us + 60 * S, Reply.APPLIED, then=lambda: plan(
            p, SU.RESOLVE, p.resolve_by_us + S, Reply.APPLIED, violation_confirmed=chain, note="迟办结"))
    else:
        plan(p, SU.RESOLVE, p.issued_us + 60 * S, (Reply.REFUSED, Reply.WRONG_STATE))
        plan(p, SU.ACCEPT, p.issued_us + 60 * S, (Reply.REFUSED, Reply.WRONG_UNIT), unit="MZ")
        plan(p, SU.ACCEPT, p.issued_us + 60 * S, (Reply.REFUSED, Reply.UNKNOWN_STEP), step=9)


def terminal(r):
    return r.status != Reply.UNAVAILABLE


def pump_units(wait_ms):
    n = 0
    for s, _ in poller.poll(wait_ms) if socks else []:
        while True:
            try:
                raw = s.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            m = UM()
            m.ParseFromString(raw)
            u = by_rid.pop(m.reply.request_id, None)
            if u is None:
                continue
            u["replies"].append(m.reply)
            n += 1
            if not terminal(m.reply):
                send(u)  # nothing was committed: send it again
                continue
            if m.reply.status == Reply.APPLIED:
                if m.reply.next_step:
                    expect_next.add((u["ticket"], m.reply.next_step))
                if u["then"]:
                    u["then"]()
    now = time.time()
    for rid, u in list(by_rid.items()):
        if now - u["sent"] > 20:  # no answer at all: a real unit sends it again
            del by_rid[rid]
            send(u)
    return n


def settled():
    return sum(1 for u in updates if u["replies"] and terminal(u["replies"][-1]))


def take_steps():
    while take_steps.seen < len(sub.events):
        seq, kind, to, at, data = sub.events[take_steps.seen]
        take_steps.seen += 1
        if kind != "step.issued":
            continue
        p = rc.payload(kind, data)
        if (p.ticket_no, p.step) not in steps:
            steps[(p.ticket_no, p.step)] = p
            on_step(p)


take_steps.seen = 0


def out_watermark():
    return (wt.status(RCTL, 2.0) or {}).get("clock.out_watermark_us", 0)


w2_sent = False
end = time.time() + 90
while time.time() < end:
    sub.pump(0 if socks else 20)
    take_steps()
    pump_units(20)
    firsts = sum(1 for k in steps if k[1] == 1)
    done_ = settled()
    # Event time moves on while units report and faults happen: watermark 2
    # once referral's clock has dealt with watermark 1 and two thirds of the
    # updates are answered.
    if not w2_sent and firsts == N and done_ >= len(updates) * 2 // 3 and out_watermark() >= W1:
        wt.check(watermark(W2), "watermark 2 (every first accept clock) ACCEPTED by intake")
        w2_sent = True
    if w2_sent and firsts == N and expect_next <= set(steps) and done_ == len(updates) and not by_rid:
        break
wt.check(sum(1 for k in steps if k[1] == 1) == N, f"units received a first step for each of the {N} tickets")
wt.check(settled() == len(updates) and not by_rid,
         f"every one of the {len(updates)} unit updates was answered APPLIED, DUPLICATE or REFUSED"
         f" ({sum(len(u['replies']) for u in updates) - len(updates)} UNAVAILABLE answers sent again)")
wt.check(expect_next <= set(steps), f"the {len(expect_next)} next steps of resolved chains were issued")
wt.check(wt.wait_for(lambda: out_watermark() >= W2, 60, "the clock at watermark 2"),
         "referral's clock dealt with watermark 2")
wt.check(watermark(W3), "watermark 3 (every clock) ACCEPTED by intake")


def st():
    return wt.status(RCTL, 2.0) or {}


def caught_up():
    s = st()
    return (s.get("pg.up") == 1 and s.get("clock.out_watermark_us", 0) >= W3 and
            s.get("intake.position") == ic.stream_head() and s.get("server.pending") == 0)


wt.check(wt.wait_for(caught_up, 60, "referral to apply everything and run its clocks to watermark 3"),
         "referral applied intake's whole stream and ran its clocks to the last watermark")


def fired():
    """Attempts counted per fault site."""
    row = wt.sql("SELECT " + ", ".join(f"(SELECT CASE WHEN is_called THEN last_value ELSE 0 END"
                                         f" FROM rfault.{k})" for k in SITES))[0]
    return dict(zip(SITES, map(int, row)))


def made_indoubt():
    """Transactions committed in doubt, per pipeline."""
    return dict(wt.sql("SELECT pipeline, count(*) FROM rfault.indoubt_made GROUP BY pipeline"))


def short():
    """Sites that have not yet failed all their attempts and let one through;
    in-doubt sites: fewer transactions committed in doubt than asked."""
    made = made_indoubt()
    out = {}
    for k, n in fired().items():
        if k.endswith("_indoubt"):
            m = int(made.get(k[:-len("_indoubt")], 0))
            if m < SITES[k]:
                out[k] = (m, SITES[k])
        elif n <= SITES[k]:
            out[k] = (n, SITES[k])
    return out


wt.wait_for(lambda: len(kills) >= KILLS and not short(), 30, "the faults")
stop_killing.set()
kt.join()
psql_script(SYNC_OFF)
wt.check(not short(), f"every fault site failed its attempts and then let the work through"
                      f" (attempts per site: {fired()}; short: {short()})")
wt.check(wt.wait_for(caught_up, 30, "referral after the last connection kill"),
         "after the last lost connection referral is up and has everything")
wt.check(len(kills) >= KILLS, f"referral's connections were terminated {len(kills)} times at random moments"
                              f" ({sum(kills)} backends)")
text = ref.log_text()
lost = text.count("postgres connection lost")
wt.check(lost >= len(kills) + INDOUBT, f"referral saw its connections lost ({lost} times)")
settled_ = text.count("in-doubt commit settled")
committed = text.count('status="committed"')
wt.check(committed >= INDOUBT, f"referral settled the commits it never heard of as committed"
                               f" ({committed} of {settled_} in doubt; {INDOUBT} made so)")
psql_script(REMOVE_FAULTS_SQL)

# ---- the outbox ------------------------------------------------------------------
head = int(wt.scalar("SELECT last_seq FROM referral.stream_head"))
rows = wt.sql("SELECT seq, event_us, kind, addressee, encode(payload, 'hex') FROM referral.stream_outbox"
              " ORDER BY seq")
out = [(int(s), int(e), k, a, bytes.fromhex(p)) for s, e, k, a, p in rows]
wt.check([e[0] for e in out] == list(range(1, head + 1)),
         f"the outbox seqs are gapless 1..{head} ({len(out)} events)")
wt.check(int(st().get("stream.head", -1)) == head, "referral's published head is the outbox head")
twice = [(k, c) for k, c in Counter((e[2], e[4] if e[2] != "WATERMARK" else e[1]) for e in out).items()
         if c > 1]


def about(kind, data):
    """A short description of an event for messages."""
    if kind == "WATERMARK":
        return (kind, data)
    p = rc.payload(kind, data)
    return (kind, p.ticket_no, getattr(p, "step", None))


wt.check(not twice, f"no event (kind and payload) is in the outbox twice ({len(twice)} are,"
                    f" e.g. {[(about(*k), c) for k, c in twice[:3]]})")
wms = [e[1] for e in out if e[2] == "WATERMARK"]
wt.check(wms == sorted(set(wms)) and wms and wms[-1] == W3,
         f"referral's watermarks only move forward, up to the last ({len(wms)} watermarks)")

stored = wt.sql("SELECT t.ticket_no, t.state, (s->>'no')::int, (s->>'overdue')::int FROM referral.tickets t,"
                " jsonb_array_elements(t.steps) s")
stored_steps = Counter((no, int(n)) for no, _, n, _ in stored)
issued = Counter()
for e in out:
    if e[2] == "step.issued":
        p = rc.payload(e[2], e[4])
        issued[(p.ticket_no, p.step)] += 1
wt.check(int(wt.scalar("SELECT count(*) FROM referral.tickets")) == N, f"referral stores all {N} tickets")
bad = [(k, issued.get(k, 0)) for k in stored_steps if issued.get(k, 0) != 1]
bad += [(k, c) for k, c in issued.items() if k not in stored_steps]
wt.check(not bad and sum(issued.values()) == len(stored_steps),
         f"exactly one step.issued per stored step ({len(stored_steps)} steps; wrong: {bad[:4]})")

applied = Counter()
wrong_reply = []
for u in updates:
    last = u["replies"][-1] if u["replies"] else None
    exp = u["expect"]
    ok_ = last is not None and (last.status == exp if isinstance(exp, int) else
                                (last.status, last.code) == exp)
    n_applied = sum(1 for r in u["replies"] if r.status == Reply.APPLIED)
    if not ok_ or n_applied != (1 if exp == Reply.APPLIED else 0):
        wrong_reply.append((u["ticket"], u["step"], u["action"], [(r.status, r.code) for r in u["replies"]]))
    if n_applied:
        kind = "step.accepted" if u["action"] == SU.ACCEPT else "step.resolved"
        applied[(u["ticket"], u["step"], kind, u["at"])] += n_applied
wt.check(not wrong_reply, f"each update got its expected answer once: APPLIED, DUPLICATE for the accept"
                          f" sent twice, REFUSED with its code ({len(wrong_reply)} otherwise: {wrong_reply[:3]})")
changed = Counter()
other = []
for e in out:
    if e[2] in ("step.accepted", "step.resolved"):
        p = rc.payload(e[2], e[4])
        changed[(p.ticket_no, p.step, e[2], p.at_us)] += 1
    elif e[2].startswith("step.") and e[2] not in ("step.issued", "step.warning"):
        other.append(e[2])
diff = [(k, applied.get(k, 0), changed.get(k, 0)) for k in set(applied) | set(changed)
        if applied.get(k, 0) != changed.get(k, 0)]
wt.check(not diff and not other,
         f"exactly one step.accepted/step.resolved per APPLIED update, none for refused or failed ones"
         f" ({sum(changed.values())} events; wrong: {diff[:4]}; other kinds: {other[:3]})")
refused_tickets = {u["ticket"] for u in updates if not isinstance(u["expect"], int)}
leak = [k for k in changed if k[0] in refused_tickets]
wt.check(refused_tickets and not leak, f"the {len(refused_tickets)} tickets whose units were only refused"
                                       f" have no step.accepted/resolved ({leak[:3]})")

due_stored = Counter()
for no, _, n, od in stored:
    if int(od) & 2:
        due_stored[(no, int(n), "ACCEPT")] += 1
    if int(od) & 8:
        due_stored[(no, int(n), "RESOLVE")] += 1
due_out = Counter()
bad_key = []
for e in out:
    if e[2] in ("ACCEPT_OVERDUE", "RESOLVE_OVERDUE"):
        c = rc.payload(e[2], e[4])
        due_out[(c.ticket_no, c.step, c.clock)] += 1
        if c.key != f"R-E1|{c.ticket_no}|{c.step}|{c.clock}" or e[2] != f"{c.clock}_OVERDUE":
            bad_key.append(c.key)
diff = [(k, due_stored.get(k, 0), due_out.get(k, 0)) for k in set(due_stored) | set(due_out)
        if due_stored.get(k, 0) != due_out.get(k, 0)]
wt.check(due_stored and not diff and not bad_key,
         f"exactly one ACCEPT_OVERDUE/RESOLVE_OVERDUE per (ticket, step, clock) referral stores as overdue"
         f" ({sum(due_out.values())} events; wrong: {diff[:4]}; bad keys: {bad_key[:2]})")
left = wt.scalar(f"SELECT count(*) FROM referral.tickets WHERE next_due_us <= {W3}")
wt.check(left == "0", f"no clock before the last watermark is left undone ({left} tickets)")
closed_stored = {no for no, state, _, _ in stored if state == "CLOSED"}
closed_out = Counter(rc.payload(e[2], e[4]).ticket_no for e in out if e[2] == "ticket.closed")
wt.check(closed_stored and set(closed_out) == closed_stored and set(closed_out.values()) == {1},
         f"exactly one ticket.closed per closed ticket ({len(closed_stored)} closed,"
         f" {sum(closed_out.values())} events)")

# Referral's counters count what committed, once, however often work was retried.
st = wt.status(RCTL, 5.0) or {}
kinds = Counter(e[2] for e in out)
counted = {"referral.steps": kinds["step.issued"],
           "referral.overdue": kinds["ACCEPT_OVERDUE"] + kinds["RESOLVE_OVERDUE"],
           "referral.warnings": kinds["step.warning"], "referral.closed": kinds["ticket.closed"]}
wrong = {k: (st.get(k), v) for k, v in counted.items() if st.get(k) != v}
wt.check(not wrong, f"status counts each committed effect once ({counted}; wrong: {wrong})")

# What subscribers were sent is what committed.
wt.check(rc.pump_all([sub], lambda: sub.last >= head, 60, "the subscriber"),
         "a full-access subscriber caught up with the outbox head")
mism = [a[0] for a, b in zip(sub.events, out) if (a[0], a[1], a[2], a[3], a[4]) != (b[0], b[2], b[3], b[1], b[4])]
wt.check(len(sub.events) == len(out) and not mism,
         f"the subscriber received exactly the outbox, in order, once ({len(sub.events)} events;"
         f" differing seqs: {mism[:4]})")

sub.close()
for s in socks.values():
    s.close()
hc.close()
rc.finish(w, ref, intake)
