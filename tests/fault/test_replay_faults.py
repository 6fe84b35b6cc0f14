"""Faults during a replay: a generated quarter (tools/gen_city.py) replayed
with whistlectl into fresh schemas, once cleanly and once while each daemon is
killed with SIGKILL and started again (intake, referral, rating, escalation,
one after the other as the replay goes on) and Postgres is restarted once.
Every export of the faulty run equals the clean run's, byte for byte: nothing
acknowledged is lost, nothing is applied twice, every notice has the same
number (R-I1, R-E3, R-E4, R-T2). The faults are injected into the real daemons
while the replay tool is sending, at points set by intake's stream head (the
clean run's head scaled), and each is checked to have happened before the
replay ended."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import scenario_run as sr  # noqa: E402

TICKETS = int(os.environ.get("WHISTLE_FAULT_TICKETS", "1500"))

wt.pgdev("start")
w = wt.Workdir("replay-faults")
scen = w.file("scenario")
lines = sr.generate(scen, seed=11, tickets=TICKETS)
wt.log(f"generated a quarter of {lines} feed lines ({TICKETS} tickets)")
sysm = sr.System(w, os.path.join(scen, "registry"))

# ---- the clean run ------------------------------------------------------------------------
wt.check(sysm.start_all(), "clean run: the four daemons are up on fresh schemas")
p = sysm.replay(scen)
wt.check(p.returncode == 0, f"clean run: whistlectl replay exits 0 ({p.stderr[-300:]})")
head = wt.status_reply(sysm.env["intake"]["WHISTLE_CONTROL"]).output.head
clean = w.file("export-clean")
p = sysm.export(clean)
wt.check(p.returncode == 0 and len(os.listdir(clean)) >= 8,
         f"clean run: export --all writes its files ({sorted(os.listdir(clean)) if os.path.isdir(clean) else p.stderr[-200:]})")
wt.check(sysm.stop_all() == [0] * 4, "clean run: the daemons exit 0 on SIGTERM")

# ---- the faulty run -------------------------------------------------------------------------
wt.check(sysm.start_all(), "faulty run: the four daemons are up on fresh schemas")
replay = subprocess.Popen([sr.CTL, "replay", "--quiet", "--timeout", "60", "--settle-timeout", "300",
                           os.path.join(scen, "registry"), os.path.join(scen, "feed.jsonl")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=sysm.ctl_env)
plan = [(0.12, "intake"), (0.30, "referral"), (0.48, "rating"), (0.66, "escalation"), (0.82, "postgres")]
done = []


def intake_head():
    r = wt.status_reply(sysm.env["intake"]["WHISTLE_CONTROL"], 1.0)
    return r.output.head if r is not None else -1


while plan:
    frac, what = plan[0]
    reached = wt.wait_for(lambda: replay.poll() is not None or intake_head() >= frac * head, 900,
                          f"intake's head at {frac:.0%} of the clean run's", interval=0.05)
    if not reached or replay.poll() is not None:
        break
    plan.pop(0)
    if what == "postgres":
        wt.pgdev("restart")
        wt.log("restarted Postgres")
    else:
        sysm.d[what].kill9()
        wt.log(f"killed {what} (SIGKILL) at intake head {intake_head()} of {head}")
        wt.check(sysm.start(what), f"{what} starts again after SIGKILL")
    done.append(what)
out, err = replay.communicate(timeout=900)
wt.log(out)
wt.check(not plan, f"every fault was injected while the replay ran ({done}; left {plan})")
wt.check(replay.returncode == 0, f"faulty run: whistlectl replay rides over the faults, exit 0 ({err[-400:]})")
wt.check("REFUSED" not in out and "REJECTED" not in out and "UNAVAILABLE" not in out,
         "faulty run: no line is refused or left unavailable")
faulty = w.file("export-faulty")
p = sysm.export(faulty)
wt.check(p.returncode == 0, f"faulty run: export --all ({p.stderr[-200:]})")
ok, why = sr.same_dir(clean, faulty) if os.path.isdir(faulty) else (False, "no export")
wt.check(ok, f"R-I1, R-E3, R-E4, R-T2: every export equals the clean run's ({why})")
wt.check(sysm.stop_all() == [0] * 4, "faulty run: the daemons exit 0 on SIGTERM")
w.cleanup()
wt.done()
