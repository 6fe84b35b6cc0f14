"""tools/pgdev.sh from a checkout the `postgres` user cannot reach (as root,
inside a 0700 directory): the cluster lives under /tmp behind build/pg, and
Postgres and its tools get the resolved directory, so it starts, answers,
takes a role, restarts, stops and is destroyed. Its own port and directory
keep it apart from the cluster the other suites use. Skipped unless root."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402

PORT = "54319"  # not the default 54329 of the shared test cluster

if os.geteuid() != 0:
    wt.log("skipped: only root runs Postgres as another user that may not reach the checkout")
    wt.done()

top = tempfile.mkdtemp(prefix="whistle-pgdev-")  # mode 0700, owned by root
checkout = os.path.join(top, "w")
os.makedirs(os.path.join(checkout, "tools"))
shutil.copy(wt.PGDEV, os.path.join(checkout, "tools", "pgdev.sh"))
env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "WHISTLE_PGDEV_"))}
env["WHISTLE_PGDEV_PORT"] = PORT
link = os.path.join(checkout, "build", "pg")


def pgdev(*args, check=True):
    """Runs the copied harness from inside the checkout; returns the result."""
    r = subprocess.run(["bash", "tools/pgdev.sh", *args], cwd=checkout, env=env,
                       capture_output=True, text=True)
    if check and r.returncode != 0:
        wt.log(f"pgdev {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r


def psql(user, query, pgenv):
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-U", user, "-c", query],
                       env=dict(env, **pgenv), capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def postmaster_pid(real):
    try:
        with open(os.path.join(real, "data", "postmaster.pid")) as f:
            return f.readline().strip()
    except OSError:
        return None


try:
    reach = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", checkout], cwd="/")
    wt.check(os.stat(top).st_mode & 0o777 == 0o700 and reach.returncode != 0,
             "the checkout is inside a 0700 directory that postgres cannot enter")
    wt.check(pgdev("start").returncode == 0, "pgdev start initialises and starts the cluster")
    real = os.path.realpath(link)
    wt.check(os.path.islink(link) and real.startswith("/tmp/") and not real.startswith(top),
             f"build/pg points to a directory under /tmp ({real})")
    out = pgdev("env").stdout
    pgenv = dict(re.findall(r"(\w+)='([^']*)'", out))
    host = pgenv.get("PGHOST", "")
    sock = os.path.join(host, f".s.PGSQL.{PORT}")
    wt.check(host == os.path.join(real, "run") and len(sock.encode()) < 107,
             f"env names the resolved socket directory, short enough ({sock})")
    got = pgdev("psql", "-tAc", "SELECT current_setting('data_directory'), "
                "current_setting('unix_socket_directories')").stdout.strip()
    wt.check(got == f"{real}/data|{real}/run",
             f"the server was given the resolved paths, none through the checkout ({got})")
    wt.check(pgdev("role", "pgdev_probe").returncode == 0, "pgdev role creates a role")
    wt.check(psql("pgdev_probe", "CREATE TABLE t (x int); INSERT INTO t VALUES (7); "
                  "SELECT x FROM pgdev_probe.t", pgenv) == "7",
             "the role logs in over the socket and owns its schema")
    pid = postmaster_pid(real)
    wt.check(pgdev("restart").returncode == 0 and pgdev("status", check=False).returncode == 0,
             "pgdev restart brings the cluster back")
    pid2 = postmaster_pid(real)
    wt.check(pid and pid2 and pid2 != pid and psql("pgdev_probe", "SELECT x FROM t", pgenv) == "7",
             "a new postmaster serves the same data")
    wt.check(pgdev("stop").returncode == 0 and pgdev("status", check=False).returncode != 0,
             "pgdev stop stops it")
    wt.check(pgdev("start").returncode == 0 and psql("pgdev_probe", "SELECT x FROM t", pgenv) == "7",
             "and start reuses the cluster")
    wt.check(pgdev("destroy").returncode == 0 and not os.path.lexists(link)
             and not os.path.exists(real), "pgdev destroy removes the cluster and the link")
finally:
    pgdev("destroy", check=False)
    shutil.rmtree(top, ignore_errors=True)
wt.done()
