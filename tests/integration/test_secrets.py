"""Secrets never reach a log: intake, referral, rating and escalation run with
a Postgres password read from WHISTLE_PG_PASSWORD_FILE, CURVE key files and
(intake) a pseudonym key, and are made to fail every way that could show them (a connection string that does
not parse with a password in it, a wrong password against a server that asks
for it, key files that are not keys, a failed SIGHUP reload). Then every log and
every --check-config output of the run is searched for the passwords and the
key contents: none may appear. A key rotation (a second key of an identity
beside the first, then the first removed) is checked on the way. The wrong-password server also proves that the
password file's password is what libpq sends."""
import os
import socket
import struct
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import escalation_client as ec  # noqa: E402
import intake_client as ic  # noqa: E402
import rating_client as rt  # noqa: E402
import referral_client as rc  # noqa: E402

PW_GOOD = "Pw-Good-7f3a9c w'rd\\x"   # a space, a quote and a backslash: escaping
PW_BAD = "Pw-Wrong-51e0d2aa"
PSEUDONYM = "Pseudonym-Key-0c4be9d1f00d2a77"
GARBAGE_KEY = "Not-A-Z85-Key-But-Secret-9e1f3b7c"

w = wt.Workdir("secrets")
keys = rc.Keys(w)
keys.make("intake")
keys.make("referral", allowed_by=("intake",))
keys.make("hotline", allowed_by=("intake", "referral"))
keys.make("intake-client", allowed_by=("referral",))
keys.make("rating", allowed_by=("intake", "referral"))
keys.make("escalation", allowed_by=("referral", "rating"))
keys.make("ops", allowed_by=("rating", "escalation"))
secret_texts = [PW_GOOD, PW_BAD, PSEUDONYM, GARBAGE_KEY]
for name in keys.keys:
    secret_texts.append(keys.keys[name][1].decode())


def write(name, text, mode=0o600):
    path = w.file(name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, mode)
    return path


pw_good = write("pg-password", PW_GOOD)
pw_bad = write("pg-password-wrong", PW_BAD)
pseudonym = write("pseudonym.key", PSEUDONYM)
garbage = write("garbage.key", GARBAGE_KEY)
outputs = []   # (what, text) of every command run here


def run(env, args, what, timeout=60, prog=ic.INTAKE):
    """Runs a daemon (intake unless prog) to the end (a check, or a start that
    must fail); its exit status."""
    full = dict(os.environ, **wt.pg_env(), **env)
    r = subprocess.run([prog, *args], env=full, capture_output=True, text=True,
                       timeout=timeout)
    outputs.append((what, r.stdout + r.stderr))
    return r.returncode, r.stdout + r.stderr


def fake_postgres(sockdir, port, seen):
    """A server that asks for a cleartext password and refuses it, as Postgres
    does for a wrong one; what the client sent is kept in seen."""
    path = os.path.join(sockdir, f".s.PGSQL.{port}")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)

    def recv_exact(c, n):
        b = b""
        while len(b) < n:
            part = c.recv(n - len(b))
            if not part:
                raise OSError("closed")
            b += part
        return b

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            try:
                n = struct.unpack("!I", recv_exact(c, 4))[0]
                recv_exact(c, n - 4)
                c.sendall(b"R" + struct.pack("!II", 8, 3))
                t = recv_exact(c, 1)
                n = struct.unpack("!I", recv_exact(c, 4))[0]
                body = recv_exact(c, n - 4)
                if t == b"p":
                    seen.append(body.rstrip(b"\0").decode(errors="replace"))
                msg = (b"SFATAL\0VFATAL\0C28P01\0"
                       b"Mpassword authentication failed for user \"intake\"\0\0")
                c.sendall(b"E" + struct.pack("!I", len(msg) + 4) + msg)
            except OSError:
                pass
            finally:
                c.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv


