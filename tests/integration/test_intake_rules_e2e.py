"""whistle-intake's business rules end to end (docs/rules.md §2), through the real
hotline socket, Postgres and the intake stream recorded by sinkd as
"referral", in event clock mode (deterministic times):
R-I1 duplicates and conflicts (also within one batch), R-I2 dispositions,
R-I3 hotline code vs keywords, R-I4 compound matching and manual triage
completed by an operator, R-I5 repeats within 7 days, R-I7 callbacks,
exemptions, watermarks, the registry reload on SIGHUP (a broken copy is
refused and the old one keeps serving; a fixed copy is picked up), and the
R-I6 retention purge driven by event time. Any sanitizer report in a daemon
log fails the test."""
import os
import shutil
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402

SINK = "i_rsink"
HOUR = 3600 * 10 ** 6
DAY = ic.DAY_US
T0 = 1780000000 * 10 ** 6          # 2026-05-28T20:26:40Z; rules sections use [T0, T0 + 16 d]
CLOCK = T0 + 20 * DAY              # the event clock before the retention section

wt.pgdev("start")
wt.pgdev("reset", "intake", SINK)
w = wt.Workdir("intake-rules")
REG = w.file("registry")
shutil.copytree(ic.REGISTRY, REG)
env = ic.intake_env(w, WHISTLE_CLOCK="event", WHISTLE_REGISTRY=REG, WHISTLE_RETENTION_DAYS="1",
                    WHISTLE_PURGE_INTERVAL_S="1")
logs = [w.file("intake.log"), w.file("sinkd.log")]
intake, ok = ic.start_intake(w, env)
wt.check(ok, "intake starts (event clock, a copy of the registry) and connects to Postgres")
sink_env = ic.sink_env(w, SINK)
sink = wt.Daemon("sinkd", sink_env, w.file("sinkd.log")).start()
wt.check(wt.wait_ready(sink_env["WHISTLE_CONTROL"]) is not None, "sinkd (as referral) answers status")
cli = ic.HotlineClient(env["WHISTLE_INTAKE_HOTLINE"])
RID = [0]


def ask(build, *args, **kw):
    RID[0] += 1
    r = cli.ask(build(RID[0], *args, **kw), RID[0])
    if r is None:
        wt.log(f"no answer to request {RID[0]}")
    return r


def sub(ticket_no, at, **kw):
    t = {"ticket_no": ticket_no, "received_us": at, "request_type": "COMPLAINT",
         "address": "阳光花园小区3栋", "content": "小区乱停车严重", "caller_phone": "13500000001",
         "caller_name": "钱七"}
    t.update({k: v for k, v in kw.items() if v is not None})
    for k in [k for k, v in kw.items() if v is None]:
        t.pop(k, None)
    return ask(ic.submit, **t)


def name(r):
    return ic.STATUS_NAME.get(r.status) if r is not None else None


def row(ticket_no, cols="category, category_source, compound, disposition, coalesce(repeat_of, '')"):
    rows = wt.sql(f"SELECT {cols} FROM intake.tickets WHERE ticket_no = '{ticket_no}'")
    return tuple(rows[0]) if rows else None


def events(kind):
    ic.wait_sink_caught_up(SINK)
    return [(us, ic.decode(kind, p)) for _, us, k, _, p in ic.sink_events(SINK, f"kind = '{kind}'")]


def events_of(kind, ticket_no):
    return [e for _, e in events(kind) if e.ticket_no == ticket_no]


# The event clock starts at the first event time; watermarks move it, at most
# a day at a time (R-I8: nothing more than a day ahead of it is accepted).
def advance_to(t, start):
    at, ok = start, True
    while at < t:
        at = min(at + DAY, t)
        r = ask(ic.watermark, at)
        ok = ok and r is not None and r.status == ic.ACCEPTED
    return ok


