"""Exactly once under failures, through the real whistle-intake (docs/architecture.md:
an event is in the outbox if and only if the transaction that appended it
committed). Faults are injected in Postgres itself, so the real daemon meets
them where it would in production:
- an SQL error at every stage of intake's pipeline, from triggers in its
  schema: stage 2 (the bulk insert of new tickets, after their
  ticket.accepted events are appended), stage 3 (a callback's insert, an
  exemption's update), and COMMIT itself (a deferred constraint trigger);
- its connections terminated (pg_terminate_backend) 8 times at fixed points
  of progress while thousands of requests are in flight.
Then the outbox is checked in SQL and by decoding every payload: one
ticket.accepted per stored ticket and none for a refused one, one
ticket.feedback per stored callback, one ticket.exempted per exemption, one
ticket.triaged per triaged ticket, nothing twice, seqs gapless.
The probe first: tickets A, B, C, then X whose insert fails, then a
watermark, sent together, must give exactly A B C WATERMARK. Intake runs on
the event clock, where the watermarks are the hotline's (on the wall clock it
would add its own, R-T3)."""
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402

wt.pgdev("start")
wt.pgdev("reset", "intake")
w = wt.Workdir("intake-once")
env = ic.intake_env(w, WHISTLE_CLOCK="event")
log = w.file("intake.log")
intake, ok = ic.start_intake(w, env)
wt.check(ok, "intake starts and connects to Postgres")

# Faults, installed as the superuser in intake's schema. Each names the stage
# it breaks in its message, so the daemon's log tells which one fired.
wt.sql(r"""
CREATE FUNCTION intake.fault_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.ticket_no LIKE 'X2-%' THEN
    RAISE EXCEPTION 'injected fault in stage 2 (ticket insert): %', NEW.ticket_no;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER fault_insert BEFORE INSERT ON intake.tickets
  FOR EACH ROW EXECUTE FUNCTION intake.fault_insert();
CREATE FUNCTION intake.fault_callback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.ticket_no LIKE 'X3-%' THEN
    RAISE EXCEPTION 'injected fault in stage 3 (callback insert): %', NEW.ticket_no;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER fault_callback BEFORE INSERT ON intake.feedback
  FOR EACH ROW EXECUTE FUNCTION intake.fault_callback();
CREATE FUNCTION intake.fault_exempt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.exempt_reason LIKE 'FAULT%' THEN
    RAISE EXCEPTION 'injected fault in stage 3 (exemption update): %', NEW.ticket_no;
  END IF;
  IF NEW.triaged_us IS DISTINCT FROM OLD.triaged_us AND NEW.ticket_no LIKE '%7' THEN
    RAISE EXCEPTION 'injected fault in stage 4 (triage update): %', NEW.ticket_no;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER fault_exempt BEFORE UPDATE ON intake.tickets
  FOR EACH ROW EXECUTE FUNCTION intake.fault_exempt();
CREATE FUNCTION intake.fault_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'injected fault at COMMIT: %', NEW.ticket_no;
END $$;
CREATE CONSTRAINT TRIGGER fault_commit AFTER INSERT ON intake.feedback
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.ticket_no LIKE 'XC-%')
  EXECUTE FUNCTION intake.fault_commit();
""")

now_us = int(time.time() * 1e6)
BASE = now_us - 5 * ic.DAY_US
maker = ic.TicketMaker(seed=4242)
rid_seq = iter(range(1, 10 ** 9))


def outbox(after=0):
    """[(seq, event_us, kind, payload bytes)] of intake's outbox after seq `after`."""
    rows = wt.sql("SELECT seq, event_us, kind, encode(payload, 'hex') FROM intake.stream_outbox"
                  f" WHERE seq > {after} ORDER BY seq")
    return [(int(s), int(e), k, bytes.fromhex(p)) for s, e, k, p in rows]


def ticket_no_of(kind, payload):
    return ic.decode(kind, payload).ticket_no if kind in ic.EVENT_TYPES else None


def run(cli, frames, poison, timeout=120, resend_s=5.0, on_progress=None):
    """Sends every frame at once and collects the replies. A poisoned request
    keeps its first answer (it must be UNAVAILABLE); any other request
    answered UNAVAILABLE, or unanswered for resend_s, is sent again, as the
    hotline system would."""
    replies, sent = {}, {}
    for rid, f in frames.items():
        cli.send(f)
        sent[rid] = time.time()
    end = time.time() + timeout
    while len(replies) < len(frames) and time.time() < end:
        r = cli.recv(0.5)
        now = time.time()
        if r is not None and r.request_id in frames and r.request_id not in replies:
            if r.status == ic.UNAVAILABLE and r.request_id not in poison:
                sent[r.request_id] = 0  # resent below
            else:
                replies[r.request_id] = r
                if on_progress:
                    on_progress(len(replies))
        for rid, t in sent.items():
            if rid not in replies and now - t > resend_s:
                cli.send(frames[rid])
                sent[rid] = now
    return replies


cli = ic.HotlineClient(env["WHISTLE_INTAKE_HOTLINE"])

