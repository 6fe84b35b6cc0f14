"""deploy/initdb/001_roles.sql, as the postgres container's first start runs it
(psql -v ON_ERROR_STOP=1 as the superuser), on a throwaway cluster: with the
password files deploy-init.sh makes it creates database whistle and the four
roles with those passwords (scram), each owning its schema with its search
path, PUBLIC's rights revoked; with one password file empty it stops with an
error and creates no role. The files are read from a directory standing in for
/run/secrets (the only change to the script). Its own port and directory keep
it apart from the shared test cluster."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wt  # noqa: E402

BIN = os.environ.get("WHISTLE_PG_BINDIR", "/usr/lib/postgresql/15/bin")
PORT = "54337"
ROOT_RUN = os.geteuid() == 0
ROLES = ("intake", "referral", "rating", "escalation")


def as_pg(argv, **kw):
    if ROOT_RUN:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, cwd="/", capture_output=True, text=True, **kw)


def psql(sock, *args, db="postgres", user="postgres"):
    return as_pg(["psql", "-X", "-q", "-A", "-t", "-h", sock, "-p", PORT, "-U", user, "-d", db,
                  *args])


def run_script(sock, secrets):
    text = open(os.path.join(wt.ROOT, "deploy", "initdb", "001_roles.sql")).read()
    path = os.path.join(os.path.dirname(secrets), "roles.sql")
    with open(path, "w") as f:
        f.write(text.replace("/run/secrets/", secrets + "/"))
    os.chmod(path, 0o644)
    return psql(sock, "-v", "ON_ERROR_STOP=1", "-f", path)


top = tempfile.mkdtemp(prefix="whistle-initdb-")
os.chmod(top, 0o755)
data, sock, secrets = (os.path.join(top, n) for n in ("data", "run", "secrets"))
os.makedirs(sock)
os.makedirs(secrets)
if ROOT_RUN:
    shutil.chown(top, "postgres")
    shutil.chown(sock, "postgres")
    shutil.chown(secrets, "postgres")
pw = {r: f"pw-{r}-{os.urandom(6).hex()}" for r in ROLES}
started = False
try:
    r = as_pg([f"{BIN}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
               "--locale=C.UTF-8"])
    wt.check(r.returncode == 0, "a throwaway cluster is initialised")
    r = as_pg([f"{BIN}/pg_ctl", "-D", data, "-w", "-l", os.path.join(top, "pg.log"), "-o",
               f"-k {sock} -p {PORT} -c listen_addresses=''", "start"])
    started = r.returncode == 0
    wt.check(started, "it starts")

    # One password file empty: the script stops before creating any role.
    for role in ROLES:
        with open(os.path.join(secrets, f"{role}_db_password"), "w") as f:
            f.write("" if role == "rating" else pw[role])
        if ROOT_RUN:
            shutil.chown(os.path.join(secrets, f"{role}_db_password"), "postgres")
        os.chmod(os.path.join(secrets, f"{role}_db_password"), 0o400)
    r = run_script(sock, secrets)
    roles = psql(sock, "-c", "SELECT count(*) FROM pg_roles WHERE rolname IN "
                 "('intake','referral','rating','escalation')").stdout.strip()
    wt.check(r.returncode != 0 and "password secret is missing or empty" in r.stderr
             and roles == "0", "an empty password file stops the script; no role is created")

    os.chmod(os.path.join(secrets, "rating_db_password"), 0o600)
    with open(os.path.join(secrets, "rating_db_password"), "w") as f:
        f.write(pw["rating"])
    os.chmod(os.path.join(secrets, "rating_db_password"), 0o400)
    r = run_script(sock, secrets)
    wt.check(r.returncode == 0, "with every password file the script runs"
             + ("" if r.returncode == 0 else f": {r.stderr.strip()}"))
    for role in ROLES:
        q = psql(sock, "-c", f"SELECT rolcanlogin, rolpassword LIKE 'SCRAM-SHA-256$%' "
                 f"FROM pg_authid WHERE rolname = '{role}'").stdout.strip()
        wt.check(q == "t|t", f"role {role} logs in with a hashed password")
        q = psql(sock, "-c", "SELECT nspowner::regrole, "
                 f"(SELECT setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
                 f"WHERE r.rolname = '{role}') FROM pg_namespace WHERE nspname = '{role}'",
                 db="whistle").stdout.strip()
        wt.check(q == f"{role}|{{search_path={role}}}", f"schema {role} is its own, search path set")
    q = psql(sock, "-c", "SELECT has_database_privilege('public', 'whistle', 'CONNECT')").stdout
    wt.check(q.strip() == "f", "PUBLIC cannot connect to whistle")
    # The hash matches the file: a scram check through a password login.
    hba = os.path.join(data, "pg_hba.conf")
    with open(hba, "w") as f:
        f.write("local all postgres trust\nlocal all all scram-sha-256\n")
    as_pg([f"{BIN}/pg_ctl", "-D", data, "reload"])
    env = dict(os.environ, PGPASSWORD=pw["intake"])
    r = subprocess.run(["psql", "-X", "-A", "-t", "-h", sock, "-p", PORT, "-U", "intake", "-d",
                        "whistle", "-c", "SELECT current_user"], env=env, capture_output=True,
                       text=True, cwd="/")
    wt.check(r.stdout.strip() == "intake", "intake logs in with the password of its file")
    env["PGPASSWORD"] = "wrong"
    r = subprocess.run(["psql", "-X", "-h", sock, "-p", PORT, "-U", "intake", "-d", "whistle",
                        "-c", "SELECT 1"], env=env, capture_output=True, text=True, cwd="/")
    wt.check(r.returncode != 0, "and not with another one")
    log = open(os.path.join(top, "pg.log"), errors="replace").read()
    wt.check(not any(p in log for p in pw.values()), "no password in the server's log")
finally:
    if started:
        as_pg([f"{BIN}/pg_ctl", "-D", data, "-m", "immediate", "stop"])
    shutil.rmtree(top, ignore_errors=True)
wt.done()
