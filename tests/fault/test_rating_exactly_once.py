"""docs/architecture.md exactly once for whistle-rating, through the real daemons: each
batch of intake's and referral's events is applied in one transaction with
rating's position in that stream, and each month close (rankings, unit
scores, stars, decisions, period.closed and a watermark on rating's stream)
is one transaction. A feed of three months (May to July 2026: quarter and
half-year ends at June) is run twice into fresh schemas:

  (a) uninterrupted, recording rating's query exports and its stream;
  (b) while rating is killed with SIGKILL and restarted, again and again:
      - at random moments while it applies the intake and referral streams
        (when it has applied a random number of the events at hand);
      - during three month closes: a trigger the test installs (as
        superuser) holds the close's insert of June's rankings, then of
        July's R-C4 decisions, until the test lets it go; rating is killed
        while pg_stat_activity shows its backend held in that statement,
        and the held transaction must leave nothing behind; and May's close
        is held at its COMMIT (a deferred trigger: a slow commit), rating is
        killed there and restarted before that commit completes, which must
        not make it close May a second time;
      - and Postgres itself is restarted while rating applies a backlog.

The feed: several hundred tickets on the registry's PROFESSIONAL compounds
(complaints, reports, help requests, consultations; a few completed from
triage and a few exempted), units accepting and resolving their steps on
time, late or never, some resolving with a confirmed violation and a
prohibition (R-P2, up to D = 4 for a company), chains of steps, callbacks
(UNSATISFIED ones reopening a step for redo), inspections sent to rating,
and a watermark at each month's end. Intake and referral run alike in both
runs; rating's inputs are checked to be the same.

Then: (b)'s exports equal (a)'s exactly; rating's facts, sums and published
results in SQL equal (a)'s (an event applied twice shows there, e.g. a
callback counted twice); no decision key twice in the decisions table; the
outbox holds each decision key exactly once and one period.closed per month
(a close repeated after a restart shows there: its rows are written with ON
CONFLICT DO NOTHING, its events are not), with gapless seqs; rating's
stream holds the same events as in (a); and a full-access subscriber of (b)
received exactly the outbox, in order, once."""
import datetime
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
import rating_client as rtc  # noqa: E402

PER_MONTH = int(os.environ.get("WHISTLE_TEST_TICKETS", "150"))
S = 1000000
H = 3600 * S
DAY = 24 * H
TZ = datetime.timezone(datetime.timedelta(hours=8))
MONTHS = [(2026, 5), (2026, 6), (2026, 7)]
APP = "rating-exactly-once"
# Where the faults fall (not the feed, which is fixed): logged, and given
# again with WHISTLE_TEST_SEED to replay a run.
SEED = int(os.environ.get("WHISTLE_TEST_SEED", str(int(time.time()))))
SU = rc.SU


def local(y, mo, d, hh=0, mi=0):
    return int(datetime.datetime(y, mo, d, hh, mi, tzinfo=TZ).timestamp()) * S


