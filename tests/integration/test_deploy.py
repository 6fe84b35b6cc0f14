"""The README's Compose deployment, followed as written, without a Docker
engine: the shell block of "Deployment with Docker Compose" runs line by line
in a copy of the deployment directory (make, sudo and docker are stand-ins
that record their call; docker-compose is the real one for `config`). Then:
the compose file names every business daemon, pinned images, health checks
with a start_period, log limits, and no password in any environment
variable; each daemon mounts only its own secrets; every file compose mounts
exists and the container's user (uid 10001 for the daemons, 999 for postgres)
can read it, and nobody else can read a secret; every variable compose sets
is one the daemon lists in --help; escalation publishes its request interface
and notice stream. Finally intake, referral, rating and escalation start
outside containers from the same files, as uid 10001 when the test runs as
root, and answer /healthz; rating reads both its streams (intake and referral
count it as a subscriber), escalation reads referral's and rating's; the ops
client's key from deploy/clients is answered on rating's and escalation's
request interfaces and the hotline's is not; a company of the registry, with
the key deploy-init made for it, subscribes to the notice stream under its
own code and has its signature answered, and is refused under another
company's code and for a query (queries are for the ops tools); each drains on SIGTERM with exit 0 and logs no secret. A second run of the init script
replaces nothing, and whistle-keygen refuses to overwrite a key pair. The Dockerfile
(no linter in Debian) is checked for pinned bases and the uid the files are for."""
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402
import escalation_client as ec  # noqa: E402
import rating_client as rt  # noqa: E402
import referral_client as rc  # noqa: E402

COMPOSE = shutil.which("docker-compose")
if not COMPOSE:
    wt.log("skipped: docker-compose not installed (apt-get install docker-compose)")
    wt.done()
import yaml  # noqa: E402  (python3-yaml comes with docker-compose)

if os.geteuid() != 0:
    wt.log("skipped: the README's first start runs deploy-init.sh with sudo (owner 10001); "
           "only root can follow it here")
    wt.done()

APP = (10001, 10001)
PG = (999, 999)
ROOT_RUN = os.geteuid() == 0


def readable_by(path, uid, gid):
    st = os.stat(path)
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IRUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def readme_block():
    text = open(os.path.join(wt.ROOT, "README.md")).read()
    at = text.index("**Deployment with Docker Compose.**")
    m = re.search(r"```sh\n(.*?)```", text[at:], re.S)
    return [ln.split("  #")[0].strip() for ln in m.group(1).splitlines() if ln.strip()]


