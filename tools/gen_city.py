#!/usr/bin/python3
"""tools/gen_city.py: generates a sample city (a registry in the registry (docs/formats.md)
format) and a quarter of activity over it (a scenario feed (docs/formats.md), sorted by `at`).
Seeded and deterministic: the same --seed and options give byte-identical output.
Python 3 standard library only.

    /usr/bin/python3 tools/gen_city.py --seed 1 --out DIR [--tickets 6000] [--quarter 2026Q4]

writes DIR/registry/*.csv (districts, streets, compounds, companies, departments,
calendar, hotline_categories, keywords, routing, categories; plus escalation's
notice_templates/ copied from the base registry) and DIR/feed.jsonl; with --expect,
also DIR/expect.jsonl: per ticket what intake and referral should make of it."""
# The city: 5 districts, 44 streets, about 3,000 compounds (小区, 花园, 苑, 家园 ...,
# with aliases such as "…小区" and "…二期" short forms; PROFESSIONAL majority, SELF,
# CUSTODIAL and NONE), about 300 property companies (…物业服务有限公司) managing
# several projects each, a manager per project. Departments, categories, keywords
# and routing are the base registry's (deploy/registry), the hotline category map
# is extended to more categories; the calendar is the base one (2026 official
# arrangement: 国庆/中秋 Oct 1-7 off, Sep 20 and Oct 10 worked) plus 2027-01-01.
#
# The quarter: tickets with a daily and weekly rhythm; keyword-classified texts
# (R-I3) and hotline codes; addresses naming a compound by name or alias, or its
# code (R-I4); unmatched and ambiguous addresses and unclassifiable texts
# completed by operator `triage` lines; repeat calls while the first is open
# (R-I5); CONSULT/SUGGEST (recorded); a few projects complained about heavily for
# one, two or three months running (R-C1..R-C4); confirmed prohibitions so that
# R-P3 fires at D = 1, 2, 3 and 4; unit behaviour (on time, late per R-R4/R-T5,
# silent for a long time, RETURN + operator re-dispatch, R-R3); callbacks with
# UNSATISFIED redo (R-R6) and closing (R-R2); exemptions; inspections (R-S1);
# watermarks every 12 hours of local time, the last one past the quarter's end.
#
# Step numbers in `update` lines are modelled on whistle-referral (R-R2,
# R-R3, R-R6, R-E3a): 1, 2, 3 ... per ticket in issue order; the next routing
# step after a RESOLVE with violation_confirmed; a new number for a re-dispatch
# and for a redo. An operator re-dispatch is a `triage` line with `unit` and the
# returned step's number in `step` (an extra field).
import argparse
import bisect
import datetime as dt
import json
import os
import random
import sys
import time

from gen_city_model import (  # noqa: E402 (tools/, the script's own directory)
    BASE, TZ, HOUR, DAY, ROADS, TEMPLATES, OPENERS, CLOSERS, CONSULT, SUGGEST, HELP,
    UNCLASSIFIED, UNMATCHED, COMPLAINT_CATS, HOT_CATS, REPORT_CATS, PROHIBITION_CAT,
    RETURN_REASONS, RESOLVE_NOTES, VIOLATION_NOTES, EXEMPT_REASONS, SATISFACTION_OK, epoch,
    local_date, iso, City,
)


def quarter_bounds(q):
    y, n = int(q[:4]), int(q[5])
    start = dt.date(y, 3 * n - 2, 1)
    end = dt.date(y + (n == 4), 1 if n == 4 else 3 * n + 1, 1)
    return start, end


class Ticket:
    __slots__ = ("at", "seq", "rtype", "cat", "compound", "phone", "name", "code_given",
                 "address", "content", "hotline", "no", "triage_at", "triage_comp",
                 "triage_cat", "plan", "repeat_of", "disposition", "steps", "state",
                 "first_resolve", "force")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, None)
        for k, v in kw.items():
            setattr(self, k, v)


