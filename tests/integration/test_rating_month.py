"""Rating over October-December 2026 on the real daemons: tickets, unit
actions, callbacks, triage and exemptions through intake and referral,
inspections to rating, event time moved on by hotline watermarks. Every
expectation is computed here from the rules (a small model of the scenario
below, independent of the daemon), then compared with what rating publishes:

R-C1 counting (repeats only when referral does not refer them, exempted,
in triage at close, triaged after the close, CONSULT/SUGGEST/HELP and
non-counting categories, non-PROFESSIONAL compounds, a returned step waiting
for re-dispatch, the month of a ticket in local time R-T1); R-C2 competition
ranks with ties under a rule table with K = 2 (rating_rules.csv, rule set
"v1-test" on every decision and close); R-C3/R-C4 streaks over three months;
R-P2/R-P3 violations (the unit's code, one per ticket, distinct codes, D = 4
once per company, non-PROFESSIONAL ignored); R-K1/R-K2 running credit after
each close, floor 0, grades A-D; R-S1..R-S3 stars at the Q4 close (mean of
weighted inspections rounded half away from zero, minus one star at D >= 2,
NONCOMPLIANT at D >= 3 or no star left); R-U1/R-U2 unit scores from accept
and resolve times against deadlines and callbacks (returned steps out,
reopened steps unresolved as of the month close, callbacks after closing
still counted); R-U3 department bottom 3 monthly and quarterly, R-U4 and
R-U5 at the December checkpoint; R-E2a event times; the export shapes."""
import json
import os
import sys
import time
from decimal import Decimal
from fractions import Fraction

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
import rating_client as rtc  # noqa: E402
import rating_feed as rf  # noqa: E402

H, S = rf.H, rf.S
Q = rtc.Q
SU = rf.SU
RULE_SET, TOP_K = "v1-test", 2
MONTHS = ["2026-10", "2026-11", "2026-12"]


def D(m, d, hh, mm=0, ss=0):
    return rf.local(2026, m, d, hh, mm, ss)


# ---- the registry, read here for the model ----------------------------------------
REG = {r["code"]: r for r in ic.registry_rows("compounds.csv")}
STREET_DISTRICT = {r["code"]: r["district"] for r in ic.registry_rows("streets.csv")}
COMPANIES = sorted(r["code"] for r in ic.registry_rows("companies.csv"))
COUNTS = {r["category"]: r["counts"] == "1" for r in ic.registry_rows("categories.csv")}
ROUTING = {}
for r in ic.registry_rows("routing.csv"):
    ROUTING.setdefault(r["category"], []).append((int(r["step"]), r["unit"], int(r["accept_hours"]),
                                                  int(r["resolve_workdays"])))
HOTLINE = {}
for r in ic.registry_rows("hotline_categories.csv"):
    HOTLINE.setdefault(r["category"], r["hotline_code"])
CAL = rf.Calendar()
DEDUCT = {"P1": 10, "P2": 3, "P3": 1, "P4": 5, "P5": 10, "P6": 10, "P7": 5, "P8": 5, "P9": 10}
P3_MEASURES = {1: ["CREDIT_DEDUCT", "INTERVIEW_COMPANY", "RECTIFY", "SUGGEST_REPLACE_MANAGER"],
               2: ["STAR_DOWNGRADE"], 3: ["NONCOMPLIANT", "EVICT"],
               4: ["BLACKLIST_COMPANY", "JOINT_PUNISHMENT"]}
C4_MEASURES = {1: "INTERVIEW_COMPANY", 2: "REPLACE_MANAGER", 3: "BLACKLIST"}
WEIGHTS = [20, 15, 10, 15, 20, 10, 10]   # R-S1, percent
NEUTRAL = "来电反映问题，请尽快处理"       # matches no keyword: the category comes from the hotline code


def routing(cat, compound):
    """R-R1: PS_* categories of a compound that is not PROFESSIONAL go to its street."""
    if cat.startswith("PS_") and REG[compound]["management"] != "PROFESSIONAL":
        return [(1, "STREET", 24, 5)]
    return sorted(ROUTING[cat])


def exact_half_up(x, places):
    """Fraction -> Decimal rounded half away from zero, without going through
    a binary float or a 28-digit Decimal division first."""
    scaled = x * 10 ** places
    n = (scaled.numerator * 2 + scaled.denominator) // (2 * scaled.denominator)
    return Decimal(n).scaleb(-places)


# ---- the scenario -------------------------------------------------------------------
TICKETS = {}
_phone = [0]


class Tk:
    """A ticket of the scenario and what is done with it (times absolute)."""

    def __init__(self, no, at, cat, comp=None, rtype="COMPLAINT", unmatched=False, phone=None,
                 repeat=False, content=None):
        _phone[0] += 1
        self.no, self.at, self.cat, self.comp, self.rtype = no, at, cat, comp, rtype
        self.unmatched, self.repeat = unmatched, repeat
        self.phone = phone or f"139{_phone[0]:08d}"
        self.content = content
        self.sent_cat, self.sent_comp = cat, comp   # as the hotline sends it (triage completes later)
        self.ops = []
        TICKETS[no] = self

    def fields(self):
        f = {"request_type": self.rtype, "caller_phone": self.phone, "caller_name": "张三",
             "content": self.content or NEUTRAL}
        if self.sent_cat and self.sent_cat in HOTLINE:
            f["hotline_category"] = HOTLINE[self.sent_cat]
        if self.unmatched:
            f["address"] = "某某路88号附近"
        else:
            f["compound_code"], f["address"] = self.sent_comp, "3号楼2单元"
        return f

    def acc(self, step, t):
        self.ops.append((t, "acc", step))
        return self

    def res(self, step, t, proh=None, viol=None):
        self.ops.append((t, "res", step, bool(proh) if viol is None else viol, proh or ""))
        return self

    def ok(self, step, issued, res_after=24 * H):
        return self.acc(step, issued + H).res(step, issued + res_after)

    def ret(self, step, t):
        self.ops.append((t, "ret", step))
        return self

    def redisp(self, step, unit, t):
        self.ops.append((t, "redisp", step, unit))
        return self

    def cb(self, t, sat):
        self.ops.append((t, "cb", sat))
        return self

    def triage(self, t, comp="", cat=""):
        self.ops.append((t, "triage", comp, cat))
        return self

    def exempt(self, t):
        self.ops.append((t, "exempt"))
        return self


