"""R-I6a end to end: numbers typed into a ticket's content or address never
leave intake. The sample hotline feed (deploy/feed/sample.jsonl) goes through
whistle-hotline, intake and referral twice, in event time: as it is, then a
copy of it with mobile numbers (plain, spaced, hyphenated, full-width),
resident ID numbers, bank cards and landlines typed into contents and
addresses. Then:
- R-I3, R-I4: every ticket gets the same category, compound and disposition
  as without the numbers, and referral the same states and units;
- R-I6a: no original number (as typed, as ASCII digits, as full-width digits)
  is in any text, JSON or bytea column of any schema but intake's private
  callers table, nor in any event a full-access subscriber of intake's or
  referral's stream or a unit subscriber receives; the masked forms are
  there instead, and callers keeps the originals;
- R-I1: the same ticket sent again is DUPLICATE; with one hidden digit of its
  number changed (the same masked text) it is REJECTED as a conflict.
Any sanitizer report in a daemon log fails the test."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
import masking  # noqa: E402

HOTLINE = os.path.join(wt.BUILD, "bin", "whistle-hotline")
FEED = os.path.join(wt.ROOT, "deploy", "feed", "sample.jsonl")
UNITS = [r["code"] for r in ic.registry_rows("departments.csv") + ic.registry_rows("streets.csv")]
NOISE_CONTENT = "楼上噪音扰民，请回电13911112222"


def noise_line(first, content):
    """The ticket of R-I6a's example, at the feed's first time."""
    return json.dumps({"type": "ticket", "at": json.loads(first)["at"], "ticket_no": "R-I6A-NOISE",
                       "request_type": "COMPLAINT", "hotline_category": "",
                       "caller_phone": "13700001234", "caller_name": "测试",
                       "compound_code": "C0001", "address": "幸福里3栋", "content": content},
                      ensure_ascii=False)


def with_numbers(lines):
    """The feed with numbers typed into some contents and addresses, by
    ticket number (a line sent twice gets the same), plus the noise ticket;
    returns (lines, {ticket_no: {(typed, masked)}})."""
    out, typed, order = [], {}, {}
    for line in lines:
        o = json.loads(line)
        if o.get("type") == "ticket":
            no = o["ticket_no"]
            i = order.setdefault(no, len(order))
            if i % 3 == 0:
                t, m = masking.number(i)
                o["content"] = o["content"] + f"，请回电{t}"
                typed.setdefault(no, set()).add((t, m))
            if i % 4 == 1:
                t, m = masking.number(i + 1000)
                o["address"] = (o.get("address") or "") + f"（联系电话{t}）"
                typed.setdefault(no, set()).add((t, m))
            line = json.dumps(o, ensure_ascii=False)
        out.append(line)
    typed["R-I6A-NOISE"] = {("13911112222", "139****2222")}
    return out[:1] + [noise_line(lines[0], NOISE_CONTENT)] + out[1:], typed


def replies_of(path):
    """{ticket_no: (status, category, compound, disposition)} of the ticket lines."""
    got = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("type") == "ticket":
                got.setdefault(r["ticket_no"], []).append(
                    (r.get("status"), r.get("category"), r.get("compound"), r.get("disposition")))
    return got


def settle(ienv, renv, timeout=120):
    """Until intake and referral have settled (the settled signal of
    proto/control.proto): referral has applied all of intake's stream and its
    clock has dealt with every watermark intake published."""
    eps = [ienv["WHISTLE_CONTROL"], renv["WHISTLE_CONTROL"]]
    return wt.wait_for(lambda: wt.settled(eps), timeout, "intake and referral settled")


def run_feed(w, lines, tag):
    """Fresh schemas, intake and referral in event time, the feed pushed with
    whistle-hotline; returns (replies, intake, referral, ienv, renv)."""
    wt.pgdev("reset", "intake", "referral")
    path = w.file(f"feed-{tag}.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    ienv = ic.intake_env(w, WHISTLE_CLOCK="event", WHISTLE_REFERRAL_STREAM_AT=w.ep("rstream"),
                         WHISTLE_INTAKE_HOTLINE=w.ep(f"hotline-{tag}"),
                         WHISTLE_INTAKE_STREAM=w.ep(f"stream-{tag}"),
                         WHISTLE_CONTROL=w.ep(f"ictl-{tag}"))
    renv = rc.referral_env(w, ienv, WHISTLE_REFERRAL_UNITS=w.ep(f"units-{tag}"),
                           WHISTLE_REFERRAL_STREAM=w.ep("rstream"), WHISTLE_CONTROL=w.ep(f"rctl-{tag}"))
    intake, ok1 = ic.start_intake(w, ienv, log=f"intake-{tag}.log")
    ref, ok2 = rc.start_referral(w, renv, log=f"referral-{tag}.log")
    wt.check(ok1 and ok2, f"{tag}: intake and referral are up (event clock)")
    out = w.file(f"replies-{tag}.jsonl")
    p = subprocess.run([HOTLINE, "--quiet", "--endpoint", ienv["WHISTLE_INTAKE_HOTLINE"],
                        "--replies", out, path], capture_output=True, text=True, timeout=300)
    wt.check(p.returncode == 0, f"{tag}: whistle-hotline pushed the feed ({p.returncode} {p.stderr[-300:]})")
    wt.check(settle(ienv, renv), f"{tag}: referral took all of intake's stream")
    return replies_of(out), intake, ref, ienv, renv


def referral_view():
    return wt.sql("SELECT ticket_no, state, category, compound, (SELECT string_agg(s->>'unit', ' '"
                  " ORDER BY (s->>'no')::int) FROM jsonb_array_elements(steps) s)"
                  " FROM referral.tickets ORDER BY ticket_no")


wt.pgdev("start")
w = wt.Workdir("masking")
with open(FEED, encoding="utf-8") as f:
    plain = [x for x in f.read().splitlines() if x.strip()]
numbered, typed = with_numbers(plain)
wt.check(len(typed) >= 100, f"numbers typed into {len(typed)} tickets' contents or addresses")

# ---- the feed without numbers: what intake and referral decide ------------------
base, i0, r0, _, _ = run_feed(w, plain[:1] + [noise_line(plain[0], "楼上噪音扰民")] + plain[1:],
                             "plain")
base_referral = referral_view()
# How many watermarks referral publishes depends on its ticks: not compared.
KINDS = ("SELECT kind, count(*) FROM referral.stream_outbox WHERE kind <> 'WATERMARK'"
         " GROUP BY 1 ORDER BY 1")
base_kinds = wt.sql(KINDS)
wt.check(i0.stop() == 0 and r0.stop() == 0, "plain: intake and referral drain and exit 0")

# ---- the same feed with numbers typed in ------------------------------------------
got, intake, ref, ienv, renv = run_feed(w, numbered, "numbers")
subs = [rc.Subscriber(renv["WHISTLE_REFERRAL_STREAM"], u).open() for u in UNITS + ["rating"]]
isub = rc.Subscriber(ienv["WHISTLE_INTAKE_STREAM"], "rating").open()
rhead = int(wt.scalar("SELECT last_seq FROM referral.stream_head"))
ihead = ic.stream_head()
rc.pump_all(subs + [isub], lambda: subs[-1].last >= rhead and isub.last >= ihead, 60, "subscribers")
wt.check(subs[-1].last == rhead and isub.last == ihead,
         f"full-access subscribers read both streams from seq 0 (intake {ihead}, referral {rhead})")

same = [no for no in base if base[no] == got.get(no)]
diff = [(no, base[no], got.get(no)) for no in base if base[no] != got.get(no)]
wt.check(not diff and len(same) == len(base) and len(got) == len(base),
         f"R-I3, R-I4: all {len(base)} tickets get the same status, category, compound and"
         f" disposition with numbers typed in ({diff[:3]})")
wt.check(referral_view() == base_referral,
         "R-I3, R-I4: referral holds the same tickets, states, categories, compounds and units")
kinds = wt.sql(KINDS)
wt.check(kinds == base_kinds, f"and publishes the same events, kind by kind ({kinds}, {base_kinds})")
stored = {no for (no,) in wt.sql("SELECT ticket_no FROM intake.tickets")}
accepted = {no for no, r in got.items() if r[0][0] == "ACCEPTED"}
wt.check(stored == accepted and len(set(typed) & stored) >= 100,
         f"{len(set(typed) & stored)} of the {len(typed)} tickets with numbers were ACCEPTED and"
         " stored (any other refused as it is without them)")
typed_stored = {no: p for no, p in typed.items() if no in stored}

# ---- R-I6a: no original number anywhere but intake.callers ------------------------
NEEDLES = masking.needles(t for pairs in typed.values() for t, _ in pairs)
wt.log(f"searching for {len(NEEDLES)} forms of {sum(len(p) for p in typed.values())} numbers")
found, cols = masking.search(NEEDLES)
covered = {(s_, t_, c_) for (s_, t_), cs in cols.items() for c_, _ in cs}
wt.check({("intake", "tickets", "content"), ("intake", "tickets", "address"),
          ("intake", "stream_outbox", "payload"), ("referral", "tickets", "content"),
          ("referral", "tickets", "address"), ("referral", "stream_outbox", "payload"),
          ("referral", "tickets", "steps")} <= covered,
         f"R-I6a: the search covers {len(covered)} text, JSON and bytea columns, the outboxes"
         " included")
wt.check(not found, f"R-I6a: no original number is in any column outside intake.callers ({found[:5]})")
orig = sum(masking.values("intake", "callers", [("content_original", "text"),
                                                ("address_original", "text")]), [])
wt.check(len(masking.hits(orig, NEEDLES)) >= len(typed_stored),
         f"R-I6a: (the same search finds them in intake.callers:"
         f" {len(masking.hits(orig, NEEDLES))} forms)")
events = [e for s in subs for e in s.events] + isub.events
leaks = masking.hits([e[4] for e in events], NEEDLES)
wt.check(not leaks, f"R-I6a: none is in the {len(events)} events the subscribers received"
         f" ({leaks[:5]})")

# The masked forms are what the tickets and the events carry.
masked_ok, missing = 0, []
texts = {no: bytes.fromhex(h).decode() for no, h in
         wt.sql("SELECT ticket_no, encode(convert_to(content || ' ' || address, 'UTF8'), 'hex')"
                " FROM intake.tickets")}
for no, pairs in typed_stored.items():
    text = texts.get(no, "")
    for _, m in pairs:
        if m in text:
            masked_ok += 1
        else:
            missing.append((no, m, text))
wt.check(not missing, f"R-I6a: intake.tickets holds each number masked ({masked_ok}; {missing[:2]})")
ga = next(s for s in subs if s.name == "GA")
noise = [rc.payload(k, p) for _, k, _, _, p in ga.events if k == "step.issued"]
noise = [m for m in noise if m.ticket_no == "R-I6A-NOISE"]
wt.check(len(noise) == 1 and noise[0].content == "楼上噪音扰民，请回电139****2222",
         f"R-I6a: GA's step.issued carries the content masked ({noise and noise[0].content})")
wt.check(wt.scalar("SELECT c.content_original FROM intake.callers c JOIN intake.tickets t"
                   " ON t.id = c.ticket_id WHERE t.ticket_no = 'R-I6A-NOISE'") == NOISE_CONTENT
         and wt.scalar("SELECT c.address_original IS NULL FROM intake.callers c JOIN intake.tickets t"
                       " ON t.id = c.ticket_id WHERE t.ticket_no = 'R-I6A-NOISE'") == "t",
         "R-I6a: intake.callers keeps the original content, and no address (it had no number)")
wt.check(wt.scalar("SELECT count(*) FROM intake.callers WHERE content_original IS NOT NULL"
                   " OR address_original IS NOT NULL") == str(len(typed_stored)),
         "R-I6a: originals are kept for exactly the tickets whose text masking changed")

# ---- R-I1: the fingerprint is the original submission's ----------------------------
line = next(x for x in numbered if '"R-I6A-NOISE"' in x)
conflict = line.replace("13911112222", "13911113222")   # the same masked text
for tag, l in (("again", line), ("conflict", conflict)):
    with open(w.file(f"{tag}.jsonl"), "w", encoding="utf-8") as f:
        f.write(l + "\n")
    subprocess.run([HOTLINE, "--quiet", "--endpoint", ienv["WHISTLE_INTAKE_HOTLINE"], "--replies",
                    w.file(f"{tag}-replies.jsonl"), w.file(f"{tag}.jsonl")], capture_output=True,
                   timeout=60)
again = json.loads(open(w.file("again-replies.jsonl"), encoding="utf-8").readline())
conf = json.loads(open(w.file("conflict-replies.jsonl"), encoding="utf-8").readline())
tid = wt.scalar("SELECT id FROM intake.tickets WHERE ticket_no = 'R-I6A-NOISE'")
wt.check(again.get("status") == "DUPLICATE" and str(again.get("ticket_id")) == tid,
         f"R-I1: the ticket sent again is DUPLICATE with its id ({again.get('status')})")
wt.check(conf.get("status") == "REJECTED" and "conflict" in conf.get("reason", ""),
         f"R-I1: with one hidden digit changed it is REJECTED as a conflict ({conf.get('reason')})")

for s in subs + [isub]:
    s.close()
wt.check(ic.sanitizer_clean(w.file("intake-plain.log"), w.file("referral-plain.log")),
         "no sanitizer report in the logs of the run without numbers")
rc.finish(w, intake, ref)