class Quarter:
    def __init__(self, city, rnd, quarter, n_tickets):
        self.city, self.rnd = city, rnd
        self.q = quarter
        d0, d1 = quarter_bounds(quarter)
        self.start, self.end = epoch(d0), epoch(d1)
        self.days = (d1 - d0).days
        self.d0 = d0
        self.months = [(d0.year, d0.month + k) for k in range(3)]
        self.n = n_tickets
        self.tickets = []
        self.lines = []      # (at, order, obj)
        self.phones = set()
        self.seq = 0
        self.prof = [c for c in city.compounds if c["management"] == "PROFESSIONAL"]
        self.known = city.by_code
        self.insp_seq = 0
        self.unit_badness = {}
        for code, _ in city.departments:
            self.unit_badness[code] = 1.0
        for code in ("CGZF", "ZRZY"):
            self.unit_badness[code] = 2.5
        streets = [s["code"] for s in city.streets]
        for s in rnd.sample(streets, 6):
            self.unit_badness[s] = 3.0

    # -- people and places --
    def phone(self):
        while True:
            p = self.rnd.choice(["138", "139", "135", "137", "150", "158", "186", "187", "133",
                                 "189", "152", "177", "199"]) + f"{self.rnd.randrange(10 ** 8):08d}"
            if p not in self.phones:
                self.phones.add(p)
                return p

    def address(self, code):
        rnd, c = self.rnd, self.known[code]
        for attempt in range(20):
            name = rnd.choice([c["name"]] + c["aliases"])
            prefix = ""
            if rnd.random() < 0.3 and attempt < 10:
                st = self.city.street[c["street"]]
                prefix = self.city.district_name[st["district"]] + st["name"]
            b = rnd.randint(1, 30)
            form = rnd.random()
            if "号院" in name or "院" == name[-1]:
                addr = f"{prefix}{name}{rnd.randint(1, 6)}号楼"
            elif form < 0.55:
                addr = f"{prefix}{name}{b}号楼{rnd.randint(1, 4)}单元{rnd.randint(1, 33)}0{rnd.randint(1, 4)}室"
            elif form < 0.8:
                addr = f"{prefix}{name}{b}栋"
            elif form < 0.9:
                addr = f"{prefix}{name}{rnd.choice(['东门', '西门', '南门', '北门'])}附近"
            else:
                addr = f"{prefix}{name}"
            if self.city.matcher.match("", addr, self.known) == code:
                return addr
        raise SystemExit(f"gen_city: no unambiguous address for {code}")

    def content(self, cat):
        rnd = self.rnd
        text = rnd.choice(TEMPLATES[cat]).format(b=rnd.randint(1, 30))
        return rnd.choice(OPENERS) + text + rnd.choice(CLOSERS)

    def time_on(self, day, lo=7, hi=22):
        """A time on day (index in the quarter) with a daily rhythm."""
        rnd = self.rnd
        h = rnd.choices([7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22],
                        [2, 5, 9, 9, 7, 4, 4, 7, 8, 8, 6, 4, 5, 5, 3, 1])[0]
        h = min(max(h, lo), hi)
        d = self.d0 + dt.timedelta(days=day)
        return epoch(d) + h * HOUR + rnd.randrange(3600)

    def day_weights(self):
        w = []
        for k in range(self.days):
            d = self.d0 + dt.timedelta(days=k)
            x = 1.0 if self.city.calendar.working(d) else 0.7
            if self.city.calendar.kind.get(d) == "HOLIDAY":
                x = 0.55
            if d.weekday() == 0:
                x *= 1.15  # Mondays are busy
            w.append(x)
        return w

    def add(self, at, rtype, cat, compound, **kw):
        anonymous = kw.pop("anonymous", False)
        t = Ticket(at=at, seq=len(self.tickets), rtype=rtype, cat=cat, compound=compound,
                   plan=None, steps=[], hotline="", code_given="", force=False)
        for k, v in kw.items():
            setattr(t, k, v)
        if t.phone is None and not anonymous:
            t.phone, t.name = self.phone(), self.city.person()
        if t.content is None:
            t.content = self.content(cat)
        if t.address is None:
            if self.rnd.random() < 0.12:
                t.code_given = compound
                t.address = f"{self.rnd.randint(1, 30)}号楼{self.rnd.randint(1, 4)}单元"
            else:
                t.address = self.address(compound)
        if not kw.get("hotline") and cat in self.city.hotline_of and self.rnd.random() < 0.3 \
                and rtype in ("COMPLAINT", "REPORT"):
            t.hotline = self.city.hotline_of[cat]
        self.tickets.append(t)
        return t

    # -- tickets --
    def background(self, n):
        rnd = self.rnd
        dw = self.day_weights()
        weights = [c["households"] * (1.3 if c["management"] == "PROFESSIONAL" else 1.0)
                   for c in self.city.compounds]
        cum, acc = [], 0.0
        for x in weights:
            acc += x
            cum.append(acc)

        def compound():
            return self.city.compounds[bisect.bisect(cum, rnd.random() * acc)]["code"]
        days = rnd.choices(range(self.days), dw, k=n)
        for day in days:
            at = self.time_on(day)
            code = compound()
            roll = rnd.random()
            if roll < 0.56:
                self.add(at, "COMPLAINT", rnd.choice(COMPLAINT_CATS), code)
            elif roll < 0.68:
                cat = rnd.choice(REPORT_CATS)
                self.add(at, "REPORT", cat, code, anonymous=rnd.random() < 0.25)
            elif roll < 0.78:
                text, cat = rnd.choice(HELP)
                self.add(at, "HELP", cat, code, content=text.format(b=rnd.randint(1, 30)))
            elif roll < 0.87:
                text, cat = rnd.choice(CONSULT)
                self.add(at, "CONSULT", cat, code, content=text)
            elif roll < 0.92:
                text, cat = rnd.choice(SUGGEST)
                self.add(at, "SUGGEST", cat, code, content=text)
            elif roll < 0.955:  # an address naming no compound: triage, completed later
                cat = rnd.choice(COMPLAINT_CATS)
                r, r2 = rnd.sample(ROADS, 2)
                addr = rnd.choice(UNMATCHED).format(r=r, r2=r2, n=rnd.randint(200, 999))
                t = self.add(at, "COMPLAINT", cat, code, address=addr)
                t.triage_comp = code
            elif roll < 0.975:  # no keyword: category OTHER, triage names one
                t = self.add(at, "COMPLAINT", "OTHER", code, content=rnd.choice(UNCLASSIFIED))
                t.triage_cat = rnd.choice(["PS_FACILITY", "PS_SANITATION", "V_GARBAGE"])
            elif roll < 0.985:  # two compounds named alike: ambiguous
                other = compound()
                a, b = self.known[code], self.known[other]
                if len(a["name"]) != len(b["name"]) or a == b:
                    self.add(at, "COMPLAINT", rnd.choice(COMPLAINT_CATS), code)
                    continue
                t = self.add(at, "COMPLAINT", rnd.choice(COMPLAINT_CATS), code,
                             address=f"{a['name']}与{b['name']}之间的道路")
                t.triage_comp = code
            else:
                cat = rnd.choice(COMPLAINT_CATS)
                self.add(at, "COMPLAINT", cat, code)

    def month_days(self, k):
        y, m = self.months[k]
        d = dt.date(y, m, 1)
        e = dt.date(y + (m == 12), 1 if m == 12 else m + 1, 1)
        first = (d - self.d0).days
        return list(range(first, first + (e - d).days))

    def hot(self):
        """Projects complained about heavily: months running (R-C1..R-C4)."""
        rnd = self.rnd
        big = sorted(self.prof, key=lambda c: (-c["households"], c["code"]))[:200]
        companies = sorted({c["company"] for c in big})
        self.bad_companies = rnd.sample(companies, 4)
        pool = [c for c in big if c["company"] in self.bad_companies]
        rest = [c for c in big if c["company"] not in self.bad_companies]
        rnd.shuffle(pool)
        rnd.shuffle(rest)
        scale = self.n / 6000
        plan = []  # (compound, months, per month)
        for c in (pool + rest)[:8]:
            plan.append((c["code"], [0, 1, 2], max(3, round(rnd.randint(14, 20) * scale))))
        for c in rest[8:14]:
            plan.append((c["code"], rnd.choice([[0, 1], [1, 2]]), max(3, round(rnd.randint(8, 12) * scale))))
        for c in rest[14:20]:
            plan.append((c["code"], [rnd.randrange(3)], max(3, round(rnd.randint(8, 12) * scale))))
        # Each month some more projects with a few complaints above the rest,
        # so that the list's boundary (K = 30) falls on a count few projects tie at.
        others = [c for c in self.prof if c["code"] not in {p[0] for p in plan}]
        for k in range(3):
            for c in rnd.sample(others, 30):
                plan.append((c["code"], [k], max(1, round(rnd.randint(2, 7) * scale))))
        self.hot_projects = [p[0] for p in plan[:20]]
        for code, months, per in plan:
            for k in months:
                days = self.month_days(k)
                for _ in range(per):
                    at = self.time_on(rnd.choice(days))
                    self.add(at, "COMPLAINT", rnd.choice(HOT_CATS), code)

    def violations(self):
        """Confirmed prohibitions (R-P2) so that R-P3 fires at D = 1, 2, 3 and 4."""
        rnd = self.rnd
        plans = []
        projs = {co: [p for p in self.city.projects[co]] for co in self.bad_companies}
        a, b, c, d = self.bad_companies
        pa, pb, pc = sorted(projs[a]), sorted(projs[b]), sorted(projs[c])
        plans.append((pa[0], ["P7", "P2", "P3", "P9"]))  # D = 4: the company's blacklist
        if len(pa) > 1:
            plans.append((pa[1], ["P7", "P8"]))
        plans.append((pb[0], ["P2", "P7", "P6"]))        # D = 3: noncompliant, evicted
        if len(pb) > 1:
            plans.append((pb[1], ["P3", "P3"]))          # the same one twice: D stays 1
        plans.append((pc[0], ["P5", "P9"]))              # D = 2: a star down
        if len(pc) > 1:
            plans.append((pc[1], ["P1"]))                # an illegal building's chain
        plans.append((sorted(projs[d])[0], ["P4"]))
        others = [p for p in self.prof if p["company"] not in self.bad_companies]
        for p in rnd.sample(others, 6):
            plans.append((p["code"], [rnd.choice(["P2", "P3", "P7", "P8"])]))
        self.violation_plans = plans
        span = self.days - 12
        for code, ps in plans:
            days = sorted(rnd.sample(range(1, span), len(ps)))
            for day, p in zip(days, ps):
                cat = PROHIBITION_CAT[p]
                t = self.add(self.time_on(day, 8, 18), "COMPLAINT", cat, code)
                t.plan, t.force = p, True

    def repeats(self):
        """Callers who call again about the same matter while it is open (R-I5)."""
        rnd = self.rnd
        cands = [t for t in self.tickets if t.disposition == "DISPATCHED" and t.phone
                 and t.rtype in ("COMPLAINT", "REPORT") and t.triage_at is None]
        rnd.shuffle(cands)
        want = max(3, self.n // 40)
        made = []
        for e in cands:
            if len(made) >= want:
                break
            hi = min(e.at + 7 * DAY - HOUR, (e.first_resolve or self.end) - HOUR, self.end - 2 * HOUR)
            lo = e.at + 2 * HOUR
            if hi - lo < HOUR:
                continue
            at = rnd.randint(lo, hi)
            t = self.add(at, e.rtype, e.cat, e.compound, phone=e.phone, name=e.name,
                         content=rnd.choice(["再次反映：", "又来电反映：", "仍未解决："]) + self.content(e.cat),
                         hotline=e.hotline)
            t.repeat_of, t.disposition, t.state = e, "REPEAT", "REPEAT"
            made.append(t)
        return made

    def number(self):
        self.tickets.sort(key=lambda t: (t.at, t.seq))
        seq = {}
        for t in self.tickets:
            d = local_date(t.at).strftime("%Y%m%d")
            seq[d] = seq.get(d, 0) + 1
            t.no = f"12345-{d}-{seq[d]:06d}"

    # -- intake's decisions --
    def decide(self, t):
        m = self.city.matcher
        cat = m.classify(t.hotline, t.content)
        comp = m.match(t.code_given, t.address, self.known)
        if cat != t.cat:
            raise SystemExit(f"gen_city: {t.content!r} classifies as {cat}, not {t.cat}")
        want = "" if t.triage_comp else t.compound
        if comp != want:
            raise SystemExit(f"gen_city: {t.address!r} matches {comp!r}, not {want!r}")
        if not comp or cat == "OTHER":
            t.disposition = "TRIAGE"
        elif t.rtype in ("CONSULT", "SUGGEST"):
            t.disposition = "RECORDED"
        else:
            t.disposition = "DISPATCHED"
        t.state = {"TRIAGE": "TRIAGE", "RECORDED": "RECORDED", "DISPATCHED": "OPEN"}[t.disposition]

    # -- lines --
    def emit(self, at, obj):
        self.lines.append((at, len(self.lines), obj))

    def ticket_line(self, t):
        self.emit(t.at, {"type": "ticket", "at": iso(t.at), "ticket_no": t.no,
                         "request_type": t.rtype, "hotline_category": t.hotline,
                         "caller_phone": t.phone or "", "caller_name": t.name or "",
                         "compound_code": t.code_given, "address": t.address,
                         "content": t.content})

    # -- referral, modelled (R-R2, R-R3, R-R4, R-R6) --
    def behaviour(self, unit, forced):
        if forced:
            return "normal"
        bad = self.unit_badness.get(unit, 1.0)
        r = self.rnd.random()
        for kind, p in (("late_accept", 0.05 * bad), ("late_resolve", 0.05 * bad),
                        ("return", 0.03), ("silent", 0.012 * bad), ("slow", 0.015 * bad),
                        ("no_resolve", 0.012 * bad)):
            if r < p:
                return kind
            r -= p
        return "normal"

    def simulate(self, t):
        """The unit, operator and callback lines of a dispatched ticket, with the
        step numbers referral will give (R-E3a)."""
        rnd, city, cal = self.rnd, self.city, self.city.calendar
        chain = city.routes[t.cat]
        limit = self.end - 60  # nothing after the quarter

        def issue(unit, pos, ah, rw, at, why):
            s = {"step": len(t.steps) + 1, "unit": unit, "pos": pos, "ah": ah, "rw": rw,
                 "issued": at, "accept_by": at + ah * HOUR, "resolve_by": cal.workdays_end(at, rw),
                 "reason": why, "state": "ISSUED"}
            t.steps.append(s)
            t.state = "OPEN"
            return s

        def upd(s, at, action, **kw):
            o = {"type": "update", "at": iso(at), "ticket_no": t.no, "step": s["step"],
                 "unit": s["unit"], "action": action}
            o.update(kw)
            self.emit(at, o)

        start = t.triage_at or t.at
        unit, ah, rw = city.route(t.cat, 1, t.compound)
        s = issue(unit, 1, ah, rw, start, "ROUTE")
        returns, redone, violation_done = 0, False, False
        while True:
            kind = self.behaviour(s["unit"], t.force)
            if kind == "return" and returns >= 2:
                kind = "normal"
            issued, ab, rb = s["issued"], s["accept_by"], s["resolve_by"]
            if kind == "silent":
                return
            # accept
            if kind == "late_accept":
                ta = self.daytime(ab + rnd.randint(600, 36 * HOUR), ab + 600, ab + 40 * HOUR)
            elif kind == "slow":
                ta = self.daytime(issued + rnd.randint(5 * DAY, 15 * DAY), issued + 5 * DAY, issued + 16 * DAY)
            else:
                ta = self.daytime(issued + max(120, int(rnd.uniform(0.03, 0.75) * (ab - issued))),
                                  issued + 120, ab - 60)
            if kind == "return" and rnd.random() < 0.5:  # returned before accepting
                ta = None
            else:
                if ta >= limit:
                    return
                upd(s, ta, "ACCEPT")
                s["state"] = "ACCEPTED"
            if kind == "no_resolve":
                return
            if kind == "return":
                tr = (issued + max(300, int(rnd.uniform(0.1, 0.9) * (ab - issued)))) if ta is None \
                    else ta + rnd.randint(HOUR, 2 * DAY)
                if tr >= limit:
                    return
                upd(s, tr, "RETURN", reason=rnd.choice(RETURN_REASONS))
                s["state"] = "RETURNED"
                t.state = "OPEN"  # waits for re-dispatch
                returns += 1
                tt = self.daytime(tr + rnd.randint(1800, 10 * HOUR), tr + 1800, tr + 2 * DAY)
                if tt >= limit:
                    return
                new_unit = self.other_unit(t, s["unit"])
                self.emit(tt, {"type": "triage", "at": iso(tt), "ticket_no": t.no,
                               "compound_code": "", "category": "", "unit": new_unit,
                               "step": s["step"]})
                s = issue(new_unit, s["pos"], s["ah"], s["rw"], tt, "REDISPATCH")
                continue
            # resolve
            if kind == "late_resolve" or rb - ta < HOUR:
                tv = self.daytime(max(rb, ta) + rnd.randint(HOUR, 5 * DAY), max(rb, ta) + 600, max(rb, ta) + 6 * DAY)
            elif kind == "slow":
                tv = self.daytime(ta + rnd.randint(HOUR, 3 * DAY), ta + HOUR, ta + 4 * DAY)
            else:
                tv = self.daytime(ta + max(600, int(rnd.betavariate(1.3, 3.0) * (rb - 600 - ta))),
                                  ta + 600, rb - 60)
            if tv >= limit:
                return
            kw, violation = {}, False
            if t.plan and not violation_done and s["pos"] == 1:
                violation, violation_done = True, True
                kw = {"violation_confirmed": True, "prohibition": t.plan,
                      "note": VIOLATION_NOTES[t.plan]}
            elif len(chain) > 1 and s["pos"] < len(chain):
                violation = t.force or rnd.random() < 0.5
                kw = {"violation_confirmed": violation,
                      "note": "经核查情况属实，移交下一环节" if violation else "经核查未发现违法行为"}
            elif t.cat.startswith("V_") and rnd.random() < 0.4:
                violation = True
                kw = {"violation_confirmed": True, "note": "情况属实，已责令改正"}
            else:
                kw = {"violation_confirmed": False, "note": rnd.choice(RESOLVE_NOTES)}
            upd(s, tv, "RESOLVE", **kw)
            s["state"] = "RESOLVED"
            if violation and s["pos"] < len(chain):  # R-R2: the chain goes on
                unit, ah, rw = city.route(t.cat, s["pos"] + 1, t.compound)
                s = issue(unit, s["pos"] + 1, ah, rw, tv, "ROUTE")
                continue
            t.state = "RESOLVED"
            if t.first_resolve is None:
                t.first_resolve = tv
            close_by = cal.workdays_end(tv, 3)
            if close_by < self.end:  # closed by the last watermark at the latest (R-R2)
                t.state = "CLOSED"
            r = rnd.random()
            if r < 0.22:  # no callback: closed after 3 working days (R-R2)
                return
            if r < 0.27:  # a callback after the ticket closed: no state change
                tf = close_by + rnd.randint(2 * HOUR, 3 * DAY)
                if tf < limit:
                    self.emit(tf, {"type": "feedback", "at": iso(tf), "ticket_no": t.no,
                                   "satisfaction": rnd.choice(SATISFACTION_OK + ["UNSATISFIED"])})
                return
            tf = self.daytime(tv + rnd.randint(2 * HOUR, max(3 * HOUR, min(2 * DAY, close_by - tv - 2 * HOUR))),
                              tv + HOUR, close_by - HOUR)
            if tf >= limit:
                return
            if not redone and rnd.random() < 0.13:  # R-R6: redo
                self.emit(tf, {"type": "feedback", "at": iso(tf), "ticket_no": t.no,
                               "satisfaction": "UNSATISFIED"})
                s["state"] = "REOPENED"
                redone = True
                s = issue(s["unit"], s["pos"], s["ah"], 3, tf, "REDO")
                t.force = False
                continue
            self.emit(tf, {"type": "feedback", "at": iso(tf), "ticket_no": t.no,
                           "satisfaction": rnd.choice(SATISFACTION_OK)})
            t.state = "CLOSED"
            return

    def daytime(self, x, lo, hi):
        """x moved into 08:00-20:00 local (units and call-backs work by day)
        when that keeps it within [lo, hi]; else x."""
        h = dt.datetime.fromtimestamp(x, TZ).hour
        if 8 <= h < 20:
            return x
        d = local_date(x)
        r = self.rnd.randrange(3600)
        if h >= 20:
            cands = [epoch(d) + 19 * HOUR + r, epoch(d + dt.timedelta(days=1)) + 8 * HOUR + r]
        else:
            cands = [epoch(d) + 8 * HOUR + r, epoch(d - dt.timedelta(days=1)) + 19 * HOUR + r]
        for c in cands:
            if lo <= c <= hi:
                return c
        return x

    def other_unit(self, t, unit):
        """Where an operator re-dispatches a returned step (R-R3)."""
        street = self.known[t.compound]["street"]
        if unit in self.city.street:
            return "ZJ" if t.cat.startswith("PS_") else "CGZF"
        if t.cat.startswith("PS_"):
            return street
        alts = [d for d in ("CGZF", "ZJ", "GA", "STHJ", "YJGL", "SCJG") if d != unit]
        return self.rnd.choice(alts + [street])

    def operator(self):
        """Triage completions and exemptions."""
        rnd = self.rnd
        for t in self.tickets:
            if t.disposition != "TRIAGE":
                continue
            if rnd.random() < 0.08:
                continue  # left waiting in the queue
            at = t.at + rnd.randint(1800, 30 * HOUR)
            if at >= self.end - 3 * DAY:
                continue
            t.triage_at = at
            self.emit(at, {"type": "triage", "at": iso(at), "ticket_no": t.no,
                           "compound_code": t.triage_comp or "", "category": t.triage_cat or "",
                           "unit": ""})
            if t.triage_cat:
                t.cat = t.triage_cat
            t.disposition = "RECORDED" if t.rtype in ("CONSULT", "SUGGEST") else "DISPATCHED"
            t.state = "OPEN" if t.disposition == "DISPATCHED" else "RECORDED"

    def exemptions(self):
        rnd = self.rnd
        cands = [t for t in self.tickets if t.disposition == "DISPATCHED" and t.rtype == "COMPLAINT"
                 and city_counts(self.city, t.cat) and t.plan is None
                 and self.known[t.compound]["management"] == "PROFESSIONAL"]
        hot = [t for t in cands if t.compound in self.hot_projects]
        pick = rnd.sample(hot, min(len(hot), max(2, self.n // 600))) + \
            rnd.sample(cands, min(len(cands), max(3, self.n // 150)))
        done = set()
        for t in pick:
            if t.no in done:
                continue
            d = local_date(t.at)
            month_end = epoch(dt.date(d.year + (d.month == 12), 1 if d.month == 12 else d.month + 1, 1))
            at = t.at + rnd.randint(2 * HOUR, 4 * DAY)
            if at >= month_end - HOUR:
                continue
            done.add(t.no)
            self.emit(at, {"type": "exempt", "at": iso(at), "ticket_no": t.no,
                           "reason": rnd.choice(EXEMPT_REASONS)})
        self.exempted = done

    def inspections(self):
        """Quarterly inspections of PROFESSIONAL projects (R-S1): every project
        once for a large feed, a sample for a small one; the hot and violating
        projects always, some twice."""
        rnd = self.rnd
        special = set(self.hot_projects) | {c for c, _ in self.violation_plans}
        others = [c["code"] for c in self.prof if c["code"] not in special]
        k = min(len(others), max(40, self.n // 3))
        chosen = sorted(special) + sorted(rnd.sample(others, k))
        quality = {co["code"]: rnd.uniform(72, 96) for co in self.city.companies}
        for co in self.bad_companies:
            quality[co] = rnd.uniform(45, 62)
        work = [k2 for k2 in range(5, self.days - 3)
                if self.city.calendar.working(self.d0 + dt.timedelta(days=k2))]
        for code in chosen:
            c = self.known[code]
            times = 2 if code in special and rnd.random() < 0.5 else 1
            for day in sorted(rnd.sample(work, times)):
                at = epoch(self.d0 + dt.timedelta(days=day)) + rnd.randint(9 * HOUR, 17 * HOUR)
                base = quality[c["company"]]
                dims = {}
                for dim in ("sanitation", "garbage", "greening", "order", "facilities", "disclosure",
                            "governance"):
                    dims[dim] = max(0, min(100, int(round(rnd.gauss(base, 8)))))
                self.insp_seq += 1
                o = {"type": "inspection", "at": iso(at), "compound_code": code}
                o.update(dims)
                o["inspection_id"] = f"{self.q}-{self.insp_seq:05d}"
                self.emit(at, o)

    def watermarks(self):
        t = self.start
        while t <= self.end:
            self.emit(t, {"type": "watermark", "at": iso(t)})
            t += 12 * HOUR
        self.emit(self.end + 1, {"type": "watermark", "at": iso(self.end + 1)})

    def run(self):
        self.hot()
        self.violations()
        rest = self.n - len(self.tickets) - max(3, self.n // 40)
        self.background(max(0, rest))
        for t in self.tickets:
            self.decide(t)
        self.number()
        self.operator()
        for t in sorted(self.tickets, key=lambda x: (x.triage_at or x.at, x.seq)):
            if t.disposition == "DISPATCHED":
                self.simulate(t)
        made = self.repeats()
        for t in made:
            self.decide(t)
            t.disposition, t.state = "REPEAT", "REPEAT"
        self.number_again(made)
        for t in self.tickets:
            self.ticket_line(t)
        self.exemptions()
        self.inspections()
        self.watermarks()
        # Watermarks after everything at their time; otherwise generation order
        # (which keeps each ticket's lines in causal order).
        self.lines.sort(key=lambda x: (x[0], x[2]["type"] == "watermark", x[1]))

    def number_again(self, made):
        """Repeats arrive between other calls: ticket numbers are per day in
        time order, so the whole quarter is numbered again; lines already
        written name tickets by number and are rewritten."""
        old = {id(t): t.no for t in self.tickets}
        self.number()
        remap = {old[id(t)]: t.no for t in self.tickets if old[id(t)] and old[id(t)] != t.no}
        if remap:
            for _, _, o in self.lines:
                if o.get("ticket_no") in remap:
                    o["ticket_no"] = remap[o["ticket_no"]]


def city_counts(city, cat):
    return city.cat[cat]["counts"] == "1"


def expectations(qr):
    """Per ticket: what intake decides and the steps referral issues."""
    out = []
    for t in sorted(qr.tickets, key=lambda x: x.no):
        out.append({"ticket_no": t.no, "category": t.cat, "compound": t.compound if
                    t.disposition != "TRIAGE" else "", "disposition": t.disposition,
                    "repeat_of": t.repeat_of.no if t.repeat_of else None, "state": t.state,
                    "exempt": t.no in qr.exempted, "violation": t.plan,
                    "steps": [{"step": s["step"], "unit": s["unit"], "state": s["state"],
                               "reason": s["reason"], "issued_at": iso(s["issued"]),
                               "accept_by": iso(s["accept_by"]), "resolve_by": iso(s["resolve_by"])}
                              for s in t.steps]})
    return out


def main():
    ap = argparse.ArgumentParser(
        description="Generate a sample city registry and a quarter's scenario feed "
                    "(SCENARIO formats), deterministically from a seed.")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--out", required=True, help="output directory (registry/ and feed.jsonl)")
    ap.add_argument("--tickets", type=int, default=6000, help="about this many tickets (default 6000)")
    ap.add_argument("--quarter", default="2026Q4", help="quarter of activity, e.g. 2026Q4 (default)")
    ap.add_argument("--compounds", type=int, default=3000, help="compounds in the city (default 3000)")
    ap.add_argument("--base", default=BASE, help="registry whose departments, categories, keywords, "
                    "routing and calendar are reused (default deploy/registry)")
    ap.add_argument("--expect", action="store_true",
                    help="also write expect.jsonl: intake's decision and referral's steps per ticket")
    a = ap.parse_args()
    if len(a.quarter) != 6 or a.quarter[4] != "Q" or a.quarter[5] not in "1234" or not a.quarter[:4].isdigit():
        ap.error("--quarter: YYYYQn")
    if a.tickets < 100 or a.compounds < 200:
        ap.error("--tickets at least 100, --compounds at least 200")
    t0 = time.time()
    rnd = random.Random(a.seed)
    city = City(rnd, a.compounds, a.base)
    qr = Quarter(city, rnd, a.quarter, a.tickets)
    qr.run()
    city.write(os.path.join(a.out, "registry"))
    with open(os.path.join(a.out, "feed.jsonl"), "w", encoding="utf-8") as f:
        for _, _, o in qr.lines:
            f.write(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n")
    if a.expect:
        with open(os.path.join(a.out, "expect.jsonl"), "w", encoding="utf-8") as f:
            for o in expectations(qr):
                f.write(json.dumps(o, ensure_ascii=False, sort_keys=True) + "\n")
    kinds, disp = {}, {}
    for _, _, o in qr.lines:
        kinds[o["type"]] = kinds.get(o["type"], 0) + 1
    for t in qr.tickets:
        disp[t.disposition] = disp.get(t.disposition, 0) + 1
    mgmt = {}
    for c in city.compounds:
        mgmt[c["management"]] = mgmt.get(c["management"], 0) + 1
    print(f"gen_city: {len(city.streets)} streets, {len(city.compounds)} compounds ("
          + ", ".join(f"{v} {k}" for k, v in sorted(mgmt.items())) + f"), {len(city.companies)} companies; "
          f"{len(qr.lines)} lines: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
          + "; tickets: " + ", ".join(f"{v} {k}" for k, v in sorted(disp.items()))
          + f" ({time.time() - t0:.1f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
