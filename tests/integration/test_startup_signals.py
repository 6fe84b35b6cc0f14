"""Signals during the start-up wait for Postgres: with WHISTLE_PG pointing at
a socket directory where no server listens, intake and referral wait
(WHISTLE_PG_WAIT_S); SIGTERM or SIGINT then ends the wait at once with exit
status 0 and a log line saying so, never a silent 143."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402

w = wt.Workdir("startsig")
os.makedirs(w.file("nopg"))
try:
    ienv = ic.intake_env(w, WHISTLE_PG=f"host={w.file('nopg')} user=intake",
                         WHISTLE_PG_WAIT_S="600")
    renv = rc.referral_env(w, ienv, WHISTLE_PG=f"host={w.file('nopg')} user=referral",
                           WHISTLE_PG_WAIT_S="600")
    for name, prog, env, sig in (("intake", ic.INTAKE, ienv, signal.SIGTERM),
                                 ("referral", rc.REFERRAL, renv, signal.SIGINT)):
        log = w.file(f"{name}.log")
        d = wt.Daemon(prog, env, log).start()
        wt.check(wt.wait_for(lambda: "waiting for postgres" in d.log_text(), 20,
                             f"{name} waiting"), f"{name} waits for Postgres")
        t0 = time.time()
        d.p.send_signal(sig)
        try:
            code = d.p.wait(10)
        except Exception:
            code = None
        text = d.log_text()
        wt.check(code == 0, f"{name}: {signal.Signals(sig).name} during the wait exits 0 "
                 f"(got {code}, in {time.time() - t0:.1f} s)")
        wt.check("stop signal while waiting for postgres" in text,
                 f"{name}: the log says it stopped while waiting for Postgres")
finally:
    w.cleanup()
wt.done()
