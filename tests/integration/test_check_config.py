"""--check-config agrees with start-up: for a table of good and bad settings of
intake, referral, rating and escalation, --check-config's exit status (0 or 2) matches
what starting the daemon with the same settings does (it gets ready, or it
exits non-zero without getting ready). Also: an unknown WHISTLE_* variable is
warned about with the closest name, --version prints the build's version, and
each daemon's --help exits 0 listing every variable --check-config shows."""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import escalation_client as ec  # noqa: E402
import intake_client as ic  # noqa: E402
import rating_client as rt  # noqa: E402
import referral_client as rc  # noqa: E402

w = wt.Workdir("checkcfg")
keys = rc.Keys(w)
keys.make("intake")
keys.make("referral", allowed_by=("intake",))
keys.make("rating", allowed_by=("intake", "referral"))
keys.make("escalation", allowed_by=("referral", "rating"))
keys.make("ops", allowed_by=("intake", "referral", "rating", "escalation"))
keys.make("intake-cl", allowed_by=("referral",))
with open(w.file("pseudonym.key"), "w") as f:
    f.write("a-pseudonym-key-of-enough-bytes\n")
with open(w.file("short.key"), "w") as f:
    f.write("short\n")
broken_reg = w.file("registry-broken")
shutil.copytree(ic.REGISTRY, broken_reg)
with open(os.path.join(broken_reg, "compounds.csv"), "a") as f:
    f.write("\"unterminated,quote\n")
# Rating's rule table lives in its registry directory (rating_rules.csv).
bad_rules = {}
for what, text in (("no-header", "top_k,30\n"),
                   ("weights", "key,value\nversion,v9\nweight.sanitation,90\n")):
    bad_rules[what] = w.file(f"registry-rules-{what}")
    shutil.copytree(ic.REGISTRY, bad_rules[what])
    with open(os.path.join(bad_rules[what], "rating_rules.csv"), "w") as f:
        f.write(text)
# Escalation's letter templates live in its registry directory too
# (notice_templates/<TYPE>.txt, each with a {number} placeholder).
no_template = w.file("registry-no-template")
shutil.copytree(ic.REGISTRY, no_template)
os.unlink(os.path.join(no_template, "notice_templates", "DUBAN.txt"))
no_number = w.file("registry-no-number")
shutil.copytree(ic.REGISTRY, no_number)
with open(os.path.join(no_number, "notice_templates", "WENZE.txt"), "w") as f:
    f.write("问责函 without its number\n")
# A city's registry without templates takes them from WHISTLE_NOTICE_TEMPLATES.
bare = w.file("registry-bare")
shutil.copytree(ic.REGISTRY, bare, ignore=shutil.ignore_patterns("notice_templates"))
good_rules = w.file("registry-rules-good")
shutil.copytree(ic.REGISTRY, good_rules)
with open(os.path.join(good_rules, "rating_rules.csv"), "w") as f:
    f.write("key,value\nversion,v1-city\ntop_k,20\n")


def outcome(prog, env, curve=None, timeout=30):
    """Starts prog with env: ("ready", None) or ("exited", code)."""
    d = wt.Daemon(prog, env, w.file("start.log")).start()
    end = time.time() + timeout
    while time.time() < end:
        if d.p.poll() is not None:
            return "exited", d.p.returncode
        if env.get("WHISTLE_CONTROL") and wt.status(env["WHISTLE_CONTROL"], 0.3, curve=curve):
            code = d.stop()
            return "ready", code
        time.sleep(0.1)
    d.stop()
    return "hung", None