PX, PY = "13900000001", "13900000002"
# ---------------- October ----------------
# C0001 (S0101, E001): five counted, two CONSULT calls.
Tk("RM-C1-01", D(10, 8, 9), "PS_SANITATION", "C0001").ok(1, D(10, 8, 9)).cb(D(10, 9, 15), "SATISFIED")
Tk("RM-C1-02", D(10, 12, 9), "PS_GREENING", "C0001", rtype="REPORT").acc(1, D(10, 12, 10)) \
    .res(1, D(10, 13, 9), "P2")
Tk("RM-C1-03", D(10, 19, 9), "PS_ORDER", "C0001").acc(1, D(10, 20, 12, 30)).res(1, D(10, 21, 9)) \
    .cb(D(10, 22, 10), "BASICALLY_SATISFIED")
Tk("RM-C1-04", D(10, 26, 9), "PS_FACILITY", "C0001").acc(1, D(10, 26, 10)).ret(1, D(10, 28, 9)) \
    .redisp(1, "CGZF", D(11, 2, 10)).acc(2, D(11, 2, 11)).res(2, D(11, 4, 10)).cb(D(11, 5, 10), "SATISFIED")
Tk("RM-C1-05", D(10, 31, 23, 59, 30), "PS_SANITATION", "C0001").acc(1, D(11, 2, 9)).res(1, D(11, 3, 9))
Tk("RM-C1-X1", D(10, 14, 9, 30), "PS_SANITATION", "C0001", rtype="CONSULT")
Tk("RM-C1-X2", D(10, 15, 9, 30), "PS_GREENING", "C0001", rtype="CONSULT")
# C0002 (S0101, E001): four counted; exempted, triaged after the close, still in
# triage, a non-counting category, a SUGGEST.
Tk("RM-C2-01", D(10, 9, 10), "PS_SANITATION", "C0002").ok(1, D(10, 9, 10)).cb(D(10, 16, 10), "UNSATISFIED")
Tk("RM-C2-02", D(10, 13, 10), "PS_SANITATION", "C0002").ok(1, D(10, 13, 10))
Tk("RM-C2-03", D(10, 16, 10), "PS_GREENING", "C0002").acc(1, D(10, 16, 11))
Tk("RM-C2-04", D(10, 20, 10), "PS_ORDER", "C0002", rtype="REPORT").ok(1, D(10, 20, 10))
Tk("RM-C2-E", D(10, 14, 10), "PS_SANITATION", "C0002").ok(1, D(10, 14, 10)).exempt(D(10, 20, 15))
Tk("RM-C2-T", D(10, 21, 10), "PS_SANITATION", unmatched=True).triage(D(11, 3, 10), comp="C0002") \
    .ok(1, D(11, 3, 10))
Tk("RM-C2-U", D(10, 27, 10), None, "C0002")
Tk("RM-C2-N", D(10, 22, 10), "V_NOISE", "C0002").ok(1, D(10, 22, 10)).cb(D(10, 24, 10), "SATISFIED")
Tk("RM-C2-S", D(10, 23, 10), "PS_SANITATION", "C0002", rtype="SUGGEST")
# C0003 (S0101, E002): four counted (one triaged before the close, one that
# intake may take for a repeat of a referral already closed), a true repeat,
# a HELP, one triaged after the close.
Tk("RM-C3-A2", D(10, 8, 9, 30), "PS_GREENING", "C0003", phone=PY).acc(1, D(10, 8, 10, 30)) \
    .res(1, D(10, 8, 15)).cb(D(10, 9, 9), "SATISFIED")
Tk("RM-C3-B2", D(10, 12, 9), "PS_GREENING", "C0003", phone=PY).acc(1, D(10, 12, 10)).res(1, D(10, 13, 10))
Tk("RM-C3-A", D(10, 12, 10), "PS_SANITATION", "C0003", phone=PX).acc(1, D(10, 12, 11)) \
    .res(1, D(10, 16, 10), "P3")
Tk("RM-C3-B", D(10, 14, 10), "PS_SANITATION", "C0003", phone=PX, repeat=True)
Tk("RM-C3-T", D(10, 15, 10), "PS_GREENING", unmatched=True).triage(D(10, 20, 10), comp="C0003") \
    .ok(1, D(10, 20, 10))
Tk("RM-C3-H", D(10, 19, 10), "PS_SANITATION", "C0003", rtype="HELP").ok(1, D(10, 19, 10))
Tk("RM-C3-L", D(10, 27, 10), None, "C0003").triage(D(11, 3, 11), cat="PS_ORDER").ok(1, D(11, 3, 11))
# C0004 (NONE, S0101): more complaints than anyone, never ranked; a step
# resolved in October and reopened in November.
for i, day in enumerate([8, 9, 12, 13, 14, 15]):
    Tk(f"RM-C4-0{i + 1}", D(10, day, 11), "PS_SANITATION", "C0004").ok(1, D(10, day, 11))
Tk("RM-C4-R", D(10, 22, 9), "PS_SANITATION", "C0004").acc(1, D(10, 22, 10)).res(1, D(10, 29, 10)) \
    .cb(D(11, 2, 10), "UNSATISFIED").acc(2, D(11, 2, 12, 30)).res(2, D(11, 4, 10)).cb(D(11, 5, 9), "SATISFIED")
# C0008 (S0201, E003): one counted; two P2 confirmed by CGZF.
Tk("RM-C8-01", D(10, 9, 9), "PS_SANITATION", "C0008").ok(1, D(10, 9, 9))
Tk("RM-C8-V1", D(10, 12, 9, 5), "V_GARBAGE", "C0008").acc(1, D(10, 12, 10)).res(1, D(10, 14, 9), "P2") \
    .cb(D(10, 15, 9), "SATISFIED")
