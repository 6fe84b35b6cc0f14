"""The small hand-checked scenario (tests/scenarios/small) replayed with
`whistlectl replay` (pipelined, then --sequential into fresh schemas) through
the four real daemons in event clock mode; `whistlectl export --all` must
equal the hand-computed files in expected/ byte for byte, both times."""
import difflib
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402
import rating_client as rtc  # noqa: E402
import escalation_client as ec  # noqa: E402

CTL = os.path.join(wt.BUILD, "bin", "whistlectl")
SCENARIO = os.path.join(wt.ROOT, "tests", "scenarios", "small")
REG = os.path.join(SCENARIO, "registry")
EXPECTED = os.path.join(SCENARIO, "expected")

w = wt.Workdir("whistlectl-scenario")
ienv = ic.intake_env(w, WHISTLE_CLOCK="event", WHISTLE_REGISTRY=REG)
renv = rc.referral_env(w, ienv, registry=REG)
tenv = rtc.rating_env(w, ienv, renv, registry=REG)
eenv = ec.escalation_env(w, renv, tenv, registry=REG)
ENV = dict(os.environ, WHISTLE_INTAKE_CONTROL=ienv["WHISTLE_CONTROL"], WHISTLE_REFERRAL_CONTROL=renv["WHISTLE_CONTROL"],
           WHISTLE_RATING_CONTROL=tenv["WHISTLE_CONTROL"], WHISTLE_ESCALATION_CONTROL=eenv["WHISTLE_CONTROL"],
           WHISTLE_INTAKE_HOTLINE=ienv["WHISTLE_INTAKE_HOTLINE"], WHISTLE_REFERRAL_UNITS=renv["WHISTLE_REFERRAL_UNITS"],
           WHISTLE_RATING_REQUESTS=tenv["WHISTLE_RATING_REQUESTS"],
           WHISTLE_ESCALATION_REQUESTS=eenv["WHISTLE_ESCALATION_REQUESTS"])
wt.pgdev("start")

for mode in ([], ["--sequential"]):
    name = " ".join(["replay"] + mode)
    wt.pgdev("reset", "intake", "referral", "rating", "escalation")
    ds = [ic.start_intake(w, ienv), rc.start_referral(w, renv), rtc.start_rating(w, tenv), ec.start_escalation(w, eenv)]
    wt.check(all(ok for _, ok in ds), f"{name}: the four daemons are up (event clock, the scenario's registry)")
    p = subprocess.run([CTL, name.split()[0], "--quiet", *mode, REG, os.path.join(SCENARIO, "feed.jsonl")],
                       capture_output=True, text=True, env=ENV, timeout=600)
    wt.log(p.stdout)
    wt.check(p.returncode == 0 and "refused" not in p.stdout, f"whistlectl {name}: exit 0, nothing refused ({p.stderr[-300:]})")
    out = w.file("exports-" + ("seq" if mode else "pipe"))
    p = subprocess.run([CTL, "export", "--all", out], capture_output=True, text=True, env=ENV, timeout=300)
    wt.check(p.returncode == 0, f"{name}: export --all ({p.stderr[-200:]})")
    got = sorted(os.listdir(out)) if os.path.isdir(out) else []
    wt.check(got == sorted(os.listdir(EXPECTED)), f"{name}: the files of expected/ and no others ({got})")
    for f in sorted(os.listdir(EXPECTED)):
        want = open(os.path.join(EXPECTED, f), encoding="utf-8").read()
        path = os.path.join(out, f)
        have = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
        wt.check(have == want, f"{name}: {f} equals the hand-computed file")
        if have != want:
            sys.stdout.writelines(difflib.unified_diff(want.splitlines(True), have.splitlines(True),
                                                       f"expected/{f}", f"whistlectl/{f}"))
    codes = [d.stop() for d, _ in reversed(ds)]
    wt.check(codes == [0] * 4, f"{name}: the daemons exit 0 on SIGTERM ({codes})")
w.cleanup()
wt.done()
