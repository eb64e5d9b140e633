#!/usr/bin/env bash
# Runs the whole system locally: the one command a fresh machine needs.
#
#   scripts/up.sh [--no-build]
#
# Builds the servers if missing (scripts/servers.sh build), builds the product
# (cargo build --release --bins), starts the dev servers (nats-server, FerretDB, Mailpit),
# then the workers (all of them, one process) and the gateway on 127.0.0.1:8080 in the
# background, waits until GET /readyz answers 200, seeds a published demo event, and
# prints the URL, the admin credentials and the demo event id.
#
# --no-build skips the cargo build and runs the binaries already in target/release.
# Re-running restarts the product processes cleanly (the servers keep running).
# scripts/down.sh stops everything. Pid files and logs: .data/dev/run/.
#
# Environment (all optional):
#   TICKETING_ADMIN_EMAIL     admin e-mail (default admin@example.com)
#   TICKETING_ADMIN_PASSWORD  admin password (default: generated once into .data/dev/admin-password)
#   TICKETING_JWT_SECRET      JWT signing secret (default: generated once into .data/dev/jwt-secret)
#   TICKETING_LISTEN          gateway address (default 127.0.0.1:8080)
#   RUST_LOG                  log filter of the product processes
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DEV="$ROOT/.data/dev"
RUN="$DEV/run"
READY_TIMEOUT=60
BUILD=1
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    *) echo "usage: scripts/up.sh [--no-build]" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

mkdir -p "$RUN"

# Secrets generated once, kept out of git (.data/ is ignored), readable by the owner only.
secret_file() {
  local file=$1 bytes=$2
  if [ ! -s "$file" ]; then
    (umask 077 && head -c "$bytes" /dev/urandom | base64 | tr -d '/+=\n' >"$file")
  fi
}
secret_file "$DEV/admin-password" 18
secret_file "$DEV/jwt-secret" 48

export TICKETING_ADMIN_EMAIL="${TICKETING_ADMIN_EMAIL:-admin@example.com}"
export TICKETING_ADMIN_PASSWORD="${TICKETING_ADMIN_PASSWORD:-$(cat "$DEV/admin-password")}"
export TICKETING_JWT_SECRET="${TICKETING_JWT_SECRET:-$(cat "$DEV/jwt-secret")}"
LISTEN="${TICKETING_LISTEN:-127.0.0.1:8080}"
URL="http://$LISTEN"

step "servers: build if missing" bash scripts/servers.sh build
if [ "$BUILD" = 1 ]; then
  step "cargo build --release --bins" cargo build --release --bins
fi
for b in ticketing-workers ticketing-gateway ticketing-keys seed; do
  [ -x "$ROOT/target/release/$b" ] || { echo "ERROR: target/release/$b is missing; run without --no-build" >&2; exit 1; }
done
step "servers: start (dev)" bash scripts/servers.sh start dev
while IFS= read -r kv; do export "${kv?}"; done < <(bash scripts/servers.sh env dev)
# Command signing keys (gateway, workers, the boxoffice example system) and the registry
# the workers trust, made once under .data/dev/keys/ (mode 0600).
KEYS="$DEV/keys"
"$ROOT/target/release/ticketing-keys" init --dir "$KEYS" >/dev/null
export TICKETING_COMMAND_SIGNERS="$KEYS/signers.json"
AUTH="$TICKETING_NATS_AUTH_DIR"

# Restart cleanly: whatever of ours runs is stopped (and drains) before starting anew.
stop_product "$RUN"
if (exec 3<>"/dev/tcp/${LISTEN%:*}/${LISTEN##*:}") 2>/dev/null; then
  echo "ERROR: $LISTEN is taken by a process that is not ours (see: ss -ltnp)." >&2
  exit 1
fi

# Each process its own NATS identity and signing key, exported in a subshell (never on a
# command line, where ps would show them).
(
  export TICKETING_WORKERS=all TICKETING_NATS_USER=workers
  TICKETING_NATS_PASSWORD=$(cat "$AUTH/workers.password"); export TICKETING_NATS_PASSWORD
  TICKETING_COMMAND_SIGNING_KEY=$(cat "$KEYS/workers.key"); export TICKETING_COMMAND_SIGNING_KEY
  start_proc "$RUN" workers "$ROOT/target/release/ticketing-workers"
)
(
  export TICKETING_LISTEN="$LISTEN" TICKETING_NATS_USER=gateway
  TICKETING_NATS_PASSWORD=$(cat "$AUTH/gateway.password"); export TICKETING_NATS_PASSWORD
  TICKETING_COMMAND_SIGNING_KEY=$(cat "$KEYS/gateway.key"); export TICKETING_COMMAND_SIGNING_KEY
  start_proc "$RUN" gateway "$ROOT/target/release/ticketing-gateway"
)

echo "waiting up to ${READY_TIMEOUT}s for $URL/readyz"
problem=""
code=""
answer=""
deadline=$((SECONDS + READY_TIMEOUT))
while [ "$SECONDS" -lt "$deadline" ]; do
  # --max-time above the gateway's query timeout (5 s), so a slow answer still arrives.
  answer=$(curl -s --max-time 7 -w '\n%{http_code}' "$URL/readyz" || true)
  code=${answer##*$'\n'}
  if [ "$code" = 200 ]; then break; fi
  for p in gateway workers; do
    if ! proc_alive "$RUN" "$p"; then problem="the $p process exited"; break 2; fi
  done
  sleep 0.25
done
if [ "$code" != 200 ] && [ -z "$problem" ]; then
  problem="$URL/readyz did not answer 200 within ${READY_TIMEOUT}s (last answer: ${code:-none} ${answer%$'\n'*})"
fi
if [ -n "$problem" ]; then
  echo "ERROR: $problem" >&2
  for p in gateway workers; do log_tail "$RUN/$p.log" >&2; done
  stop_product "$RUN" >&2
  exit 1
fi

# The demo event: reused while the gateway still knows it, created otherwise.
event_id=""
if [ -s "$DEV/demo-event-id" ]; then
  event_id=$(cat "$DEV/demo-event-id")
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/v1/events/$event_id" || true)
  [ "$code" = 200 ] || event_id=""
fi
if [ -z "$event_id" ]; then
  echo "seeding a published demo event"
  event_id=$("$ROOT/target/release/seed" --url "$URL" --seats 300 --run-dir "$RUN")
  echo "$event_id" >"$DEV/demo-event-id"
fi

cat <<EOF

The ticketing system is running.
  API            $URL   (OpenAPI: $URL/openapi.json, metrics: $URL/metrics)
  admin e-mail   $TICKETING_ADMIN_EMAIL
  admin password $TICKETING_ADMIN_PASSWORD
  demo event     $event_id   ($URL/v1/events/$event_id/seats)
  mail UI        ${TICKETING_MAILPIT_API:-http://127.0.0.1:8025}
  NATS           $TICKETING_NATS_URL   (identities: $AUTH/<user>.password; operator: nats --user operator --password "\$(cat $AUTH/operator.password)")
  signing keys   $KEYS/   (registry: $KEYS/signers.json)
  logs, pids     $RUN/
Stop everything with scripts/down.sh.
EOF