Tk("RM-C8-V2", D(10, 15, 9), "V_GARBAGE", "C0008").acc(1, D(10, 15, 10)).res(1, D(10, 20, 9), "P2")
# C0005 (SELF, S0102): a violation claimed against a compound without a
# company; a redo (UNSATISFIED on a resolved ticket); a step never accepted.
Tk("RM-C5-V", D(10, 13, 9), "V_GARBAGE", "C0005").acc(1, D(10, 13, 10)).res(1, D(10, 15, 9), "P2")
Tk("RM-C5-R", D(10, 12, 9, 15), "PS_SANITATION", "C0005").acc(1, D(10, 12, 10)).res(1, D(10, 13, 9)) \
    .cb(D(10, 14, 10), "UNSATISFIED").acc(2, D(10, 14, 11)).res(2, D(10, 16, 10)).cb(D(10, 17, 10), "SATISFIED")
Tk("RM-C5-2", D(10, 20, 9, 15), "PS_SANITATION", "C0005")
# Departments, on compounds without a company.
Tk("RM-ZJ-1", D(10, 13, 9, 30), "V_RENOVATION", "C0007", content="楼上违规装修").ok(1, D(10, 13, 9, 30))
Tk("RM-ZJ-2", D(10, 20, 9, 30), "V_RENOVATION", "C0009", content="楼上违规装修").ok(1, D(10, 20, 9, 30))
Tk("RM-SC-1", D(10, 14, 9, 45), "V_ELEVATOR", "C0012").ok(1, D(10, 14, 9, 45))
Tk("RM-SC-2", D(10, 21, 9, 45), "V_ELEVATOR", "C0007").acc(1, D(10, 21, 12, 45)).res(1, D(10, 22, 9))
Tk("RM-GA-2", D(10, 15, 9, 20), "V_NOISE", "C0009").ok(1, D(10, 15, 9, 20)) \
    .cb(D(10, 17, 9), "UNSATISFIED").acc(2, D(10, 17, 10)).res(2, D(10, 19, 9))
Tk("RM-GA-3", D(10, 20, 9, 20), "V_NOISE", "C0012").acc(1, D(10, 20, 10))
Tk("RM-XF-1", D(10, 16, 9, 10), "V_FIRE_LANE", "C0007")
Tk("RM-XF-2", D(10, 21, 9, 10), "V_FIRE_LANE", "C0009").ok(1, D(10, 21, 9, 10))
# ---------------- November ----------------
Tk("RM-C1-11", D(11, 2, 9), "PS_SANITATION", "C0001").ok(1, D(11, 2, 9)).cb(D(11, 4, 9), "SATISFIED")
Tk("RM-C1-12", D(11, 9, 9), "PS_GREENING", "C0001").ok(1, D(11, 9, 9))
Tk("RM-C1-13", D(11, 16, 9), "PS_ORDER", "C0001").ok(1, D(11, 16, 9))
Tk("RM-C1-14", D(11, 23, 9), "PS_SANITATION", "C0001", rtype="REPORT").ok(1, D(11, 23, 9))
Tk("RM-C1-X3", D(11, 10, 9, 30), "PS_SANITATION", "C0001", rtype="CONSULT")
Tk("RM-C3-11", D(11, 3, 9), "PS_SANITATION", "C0003").acc(1, D(11, 3, 10)).res(1, D(11, 10, 9), "P3")
Tk("RM-C3-12", D(11, 10, 9, 5), "PS_GREENING", "C0003").ok(1, D(11, 10, 9, 5))
Tk("RM-C3-13", D(11, 17, 9, 5), "PS_ORDER", "C0003").ok(1, D(11, 17, 9, 5))
Tk("RM-C3-14", D(11, 24, 9, 5), "PS_FACILITY", "C0003").ok(1, D(11, 24, 9, 5))
Tk("RM-C6-11", D(11, 1, 0, 30), "PS_SANITATION", "C0006").acc(1, D(11, 1, 2)).res(1, D(11, 2, 10))
Tk("RM-C6-12", D(11, 18, 9), "PS_SANITATION", "C0006").ok(1, D(11, 18, 9))
Tk("RM-C6-V", D(11, 19, 9), "V_GARBAGE", "C0006").acc(1, D(11, 19, 10)).res(1, D(11, 20, 9), "P6")
Tk("RM-C2-11", D(11, 5, 9), "PS_SANITATION", "C0002").ok(1, D(11, 5, 9))
Tk("RM-C8-V3", D(11, 9, 9, 10), "V_GARBAGE", "C0008").acc(1, D(11, 9, 10)).res(1, D(11, 10, 9, 10), "P7")
Tk("RM-C8-IB", D(11, 13, 9), "V_ILLEGAL_BUILD", "C0008").acc(1, D(11, 13, 10)).res(1, D(11, 16, 9), "P1") \
    .acc(2, D(11, 16, 10)).cb(D(11, 16, 20), "BASICALLY_SATISFIED").res(2, D(11, 17, 9), "P1") \
    .acc(3, D(11, 17, 10)).res(3, D(11, 18, 9), "P4").cb(D(11, 18, 15), "SATISFIED")
Tk("RM-C12-11", D(11, 11, 9), "PS_SANITATION", "C0012").ok(1, D(11, 11, 9)).cb(D(11, 13, 9), "SATISFIED")
Tk("RM-XF-11", D(11, 4, 9, 10), "V_FIRE_LANE", "C0007")
Tk("RM-GA-11", D(11, 5, 9, 20), "V_NOISE", "C0009").ok(1, D(11, 5, 9, 20))
Tk("RM-GA-12", D(11, 6, 9, 20), "V_NOISE", "C0012")
Tk("RM-SC-11", D(11, 9, 9, 45), "V_ELEVATOR", "C0007").ok(1, D(11, 9, 9, 45))
Tk("RM-SC-12", D(11, 10, 9, 45), "V_ELEVATOR", "C0009")
Tk("RM-ZJ-11", D(11, 11, 9, 30), "V_RENOVATION", "C0012", content="楼上违规装修").ok(1, D(11, 11, 9, 30))
Tk("RM-ZJ-12", D(11, 12, 9, 30), "V_RENOVATION", "C0007", content="楼上违规装修")
# ---------------- December ----------------
for i, (day, cat) in enumerate([(1, "PS_SANITATION"), (8, "PS_GREENING"), (15, "PS_ORDER")]):
    Tk(f"RM-C1-2{i + 1}", D(12, day, 9), cat, "C0001").ok(1, D(12, day, 9))
