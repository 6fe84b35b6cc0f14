"""R-E2 and R-E6 with CURVE on for all four daemons: escalation reads
referral's and rating's streams under its own key (identity "escalation",
admitted by both), and two recipients, the street office S0101 and the
company E001, subscribe to escalation's stream under their own keys, next to
a full-access reader (ops). Tickets nobody accepts, on compounds of S0101
(two of company E001, one of E002) and of S0102, become overdue notices to
their street (cc its district) and, at October's close, R-C4 decisions to
the companies (cc the project's street and district).

  - each recipient receives exactly the events addressed to it: notice.issued
    for the notices whose recipient it is, notice.copy for those it is cc'd
    on, its notice.redelivered and notice.signed; never another's (checked
    against the full reader and the NOTICES export);
  - a recipient cannot sign another's notice, not even one it has a copy of
    (REFUSED), nor sign under another identity (REFUSED); it signs its own
    (APPLIED), and again (DUPLICATE);
  - an unsigned notice is delivered again once (notice.redelivered) when the
    inputs' watermark passes 2 working days after its event time (R-T5:
    23:59:59 of the 2nd working day after), not before; a notice signed
    before that never is; the UNSIGNED query lists exactly the notices
    delivered again and still unsigned."""
import datetime
import os
import sys
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
import rating_client as rtc  # noqa: E402
import escalation_client as ec  # noqa: E402
from rating_feed import Calendar, half_day_watermarks, local  # noqa: E402

Reply = ec.Reply
cal = Calendar()

wt.pgdev("start")
wt.pgdev("reset", "intake", "referral", "rating", "escalation")
w = wt.Workdir("esc-delivery")

keys = rc.Keys(w)
keys.make("server")
keys.make("hotline", allowed_by=["intake"])
keys.make("referral", allowed_by=["intake"])
keys.make("rating", allowed_by=["intake", "referral"])
keys.make("escalation", allowed_by=["referral", "rating"])
keys.make("ops", allowed_by=["intake", "referral", "rating", "escalation"])
for who in ("S0101", "E001"):
    keys.make(who, allowed_by=["escalation"])
OPS = keys.client("server", "ops")
sec = {"WHISTLE_CURVE": "1", "WHISTLE_CURVE_SECRET_KEY": w.file("server.key")}
server_pub = w.file("server.pub")


def start(prog, env, log):
    d = wt.Daemon(prog, env, w.file(log)).start()
    ok = wt.wait_for(lambda: (wt.status(env["WHISTLE_CONTROL"], 1.0, curve=OPS) or {}).get("pg.up") == 1,
                     60, f"{log}: up with CURVE, Postgres connected")
    return d, bool(ok)


ienv = ic.intake_env(w, WHISTLE_CLOCK="event", WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-intake"),
                     WHISTLE_PSEUDONYM_KEY=w.file("server.key"), **sec)
intake, ok1 = start(ic.INTAKE, ienv, "intake.log")
renv = rc.referral_env(w, ienv, WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-referral"),
                       WHISTLE_CURVE_CLIENT_KEY=w.file("referral.key"), WHISTLE_INTAKE_SERVER_KEY=server_pub, **sec)
ref, ok2 = start(rc.REFERRAL, renv, "referral.log")
tenv = rtc.rating_env(w, ienv, renv, WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-rating"),
                      WHISTLE_CURVE_CLIENT_KEY=w.file("rating.key"), WHISTLE_INTAKE_SERVER_KEY=server_pub,
                      WHISTLE_REFERRAL_SERVER_KEY=server_pub, **sec)
rat, ok3 = start(rtc.RATING, tenv, "rating.log")
eenv = ec.escalation_env(w, renv, tenv, WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-escalation"),
                         WHISTLE_CURVE_CLIENT_KEY=w.file("escalation.key"), WHISTLE_REFERRAL_SERVER_KEY=server_pub,
                         WHISTLE_RATING_SERVER_KEY=server_pub, **sec)
esc, ok4 = start(ec.ESCALATION, eenv, "escalation.log")
wt.check(ok1 and ok2 and ok3 and ok4, "intake, referral, rating and escalation are up with CURVE on")


