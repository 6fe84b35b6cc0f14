"""/metrics in Prometheus conventions, for every daemon: intake, referral,
rating and escalation run with WHISTLE_HTTP; their /metrics passes `promtool check metrics`
with no error and no lint finding, counters are named _total, every metric has
HELP and TYPE from the table of svc_metrics.c, nothing is in microseconds,
whistle_build_info carries the version, the consumers' lag and the ZAP
counters are there, and the request and apply latencies are histograms. The
example alert rules of deploy/prometheus pass `promtool check rules`, and
`promtool test rules` shows rating's alerts (a stalled close, an input behind,
late input), escalation's (a stalled issuance, unsigned notices growing) and
the lag alert of a daemon with two consumers firing as meant.
Skipped without promtool (Debian package prometheus; `make deps` installs it)."""
import os
import re
import shutil
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import intake_client as ic  # noqa: E402
import escalation_client as ec  # noqa: E402
import rating_client as rt  # noqa: E402
import referral_client as rc  # noqa: E402

PROMTOOL = shutil.which("promtool")
if not PROMTOOL:
    wt.log("skipped: promtool not installed (apt-get install prometheus)")
    wt.done()


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, r.read().decode()


# promtool unit tests of alert rules (RULES: the path of alerts.yml). Rating
# "a": both inputs' watermarks move and the published one does not; "b": all
# move; "c": referral's stands still, so the published one may too.
# Escalation likewise over referral's and rating's; and (hourly) "a" issues
# notices nobody signs, with redeliveries, "b" has each signed.
ALERT_TESTS = """
rule_files: [RULES]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - {series: 'whistle_clock_out_watermark_seconds{service="rating",instance="a"}', values: '1000x120'}
      - {series: 'whistle_clock_intake_watermark_seconds{service="rating",instance="a"}', values: '1000+60x120'}
      - {series: 'whistle_clock_referral_watermark_seconds{service="rating",instance="a"}', values: '1000+60x120'}
      - {series: 'whistle_clock_out_watermark_seconds{service="rating",instance="b"}', values: '1000+60x120'}
      - {series: 'whistle_clock_intake_watermark_seconds{service="rating",instance="b"}', values: '1000+60x120'}
      - {series: 'whistle_clock_referral_watermark_seconds{service="rating",instance="b"}', values: '1000+60x120'}
      - {series: 'whistle_clock_out_watermark_seconds{service="rating",instance="c"}', values: '1000x120'}
      - {series: 'whistle_clock_intake_watermark_seconds{service="rating",instance="c"}', values: '1000+60x120'}
      - {series: 'whistle_clock_referral_watermark_seconds{service="rating",instance="c"}', values: '1000x120'}
      - {series: 'whistle_rating_late_total{service="rating",instance="a"}', values: '0 0 0 3 3 3'}
      - {series: 'whistle_intake_lag{service="rating",instance="a"}', values: '5000x30'}
      - {series: 'whistle_referral_lag{service="rating",instance="a"}', values: '5000x30'}
      - {series: 'whistle_referral_lag_seconds{service="rating",instance="a"}', values: '7200x30'}
      - {series: 'whistle_intake_lag_seconds{service="rating",instance="a"}', values: '60x30'}
    # The ALERTS series (firing ones), not the alerts' texts: those may be reworded.
    promql_expr_test:
      - eval_time: 10m
        expr: 'ALERTS{alertname="WhistleRatingCloseStalled", alertstate="firing"}'
        exp_samples: []
      - eval_time: 30m
        expr: 'ALERTS{alertname="WhistleRatingCloseStalled", alertstate="firing"}'
        exp_samples:
          - labels: 'ALERTS{alertname="WhistleRatingCloseStalled", alertstate="firing", severity="critical", service="rating", instance="a"}'
            value: 1
      - eval_time: 5m
        expr: 'ALERTS{alertname="WhistleRatingLateInput", alertstate="firing"}'
        exp_samples:
          - labels: 'ALERTS{alertname="WhistleRatingLateInput", alertstate="firing", severity="warning", service="rating", instance="a"}'
            value: 1
      - eval_time: 20m
        expr: 'ALERTS{alertname="WhistleRatingInputBehind", alertstate="firing"}'
        exp_samples:
          - labels: 'ALERTS{alertname="WhistleRatingInputBehind", alertstate="firing", severity="warning", service="rating", instance="a", input="referral"}'
            value: 1
      - eval_time: 20m
        expr: 'ALERTS{alertname="WhistleConsumerLag", alertstate="firing"}'
        exp_samples:
          - labels: 'ALERTS{alertname="WhistleConsumerLag", alertstate="firing", severity="warning", service="rating", instance="a", input="intake"}'
            value: 1
          - labels: 'ALERTS{alertname="WhistleConsumerLag", alertstate="firing", severity="warning", service="rating", instance="a", input="referral"}'
            value: 1
  - interval: 1m
    input_series:
      - {series: 'whistle_clock_out_watermark_seconds{service="escalation",instance="a"}', values: '1000x120'}
      - {series: 'whistle_clock_referral_watermark_seconds{service="escalation",instance="a"}', values: '1000+60x120'}
      - {series: 'whistle_clock_rating_watermark_seconds{service="escalation",instance="a"}', values: '1000+60x120'}
      - {series: 'whistle_clock_out_watermark_seconds{service="escalation",instance="b"}', values: '1000+60x120'}
      - {series: 'whistle_clock_referral_watermark_seconds{service="escalation",instance="b"}', values: '1000+60x120'}
      - {series: 'whistle_clock_rating_watermark_seconds{service="escalation",instance="b"}', values: '1000+60x120'}
      - {series: 'whistle_clock_out_watermark_seconds{service="escalation",instance="c"}', values: '1000x120'}
      - {series: 'whistle_clock_referral_watermark_seconds{service="escalation",instance="c"}', values: '1000+60x120'}
      - {series: 'whistle_clock_rating_watermark_seconds{service="escalation",instance="c"}', values: '1000x120'}
      - {series: 'whistle_rating_lag{service="escalation",instance="a"}', values: '5000x30'}
    promql_expr_test:
      - eval_time: 10m
        expr: 'ALERTS{alertname="WhistleEscalationIssuanceStalled", alertstate="firing"}'
        exp_samples: []
      - eval_time: 30m
        expr: 'ALERTS{alertname="WhistleEscalationIssuanceStalled", alertstate="firing"}'
        exp_samples:
          - labels: 'ALERTS{alertname="WhistleEscalationIssuanceStalled", alertstate="firing", severity="critical", service="escalation", instance="a"}'
            value: 1
      - eval_time: 20m
        expr: 'ALERTS{alertname="WhistleConsumerLag", alertstate="firing"}'
        exp_samples:
          - labels: 'ALERTS{alertname="WhistleConsumerLag", alertstate="firing", severity="warning", service="escalation", instance="a", input="rating"}'
            value: 1
  - interval: 1h
    input_series:
      - {series: 'whistle_escalation_notices_total{service="escalation",instance="a"}', values: '0+5x72'}
      - {series: 'whistle_escalation_signed_total{service="escalation",instance="a"}', values: '0x72'}
      - {series: 'whistle_escalation_redelivered_total{service="escalation",instance="a"}', values: '0x20 0+5x52'}
      - {series: 'whistle_escalation_notices_total{service="escalation",instance="b"}', values: '0+5x72'}
      - {series: 'whistle_escalation_signed_total{service="escalation",instance="b"}', values: '0+5x72'}
      - {series: 'whistle_escalation_redelivered_total{service="escalation",instance="b"}', values: '0x20 0+1x52'}
    promql_expr_test:
      - eval_time: 20h
        expr: 'ALERTS{alertname="WhistleEscalationUnsignedGrowing", alertstate="firing"}'
        exp_samples: []
      - eval_time: 30h
        expr: 'ALERTS{alertname="WhistleEscalationUnsignedGrowing", alertstate="firing"}'
        exp_samples:
          - labels: 'ALERTS{alertname="WhistleEscalationUnsignedGrowing", alertstate="firing", severity="warning", service="escalation", instance="a"}'
            value: 1
"""