for i, day in enumerate([2, 9, 16]):
    t = Tk(f"RM-C8-2{i + 1}", D(12, day, 9, 5), "PS_SANITATION", "C0008")
    if i == 1:   # S0201 accepts one a day late: its Q4 mean drops below S0202's
        t.acc(1, D(12, day + 1, 10, 5)).res(1, D(12, day + 1, 11, 5))
    else:
        t.ok(1, D(12, day, 9, 5))
Tk("RM-C3-21", D(12, 3, 9), "PS_SANITATION", "C0003").acc(1, D(12, 3, 10)).res(1, D(12, 9, 9), "P8")
Tk("RM-C3-22", D(12, 10, 9), "PS_GREENING", "C0003").ok(1, D(12, 10, 9))
Tk("RM-C10-21", D(12, 4, 9), "PS_SANITATION", "C0010").ok(1, D(12, 4, 9))
Tk("RM-C10-22", D(12, 11, 9), "PS_GREENING", "C0010").ok(1, D(12, 11, 9))
Tk("RM-C8-V4", D(12, 7, 9), "V_GARBAGE", "C0008").acc(1, D(12, 7, 10)).res(1, D(12, 8, 9), "P5")
for i, (day, res_day, code) in enumerate([(8, 9, "P9"), (9, 10, "P6"), (10, 11, "P4"), (11, 14, "P2"),
                                          (14, 15, "P9"), (15, 16, "P9"), (16, 17, "P9"), (17, 18, "P9")]):
    t = Tk(f"RM-C11-V{i + 1}", D(12, day, 9, 30), "V_GARBAGE", "C0011")
    if i < 4:
        t.acc(1, D(12, day, 10, 30)).res(1, D(12, res_day, 9, 30), code)
    else:  # accepted a day late, resolved in time
        t.acc(1, D(12, res_day, 10, 30)).res(1, D(12, res_day, 11), code)
Tk("RM-C6-V2", D(12, 9, 10), "V_GARBAGE", "C0006").acc(1, D(12, 9, 11)).res(1, D(12, 10, 10, 15), "P9")
Tk("RM-GA-21", D(12, 2, 9, 20), "V_NOISE", "C0009").ok(1, D(12, 2, 9, 20)) \
    .cb(D(12, 4, 9), "BASICALLY_SATISFIED")
Tk("RM-XF-21", D(12, 3, 9, 10), "V_FIRE_LANE", "C0012").ok(1, D(12, 3, 9, 10))
Tk("RM-SC-21", D(12, 7, 9, 45), "V_ELEVATOR", "C0007")
Tk("RM-SC-22", D(12, 8, 9, 45), "V_ELEVATOR", "C0009").ok(1, D(12, 8, 9, 45))
Tk("RM-ZJ-21", D(12, 9, 9, 40), "V_RENOVATION", "C0012", content="楼上违规装修").ok(1, D(12, 9, 9, 40))

# Inspections (R-S1): dims sanitation, garbage, greening, order, facilities,
# disclosure, governance.
INSPECTIONS = [
    (D(11, 20, 10), "I-C6-1", "C0006", (90, 90, 90, 90, 90, 90, 90)),   # 90.0
    (D(11, 20, 10, 5), "I-C10-1", "C0010", (70, 70, 69, 70, 70, 70, 70)),  # 69.9
    (D(11, 20, 10, 10), "I-C4-1", "C0004", (30, 30, 30, 30, 30, 30, 30)),  # not PROFESSIONAL
    (D(11, 20, 10, 15), "I-C2-1", "C0002", (45, 45, 45, 45, 45, 45, 45)),
    (D(12, 10, 14), "I-C6-2", "C0006", (90, 90, 89, 90, 90, 90, 90)),    # 89.9: mean 89.95 -> 90.0
    (D(12, 10, 14, 5), "I-C10-2", "C0010", (70, 70, 70, 70, 70, 70, 70)),  # mean 69.95 -> 70.0
    (D(12, 10, 14, 10), "I-C1-1", "C0001", (65, 65, 65, 65, 65, 65, 65)),
    (D(12, 10, 14, 15), "I-C3-1", "C0003", (55, 55, 55, 55, 55, 55, 55)),
    (D(12, 10, 14, 20), "I-C8-1", "C0008", (95, 95, 95, 95, 95, 95, 95)),
]


# ---- the model ------------------------------------------------------------------------
class Step:
    def __init__(self, no, unit, issued, acc_h, res_wd, pos):
        self.no, self.unit, self.issued, self.pos = no, unit, issued, pos
        self.acc_by = issued + acc_h * H
        self.res_by = CAL.workdays_end(issued, res_wd)
        self.accepted = self.resolved = self.returned = self.reopened = None


def street_unit(unit, comp):
    return REG[comp]["street"] if unit == "STREET" else unit


