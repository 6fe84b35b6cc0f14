"""R-T2 replay: the same feed (a few hundred generated tickets over November
and December 2026 with unit actions on every step they cause (accepts on time,
late or never; resolves with and without violations, chains going on,
returns and re-dispatches), callbacks, triage completions, exemptions and
inspections) replayed twice, each time into fresh intake, referral and rating
schemas with fresh daemons, gives byte-identical query exports (rankings and
unit scores of both months, credit, stars, decisions) and the same sequence
of decisions and period closes on rating's stream (kind, event time,
payload bytes), read by a full-access subscriber ("escalation").

Every action the feed takes on a step is drawn from a generator seeded by the
test seed, the ticket and the step, once the step is issued, and is sent in
time order; the feeds of the two runs are compared too."""
import heapq
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
import rating_client as rtc  # noqa: E402
import rating_feed as rf  # noqa: E402

SEED = int(os.environ.get("WHISTLE_TEST_SEED", "20261102"))
N = int(os.environ.get("WHISTLE_TEST_TICKETS", "300"))
H, S, DAY = rf.H, rf.S, rf.DAY
MIN = 60 * S
SU, Q = rf.SU, rtc.Q
START, END = rf.local(2026, 11, 1), rf.local(2027, 1, 1)
LAST = rf.local(2027, 1, 1, 12)
COMPOUNDS = [r["code"] for r in ic.registry_rows("compounds.csv")]
COUNTING = [r["category"] for r in ic.registry_rows("categories.csv") if r["counts"] == "1"]
DEPARTMENTS = ["ZRZY", "SF", "CGZF", "GA", "XF", "SCJG", "ZJ"]
CODES = [f"P{i}" for i in range(1, 10)]
QUERIES = [("rankings-2026-11", Q.RANKINGS, "2026-11"), ("rankings-2026-12", Q.RANKINGS, "2026-12"),
           ("units-2026-11", Q.UNITS, "2026-11"), ("units-2026-12", Q.UNITS, "2026-12"),
           ("credit-2026H2", Q.CREDIT, "2026H2"), ("stars-2026Q4", Q.STARS, "2026Q4"),
           ("decisions", Q.DECISIONS, "")]