w = wt.Workdir("metrics")
daemons = []
try:
    r = subprocess.run([PROMTOOL, "check", "rules",
                        os.path.join(wt.ROOT, "deploy", "prometheus", "alerts.yml")],
                       capture_output=True, text=True)
    wt.check(r.returncode == 0, "promtool check rules deploy/prometheus/alerts.yml")
    with open(w.file("alerts_test.yml"), "w") as f:
        f.write(ALERT_TESTS.replace("RULES", os.path.join(wt.ROOT, "deploy", "prometheus", "alerts.yml")))
    r = subprocess.run([PROMTOOL, "test", "rules", w.file("alerts_test.yml")],
                       capture_output=True, text=True)
    wt.check(r.returncode == 0, "promtool test rules: rating's and escalation's alerts and two"
             " consumers' lag"
             + ("" if r.returncode == 0 else f": {r.stdout.strip()} {r.stderr.strip()}"))
    ip, rp, tp, ep = wt.free_ports(4)
    ienv = ic.intake_env(w, WHISTLE_HTTP=f"127.0.0.1:{ip}")
    i, ok = ic.start_intake(w, ienv)
    daemons.append(i)
    wt.check(ok, "intake ready")
    renv = rc.referral_env(w, ienv, WHISTLE_HTTP=f"127.0.0.1:{rp}")
    r_, ok = rc.start_referral(w, renv)
    daemons.append(r_)
    wt.check(ok, "referral ready")
    tenv = rt.rating_env(w, ienv, renv, WHISTLE_HTTP=f"127.0.0.1:{tp}")
    t_, ok = rt.start_rating(w, tenv)
    daemons.append(t_)
    wt.check(ok, "rating ready")
    eenv = ec.escalation_env(w, renv, tenv, WHISTLE_HTTP=f"127.0.0.1:{ep}")
    e_, ok = ec.start_escalation(w, eenv)
    daemons.append(e_)
    wt.check(ok, "escalation ready")
    version = subprocess.run([ic.INTAKE, "--version"], capture_output=True,
                             text=True).stdout.split()[-1]
    for name, port in (("intake", ip), ("referral", rp), ("rating", tp), ("escalation", ep)):
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
        unknown = re.findall(r"^# HELP (\S+) Status value ", text, re.M)
        wt.check(not unknown, f"{name}: every status value has its kind and help in svc_metrics.c"
                 + (f" (not: {unknown})" if unknown else ""))
        wt.check(all(n.endswith("_total") for n, t in types.items() if t == "counter") and
                 any(t == "counter" for t in types.values()),
                 f"{name}: counters are named _total")
        in_s = {"rating": {"whistle_clock_intake_watermark_seconds",
                           "whistle_clock_referral_watermark_seconds",
                           "whistle_clock_out_watermark_seconds"},
                "escalation": {"whistle_clock_referral_watermark_seconds",
                               "whistle_clock_rating_watermark_seconds",
                               "whistle_clock_out_watermark_seconds"}}.get(
                                   name, {"whistle_clock_ahead_seconds"})
        wt.check(not any(n.endswith("_us") for n in samples) and in_s <= samples,
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
    code, t_text = get(tp, "/metrics")
    t_types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", t_text, re.M))
    wt.check(all(f"whistle_{i}_{m}{{" in t_text for i in ("intake", "referral")
                 for m in ("lag", "lag_seconds", "poison_seq", "position"))
             and t_types.get("whistle_intake_apply_seconds") == "histogram"
             and t_types.get("whistle_referral_apply_seconds") == "histogram",
             "rating: its consumers of intake's and referral's streams show their lag in events and"
             " in event-time seconds, poison_seq, position and apply latency")
    counters = ("tickets", "steps", "violations", "decisions", "closes", "inspections", "queries", "late")
    wt.check(all(t_types.get(f"whistle_rating_{c}_total") == "counter" for c in counters)
             and t_types.get("whistle_rating_closed_month") == "gauge",
             "rating: rating.* are counters named _total, closed_month a gauge")
    code, e_text = get(ep, "/metrics")
    e_types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", e_text, re.M))
    wt.check(all(f"whistle_{i}_{m}{{" in e_text for i in ("referral", "rating")
                 for m in ("lag", "lag_seconds", "poison_seq", "position"))
             and e_types.get("whistle_referral_apply_seconds") == "histogram"
             and e_types.get("whistle_rating_apply_seconds") == "histogram",
             "escalation: its consumers of referral's and rating's streams show their lag in events"
             " and in event-time seconds, poison_seq, position and apply latency")
    counters = ("triggers", "notices", "redelivered", "signed", "queries", "skipped")
    wt.check(all(e_types.get(f"whistle_escalation_{c}_total") == "counter" for c in counters),
             "escalation: escalation.* are counters named _total")
    # Every metric the shipped dashboard and alert rules ask for exists.
    ic_text = get(ip, "/metrics")[1]
    have = set(re.findall(r"^(whistle_\w+)", text + ic_text + t_text + e_text, re.M))
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