def status(env):
    return wt.status(env["WHISTLE_CONTROL"], 1.0, curve=OPS) or {}


wt.check(wt.wait_for(lambda: status(renv).get("stream.subscribers", 0) >= 2
                     and status(tenv).get("stream.subscribers", 0) >= 1, 30, "escalation's subscriptions"),
         "escalation reads referral's and rating's streams with its key (admitted as escalation)")

ESTREAM = eenv["WHISTLE_ESCALATION_STREAM"]
subs = {who: rc.Subscriber(ESTREAM, who, keys.client("server", who)).open() for who in ("S0101", "E001")}
full = rc.Subscriber(ESTREAM, "ops", OPS, window=5000).open()
readers = list(subs.values()) + [full]
signers = {who: ec.NoticeClient(eenv["WHISTLE_ESCALATION_REQUESTS"], curve=keys.client("server", who))
           for who in ("S0101", "E001")}
ops = ec.NoticeClient(eenv["WHISTLE_ESCALATION_REQUESTS"], curve=OPS)
hc = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"], curve=keys.client("server", "hotline"))

# Tickets on Monday 12 October 2026: S0101's compounds C0001, C0002 (E001)
# and C0003 (E002), S0102's C0006 (E002); nobody accepts them.
T0 = local(2026, 10, 12, 9)
SPOTS = [("C0001", "1101"), ("C0001", "1101"), ("C0002", "1101"), ("C0003", "1103"), ("C0006", "1101")]
frames = {i + 1: ic.submit(i + 1, ticket_no=f"D-{i + 1:03d}", received_us=T0 + i * 60 * 1000000,
                           request_type="COMPLAINT", hotline_category=cat, compound_code=comp, address="院内",
                           content="来电反映问题", caller_phone=f"1370000{i:04d}")
         for i, (comp, cat) in enumerate(SPOTS)}
got = hc.push(frames)
wt.check(len(got) == len(frames) and all(r.status == ic.ACCEPTED for r in got.values()),
         f"{len(frames)} tickets ACCEPTED by intake")
rid = [len(frames)]
sent_wm = [local(2026, 10, 12)]


def advance(to):
    """Intake watermarks every 12 hours up to `to`, then until escalation has
    published `to` and the readers have everything it has."""
    for t in half_day_watermarks(sent_wm[0], to):
        rid[0] += 1
        r = hc.push({rid[0]: ic.watermark(rid[0], t)})
        if rid[0] not in r or r[rid[0]].status != ic.ACCEPTED:
            wt.log("watermark not accepted:", t, r.get(rid[0]))
            return False
        sent_wm[0] = t
    if not rc.pump_all(readers, lambda: status(eenv).get("clock.out_watermark_us", 0) >= to, 60,
                       "escalation's watermark"):
        return False
    head = status(eenv).get("stream.head", -1)
    return rc.pump_all(readers, lambda: full.last >= head, 30, "the full reader")


def notices():
    return {n["number"]: n for n in (ops.export() or [])}


def events(sub, kind):
    return [(e[2], ec.payload(e[4])) for e in sub.events if e[1] == kind]


# ---- 1. ACCEPT clocks run out on 13 October 09:00 -----------------------------------
wt.check(advance(local(2026, 10, 13, 12)), "watermark 2026-10-13 12:00 published by escalation")
ns = notices()
s1 = sorted((n for n in ns.values() if n["recipient"] == "S0101"), key=lambda n: n["number"])
s2 = [n for n in ns.values() if n["recipient"] == "S0102"]
wt.check(len(s1) == 4 and len(s2) == 1 and all(n["cc"] == ["D01"] for n in s1 + s2),
         f"R-E2: overdue notices to the street, cc its district (S0101: {len(s1)}, S0102: {len(s2)})")
got1 = {p.number for a, p in events(subs["S0101"], "notice.issued")}
wt.check(got1 == {n["number"] for n in s1}, f"S0101 received its {len(s1)} notices (notice.issued): {sorted(got1)}")

# Signatures: S0101 signs its first notice; not S0102's; not as S0102.
mine, other = s1[0]["number"], s2[0]["number"]
SIGN_AT = local(2026, 10, 14, 10)
r = signers["S0101"].sign(other, SIGN_AT, "S0101")
wt.check(r is not None and r.status == Reply.REFUSED,
         f"S0101 cannot sign S0102's {other}: REFUSED ({r and r.reason})")