def between(r, lo, hi):
    """A whole second in [lo, hi] (hi >= lo)."""
    return lo + r.randrange(max(1, (hi - lo) // S + 1)) * S


def run(label):
    st = rf.Stack(f"rating-determinism-{label}")
    wt.check(st.ok, f"run {label}: intake, referral and rating are up on fresh schemas")
    heap = []

    def at_(at, key, fn, prio=0):
        if at < END or prio:
            heapq.heappush(heap, (at, prio, key, fn))

    scheduled = set()

    def plan_step(p):
        """The unit's actions on a step it was issued, drawn once per step."""
        if (p.ticket_no, p.step) in scheduled:
            return
        scheduled.add((p.ticket_no, p.step))
        r = random.Random(f"{SEED}|{p.ticket_no}|{p.step}")
        k = f"{p.ticket_no}#{p.step:02d}"
        window = p.accept_by_us - p.issued_us
        if p.reason == "ROUTE" and r.random() < 0.05:
            t = between(r, p.issued_us + 5 * MIN, p.issued_us + window * 4 // 5)
            to = r.choice([d for d in DEPARTMENTS if d != p.unit])
            at_(t, k + ":1ret", lambda t=t: st.unit(t, p.ticket_no, p.step, SU.RETURN, reason="不属于本单位职责"))
            t2 = t + between(r, 2 * H, 2 * DAY)
            at_(t2, k + ":2redispatch", lambda t2=t2: after(st.redispatch(t2, p.ticket_no, p.step, to), p.ticket_no))
            return
        x = r.random()
        if x < 0.8:
            acc = between(r, p.issued_us + 5 * MIN, p.issued_us + window * 9 // 10)
        elif x < 0.9:
            acc = between(r, p.accept_by_us + MIN, p.accept_by_us + 20 * H)
        else:
            return   # never accepted
        at_(acc, k + ":1acc", lambda: st.unit(acc, p.ticket_no, p.step, SU.ACCEPT))
        y = r.random()
        if y < 0.75:
            res = between(r, acc + 10 * MIN, max(acc + 10 * MIN, p.resolve_by_us - H))
        elif y < 0.9:
            res = between(r, p.resolve_by_us + H, p.resolve_by_us + 3 * DAY)
        else:
            return   # never resolved
        kw = {}
        going_on = p.chain_pos < p.chain_len and r.random() < 0.6
        if going_on or r.random() < 0.2:
            kw["violation_confirmed"] = True
            if r.random() < (0.5 if p.management == "PROFESSIONAL" else 0.1):
                kw["prohibition"] = r.choice(CODES)
        if p.chain_pos < p.chain_len and not kw.get("violation_confirmed"):
            going_on = False
        at_(res, k + ":2res", lambda: after(st.unit(res, p.ticket_no, p.step, SU.RESOLVE, note="已办结", **kw),
                                                p.ticket_no))
        if not going_on and r.random() < 0.7:   # the hotline calls back
            cb = res + between(r, H, 5 * DAY)
            sat = r.choice(["SATISFIED", "SATISFIED", "BASICALLY_SATISFIED", "UNSATISFIED"])
            at_(cb, k + ":3cb", lambda: (st.feedback(cb, p.ticket_no, sat), settle()))

    def after(reply, ticket_no):
        """A step the reply announces (next in the chain, re-dispatched) is
        known and planned before anything later is sent."""
        if reply is not None and reply.next_step:
            p = st.wait_step(ticket_no, reply.next_step)
            if p is not None:
                plan_step(p)

    def settle():
        st.settle()
        for key in sorted(st.steps):
            plan_step(st.steps[key])

    # The hotline's tickets, with the operators' triage and exemptions.
    maker = ic.TicketMaker(SEED, phones=120)
    gen = random.Random(SEED)
    times = sorted(between(gen, START + 6 * H, END - 3 * DAY) for _ in range(N))
    for i, t in enumerate(times):
        tk = maker.ticket(f"RD-{i:04d}", t)
        fields = {k: v for k, v in ic.ticket_fields(tk).items() if k not in ("ticket_no", "received_us")}

        def send(tk=tk, fields=fields):
            r = st.ticket(tk["received_us"], tk["ticket_no"], **fields)
            settle()
            if r is None:
                return
            o = random.Random(f"{SEED}|{tk['ticket_no']}|ops")
            if r.disposition == "TRIAGE":
                tt = tk["received_us"] + between(o, 2 * H, 4 * DAY)
                comp = o.choice(COMPOUNDS) if not r.compound else ""
                cat = o.choice(COUNTING) if r.category == "OTHER" else ""
                at_(tt, f"{tk['ticket_no']}:triage", lambda: (st.triage(tt, tk["ticket_no"], comp, cat), settle()))
            if tk["request_type"] in ("COMPLAINT", "REPORT") and o.random() < 0.04:
                te = tk["received_us"] + between(o, H, 3 * DAY)
                at_(te, f"{tk['ticket_no']}:exempt", lambda: st.exempt(te, tk["ticket_no"]))
        at_(t, f"RD-{i:04d}", send)
    for j in range(24):
        t = between(gen, START + DAY, END - 2 * DAY)
        comp = gen.choice(COMPOUNDS)
        dims = tuple(gen.randrange(40, 101) for _ in range(7))

        def inspect(t=t, j=j, comp=comp, dims=dims):
            rf.wait_rating_clock(st, t)
            st.inspect(t, f"RD-I{j:02d}", comp, dims)
        at_(t, f"inspection-{j:02d}", inspect)
    for t in rf.half_day_watermarks(START, LAST):
        at_(t, "watermark", lambda t=t: st.watermark(t), prio=1)

    while heap:
        at, _, key, fn = heapq.heappop(heap)
        fn()

    wt.check(wt.wait_for(lambda: st.export(Q.RANKINGS, "2026-12") is not None, 60, "December's close"),
             f"run {label}: rating closed December")
    head = st.status("rating").get("stream.head", -1)
    rc.pump_all([], lambda: st.pump() or st.tsub.last >= head, 30, "rating's stream")
    exports = {name: st.raw(what, period) for name, what, period in QUERIES}
    events = st.rating_events()
    wt.check(not st.unexpected, f"run {label}: every action taken as sent "
             f"({len(st.unexpected)} not: {st.unexpected[:4]})")
    stats = (len(st.sent), len(st.steps), sum(1 for s in st.sent if s[1] == "update"))
    st.close()
    return st, exports, events, stats


st1, ex1, ev1, stats1 = run("1")
codes = [d.stop() for d in st1.daemons()]
wt.check(codes == [0, 0, 0], f"run 1: every daemon drains and exits 0 on SIGTERM ({codes})")
wt.check(all(not any(m in d.log_text() for m in ic.SANITIZER_MARKS) for d in st1.daemons()),
         "run 1: no sanitizer report")
st1.w.cleanup()
st2, ex2, ev2, stats2 = run("2")

wt.check(st1.sent == st2.sent, f"both runs sent the same feed ({stats1[0]} actions, {stats1[1]} steps, "
         f"{stats1[2]} unit updates; run 2: {stats2})")
kinds_sent = {}
for _, kind, key in st1.sent:
    k = kind if kind != "update" else "update " + key.split(":")[1]
    if kind == "update" and "prohibition" in key:
        k += " with a prohibition"
    kinds_sent[k] = kinds_sent.get(k, 0) + 1
wt.check(all(kinds_sent.get(k) for k in ("ticket", "triage", "exempt", "feedback", "inspection", "redispatch",
                                         "update ACCEPT", "update RETURN", "update RESOLVE",
                                         "update RESOLVE with a prohibition")),
         f"the feed has every kind of action: {dict(sorted(kinds_sent.items()))}")
problems = []
for name, _, _ in QUERIES:
    lines = ex1[name]
    problems += [f"{name}: {p}" for p in rf.shape_problems(name.split("-")[0], lines or [])]
wt.check(not problems, f"the exports have the export shapes and orders ({problems[:4]})")
n = {name: len(v or []) for name, v in ex1.items()}
wt.check(all(v is not None for v in ex1.values()) and n["rankings-2026-11"] and n["units-2026-12"]
         and n["stars-2026Q4"] and n["decisions"] >= 10,
         f"the feed gives results to compare: {n}")
for name, _, _ in QUERIES:
    a, b = ex1[name], ex2[name]
    first = next((i for i, (x, y) in enumerate(zip(a or [], b or [])) if x != y), None)
    wt.check(a is not None and a == b,
             f"R-T2: {name} is byte-identical in both runs ({len(a or [])} lines"
             + (f"; first difference at line {first + 1}: {a[first]} vs {b[first]}" if first is not None else "")
             + (f"; {len(a or [])} vs {len(b or [])} lines" if len(a or []) != len(b or []) else "") + ")")
kinds = {k: sum(1 for e in ev1 if e[0] == k) for k in ("decision", "period.closed")}
first = next((i for i, (x, y) in enumerate(zip(ev1, ev2)) if x != y), None)
wt.check(ev1 == ev2 and kinds["decision"] > 0 and kinds["period.closed"] >= 2,
         f"R-T2: rating's stream carries the same decisions and closes, in the same order, with the same event "
         f"times and payload bytes ({kinds}; run 2 {len(ev2)} events"
         + (f"; first difference at {first}: {ev1[first][:2]} vs {ev2[first][:2]}" if first is not None else "") + ")")
if first is not None and first < min(len(ev1), len(ev2)) and ev1[first][0] == ev2[first][0]:
    a, b = (rtc.payload(ev1[first][0], ev1[first][2]), rtc.payload(ev2[first][0], ev2[first][2]))
    for f in a.DESCRIPTOR.fields:
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x != y:
            wt.log(f"event {first} ({ev1[first][0]}) differs in {f.name}:")
            if f.label == f.LABEL_REPEATED:
                xs, ys = [str(v).replace(chr(10), " ") for v in x], [str(v).replace(chr(10), " ") for v in y]
                for v in sorted(set(xs) ^ set(ys)):
                    wt.log(f"    {'run 1' if v in xs else 'run 2'}: {v}")
                if sorted(xs) == sorted(ys):
                    wt.log(f"    the same entries in another order: run 1 {[v.split(' ')[1] for v in xs]}")
                    wt.log(f"                                       run 2 {[v.split(' ')[1] for v in ys]}")
            else:
                wt.log(f"    run 1: {x}  run 2: {y}")
same_set = sorted(ev1) == sorted(ev2)
wt.check(same_set, "R-T2: the same set of (kind, event time, payload) on rating's stream")
rc.finish(st2.w, *st2.daemons())