def simulate(t):
    """What referral does with one ticket (R-I2, R-I5 as the scenario says,
    R-R1..R-R3, R-R6), as the rules say it; returns steps, callbacks
    (time, satisfaction, unit of the last step then), the violation and the
    times compound/category became known."""
    t.steps, t.callbacks, t.violation = [], [], None
    t.known_at = None if (t.unmatched or t.cat is None) else t.at
    t.exempt_at = None
    comp, cat = t.comp, t.cat
    state = {"ticket": None, "resolved": None, "close_by": None, "closed": None}

    def issue(at, unit, acc_h, res_wd, pos):
        s = Step(len(t.steps) + 1, street_unit(unit, comp), at, acc_h, res_wd, pos)
        t.steps.append(s)
        state["ticket"] = "OPEN"
        return s

    def dispatch(at):
        if t.rtype in ("COMPLAINT", "REPORT", "HELP") and not t.repeat:
            _, unit, ah, rw = routing(cat, comp)[0]
            issue(at, unit, ah, rw, 1)
    if t.known_at is not None:
        dispatch(t.at)
    for op in sorted(t.ops, key=lambda o: o[0]):
        at, kind = op[0], op[1]
        # a closure by no callback happens at its deadline (R-R2)
        if state["close_by"] is not None and state["closed"] is None and at > state["close_by"]:
            state["closed"] = state["close_by"]
        if kind == "triage":
            comp, cat = op[2] or comp, op[3] or cat
            t.comp, t.cat, t.known_at = comp, cat, at
            dispatch(at)
        elif kind == "exempt":
            t.exempt_at = at
        elif kind == "acc":
            s = t.steps[op[2] - 1]
            assert s.issued <= at and s.accepted is None, (t.no, op)
            s.accepted = at
        elif kind == "ret":
            t.steps[op[2] - 1].returned = at
            state["ticket"] = "RETURNED"
        elif kind == "redisp":
            old = t.steps[op[2] - 1]
            assert old.returned is not None and old.returned <= at
            _, _, ah, rw = routing(cat, comp)[old.pos - 1]
            issue(at, op[3], ah, rw, old.pos)
        elif kind == "res":
            s = t.steps[op[2] - 1]
            assert s.accepted is not None and s.accepted <= at and s.resolved is None, (t.no, op)
            s.resolved = at
            viol, proh = op[3], op[4]
            if viol and proh and t.violation is None and REG[comp]["management"] == "PROFESSIONAL":
                t.violation = (at, comp, proh)   # R-P2: the first such step only
            chain = routing(cat, comp)
            if viol and s.pos < len(chain):
                _, unit, ah, rw = chain[s.pos]
                issue(at, unit, ah, rw, s.pos + 1)
            else:
                state.update(ticket="RESOLVED", resolved=at, close_by=CAL.workdays_end(at, 3))
        elif kind == "cb":
            last = t.steps[-1]
            t.callbacks.append((at, op[2], last.unit))
            if state["ticket"] == "RESOLVED" and state["closed"] is None:
                if op[2] == "UNSATISFIED":   # R-R6: a redo to the same unit
                    last.reopened = at
                    _, _, ah, _ = routing(cat, comp)[last.pos - 1]
                    s = Step(len(t.steps) + 1, last.unit, at, ah, 3, last.pos)
                    t.steps.append(s)
                    state.update(ticket="OPEN", close_by=None)
                else:
                    state["closed"] = at
    return t


for t in TICKETS.values():
    simulate(t)
ALL_STEPS = [s for t in TICKETS.values() for s in t.steps]
VIOLATIONS = sorted((t.violation + (t.no,) for t in TICKETS.values() if t.violation))


def counted(t, month):
    """R-C1 for the month the ticket was received in, as of that month's close."""
    end = rf.month_end(month)
    return (rf.month_of(t.at) == month and t.rtype in ("COMPLAINT", "REPORT") and not t.repeat
            and t.known_at is not None and t.known_at < end and COUNTS.get(t.cat, False)
            and REG[t.comp]["management"] == "PROFESSIONAL"
            and not (t.exempt_at is not None and t.exempt_at < end))


