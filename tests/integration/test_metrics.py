"""/metrics in Prometheus conventions, for every daemon: intake and referral
run with WHISTLE_HTTP; their /metrics passes `promtool check metrics` with no
error and no lint finding, counters are named _total, every metric has HELP
and TYPE, nothing is in microseconds, whistle_build_info carries the version,
the consumer's lag and the ZAP counters are there, and the request and
apply latencies are histograms. The example alert rules of
deploy/prometheus pass `promtool check rules`. Skipped without promtool
(Debian package prometheus; `make deps` installs it)."""
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import referral_client as rc  # noqa: E402

PROMTOOL = shutil.which("promtool")
if not PROMTOOL:
    wt.log("skipped: promtool not installed (apt-get install prometheus)")
    wt.done()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, r.read().decode()


w = wt.Workdir("metrics")
daemons = []
try:
    r = subprocess.run([PROMTOOL, "check", "rules",
                        os.path.join(wt.ROOT, "deploy", "prometheus", "alerts.yml")],
                       capture_output=True, text=True)
    wt.check(r.returncode == 0, "promtool check rules deploy/prometheus/alerts.yml")
    ip, rp = free_port(), free_port()
    ienv = ic.intake_env(w, WHISTLE_HTTP=f"127.0.0.1:{ip}")
    i, ok = ic.start_intake(w, ienv)
    daemons.append(i)
    wt.check(ok, "intake ready")
    renv = rc.referral_env(w, ienv, WHISTLE_HTTP=f"127.0.0.1:{rp}")
    r_, ok = rc.start_referral(w, renv)
    daemons.append(r_)
    wt.check(ok, "referral ready")
    version = subprocess.run([ic.INTAKE, "--version"], capture_output=True,
                             text=True).stdout.split()[-1]
    for name, port in (("intake", ip), ("referral", rp)):
        code, text = get(port, "/metrics")
        wt.check(code == 200, f"{name}: GET /metrics answers 200")
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True)
        wt.check(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
                 f"{name}: promtool check metrics finds nothing"
                 + (f": {p.stdout.strip()} {p.stderr.strip()}" if p.returncode or p.stdout.strip()
                    or p.stderr.strip() else ""))
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        helps = set(re.findall(r"^# HELP (\S+) ", text, re.M))
        hists = {n for n, t in types.items() if t == "histogram"}
        samples = set(re.findall(r"^(whistle_\w+)\{", text, re.M))
        samples = {re.sub(r"_(bucket|sum|count)$", "", n)
                   if re.sub(r"_(bucket|sum|count)$", "", n) in hists else n for n in samples}
        wt.check(samples and samples <= set(types) and samples <= helps,
                 f"{name}: every metric ({len(samples)}) has HELP and TYPE")
        wt.check(all(n.endswith("_total") for n, t in types.items() if t == "counter") and
                 any(t == "counter" for t in types.values()),
                 f"{name}: counters are named _total")
        wt.check(not any(n.endswith("_us") for n in samples) and
                 "whistle_clock_ahead_seconds" in samples,
                 f"{name}: microsecond values are shown in seconds")
        wt.check(f'whistle_build_info{{service="{name}",version="{version}"}} 1' in text,
                 f"{name}: whistle_build_info carries the version {version}")
        wt.check({"whistle_zap_allowed_total", "whistle_zap_denied_total",
                  "whistle_reload_failures_total", "whistle_server_requests_total"} <= samples,
                 f"{name}: ZAP, reload failure and request counters are there")
        wt.check("whistle_server_ack_seconds" in hists and
                 re.search(r'^whistle_server_ack_seconds_bucket\{service="\w+",le="\+Inf"\} \d+$',
                           text, re.M), f"{name}: request-to-reply latency is a histogram")
        wt.check(types.get("whistle_pg_up") == "gauge" and
                 types.get("whistle_stream_head") == "gauge",
                 f"{name}: levels stay gauges")
    code, text = get(rp, "/metrics")
    wt.check("whistle_intake_lag{" in text and "whistle_intake_lag_seconds{" in text
             and "whistle_intake_poison_seq{" in text,
             "referral: its consumer of intake's stream shows its lag in events and in"
             " event-time seconds, and poison_seq")
    # Every metric the shipped dashboard and alert rules ask for exists.
    ic_text = get(ip, "/metrics")[1]
    have = set(re.findall(r"^(whistle_\w+)", text + ic_text, re.M))
    for path in ("deploy/grafana/whistle.json", "deploy/prometheus/alerts.yml"):
        with open(os.path.join(wt.ROOT, path)) as f:
            wanted = set(re.findall(r"whistle_\w+", f.read())) - {"whistle_build_info"}
        missing = sorted(n for n in wanted if n not in have)
        wt.check(wanted and not missing, f"{path}: every metric it uses exists ({len(wanted)};"
                 f" missing: {missing})")
    wt.check("# TYPE whistle_intake_apply_seconds histogram" in text,
             "referral: the apply latency of intake's events is a histogram")
    sock = wt.zmq.Context.instance().socket(wt.zmq.DEALER)
    sock.linger = 0
    sock.connect(renv["WHISTLE_CONTROL"])
    m = wt.control_pb2.ControlMessage(version=1)
    m.status_request.SetInParent()
    sock.send(m.SerializeToString())
    rep = wt.control_pb2.ControlMessage()
    if sock.poll(5000):
        rep.ParseFromString(sock.recv())
    sock.close()
    wt.check(rep.status_reply.build_version == version,
             f"the control status reply carries the version ({rep.status_reply.build_version})")
    st = wt.status(renv["WHISTLE_CONTROL"])
    wt.check(st is not None and "intake.lag" in st, "the control status has the lag too")
finally:
    for d in daemons:
        d.stop()
    w.cleanup()
wt.done()
