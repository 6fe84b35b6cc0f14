#!/usr/bin/python3
"""Replays a scenario (a registry directory and a scenario feed (docs/formats.md)) into real
intake, referral and rating daemons in event-clock mode, strictly in feed
order (rating_feed.Stack: each update waits for its step to be issued), and
counts the replies by line type and status. With an expectations file
(tools/gen_city.py --expect) it also compares what referral made of every
ticket: category, compound, state, and each step's number, unit, state,
issue reason and deadlines (R-I3..R-I5, R-R2..R-R6, R-T5).

    /usr/bin/python3 tests/lib/replay_py.py REGISTRY FEED [EXPECT]

Debian's python3-zmq and python3-protobuf only. Needs the private Postgres
cluster (tools/pgdev.sh) and a build."""
import collections
import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
import rating_client as rtc  # noqa: E402
import rating_feed as rf  # noqa: E402

DIMS = ("sanitation", "garbage", "greening", "order", "facilities", "disclosure", "governance")
TICKET_FIELDS = ("request_type", "hotline_category", "caller_phone", "caller_name", "compound_code",
                 "district", "address", "content")


def us(at):
    return int(datetime.datetime.fromisoformat(at).timestamp()) * rf.S


class Replay:
    def __init__(self, registry, name="replay"):
        self.st = rf.Stack(name, registry=registry)
        self.counts = collections.Counter()   # (type, status)
        self.problems = []                    # (line number, what)
        self.rid = 1 << 40

    def note(self, n, kind, status, want, what=""):
        self.counts[(kind, status)] += 1
        if status not in want:
            self.problems.append((n, f"{kind}: {status} {what}"))

    def hotline(self, n, kind, frame_fn, *args):
        self.rid += 1
        r = self.st.hc.ask(frame_fn(self.rid, *args), self.rid)
        status = ic.STATUS_NAME.get(r.status, r.status) if r else "NO_REPLY"
        self.note(n, kind, status, ("ACCEPTED",), r.reason if r else "")
        return r

    def line(self, n, o):
        st, kind, at = self.st, o["type"], us(o["at"])
        if kind == "ticket":
            fields = {k: o[k] for k in TICKET_FIELDS if o.get(k)}
            if o.get("urgency"):
                fields["urgency"] = int(o["urgency"])
            self.hotline(n, kind, lambda rid: ic.submit(rid, ticket_no=o["ticket_no"],
                                                         received_us=at, **fields))
        elif kind == "feedback":
            self.hotline(n, kind, ic.feedback, o["ticket_no"], at, o["satisfaction"])
        elif kind == "exempt":
            self.hotline(n, kind, ic.exempt, o["ticket_no"], at, o["reason"])
        elif kind == "watermark":
            self.hotline(n, kind, ic.watermark, at)
        elif kind == "triage" and o.get("unit"):
            # An operator's re-dispatch of a returned step (R-R3): the step is the
            # line's `step` (an extra field), else the ticket's last step.
            step = o.get("step") or max((s for (t, s) in st.steps if t == o["ticket_no"]), default=0)
            st.wait_step(o["ticket_no"], step) if step else None
            self.rid += 1
            r = st.uc.ask(rc.redispatch(self.rid, o["ticket_no"], step, o["unit"], at, "改派"))
            status = rc.Reply.Status.Name(r.status) if r else "NO_REPLY"
            self.note(n, "redispatch", status, ("APPLIED",), r.reason if r else "")
        elif kind == "triage":
            self.hotline(n, kind, ic.triage, o["ticket_no"], at, o.get("compound_code", ""),
                         o.get("category", ""))
        elif kind == "update":
            p = st.wait_step(o["ticket_no"], o["step"])
            if p is None:
                self.note(n, kind, "NO_STEP", ("APPLIED",), f"{o['ticket_no']}#{o['step']}")
                return
            if p.unit != o["unit"]:
                self.problems.append((n, f"update: step {o['ticket_no']}#{o['step']} is {p.unit}'s,"
                                         f" not {o['unit']}'s"))
            kw = {k: o[k] for k in ("note", "reason", "violation_confirmed", "prohibition") if o.get(k)}
            self.rid += 1
            r = st.uc.ask(rc.update(self.rid, o["ticket_no"], o["step"],
                                    rc.SU.Action.Value(o["action"]), at, o["unit"], **kw))
            status = rc.Reply.Status.Name(r.status) if r else "NO_REPLY"
            self.note(n, kind, status, ("APPLIED",), r.reason if r else "")
        elif kind == "inspection":
            rf.wait_rating_clock(st, at)
            r = st.cl.inspect(o.get("inspection_id") or f"L{n}", o["compound_code"], at,
                              [int(o[d]) for d in DIMS])
            status = rtc.Reply.Status.Name(r.status) if r else "NO_REPLY"
            self.note(n, kind, status, ("APPLIED",), r.reason if r else "")
        else:
            self.problems.append((n, f"unknown line type {kind}"))

    def run(self, feed):
        with open(feed, encoding="utf-8") as f:
            lines = [json.loads(x) for x in f if x.strip()]
        t0 = time.time()
        for n, o in enumerate(lines, 1):
            self.line(n, o)
            if n % 2000 == 0:
                wt.log(f"replay: {n}/{len(lines)} lines, {time.time() - t0:.0f}s")
        self.st.settle(60)
        return len(lines)

    def tickets(self):
        """What referral holds of every ticket, read from its schema (the ops
        TICKETS query is not served yet): {ticket_no: {state, category,
        compound, repeat_of, steps: [{step, unit, state, reason, issued_at,
        accept_by, resolve_by}]}}."""
        out = {}
        for no, state, cat, comp, rep, steps in wt.sql(
                "SELECT ticket_no, state, category, compound, repeat_of, steps::text"
                " FROM referral.tickets ORDER BY ticket_no"):
            out[no] = {"state": state, "category": cat, "compound": comp, "repeat_of": rep or None,
                       "steps": [{"step": x["no"], "unit": x["unit"], "state": x["state"],
                                  "reason": x["why"], "issued_at": rf.rfc3339(x["issued"]),
                                  "accept_by": rf.rfc3339(x["accept_by"]),
                                  "resolve_by": rf.rfc3339(x["resolve_by"])}
                                 for x in json.loads(steps)]}
        return out

    def compare(self, expect):
        """Differences between referral's tickets and the generator's expectations."""
        got = self.tickets()
        bad = []
        for e in expect:
            no = e["ticket_no"]
            g = got.get(no)
            if g is None:
                bad.append(f"{no}: referral does not know it")
                continue
            for k in ("category", "compound", "repeat_of"):
                if g[k] != e[k] and not (k == "compound" and e["disposition"] == "TRIAGE"):
                    bad.append(f"{no}: {k} {g[k]} != {e[k]}")
            if g["state"] != e["state"] and not (e["state"] == "OPEN" and g["state"] == "RETURNED"):
                bad.append(f"{no}: state {g['state']} != {e['state']}")
            if g["steps"] != e["steps"]:
                bad.append(f"{no}: steps {g['steps']} != {e['steps']}")
        return bad

    def rating(self, last_at, timeout=120):
        """Once rating's clock reached the feed's last watermark: decisions by
        rule and measure, and per month the projects in the top list and
        their streaks (R-C1..R-C4, R-P3, R-S3, R-U3..R-U5)."""
        wt.wait_for(lambda: self.st.rating_clock() >= last_at, timeout, "rating's clock")
        out = {}
        got = wt.wait_for(lambda: (lambda d: d is not None and [d])(self.st.export(rtc.Q.DECISIONS)),
                          timeout, "rating's decisions")  # [decisions], even when none
        decisions = got[0] if got else None
        out["decisions"] = collections.Counter(f"{d['rule']} {d['decision']}" for d in decisions or [])
        months = sorted({d["period"] for d in decisions or [] if len(d["period"]) == 7})
        for m in months:
            rows = self.st.export(rtc.Q.RANKINGS, m) or []
            top = [r for r in rows if r["in_top"]]
            out[f"top {m}"] = (len(top), collections.Counter(r["streak"] for r in top))
        return out

    def close(self):
        codes = [d.stop() for d in self.st.daemons()]
        self.st.close()
        return codes


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    rp = Replay(os.path.abspath(sys.argv[1]))
    if not rp.st.ok:
        sys.exit("replay: the daemons did not start")
    t0 = time.time()
    n = rp.run(sys.argv[2])
    print(f"replay: {n} lines in {time.time() - t0:.0f}s")
    for (kind, status), v in sorted(rp.counts.items()):
        print(f"  {kind:10s} {status:10s} {v}")
    for n_, what in rp.problems[:30]:
        print(f"  line {n_}: {what}")
    bad = []
    if len(sys.argv) == 4:
        with open(sys.argv[3], encoding="utf-8") as f:
            bad = rp.compare([json.loads(x) for x in f])
        print(f"expectations: {len(bad)} differences")
        for b in bad[:30]:
            print("  " + b)
    with open(sys.argv[2], encoding="utf-8") as f:
        last = [json.loads(x) for x in f if x.strip()][-1]
    for k, v in sorted(rp.rating(us(last["at"])).items()):
        print(f"  {k}: {dict(sorted(v.items())) if isinstance(v, dict) else v}")
    rp.close()
    sys.exit(1 if rp.problems or bad else 0)


if __name__ == "__main__":
    main()
