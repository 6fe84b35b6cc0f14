#!/usr/bin/env bash
# First start of the Compose deployment (deploy/docker-compose.yml): lays out
# every file the compose file mounts, with the owner and mode the containers
# need. Daemon secret keys, the pseudonym key and the database passwords go to
# deploy/secrets (Docker secrets, one file each, readable only by the image's
# user 10001 and, for passwords, the postgres container's group 999); public
# keys to deploy/public; client key pairs to deploy/clients (hand each .key to
# its client system); each daemon's allowed client keys to deploy/allowed/<daemon>
# (with the daemons that read its stream: referral and rating read intake's,
# intake, rating and escalation read referral's, escalation reads rating's).
# Escalation's notice recipients get key pairs too: every unit, street,
# district and company of the registry (DIR/registry), each allowed on
# escalation under its code, to sign its notices and read its own.
# Never replaces an existing key or password: run it again to add clients.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: tools/deploy-init.sh [--dir DIR] [--client ID]... [--unit CODE]... [--ops ID]...
                            [--recipient CODE]... [--no-chown]
  --dir DIR     the deployment directory (default: deploy)
  --client ID   a client identity allowed by intake and referral (default: hotline,
                operator, ops; repeatable, added to the defaults)
  --unit CODE   a department or street office allowed by referral, and by escalation
                as a notice recipient (repeatable)
  --ops ID      an ops tool allowed on rating's request interface (inspections and
                queries), on escalation's (queries and every notice, once listed
                in WHISTLE_ESCALATION_OPS in DIR/.env) and on referral's unit
                interface (ticket queries, once listed in WHISTLE_REFERRAL_OPS in
                DIR/.env) (default: ops; repeatable, added to the defaults)
  --recipient CODE
                a notice recipient allowed by escalation beside the registry's
                departments, streets, districts and companies (repeatable)
  --no-chown    leave files owned by the caller (only for running the daemons
                outside containers as that user; containers cannot read them)
Environment: WHISTLE_KEYGEN (default build/bin/whistle-keygen).
Run as root (sudo): the files must belong to the image's user, uid 10001.
EOF
}

DIR=deploy
CLIENTS=(hotline operator ops)
UNITS=()
OPS=(ops)
RECIPIENTS=()
CHOWN=1
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --client) CLIENTS+=("$2"); shift 2 ;;
    --unit) UNITS+=("$2"); shift 2 ;;
    --ops) OPS+=("$2"); shift 2 ;;
    --recipient) RECIPIENTS+=("$2"); shift 2 ;;
    --no-chown) CHOWN=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
KEYGEN=${WHISTLE_KEYGEN:-build/bin/whistle-keygen}
APP_UID=10001 APP_GID=10001 PG_UID=999 PG_GID=999   # docker/Dockerfile, postgres image
DAEMONS=(intake referral rating escalation)
DB_ROLES=(intake referral rating escalation)

die() { echo "deploy-init: $*" >&2; exit 1; }
[ -x "$KEYGEN" ] || die "no $KEYGEN: run make first (or set WHISTLE_KEYGEN)"
[ -f "$DIR/docker-compose.yml" ] || die "$DIR/docker-compose.yml not found"
if [ "$CHOWN" = 1 ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo): secrets must belong to uid $APP_UID, the image's user (or --no-chown)"
fi

# own FILE UID GID MODE: owner and mode of one file (owner only with chown).
own() {
  if [ "$CHOWN" = 1 ]; then chown "$2:$3" "$1"; fi
  chmod "$4" "$1"
}

# random_secret FILE UID GID MODE: a new random password or key, never replaced.
random_secret() {
  if [ -s "$1" ]; then echo "kept     $1"; return; fi
  (umask 077; head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > "$1")
  own "$1" "$2" "$3" "$4"
  echo "created  $1"
}

# keypair STEM: a CURVE key pair, never replaced (whistle-keygen refuses to).
keypair() {
  if [ -s "$1.key" ]; then echo "kept     $1.key"; return; fi
  "$KEYGEN" "$1" >/dev/null
  echo "created  $1.key $1.pub"
}