r = sub("R1-A", T0)
wt.check(name(r) == "ACCEPTED" and r.ticket_id > 0, "R-T3: the first ticket sets the event clock")
wt.check(advance_to(CLOCK, T0), "R-T3: watermarks a day apart move the event clock forward")
st = wt.status(env["WHISTLE_CONTROL"]) or {}
wt.check(st.get("clock.now_us") == CLOCK,
         f"R-T3: the event clock is at the last watermark ({st.get('clock.now_us')})")

# ---- R-I1: idempotency ----------------------------------------------------------
first_id = r.ticket_id
r = sub("R1-A", T0)
wt.check(name(r) == "DUPLICATE" and r.ticket_id == first_id and r.category == "PS_ORDER"
         and r.compound == "C0003" and r.disposition == "DISPATCHED",
         "R-I1: an identical resubmission is DUPLICATE with the same ticket_id and decisions")
r = sub("R1-A", T0, content="小区乱停车严重，补充说明")
wt.check(name(r) == "REJECTED" and "conflict" in r.reason,
         f"R-I1: the same number with different content is REJECTED as a conflict ({r and r.reason})")
r = sub("R1-A", T0 + 1)
wt.check(name(r) == "REJECTED" and "conflict" in r.reason,
         "R-I1: the same number with a different received time is a conflict too")
wt.check(row("R1-A", "content, received_us") == ("小区乱停车严重", str(T0))
         and len(events_of("ticket.accepted", "R1-A")) == 1,
         "R-I1: DUPLICATE and conflict changed nothing (row as first stored, one event)")
# Twins in one batch: sent back to back without waiting.
base = RID[0]
twin = dict(ticket_no="R1-TWIN", received_us=T0 + HOUR, request_type="REPORT",
            address="钢厂宿舍2栋", content="违章建筑")
for k, t in enumerate([twin, twin, dict(twin, content="违章建筑在楼顶")]):
    cli.send(ic.submit(base + 1 + k, **t))
RID[0] += 3
got = cli.collect([base + 1, base + 2, base + 3], 15)
sts = [name(got.get(base + k)) for k in (1, 2, 3)]
wt.check(sts == ["ACCEPTED", "DUPLICATE", "REJECTED"]
         and got[base + 1].ticket_id == got[base + 2].ticket_id > 0,
         f"R-I1: the same ticket twice and a conflicting one in flight together: ACCEPTED,"
         f" DUPLICATE with the same id, REJECTED ({sts})")
wt.check(len(events_of("ticket.accepted", "R1-TWIN")) == 1, "R-I1: and one event for the twins")

# ---- R-I2: request types ---------------------------------------------------------
expect = {"CONSULT": "RECORDED", "SUGGEST": "RECORDED", "COMPLAINT": "DISPATCHED",
          "REPORT": "DISPATCHED", "HELP": "DISPATCHED"}
for k, (typ, disp) in enumerate(expect.items()):
    r = sub(f"R2-{typ}", T0 + DAY + k, request_type=typ, caller_phone=f"1350000010{k}",
            address="长青家园小区1栋", content="物业服务态度差")
    ev = events_of("ticket.accepted", f"R2-{typ}")
    wt.check(name(r) == "ACCEPTED" and r.disposition == disp and row(f"R2-{typ}")[3] == disp
             and len(ev) == 1 and ev[0].disposition == disp and ev[0].request_type == typ,
             f"R-I2: {typ} is {disp} (reply, row and event) ({r and r.disposition})")

