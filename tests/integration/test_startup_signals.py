"""Signals during the start-up wait for Postgres: with WHISTLE_PG pointing at
a socket directory where no server listens, intake, referral, rating and
escalation wait
(WHISTLE_PG_WAIT_S); SIGTERM or SIGINT then ends the wait at once with exit
status 0 and a log line saying so, never a silent 143. Then, running on the
private Postgres with rating subscribed to intake's and referral's streams and
escalation to referral's and rating's, each daemon drains on SIGTERM
(escalation first, then rating, referral and intake) and exits 0."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import escalation_client as ec  # noqa: E402
import intake_client as ic  # noqa: E402
import rating_client as rt  # noqa: E402
import referral_client as rc  # noqa: E402

w = wt.Workdir("startsig")
os.makedirs(w.file("nopg"))
try:
    ienv = ic.intake_env(w, WHISTLE_PG=f"host={w.file('nopg')} user=intake",
                         WHISTLE_PG_WAIT_S="600")
    renv = rc.referral_env(w, ienv, WHISTLE_PG=f"host={w.file('nopg')} user=referral",
                           WHISTLE_PG_WAIT_S="600")
    tenv = rt.rating_env(w, ienv, renv, WHISTLE_PG=f"host={w.file('nopg')} user=rating",
                         WHISTLE_PG_WAIT_S="600")
    eenv = ec.escalation_env(w, renv, tenv, WHISTLE_PG=f"host={w.file('nopg')} user=escalation",
                             WHISTLE_PG_WAIT_S="600")
    for name, prog, env, sig in (("intake", ic.INTAKE, ienv, signal.SIGTERM),
                                 ("referral", rc.REFERRAL, renv, signal.SIGINT),
                                 ("rating", rt.RATING, tenv, signal.SIGTERM),
                                 ("rating", rt.RATING, tenv, signal.SIGINT),
                                 ("escalation", ec.ESCALATION, eenv, signal.SIGTERM),
                                 ("escalation", ec.ESCALATION, eenv, signal.SIGINT)):
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
        os.unlink(log)

    # Running: rating and escalation read both their streams, then each daemon
    # drains on SIGTERM.
    ienv = ic.intake_env(w)
    renv = rc.referral_env(w, ienv)
    tenv = rt.rating_env(w, ienv, renv)
    i, ok_i = ic.start_intake(w, ienv, log="run-intake.log")
    r, ok_r = rc.start_referral(w, renv, log="run-referral.log")
    t, ok_t = rt.start_rating(w, tenv, log="run-rating.log")
    eenv = ec.escalation_env(w, renv, tenv)
    e, ok_e = ec.start_escalation(w, eenv, log="run-escalation.log")
    wt.check(ok_i and ok_r and ok_t and ok_e, "intake, referral, rating and escalation ready on Postgres")

    def subscribers(env):
        return (wt.status(env["WHISTLE_CONTROL"], 1.0) or {}).get("stream.subscribers", 0)
    wt.check(wt.wait_for(lambda: subscribers(ienv) >= 2 and subscribers(renv) >= 2
                         and subscribers(tenv) >= 1, 30, "subscriptions"),
             "rating is subscribed to intake's stream (with referral) and to referral's;"
             " escalation to referral's (with rating) and to rating's")
    for name, d in (("escalation", e), ("rating", t), ("referral", r), ("intake", i)):
        t0 = time.time()
        code = d.stop()
        text = d.log_text()
        wt.check(code == 0 and "msg=draining" in text and "msg=stopped exit_code=0" in text,
                 f"{name}: SIGTERM drains and exits 0 (got {code}, in {time.time() - t0:.1f} s)")
finally:
    w.cleanup()
wt.done()