install -d -m 0755 "$DIR/public" "$DIR/allowed"
install -d -m 0711 "$DIR/secrets"   # no listing; each file has its own owner
install -d -m 0700 "$DIR/clients"
for d in "${DAEMONS[@]}"; do install -d -m 0755 "$DIR/allowed/$d"; done

# Daemon keys: the secret key as a Docker secret for that daemon only, the
# public key for the others and for clients.
for d in "${DAEMONS[@]}"; do
  keypair "$DIR/secrets/$d-curve"
  own "$DIR/secrets/$d-curve.key" "$APP_UID" "$APP_GID" 0400
  mv -f "$DIR/secrets/$d-curve.pub" "$DIR/public/$d.pub" 2>/dev/null || true
  chmod 0644 "$DIR/public/$d.pub"
done
# The pseudonym key (R-I6): losing it breaks repeat detection; back it up.
random_secret "$DIR/secrets/pseudonym.key" "$APP_UID" "$APP_GID" 0400
# Database passwords: the daemon reads its own (owner 10001), the postgres
# container's first start reads them all (group 999) to create the roles.
for r in "${DB_ROLES[@]}"; do
  random_secret "$DIR/secrets/$r-db-password" "$APP_UID" "$PG_GID" 0440
done
random_secret "$DIR/secrets/postgres-password" "$PG_UID" "$PG_GID" 0400

# Escalation's recipients: the codes of the registry's departments, streets,
# districts and companies (first column, under the header), the --unit codes
# and the --recipient ones.
for f in departments streets districts companies; do
  csv="$DIR/registry/$f.csv"
  [ -f "$csv" ] || die "$csv not found (escalation's recipients come from the registry)"
  while IFS= read -r code; do
    [ -n "$code" ] && RECIPIENTS+=("$code")
  done < <(awk -F, 'NR > 1 { sub(/\r$/, "", $1); gsub(/"/, "", $1); print $1 }' "$csv")
done
RECIPIENTS+=("${UNITS[@]}")
for c in "${CLIENTS[@]}" "${UNITS[@]}" "${OPS[@]}" "${RECIPIENTS[@]}"; do
  [[ "$c" =~ ^[A-Za-z0-9_.-]{1,127}$ ]] || die "identity \"$c\": 1-127 characters of A-Z a-z 0-9 _ - ."
done

# Client identities: key pairs for the client systems, public keys allowed.
IDS=()   # each identity once ("ops" is both a client and an ops tool by default)
for c in "${CLIENTS[@]}" "${UNITS[@]}" "${OPS[@]}" "${RECIPIENTS[@]}"; do
  case " ${IDS[*]} " in *" $c "*) ;; *) IDS+=("$c") ;; esac
done
for c in "${IDS[@]}"; do keypair "$DIR/clients/$c"; done
allow() { install -m 0644 "$2" "$DIR/allowed/$1/$(basename "$2")"; }
for c in "${CLIENTS[@]}"; do
  allow intake "$DIR/clients/$c.pub"
  allow referral "$DIR/clients/$c.pub"
done
for u in "${UNITS[@]}"; do allow referral "$DIR/clients/$u.pub"; done
for o in "${OPS[@]}"; do
  allow referral "$DIR/clients/$o.pub"
  allow rating "$DIR/clients/$o.pub"
  allow escalation "$DIR/clients/$o.pub"
done
for r in "${RECIPIENTS[@]}"; do allow escalation "$DIR/clients/$r.pub"; done
allow intake "$DIR/public/referral.pub"   # referral reads intake's stream as "referral"
allow referral "$DIR/public/intake.pub"   # intake reads referral's closures as "intake"
allow intake "$DIR/public/rating.pub"     # rating reads intake's stream as "rating"
allow referral "$DIR/public/rating.pub"   # and referral's as "rating"
allow referral "$DIR/public/escalation.pub"   # escalation reads referral's stream as "escalation"
allow rating "$DIR/public/escalation.pub"     # and rating's as "escalation"

if [ ! -f "$DIR/.env" ]; then
  install -m 0600 "$DIR/example.env" "$DIR/.env"
  echo "created  $DIR/.env (set WHISTLE_IMAGE to the tag you build)"
fi
echo "deploy-init: done. Client keys to hand out: $DIR/clients/*.key (with $DIR/public/<daemon>.pub)"