# ---- R-I3: category ---------------------------------------------------------------
cases = [
    ("R3-HOTLINE", "1101", "电梯困人，快来", "PS_SANITATION", "hotline",
     "the hotline's mapped code wins over a content keyword"),
    ("R3-UNMAPPED", "9999", "楼上噪音扰民", "V_NOISE", "keyword",
     "an unmapped hotline code falls back to the keywords"),
    ("R3-NOCODE", None, "楼上噪音扰民", "V_NOISE", "keyword", "no hotline code: keywords"),
    ("R3-PRIORITY", None, "乱停车，还有人囤积煤气罐", "V_HAZMAT", "keyword",
     "the keyword of highest priority wins, even later in the text"),
    ("R3-EARLIEST1", None, "物业乱收费，还有人乱倒垃圾", "PS_FEES", "keyword",
     "priorities tied: the earliest in the text wins"),
    ("R3-EARLIEST2", None, "有人乱倒垃圾，物业乱收费", "V_GARBAGE", "keyword",
     "priorities tied, the other order: the earliest in the text wins"),
    ("R3-SPACES", None, "电　梯　困 人了", "V_ELEVATOR", "keyword",
     "keywords match across white space (normalised content)"),
    ("R3-NONE", None, "我想问一下办事流程", "OTHER", "none",
     "no match: OTHER, to manual triage"),
]
for k, (no, code, content, cat, how, what) in enumerate(cases):
    r = sub(no, T0 + 2 * DAY + k, hotline_category=code, content=content,
            caller_phone=f"1350000020{k}")
    got_row = row(no)
    wt.check(name(r) == "ACCEPTED" and r.category == cat and got_row[:2] == (cat, how),
             f"R-I3: {what} ({cat}, {how}; got {got_row and got_row[:2]})")
wt.check(row("R3-NONE")[3] == "TRIAGE" and row("R3-NONE", "triage_reason")[0] != "",
         "R-I3: the unclassified ticket waits in TRIAGE with a reason")

# ---- R-I4: compound ------------------------------------------------------------------
cases = [
    ("R4-CODE", "C0003", "幸福里小区5栋", "C0003", "a valid compound code wins over the address"),
    ("R4-UNKNOWN-CODE", "C9999", "锦绣华庭小区2栋", "C0006",
     "an unknown code: the address decides"),
    ("R4-LONGEST", None, "幸福里二期小区5栋", "C0002",
     "the longest name or alias in the address wins (幸福里二期小区 over 幸福里)"),
    ("R4-ALIAS", None, "钢厂家属院西区", "C0007", "an alias matches"),
    ("R4-FULLWIDTH", None, "和平路３号院２门", "C0004", "full-width digits are folded"),
]
for k, (no, code, addr, comp, what) in enumerate(cases):
    r = sub(no, T0 + 3 * DAY + k, compound_code=code, address=addr, caller_phone=f"1350000030{k}")
    wt.check(name(r) == "ACCEPTED" and r.compound == comp and row(no)[2] == comp
             and row(no)[3] == "DISPATCHED",
             f"R-I4: {what} ({comp}; got {r and r.compound})")
c7 = row("R4-ALIAS", "street, district")
ev = events_of("ticket.accepted", "R4-ALIAS")
wt.check(c7 == ("S0102", "D01") and ev and ev[0].street == "S0102" and ev[0].district == "D01"
         and ev[0].management == "CUSTODIAL" and ev[0].company == "",
         "R-I4: the matched compound brings street, district and management")
ev = events_of("ticket.accepted", "R4-CODE")
wt.check(ev and ev[0].management == "PROFESSIONAL" and ev[0].company == "E002",
         "R-I4: a professionally managed compound brings its company")
r = sub("R4-TIE", T0 + 3 * DAY + 10, address="幸福里与新华里交界处", caller_phone="13500000310")
reason = row("R4-TIE", "triage_reason")[0]
wt.check(name(r) == "ACCEPTED" and r.disposition == "TRIAGE" and r.compound == ""
         and "C0001" in reason and "C0009" in reason,
         f"R-I4: two compounds tied for longest: TRIAGE ({reason})")
r = sub("R4-NONE", T0 + 3 * DAY + 11, address="人民路88号", caller_phone="13500000311")
wt.check(name(r) == "ACCEPTED" and r.disposition == "TRIAGE" and r.compound == ""
         and row("R4-NONE", "triage_reason")[0] == "no compound name in address",
         "R-I4: no compound in the address: TRIAGE")