def model():
    """Every expected result, per close."""
    out = {"rankings": {}, "units": {}, "credit": {}, "decisions": [], "evidence": {}, "stars": []}
    streak = {}
    top_months = []          # (compound, month) in T(m)
    unit_scores = {}         # month -> {unit: score (Decimal, 2 places)}
    for m in MONTHS:
        end = rf.month_end(m)
        cnt = {}
        for t in TICKETS.values():
            if counted(t, m):
                cnt.setdefault(t.comp, []).append(t.no)
        rows = []
        for p, nos in cnt.items():
            n = len(nos)
            rank = 1 + sum(1 for q in cnt.values() if len(q) > n)
            in_top = rank <= TOP_K
            streak[p] = streak.get(p, 0) + 1 if in_top else 0
            rows.append({"month": m, "compound": p, "company": REG[p]["company"], "count": n,
                         "rank": rank, "in_top": in_top, "streak": streak[p]})
            if in_top:
                top_months.append((p, m))
                if streak[p] in C4_MEASURES:
                    key = f"R-C4|{p}|{m}"
                    out["decisions"].append({"key": key, "rule": "R-C4", "decision": C4_MEASURES[streak[p]],
                                             "measures": [C4_MEASURES[streak[p]]], "subject": p, "period": m,
                                             "event_at": rf.rfc3339(end)})
                    out["evidence"][key] = sorted(nos)
        for p in streak:
            if p not in cnt:
                streak[p] = 0
        out["rankings"][m] = sorted(rows, key=lambda r: (r["rank"], r["compound"]))
        # R-U1/R-U2
        units = {}
        for s in ALL_STEPS:
            if s.returned is None and rf.month_of(s.res_by) == m:
                units.setdefault(s.unit, []).append(s)
        cbs = {}
        for t in TICKETS.values():
            for at, sat, unit in t.callbacks:
                if rf.month_of(at) == m:
                    cbs.setdefault(unit, []).append(sat)
        rows = []
        for u, pop in units.items():
            n = len(pop)
            resp = Fraction(sum(1 for s in pop if s.accepted is not None and s.accepted <= s.acc_by), n)
            reso = Fraction(sum(1 for s in pop if s.resolved is not None and s.resolved <= s.res_by
                                and not (s.reopened is not None and s.reopened < end)), n)
            c = cbs.get(u, [])
            sat = Fraction(sum(1 for x in c if x != "UNSATISFIED"), len(c)) if c else None
            score = 30 * resp + 35 * reso + 35 * sat if c else (30 * resp + 35 * reso) * 100 / 65
            rows.append({"month": m, "unit": u, "population": n, "response": exact_half_up(resp, 4),
                         "resolution": exact_half_up(reso, 4),
                         "satisfaction": None if sat is None else exact_half_up(sat, 4),
                         "score": exact_half_up(score, 2)})
        for r in rows:
            street = r["unit"] in STREET_DISTRICT
            r["rank"] = 1 + sum(1 for x in rows if (x["unit"] in STREET_DISTRICT) == street
                                and x["score"] > r["score"])
        out["units"][m] = sorted(rows, key=lambda r: r["unit"])
        unit_scores[m] = {r["unit"]: r["score"] for r in rows}
        depts = {u: sc for u, sc in unit_scores[m].items() if u not in STREET_DISTRICT}
        for u, sc in depts.items():   # R-U3 monthly
            if 1 + sum(1 for x in depts.values() if x < sc) <= 3:
                out["decisions"].append({"key": f"R-U3|{u}|{m}", "rule": "R-U3", "decision": "DEPT_REMINDER",
                                         "measures": ["DEPT_REMINDER"], "subject": u, "period": m,
                                         "event_at": rf.rfc3339(end)})
        # R-K1/R-K2: the running credit once this month is closed
        credit = {}
        for co in COMPANIES:
            ded = sum(DEDUCT[code] for at, p, code, _ in VIOLATIONS
                      if REG[p]["company"] == co and at < end and rf.month_of(at) >= "2026-07")
            ded += 2 * sum(1 for p, mm in top_months if REG[p]["company"] == co)
            sc = max(0, 100 - ded)
            credit[co] = {"company": co, "score": sc,
                          "grade": "A" if sc >= 90 else "B" if sc >= 75 else "C" if sc >= 60 else "D"}
        out["credit"][m] = [credit[c] for c in COMPANIES]
    # R-P3 at each violation
    distinct, fired, d4 = {}, set(), set()
    for at, p, code, no in VIOLATIONS:
        codes = distinct.setdefault(p, set())
        if code in codes:
            continue
        codes.add(code)
        d = len(codes)
        co = REG[p]["company"]
        subject = co if d >= 4 else p
        if d >= 4 and co in d4:
            continue
        if d >= 4:
            d4.add(co)
        out["decisions"].append({"key": f"R-P3.{min(d, 4)}|{subject}|2026", "rule": "R-P3",
                                 "decision": P3_MEASURES[min(d, 4)][0], "measures": P3_MEASURES[min(d, 4)],
                                 "subject": subject, "period": "2026", "event_at": rf.rfc3339(at),
                                 "_ticket": no})
    # Q4 (R-S1..R-S3, R-U3 quarterly, R-U4) and H2 (R-U5) at the December close
    q_end = rf.month_end("2026-12")
    ins = {}
    for at, _, comp, dims in INSPECTIONS:
        if REG[comp]["management"] == "PROFESSIONAL" and rf.local(2026, 10, 1) <= at < q_end:
            ins.setdefault(comp, []).append(Fraction(sum(w * d for w, d in zip(WEIGHTS, dims)), 100))
    for p, scores in sorted(ins.items()):
        score = exact_half_up(sum(scores) / len(scores), 1)
        stars = 5 if score >= 90 else 4 if score >= 80 else 3 if score >= 70 else 2 if score >= 60 \
            else 1 if score >= 50 else 0
        dq = len({code for at, pp, code, _ in VIOLATIONS if pp == p and at < q_end})
        if dq >= 2 and stars > 0:
            stars -= 1
        if dq >= 3:
            stars = 0
        out["stars"].append({"compound": p, "score": score, "stars": stars})
        measure = "EVICT" if stars == 0 else "KEY_TARGET" if stars <= 2 else None
        if measure:   # no earlier rated quarter in this scenario
            out["decisions"].append({"key": f"R-S3|{p}|2026Q4", "rule": "R-S3", "decision": measure,
                                     "measures": [measure], "subject": p, "period": "2026Q4",
                                     "event_at": rf.rfc3339(q_end)})

    def quarter_means(streets):
        means = {}
        for m in MONTHS:
            for u, sc in unit_scores[m].items():
                if (u in STREET_DISTRICT) == streets:
                    means.setdefault(u, []).append(sc)
        return {u: exact_half_up(Fraction(sum(v)) / len(v), 2) for u, v in means.items()}
    for streets, rule, measure in ((False, "R-U3", "DEPT_SUPERVISE"), (True, "R-U4", "STREET_SUPERVISE")):
        means = quarter_means(streets)
        for u, sc in means.items():
            if 1 + sum(1 for x in means.values() if x < sc) <= 3:
                out["decisions"].append({"key": f"{rule}|{u}|2026Q4", "rule": rule, "decision": measure,
                                         "measures": [measure], "subject": u, "period": "2026Q4",
                                         "event_at": rf.rfc3339(q_end)})
    districts = sorted({STREET_DISTRICT[s.unit] for s in ALL_STEPS if s.unit in STREET_DISTRICT
                        and s.returned is None and "2026-07" <= rf.month_of(s.res_by) <= "2026-12"})
    if len(districts) <= 2:   # R-U5: the bottom 2 of (at most) two districts are all of them
        for dd in districts:
            out["decisions"].append({"key": f"R-U5|{dd}|2026H2", "rule": "R-U5",
                                     "decision": "DISTRICT_YELLOW_CARD", "measures": ["DISTRICT_YELLOW_CARD"],
                                     "subject": dd, "period": "2026H2", "event_at": rf.rfc3339(q_end)})
    out["decisions"].sort(key=lambda x: x["key"])
    return out


EXP = model()


def num(x):
    return None if x is None else float(x)


def norm_units(rows):
    return [{k: (num(v) if k in ("response", "resolution", "satisfaction", "score") else v)
             for k, v in r.items()} for r in rows]


def diff_rows(exp, got, key):
    """Human-readable differences between two lists of export rows."""
    e = {key(r): r for r in exp}
    g = {key(r): r for r in (got or [])}
    out = []
    for k in sorted(set(e) | set(g), key=str):
        if e.get(k) != g.get(k):
            out.append(f"{k}: expected {e.get(k)} got {g.get(k)}")
    if not out and [key(r) for r in exp] != [key(r) for r in got or []]:
        out.append("same rows, different order")
    return out