w = wt.Workdir("deploy")
os.chmod(w.path, 0o755)  # uid 10001 walks to the deployment files, as in a checkout
ck = w.file("checkout")
stubs = w.file("stubs")
calls = w.file("calls")
daemons = []
try:
    # A checkout with the deployment files, the script and the built binaries.
    os.makedirs(os.path.join(ck, "tools"))
    os.makedirs(os.path.join(ck, "build"))
    shutil.copytree(os.path.join(wt.ROOT, "deploy"), os.path.join(ck, "deploy"),
                    ignore=shutil.ignore_patterns(".env", "secrets", "clients", "public",
                                                  "allowed", "keys"))
    shutil.copytree(os.path.join(wt.ROOT, "docker"), os.path.join(ck, "docker"))
    shutil.copy(os.path.join(wt.ROOT, "tools", "deploy-init.sh"), os.path.join(ck, "tools"))
    os.symlink(os.path.join(wt.BUILD, "bin"), os.path.join(ck, "build", "bin"))
    os.makedirs(stubs)
    for name, body in (("make", 'echo "make $*" >> "$CALLS"'),
                       ("sudo", '"$@"'),
                       ("docker", 'echo "docker $*" >> "$CALLS"'),
                       ("docker-compose", 'echo "docker-compose $*" >> "$CALLS"\n'
                        f'case " $* " in *" config "*) exec {COMPOSE} "$@";; esac')):
        with open(os.path.join(stubs, name), "w") as f:
            f.write(f"#!/bin/bash\nset -e\n{body}\n")
        os.chmod(os.path.join(stubs, name), 0o755)
    env = dict(os.environ, PATH=f"{stubs}:{os.environ['PATH']}", CALLS=calls)

    lines = readme_block()
    wt.check(len(lines) >= 4 and any("deploy-init.sh" in ln for ln in lines),
             f"the README's deployment block has {len(lines)} steps")
    for ln in lines:
        r = subprocess.run(["bash", "-ec", ln], cwd=ck, env=env, capture_output=True, text=True)
        wt.check(r.returncode == 0, f"README step runs: {ln}"
                 + (f" ({r.stdout.strip()} {r.stderr.strip()})" if r.returncode else ""))
    recorded = open(calls).read()
    wt.check("docker build" in recorded and "up -d" in recorded,
             "the image build and `up -d` were reached")

    # The Dockerfile (no linter in Debian): pinned bases, the user the files are for.
    dockerfile = open(os.path.join(wt.ROOT, "docker", "Dockerfile")).read()
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    wt.check(bases and all(re.search(r":\d", b) for b in bases),
             f"the Dockerfile's base images are pinned: {bases}")
    wt.check(re.search(r"--uid 10001\b", dockerfile) and re.search(r"--gid 10001\b", dockerfile)
             and re.search(r"^USER whistle", dockerfile, re.M),
             "the image runs as uid/gid 10001, the owner deploy-init.sh gives the secrets")
    init = open(os.path.join(wt.ROOT, "tools", "deploy-init.sh")).read()
    wt.check("APP_UID=10001 APP_GID=10001" in init, "deploy-init.sh uses the image's uid and gid")

    dep = os.path.join(ck, "deploy")
    cfg_text = subprocess.run([COMPOSE, "-f", os.path.join(dep, "docker-compose.yml"),
                               "--env-file", os.path.join(dep, ".env"), "config"],
                              capture_output=True, text=True, check=True).stdout
    cfg = yaml.safe_load(cfg_text)
    svcs = cfg["services"]
    wt.check({"postgres", "intake", "referral", "rating", "escalation"} <= set(svcs),
             "compose runs postgres and every business daemon (intake, referral, rating,"
             " escalation)")
    for name, s in svcs.items():
        image = s["image"]
        wt.check(":" in image and not image.endswith(":latest"), f"{name}: pinned image {image}")
        wt.check(s.get("healthcheck", {}).get("start_period"), f"{name}: health check with a start_period")
        wt.check(s.get("logging", {}).get("options", {}).get("max-size"), f"{name}: log size limit")
        envv = s.get("environment") or {}
        leaks = [k for k, v in envv.items()
                 if ("PASSWORD" in k and not k.endswith("_FILE")) or "password=" in str(v)]
        wt.check(not leaks, f"{name}: no password in an environment variable {leaks or ''}")
    own = {"intake": {"intake_db_password", "intake_curve_key", "pseudonym_key"},
           "referral": {"referral_db_password", "referral_curve_key"},
           "rating": {"rating_db_password", "rating_curve_key"},
           "escalation": {"escalation_db_password", "escalation_curve_key"}}
    for name, want in own.items():
        got = {x["source"] if isinstance(x, dict) else x for x in svcs[name].get("secrets", [])}
        wt.check(got == want, f"{name} mounts only its own secrets: {sorted(got)}")
        vols = [v for v in svcs[name].get("volumes", [])]
        wt.check(not any("secrets" in (v["source"] if isinstance(v, dict) else v.split(":")[0])
                         for v in vols), f"{name}: no secret directory bind-mounted")
        helptext = subprocess.run([os.path.join(wt.BUILD, "bin", f"whistle-{name}"), "--help"],
                                  capture_output=True, text=True).stdout
        listed = set(re.findall(r"^  (WHISTLE_\w+) ", helptext, re.M))
        unknown = sorted(set(svcs[name].get("environment") or {}) - listed)
        wt.check(listed and not unknown, f"{name}: every variable compose sets is in its --help"
                 + (f" (not: {unknown})" if unknown else ""))

    published = {str(p.get("published")) if isinstance(p, dict) else str(p).split(":")[0]
                 for p in svcs["escalation"].get("ports", [])}
    wt.check({"7401", "7402"} <= published, "escalation publishes its request interface (7401)"
             f" and its notice stream (7402) for recipients outside: {sorted(published)}")

    # Every mounted file and directory: present, readable by the container's user.
    sec_files = {k: v["file"] for k, v in cfg["secrets"].items()}
    mounts = {}   # (service, container path) -> host path
    for name, s in svcs.items():
        user = PG if name == "postgres" else APP
        for x in s.get("secrets", []):
            src = x["source"] if isinstance(x, dict) else x
            host = sec_files[src]
            mounts[(name, f"/run/secrets/{src}")] = host
            ok = os.path.isfile(host) and (not ROOT_RUN or readable_by(host, *user))
            wt.check(ok, f"{name}: secret {src} exists and uid {user[0]} can read it")
            st = os.stat(host)
            wt.check(not st.st_mode & stat.S_IROTH and not st.st_mode & stat.S_IWOTH,
                     f"{name}: secret {src} is not readable by others ({oct(st.st_mode & 0o777)})")
        for v in s.get("volumes", []):
            if isinstance(v, dict):
                if v.get("type") != "bind":
                    continue
                src, dst = v["source"], v["target"]
            else:
                src, dst = v.split(":")[:2]
                if not src.startswith("/"):
                    continue
            mounts[(name, dst)] = src
            files = [src] + [os.path.join(src, f) for f in os.listdir(src)]
            ok = all(readable_by(f, *user) for f in files) if ROOT_RUN else os.path.isdir(src)
            wt.check(ok, f"{name}: {dst} ({len(files) - 1} files) readable by uid {user[0]}")
    if ROOT_RUN:
        for key in ("intake-curve.key", "referral-curve.key", "rating-curve.key",
                    "escalation-curve.key", "pseudonym.key"):
            st = os.stat(os.path.join(dep, "secrets", key))
            wt.check((st.st_uid, st.st_gid, st.st_mode & 0o777) == (10001, 10001, 0o400),
                     f"secrets/{key}: owner 10001:10001, mode 0400")

    # The daemons from the same files, outside containers.
    pg = wt.pg_env()
    names = ("7101", "7102", "7103", "7201", "7202", "7203", "7180", "7280", "7301", "7302", "7303",
             "7380", "7401", "7402", "7403", "7480")
    ports = dict(zip(names, wt.free_ports(len(names))))

    def host_env(name):
        e = {}
        for k, v in (svcs[name].get("environment") or {}).items():
            v = str(v)
            for (svc, dst), src in sorted(mounts.items(), key=lambda m: -len(m[0][1])):
                if svc == name and v.startswith(dst):
                    v = src + v[len(dst):]
                    break
            for p, q in ports.items():
                v = v.replace(f":{p}", f":{q}")
            for host in ("intake", "referral", "rating"):
                v = v.replace(f"tcp://{host}:", "tcp://127.0.0.1:")
            v = v.replace("0.0.0.0:", "127.0.0.1:")
            if k == "WHISTLE_PG":
                v = v.replace("host=postgres", f"host={pg['PGHOST']} port={pg['PGPORT']}") \
                     .replace("dbname=whistle", f"dbname={pg['PGDATABASE']}")
            e[k] = v
        return e

    def as_app(argv):
        if ROOT_RUN:
            return ["setpriv", "--reuid", "10001", "--regid", "10001", "--clear-groups", *argv]
        return argv

    DAEMONS = ("intake", "referral", "rating", "escalation")
    envs = {}
    for name in DAEMONS:
        prog = os.path.join(wt.BUILD, "bin", f"whistle-{name}")
        e = envs[name] = host_env(name)
        r = subprocess.run(as_app([prog, "--check-config"]), env=dict(os.environ, **e),
                           capture_output=True, text=True, cwd="/")
        wt.check(r.returncode == 0, f"{name} --check-config with the compose settings and files"
                 + ("" if r.returncode == 0 else f": {r.stderr.strip()}"))
        log = w.file(f"{name}.log")
        with open(log, "w") as f:
            p = subprocess.Popen(as_app([prog]), env=dict(os.environ, **e), stdout=f, stderr=f, cwd="/")
        daemons.append(p)
        http = e["WHISTLE_HTTP"]

        def healthy():
            try:
                with urllib.request.urlopen(f"http://{http}/healthz", timeout=2) as resp:
                    return resp.status == 200
            except Exception:
                return False
        wt.check(wt.wait_for(healthy, 60, f"{name} /healthz"),
                 f"{name} runs {'as uid 10001 ' if ROOT_RUN else ''}from the deployment files "
                 "and /healthz answers 200")

    def metric(name, series):
        try:
            with urllib.request.urlopen(f"http://{envs[name]['WHISTLE_HTTP']}/metrics",
                                        timeout=2) as resp:
                m = re.search(rf"^{series}{{service=\"{name}\"}} (\S+)$", resp.read().decode(), re.M)
                return float(m.group(1)) if m else None
        except Exception:
            return None
    # Rating reads intake's stream (beside referral) and referral's (beside
    # intake's closures), admitted by the keys deploy-init allowed.
    # Escalation reads referral's (beside intake and rating) and rating's.
    wt.check(wt.wait_for(lambda: (metric("intake", "whistle_stream_subscribers") or 0) >= 2
                         and (metric("referral", "whistle_stream_subscribers") or 0) >= 3
                         and (metric("rating", "whistle_stream_subscribers") or 0) >= 1, 30,
                         "subscribers"),
             "intake's stream has two subscribers, rating one of them; referral's three, rating"
             " and escalation among them; rating's one, escalation")
    wt.check(all(metric(n, "whistle_zap_denied_total") == 0 for n in DAEMONS),
             "no daemon refused a handshake among them")

    def ask_rating(client):
        """A query on rating's request interface with deploy/clients/<client>.key."""
        def key(path):
            with open(path, "rb") as f:
                return f.read().strip()
        s = wt.zmq.Context.instance().socket(wt.zmq.DEALER)
        s.linger = 0
        s.curve_serverkey = key(os.path.join(dep, "public", "rating.pub"))
        s.curve_publickey = key(os.path.join(dep, "clients", f"{client}.pub"))
        s.curve_secretkey = key(os.path.join(dep, "clients", f"{client}.key"))
        s.connect(envs["rating"]["WHISTLE_RATING_REQUESTS"])
        s.send(rt.query(7, rt.Q.DECISIONS))
        reply = rt.RM.FromString(s.recv()).reply if s.poll(5000) else None
        s.close()
        return reply
    def curve_for(server, client):
        def key(path):
            with open(path, "rb") as f:
                return f.read().strip()
        return (key(os.path.join(dep, "public", f"{server}.pub")),
                key(os.path.join(dep, "clients", f"{client}.pub")),
                key(os.path.join(dep, "clients", f"{client}.key")))

    def ask_escalation(client, m):
        c = ec.NoticeClient(envs["escalation"]["WHISTLE_ESCALATION_REQUESTS"],
                            curve=curve_for("escalation", client))
        reply = c.ask(m, timeout_s=5)
        c.close()
        return reply
    query = ec.NM()
    query.query.what = ec.Q.NOTICES
    reply = ask_escalation("ops", query)
    wt.check(reply is not None and reply.status == ec.Reply.APPLIED,
             "the ops client's key (deploy/clients/ops.key) is answered on escalation's request"
             " interface")
    # A company of the registry (deploy/registry/companies.csv) with its key.
    company = open(os.path.join(dep, "registry", "companies.csv")).read().splitlines()[1].split(",")[0]
    other = open(os.path.join(dep, "registry", "companies.csv")).read().splitlines()[2].split(",")[0]
    wt.check(os.path.isfile(os.path.join(dep, "allowed", "escalation", f"{company}.pub"))
             and os.path.isfile(os.path.join(dep, "clients", f"{company}.key")),
             f"deploy-init made a key pair for company {company} and allowed it on escalation")
    sign = ec.NM()
    sign.sign.number, sign.sign.at_us = "督办〔2026〕1号", int(time.time() * 1e6)
    reply = ask_escalation(company, sign)
    wt.check(reply is not None and reply.status != ec.Reply.APPLIED and reply.reason,
             f"company {company}'s signature is answered on escalation (a number it was not sent:"
             f" {reply.reason if reply else 'no answer'})")
    reply = ask_escalation(company, query)
    wt.check(reply is not None and reply.status == ec.Reply.REFUSED,
             f"company {company}'s query is refused: queries are for the ops tools"
             f" ({reply.reason if reply else 'no answer'})")
    denied = metric("escalation", "whistle_zap_denied_total")
    sub = rc.Subscriber(envs["escalation"]["WHISTLE_ESCALATION_STREAM"], company,
                        curve=curve_for("escalation", company)).open()
    wt.check(wt.wait_for(lambda: (sub.pump(100), (metric("escalation", "whistle_stream_subscribers")
                                                   or 0) >= 1)[1], 15, "the company's subscription")
             and not sub.errors,
             f"company {company} subscribes to the notice stream under its own code")
    sub.close()
    wrong = rc.Subscriber(envs["escalation"]["WHISTLE_ESCALATION_STREAM"], other,
                          curve=curve_for("escalation", company)).open()
    wt.check(wt.wait_for(lambda: (wrong.pump(100), bool(wrong.errors))[1], 15, "the refusal"),
             f"company {company} is refused under {other}'s code (errors {wrong.errors})")
    wrong.close()
    wt.check(metric("escalation", "whistle_zap_denied_total") == denied,
             "escalation refused no handshake of the ops tool and the company")
    wt.check(ask_escalation("hotline", query) is None
             and metric("escalation", "whistle_zap_denied_total") >= 1,
             "the hotline's key is not allowed on escalation's request interface")
    reply = ask_rating("ops")
    wt.check(reply is not None and reply.request_id == 7 and reply.status == rt.Reply.APPLIED,
             "the ops client's key (deploy/clients/ops.key) is answered on rating's request interface")
    wt.check(ask_rating("hotline") is None and metric("rating", "whistle_zap_denied_total") >= 1,
             "the hotline's key is not allowed on rating's request interface")
    for p, name in zip(daemons[::-1], DAEMONS[::-1]):
        p.send_signal(15)
        wt.check(p.wait(30) == 0, f"{name} stops cleanly (SIGTERM, exit 0)")
    for name in DAEMONS:
        text = open(w.file(f"{name}.log")).read()
        secrets = [open(f).read().strip() for f in sec_files.values() if os.access(f, os.R_OK)]
        wt.check(not any(s and s in text for s in secrets), f"{name}'s log holds no secret")

    # Again: nothing replaced; whistle-keygen refuses to overwrite.
    before = {f: open(os.path.join(dep, "secrets", f), "rb").read()
              for f in os.listdir(os.path.join(dep, "secrets"))}
    r = subprocess.run(["bash", "tools/deploy-init.sh", *([] if ROOT_RUN else ["--no-chown"])],
                       cwd=ck, capture_output=True, text=True)
    after = {f: open(os.path.join(dep, "secrets", f), "rb").read()
             for f in os.listdir(os.path.join(dep, "secrets"))}
    wt.check(r.returncode == 0 and before == after, "a second deploy-init replaces no secret")
    r = subprocess.run([os.path.join(wt.BUILD, "bin", "whistle-keygen"),
                        os.path.join(dep, "clients", "hotline")], capture_output=True, text=True)
    wt.check(r.returncode == 3 and "not replaced" in r.stderr,
             "whistle-keygen refuses to overwrite an existing key pair (exit 3)")
    r = subprocess.run([os.path.join(wt.BUILD, "bin", "whistle-keygen"), "--force",
                        "--owner", "10001:10001", w.file("forced")], capture_output=True, text=True)
    if ROOT_RUN:
        st = os.stat(w.file("forced.key"))
        wt.check(r.returncode == 0 and (st.st_uid, st.st_mode & 0o777) == (10001, 0o600),
                 "whistle-keygen --owner 10001:10001 gives the key to the image's user, mode 0600")
finally:
    for p in daemons:
        if p.poll() is None:
            p.kill()
    w.cleanup()
wt.done()