tid = r.ticket_id
r = ask(ic.triage, "R4-NONE", T0 + 4 * DAY, compound_code="C0005")
tr = events_of("ticket.triaged", "R4-NONE")
wt.check(name(r) == "ACCEPTED" and r.ticket_id == tid,
         f"R-I4: an operator's TriageComplete is ACCEPTED ({r and (name(r), r.reason)})")
wt.check(len(tr) == 1 and tr[0].compound == "C0005" and tr[0].street == "S0102"
         and tr[0].district == "D01" and tr[0].management == "SELF"
         and tr[0].category == "PS_ORDER" and tr[0].disposition == "DISPATCHED"
         and tr[0].operator != "" and tr[0].at_us == T0 + 4 * DAY,
         "R-I4: it emits ticket.triaged with the compound, its street and district, DISPATCHED")
wt.check(row("R4-NONE", "compound, disposition, category_source, triaged_us")
         == ("C0005", "DISPATCHED", "operator", str(T0 + 4 * DAY)),
         "R-I4: the ticket is DISPATCHED with the operator's compound")
r = ask(ic.triage, "R4-NONE", T0 + 4 * DAY, compound_code="C0005")
wt.check(name(r) == "DUPLICATE" and len(events_of("ticket.triaged", "R4-NONE")) == 1,
         "R-I4: the same TriageComplete again is DUPLICATE, no second event")
r = ask(ic.triage, "R4-NONE", T0 + 4 * DAY, compound_code="C0006")
wt.check(name(r) == "REJECTED",
         f"R-I4: a different triage of a dispatched ticket is REJECTED ({r and r.reason})")
r = ask(ic.triage, "NO-SUCH-TICKET", T0 + 4 * DAY, compound_code="C0005")
wt.check(name(r) == "REJECTED", "R-I4: triage of an unknown ticket is REJECTED")
r = ask(ic.triage, "R4-TIE", T0 + 4 * DAY, compound_code="C0404")
wt.check(name(r) == "REJECTED" and "compound" in r.reason, "R-I4: triage to an unknown compound is REJECTED")
r = ask(ic.triage, "R3-NONE", T0 + 4 * DAY, category="PS_ORDER")
wt.check(name(r) == "ACCEPTED" and row("R3-NONE")[:4] == ("PS_ORDER", "operator", "C0003", "DISPATCHED"),
         "R-I4/R-I3: an operator completes the category of an unclassified ticket: DISPATCHED")
r = sub("R4-CONSULT", T0 + 3 * DAY + 12, request_type="CONSULT", address="不知道哪个小区",
        caller_phone="13500000312")
r = ask(ic.triage, "R4-CONSULT", T0 + 4 * DAY + 1, compound_code="C0011")
tr = events_of("ticket.triaged", "R4-CONSULT")
wt.check(name(r) == "ACCEPTED" and tr and tr[0].disposition == "RECORDED",
         "R-I4/R-I2: a triaged CONSULT is RECORDED, not dispatched")

# ---- R-I5: repeats ---------------------------------------------------------------------
T5, ph = T0 + 5 * DAY, "13900005555"
rep = dict(caller_phone=ph, address="翠湖苑小区6栋", content="小区外来车辆乱停车")


def rep_sub(no, at, **kw):
    return sub(no, at, **dict(rep, **kw))


r = rep_sub("R5-A", T5)
wt.check(name(r) == "ACCEPTED" and r.disposition == "DISPATCHED", "R-I5: the first complaint is DISPATCHED")
r = rep_sub("R5-B", T5 + 3 * DAY)
wt.check(name(r) == "ACCEPTED" and r.disposition == "REPEAT" and row("R5-B")[4] == "R5-A",
         f"R-I5: the same caller, compound and category within 7 days: REPEAT of R5-A ({row('R5-B')})")
ev = events_of("ticket.accepted", "R5-B")
wt.check(ev and ev[0].disposition == "REPEAT" and ev[0].repeat_of == "R5-A",
         "R-I5: the event says REPEAT with repeat_of")