try:
    base = ic.intake_env(w, WHISTLE_CURVE="1", WHISTLE_CURVE_SECRET_KEY=w.file("intake.key"),
                         WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-intake"),
                         WHISTLE_PSEUDONYM_KEY=pseudonym, WHISTLE_PG_PASSWORD_FILE=pw_good)
    curve = keys.client("intake", "hotline")

    # 1. A good start with the password file (the private cluster trusts the
    # socket, so the password is passed and ignored), then a failed reload.
    code, out = run(base, ["--check-config"], "check-config, good")
    wt.check(code == 0, "--check-config accepts the password file and the key files")
    wt.check("WHISTLE_PG_PASSWORD_FILE=" + pw_good in out,
             "--check-config shows the password file's path")
    d = wt.Daemon(ic.INTAKE, base, w.file("intake-good.log")).start()
    wt.check(wt.wait_ready(base["WHISTLE_CONTROL"], curve=curve) is not None,
             "intake starts with WHISTLE_PG_PASSWORD_FILE and CURVE on")
    wt.check(wt.wait_for(lambda: (wt.status(base["WHISTLE_CONTROL"], 1.0, curve=curve) or {})
                         .get("pg.up") == 1, 60, "pg.up"),
             "its Postgres connections are up with the password passed to libpq")
    write("allowed-intake/broken.pub", GARBAGE_KEY)
    d.p.send_signal(1)  # SIGHUP
    wt.check(wt.wait_for(lambda: (wt.status(base["WHISTLE_CONTROL"], 1.0, curve=curve) or {})
                         .get("reload.failures") == 1, 10, "reload.failures"),
             "a reload that cannot read a key is counted (reload.failures = 1)")
    wt.check("the previous one stays in force" in d.log_text(),
             "the log says the previous key set stays in force")
    wt.check(wt.status(base["WHISTLE_CONTROL"], 2.0, curve=curve) is not None,
             "the previous key set still admits the client")
    os.unlink(w.file("allowed-intake/broken.pub"))
    # A key rotation: the new key beside the old one, then the old one removed.
    new_pub, new_sec = rc.zmq.curve_keypair()
    secret_texts.append(new_sec.decode())
    with open(w.file("allowed-intake/hotline+2027.pub"), "wb") as f:
        f.write(new_pub + b"\n")
    d.p.send_signal(1)
    new_curve = (curve[0], new_pub, new_sec)
    wt.check(wt.wait_for(lambda: wt.status(base["WHISTLE_CONTROL"], 1.0, curve=new_curve), 10,
                         "the new key"), "rotation: the new key (hotline+2027.pub) is admitted")
    wt.check(wt.status(base["WHISTLE_CONTROL"], 2.0, curve=curve) is not None,
             "rotation: the old key still is, side by side")
    os.unlink(w.file("allowed-intake/hotline.pub"))
    d.p.send_signal(1)
    wt.check(wt.wait_for(lambda: wt.status(base["WHISTLE_CONTROL"], 1.0, curve=curve) is None, 15,
                         "the old key refused"), "rotation: once removed, the old key is refused")
    wt.check(wt.status(base["WHISTLE_CONTROL"], 2.0, curve=new_curve) is not None,
             "rotation: the new key goes on")

    # 1b. Rating with its password file and keys reads intake's stream as
    # "rating" (its client key), then refuses a broken allowed key on SIGHUP.
    tbase = rt.rating_env(w, base, rc.referral_env(w, base), WHISTLE_CURVE="1",
                          WHISTLE_CURVE_SECRET_KEY=w.file("rating.key"),
                          WHISTLE_CURVE_CLIENT_KEY=w.file("rating.key"),
                          WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-rating"),
                          WHISTLE_INTAKE_SERVER_KEY=w.file("intake.pub"),
                          WHISTLE_REFERRAL_SERVER_KEY=w.file("referral.pub"),
                          WHISTLE_PG_PASSWORD_FILE=pw_good)
    tcurve = keys.client("rating", "ops")
    code, out = run(tbase, ["--check-config"], "rating check-config, good", prog=rt.RATING)
    wt.check(code == 0 and "WHISTLE_PG_PASSWORD_FILE=" + pw_good in out,
             "rating --check-config accepts the password file and the key files")
    t = wt.Daemon(rt.RATING, tbase, w.file("rating-good.log")).start()
    wt.check(wt.wait_for(lambda: (wt.status(tbase["WHISTLE_CONTROL"], 1.0, curve=tcurve) or {})
                         .get("pg.up") == 1, 60, "rating's pg.up"),
             "rating starts with WHISTLE_PG_PASSWORD_FILE and CURVE on, Postgres up")
    wt.check(wt.wait_for(lambda: (wt.status(base["WHISTLE_CONTROL"], 1.0, curve=new_curve) or {})
                         .get("stream.subscribers", 0) >= 1, 30, "rating's subscription"),
             "rating reads intake's stream with its client key (admitted as rating)")
    write("allowed-rating/broken.pub", GARBAGE_KEY)
    t.p.send_signal(1)
    wt.check(wt.wait_for(lambda: (wt.status(tbase["WHISTLE_CONTROL"], 1.0, curve=tcurve) or {})
                         .get("reload.failures") == 1, 10, "rating's reload.failures"),
             "rating: a reload that cannot read a key is counted, the previous keys stay")
    os.unlink(w.file("allowed-rating/broken.pub"))

    # 1c. Escalation likewise reads rating's stream as "escalation" (its
    # client key), then refuses a broken allowed key on SIGHUP.
    ebase = ec.escalation_env(w, rc.referral_env(w, base), tbase, WHISTLE_CURVE="1",
                              WHISTLE_CURVE_SECRET_KEY=w.file("escalation.key"),
                              WHISTLE_CURVE_CLIENT_KEY=w.file("escalation.key"),
                              WHISTLE_CURVE_ALLOWED_DIR=w.file("allowed-escalation"),
                              WHISTLE_REFERRAL_SERVER_KEY=w.file("referral.pub"),
                              WHISTLE_RATING_SERVER_KEY=w.file("rating.pub"),
                              WHISTLE_PG_PASSWORD_FILE=pw_good)
    ecurve = keys.client("escalation", "ops")
    code, out = run(ebase, ["--check-config"], "escalation check-config, good", prog=ec.ESCALATION)
    wt.check(code == 0 and "WHISTLE_PG_PASSWORD_FILE=" + pw_good in out,
             "escalation --check-config accepts the password file and the key files")
    e = wt.Daemon(ec.ESCALATION, ebase, w.file("escalation-good.log")).start()
    wt.check(wt.wait_for(lambda: (wt.status(ebase["WHISTLE_CONTROL"], 1.0, curve=ecurve) or {})
                         .get("pg.up") == 1, 60, "escalation's pg.up"),
             "escalation starts with WHISTLE_PG_PASSWORD_FILE and CURVE on, Postgres up")
    wt.check(wt.wait_for(lambda: (wt.status(tbase["WHISTLE_CONTROL"], 1.0, curve=tcurve) or {})
                         .get("stream.subscribers", 0) >= 1, 30, "escalation's subscription"),
             "escalation reads rating's stream with its client key (admitted as escalation)")
    write("allowed-escalation/broken.pub", GARBAGE_KEY)
    e.p.send_signal(1)
    wt.check(wt.wait_for(lambda: (wt.status(ebase["WHISTLE_CONTROL"], 1.0, curve=ecurve) or {})
                         .get("reload.failures") == 1, 10, "escalation's reload.failures"),
             "escalation: a reload that cannot read a key is counted, the previous keys stay")
    os.unlink(w.file("allowed-escalation/broken.pub"))
    wt.check(e.stop() == 0, "escalation stops cleanly")
    wt.check(t.stop() == 0, "rating stops cleanly")
    wt.check(d.stop() == 0, "intake stops cleanly")

    # 2. A connection string that does not parse, with a password inside it.
    bad_pg = dict(base, WHISTLE_PG=f"user=intake w'rd password={PW_GOOD.split()[0]}")
    bad_pg.pop("WHISTLE_PG_PASSWORD_FILE")
    code, out = run(bad_pg, ["--check-config"], "check-config, bad conninfo")
    wt.check(code == 2 and "cannot be parsed" in out,
             "--check-config refuses a connection string that does not parse (exit 2)")
    code, out = run(bad_pg, [], "start, bad conninfo", timeout=20)
    wt.check(code == 2 and "cannot be parsed" in out and "the string is not shown" in out,
             "start-up refuses it at once (exit 2), naming the problem without the string")

    # 3. A wrong password against a server that asks for one.
    fake_dir = w.file("fakepg")
    os.makedirs(fake_dir)
    seen = []
    srv = fake_postgres(fake_dir, 5999, seen)
    wrong = dict(base, WHISTLE_CURVE="0", WHISTLE_PG=f"host={fake_dir} port=5999 user=intake",
                 WHISTLE_PG_PASSWORD_FILE=pw_bad, WHISTLE_PG_WAIT_S="1")
    code, out = run(wrong, [], "start, wrong password", timeout=30)
    wt.check(code == 1 and "password authentication failed" in out,
             "a wrong password: start-up gives up after WHISTLE_PG_WAIT_S (exit 1) and says why")
    wt.check(seen and all(s == PW_BAD for s in seen),
             "libpq sent the password file's password (first line, newline dropped)")
    seen.clear()
    spaced = dict(wrong, WHISTLE_PG_PASSWORD_FILE=pw_good)
    run(spaced, [], "start, password with a space and quotes", timeout=30)
    wt.check(seen and seen[0] == PW_GOOD, "a password with a space, a quote and a backslash "
             "reaches libpq intact")
    tfake = dict(tbase, WHISTLE_CURVE="0", WHISTLE_PG=f"host={fake_dir} port=5999 user=rating",
                 WHISTLE_PG_PASSWORD_FILE=pw_bad, WHISTLE_PG_WAIT_S="1")
    seen.clear()
    code, out = run(tfake, [], "rating start, wrong password", timeout=30, prog=rt.RATING)
    wt.check(code == 1 and "password authentication failed" in out and seen
             and all(x == PW_BAD for x in seen),
             "rating: a wrong password is sent from the file, refused, and start-up gives up (exit 1)")
    efake = dict(ebase, WHISTLE_CURVE="0", WHISTLE_PG=f"host={fake_dir} port=5999 user=escalation",
                 WHISTLE_PG_PASSWORD_FILE=pw_bad, WHISTLE_PG_WAIT_S="1")
    seen.clear()
    code, out = run(efake, [], "escalation start, wrong password", timeout=30, prog=ec.ESCALATION)
    wt.check(code == 1 and "password authentication failed" in out and seen
             and all(x == PW_BAD for x in seen),
             "escalation: a wrong password is sent from the file, refused, and start-up gives up"
             " (exit 1)")
    srv.close()

    # 4. Key files that are not keys, and one that cannot be read.
    for var in ("WHISTLE_CURVE_SECRET_KEY",):
        code, out = run(dict(base, **{var: garbage}), ["--check-config"], f"check {var} garbage")
        wt.check(code == 2 and "Z85" in out, f"--check-config refuses a {var} that is no key")
        code, out = run(dict(base, **{var: garbage}), [], f"start {var} garbage", timeout=20)
        wt.check(code == 2, f"start-up refuses it too (exit 2, got {code})")
    code, out = run(dict(base, WHISTLE_PSEUDONYM_KEY=w.file("missing.key")), [],
                    "start, missing pseudonym key", timeout=20)
    wt.check(code == 2 and "missing.key" in out, "a missing pseudonym key file is named, exit 2")
    if os.geteuid() != 0:
        os.chmod(pseudonym, 0)
        code, out = run(base, [], "start, unreadable pseudonym key", timeout=20)
        wt.check(code == 2 and "Permission denied" in out, "an unreadable key file: exit 2")
        os.chmod(pseudonym, 0o600)
    pwcheck = dict(base, WHISTLE_PG_PASSWORD_FILE=w.file("no-such-password"))
    code, out = run(pwcheck, [], "start, missing password file", timeout=20)
    wt.check(code == 2 and "WHISTLE_PG_PASSWORD_FILE" in out,
             "a missing password file is refused at start (exit 2)")
    # Rating's key files that are not keys (its secret key, its client key,
    # the servers' public keys), a conninfo with a password, no password file.
    for var in ("WHISTLE_CURVE_SECRET_KEY", "WHISTLE_CURVE_CLIENT_KEY",
                "WHISTLE_INTAKE_SERVER_KEY", "WHISTLE_REFERRAL_SERVER_KEY"):
        code, out = run(dict(tbase, **{var: garbage}), ["--check-config"],
                        f"rating check {var} garbage", prog=rt.RATING)
        code2, out2 = run(dict(tbase, **{var: garbage}), [], f"rating start {var} garbage",
                          timeout=20, prog=rt.RATING)
        wt.check(code == 2 and "Z85" in out and code2 == 2,
                 f"rating refuses a {var} that is no key (--check-config {code}, start {code2})")
    bad_t = dict(tbase, WHISTLE_PG=f"user=rating w'rd password={PW_GOOD.split()[0]}")
    bad_t.pop("WHISTLE_PG_PASSWORD_FILE")
    code, out = run(bad_t, [], "rating start, bad conninfo", timeout=20, prog=rt.RATING)
    wt.check(code == 2 and "the string is not shown" in out,
             "rating refuses a connection string that does not parse without showing it (exit 2)")
    code, out = run(dict(tbase, WHISTLE_PG_PASSWORD_FILE=w.file("no-such-password")), [],
                    "rating start, missing password file", timeout=20, prog=rt.RATING)
    wt.check(code == 2 and "WHISTLE_PG_PASSWORD_FILE" in out,
             "rating: a missing password file is refused at start (exit 2)")
    # Escalation's: its secret key, its client key, referral's and rating's
    # public keys; a conninfo with a password, no password file.
    for var in ("WHISTLE_CURVE_SECRET_KEY", "WHISTLE_CURVE_CLIENT_KEY",
                "WHISTLE_REFERRAL_SERVER_KEY", "WHISTLE_RATING_SERVER_KEY"):
        code, out = run(dict(ebase, **{var: garbage}), ["--check-config"],
                        f"escalation check {var} garbage", prog=ec.ESCALATION)
        code2, out2 = run(dict(ebase, **{var: garbage}), [], f"escalation start {var} garbage",
                          timeout=20, prog=ec.ESCALATION)
        wt.check(code == 2 and "Z85" in out and code2 == 2,
                 f"escalation refuses a {var} that is no key (--check-config {code}, start {code2})")
    bad_e = dict(ebase, WHISTLE_PG=f"user=escalation w'rd password={PW_GOOD.split()[0]}")
    bad_e.pop("WHISTLE_PG_PASSWORD_FILE")
    code, out = run(bad_e, [], "escalation start, bad conninfo", timeout=20, prog=ec.ESCALATION)
    wt.check(code == 2 and "the string is not shown" in out,
             "escalation refuses a connection string that does not parse without showing it (exit 2)")
    code, out = run(dict(ebase, WHISTLE_PG_PASSWORD_FILE=w.file("no-such-password")), [],
                    "escalation start, missing password file", timeout=20, prog=ec.ESCALATION)
    wt.check(code == 2 and "WHISTLE_PG_PASSWORD_FILE" in out,
             "escalation: a missing password file is refused at start (exit 2)")

    # 5. Nothing secret anywhere.
    texts = [(f"command: {what}", text) for what, text in outputs]
    for name in sorted(os.listdir(w.path)):
        if name.endswith(".log"):
            with open(w.file(name), errors="replace") as f:
                texts.append((name, f.read()))
    leaks = [(where, s) for where, text in texts for s in secret_texts if s in text]
    leaks += [(where, "a password fragment") for where, text in texts
              if "Pw-Good" in text or "Pw-Wrong" in text or "w'rd" in text]
    wt.check(not any(m in text for _, text in texts for m in ic.SANITIZER_MARKS),
             "no sanitizer report in any log or output")
    wt.check(len(texts) >= 10 and not leaks,
             f"no password or key content in {len(texts)} logs and outputs"
             + (f" (found: {leaks})" if leaks else ""))
finally:
    w.cleanup()
wt.done()
