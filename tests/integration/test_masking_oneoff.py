"""The R-I6a one-off at start-up: what intake and referral stored and
published before typed numbers were masked is masked in place, once.
Intake and referral take tickets with numbers in their contents and
addresses (referral is stopped before the last few, which wait in intake's
stream); then their schemas are put back as the code before R-I6a left
them: texts and payloads unmasked, no original columns, no record of the
one-off, one caller already erased by the retention purge. Then:
- referral starts first and masks its own tickets and step.issued payloads;
  intake starts and masks its ticket.accepted payloads and tickets before
  serving, moving the originals to callers (not for the erased caller);
  referral then takes the waiting tickets, masked;
- a subscriber reading either stream from seq 0 finds no original number,
  and every seq, kind, event time and addressee is as before, each rewritten
  payload differing only in its masked content and address;
- no original number is in any column outside intake.callers;
- R-I1: a ticket sent again as the hotline first sent it is DUPLICATE;
- a second start changes nothing (recorded in one_offs, run once);
- referral masks what it takes even if an event reaches it unmasked.
Any sanitizer report in a daemon log fails the test."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
import masking  # noqa: E402

S = 1000000
MIN = 60 * S
T0 = 1790000000 * S
N, LATE = 45, 9          # tickets referral takes, and those that wait in intake's stream
ONE_OFF = "r-i6a-mask-typed-numbers"

wt.pgdev("start")
wt.pgdev("reset", "intake", "referral")
w = wt.Workdir("mask-oneoff")
ienv = ic.intake_env(w, WHISTLE_CLOCK="event")
renv = rc.referral_env(w, ienv)


def ticket(i):
    """Ticket i as the hotline sends it, and its numbers [(typed, masked)]."""
    t, m = masking.number(i)
    f = {"ticket_no": f"OO-{i:03d}", "received_us": T0 + i * MIN, "request_type": "COMPLAINT",
         "hotline_category": "1301", "compound_code": "C0001", "caller_phone": f"1370000{i:04d}",
         "caller_name": "测试", "content": f"楼上噪音扰民，请回电{t}", "address": "幸福里3栋"}
    nums = [(t, m)]
    if i % 3 == 0:
        t2, m2 = masking.number(i + 500)
        f["address"] = f"幸福里3栋（联系电话{t2}）"
        nums.append((t2, m2))
    return f, nums


TICKETS = {i: ticket(i) for i in range(N + LATE)}
FORMS = masking.needles(t for _, nums in TICKETS.values() for t, _ in nums)


def push(cli, ids):
    frames = {i + 1: ic.submit(i + 1, **TICKETS[i][0]) for i in ids}
    got = cli.push(frames, timeout=60)
    return [ic.STATUS_NAME[r.status] for r in got.values()]


def log_count(path, text):
    with open(path, errors="replace") as f:
        return f.read().count(text)


# ---- before the change: tickets in, then the schemas as the old code left them ----
intake, ok1 = ic.start_intake(w, ienv)
ref, ok2 = rc.start_referral(w, renv)
wt.check(ok1 and ok2, "intake and referral are up")
cli = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"])
st = push(cli, range(N))
wt.check(st == ["ACCEPTED"] * N, f"{N} tickets with numbers ACCEPTED")
wt.check(wt.wait_for(lambda: (wt.status(renv["WHISTLE_CONTROL"]) or {}).get("intake.position")
                     == ic.stream_head(), 30, "referral"), "referral took them")
wt.check(ref.stop() == 0, "referral stops")
st = push(cli, range(N, N + LATE))
wt.check(st == ["ACCEPTED"] * LATE, f"{LATE} more ACCEPTED while referral is down")
cli.close()
wt.check(intake.stop() == 0, "intake stops")

originals = {}   # ticket_no -> (content, address) as typed
for i, (f, _) in TICKETS.items():
    originals[f["ticket_no"]] = (f["content"], f["address"])
wt.check(wt.scalar("SELECT count(*) FROM intake.callers WHERE content_original IS NOT NULL")
         == str(N + LATE), "(the new code keeps every original in callers)")


def lit(s):
    return "'" + s.replace("'", "''") + "'"


def unmask_outbox(schema, kind, decode):
    """Puts the original texts back into the kind's payloads (as the old
    code published them); returns {seq: payload}."""
    out, stmts = {}, []
    for seq, hx in wt.sql(f"SELECT seq, encode(payload, 'hex') FROM {schema}.stream_outbox"
                          f" WHERE kind = '{kind}' ORDER BY seq"):
        m = decode(kind, bytes.fromhex(hx))
        m.content, m.address = originals[m.ticket_no]
        out[int(seq)] = m.SerializeToString()
        stmts.append(f"UPDATE {schema}.stream_outbox SET payload = decode('{out[int(seq)].hex()}',"
                     f" 'hex') WHERE seq = {seq}")
    wt.sql("; ".join(stmts))
    return out


unmask_outbox("intake", "ticket.accepted", ic.decode)
unmask_outbox("referral", "step.issued", rc.payload)
wt.sql("; ".join(
    [f"UPDATE intake.tickets SET content = {lit(c)}, address = {lit(a)} WHERE ticket_no = {lit(no)}"
     for no, (c, a) in originals.items()] +
    [f"UPDATE referral.tickets SET content = {lit(c)}, address = {lit(a)} WHERE ticket_no = {lit(no)}"
     for no, (c, a) in originals.items()]))
ERASED = "OO-003"  # the retention purge erased this caller before the change (R-I6)
wt.sql("ALTER TABLE intake.callers DROP COLUMN content_original, DROP COLUMN address_original;"
       " DROP TABLE intake.one_offs; DROP TABLE referral.one_offs;"
       " DELETE FROM intake.schema_migrations WHERE name IN ('002_text_originals',"
       "  'common/002_one_offs');"
       " DELETE FROM referral.schema_migrations WHERE name = 'common/002_one_offs';"
       " UPDATE intake.callers c SET phone = NULL, name = NULL, erased_us = 1 FROM intake.tickets t"
       f"  WHERE t.id = c.ticket_id AND t.ticket_no = '{ERASED}'")
old_found, _ = masking.search(FORMS, schemas=("intake", "referral"))
typed = {t for _, nums in TICKETS.values() for t, _ in nums}
wt.check(typed <= {n for _, n in old_found},
         f"the old state: every number as typed is in intake's and referral's tables, outboxes"
         f" included ({len(old_found)} finds)")
ENVELOPE = ("SELECT seq, kind, event_us, addressee, md5(payload) FROM {}.stream_outbox ORDER BY seq")
before = {s: wt.sql(ENVELOPE.format(s)) for s in ("intake", "referral")}
old_payloads = {s: dict(wt.sql(f"SELECT seq, encode(payload, 'hex') FROM {s}.stream_outbox"))
                for s in ("intake", "referral")}

# ---- the new code starts: referral first, then intake -------------------------------
ref, ok = rc.start_referral(w, renv, log="referral-2.log")
wt.check(ok, "referral (new) starts while intake is down")
wt.check(log_count(w.file("referral-2.log"), "one-off done") == 1,
         "referral ran its one-off before serving")
intake, ok = ic.start_intake(w, ienv, log="intake-2.log")
wt.check(ok, "intake (new) starts")
wt.check(log_count(w.file("intake-2.log"), "one-off done") == 1, "intake ran its one-off before serving")
wt.check(wt.wait_for(lambda: (wt.status(renv["WHISTLE_CONTROL"]) or {}).get("intake.position")
                     == ic.stream_head(), 30, "referral"),
         f"referral takes the {LATE} tickets that waited")


def changed(schema):
    return wt.scalar(f"SELECT changed FROM {schema}.one_offs WHERE name = '{ONE_OFF}'")


n_accepted = len([1 for _, k, *_ in before["intake"] if k == "ticket.accepted"])
n_issued = len([1 for _, k, *_ in before["referral"] if k == "step.issued"])
wt.check(changed("intake") == str(n_accepted + N + LATE),
         f"intake.one_offs records it: {n_accepted} payloads and {N + LATE} tickets ({changed('intake')})")
wt.check(changed("referral") == str(n_issued + N),
         f"referral.one_offs records it: {n_issued} payloads and {N} tickets ({changed('referral')})")

# Seqs, kinds, times and addressees as before; payloads differ only where masked.
for s, kind, decode in (("intake", "ticket.accepted", ic.decode), ("referral", "step.issued", rc.payload)):
    after = wt.sql(ENVELOPE.format(s))[:len(before[s])]
    wt.check([r[:4] for r in after] == [r[:4] for r in before[s]],
             f"{s}.stream_outbox: every seq, kind, event time and addressee unchanged"
             f" ({len(before[s])} events)")
    wrong = []
    for seq, hx in wt.sql(f"SELECT seq, encode(payload, 'hex') FROM {s}.stream_outbox"
                          f" WHERE seq <= {len(before[s])} AND kind = '{kind}'"):
        new, old = decode(kind, bytes.fromhex(hx)), decode(kind, bytes.fromhex(old_payloads[s][seq]))
        f, nums = TICKETS[int(new.ticket_no[3:])]
        want_c = f["content"].replace(nums[0][0], nums[0][1])
        want_a = f["address"] if len(nums) == 1 else f["address"].replace(nums[1][0], nums[1][1])
        old.content, old.address = want_c, want_a
        if new != old:
            wrong.append(seq)
    wt.check(not wrong, f"{s}: each {kind} payload is the old one with content and address masked"
             f" ({wrong[:5]})")
    others = [r for r, b in zip(after, before[s]) if r[1] != kind and r[4] != b[4]]
    wt.check(not others, f"{s}: no other event's payload changed")

isub = rc.Subscriber(ienv["WHISTLE_INTAKE_STREAM"], "rating").open()
rsub = rc.Subscriber(renv["WHISTLE_REFERRAL_STREAM"], "rating").open()
gsub = rc.Subscriber(renv["WHISTLE_REFERRAL_STREAM"], "GA").open()
ihead, rhead = ic.stream_head(), int(wt.scalar("SELECT last_seq FROM referral.stream_head"))
rc.pump_all([isub, rsub, gsub], lambda: isub.last >= ihead and rsub.last >= rhead, 60, "subscribers")
events = isub.events + rsub.events + gsub.events
wt.check(isub.last == ihead and rsub.last == rhead and len(gsub.events) > N,
         f"subscribers read both streams from seq 0 ({len(events)} events)")
leaks = masking.hits([e[4] for e in events], FORMS)
wt.check(not leaks, f"R-I6a: no original number in any event a subscriber receives ({leaks[:5]})")
found, _ = masking.search(FORMS)
wt.check(not found, f"R-I6a: no original number in any column outside intake.callers ({found[:5]})")
late = [rc.payload(k, p) for _, k, _, _, p in gsub.events if k == "step.issued"]
late = {m.ticket_no: m.content for m in late if int(m.ticket_no[3:]) >= N}
wt.check(len(late) == LATE and all(late[f"OO-{i:03d}"] == TICKETS[i][0]["content"].replace(
         *TICKETS[i][1][0]) for i in range(N, N + LATE)),
         "the tickets that waited reach GA masked")
wt.check(wt.scalar("SELECT count(*) FROM intake.callers c JOIN intake.tickets t ON t.id = c.ticket_id"
                   " WHERE c.content_original = t.content") == "0"
         and wt.scalar("SELECT count(*) FROM intake.callers WHERE content_original IS NOT NULL")
         == str(N + LATE - 1), "R-I6a: callers holds the originals, moved there by the one-off")
wt.check(wt.scalar("SELECT c.content_original IS NULL AND c.address_original IS NULL"
                   " FROM intake.callers c JOIN intake.tickets t ON t.id = c.ticket_id"
                   f" WHERE t.ticket_no = '{ERASED}'") == "t",
         "R-I6: not for a caller the retention purge had erased (its ticket is masked all the same)")

# R-I1: the fingerprint stored by the old code still identifies the ticket.
cli = ic.HotlineClient(ienv["WHISTLE_INTAKE_HOTLINE"])
r = cli.ask(ic.submit(900, **TICKETS[5][0]), 900)
wt.check(r is not None and r.status == ic.DUPLICATE,
         f"R-I1: a ticket sent again as first sent is DUPLICATE ({r and ic.STATUS_NAME[r.status]})")
cli.close()

# ---- a second start changes nothing --------------------------------------------------
STATE = ("SELECT md5(string_agg(seq || kind || md5(payload), ',' ORDER BY seq)) FROM {0}.stream_outbox"
         " UNION ALL SELECT md5(string_agg(t::text, ',' ORDER BY ticket_no)) FROM {0}.tickets t"
         " UNION ALL SELECT string_agg(name || done_at || changed, ',') FROM {0}.one_offs")
state = {s: wt.sql(STATE.format(s)) for s in ("intake", "referral")}
callers = wt.sql("SELECT md5(string_agg(c::text, ',' ORDER BY ticket_id)) FROM intake.callers c")
wt.check(intake.stop() == 0 and ref.stop() == 0, "both stop")
ref, ok1 = rc.start_referral(w, renv, log="referral-3.log")
intake, ok2 = ic.start_intake(w, ienv, log="intake-3.log")
wt.check(ok1 and ok2, "both start again")
wt.check(log_count(w.file("referral-3.log"), "one-off") == 0
         and log_count(w.file("intake-3.log"), "one-off") == 0, "neither runs the one-off again")
wt.check({s: wt.sql(STATE.format(s)) for s in ("intake", "referral")} == state
         and wt.sql("SELECT md5(string_agg(c::text, ',' ORDER BY ticket_id)) FROM intake.callers c")
         == callers, "the second start changes nothing (outboxes, tickets, callers, one_offs)")

# ---- referral masks what it takes, even an event that reaches it unmasked ------------
wt.check(intake.stop() == 0, "intake stops")
f, nums = ticket(N + LATE)
raw = ic.intake_events_pb2.TicketAccepted(
    ticket_no=f["ticket_no"], ticket_id=999999, received_us=f["received_us"],
    request_type="COMPLAINT", category="V_NOISE", category_source="hotline", compound="C0001",
    street="S0101", district="D01", management="PROFESSIONAL", company="E001",
    address=f["address"], content=f["content"], disposition="DISPATCHED").SerializeToString()
wt.sql("WITH h AS (UPDATE intake.stream_head SET last_seq = last_seq + 1 RETURNING last_seq)"
       " INSERT INTO intake.stream_outbox (seq, event_us, kind, addressee, payload)"
       f" SELECT last_seq, {f['received_us']}, 'ticket.accepted', '', decode('{raw.hex()}', 'hex')"
       " FROM h")
intake, ok = ic.start_intake(w, ienv, log="intake-4.log")
wt.check(ok and wt.wait_for(lambda: wt.scalar("SELECT content FROM referral.tickets WHERE ticket_no"
                                              f" = '{f['ticket_no']}'"), 30, "referral"),
         "an unmasked ticket.accepted (as an intake older than referral could publish) reaches referral")
wt.check(wt.scalar(f"SELECT content FROM referral.tickets WHERE ticket_no = '{f['ticket_no']}'")
         == f["content"].replace(*nums[0]),
         "R-I6a: referral stores it masked")
leaks = masking.search(masking.needles([nums[0][0]]), schemas=("referral",))[0]
wt.check(not leaks, f"R-I6a: and publishes it masked: nothing of it in referral's schema ({leaks})")
for s in (isub, rsub, gsub):
    s.close()
wt.check(ic.sanitizer_clean(*[w.file(x) for x in os.listdir(w.path) if x.endswith(".log")]),
         "no sanitizer report in the logs of the earlier starts")
rc.finish(w, intake, ref)
