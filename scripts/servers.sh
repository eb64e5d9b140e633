#!/usr/bin/env bash
# Builds (pinned, from tools/servers/go.mod) and starts the servers the product runs against:
# nats-server with JetStream, PostgreSQL 15 (the machine's, run as the `postgres` user when
# this script runs as root), FerretDB on its PostgreSQL backend, Mailpit. Everything lives
# under .data/.
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
  dev)  NATS_PORT=4222;  NATS_HTTP=8222;  MONGO_PORT=27017; SMTP_PORT=1025;  MAIL_HTTP=8025;  PG_PORT=15432 ;;
  test) NATS_PORT=14222; NATS_HTTP=18222; MONGO_PORT=37017; SMTP_PORT=11025; MAIL_HTTP=18025; PG_PORT=25432 ;;
  *) echo "unknown profile $PROFILE (dev|test)" >&2; exit 2 ;;
esac
DATA="$ROOT/.data/$PROFILE"
RUN="$DATA/run"
PGDATA_DIR="$DATA/postgres"
# PostgreSQL 15 from the machine image (Debian's postgresql-15); the major version is pinned
# because a cluster directory only opens with the major version that made it.
PG_MAJOR=15
PG_BIN="${TICKETING_PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}"
# FerretDB's pool of PostgreSQL connections. NOTE: FerretDB v1 can hold one connection
# while it waits for a second (metadata, then the query), so a pool smaller than the
# number of client operations in flight deadlocks: 16 did, with the workers' 8 writers and
# 16 readers (every read then hung). 80 stays above what the workers (24), the tests and
# the bench's ceiling loop open at once, and under PostgreSQL's max_connections (100).
FERRET_POOL="${TICKETING_FERRETDB_POOL_MAX_CONNS:-80}"