r = signers["S0101"].sign(other, SIGN_AT, "S0102")
wt.check(r is not None and r.status == Reply.REFUSED,
         f"S0101's key cannot sign as S0102: REFUSED ({r and r.reason})")
r = signers["E001"].sign(mine, SIGN_AT, "E001")
wt.check(r is not None and r.status == Reply.REFUSED, f"E001 cannot sign S0101's {mine}: REFUSED ({r and r.reason})")
r = signers["S0101"].sign(mine, SIGN_AT, "S0101")
wt.check(r is not None and r.status == Reply.APPLIED and r.signed_us == SIGN_AT, f"S0101 signs {mine}: APPLIED")
r = signers["S0101"].sign(mine, SIGN_AT + 3600 * 1000000, "")
wt.check(r is not None and r.status == Reply.DUPLICATE and r.signed_us == SIGN_AT,
         f"S0101 signs {mine} again: DUPLICATE, the first signature kept ({r and r.signed_us})")
ns = notices()
wt.check(ns[other]["signed_at"] is None and ns[mine]["signed_at"] == "2026-10-14T10:00:00+08:00",
         "only the recipient's signature is recorded")

# ---- 2. redelivery: not before the watermark passes 2 working days ------------------
def event_us(n):
    d = datetime.datetime.fromisoformat(n["event_at"])
    return int(d.timestamp()) * 1000000


first_due = min(cal.workdays_end(event_us(n), 2) for n in s1 + s2)
wt.check(first_due == local(2026, 10, 15, 23, 59, 59), "the ACCEPT notices are due again after 2026-10-15 23:59:59")
wt.check(advance(local(2026, 10, 15, 12)), "watermark 2026-10-15 12:00 published")
wt.check(not [e for e in full.events if e[1] == "notice.redelivered"],
         "R-E6: nothing delivered again before 2 working days have passed")
wt.check(advance(local(2026, 10, 16, 12)), "watermark 2026-10-16 12:00 published")
redel = [p.number for a, p in events(full, "notice.redelivered")]
want = sorted(n["number"] for n in s1 + s2 if n["number"] != mine)
wt.check(sorted(redel) == want, f"R-E6: the unsigned ACCEPT notices delivered again, once each, the signed one not "
         f"({sorted(redel)} vs {want})")
wt.check(all(a == ns[p.number]["recipient"] for a, p in events(full, "notice.redelivered")),
         "each delivered again to its recipient")

# S0101 signs one after its second delivery: it leaves the UNSIGNED list.
late = s1[1]["number"]
r = signers["S0101"].sign(late, local(2026, 10, 16, 15), "S0101")
wt.check(r is not None and r.status == Reply.APPLIED, f"S0101 signs {late} after its second delivery: APPLIED")

# ---- 3. RESOLVE clocks and October's close ------------------------------------------
# October's close has event time 2026-11-01 00:00 (a Sunday): its notices are
# due again after Tuesday 3 November 23:59:59.
wt.check(advance(local(2026, 11, 2, 12)), "watermark 2026-11-02 12:00 published (October closed)")
ns = notices()
e1 = [n for n in ns.values() if n["recipient"] == "E001"]
wt.check(e1 and all(n["rule"] == "R-C4" and n["cc"] == ["S0101", "D01"] for n in e1),
         f"R-E2: R-C4 decisions to company E001, cc the project's street and district ({[n['number'] for n in e1]})")
e2 = [n for n in ns.values() if n["recipient"] == "E002"]
wt.check(any("S0102" in n["cc"] for n in e2), "a decision of another company cc'd to S0102 (not S0101's)")

# E001 signs its own, cannot sign S0101's copy-holder's notice, and S0101
# cannot sign E001's notice it has a copy of.
enum = sorted(n["number"] for n in e1)[0]
r = signers["S0101"].sign(enum, local(2026, 11, 3, 10), "S0101")
wt.check(r is not None and r.status == Reply.REFUSED,
         f"S0101 cannot sign E001's {enum} although it has a copy: REFUSED ({r and r.reason})")