def check_rows(what, exp, got, key, rule):
    d = diff_rows(exp, got, key)
    wt.check(got is not None and not d, f"{rule}: {what} as computed from the rules"
             + (f" -- {len(d)} differences: " + "; ".join(d[:8]) if d else ""))


# ---- the run --------------------------------------------------------------------------
w = wt.Workdir("rating-month")
registry = rf.registry_with_rules(w, [("version", RULE_SET), ("top_k", TOP_K)])
st = rf.Stack("rating-month", rating_registry=registry, w=w)
wt.check(st.ok, "intake, referral and rating are up (rating with a rule table file, K = 2)")
exports_dir = w.file("exports")
os.makedirs(exports_dir)
raw_exports = {}


def save(name, what, lines):
    raw_exports[name] = (what, lines)
    with open(os.path.join(exports_dir, name), "w", encoding="utf-8") as f:
        f.write("".join(x + "\n" for x in lines or []))


def check_month(m, k):
    wt.check(st.wait_closes(k), f"rating closed {m} once intake's and referral's watermarks passed its end")
    lines = st.raw(Q.RANKINGS, m)
    save(f"rankings-{m}.jsonl", "rankings", lines)
    got = None if lines is None else [json.loads(x) for x in lines]
    check_rows(f"rankings of {m} (counts, competition ranks with ties, top list with K = 2, streaks)",
               EXP["rankings"][m], got, lambda r: r["compound"], "R-C1/R-C2/R-C3")
    lines = st.raw(Q.UNITS, m)
    save(f"units-{m}.jsonl", "units", lines)
    got = None if lines is None else norm_units([json.loads(x) for x in lines])
    check_rows(f"unit scores of {m} (population, rates to 4 decimals, score to 2, rank per kind)",
               norm_units(EXP["units"][m]), got, lambda r: r["unit"], "R-U1/R-U2")
    got = st.export(Q.CREDIT, "2026H2")
    check_rows(f"running credit of 2026H2 after the {m} close", EXP["credit"][m], got,
               lambda r: r["company"], "R-K1/R-K2")


checkpoints = {
    D(10, 31, 23, 59, 50): "pending-oct",
    D(11, 1, 12): ("2026-10", 1),
    D(12, 10, 14, 30): "inspections-again",
    D(12, 1, 12): ("2026-11", 2),
    rf.local(2027, 1, 1, 12): ("2026-12", 3),
}

# The feed, in time order (an action before a watermark of the same instant).
feed = []
for t in TICKETS.values():
    feed.append((t.at, 0, "ticket", t))
    for op in t.ops:
        feed.append((op[0], 0, "op", (t, op)))
for ins in INSPECTIONS:
    feed.append((ins[0], 0, "inspection", ins))
for at in rf.half_day_watermarks(D(10, 8, 0), rf.local(2027, 1, 1, 12)):
    feed.append((at, 1, "watermark", at))
for at, what in checkpoints.items():
    feed.append((at, 2, "checkpoint", what))
feed.sort(key=lambda e: (e[0], e[1]))

dispositions = {}
for at, _, kind, x in feed:
    if kind == "ticket":
        r = st.ticket(at, x.no, **x.fields())
        dispositions[x.no] = r and r.disposition
    elif kind == "watermark":
        st.watermark(at)
    elif kind == "inspection":
        rf.wait_rating_clock(st, at)
        st.inspect(at, x[1], x[2], x[3])
    elif kind == "op":
        t, op = x
        if op[1] == "acc":
            st.unit(at, t.no, op[2], SU.ACCEPT)
        elif op[1] == "res":
            kw = {"violation_confirmed": True, "prohibition": op[4]} if op[3] else {}
            st.unit(at, t.no, op[2], SU.RESOLVE, note="已办结", **kw)
        elif op[1] == "ret":
            st.unit(at, t.no, op[2], SU.RETURN, reason="不属于本单位职责")
        elif op[1] == "redisp":
            st.redispatch(at, t.no, op[2], op[3])
        elif op[1] == "cb":
            st.feedback(at, t.no, op[2])
            st.settle()   # a redo step must be known before its unit acts
        elif op[1] == "triage":
            st.triage(at, t.no, op[2], op[3])
        elif op[1] == "exempt":
            st.exempt(at, t.no)
    elif kind == "checkpoint":
        if x == "inspections-again":
            r = st.cl.inspect("I-C1-1", "C0001", D(12, 10, 14, 10), (65,) * 7)
            wt.check(r is not None and r.status == rtc.Reply.DUPLICATE,
                     "an inspection sent again with the same fields is DUPLICATE")
            r = st.cl.inspect("I-C1-1", "C0001", D(12, 10, 14, 10), (66,) * 7)
            wt.check(r is not None and r.status == rtc.Reply.REFUSED,
                     "an inspection id sent again with other scores is REFUSED")
        elif x == "pending-oct":
            wt.check(st.closes() == 0 and st.export(Q.RANKINGS, "2026-10") is None
                     and st.export(Q.UNITS, "2026-10") is None,
                     "R-C1: October's ranking and unit scores are pending until October is closed")
        else:
            check_month(*x)
            if x[0] == "2026-11":
                wt.check(st.export(Q.STARS, "2026Q4") is None, "R-S1: Q4 stars are pending until December closes")

wt.check(not st.unexpected, f"every action was taken as sent ({len(st.unexpected)} not: {st.unexpected[:5]})")
wt.check(dispositions.get("RM-C3-B") == "REPEAT" and dispositions.get("RM-C2-U") == "TRIAGE"
         and dispositions.get("RM-C2-T") == "TRIAGE" and dispositions.get("RM-C1-X1") == "RECORDED",
         f"the scenario's special tickets were taken as meant (repeat, triage, recorded: "
         f"{[dispositions.get(n) for n in ('RM-C3-B', 'RM-C2-U', 'RM-C2-T', 'RM-C1-X1')]})")
