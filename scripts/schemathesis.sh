#!/usr/bin/env bash
# Checks the running API against its own OpenAPI document with schemathesis: every check
# (`--checks all`), 30 examples per operation, as the admin, against 127.0.0.1 only.
#
#   scripts/schemathesis.sh [--no-build] [extra arguments for `schemathesis run`]
#   scripts/schemathesis.sh install      # only install the pinned schemathesis
#
# Needs the test servers running (scripts/test.sh starts them; so does
# `scripts/servers.sh start test`). Installs schemathesis 4.32.5 into a venv under
# .data/tools/ when missing (python3 -m venv + pip, nothing else), builds the debug
# binaries (unless --no-build), starts the workers and a gateway on a free loopback port
# in a namespace and database of their own (so nothing else is disturbed), seeds a
# published demo event with the `seed` binary (as scripts/up.sh does), signs in as the
# admin, runs schemathesis bounded in time (TICKETING_SCHEMATHESIS_TIMEOUT, default 600 s)
# and stops what it started. Exit 0 only when schemathesis reports no failure; otherwise
# its failures are printed, with the tails of the gateway's and workers' logs.
# Run files (logs, keys, the JUnit report): .data/schemathesis/run/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

VERSION=4.32.5
VENV="$ROOT/.data/tools/schemathesis-$VERSION"
ST="$VENV/bin/schemathesis"
RUN="$ROOT/.data/schemathesis/run"
TIMEOUT="${TICKETING_SCHEMATHESIS_TIMEOUT:-600}"
EXAMPLES=30

install() {
  if [ -x "$ST" ] && "$ST" --version 2>/dev/null | grep -q "$VERSION"; then
    return 0
  fi
  echo "installing schemathesis $VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
  "$ST" --version
}

BUILD=1
if [ "${1:-}" = install ]; then install; exit 0; fi
if [ "${1:-}" = --no-build ]; then BUILD=0; shift; fi

step "schemathesis $VERSION: install if missing" install
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
if [ "$BUILD" = 1 ]; then
  # The whole workspace's binaries: the same features as `cargo test --workspace`, so
  # scripts/test.sh's build is reused rather than redone.
  step "cargo build --workspace --bins" cargo build --workspace --bins
fi
for b in ticketing-workers ticketing-gateway ticketing-keys seed; do
  [ -x "$TARGET/$b" ] || { echo "ERROR: $TARGET/$b is missing; run without --no-build" >&2; exit 1; }
done

# The test servers' addresses; a value already exported wins (a worktree may use the
# servers another checkout started).
while IFS= read -r kv; do
  k=${kv%%=*}
  [ -n "${!k:-}" ] || export "${kv?}"
done < <(bash scripts/servers.sh env test)
AUTH="$TICKETING_NATS_AUTH_DIR"
[ -s "$AUTH/gateway.password" ] || { echo "ERROR: no NATS identities in $AUTH: are the test servers running?" >&2; exit 1; }

rm -rf "$RUN"
mkdir -p "$RUN/bin"
# Run copies: a later build cannot change the binaries under a running check.
for b in ticketing-workers ticketing-gateway ticketing-keys seed; do cp "$TARGET/$b" "$RUN/bin/"; done
TARGET="$RUN/bin"
id=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
export TICKETING_NAMESPACE="st$id" TICKETING_MONGODB_DB="schemathesis_$id"
export TICKETING_ADMIN_EMAIL=admin@example.com
TICKETING_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')
TICKETING_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')
export TICKETING_ADMIN_PASSWORD TICKETING_JWT_SECRET
# Fast password hashing: the run registers many accounts.
export TICKETING_ARGON2_TEST_PARAMS=true
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
"$TARGET/ticketing-keys" init --dir "$RUN/keys" >/dev/null
export TICKETING_COMMAND_SIGNERS="$RUN/keys/signers.json"

# shellcheck disable=SC2317  # run by the EXIT trap
finish() {
  local rc=$?
  set +e
  stop_product "$RUN" >/dev/null
  if [ "$rc" != 0 ]; then
    for p in gateway workers; do log_tail "$RUN/$p.log" 20 >&2; done
  fi
  exit "$rc"
}
trap finish EXIT

(
  export TICKETING_WORKERS=all TICKETING_NATS_USER=workers
  TICKETING_NATS_PASSWORD=$(cat "$AUTH/workers.password"); export TICKETING_NATS_PASSWORD
  TICKETING_COMMAND_SIGNING_KEY=$(cat "$RUN/keys/workers.key"); export TICKETING_COMMAND_SIGNING_KEY
  start_proc "$RUN" workers "$TARGET/ticketing-workers"
)
(
  export TICKETING_LISTEN="127.0.0.1:$PORT" TICKETING_NATS_USER=gateway
  TICKETING_NATS_PASSWORD=$(cat "$AUTH/gateway.password"); export TICKETING_NATS_PASSWORD
  TICKETING_COMMAND_SIGNING_KEY=$(cat "$RUN/keys/gateway.key"); export TICKETING_COMMAND_SIGNING_KEY
  start_proc "$RUN" gateway "$TARGET/ticketing-gateway"
)
deadline=$((SECONDS + 60))
until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 7 "$URL/readyz" || true)" = 200 ]; do
  for p in gateway workers; do
    proc_alive "$RUN" "$p" || { echo "ERROR: the $p process exited" >&2; exit 1; }
  done
  [ "$SECONDS" -lt "$deadline" ] || { echo "ERROR: $URL/readyz did not answer 200 within 60 s" >&2; exit 1; }
  sleep 0.25
done
event_id=$("$TARGET/seed" --url "$URL" --seats 60 --run-dir "$RUN")
token=$(curl -sf --max-time 10 -H 'content-type: application/json' \
  -d "{\"email\":\"$TICKETING_ADMIN_EMAIL\",\"password\":\"$TICKETING_ADMIN_PASSWORD\"}" \
  "$URL/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
echo "gateway $URL, demo event $event_id, namespace $TICKETING_NAMESPACE"

# Path ids of the demo event where an operation names an event, so those operations reach
# a real resource as well as random ids (see schemathesis.toml).
export SCHEMATHESIS_EVENT_ID="$event_id"
rc=0
# POST /v1/auth/logout is left out: it would end the admin token every later request
# runs with (e2e sessions::* covers it).
timeout --signal=INT --kill-after=30 "$TIMEOUT" \
  env NO_COLOR=1 "$ST" --config-file "$ROOT/scripts/schemathesis.toml" run "$URL/openapi.json" \
  --checks all \
  --exclude-path /v1/auth/logout \
  --max-examples "$EXAMPLES" \
  --header "Authorization: Bearer $token" \
  --report junit --report-dir "$RUN/report" \
  --generation-database none \
  --request-timeout 20 \
  --no-color \
  "$@" >"$RUN/schemathesis.log" 2>&1 || rc=$?
cat "$RUN/schemathesis.log"
if [ "$rc" = 124 ]; then
  echo "ERROR: schemathesis did not finish within ${TIMEOUT}s" >&2
elif [ "$rc" != 0 ]; then
  echo "ERROR: schemathesis reported failures (exit $rc); report: $RUN/report" >&2
fi
exit "$rc"
