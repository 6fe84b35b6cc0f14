"""`make run` as a newcomer runs it, without a terminal: tools/run.sh with
SCENARIO=tests/scenarios/small (the hand-checked scenario) starts the private
Postgres and the four daemons, replays the feed with whistlectl, writes every
export under build/run/export/ and prints the summary, then stops the
daemons (each exit status 0). The exports equal the hand-computed files, and
a second run (fresh schemas) writes the same bytes (R-T2). With the default
sample (tools/gen_city.py) the same script runs in test_gen_city."""
import filecmp
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402

SCENARIO = os.path.join("tests", "scenarios", "small")
EXPECTED = os.path.join(wt.ROOT, SCENARIO, "expected")
EXPORT = os.path.join(wt.BUILD, "run", "export")


def run():
    env = dict(os.environ, BUILD=os.path.relpath(wt.BUILD, wt.ROOT), SCENARIO=SCENARIO,
               WHISTLE_RUN_ONCE="1")
    return subprocess.run(["bash", "tools/run.sh"], cwd=wt.ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)


def same_dir(a, b):
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False, f"files differ: {names} vs {sorted(os.listdir(b))}"
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return not mismatch and not errors, f"different: {mismatch + errors}"


r = run()
out = r.stdout
wt.check(r.returncode == 0, f"tools/run.sh exits 0 ({r.returncode}: {r.stderr[-800:]})")
wt.check("whistlectl replay:" in out and "169 of 169 lines" in out,
         "it replays every line of the scenario with whistlectl")
wt.check("Notices: 27" in out and "督办〔2026〕1号" in out and "Top list" in out
         and "Credit (2026H2)" in out and "Stars (2026Q4)" in out and "Where to look next" in out,
         "the summary shows the top list, notices by type with one letter, unit scores, credit,"
         " stars and where to look next")
stops = [line for line in out.splitlines() if "stopped (exit status" in line]
wt.check(len(stops) == 4 and all(line.endswith("(exit status 0)") for line in stops),
         f"the four daemons drain and exit 0 ({stops})")
ok, why = same_dir(EXPORT, EXPECTED)
wt.check(ok, f"build/run/export equals the hand-computed exports ({why})")

first = EXPORT + ".first"
shutil.rmtree(first, ignore_errors=True)
shutil.copytree(EXPORT, first)
r = run()
wt.check(r.returncode == 0, "a second run exits 0")
ok, why = same_dir(EXPORT, first)
wt.check(ok, f"R-T2: the second run, on fresh schemas, writes the same bytes ({why})")
shutil.rmtree(first, ignore_errors=True)

bad = subprocess.run(["bash", "tools/run.sh"], cwd=wt.ROOT, capture_output=True, text=True,
                     env=dict(os.environ, BUILD=os.path.relpath(wt.BUILD, wt.ROOT),
                              SCENARIO="tests/no-such-scenario", WHISTLE_RUN_ONCE="1"),
                     stdin=subprocess.DEVNULL, timeout=60)
wt.check(bad.returncode == 1 and "no such directory" in bad.stderr,
         f"SCENARIO naming no directory: a clear error, exit 1 ({bad.returncode}: {bad.stderr.strip()[-200:]})")
wt.done()