r = rep_sub("R5-C", T5 + 8 * DAY)
wt.check(name(r) == "ACCEPTED" and r.disposition == "DISPATCHED" and row("R5-C")[4] == "",
         "R-I5: 8 days after the first (the repeat in between does not count): not a repeat")
r = rep_sub("R5-D", T5 + 8 * DAY + HOUR, caller_phone="13900006666")
wt.check(r.disposition == "DISPATCHED", "R-I5: another caller: not a repeat")
r = rep_sub("R5-E", T5 + 8 * DAY + 2 * HOUR, content="物业乱收费")
wt.check(r.disposition == "DISPATCHED", "R-I5: another category: not a repeat")
r = rep_sub("R5-F", T5 + 8 * DAY + 3 * HOUR, address="新华里小区1栋")
wt.check(r.disposition == "DISPATCHED", "R-I5: another compound: not a repeat")
r = rep_sub("R5-G", T5 + 8 * DAY + 4 * HOUR, request_type="HELP")
wt.check(r.disposition == "DISPATCHED" and row("R5-G")[4] == "",
         "R-I5: a HELP (dispatched, not counted) is never a repeat")
r = rep_sub("R5-H", T5 + 8 * DAY + 5 * HOUR, request_type="CONSULT")
wt.check(r.disposition == "RECORDED", "R-I5: a CONSULT is RECORDED, not a repeat")
r = rep_sub("R5-I", T5 + 15 * DAY)
wt.check(r.disposition == "REPEAT" and row("R5-I")[4] == "R5-C",
         f"R-I5: exactly 7 days after R5-C is within the window: REPEAT of R5-C ({row('R5-I')})")
r = rep_sub("R5-J", T5 + 10 * DAY, request_type="REPORT")
wt.check(r.disposition == "REPEAT" and row("R5-J")[4] == "R5-C",
         "R-I5: a REPORT repeats a COMPLAINT of the same caller, compound and category")
r = rep_sub("R5-K", T5 + 11 * DAY, caller_phone="+86-139-0000-5555")
wt.check(r.disposition == "REPEAT" and row("R5-K")[4] == "R5-C",
         "R-I5: the same phone written +86-139-0000-5555 is the same caller (pseudonym of digits)")

# ---- R-I7: satisfaction callbacks ---------------------------------------------------------
r = ask(ic.feedback, "R5-A", T0 + 12 * DAY, "SATISFIED")
wt.check(name(r) == "ACCEPTED", f"R-I7: a callback on a known ticket is ACCEPTED ({r and r.reason})")
wt.check(wt.sql("SELECT at_us, satisfaction FROM intake.feedback WHERE ticket_no = 'R5-A'")
         == [[str(T0 + 12 * DAY), "SATISFIED"]], "R-I7: it is recorded")
fb = events_of("ticket.feedback", "R5-A")
wt.check(len(fb) == 1 and fb[0].satisfaction == "SATISFIED" and fb[0].at_us == T0 + 12 * DAY,
         "R-I7: it is forwarded as ticket.feedback")
r = ask(ic.feedback, "R5-A", T0 + 12 * DAY, "SATISFIED")
wt.check(name(r) == "DUPLICATE" and len(events_of("ticket.feedback", "R5-A")) == 1,
         "R-I7: the same callback again is DUPLICATE, no second event")
r = ask(ic.feedback, "R5-A", T0 + 13 * DAY, "UNSATISFIED")
fb = events_of("ticket.feedback", "R5-A")
wt.check(name(r) == "ACCEPTED" and len(fb) == 2 and fb[1].satisfaction == "UNSATISFIED",
         "R-I7: a later UNSATISFIED callback is forwarded (referral reopens the step)")
r = ask(ic.feedback, "NO-SUCH-TICKET", T0 + 12 * DAY, "SATISFIED")
wt.check(name(r) == "REJECTED" and r.reason,
         f"R-I7: a callback on an unknown ticket is REJECTED ({r and r.reason})")
