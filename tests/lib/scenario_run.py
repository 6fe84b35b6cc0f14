"""Runs a scenario directory (registry/ + feed.jsonl) through the four real
daemons with whistlectl, as `make run` does: the daemons in event clock mode on
fresh schemas, `whistlectl replay`, `whistlectl export --all`. For the end to
end and fault suites. Debian's python3 only."""
import difflib
import filecmp
import os
import subprocess
import sys

import wt
import intake_client as ic
import referral_client as rc
import rating_client as rtc
import escalation_client as ec

CTL = os.path.join(wt.BUILD, "bin", "whistlectl")
GEN = os.path.join(wt.ROOT, "tools", "gen_city.py")
SCHEMAS = ("intake", "referral", "rating", "escalation")


def generate(out, seed, tickets):
    """tools/gen_city.py into out (registry/, feed.jsonl); the feed's line count."""
    subprocess.run(["/usr/bin/python3", GEN, "--seed", str(seed), "--tickets", str(tickets),
                    "--out", out], check=True, capture_output=True, timeout=300)
    with open(os.path.join(out, "feed.jsonl"), encoding="utf-8") as f:
        return sum(1 for _ in f)


class System:
    """The four daemons of one scenario (their environments fixed, so a
    daemon can be killed and started again with the same ones)."""

    def __init__(self, w, registry):
        templates = "" if os.path.isdir(os.path.join(registry, "notice_templates")) else \
            os.path.join(wt.ROOT, "deploy", "registry", "notice_templates")
        self.w = w
        self.env = {}
        self.env["intake"] = ic.intake_env(w, WHISTLE_CLOCK="event", WHISTLE_REGISTRY=registry)
        self.env["referral"] = rc.referral_env(w, self.env["intake"], registry=registry)
        self.env["rating"] = rtc.rating_env(w, self.env["intake"], self.env["referral"], registry=registry)
        self.env["escalation"] = ec.escalation_env(w, self.env["referral"], self.env["rating"],
                                                   registry=registry, WHISTLE_NOTICE_TEMPLATES=templates)
        # Intake reads referral's closures back (R-I5), as `make run` and the deployment wire it.
        self.env["intake"]["WHISTLE_REFERRAL_STREAM_AT"] = self.env["referral"]["WHISTLE_REFERRAL_STREAM"]
        e = self.env
        self.ctl_env = dict(
            os.environ,
            WHISTLE_INTAKE_CONTROL=e["intake"]["WHISTLE_CONTROL"],
            WHISTLE_REFERRAL_CONTROL=e["referral"]["WHISTLE_CONTROL"],
            WHISTLE_RATING_CONTROL=e["rating"]["WHISTLE_CONTROL"],
            WHISTLE_ESCALATION_CONTROL=e["escalation"]["WHISTLE_CONTROL"],
            WHISTLE_INTAKE_HOTLINE=e["intake"]["WHISTLE_INTAKE_HOTLINE"],
            WHISTLE_REFERRAL_UNITS=e["referral"]["WHISTLE_REFERRAL_UNITS"],
            WHISTLE_RATING_REQUESTS=e["rating"]["WHISTLE_RATING_REQUESTS"],
            WHISTLE_ESCALATION_REQUESTS=e["escalation"]["WHISTLE_ESCALATION_REQUESTS"])
        self.d = {}
        self.starts = 0

    def start(self, name):
        self.starts += 1
        log = f"{name}-{self.starts}.log"
        start = {"intake": ic.start_intake, "referral": rc.start_referral, "rating": rtc.start_rating,
                 "escalation": ec.start_escalation}[name]
        self.d[name], ok = start(self.w, self.env[name], log=log)
        return ok

    def start_all(self, fresh=True):
        if fresh:
            wt.pgdev("reset", *SCHEMAS)
        return all([self.start(n) for n in SCHEMAS])

    def stop_all(self):
        return [self.d[n].stop() for n in reversed(SCHEMAS) if n in self.d]

    def ctl(self, *args, timeout=900):
        return subprocess.run([CTL, *args], capture_output=True, text=True, env=self.ctl_env,
                              timeout=timeout)

    def replay(self, scenario, *opts):
        return self.ctl("replay", "--quiet", *opts, os.path.join(scenario, "registry"),
                        os.path.join(scenario, "feed.jsonl"))

    def export(self, out):
        return self.ctl("export", "--all", out)


def same_dir(a, b, show=40):
    """(True, "") when the two directories hold the same files, byte for byte;
    otherwise prints the first lines of each difference (unified diff)."""
    na, nb = sorted(os.listdir(a)), sorted(os.listdir(b))
    if na != nb:
        return False, f"files differ: {sorted(set(na) ^ set(nb))}"
    _, mismatch, errors = filecmp.cmpfiles(a, b, na, shallow=False)
    for name in mismatch:
        with open(os.path.join(a, name), encoding="utf-8") as fa, \
                open(os.path.join(b, name), encoding="utf-8") as fb:
            diff = list(difflib.unified_diff(fa.readlines(), fb.readlines(), f"{a}/{name}", f"{b}/{name}", n=0))
        sys.stdout.writelines(diff[:show])
    return not mismatch and not errors, f"different: {mismatch + errors}"
