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
# LINK is where the cluster is named (build/pg, possibly a symlink); DIR is the
# directory it resolves to, the only path handed to Postgres and its tools.
LINK=${WHISTLE_PGDEV_DIR:-$ROOT/build/pg}
DIR=$LINK
PORT=${WHISTLE_PGDEV_PORT:-54329}
BIN=${WHISTLE_PG_BINDIR:-/usr/lib/postgresql/15/bin}
DB=whistle
SERVICES=(intake referral rating escalation)

die() { echo "pgdev: $*" >&2; exit 1; }

# Runs a command as the server's user: as root, `postgres`, from / since the
# caller's working directory may be one that user cannot enter.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# Sets DIR to the directory LINK resolves to, when it exists.
resolve_dir() {
  if [ -e "$LINK" ]; then DIR=$(readlink -f "$LINK"); else DIR=$LINK; fi
}

# 0 if a path is ours or the server's (not planted by another user).
owned() {
  local u; u=$(stat -c %u "$1") || return 1
  [ "$u" = "$(id -u)" ] || [ "$u" = "$(id -u postgres 2>/dev/null)" ]
}

# As root the server runs as `postgres`, which must be able to reach the
# directory; when the checkout is somewhere it cannot (e.g. under /root or a
# 0700 directory), or the socket path would be too long, the cluster lives in a
# directory under /tmp named after the checkout's path and build/pg points to
# it. Either way DIR ends up the resolved directory.
place_dir() {
  if [ -L "$LINK" ] && [ ! -d "$LINK" ]; then rm -f "$LINK"; fi # its /tmp target is gone
  mkdir -p "$(dirname "$LINK")"
  if [ ! -L "$LINK" ] && [ ! -d "$LINK/data" ]; then
    local real need_tmp=0
    real=$(readlink -f "$(dirname "$LINK")")/$(basename "$LINK")
    if [ "$(id -u)" -eq 0 ] && ! (cd / && runuser -u postgres -- test -x "$(dirname "$real")") 2>/dev/null; then
      need_tmp=1
    fi
    [ ${#real} -gt 80 ] && need_tmp=1
    if [ $need_tmp -eq 1 ]; then
      local alt
      alt=/tmp/whistle-pg-$(printf '%s' "$LINK" | cksum | cut -d' ' -f1)
      if [ -L "$alt" ] || { [ -e "$alt" ] && ! owned "$alt"; }; then
        alt=$(mktemp -d /tmp/whistle-pg-XXXXXXXX)
      fi
      mkdir -p "$alt"
      chmod 755 "$alt"
      ln -sfn "$alt" "$LINK"
    else
      mkdir -p "$LINK"
    fi
  fi
  resolve_dir
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
resolve_dir
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
    if [ -L "$LINK" ]; then rm -rf "$DIR"; fi
    rm -rf "$LINK" ;;
  -h|--help|help|"") usage ;;
  *) usage >&2; exit 2 ;;
esac