# ---- the probe: A B C, X refused in stage 2, a watermark ----------------------
probe = {}
for i, no in enumerate(["PA-1", "PB-1", "PC-1", "X2-PROBE"]):
    t = dict(maker.ticket(no, BASE + i * 1000), compound_code=maker.compounds[i]["code"])
    rid = next(rid_seq)
    probe[rid] = ic.submit(rid, **ic.ticket_fields(t))
wm_rid = next(rid_seq)
probe[wm_rid] = ic.watermark(wm_rid, BASE + 10000)
x_rid = sorted(probe)[3]
got = run(cli, probe, {x_rid}, timeout=60)
names = {ic.STATUS_NAME[got[r].status] for r in sorted(probe)[:3] if r in got}
wt.check(names == {"ACCEPTED"} and got.get(wm_rid) and got[wm_rid].status == ic.ACCEPTED,
         "probe: A, B, C and the watermark are ACCEPTED")
wt.check(got.get(x_rid) is not None and got[x_rid].status == ic.UNAVAILABLE,
         "probe: X, whose insert fails in stage 2, is answered UNAVAILABLE")
ev = outbox()
shape = [ticket_no_of(k, p) or k for _, _, k, p in ev]
wt.log(f"probe outbox: {shape}")
wt.check(shape == ["PA-1", "PB-1", "PC-1", "WATERMARK"],
         "probe: the outbox is exactly A B C WATERMARK (X's event went with its failed batch,"
         " nobody's twice)")

# ---- the load: every stage failing somewhere, and the connection killed --------
N = 3000
rng = random.Random(7)
tickets = {}
for i in range(N):
    r = rng.random()
    prefix = "X2-" if r < 0.01 else "X3-" if r < 0.05 else "XC-" if r < 0.07 else "K-"
    tickets[next(rid_seq)] = maker.ticket(f"{prefix}{i:05d}", BASE + 20000 + i * 5000)
poison = {rid for rid, t in tickets.items() if t["ticket_no"].startswith("X2-")}

killed = []


def kill_backends():
    """Terminates intake's backends, once it has reconnected after the last time."""
    q = "FROM pg_stat_activity WHERE usename = 'intake' AND backend_type = 'client backend'"
    wt.wait_for(lambda: wt.scalar(f"SELECT count(*) {q}") != "0", 30, "intake to reconnect")
    rows = wt.sql(f"SELECT pg_terminate_backend(pid) {q}")
    killed.append(len(rows))