# The model's steps are referral's steps: same units and deadlines (else the
# expectations below would rest on a wrong model).
st.settle()
mism = []
for t in TICKETS.values():
    for s in t.steps:
        p = st.steps.get((t.no, s.no))
        if p is None or p.unit != s.unit or p.accept_by_us // S != s.acc_by // S \
                or p.resolve_by_us // S != s.res_by // S:
            mism.append(f"{t.no}#{s.no}: model {s.unit} {rf.rfc3339(s.acc_by)} {rf.rfc3339(s.res_by)}, referral "
                        + (f"{p.unit} {rf.rfc3339(p.accept_by_us)} {rf.rfc3339(p.resolve_by_us)}" if p else "none"))
extra = [k for k in st.steps if k[0] in TICKETS and k[1] > len(TICKETS[k[0]].steps)]
wt.check(not mism and not extra, f"referral issued exactly the steps of the model, with the deadlines of R-T5/R-R4"
         f" ({len(ALL_STEPS)} steps; {mism[:4]} {extra[:4]})")

# ---- after the December close: Q4, H2, the decisions ---------------------------------
lines = st.raw(Q.STARS, "2026Q4")
save("stars-2026Q4.jsonl", "stars", lines)
got = None if lines is None else [json.loads(x) for x in lines]
check_rows("Q4 stars of the PROFESSIONAL projects inspected (mean rounded to 0.1 half away from zero; "
           "minus one at D >= 2; NONCOMPLIANT at D >= 3 or no star left; none for a NONE compound)",
           [{**r, "score": float(r["score"])} for r in EXP["stars"]], got, lambda r: r["compound"], "R-S1/R-S2")
lines = st.raw(Q.CREDIT, "2026H2")
save("credit-2026H2.jsonl", "credit", lines)
lines = st.raw(Q.DECISIONS)
save("decisions.jsonl", "decisions", lines)
got = [json.loads(x) for x in lines or []]
by_key = {d["key"]: d for d in got}
exp_dec = [{k: v for k, v in d.items() if not k.startswith("_")} for d in EXP["decisions"]]
for rule in ("R-C4", "R-P3", "R-S3", "R-U3", "R-U4", "R-U5"):
    e = [d for d in exp_dec if d["rule"] == rule]
    g = [{k: v for k, v in d.items() if k != "evidence"} for d in got if d["rule"] == rule]
    check_rows(f"{rule} decisions (key, measures, subject, period, event time)", e, g, lambda r: r["key"], rule)
bad_ev = []
for key, nos in EXP["evidence"].items():
    ev = by_key.get(key, {}).get("evidence", [])
    tickets = sorted(x for x in ev if x.startswith("RM-") and "#" not in x and "|" not in x)
    if tickets != nos:
        bad_ev.append(f"{key}: expected {nos} got {ev}")
wt.check(not bad_ev, f"R-C1/R-E5: each R-C4 decision names exactly the tickets counted ({bad_ev[:3]})")
bad_ev = [d["key"] for d in EXP["decisions"] if "_ticket" in d
          and not any(x.startswith(d["_ticket"]) for x in by_key.get(d["key"], {}).get("evidence", []))]
wt.check(not bad_ev, f"R-P2/R-E5: each R-P3 decision names the ticket whose step confirmed it ({bad_ev})")

# The export files: shapes and orders.
problems = []
for name, (what, lines_) in sorted(raw_exports.items()):
    problems += [f"{name}: {p}" for p in rf.shape_problems(what, lines_ or [])]
wt.check(not problems and len(raw_exports) == 9,
         f"{len(raw_exports)} export files in {exports_dir} have the export shapes and orders ({problems[:4]})")

# Rating's stream: the same decisions, each once, all under the rule table's version.
st.pump()
evs = st.rating_events()
decs = [rtc.payload(k, p) for k, e, p in evs if k == "decision"]
closed = [rtc.payload(k, p) for k, e, p in evs if k == "period.closed"]
wt.check(sorted(d.key for d in decs) == [d["key"] for d in got] and len(decs) == len(got),
         f"every decision is on rating's stream exactly once ({len(decs)} on the stream, {len(got)} exported)")
wt.check(all(d.rule_set == RULE_SET for d in decs) and all(c.rule_set == RULE_SET for c in closed) and decs,
         f"every decision and close names the rule set of the rule table file ({RULE_SET!r}: "
         f"{sorted({d.rule_set for d in decs} | {c.rule_set for c in closed})})")
wt.check([c.month for c in closed] == MONTHS and set(closed[-1].periods) == {"2026Q4", "2026H2", "2026"},
         f"R-T1: three month closes, December's closing Q4, H2 and the year too "
         f"({[(c.month, list(c.periods)) for c in closed]})")
bad_ev = []
for d in decs:
    e = by_key.get(d.key)
    if e and rf.rfc3339(d.event_us) != e["event_at"]:
        bad_ev.append(d.key)
    if d.rule_id == "R-C4":
        r = next((x for x in EXP["rankings"][d.period] if x["compound"] == d.subject), {})
        if not {f"count={r.get('count')}", f"rank={r.get('rank')}", f"streak={r.get('streak')}"} <= set(d.figures):
            bad_ev.append(f"{d.key} figures {list(d.figures)}")
wt.check(not bad_ev, f"R-E2a: stream event times equal the exported ones; R-C4 figures carry count, rank, streak"
         f" ({bad_ev[:4]})")
wt.check(closed and [len(c.rankings) for c in closed] == [len(EXP["rankings"][m]) for m in MONTHS]
         and [c.top_projects for c in closed] == [sum(r["in_top"] for r in EXP["rankings"][m]) for m in MONTHS],
         f"R-C2: period.closed carries the ranking ({[(len(c.rankings), c.top_projects) for c in closed]})")

# An inspection far ahead of every clock: in event mode the feed is the clock
# (R-T2, R-T3 bounds wall mode only), so it is recorded for its quarter.
ahead = max(int(time.time()) * S, st.rating_clock()) + 10 * rf.DAY
r = st.cl.inspect("I-AHEAD", "C0012", ahead, (80,) * 7)
wt.check(r is not None and r.status == rtc.Reply.APPLIED,
         f"R-T3: in event mode an inspection dated 10 days past both rating's clock and the system"
         f" clock is APPLIED ({r and rtc.Reply.Status.Name(r.status)} {r and r.reason!r})")

st.close()
rc.finish(w, *st.daemons())