def check_config(prog, env):
    r = subprocess.run([prog, "--check-config"], env=dict(os.environ, **wt.pg_env(), **env),
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


curve_i = dict(WHISTLE_CURVE="1", WHISTLE_CURVE_SECRET_KEY=w.file("intake.key"),
               WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-intake"),
               WHISTLE_PSEUDONYM_KEY=w.file("pseudonym.key"))
curve_r = dict(WHISTLE_CURVE="1", WHISTLE_CURVE_SECRET_KEY=w.file("referral.key"),
               WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-referral"),
               WHISTLE_CURVE_CLIENT_KEY=w.file("referral.key"),
               WHISTLE_INTAKE_SERVER_KEY=w.file("intake.pub"))
curve_t = dict(WHISTLE_CURVE="1", WHISTLE_CURVE_SECRET_KEY=w.file("rating.key"),
               WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-rating"),
               WHISTLE_CURVE_CLIENT_KEY=w.file("rating.key"),
               WHISTLE_INTAKE_SERVER_KEY=w.file("intake.pub"),
               WHISTLE_REFERRAL_SERVER_KEY=w.file("referral.pub"))
curve_e = dict(WHISTLE_CURVE="1", WHISTLE_CURVE_SECRET_KEY=w.file("escalation.key"),
               WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-escalation"),
               WHISTLE_CURVE_CLIENT_KEY=w.file("escalation.key"),
               WHISTLE_REFERRAL_SERVER_KEY=w.file("referral.pub"),
               WHISTLE_RATING_SERVER_KEY=w.file("rating.pub"))
no_key = dict(curve_i)
no_key.pop("WHISTLE_PSEUDONYM_KEY")
CASES = [
    # (what, daemon, extra settings, CURVE client for the status probe)
    ("defaults, CURVE off", "intake", {}, None),
    ("CURVE on with every key", "intake", curve_i, "intake"),
    ("CURVE on without any key", "intake", {"WHISTLE_CURVE": "1"}, None),
    ("CURVE on without the pseudonym key", "intake", no_key, None),
    ("a pseudonym key shorter than 16 bytes", "intake",
     {"WHISTLE_PSEUDONYM_KEY": w.file("short.key")}, None),
    ("a secret key file that is missing", "intake",
     dict(curve_i, WHISTLE_CURVE_SECRET_KEY=w.file("nope.key")), None),
    ("an allowed-keys directory that is missing", "intake",
     dict(curve_i, WHISTLE_CURVE_ALLOWED_DIR=w.file("nope")), None),
    ("WHISTLE_HTTP with a host name", "intake", {"WHISTLE_HTTP": "localhost:9101"}, None),
    ("WHISTLE_HTTP without a port", "intake", {"WHISTLE_HTTP": "127.0.0.1"}, None),
    ("WHISTLE_HTTP on a free port", "intake", {"WHISTLE_HTTP": f"127.0.0.1:{wt.free_port()}"}, None),
    ("a registry directory that is missing", "intake", {"WHISTLE_REGISTRY": w.file("nope")}, None),
    ("a registry with a broken CSV", "intake", {"WHISTLE_REGISTRY": broken_reg}, None),
    ("WHISTLE_BATCH out of range", "intake", {"WHISTLE_BATCH": "0"}, None),
    ("a connection string that does not parse", "intake", {"WHISTLE_PG": "user=intake oops"}, None),
    ("a password file that is missing", "intake",
     {"WHISTLE_PG_PASSWORD_FILE": w.file("nope.pw")}, None),
    ("a misspelled variable (warned, not refused)", "intake", {"WHISTLE_BATHC": "5"}, None),
    ("referral with CURVE and every key", "referral", curve_r, "referral"),
    ("referral with CURVE and no intake key", "referral",
     {k: v for k, v in curve_r.items() if k != "WHISTLE_INTAKE_SERVER_KEY"}, None),
    ("referral with CURVE and no client key", "referral",
     {k: v for k, v in curve_r.items() if k != "WHISTLE_CURVE_CLIENT_KEY"}, None),
    ("intake reading closures with CURVE but no referral key", "intake",
     dict(curve_i, WHISTLE_REFERRAL_STREAM_AT="tcp://127.0.0.1:1",
          WHISTLE_CURVE_CLIENT_KEY=w.file("intake.key")), None),
    ("defaults, CURVE off", "rating", {}, None),
    ("CURVE on with every key", "rating", curve_t, "rating"),
    ("CURVE on without any key", "rating", {"WHISTLE_CURVE": "1"}, None),
    ("CURVE on and no intake key", "rating",
     {k: v for k, v in curve_t.items() if k != "WHISTLE_INTAKE_SERVER_KEY"}, None),
    ("CURVE on and no referral key", "rating",
     {k: v for k, v in curve_t.items() if k != "WHISTLE_REFERRAL_SERVER_KEY"}, None),
    ("CURVE on and no client key", "rating",
     {k: v for k, v in curve_t.items() if k != "WHISTLE_CURVE_CLIENT_KEY"}, None),
    ("CURVE on and an allowed-keys directory that is missing", "rating",
     dict(curve_t, WHISTLE_CURVE_ALLOWED_DIR=w.file("nope")), None),
    ("a referral key file that is no key", "rating",
     dict(curve_t, WHISTLE_REFERRAL_SERVER_KEY=w.file("short.key")), None),
    ("a rule table of its own", "rating", {"WHISTLE_REGISTRY": good_rules}, None),
    ("a rule table without its header", "rating", {"WHISTLE_REGISTRY": bad_rules["no-header"]}, None),
    ("a rule table whose weights do not sum to 100", "rating",
     {"WHISTLE_REGISTRY": bad_rules["weights"]}, None),
    ("a registry with a broken CSV", "rating", {"WHISTLE_REGISTRY": broken_reg}, None),
    ("WHISTLE_TICK_MS out of range", "rating", {"WHISTLE_TICK_MS": "5"}, None),
    ("an unknown WHISTLE_CLOCK", "rating", {"WHISTLE_CLOCK": "lunar"}, None),
    ("a stream endpoint that does not parse", "rating", {"WHISTLE_RATING_STREAM": "tcp:/x"}, None),
    ("defaults, CURVE off", "escalation", {}, None),
    ("CURVE on with every key", "escalation", curve_e, "escalation"),
    ("CURVE on without any key", "escalation", {"WHISTLE_CURVE": "1"}, None),
    ("CURVE on and no referral key", "escalation",
     {k: v for k, v in curve_e.items() if k != "WHISTLE_REFERRAL_SERVER_KEY"}, None),
    ("CURVE on and no rating key", "escalation",
     {k: v for k, v in curve_e.items() if k != "WHISTLE_RATING_SERVER_KEY"}, None),
    ("CURVE on and no client key", "escalation",
     {k: v for k, v in curve_e.items() if k != "WHISTLE_CURVE_CLIENT_KEY"}, None),
    ("CURVE on and an allowed-keys directory that is missing", "escalation",
     dict(curve_e, WHISTLE_CURVE_ALLOWED_DIR=w.file("nope")), None),
    ("a rating key file that is no key", "escalation",
     dict(curve_e, WHISTLE_RATING_SERVER_KEY=w.file("short.key")), None),
    ("a registry without a letter template", "escalation", {"WHISTLE_REGISTRY": no_template}, None),
    ("a letter template without {number}", "escalation", {"WHISTLE_REGISTRY": no_number}, None),
    ("a registry without templates, none named", "escalation", {"WHISTLE_REGISTRY": bare}, None),
    ("a registry without templates, WHISTLE_NOTICE_TEMPLATES naming them", "escalation",
     {"WHISTLE_REGISTRY": bare,
      "WHISTLE_NOTICE_TEMPLATES": os.path.join(ic.REGISTRY, "notice_templates")}, None),
    ("WHISTLE_NOTICE_TEMPLATES missing a template", "escalation",
     {"WHISTLE_REGISTRY": bare,
      "WHISTLE_NOTICE_TEMPLATES": os.path.join(no_template, "notice_templates")}, None),
    ("a registry with a broken CSV", "escalation", {"WHISTLE_REGISTRY": broken_reg}, None),
    ("WHISTLE_TICK_MS out of range", "escalation", {"WHISTLE_TICK_MS": "5"}, None),
    ("an unknown WHISTLE_CLOCK", "escalation", {"WHISTLE_CLOCK": "lunar"}, None),
    ("a stream endpoint that does not parse", "escalation",
     {"WHISTLE_ESCALATION_STREAM": "tcp:/x"}, None),
    ("a request endpoint that does not parse", "escalation",
     {"WHISTLE_ESCALATION_REQUESTS": "udp://x"}, None),
]

try:
    ienv = ic.intake_env(w)
    renv = rc.referral_env(w, ienv)
    tenv = rt.rating_env(w, ienv, renv)
    for what, daemon, extra, probe in CASES:
        if daemon == "intake":
            prog, env = ic.INTAKE, dict(ienv, **extra)
        elif daemon == "referral":
            prog, env = rc.REFERRAL, rc.referral_env(w, ienv, **extra)
        elif daemon == "rating":
            prog, env = rt.RATING, rt.rating_env(w, ienv, renv, **extra)
        else:
            prog, env = ec.ESCALATION, ec.escalation_env(w, renv, tenv, **extra)
        curve = keys.client(probe, "ops") if probe else None
        code, text = check_config(prog, env)
        got, exit_code = outcome(prog, env, curve)
        agree = (code == 0 and got == "ready" and exit_code == 0) or \
                (code == 2 and got == "exited" and exit_code != 0)
        wt.check(agree, f"{daemon}, {what}: --check-config exit {code}, start-up {got}"
                 + (f" (exit {exit_code})" if exit_code is not None else ""))
        wt.check(ic.sanitizer_clean(w.file("start.log")) and
                 not any(m in text for m in ic.SANITIZER_MARKS), f"{daemon}, {what}: no sanitizer report")
        if "misspelled" in what:
            wt.check("did you mean WHISTLE_BATCH?" in text,
                     "the misspelled variable is named with the closest setting")
    for prog in (ic.INTAKE, rc.REFERRAL, rt.RATING, ec.ESCALATION, os.path.join(wt.BUILD, "bin", "whistle-keygen"),
                 os.path.join(wt.BUILD, "bin", "whistle-hotline"),
                 os.path.join(wt.BUILD, "bin", "whistle-dept")):
        r = subprocess.run([prog, "--version"], capture_output=True, text=True)
        wt.check(r.returncode == 0 and len(r.stdout.split()) == 2,
                 f"{os.path.basename(prog)} --version: {r.stdout.strip()}")
    # --help needs no valid setting and lists every variable start-up reads.
    for name, prog, env in (("intake", ic.INTAKE, ienv), ("referral", rc.REFERRAL, renv),
                            ("rating", rt.RATING, tenv),
                            ("escalation", ec.ESCALATION, ec.escalation_env(w, renv, tenv))):
        code, text = check_config(prog, env)
        shown = set(re.findall(r"^(WHISTLE_\w+)=", text, re.M))
        r = subprocess.run([prog, "--help"], env=dict(os.environ, WHISTLE_CURVE="1"),
                           capture_output=True, text=True, timeout=30)
        listed = set(re.findall(r"^  (WHISTLE_\w+) ", r.stdout, re.M))
        wt.check(r.returncode == 0 and r.stdout.startswith(f"usage: {name} ") and code == 0
                 and len(shown) > 10 and shown == listed,
                 f"{name} --help (exit {r.returncode}) lists the {len(listed)} variables"
                 f" --check-config shows" + ("" if shown == listed else f": {shown ^ listed}"))
finally:
    w.cleanup()
wt.done()