def loaded(frames, poison_rids, what, kills=4):
    """Runs the requests, terminating intake's backends `kills` times at fixed
    points of progress (so always with requests in flight)."""
    points = [len(frames) * (k + 1) // (kills + 2) for k in range(kills)]
    done = set()

    def progress(answered):
        for p in points:
            if answered >= p and p not in done:
                done.add(p)
                kill_backends()

    t0 = time.time()
    got = run(cli, frames, poison_rids, on_progress=progress)
    wt.log(f"{what}: {len(got)}/{len(frames)} answered in {time.time() - t0:.1f} s,"
           f" connection terminated {len(killed)} times so far")
    return got


frames = {rid: ic.submit(rid, **ic.ticket_fields(t)) for rid, t in tickets.items()}
got = loaded(frames, poison, "tickets")
wt.check(len(got) == len(frames), f"every ticket is answered ({len(got)}/{len(frames)})")
bad = [rid for rid in poison if got.get(rid) is None or got[rid].status != ic.UNAVAILABLE]
wt.check(not bad, f"the {len(poison)} tickets whose insert fails are answered UNAVAILABLE")
ok_status = all(got[rid].status in (ic.ACCEPTED, ic.DUPLICATE) for rid in got if rid not in poison)
wt.check(ok_status, "every other ticket is ACCEPTED (or DUPLICATE for a resend)")

stored = {no: disp for no, disp in wt.sql("SELECT ticket_no, disposition FROM intake.tickets")}
# Callbacks for the stored tickets (X3 and XC fail in stage 3 and at COMMIT),
# exemptions (some failing), triage completions and day watermarks, all at once.
fb, fb_poison, ex_poison, tr_poison = {}, set(), set(), set()
for no in sorted(stored):
    if no.startswith("P") or (stored[no] != "TRIAGE" and rng.random() > 0.5):
        continue
    rid = next(rid_seq)
    at = BASE + 40 * ic.DAY_US // 10 + rng.randrange(10 ** 9)
    if stored[no] == "TRIAGE":
        c = rng.choice(maker.compounds)["code"]
        fb[rid] = ic.triage(rid, no, at, compound_code=c, category="PS_SANITATION")
        if no.endswith("7"):
            tr_poison.add(rid)
    elif rng.random() < 0.15:
        reason = "FAULT" if rng.random() < 0.2 else "重复工单"
        fb[rid] = ic.exempt(rid, no, at, reason)
        if reason == "FAULT":
            ex_poison.add(rid)
    else:
        fb[rid] = ic.feedback(rid, no, at, rng.choice(["SATISFIED", "UNSATISFIED"]))
        if no.startswith(("X3-", "XC-")):
            fb_poison.add(rid)
for d in range(1, 4):
    rid = next(rid_seq)
    fb[rid] = ic.watermark(rid, BASE + d * ic.DAY_US)
poison2 = fb_poison | ex_poison | tr_poison
got2 = loaded(fb, poison2, "callbacks, exemptions, triage, watermarks")
wt.check(len(got2) == len(fb), f"every request is answered ({len(got2)}/{len(fb)})")
bad = [rid for rid in poison2 if got2.get(rid) is None or got2[rid].status != ic.UNAVAILABLE]
wt.check(not bad, f"the {len(fb_poison)} callbacks failing in stage 3 or at COMMIT and the"
         f" {len(ex_poison)} failing exemptions and {len(tr_poison)} failing triage completions"
         " are answered UNAVAILABLE")
wt.check(len(killed) == 8 and all(n >= 1 for n in killed),
         f"intake's connection was terminated 8 times under load ({killed} backends each time)")
wt.check(sum(1 for r in got2.values() if r.status == ic.ACCEPTED) > len(fb) // 2,
         "most callbacks, exemptions and triage completions are ACCEPTED")

# ---- the outbox: one event per committed effect, none for a refused one -------
ev = outbox()
wt.check(wt.scalar("SELECT count(*) = max(seq) AND min(seq) = 1 AND max(seq) ="
                   " (SELECT last_seq FROM intake.stream_head) FROM intake.stream_outbox") == "t",
         "the outbox is gapless and ends at the stream head")
count = {}
for _, ev_us, kind, payload in ev:
    key = (kind, ev_us, payload)
    count[key] = count.get(key, 0) + 1
wt.check(all(n == 1 for n in count.values()),
         f"no event is in the outbox twice ({sum(n - 1 for n in count.values())} repeats)")
acc = {}
for _, _, kind, payload in ev:
    if kind == "ticket.accepted":
        m = ic.decode(kind, payload)
        acc.setdefault(m.ticket_no, []).append(m.ticket_id)
rows = {no: int(i) for no, i in wt.sql("SELECT ticket_no, id FROM intake.tickets")}
wt.check(set(acc) == set(rows),
         f"ticket.accepted for exactly the stored tickets ({len(acc)} events' tickets,"
         f" {len(rows)} stored)")
wt.check(all(len(v) == 1 for v in acc.values()), "one ticket.accepted per stored ticket")
wt.check(all(acc[no] == [rows[no]] for no in rows if no in acc),
         "each ticket.accepted carries the id its ticket was stored with")
wt.check(not any(no.startswith("X2-") for no in acc),
         "no ticket.accepted for a ticket whose insert failed")


def per_kind(kind, key):
    out = {}
    for _, _, k, payload in ev:
        if k == kind:
            m = ic.decode(k, payload)
            out[key(m)] = out.get(key(m), 0) + 1
    return out


fbs = per_kind("ticket.feedback", lambda m: (m.ticket_no, m.at_us, m.satisfaction))
fb_rows = {(no, int(at), s) for no, at, s in
           wt.sql("SELECT ticket_no, at_us, satisfaction FROM intake.feedback")}
wt.check(set(fbs) == fb_rows and all(n == 1 for n in fbs.values()),
         f"one ticket.feedback per stored callback ({len(fbs)} events, {len(fb_rows)} rows)")
wt.check(not any(no.startswith(("X3-", "XC-")) for no, _, _ in fbs),
         "no ticket.feedback for a callback that failed in stage 3 or at COMMIT")
exs = per_kind("ticket.exempted", lambda m: m.ticket_no)
ex_rows = {r[0] for r in wt.sql("SELECT ticket_no FROM intake.tickets WHERE exempt_reason IS NOT NULL")}
wt.check(set(exs) == ex_rows and all(n == 1 for n in exs.values()),
         f"one ticket.exempted per exempted ticket ({len(exs)} events, {len(ex_rows)} rows)")
tri = per_kind("ticket.triaged", lambda m: m.ticket_no)
tri_rows = {r[0] for r in wt.sql("SELECT ticket_no FROM intake.tickets WHERE triaged_us IS NOT NULL")}
wt.check(len(tri_rows) > 0 and set(tri) == tri_rows and all(n == 1 for n in tri.values()),
         f"one ticket.triaged per triaged ticket ({len(tri)} events, {len(tri_rows)} rows)")

text = intake.log_text()
wt.check("injected fault in stage 2" in text and "injected fault in stage 3 (callback" in text
         and "injected fault in stage 3 (exemption" in text and "injected fault at COMMIT" in text
         and "injected fault in stage 4 (triage" in text,
         "each injected fault fired (the daemon logged it)")
st = wt.status(env["WHISTLE_CONTROL"]) or {}
wt.log(f"intake stream: appended {st.get('stream.appended')}, dropped with failed batches"
       f" {st.get('stream.dropped')}")
cli.close()
wt.check(intake.stop() == 0, "intake drains and exits 0 on SIGTERM")
wt.check(ic.sanitizer_clean(log), "no sanitizer report in intake's log")
w.cleanup()
wt.done()
