#!/usr/bin/env bash
# Builds (pinned, from tools/servers/go.mod) and starts the servers the product runs against:
# nats-server with JetStream, FerretDB on SQLite, Mailpit. Everything lives under .data/.
#
#   scripts/servers.sh build            build missing binaries into .data/bin
#   scripts/servers.sh start [dev|test] start the profile's servers, wait until they answer
#   scripts/servers.sh stop  [dev|test] stop them
#   scripts/servers.sh env   [dev|test] print the TICKETING_* variables pointing at them
#
# A server that does not answer in time makes the script fail loudly with its log.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/.data/bin"
PROFILE="${2:-dev}"

case "$PROFILE" in
  dev)  NATS_PORT=4222;  NATS_HTTP=8222;  MONGO_PORT=27017; SMTP_PORT=1025;  MAIL_HTTP=8025 ;;
  test) NATS_PORT=14222; NATS_HTTP=18222; MONGO_PORT=37017; SMTP_PORT=11025; MAIL_HTTP=18025 ;;
  *) echo "unknown profile $PROFILE (dev|test)" >&2; exit 2 ;;
esac
DATA="$ROOT/.data/$PROFILE"
RUN="$DATA/run"

build() {
  mkdir -p "$BIN"
  # One build at a time: a second caller waits for the first and then finds the binaries.
  exec 9>"$BIN/.build.lock"
  if ! flock -n 9; then
    echo "another build of the servers is running; waiting for it"
    flock 9
  fi
  local missing=0 b
  for b in nats-server nats ferretdb mailpit; do [ -x "$BIN/$b" ] || missing=1; done
  if [ "$missing" = 1 ]; then
    command -v go >/dev/null || { echo "go is required to build the servers" >&2; exit 1; }
    (
      cd "$ROOT/tools/servers"
      export GOFLAGS=-mod=mod
      # Each binary is rebuilt only when missing; versions are pinned by go.mod/go.sum.
      # Built to a temporary name and moved, so an interrupted build leaves no half binary.
      gobuild() { local out=$1; shift; echo "building $out"; go build -o "$BIN/.$out.tmp" "$@" && mv "$BIN/.$out.tmp" "$BIN/$out"; }
      [ -x "$BIN/nats-server" ] || gobuild nats-server github.com/nats-io/nats-server/v2
      [ -x "$BIN/nats" ]        || gobuild nats github.com/nats-io/natscli/nats
      [ -x "$BIN/ferretdb" ]    || gobuild ferretdb ./ferretdb
      [ -x "$BIN/mailpit" ]     || gobuild mailpit github.com/axllent/mailpit
    )
  fi
  flock -u 9
  exec 9>&-
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port NAME PORT: waits up to 30 s for our server NAME to answer on a TCP port; if it
# exits or does not answer, prints its log and fails.
wait_port() {
  local name=$1 port=$2
  for _ in $(seq 1 300); do
    running "$name" || break
    if port_open "$port"; then return 0; fi
    sleep 0.1
  done
  echo "ERROR: $name did not start on 127.0.0.1:$port. Its log ($RUN/$name.log):" >&2
  cat "$RUN/$name.log" >&2 || true
  exit 1
}

# free_port NAME PORT: fails loudly when a process that is not our NAME holds the port.
free_port() {
  local name=$1 port=$2
  if ! running "$name" && port_open "$port"; then
    echo "ERROR: 127.0.0.1:$port (for $name, profile $PROFILE) is taken by another process:" >&2
    ss -ltnp "sport = :$port" >&2 2>/dev/null || true
    exit 1
  fi
}

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {
  build
  mkdir -p "$RUN" "$DATA/nats" "$DATA/ferretdb" "$DATA/mailpit"
  free_port nats "$NATS_PORT"
  free_port nats "$NATS_HTTP"
  free_port ferretdb "$MONGO_PORT"
  free_port mailpit "$SMTP_PORT"
  free_port mailpit "$MAIL_HTTP"
  cat > "$RUN/nats.conf" <<CONF
listen: 127.0.0.1:$NATS_PORT
http: 127.0.0.1:$NATS_HTTP
server_name: ticketing-$PROFILE
max_payload: 8MB
jetstream {
  store_dir: "$DATA/nats"
  # fsync before ack: the lazy default lost acknowledged writes in the 2025 Jepsen analysis.
  sync_interval: always
}
CONF
  if ! running nats; then
    "$BIN/nats-server" -c "$RUN/nats.conf" >"$RUN/nats.log" 2>&1 &
    echo $! > "$RUN/nats.pid"
  fi
  if ! running ferretdb; then
    "$BIN/ferretdb" -listen "127.0.0.1:$MONGO_PORT" -dir "$DATA/ferretdb" >"$RUN/ferretdb.log" 2>&1 &
    echo $! > "$RUN/ferretdb.pid"
  fi
  if ! running mailpit; then
    "$BIN/mailpit" --smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$MAIL_HTTP" \
      --database "$DATA/mailpit/mailpit.db" --smtp-auth-accept-any --smtp-auth-allow-insecure \
      --disable-version-check >"$RUN/mailpit.log" 2>&1 &
    echo $! > "$RUN/mailpit.pid"
  fi
  wait_port nats "$NATS_PORT"
  wait_port ferretdb "$MONGO_PORT"
  wait_port mailpit "$SMTP_PORT"
  echo "servers ($PROFILE) up: nats 127.0.0.1:$NATS_PORT, mongodb-wire 127.0.0.1:$MONGO_PORT, smtp 127.0.0.1:$SMTP_PORT (mail UI http://127.0.0.1:$MAIL_HTTP)"
}

# stop: SIGTERM to each server, then waits up to 10 s for it to exit (SIGKILL after that),
# so a following start finds the ports and data directories free.
stop() {
  local s pid
  for s in mailpit ferretdb nats; do
    if running "$s"; then
      pid=$(cat "$RUN/$s.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "$s (pid $pid) did not stop in 10 s; killing it" >&2
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$RUN/$s.pid"
  done
}

env_vars() {
  echo "TICKETING_NATS_URL=nats://127.0.0.1:$NATS_PORT"
  echo "TICKETING_MONGODB_URI=mongodb://127.0.0.1:$MONGO_PORT/"
  echo "TICKETING_SMTP_URL=smtp://127.0.0.1:$SMTP_PORT"
  echo "TICKETING_MAILPIT_API=http://127.0.0.1:$MAIL_HTTP"
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  env) env_vars ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