r = ask(ic.feedback, "R5-A", T0 + 12 * DAY, "HAPPY")
wt.check(name(r) == "REJECTED" and "satisfaction" in r.reason, "R-I7: an unknown satisfaction is REJECTED")
wt.check(wt.scalar("SELECT count(*) FROM intake.feedback WHERE ticket_no <> 'R5-A'") == "0",
         "R-I7: rejected callbacks recorded nothing")

# ---- exemption ----------------------------------------------------------------------
r = ask(ic.exempt, "R5-C", T0 + 14 * DAY, "经核实为非物业责任")
ex = events_of("ticket.exempted", "R5-C")
wt.check(name(r) == "ACCEPTED" and r.ticket_id > 0,
         f"R-C1 (exemption): an exemption is ACCEPTED ({r and r.reason})")
wt.check(len(ex) == 1 and ex[0].reason == "经核实为非物业责任" and ex[0].operator != ""
         and ex[0].at_us == T0 + 14 * DAY,
         "R-C1 (exemption): it is forwarded as ticket.exempted with reason and operator")
wt.check(row("R5-C", "exempt_reason, exempt_us") == ("经核实为非物业责任", str(T0 + 14 * DAY)),
         "R-C1 (exemption): it is recorded on the ticket")
r = ask(ic.exempt, "R5-C", T0 + 14 * DAY + 1, "再次核减")
wt.check(name(r) == "DUPLICATE" and len(events_of("ticket.exempted", "R5-C")) == 1
         and row("R5-C", "exempt_reason")[0] == "经核实为非物业责任",
         "R-C1 (exemption): exempting it twice is DUPLICATE and changes nothing")
r = ask(ic.exempt, "NO-SUCH-TICKET", T0 + 14 * DAY, "理由")
wt.check(name(r) == "REJECTED", "R-C1 (exemption): exempting an unknown ticket is REJECTED")
r = ask(ic.exempt, "R5-D", T0 + 14 * DAY, "")
wt.check(name(r) == "REJECTED" and "reason" in r.reason,
         "R-C1 (exemption): an exemption without a reason is REJECTED")

# ---- actions pipelined right behind their ticket --------------------------------------------
# Behind a burst (which keeps the next batch filling), a ticket and a callback,
# an exemption and a triage of it, sent without waiting: most likely one batch.
base = RID[0]
frames = [ic.submit(base + 1 + j, ticket_no=f"FILL-{j}", received_us=T0 + 6 * HOUR + j,
                    request_type="SUGGEST", address="光明小区", content=f"建议增加绿化{j}")
          for j in range(300)]
k = base + 301
frames += [ic.submit(k, ticket_no="PIPE-1", received_us=T0 + 7 * HOUR, request_type="COMPLAINT",
                     address="人民路9号", content="小区乱停车"),
           ic.feedback(k + 1, "PIPE-1", T0 + 7 * HOUR + 1, "UNSATISFIED"),
           ic.exempt(k + 2, "PIPE-1", T0 + 7 * HOUR + 2, "重复反映"),
           ic.triage(k + 3, "PIPE-1", T0 + 7 * HOUR + 3, compound_code="C0012")]
for f in frames:
    cli.send(f)
RID[0] = k + 3
got = cli.collect(range(base + 1, k + 4), 30)
sts = [name(got.get(i)) for i in range(k, k + 4)]
wt.check(len(got) == 304 and all(name(r) == "ACCEPTED" for r in got.values()),
         f"R-I7/R-I4: a ticket and its callback, exemption and triage pipelined together:"
         f" all ACCEPTED ({sts})")
wt.check(wt.sql("SELECT satisfaction FROM intake.feedback WHERE ticket_no = 'PIPE-1'") == [["UNSATISFIED"]]
         and row("PIPE-1", "disposition, compound, exempt_reason") == ("DISPATCHED", "C0012", "重复反映"),
         "R-I7/R-I4: each took effect (callback recorded, exempted, triaged to C0012)")
ic.wait_sink_caught_up(SINK)
order = [k_ for _, _, k_, _, p in ic.sink_events(SINK, "kind <> 'WATERMARK'")
         if ic.decode(k_, p).ticket_no == "PIPE-1"]