build() {
  mkdir -p "$BIN"
  # One build at a time: a second caller waits for the first and then finds the binaries.
  exec 9>"$BIN/.build.lock"
  if ! flock -n 9; then
    echo "another build of the servers is running; waiting for it"
    flock 9
  fi
  local missing=0 b
  # Our FerretDB embedding is rebuilt when its source or the pins change (an older build
  # ran the SQLite backend).
  local ferret_sum
  ferret_sum=$(cat "$ROOT/tools/servers/ferretdb/main.go" "$ROOT/tools/servers/go.sum" | sha256sum | cut -c1-16)
  if [ "$(cat "$BIN/.ferretdb.sum" 2>/dev/null)" != "$ferret_sum" ]; then rm -f "$BIN/ferretdb"; fi
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
      [ -x "$BIN/ferretdb" ]    || { gobuild ferretdb ./ferretdb && echo "$ferret_sum" > "$BIN/.ferretdb.sum"; }
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

# as_pg CMD...: runs CMD as the `postgres` user when we are root (PostgreSQL refuses to
# run as root), as ourselves otherwise.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# pg_start: creates the cluster on first use (UTF8, C.UTF-8, a generated password for the
# `ferretdb` role, kept in $DATA/pg-password) and starts it on 127.0.0.1:$PG_PORT.
pg_start() {
  [ -x "$PG_BIN/postgres" ] || {
    echo "ERROR: PostgreSQL $PG_MAJOR not found in $PG_BIN (Debian package postgresql-$PG_MAJOR; or set TICKETING_PG_BIN)" >&2
    exit 1
  }
  if [ ! -s "$DATA/pg-password" ]; then
    umask 077
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DATA/pg-password"
    umask 022
  fi
  if [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
    rm -rf "$PGDATA_DIR"
    mkdir -p "$PGDATA_DIR"
    local pwfile="$PGDATA_DIR.pwfile"
    cp "$DATA/pg-password" "$pwfile"
    if [ "$(id -u)" = 0 ]; then chown postgres "$PGDATA_DIR" "$pwfile"; fi
    chmod 700 "$PGDATA_DIR"
    if ! as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -E UTF8 --locale=C.UTF-8 -U ferretdb \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 --pwfile="$pwfile" >"$RUN/initdb.log" 2>&1; then
      rm -f "$pwfile"
      echo "ERROR: initdb failed. Its log ($RUN/initdb.log):" >&2
      cat "$RUN/initdb.log" >&2
      exit 1
    fi
    rm -f "$pwfile"
    # Durable before acknowledged (the defaults, stated so nobody turns them off), loopback
    # only, and sized for a 2-core machine.
    cat >> "$PGDATA_DIR/postgresql.conf" <<PGCONF

# ---- ticketing (scripts/servers.sh) ----
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PGDATA_DIR'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 100
shared_buffers = 256MB
work_mem = 16MB
PGCONF
  fi
  if [ "$(id -u)" = 0 ]; then chown postgres "$RUN/postgres.log" 2>/dev/null || true; fi
  if ! running postgres; then
    touch "$RUN/postgres.log"
    if [ "$(id -u)" = 0 ]; then chown postgres "$RUN/postgres.log"; fi
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$RUN/postgres.log" -w -t 30 start >/dev/null; then
      echo "ERROR: PostgreSQL did not start on 127.0.0.1:$PG_PORT. Its log ($RUN/postgres.log):" >&2
      cat "$RUN/postgres.log" >&2 || true
      exit 1
    fi
    head -n1 "$PGDATA_DIR/postmaster.pid" > "$RUN/postgres.pid"
  fi
  # The database FerretDB keeps its schemas in.
  if ! PGPASSWORD=$(cat "$DATA/pg-password") "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U ferretdb -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'ferretdb'" | grep -q 1; then
    PGPASSWORD=$(cat "$DATA/pg-password") "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U ferretdb -d postgres -qc \
      "CREATE DATABASE ferretdb" >/dev/null
  fi
}

pg_stop() {
  if running postgres; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  fi
  if running postgres; then
    kill -9 "$(cat "$RUN/postgres.pid")" 2>/dev/null || true
  fi
  rm -f "$RUN/postgres.pid"
}

# One NATS password per identity, made on first start, kept under .data/<profile>/nats-auth/
# (mode 0600, never committed). scripts/nats-auth.sh lists the identities.
AUTH="$DATA/nats-auth"
NATS_USERS="gateway workers operator boxoffice"
nats_identities() {
  mkdir -p "$AUTH"
  chmod 700 "$AUTH"
  local u
  for u in $NATS_USERS; do
    if [ ! -s "$AUTH/$u.password" ]; then
      (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$AUTH/$u.password")
    fi
  done
}

start() {
  build
  mkdir -p "$RUN" "$DATA/nats" "$DATA/mailpit"
  free_port postgres "$PG_PORT"
  free_port nats "$NATS_PORT"
  free_port nats "$NATS_HTTP"
  free_port ferretdb "$MONGO_PORT"
  free_port mailpit "$SMTP_PORT"
  free_port mailpit "$MAIL_HTTP"
  nats_identities
  local ns_token=ticketing
  # Each test has its own namespace (t<hex>): the test profile's permissions match any.
  if [ "$PROFILE" = test ]; then ns_token='*'; fi
  (umask 077 && bash "$ROOT/scripts/nats-auth.sh" local "$AUTH" "$ns_token" >"$RUN/nats-auth.conf")
  (umask 077 && cat > "$RUN/nats.conf" <<CONF
listen: 127.0.0.1:$NATS_PORT
http: 127.0.0.1:$NATS_HTTP
server_name: ticketing-$PROFILE
max_payload: 8MB
jetstream {
  store_dir: "$DATA/nats"
  # fsync before ack: the lazy default lost acknowledged writes in the 2025 Jepsen analysis.
  sync_interval: always
}
# No anonymous client: every identity and what it may publish and subscribe to.
include "nats-auth.conf"
CONF
)
  if ! running nats; then
    "$BIN/nats-server" -c "$RUN/nats.conf" >"$RUN/nats.log" 2>&1 &
    echo $! > "$RUN/nats.pid"
  else
    # Already running (perhaps from an older config without the identities): reload, so
    # the identities and permissions just written apply.
    kill -HUP "$(cat "$RUN/nats.pid")" 2>/dev/null || true
  fi
  pg_start
  if ! running ferretdb; then
    # The password travels in the environment, not on the command line (ps shows that).
    FERRETDB_POSTGRESQL_URL="postgres://ferretdb:$(cat "$DATA/pg-password")@127.0.0.1:$PG_PORT/ferretdb?pool_max_conns=$FERRET_POOL" \
      "$BIN/ferretdb" -listen "127.0.0.1:$MONGO_PORT" >"$RUN/ferretdb.log" 2>&1 &
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
  echo "servers ($PROFILE) up: postgresql 127.0.0.1:$PG_PORT, nats 127.0.0.1:$NATS_PORT, mongodb-wire 127.0.0.1:$MONGO_PORT, smtp 127.0.0.1:$SMTP_PORT (mail UI http://127.0.0.1:$MAIL_HTTP)"
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
  pg_stop
}

env_vars() {
  echo "TICKETING_NATS_URL=nats://127.0.0.1:$NATS_PORT"
  # Where each NATS identity's password is (<user>.password): the test harness and the
  # bench read it; scripts/up.sh hands each process its own.
  echo "TICKETING_NATS_AUTH_DIR=$AUTH"
  echo "TICKETING_MONGODB_URI=mongodb://127.0.0.1:$MONGO_PORT/"
  echo "TICKETING_SMTP_URL=smtp://127.0.0.1:$SMTP_PORT"
  echo "TICKETING_MAILPIT_API=http://127.0.0.1:$MAIL_HTTP"
  echo "TICKETING_PG_URL=postgres://ferretdb:$(cat "$DATA/pg-password" 2>/dev/null)@127.0.0.1:$PG_PORT/ferretdb"
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  env) env_vars ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
