#!/usr/bin/env bash
# The private PostgreSQL harness: a throw-away cluster under build/pg on a Unix
# socket only (no TCP), one database and one role per service owning only its
# schema. Used by tests, `make run` and `make bench`; never touches a system
# cluster. As root, the server runs as the `postgres` user.
set -euo pipefail

usage() {
  cat <<'U'
usage: tools/pgdev.sh COMMAND [ARG...]

  start            start (or reuse) the private cluster; initialises it on first use
  stop             fast shutdown
  kill             SIGKILL the postmaster (fault tests), leaves the data as a crash would
  restart          stop then start (fast)
  status           exit 0 if running
  role NAME...     create login role NAME owning schema NAME (idempotent)
  reset NAME...    drop and recreate schema NAME (tests)
  env              print shell exports (PGHOST, PGPORT, PGDATABASE) for this cluster
  psql [ARGS]      psql as the cluster superuser on the whistle database
  destroy          stop and delete the cluster

environment:
  WHISTLE_PGDEV_DIR   cluster directory (default: <repo>/build/pg)
  WHISTLE_PGDEV_PORT  port number that names the socket (default: 54329)
U
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${WHISTLE_PGDEV_DIR:-$ROOT/build/pg}
PORT=${WHISTLE_PGDEV_PORT:-54329}
BIN=${WHISTLE_PG_BINDIR:-/usr/lib/postgresql/15/bin}
DB=whistle
SERVICES=(intake referral rating escalation)

die() { echo "pgdev: $*" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# As root the server runs as `postgres`, which must be able to reach the
# directory; when the checkout is somewhere it cannot (e.g. under /root), or the
# socket path would be too long, the cluster lives under /tmp and build/pg
# points to it.
place_dir() {
  mkdir -p "$(dirname "$DIR")"
  if [ -L "$DIR" ] || [ -d "$DIR/data" ]; then return; fi
  local need_tmp=0
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$(dirname "$DIR")" 2>/dev/null; then need_tmp=1; fi
  [ ${#DIR} -gt 80 ] && need_tmp=1
  if [ $need_tmp -eq 1 ]; then
    local alt
    alt=/tmp/whistle-pg-$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)
    mkdir -p "$alt"
    ln -sfn "$alt" "$DIR"
  else
    mkdir -p "$DIR"
  fi
}

sock() { echo "$DIR/run"; }

psql_super() {
  PGOPTIONS='-c client_min_messages=warning' "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(sock)" -p "$PORT" -U postgres "$@"
}

# Running means a live (not zombie) postmaster owns the pid file: a killed
# postmaster may linger as a zombie where nothing reaps orphans.
alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
running() {
  [ -f "$DIR/data/postmaster.pid" ] || return 1
  alive "$(head -n1 "$DIR/data/postmaster.pid")"
}

init_cluster() {
  place_dir
  if [ -d "$DIR/data" ] && [ ! -f "$DIR/data/PG_VERSION" ]; then
    echo "pgdev: removing a half-initialised cluster" >&2
    rm -rf "$DIR/data"
  fi
  mkdir -p "$DIR/run"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$DIR/" "$DIR/run"; fi
  if [ ! -d "$DIR/data" ]; then
    echo "pgdev: initialising a private cluster in $DIR/data" >&2
    as_pg "$BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    cat >>"$DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$DIR/run'
unix_socket_permissions = 0777
port = $PORT
max_connections = 200
shared_buffers = 256MB
max_wal_size = 2GB
log_min_messages = warning
log_line_prefix = '%m [%p] %u '
timezone = 'Asia/Shanghai'
CONF
  fi
}

start() {
  init_cluster
  if running; then return 0; fi
  # A stale pid file from a killed run: the postmaster is gone, so drop it.
  if [ -f "$DIR/data/postmaster.pid" ]; then
    local pid; pid=$(head -n1 "$DIR/data/postmaster.pid")
    if ! alive "$pid"; then rm -f "$DIR/data/postmaster.pid"; fi
  fi
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null \
    || { tail -n 20 "$DIR/server.log" >&2; die "could not start the private cluster"; }
  if ! psql_super -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
    psql_super -d postgres -c "CREATE DATABASE $DB"
    psql_super -d "$DB" -c "REVOKE ALL ON SCHEMA public FROM PUBLIC"
  fi
  make_roles "${SERVICES[@]}"
}

make_roles() {
  local r
  for r in "$@"; do
    [[ "$r" =~ ^[a-z][a-z0-9_]*$ ]] || die "bad role name: $r"
    psql_super -d "$DB" <<SQL
DO \$\$BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$r') THEN
    CREATE ROLE $r LOGIN;
  END IF;
END\$\$;
CREATE SCHEMA IF NOT EXISTS $r AUTHORIZATION $r;
ALTER ROLE $r SET search_path = $r;
SQL
  done
}

reset_schemas() {
  local r
  for r in "$@"; do
    [[ "$r" =~ ^[a-z][a-z0-9_]*$ ]] || die "bad role name: $r"
    psql_super -d "$DB" -c "DROP SCHEMA IF EXISTS $r CASCADE"
  done
  make_roles "$@"
}

cmd=${1:-}; shift || true
case "$cmd" in
  start) start ;;
  stop) if running; then as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null; fi ;;
  kill)
    if [ -f "$DIR/data/postmaster.pid" ]; then kill -9 "$(head -n1 "$DIR/data/postmaster.pid")" 2>/dev/null || true; fi ;;
  restart) if running; then as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null; fi; start ;;
  status) running ;;
  role) running || die "not running (tools/pgdev.sh start)"; make_roles "$@" ;;
  reset) running || die "not running (tools/pgdev.sh start)"; reset_schemas "$@" ;;
  env) echo "export PGHOST='$DIR/run' PGPORT='$PORT' PGDATABASE='$DB'" ;;
  psql) psql_super -d "$DB" "$@" ;;
  destroy)
    if running; then as_pg "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null || true; fi
    if [ -L "$DIR" ]; then rm -rf "$(readlink "$DIR")"; fi
    rm -rf "$DIR" ;;
  -h|--help|help|"") usage ;;
  *) usage >&2; exit 2 ;;
esac
