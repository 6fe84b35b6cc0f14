"""R-R5 with CURVE on: 30 units (the 6 departments that routing sends first
steps to, 24 street offices) subscribe
to the referral stream under their own keys while 10,000 tickets flow from
the hotline through intake and referral. Every unit receives exactly the
steps addressed to it (checked over all events against a full-access
reader), in order, once; no unit ever receives another unit's event. One
unit (GA) is offline for most of the run and receives all of its steps, in
order, once, when it returns. Updates from a unit's key for another unit's
step are refused WRONG_UNIT; a key claiming another unit is FORBIDDEN."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402

N = int(os.environ.get("WHISTLE_TEST_TICKETS", "10000"))
OFFLINE = "GA"
T0 = 1790000000 * 1000000  # 2026-09-21T22:13:20Z

wt.pgdev("start")
wt.pgdev("reset", "intake", "referral")
w = wt.Workdir("ref-units")
streets = rc.make_registry(w.file("registry"), 24)
units = ["ZRZY", "CGZF", "GA", "XF", "SCJG", "ZJ"] + streets
wt.check(len(units) == 30, "30 units: 6 departments and 24 street offices")

keys = rc.Keys(w)
keys.make("server")
keys.make("hotline", allowed_by=["intake"])
keys.make("referral", allowed_by=["intake"])
keys.make("rating", allowed_by=["referral"])
for u in units:
    keys.make(u, allowed_by=["referral"])
keys.make("intruder")
sec = {"WHISTLE_CURVE": "1", "WHISTLE_CURVE_SECRET_KEY": w.file("server.key")}
ienv = ic.intake_env(w, WHISTLE_CLOCK="event", WHISTLE_REGISTRY=w.file("registry"),
                     WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-intake"),
                     WHISTLE_PSEUDONYM_KEY=w.file("server.key"), **sec)
intake, ok = ic.start_intake(w, ienv) if False else (wt.Daemon(ic.INTAKE, ienv, w.file("intake.log")).start(), True)
wt.check(wt.wait_ready(ienv["WHISTLE_CONTROL"], curve=keys.client("server", "hotline")) is not None,
         "intake is up with CURVE")
renv = rc.referral_env(w, ienv, registry=w.file("registry"),
                       WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-referral"),
                       WHISTLE_CURVE_CLIENT_KEY=w.file("referral.key"),
                       WHISTLE_INTAKE_SERVER_KEY=w.file("server.pub"), **sec)
ref, ok = rc.start_referral(w, renv, curve=keys.client("server", "rating"))
wt.check(ok, "referral is up with CURVE")

subs = {u: rc.Subscriber(renv["WHISTLE_REFERRAL_STREAM"], u, keys.client("server", u)).open()
        for u in units}
full = rc.Subscriber(renv["WHISTLE_REFERRAL_STREAM"], "rating",
                     keys.client("server", "rating"), window=5000).open()

# Tickets: every compound, categories by hotline code, so every unit gets steps.
codes = [r["hotline_code"] for r in ic.registry_rows("hotline_categories.csv")]
compounds = [f"C{i:02d}{j}" for i in range(1, 25) for j in (1, 2)]
frames = {}
for i in range(N):
    frames[i + 1] = ic.submit(i + 1, ticket_no=f"U-{i:06d}", received_us=T0 + i * 1000000,
                              request_type="COMPLAINT", hotline_category=codes[i % len(codes)],
                              compound_code=compounds[(i * 7 + i // 12) % len(compounds)],
                              caller_phone=f"139{i % 5000:08d}" if i % 3 else "",
                              address="楼下", content="来电反映问题")
frames[N + 1] = ic.watermark(N + 1, T0 + N * 1000000)
hc = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"], curve=keys.client("server", "hotline"))
half = N // 2
replies = hc.push({k: v for k, v in frames.items() if k <= half})
wt.check(len(replies) == half and all(r.status == ic.ACCEPTED for r in replies.values()),
         f"first {half} tickets ACCEPTED")
rc.pump_all(list(subs.values()) + [full], lambda: subs[OFFLINE].last > 0, 60, "GA's first steps")
subs[OFFLINE].close()  # GA goes offline
ga_before = len(subs[OFFLINE].events)
replies = hc.push({k: v for k, v in frames.items() if k > half})
wt.check(len(replies) == N + 1 - half and all(r.status == ic.ACCEPTED for r in replies.values()),
         f"the other {N - half} tickets and a watermark ACCEPTED while {OFFLINE} is offline")


def steps_issued():
    return (wt.status(renv["WHISTLE_CONTROL"], 2.0, curve=keys.client("server", "rating")) or {}).get(
        "referral.steps", 0)


online = [s for u, s in subs.items() if u != OFFLINE] + [full]
wt.check(rc.pump_all(online, lambda: steps_issued() >= N and full.last == int(
    wt.scalar("SELECT last_seq FROM referral.stream_head")), 300, "all steps"),
    f"referral issued a step for each of the {N} tickets and the full reader caught up")
rc.pump_all(online, lambda: False, 2, None)  # let stragglers arrive
wt.check(len(subs[OFFLINE].events) == ga_before, f"{OFFLINE} received nothing while offline")
subs[OFFLINE].open()  # GA returns
expect = {u: [e[0] for e in full.events if e[2] in (u, "*")] for u in units}
rc.pump_all(list(subs.values()), lambda: len(subs[OFFLINE].events) >= len(expect[OFFLINE]), 120,
            "GA catch-up")

issued = [e for e in full.events if e[1] == "step.issued"]
wt.check(len(issued) == N, f"the full reader saw {N} step.issued events (got {len(issued)})")
per_unit = {u: sum(1 for e in issued if e[2] == u) for u in units}
wt.check(all(per_unit[u] > 0 for u in units), f"every one of the 30 units got steps: {per_unit}")
wrong = [(u, len(subs[u].events), len(expect[u])) for u in units
         if [e[0] for e in subs[u].events] != expect[u]]
wt.check(not wrong, f"every unit received exactly its own events, in seq order, once"
                    f" (units received/expected otherwise: {wrong[:3]})")
wt.check(len(subs[OFFLINE].events) == len(expect[OFFLINE]) and ga_before < len(expect[OFFLINE]),
         f"{OFFLINE} got all {len(expect[OFFLINE])} of its events after being offline "
         f"({ga_before} before, the rest on return)")
foreign = [(u, e[0]) for u in units for e in subs[u].events if e[2] not in (u, "*")]
wt.check(not foreign, f"no unit ever received another unit's event ({len(foreign)} found)")
bad_payload = []
for u in units:
    for e in subs[u].events:
        if e[1] == "step.issued":
            p = rc.payload(e[1], e[4])
            if p.unit != u or bool(p.pseudonym) != bool(p.masked_phone) or \
                    (p.masked_phone and "****" not in p.masked_phone) or "139" + p.masked_phone[-4:] in p.content:
                bad_payload.append(e[0])
wt.check(not bad_payload, "each step.issued names its own unit and carries only pseudonym and masked phone")

# Updates under another unit's key.
first_xf = next(rc.payload(e[1], e[4]) for e in full.events if e[1] == "step.issued" and e[2] == "XF")
cli = rc.UnitClient(renv["WHISTLE_REFERRAL_UNITS"], keys.client("server", "GA"))
r = cli.ask(rc.update(1, first_xf.ticket_no, first_xf.step, rc.SU.ACCEPT, first_xf.issued_us + 1))
wt.check(r is not None and r.status == rc.Reply.REFUSED and r.code == rc.Reply.WRONG_UNIT,
         f"GA's key accepting XF's step is refused WRONG_UNIT ({r and r.reason})")
r = cli.ask(rc.update(2, first_xf.ticket_no, first_xf.step, rc.SU.ACCEPT, first_xf.issued_us + 1,
                      unit="XF"))
wt.check(r is not None and r.status == rc.Reply.REFUSED and r.code == rc.Reply.FORBIDDEN,
         f"GA's key claiming to be XF is refused FORBIDDEN ({r and r.reason})")
cli.close()
intr = rc.UnitClient(renv["WHISTLE_REFERRAL_UNITS"], keys.client("server", "intruder"))
intr.s.send(rc.update(3, first_xf.ticket_no, first_xf.step, rc.SU.ACCEPT, first_xf.issued_us + 1))
wt.check(not intr.s.poll(2000), "a key referral does not know gets no answer")
intr.close()
state = wt.scalar(f"SELECT steps->0->>'state' FROM referral.tickets WHERE ticket_no = '{first_xf.ticket_no}'")
wt.check(state == "ISSUED", f"and XF's step is still ISSUED ({state})")
xf = rc.UnitClient(renv["WHISTLE_REFERRAL_UNITS"], keys.client("server", "XF"))
r = xf.ask(rc.update(4, first_xf.ticket_no, first_xf.step, rc.SU.ACCEPT, first_xf.issued_us + 1))
wt.check(r is not None and r.status == rc.Reply.APPLIED and r.step_state == "ACCEPTED",
         "XF's own key accepts it")
xf.close()

for s in list(subs.values()) + [full]:
    s.close()
rc.finish(w, ref, intake)
