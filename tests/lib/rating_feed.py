"""Drives intake, referral and rating together in event time for the rating
test drivers: local-time helpers (R-T1) and the working-day calendar of a
registry (R-T4, R-T5) to compute expectations with, the three daemons with a
full-access reader of referral's and of rating's stream, and a feed runner
that sends hotline, unit, operator and inspection actions one at a time in
time order, waiting for the referral steps an action needs before sending
it. Debian's python3-zmq and python3-protobuf only."""
import csv
import datetime
import json
import os
import shutil
import time

import wt
import intake_client as ic
import referral_client as rc
import rating_client as rtc

S = 1000000
H = 3600 * S
DAY = 24 * H
TZ = datetime.timezone(datetime.timedelta(hours=8))
SU = rc.SU


# ---- local time (R-T1) ------------------------------------------------------------


def local(y, m, d, hh=0, mm=0, ss=0):
    """Microseconds of a local (+08:00) wall time."""
    return int(datetime.datetime(y, m, d, hh, mm, ss, tzinfo=TZ).timestamp()) * S


def local_dt(us):
    return datetime.datetime.fromtimestamp(us // S, TZ)


def rfc3339(us):
    """What the exports write: local time with the offset, whole seconds."""
    return local_dt(us).strftime("%Y-%m-%dT%H:%M:%S+08:00")


def month_of(us):
    d = local_dt(us)
    return f"{d.year}-{d.month:02d}"


def month_end(month):
    """The instant a local month ends (the next month's first midnight)."""
    y, m = int(month[:4]), int(month[5:])
    return local(y + m // 12, m % 12 + 1, 1)


def quarter_of_month(month):
    return f"{month[:4]}Q{(int(month[5:]) - 1) // 3 + 1}"


def half_of_month(month):
    return f"{month[:4]}H{1 if int(month[5:]) <= 6 else 2}"


class Calendar:
    """Working days of a registry's calendar.csv (R-T4) and the deadlines of
    R-T5, computed here independently of the daemons."""

    def __init__(self, registry=ic.REGISTRY):
        self.kind = {}
        with open(os.path.join(registry, "calendar.csv"), newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                self.kind[datetime.date.fromisoformat(row["date"])] = row["kind"]

    def working(self, day):
        k = self.kind.get(day)
        if k == "HOLIDAY":
            return False
        if k == "WORKDAY":
            return True
        return day.weekday() < 5

    def workdays_end(self, start_us, n):
        """23:59:59 local of the n-th working day strictly after the local
        date of start_us (R-T5)."""
        day = local_dt(start_us).date()
        while n > 0:
            day += datetime.timedelta(days=1)
            if self.working(day):
                n -= 1
        return local(day.year, day.month, day.day, 23, 59, 59)


# ---- the export shapes ----------------------------------------------------------

SHAPES = {
    "rankings": ["company", "compound", "count", "in_top", "month", "rank", "streak"],
    "units": ["month", "population", "rank", "resolution", "response", "satisfaction", "score", "unit"],
    "credit": ["company", "grade", "score"],
    "stars": ["compound", "score", "stars"],
    "decisions": ["decision", "event_at", "evidence", "key", "measures", "period", "rule", "subject"],
}


def decimals_ok(v, places):
    """A JSON number written with at most `places` decimals."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    text = repr(v)
    return "e" not in text and (len(text.split(".")[1]) if "." in text else 0) <= places


def shape_problems(what, lines):
    """The shape and order problems of one export (a list of raw JSON lines),
    as words; empty when it is well formed (the documented export formats:
    keys, key order and separators, decimals, sort order)."""
    bad = []
    objs = []
    for i, line in enumerate(lines):
        try:
            o = json.loads(line)
        except ValueError:
            bad.append(f"line {i + 1} is not JSON")
            continue
        if line != json.dumps(o, ensure_ascii=False, sort_keys=True):
            bad.append(f"line {i + 1} is not written as json.dumps(sort_keys, unescaped): {line}")
        if sorted(o) != SHAPES[what]:
            bad.append(f"line {i + 1} has keys {sorted(o)}")
            continue
        objs.append(o)
        if what == "units":
            for k in ("response", "resolution"):
                if not decimals_ok(o[k], 4) or not 0 <= o[k] <= 1:
                    bad.append(f"line {i + 1}: {k} {o[k]!r} is not a fraction with 4 decimals")
            if o["satisfaction"] is not None and (not decimals_ok(o["satisfaction"], 4)
                                                   or not 0 <= o["satisfaction"] <= 1):
                bad.append(f"line {i + 1}: satisfaction {o['satisfaction']!r}")
            if not decimals_ok(o["score"], 2) or not 0 <= o["score"] <= 100:
                bad.append(f"line {i + 1}: score {o['score']!r} is not 0-100 with 2 decimals")
        if what == "stars" and (not decimals_ok(o["score"], 1) or o["stars"] not in range(6)):
            bad.append(f"line {i + 1}: score {o['score']!r} / stars {o['stars']!r}")
        if what == "credit" and o["grade"] not in ("A", "B", "C", "D"):
            bad.append(f"line {i + 1}: grade {o['grade']!r}")
        if what == "decisions" and (o["decision"] != (o["measures"] or [None])[0]
                                    or "." in o["rule"] or not o["key"].startswith(o["rule"])):
            bad.append(f"line {i + 1}: decision/rule/key do not fit: {line}")
    order = {"rankings": lambda o: (o["rank"], o["compound"]), "units": lambda o: o["unit"],
             "credit": lambda o: o["company"], "stars": lambda o: o["compound"],
             "decisions": lambda o: o["key"]}[what]
    keys = [order(o) for o in objs]
    if keys != sorted(keys):
        bad.append(f"{what} is not sorted as the export says")
    return bad


# ---- the daemons ------------------------------------------------------------------


def registry_with_rules(w, rows):
    """A copy of the sample registry with a rating_rules.csv rule table
    (header key,value)."""
    dst = w.file("registry")
    shutil.copytree(ic.REGISTRY, dst)
    with open(os.path.join(dst, "rating_rules.csv"), "w", encoding="utf-8") as f:
        f.write("key,value\n")
        for k, v in rows:
            f.write(f"{k},{v}\n")
    return dst


class Stack:
    """intake, referral and rating in event-clock mode on fresh schemas, a
    full-access reader ("escalation") of referral's stream (the steps) and of
    rating's (decisions, closes), and the clients of the three interfaces."""

    def __init__(self, name, rating_registry=None, w=None, registry=ic.REGISTRY):
        """registry: the registry intake and referral load (and rating, unless
        rating_registry names another, e.g. one with a rule table)."""
        wt.pgdev("start")
        wt.pgdev("reset", "intake", "referral", "rating")
        self.w = w or wt.Workdir(name)
        rating_registry = rating_registry or registry
        self.ienv = ic.intake_env(self.w, WHISTLE_CLOCK="event", WHISTLE_REGISTRY=registry)
        self.intake, ok1 = ic.start_intake(self.w, self.ienv)
        self.renv = rc.referral_env(self.w, self.ienv, registry=registry)
        self.ref, ok2 = rc.start_referral(self.w, self.renv)
        self.tenv = rtc.rating_env(self.w, self.ienv, self.renv, registry=rating_registry)
        self.rat, ok3 = rtc.start_rating(self.w, self.tenv)
        self.ok = ok1 and ok2 and ok3
        self.hc = ic.HotlineClient(self.ienv["WHISTLE_INTAKE_HOTLINE"])
        self.uc = rc.UnitClient(self.renv["WHISTLE_REFERRAL_UNITS"])
        self.cl = rtc.RatingClient(self.tenv["WHISTLE_RATING_REQUESTS"])
        self.rsub = rc.Subscriber(self.renv["WHISTLE_REFERRAL_STREAM"], "escalation", window=5000).open()
        self.tsub = rc.Subscriber(self.tenv["WHISTLE_RATING_STREAM"], "escalation", window=5000).open()
        self.steps = {}      # (ticket_no, step) -> StepIssued
        self.seen = 0        # referral events looked at
        self.rid = 0
        self.unexpected = []  # (what, reply) of replies that were not as expected
        self.sent = []       # the feed as sent: (at_us, what, key) in order

    def daemons(self):
        return [self.rat, self.ref, self.intake]

    # -- status and streams --
    def status(self, which):
        env = {"intake": self.ienv, "referral": self.renv, "rating": self.tenv}[which]
        return wt.status(env["WHISTLE_CONTROL"], 1.0) or {}

    def pump(self, wait_ms=0):
        """Takes what the readers have received (waiting up to wait_ms for
        referral's next events); notes the steps issued."""
        self.rsub.pump(wait_ms)
        self.tsub.pump(0)
        while self.seen < len(self.rsub.events):
            _, kind, _, _, data = self.rsub.events[self.seen]
            self.seen += 1
            if kind == "step.issued":
                p = rc.payload(kind, data)
                self.steps[(p.ticket_no, p.step)] = p

    def _until(self, cond, timeout, what):
        """Pumps the readers (waiting on referral's stream, not sleeping)
        until cond() holds; False on timeout."""
        end = time.time() + timeout
        while time.time() < end:
            self.pump(2)
            if cond():
                return True
        wt.log("timed out waiting for", what)
        return False

    def wait_step(self, ticket_no, step, timeout=30):
        ok = self._until(lambda: (ticket_no, step) in self.steps, timeout, f"step {ticket_no}#{step} issued")
        return self.steps.get((ticket_no, step)) if ok else None

    def settle(self, timeout=30):
        """Until referral has taken everything intake published and this
        reader has everything referral published (every step an earlier
        action caused is known)."""
        head = self.status("intake").get("stream.head")
        if head is None or not self._until(lambda: self.status("referral").get("intake.position", -1) >= head,
                                           timeout, "referral to take intake's stream"):
            return False
        rhead = self.status("referral").get("stream.head", 0)
        return self._until(lambda: self.rsub.last >= rhead, timeout, "the referral stream")

    def rating_clock(self):
        return int(self.status("rating").get("clock.out_watermark_us", 0))

    def closes(self):
        return int(self.status("rating").get("rating.closes", 0))

    def wait_closes(self, n, timeout=60):
        return rc.pump_all([], lambda: self.pump() or self.closes() >= n, timeout,
                           f"rating's close number {n}")

    def rating_events(self, kinds=("decision", "period.closed")):
        """(kind, event time, payload bytes) of rating's stream, in order."""
        self.pump()
        return [(k, e, p) for _, k, _, e, p in self.tsub.events if k in kinds]

    # -- actions --
    def _rid(self):
        self.rid += 1
        return self.rid

    def hotline(self, what, frame_fn, *args, want=(ic.ACCEPTED,)):
        rid = self._rid()
        r = self.hc.ask(frame_fn(rid, *args), rid)
        if r is None or r.status not in want:
            self.unexpected.append((what, r and (ic.STATUS_NAME.get(r.status), r.reason)))
        return r

    def ticket(self, at, ticket_no, **fields):
        self.sent.append((at, "ticket", ticket_no))
        return self.hotline(f"ticket {ticket_no}", lambda rid: ic.submit(
            rid, ticket_no=ticket_no, received_us=at, **fields))

    def feedback(self, at, ticket_no, satisfaction):
        self.sent.append((at, "feedback", f"{ticket_no}:{satisfaction}"))
        return self.hotline(f"feedback {ticket_no}", ic.feedback, ticket_no, at, satisfaction)

    def triage(self, at, ticket_no, compound="", category=""):
        self.sent.append((at, "triage", f"{ticket_no}:{compound}:{category}"))
        return self.hotline(f"triage {ticket_no}", ic.triage, ticket_no, at, compound, category)

    def exempt(self, at, ticket_no, reason="核减：重复反映已合并"):
        self.sent.append((at, "exempt", ticket_no))
        return self.hotline(f"exempt {ticket_no}", ic.exempt, ticket_no, at, reason)

    def watermark(self, at):
        self.sent.append((at, "watermark", ""))
        return self.hotline(f"watermark {rfc3339(at)}", ic.watermark, at)

    def unit(self, at, ticket_no, step, action, want=(rc.Reply.APPLIED,), **kw):
        """A unit's update of a step, sent by the step's unit once the step is
        known."""
        p = self.wait_step(ticket_no, step)
        self.sent.append((at, "update", f"{ticket_no}#{step}:{SU.Action.Name(action)}:{sorted(kw.items())}"))
        if p is None:
            self.unexpected.append((f"update {ticket_no}#{step}", "the step never came"))
            return None
        r = self.uc.ask(rc.update(self._rid(), ticket_no, step, action, at, p.unit, **kw))
        if r is None or r.status not in want:
            self.unexpected.append((f"{SU.Action.Name(action)} {ticket_no}#{step}",
                                    r and (rc.Reply.Status.Name(r.status), r.reason)))
        return r

    def redispatch(self, at, ticket_no, step, unit):
        self.wait_step(ticket_no, step)
        self.sent.append((at, "redispatch", f"{ticket_no}#{step}:{unit}"))
        r = self.uc.ask(rc.redispatch(self._rid(), ticket_no, step, unit, at, "改派"))
        if r is None or r.status != rc.Reply.APPLIED:
            self.unexpected.append((f"redispatch {ticket_no}#{step}",
                                    r and (rc.Reply.Status.Name(r.status), r.reason)))
        return r

    def inspect(self, at, inspection_id, compound, dims, want=(rtc.Reply.APPLIED,)):
        self.sent.append((at, "inspection", f"{inspection_id}:{compound}:{dims}"))
        r = self.cl.inspect(inspection_id, compound, at, dims)
        if r is None or r.status not in want:
            self.unexpected.append((f"inspection {inspection_id}",
                                    r and (rtc.Reply.Status.Name(r.status), r.reason)))
        return r

    # -- queries --
    def raw(self, what, period=""):
        """The raw lines of a query (paged), or None while pending / no answer."""
        lines, offset = [], 0
        while True:
            rid = self._rid()
            r = self.cl.ask(rtc.query(rid, what, period, offset))
            if r is None or r.status != rtc.Reply.APPLIED or r.pending:
                return None
            lines.extend(r.lines)
            offset += len(r.lines)
            if offset >= r.total or not r.lines:
                return lines

    def export(self, what, period=""):
        lines = self.raw(what, period)
        return None if lines is None else [json.loads(x) for x in lines]

    def close(self):
        for c in (self.uc, self.cl, self.hc):
            c.close()
        self.rsub.close()
        self.tsub.close()


def half_day_watermarks(start, end):
    """Watermarks at local 00:00 and 12:00 from start to end: event time goes
    on in steps well under a day (the bound of R-T3 on every input)."""
    t = start - start % (12 * H) + 4 * H  # a local midnight or noon (UTC+8)
    while t <= start:
        t += 12 * H
    out = []
    while t <= end:
        out.append(t)
        t += 12 * H
    return out


def wait_rating_clock(stack, at, timeout=30):
    """Until rating's clock is within half a day of `at` (an inspection may be
    at most a day ahead of it)."""
    return wt.wait_for(lambda: stack.rating_clock() >= at - 12 * H, timeout, "rating's clock")