wt.check(order[:1] == ["ticket.accepted"] and sorted(order[1:]) == ["ticket.exempted", "ticket.feedback",
                                                                   "ticket.triaged"],
         f"R-I1: on the stream the ticket comes before the actions on it ({order})")

# ---- watermarks ----------------------------------------------------------------------------
r = ask(ic.watermark, CLOCK)
wt.check(name(r) == "DUPLICATE", "R-T3: a watermark not after the last one is DUPLICATE")
r = ask(ic.watermark, T0)
wt.check(name(r) == "DUPLICATE", "R-T3: an earlier watermark is DUPLICATE")
head = ic.stream_head()
r = ask(ic.watermark, CLOCK + HOUR)
wt.check(name(r) == "ACCEPTED", "R-T3: a later watermark is ACCEPTED")
ic.wait_sink_caught_up(SINK)
wm = [(us, k) for s, us, k, _, _ in ic.sink_events(SINK, f"seq > {head}")]
wt.check(wm == [(CLOCK + HOUR, "WATERMARK")], f"R-T3: it is forwarded as one WATERMARK event ({wm})")
wt.check(len(ic.sink_events(SINK, "kind = 'WATERMARK'")) == 21,
         "R-T3: every ACCEPTED watermark is on the stream once, the DUPLICATE ones are not")

# ---- registry reload on SIGHUP ------------------------------------------------------------------
good_csv = open(os.path.join(REG, "compounds.csv"), encoding="utf-8").read()
nlines = len(good_csv.splitlines())
with open(os.path.join(REG, "compounds.csv"), "w", encoding="utf-8") as f:
    f.write(good_csv + "C0013,新建家园,新建家园小区,S0101,BOGUS,,,100\n")
intake.p.send_signal(signal.SIGHUP)
MARK = 'reload failed: the previous one stays in force" what="registry"'
refused = wt.wait_for(lambda: MARK in intake.log_text(), 15, "the refusal")
line = [ln for ln in intake.log_text().splitlines() if MARK in ln]
wt.check(refused and f"compounds.csv:{nlines + 1}:" in line[-1] and "BOGUS" in line[-1],
         f"registry reload (docs/architecture.md): SIGHUP with a broken registry: refused, the log says"
         f" file:line: reason ({line[-1:]})")
r = sub("REG-1", CLOCK + 2 * HOUR, address="新建家园小区2栋", caller_phone="13500000901")
wt.check(name(r) == "ACCEPTED" and r.disposition == "TRIAGE" and r.compound == "",
         "registry reload: the daemon keeps serving with the old registry (the new compound is unknown)")
r = sub("REG-2", CLOCK + 2 * HOUR, address="幸福里小区7栋", caller_phone="13500000902")
wt.check(name(r) == "ACCEPTED" and r.compound == "C0001", "registry reload: and the old compounds still match")
with open(os.path.join(REG, "compounds.csv"), "w", encoding="utf-8") as f:
    f.write(good_csv + "C0013,新建家园,新建家园小区,S0101,SELF,,,100\n")
n_loaded = intake.log_text().count("registry loaded")
intake.p.send_signal(signal.SIGHUP)
loaded = wt.wait_for(lambda: intake.log_text().count("registry loaded") > n_loaded, 15, "the reload")
last = [ln for ln in intake.log_text().splitlines() if "registry loaded" in ln][-1]
wt.check(loaded and "compounds=13" in last,
         "registry reload: SIGHUP with a fixed registry: loaded (13 compounds)")
r = sub("REG-3", CLOCK + 3 * HOUR, address="新建家园小区2栋", caller_phone="13500000903")
wt.check(name(r) == "ACCEPTED" and r.compound == "C0013" and r.disposition == "DISPATCHED",
         f"registry reload/R-I4: the new compound is matchable after the reload ({r and r.compound})")

