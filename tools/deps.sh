#!/usr/bin/env bash
# Installs the Debian packages Whistle needs to build, test and run, if any are
# missing. Used by `make`, `make test`, `make run` and `make bench`; safe to run
# again (it only asks apt when something is missing).
set -euo pipefail

PKGS=(
  build-essential pkg-config
  libzmq3-dev libpq-dev libprotobuf-c-dev protobuf-c-compiler libuv1-dev
  check libsubunit-dev libssl-dev libjansson-dev
  postgresql-15 postgresql-client-15
  python3 python3-zmq python3-protobuf protobuf-compiler
  prometheus docker-compose   # promtool (metrics and rules checks), compose file checks
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing missing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "deps: these packages are missing and I am not root and cannot use sudo:" >&2
  echo "deps:   ${missing[*]}" >&2
  echo "deps: install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq >&2
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
# The Debian package may start a system cluster; Whistle never uses it.
echo "deps: done" >&2