def month_end(y, mo):
    return local(y + mo // 12, mo % 12 + 1, 1)


def month_index(y, mo):
    return y * 12 + mo - 1


def month_name(y, mo):
    return f"{y:04d}-{mo:02d}"


# ---- the feed: the same in both runs --------------------------------------------

COMPOUNDS = ic.registry_rows("compounds.csv")
PROF = [c for c in COMPOUNDS if c["management"] == "PROFESSIONAL"]
CATEGORY = {r["hotline_code"]: r["category"] for r in ic.registry_rows("hotline_categories.csv")}
# Hotline categories: PS_* (counting; the street, SCJG or ZJ), V_ILLEGAL_BUILD
# (a chain of three units), V_GARBAGE (CGZF).
CODES = ["1101"] * 6 + ["1102"] * 3 + ["1103"] * 3 + ["1104"] * 3 + ["1105"] * 2 + ["1106", "1201", "1202"]
TYPES = ["COMPLAINT"] * 14 + ["REPORT"] * 3 + ["HELP"] * 2 + ["CONSULT", "SUGGEST"]
# Confirmed violations (R-P2) per compound and month: D reaches 4 for C0001
# in July (its company E001 then; C0002 of E001 issues no second D = 4).
VIOLATIONS = {
    5: {"C0001": ["P2"], "C0002": ["P2", "P9"], "C0003": ["P2", "P2"], "C0008": ["P7"]},
    6: {"C0001": ["P3", "P7"], "C0002": ["P6"], "C0003": ["P8"], "C0006": ["P6"], "C0008": ["P7"]},
    7: {"C0001": ["P5", "P2"], "C0002": ["P1", "P3"], "C0010": ["P4"], "C0011": ["P9", "P5"]},
}
# Inspection quality per compound (R-S1..R-S3: some five-star, some KEY_TARGET
# or EVICT); C0004 and C0009 are not PROFESSIONAL (no stars).
QUALITY = {"C0001": 58, "C0002": 93, "C0003": 76, "C0006": 44, "C0008": 86, "C0010": 66, "C0011": 89,
           "C0004": 70, "C0009": 60}


def month_feed(y, mo):
    """The month's tickets (dicts: fields for intake, and what happens to
    them), and its inspections."""
    rng = random.Random(f"feed|{y}|{mo}")
    tickets = []
    quota = {c: list(v) for c, v in VIOLATIONS[mo].items()}
    weights = [7, 5, 4, 3, 3, 2, 1]
    for i in range(PER_MONTH):
        c = rng.choices(PROF, weights)[0]["code"]
        code = rng.choice(CODES)
        t = {"ticket_no": f"R{mo:02d}-{i:04d}", "received_us": local(y, mo, 1) + rng.randrange(26 * 86400) * S,
             "request_type": rng.choice(TYPES), "hotline_category": code, "compound_code": c,
             "address": "3号楼2单元", "content": "来电反映小区物业问题",
             "caller_phone": f"139{mo:02d}{i:06d}", "caller_name": "王芳"}
        roll = rng.random()
        if roll < 0.04:  # no compound: manual triage, completed two hours later
            del t["compound_code"]
            t["address"] = f"某路{rng.randrange(1, 99)}号附近"
            t["triage"] = (t["received_us"] + 2 * H, c, CATEGORY[code])
        elif roll < 0.08 and t["request_type"] in ("COMPLAINT", "REPORT"):
            t["exempt"] = t["received_us"] + DAY
        if (code.startswith("11") and t["request_type"] in ("COMPLAINT", "REPORT", "HELP")
                and "triage" not in t and quota.get(c)):
            t["violation"] = quota[c].pop(0)
        tickets.append(t)
    assert not any(quota.values()), quota
    inspections = []
    for code, q in QUALITY.items():
        for k in range(1 + (ord(code[-1]) + mo) % 2):
            at = local(y, mo, 3 + rng.randrange(24), rng.randrange(8, 18))
            dims = tuple(max(0, min(100, q + rng.randrange(-6, 7))) for _ in range(7))
            inspections.append((f"I{mo:02d}-{code}-{k}", code, at, dims))
    return tickets, inspections


def step_plan(p, violation):
    """What the unit does with step p (StepIssued), decided by the step alone:
    [(action, at_us, extra fields)], each sent once the previous is answered."""
    r = random.Random(f"step|{p.ticket_no}|{p.step}")
    if not violation and r.random() < 0.08:
        return []  # never acted on
    if r.random() < 0.15:
        acc = p.accept_by_us + r.randrange(1, 20) * H  # late
    else:
        acc = p.issued_us + r.randrange(60, (p.accept_by_us - p.issued_us) // S) * S
    acts = [(SU.ACCEPT, acc, {})]
    v = r.random()
    if not violation and v < 0.1:
        return acts  # never resolved
    if v > 0.8 or p.resolve_by_us <= acc:
        res = max(acc, p.resolve_by_us) + r.randrange(1, 72) * H  # late
    else:
        res = acc + r.randrange(1, (p.resolve_by_us - acc) // S + 1) * S
    extra = {"note": "已办结"}
    if violation:
        extra.update(violation_confirmed=True, prohibition=violation)
    elif p.chain_len > 1 and p.chain_pos == 1:
        extra.update(violation_confirmed=r.random() < 0.5)  # the chain goes on, no company at fault
    acts.append((SU.RESOLVE, res, extra))
    return acts


def callback_plan(ticket_no, resolved_at):
    """A callback (R-I7) for a resolved ticket, or None."""
    r = random.Random(f"cb|{ticket_no}")
    if r.random() > 0.45:
        return None
    sat = r.choice(["SATISFIED", "SATISFIED", "BASICALLY_SATISFIED", "UNSATISFIED"])
    return resolved_at + r.randrange(2, 30) * H, sat


# ---- talking to the daemons ------------------------------------------------------


class Requester:
    """A DEALER to a request interface (referral's units, rating's requests):
    many requests in flight, each sent again with its request id while it is
    answered UNAVAILABLE or not at all (the daemon may be restarting), like a
    real client; returns the first other answer of each."""

    def __init__(self, endpoint, msgcls, unavailable):
        self.endpoint, self.msgcls, self.unavailable = endpoint, msgcls, unavailable
        self.s = None
        self.rid = 0
        self.connect()

    def connect(self):
        if self.s is not None:
            self.s.close()
        self.s = zmq.Context.instance().socket(zmq.DEALER)
        self.s.linger = 0
        self.s.sndhwm = self.s.rcvhwm = 100000
        self.s.connect(self.endpoint)

    def close(self):
        self.s.close()

    def run(self, frames, idle=None, timeout=120, resend_s=3.0):
        """frames: callables request id -> frame. Returns their replies, in order."""
        rids, pending, out = [], {}, {}
        for f in frames:
            self.rid += 1
            rids.append(self.rid)
            pending[self.rid] = [f, 0.0]
        end = time.time() + timeout
        while pending and time.time() < end:
            now = time.time()
            stale = [rid for rid, (f, t) in pending.items() if now - t > resend_s]
            if any(pending[rid][1] for rid in stale):
                self.connect()  # unanswered: perhaps a restarted daemon
            for rid in stale:
                self.s.send(pending[rid][0](rid))
                pending[rid][1] = now
            if self.s.poll(50):
                while True:
                    try:
                        raw = self.s.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    m = self.msgcls()
                    m.ParseFromString(raw)
                    rid = m.reply.request_id
                    if rid not in pending:
                        continue
                    if m.reply.status == self.unavailable:
                        pending[rid][1] = time.time() - resend_s + 0.3  # again shortly
                        continue
                    out[rid] = m.reply
                    del pending[rid]
            if idle:
                idle()
        return [out.get(r) for r in rids]


def psql_script(script):
    env = dict(os.environ, **wt.pg_env())
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres"], input=script,
                   env=env, check=True, capture_output=True, text=True)


def outbox(schema):
    rows = wt.sql(f"SELECT seq, event_us, kind, addressee, encode(payload, 'hex') FROM {schema}.stream_outbox"
                  " ORDER BY seq")
    return [(int(s), int(e), k, a, bytes.fromhex(p)) for s, e, k, a, p in rows]


def head(schema):
    return int(wt.scalar(f"SELECT last_seq FROM {schema}.stream_head"))


# Rating's facts, per-period sums, published results and clock: what a run
# leaves in its schema, to compare between runs.
STATE = {
    "tickets": "ticket_no", "steps": "ticket_no, step", "project_month": "month, compound",
    "unit_month": "month, unit", "violations": "ticket_no", "project_year": "compound, year",
    "company_year": "company, year", "deductions": "key", "inspections": "inspection_id",
    "project_quarter": "quarter, compound", "rankings": "month, compound", "unit_scores": "month, unit",
    "street_runs": "quarter, street", "stars": "quarter, compound", "decisions": "key",
}


def rating_state():
    st = {t: wt.sql(f"SELECT * FROM rating.{t} ORDER BY {k}") for t, k in STATE.items()}
    st["clock"] = wt.sql("SELECT intake_wm, referral_wm, closed_month, first_month, out_wm, late FROM rating.clock")
    return st


def exports(cl):
    out = {}
    for y, mo in MONTHS:
        out[("RANKINGS", month_name(y, mo))] = cl.export(rtc.Q.RANKINGS, month_name(y, mo))
        out[("UNITS", month_name(y, mo))] = cl.export(rtc.Q.UNITS, month_name(y, mo))
    for p in ("2026H1", "2026H2"):
        out[("CREDIT", p)] = cl.export(rtc.Q.CREDIT, p)
    for p in ("2026Q2", "2026Q3"):
        out[("STARS", p)] = cl.export(rtc.Q.STARS, p)
    out[("DECISIONS", "")] = cl.export(rtc.Q.DECISIONS)
    return out


# ---- one run ---------------------------------------------------------------------


class Run:
    """Intake, referral and rating in event time on fresh schemas, fed the
    three months; each month's hooks (run (b)) kill and restart rating, or
    restart Postgres, at the points described above."""

    def __init__(self, name):
        self.name = name
        self.rng = random.Random(f"faults|{SEED}|{name}")
        wt.pgdev("reset", "intake", "referral", "rating")
        self.w = wt.Workdir(f"rating-once-{name}")
        self.ienv = ic.intake_env(self.w, WHISTLE_CLOCK="event")
        self.intake, ok = ic.start_intake(self.w, self.ienv)
        wt.check(ok, f"{name}: intake is up")
        self.renv = rc.referral_env(self.w, self.ienv)
        self.ref, ok = rc.start_referral(self.w, self.renv)
        wt.check(ok, f"{name}: referral is up")
        self.tenv = rtc.rating_env(self.w, self.ienv, self.renv, WHISTLE_BATCH="8",
                                   WHISTLE_PG=f"user=rating application_name={APP}")
        self.rat = None
        self.starts = 0
        self.hc = ic.HotlineClient(self.ienv["WHISTLE_INTAKE_HOTLINE"])
        self.hrid = 0
        self.units = Requester(self.renv["WHISTLE_REFERRAL_UNITS"], rc.UM, rc.Reply.UNAVAILABLE)
        self.rreq = Requester(self.tenv["WHISTLE_RATING_REQUESTS"], rtc.RM, rtc.Reply.UNAVAILABLE)
        self.rsub = rc.Subscriber(self.renv["WHISTLE_REFERRAL_STREAM"], "escalation", window=5000).open()
        self.tsub = rc.Subscriber(self.tenv["WHISTLE_RATING_STREAM"], "escalation").open()
        self.seen = 0           # referral stream events looked at
        self.steps = {}         # (ticket_no, step) -> StepIssued
        self.answers = []       # (ticket_no, step, action, at_us, status, code) of every unit update
        self.kills = []         # (what, detail)
        self.violation = {}     # ticket_no -> prohibition
        self.start_rating()

    # -- rating --
    def spawn_rating(self):
        """Starts the rating process without waiting for it."""
        self.rat = wt.Daemon(rtc.RATING, self.tenv, self.w.file("rating.log")).start()
        self.starts += 1

    def start_rating(self, spawned=False):
        if not spawned:
            self.spawn_rating()
        ctl = self.tenv["WHISTLE_CONTROL"]
        ok = wt.wait_for(lambda: (wt.status(ctl, 1.0) or {}).get("pg.up") == 1, 60, "rating's Postgres connection")
        wt.check(ok, f"{self.name}: rating is up (start {self.starts})")
        self.tsub.close()
        self.tsub.open()  # the producer restarted: subscribe again after the last seq received

    def kill_rating(self, what, detail=""):
        self.rat.kill9()
        self.kills.append((what, detail))
        wt.log(f"{self.name}: rating killed ({what}) {detail}")

    def rstatus(self):
        return wt.status(self.tenv["WHISTLE_CONTROL"], 1.0) or {}

    def applied(self):
        """Events rating has applied of the intake and referral streams."""
        s = wt.status(self.tenv["WHISTLE_CONTROL"], 0.5) or {}
        return s.get("intake.position", -1) + s.get("referral.position", -1)

    def heads(self):
        return head("intake") + head("referral")

    def positions(self):
        """Rating's committed positions in its two inputs, summed."""
        return int(wt.scalar("SELECT coalesce(sum(last_seq), 0) FROM rating.stream_positions"))

    def at_random_point(self, span, act, spawn=False):
        """In a thread: runs act() once rating has applied a random number
        (1..span) of its input events from now on; with spawn, rating is down
        and is started here (without waiting), so that act() may come while
        it catches up."""
        target = self.positions() + self.rng.randint(1, max(1, span))
        if spawn:
            self.spawn_rating()

        def run():
            wt.wait_for(lambda: self.applied() >= target, 60, f"rating to apply up to {target}", interval=0.002)
            act()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def kill_at_random(self, what, span):
        """In a thread: kills rating once it has applied a random number (up
        to span) of the events from now on."""
        def kill():
            self.rat.kill9()
            pos, hd = self.positions(), self.heads()
            self.kills.append((what, (pos, hd)))
            wt.log(f"{self.name}: rating killed ({what}) having applied {pos} of {hd} input events")

        return self.at_random_point(span, kill)

    def wait_rating_caught_up(self, timeout=60):
        return wt.wait_for(lambda: self.rating_caught_up(), timeout, "rating to apply its inputs")

    def rating_caught_up(self):
        self.tsub.pump(0)
        s = self.rstatus()
        return (s.get("pg.up") == 1 and s.get("intake.position") == head("intake")
                and s.get("referral.position") == head("referral"))

    # -- intake and referral --
    def push(self, makers):
        """Sends hotline requests (callables request id -> frame); their replies, in order."""
        frames = {}
        for make in makers:
            self.hrid += 1
            frames[self.hrid] = make(self.hrid)
        got = self.hc.push(frames, timeout=120)
        return [got.get(r) for r in sorted(frames)]

    def referral_idle(self):
        s = wt.status(self.renv["WHISTLE_CONTROL"], 2.0) or {}
        return (s.get("pg.up") == 1 and s.get("intake.position") == ic.stream_head()
                and s.get("server.pending") == 0)

    def new_steps(self):
        """Waits until referral has applied everything sent so far and its
        stream is read to its head; returns the steps issued since last time."""
        if not wt.wait_for(self.referral_idle, 60, "referral to apply intake's stream"):
            wt.check(False, f"{self.name}: referral applied intake's stream")
        hd = head("referral")
        rc.pump_all([self.rsub], lambda: self.rsub.last >= hd, 60, "referral's stream")
        self.tsub.pump(0)
        out = []
        while self.seen < len(self.rsub.events):
            _, kind, _, _, data = self.rsub.events[self.seen]
            self.seen += 1
            if kind == "step.issued":
                p = rc.payload(kind, data)
                if (p.ticket_no, p.step) not in self.steps:
                    self.steps[(p.ticket_no, p.step)] = p
                    out.append(p)
        return out

    def act(self, steps):
        """Units act on the steps (and on the steps those issue); returns
        {ticket_no: resolve time} of tickets whose referral became RESOLVED."""
        resolved = {}
        while steps:
            plans = {(p.ticket_no, p.step): (p, step_plan(p, self.violation.get(p.ticket_no) if p.step == 1 else None))
                     for p in steps}
            for stage in (0, 1):
                todo = [(p, acts[stage]) for p, acts in plans.values() if len(acts) > stage]
                replies = self.units.run(
                    [lambda rid, p=p, a=a: rc.update(rid, p.ticket_no, p.step, a[0], a[1], p.unit, **a[2])
                     for p, a in todo], idle=lambda: self.tsub.pump(0))
                for (p, a), r in zip(todo, replies):
                    self.answers.append((p.ticket_no, p.step, a[0], a[1], r.status if r else None,
                                         r.code if r else None))
                    if r and r.status == rc.Reply.APPLIED and a[0] == SU.RESOLVE and r.ticket_state == "RESOLVED":
                        resolved[p.ticket_no] = a[1]
            steps = self.new_steps()
        return resolved

    def month(self, y, mo, hooks):
        tickets, inspections = month_feed(y, mo)
        for t in tickets:
            if "violation" in t:
                self.violation[t["ticket_no"]] = t["violation"]
        # Tickets.
        hooks.get("tickets", lambda: None)()
        got = self.push([lambda rid, t=t: ic.submit(rid, **ic.ticket_fields(t)) for t in tickets])
        wt.check(all(r is not None and r.status == ic.ACCEPTED for r in got),
                 f"{self.name} {month_name(y, mo)}: {len(tickets)} tickets ACCEPTED by intake")
        more = [lambda rid, t=t: ic.triage(rid, t["ticket_no"], t["triage"][0], compound_code=t["triage"][1],
                                           category=t["triage"][2]) for t in tickets if "triage" in t]
        more += [lambda rid, t=t: ic.exempt(rid, t["ticket_no"], t["exempt"], "重复反映，核减")
                 for t in tickets if "exempt" in t]
        got = self.push(more)
        wt.check(all(r is not None and r.status == ic.ACCEPTED for r in got),
                 f"{self.name} {month_name(y, mo)}: {len(more)} triage completions and exemptions ACCEPTED")
        hooks.get("steps", lambda: None)()
        # Units act on their steps.
        resolved = self.act(self.new_steps())
        hooks.get("callbacks", lambda: None)()
        # Callbacks; UNSATISFIED ones reopen the step: the redo step is acted on.
        cbs = [(no, callback_plan(no, at)) for no, at in sorted(resolved.items())]
        cbs = [(no, c) for no, c in cbs if c]
        got = self.push([lambda rid, no=no, c=c: ic.feedback(rid, no, c[0], c[1]) for no, c in cbs])
        wt.check(all(r is not None and r.status == ic.ACCEPTED for r in got),
                 f"{self.name} {month_name(y, mo)}: {len(cbs)} callbacks ACCEPTED by intake")
        redo = self.new_steps()
        self.act(redo)
        hooks.get("inspections", lambda: None)()
        got = self.rreq.run([lambda rid, i=i: rtc.inspection(rid, *i) for i in inspections],
                            idle=lambda: self.tsub.pump(0))
        wt.check(all(r is not None and r.status in (rtc.Reply.APPLIED, rtc.Reply.DUPLICATE) for r in got),
                 f"{self.name} {month_name(y, mo)}: {len(inspections)} inspections recorded by rating")
        # The month's end.
        got = self.push([lambda rid: ic.watermark(rid, month_end(y, mo))])
        wt.check(got[0] is not None and got[0].status == ic.ACCEPTED,
                 f"{self.name} {month_name(y, mo)}: the watermark at the month's end ACCEPTED")
        hooks.get("close", lambda: None)()
        closed = wt.wait_for(lambda: (self.tsub.pump(0) or True) and
                             self.rstatus().get("rating.closed_month", 0) >= month_index(y, mo),
                             60, f"rating to close {month_name(y, mo)}")
        wt.check(closed, f"{self.name}: rating closed {month_name(y, mo)}"
                         f" ({len(redo)} redo steps, {len(resolved)} referrals resolved)")

    def finish(self):
        wt.check(self.wait_rating_caught_up(), f"{self.name}: rating applied all of its inputs")
        hd = head("rating")
        rc.pump_all([self.tsub], lambda: self.tsub.last >= hd, 60, "rating's stream")
        cl = rtc.RatingClient(self.tenv["WHISTLE_RATING_REQUESTS"])
        self.exports = exports(cl)
        cl.close()
        self.state = rating_state()
        self.outbox = outbox("rating")
        self.inputs = {s: outbox(s) for s in ("intake", "referral")}
        self.received = list(self.tsub.events)

    def stop(self):
        codes = [d.stop() for d in (self.rat, self.ref, self.intake)]
        wt.check(codes == [0, 0, 0], f"{self.name}: every daemon drains and exits 0 on SIGTERM ({codes})")
        logs = [os.path.join(self.w.path, f) for f in os.listdir(self.w.path) if f.endswith(".log")]
        wt.check(ic.sanitizer_clean(*logs), f"{self.name}: no sanitizer report in the daemons' logs")
        self.rating_log = self.rat.log_text()
        for s in (self.rsub, self.tsub):
            s.close()
        self.hc.close()
        self.units.close()
        self.rreq.close()
        self.w.cleanup()


# ---- faults for run (b) ------------------------------------------------------------

HOLD_SQL = """
DROP SCHEMA IF EXISTS rfault CASCADE;
CREATE SCHEMA rfault;
GRANT USAGE ON SCHEMA rfault TO rating;
CREATE TABLE rfault.gate (open boolean NOT NULL);
INSERT INTO rfault.gate VALUES (false);
-- Holds the calling statement (or COMMIT, for a deferred trigger) until the
-- test opens the gate (at most a minute).
CREATE FUNCTION rfault.hold() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = rfault, pg_temp AS $$
BEGIN
  FOR i IN 1..1200 LOOP
    EXIT WHEN (SELECT open FROM rfault.gate);
    PERFORM pg_sleep(0.05);
  END LOOP;
  RETURN NEW;
END $$;
"""
HOLD_INSERT = """
CREATE TRIGGER rfault_hold BEFORE INSERT ON rating.{table} FOR EACH ROW WHEN ({when})
  EXECUTE FUNCTION rfault.hold();
"""
HOLD_COMMIT = """
CREATE CONSTRAINT TRIGGER rfault_hold AFTER INSERT ON rating.{table} DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION rfault.hold();
"""


def kill_during_close(run, y, mo, table, when, at_commit=False):
    """Holds the month's close in its insert into rating.<table>, or at its
    COMMIT (a slow commit: a deferred trigger on that insert), kills rating
    there and lets the orphaned transaction go on. Held in the insert, it
    must leave nothing behind, and rating closes the month once restarted.
    Held at COMMIT, it commits; rating restarts while it is still committing,
    and must not close the month a second time."""
    psql_script(HOLD_SQL + (HOLD_COMMIT if at_commit else HOLD_INSERT).format(table=table, when=when))
    m = month_name(y, mo)
    where = "COMMIT" if at_commit else f"INSERT INTO {table}"

    def held():
        rows = wt.sql("SELECT pid, query FROM pg_stat_activity WHERE usename = 'rating'"
                      f" AND application_name = '{APP}' AND wait_event = 'PgSleep'"
                      f" AND query LIKE '{where}%'")
        return rows[0] if rows else None

    def left():
        """Rating's closed month, the month's rankings and how many period.closed."""
        return [int(x) for x in wt.sql(
            f"SELECT (SELECT closed_month FROM rating.clock),"
            f" (SELECT count(*) FROM rating.rankings WHERE month = {month_index(y, mo)}),"
            " (SELECT count(*) FROM rating.stream_outbox WHERE kind = 'period.closed')")[0]]

    def close_hook():
        got = wt.wait_for(held, 60, f"rating's close held in {where}", interval=0.02)
        wt.check(got is not None, f"{run.name}: {m}'s close is held in {where} ({table})")
        if not got:
            return
        pid = got[0]
        before = left()
        run.kill_rating("during the close", f"of {m}, held in {where} ({table}; backend {pid})")
        wt.check(held() is not None, f"{run.name}: the killed rating's backend is still in {where}")
        if at_commit:
            # Rating comes back while its last close is still committing: it
            # has read its clock once its status answers.
            run.spawn_rating()
            up = wt.wait_ready(run.tenv["WHISTLE_CONTROL"], timeout=10)
            wt.log(f"{run.name}: rating restarted while the close commits (closed month"
                   f" {(up or {}).get('rating.closed_month')})")
        wt.sql("UPDATE rfault.gate SET open = true")
        gone = wt.wait_for(lambda: wt.scalar(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") == "0",
                           30, "the orphaned backend to end")
        wt.check(gone, f"{run.name}: the orphaned close transaction ended once it went on")
        now = left()
        if at_commit:
            wt.check(now[0] == month_index(y, mo) and now[1] > 0 and now[2] > before[2],
                     f"{run.name}: the close of {m} held at COMMIT committed (closed month, rankings,"
                     f" period.closed: {before} before, {now} after)")
        else:
            wt.check(now == before and now[0] < month_index(y, mo) and now[1] == 0,
                     f"{run.name}: nothing of the close of {m} interrupted in its statement committed"
                     f" (closed month, rankings, period.closed: {before} before, {now} after)")
        psql_script("DROP SCHEMA rfault CASCADE;")
        run.start_rating(spawned=at_commit)
        if at_commit:
            wt.wait_for(lambda: run.rstatus().get("rating.closed_month", 0) >= month_index(y, mo), 30,
                        f"the restarted rating to know {m} closed")
            now = left()
            wt.check(now[2] == before[2] + 1,
                     f"{run.name}: the restarted rating did not close {m} again (period.closed events:"
                     f" expected {before[2] + 1}, got {now[2]})")

    return close_hook


def faulty_hooks(run, y, mo):
    """Where rating is killed (and Postgres restarted) in each month of run (b)."""
    if mo == 5:
        ts = []
        return {
            # While it applies the month's tickets and the steps issued for them.
            "tickets": lambda: ts.append(run.kill_at_random("applying tickets", PER_MONTH)),
            "steps": lambda: (ts.pop().join(), run.start_rating(),
                              ts.append(run.kill_at_random("applying unit updates", PER_MONTH))),
            "callbacks": lambda: (ts.pop().join(), run.start_rating()),
            "close": kill_during_close(run, y, mo, "decisions", f"NEW.key LIKE 'R-C4|%|{month_name(y, mo)}'",
                                       at_commit=True),
        }
    if mo == 6:
        ts = []
        restarted = []

        def applying():
            """Rating's backend held in an apply (its position advance)."""
            rows = wt.sql("SELECT pid FROM pg_stat_activity WHERE usename = 'rating'"
                          f" AND application_name = '{APP}' AND wait_event = 'PgSleep'"
                          " AND query LIKE '%stream_advance%'")
            return rows[0] if rows else None

        def after_updates():
            # Rating, killed while applying the tickets, was down while the
            # units acted: it restarts with a backlog, and Postgres restarts
            # while it applies it: its first apply is held (a test trigger on
            # its position advance) until Postgres is restarted under it.
            backlog = run.heads() - run.positions()
            wt.check(backlog > 1, f"{run.name}: rating has {backlog} events to apply")
            # Its own schema: the month's close fault (schema rfault) is already installed.
            psql_script(HOLD_SQL.replace("rfault", "rfault_apply") +
                        "CREATE TRIGGER rfault_apply_hold BEFORE INSERT OR UPDATE ON"
                        " rating.stream_positions FOR EACH ROW EXECUTE FUNCTION rfault_apply.hold();")
            run.spawn_rating()
            got = wt.wait_for(applying, 60, "rating's first apply to be held", interval=0.02)
            wt.check(got is not None, f"{run.name}: rating's apply of its backlog is held")
            restarted.append(run.positions())
            wt.log(f"{run.name}: restarting Postgres while rating applies")
            wt.pgdev("restart")

            def dropped():
                try:  # the gate opened first: rating's next apply is not held again
                    psql_script("UPDATE rfault_apply.gate SET open = true;"
                                " DROP SCHEMA IF EXISTS rfault_apply CASCADE;")
                    return True
                except subprocess.CalledProcessError:  # still starting up
                    return False
            wt.check(wt.wait_for(dropped, 30, "Postgres back to drop the trigger"),
                     f"{run.name}: Postgres is back after its restart")
            run.start_rating(spawned=True)
            wt.check(restarted and restarted[0] < run.heads(),
                     f"{run.name}: Postgres restarted while rating applied ({restarted} of {run.heads()})")
            wt.check(run.wait_rating_caught_up(), f"{run.name}: after the restart rating applied everything")
            wt.check("postgres connection lost" in run.rat.log_text(), f"{run.name}: rating saw its connection lost")

        return {
            "tickets": lambda: ts.append(run.kill_at_random("applying tickets", PER_MONTH)),
            "steps": lambda: ts.pop().join(),
            "callbacks": after_updates,
            "close": kill_during_close(run, y, mo, "rankings", f"NEW.month = {month_index(y, mo)}"),
        }
    ts = []
    return {
        "steps": lambda: ts.append(run.kill_at_random("applying steps and unit updates", PER_MONTH)),
        "callbacks": lambda: (ts.pop().join(), run.start_rating()),
        "close": kill_during_close(run, y, mo, "decisions", f"NEW.key LIKE 'R-C4|%|{month_name(y, mo)}'"),
    }


# ---- the runs ----------------------------------------------------------------------

wt.pgdev("start")
for schema in ("rfault", "rfault_apply"):  # a stopped run's holds: opened, then dropped
    psql_script(f"DO $$ BEGIN UPDATE {schema}.gate SET open = true;"
                " EXCEPTION WHEN undefined_table OR invalid_schema_name THEN NULL; END $$;"
                f" DROP SCHEMA IF EXISTS {schema} CASCADE;")
wt.log(f"fault seed {SEED} (WHISTLE_TEST_SEED)")
t0 = time.time()
a = Run("a")
for y, mo in MONTHS:
    a.month(y, mo, {})
a.finish()
a.stop()
wt.log(f"run (a): {time.time() - t0:.1f} s")

t1 = time.time()
b = Run("b")
for y, mo in MONTHS:
    b.month(y, mo, faulty_hooks(b, y, mo))
if not b.rat.alive():
    b.start_rating()
b.finish()
wt.log(f"run (b): {time.time() - t1:.1f} s, kills: {b.kills}")

# ---- the same inputs ---------------------------------------------------------------------


def no_wm(events):
    return [e for e in events if e[2] != "WATERMARK"]


wt.check(a.answers == b.answers, f"the units' updates got the same answers in both runs ({len(a.answers)} updates,"
                                 f" {Counter(x[4] for x in a.answers)})")
for s in ("intake", "referral"):
    # The same events; their order may differ where one batch of the
    # producer took requests that another batch of the other run did not
    # (e.g. intake appends a batch's exemptions before its triage completions).
    ev = {r: Counter((e[1], e[2], e[3], e[4]) for e in r.inputs[s]) for r in (a, b)}
    diff = list((ev[a] - ev[b]).items())[:2] + list((ev[b] - ev[a]).items())[:2]
    same_order = [e[1:] for e in a.inputs[s]] == [e[1:] for e in b.inputs[s]]
    wt.check(not diff, f"{s}'s stream holds the same events in both runs ({len(a.inputs[s])} and"
                       f" {len(b.inputs[s])}; in the same order: {same_order}; differing: {diff})")

# ---- the faults happened -------------------------------------------------------------------
applying = [k for k in b.kills if k[0].startswith("applying") and k[1][0] < k[1][1]]
closing = [k for k in b.kills if k[0] == "during the close"]
wt.check(len(b.kills) >= 4 and len(applying) >= 3 and len(closing) == 3,
         f"rating was killed {len(b.kills)} times: {len(applying)} while it had events to apply,"
         f" {len(closing)} during a month close")
wt.check(b.starts == len(b.kills) + 1, f"and restarted each time ({b.starts} starts)")

# ---- (b) gives what (a) gave ------------------------------------------------------------------
n_lines = {k: len(v) if v is not None else None for k, v in a.exports.items()}
wt.check(all(v for k, v in a.exports.items() if k != ("STARS", "2026Q3")) and a.exports[("STARS", "2026Q3")] is None,
         f"(a) exports every closed period, and nothing for the open quarter ({n_lines})")
diff = [k for k in a.exports if a.exports[k] != b.exports.get(k)]
wt.check(not diff, f"(b)'s exports equal (a)'s exactly (differing: {diff})")
rules = Counter(d["rule"] for d in a.exports[("DECISIONS", "")] or [])
p3 = sorted({d["key"].split("|")[0] for d in a.exports[("DECISIONS", "")] or [] if d["rule"] == "R-P3"})
wt.check(all(rules[r] for r in ("R-C4", "R-P3", "R-U3", "R-U4", "R-U5", "R-S3"))
         and p3 == [f"R-P3.{d}" for d in (1, 2, 3, 4)], f"the decisions cover the rules ({dict(rules)}; {p3})")
diff = [t for t in a.state if a.state[t] != b.state[t]]
wt.check(not diff, f"rating's facts, sums, results and clock in SQL are the same after (b) as after (a)"
                   f" (differing: {diff}; rows: {({t: len(v) for t, v in a.state.items()})})")


def canonical(kind, data):
    """An event's payload; a period.closed with its lists sorted (the order of
    its units is not defined)."""
    if kind != "period.closed":
        return data
    m = rtc.payload(kind, data)
    for field in (m.rankings, m.units, m.credit, m.stars):
        items = sorted(x.SerializeToString() for x in field)
        del field[:]
        for x in items:
            field.add().ParseFromString(x)
    return m.SerializeToString(deterministic=True)


ea = [(e[1], e[2], e[3], canonical(e[2], e[4])) for e in no_wm(a.outbox)]
eb = [(e[1], e[2], e[3], canonical(e[2], e[4])) for e in no_wm(b.outbox)]
wt.check(ea == eb, f"rating's stream holds the same decisions and closes, in the same order, after (b) as after (a)"
                   f" ({len(ea)} and {len(eb)} events)")

# ---- the outbox of each run ------------------------------------------------------------------
b.stop()
months = [month_name(y, mo) for y, mo in MONTHS]
for run in (a, b):
    per_row = Counter(r[0] for r in run.state["decisions"])
    wt.check(per_row and set(per_row.values()) == {1},
             f"{run.name}: no decision key twice in the decisions table ({len(per_row)} keys)")
    out = run.outbox
    hd = out[-1][0] if out else 0
    wt.check([e[0] for e in out] == list(range(1, hd + 1)), f"{run.name}: the outbox seqs are gapless 1..{hd}")
    per_key = Counter(rtc.payload(e[2], e[4]).key for e in out if e[2] == "decision")
    wt.check(set(per_key) == set(per_row) and set(per_key.values()) == {1},
             f"{run.name}: the outbox holds each decision key exactly once ({len(per_key)} keys; more than"
             f" once: {[(k, c) for k, c in per_key.items() if c != 1][:3]}; missing"
             f" {sorted(set(per_row) - set(per_key))[:3]}; not in the table {sorted(set(per_key) - set(per_row))[:3]})")
    closes = [rtc.payload(e[2], e[4]).month for e in out if e[2] == "period.closed"]
    wt.check(closes == months, f"{run.name}: exactly one period.closed per month, in order ({closes})")
    wms = [e[1] for e in out if e[2] == "WATERMARK"]
    wt.check(wms and all(x < y for x, y in zip(wms, wms[1:])) and wms[-1] == month_end(*MONTHS[-1]),
             f"{run.name}: rating's watermarks only move forward, to the last month's end ({len(wms)})")
    # (A close whose COMMIT was in flight when rating was killed is not logged.)
    logged = Counter(m for m in months for line in run.rating_log.splitlines()
                     if 'msg="month closed"' in line and f" month={m} " in line)
    wt.check(all(logged[m] == 1 for m in months) if run is a else all(logged[m] <= 1 for m in months),
             f"{run.name}: rating logged each month closed {'once' if run is a else 'at most once'}, over its"
             f" {run.starts} starts ({dict(logged)})")
    mism = [x[0] for x, y in zip(run.received, out) if (x[0], x[1], x[2], x[3], x[4]) != (y[0], y[2], y[3], y[1], y[4])]
    wt.check(len(run.received) == len(out) and not mism,
             f"{run.name}: the subscriber received exactly the outbox, in order, once ({len(run.received)} events"
             f" for {len(out)}; differing seqs {mism[:4]})")

wt.log(f"both runs: {time.time() - t0:.1f} s")
wt.done()