# ---- R-I6: retention purge in event time ------------------------------------------------------------
# Retention 1 day, purge every second. RECORDED tickets count as closed when received.
P = CLOCK + 4 * HOUR
r1 = sub("R6-REC", P, request_type="CONSULT", caller_phone="13811112222", caller_name="孙八")
r2 = sub("R6-DISP", P, caller_phone="13811113333", caller_name="周九")
r3 = sub("R6-REC-LATER", P + 12 * HOUR, request_type="SUGGEST", caller_phone="13811114444",
         caller_name="吴十")
wt.check([name(x) for x in (r1, r2, r3)] == ["ACCEPTED"] * 3 and r1.disposition == "RECORDED"
         and r2.disposition == "DISPATCHED", "R-I6: a RECORDED and a DISPATCHED ticket with callers")
pseud = row("R6-REC", "pseudonym, masked_phone")
CALLER = ("SELECT coalesce(c.phone, '<null>'), coalesce(c.name, '<null>'), coalesce(c.erased_us::text, '')"
          " FROM intake.callers c JOIN intake.tickets t ON t.id = c.ticket_id WHERE t.ticket_no = '{}'")
r = ask(ic.watermark, P + 30 * HOUR)  # now P + 30 h: the cutoff passes R6-REC, not R6-REC-LATER
wt.check(name(r) == "ACCEPTED", "R-I6: a later watermark moves the event clock 30 hours on")
erased = wt.wait_for(lambda: wt.sql(CALLER.format("R6-REC"))[0][2] != "", 15, "the purge")
got = wt.sql(CALLER.format("R6-REC"))[0]
wt.check(erased and got[:2] == ["<null>", "<null>"] and int(got[2]) == P + 30 * HOUR,
         f"R-I6: the RECORDED ticket's phone and name are erased, erased_us set ({got})")
wt.check(row("R6-REC", "pseudonym, masked_phone") == pseud and len(pseud[0]) == 64,
         "R-I6: its pseudonym (and masked phone) stay")
wt.check(wt.sql(CALLER.format("R6-REC-LATER"))[0] == ["13811114444", "吴十", ""],
         "R-I6: a RECORDED ticket received within the retention period keeps its caller")
wt.check(wt.sql(CALLER.format("R6-DISP"))[0] == ["13811113333", "周九", ""],
         "R-I6: a dispatched ticket not yet closed keeps its caller")
r = sub("R6-LATER", P + 40 * HOUR, caller_phone="13811115555")
erased = wt.wait_for(lambda: wt.sql(CALLER.format("R6-REC-LATER"))[0][2] != "", 15, "the purge")
wt.check(name(r) == "ACCEPTED" and erased and wt.sql(CALLER.format("R6-REC-LATER"))[0][:2]
         == ["<null>", "<null>"], "R-I6: a later ticket moves the clock on and the next one is erased")
st = wt.status(env["WHISTLE_CONTROL"]) or {}
wt.check(st.get("intake.purged", 0) >= 2, f"R-I6: the purge is counted ({st.get('intake.purged')})")

# ---- the stream as a whole ------------------------------------------------------------------
ic.wait_sink_caught_up(SINK)
acc = events("ticket.accepted")
nos = [e.ticket_no for _, e in acc]
wt.check(len(nos) == len(set(nos)) == int(wt.scalar("SELECT count(*) FROM intake.tickets")),
         f"R-I1: one ticket.accepted event per stored ticket ({len(nos)})")
wt.check(all(us == e.received_us for us, e in acc),
         "R-T2: the event time of ticket.accepted is the received time")

cli.close()
rc1, rc2 = intake.stop(), sink.stop()
wt.check(rc1 == 0 and rc2 == 0, f"intake and sinkd drain and exit 0 on SIGTERM ({rc1}, {rc2})")
wt.check(ic.sanitizer_clean(*logs), "no sanitizer report in any daemon log")
if wt._checks["failed"] == 0:
    w.cleanup()
else:
    wt.log(f"logs kept in {w.path}")
wt.done()