r = signers["E001"].sign(s1[2]["number"], local(2026, 11, 3, 10), "E001")
wt.check(r is not None and r.status == Reply.REFUSED, "E001 cannot sign S0101's notice: REFUSED")
r = signers["E001"].sign(enum, local(2026, 11, 3, 10), "E001")
wt.check(r is not None and r.status == Reply.APPLIED, f"E001 signs {enum}: APPLIED")
r = signers["E001"].sign(enum, local(2026, 11, 3, 11), "E001")
wt.check(r is not None and r.status == Reply.DUPLICATE, f"E001 signs {enum} again: DUPLICATE")
FINAL = local(2026, 11, 6, 12)
wt.check(advance(FINAL), "watermark 2026-11-06 12:00 published")
rc.pump_all(readers, lambda: all(s.last >= max([e[0] for e in full.events if e[2] == n] or [0])
                                 for n, s in subs.items()), 30, "the recipients")

# ---- 4. each recipient its own, nobody else's -----------------------------------
ns = notices()
for who, sub in subs.items():
    want_seqs = [e[0] for e in full.events if e[2] in (who, "*")]
    got_seqs = [e[0] for e in sub.events]
    wt.check(got_seqs == want_seqs and want_seqs,
             f"R-E6: {who} received exactly the {len(want_seqs)} events addressed to it or to everyone "
             "(watermarks), in order, once "
             f"(got {len(got_seqs)})")
    strays = [(e[1], e[2]) for e in sub.events if e[2] != who and (e[2] != "*" or e[1] != "WATERMARK")]
    wt.check(not strays, f"{who} never received another's event ({strays[:3]})")
    iss = {p.number for a, p in events(sub, "notice.issued")}
    cop = {p.number for a, p in events(sub, "notice.copy")}
    wt.check(iss == {n for n, x in ns.items() if x["recipient"] == who} and
             all(p.recipient == who for a, p in events(sub, "notice.issued")),
             f"R-E2: {who}'s notice.issued are exactly the notices addressed to it ({len(iss)})")
    wt.check(cop == {n for n, x in ns.items() if who in x["cc"]} and
             all(p.copy_to == who for a, p in events(sub, "notice.copy")),
             f"R-E2: {who}'s notice.copy are exactly the notices it is cc'd on ({len(cop)})")
    sg = [p.number for a, p in events(sub, "notice.signed")]
    wt.check(sorted(sg) == sorted(n for n, x in ns.items() if x["recipient"] == who and x["signed_at"]),
             f"{who} received the confirmation of each of its signatures ({sg})")
wt.check(Counter(e[1] for e in subs["S0101"].events)["notice.copy"] > 0,
         "S0101 received copies (of E001's and E002's decisions)")

# ---- 5. redelivery over the whole run, and the UNSIGNED query -------------------
redel = Counter(p.number for a, p in events(full, "notice.redelivered"))
# Due again before FINAL, but for the two signed before escalation's
# watermark passed their due time.
due_unsigned_at_due = {num for num, n in ns.items() if cal.workdays_end(event_us(n), 2) < FINAL} - {mine, enum}
wt.check(all(v == 1 for v in redel.values()) and set(redel) == due_unsigned_at_due,
         f"R-E6: delivered again once each exactly the notices unsigned 2 working days after their event time "
         f"({len(redel)} vs {len(due_unsigned_at_due)}; extra {sorted(set(redel) - due_unsigned_at_due)[:3]}, "
         f"missing {sorted(due_unsigned_at_due - set(redel))[:3]})")
wt.check(mine not in redel and enum not in redel, "signed in time, never delivered again")
unsigned = {x["number"] for x in (ops.export(ec.Q.UNSIGNED) or [])}
wt.check(unsigned == {n for n in redel if not ns[n]["signed_at"]} and late not in unsigned and unsigned,
         f"R-E6: UNSIGNED lists the notices delivered again and still unsigned ({len(unsigned)}; {late} signed late "
         "is not)")

for c in list(signers.values()) + [ops, hc]:
    c.close()
for s in readers:
    s.close()
rc.finish(w, esc, rat, ref, intake)
