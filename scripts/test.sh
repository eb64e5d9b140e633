#!/usr/bin/env bash
# Runs every check and test: the one command for developers and CI (.ci/run calls it).
#
#   scripts/test.sh [extra arguments for cargo test]
#
# Checks that .env.example documents every TICKETING_* variable the binaries read, builds
# the servers if missing, starts the test-profile servers (nats 14222, postgresql 25432,
# mongodb-wire 37017, smtp 11025, Mailpit API 18025), exports TICKETING_NATS_URL, TICKETING_MONGODB_URI,
# TICKETING_SMTP_URL and TICKETING_MAILPIT_API, then runs
#   cargo fmt --all --check
#   cargo clippy --workspace --all-targets -- -D warnings
#   cargo test --workspace
#   scripts/schemathesis.sh (the pinned schemathesis against a running gateway)
#   scripts/check-no-card-numbers.sh over every log of the run
# printing the time of each step. A failing check does not hide the others: every step
# runs, and the script fails at the end if any did. The test servers are stopped at the
# end (unless they were already running before this script), and on failure the tails of
# their logs are printed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
TEST_RUN="$ROOT/.data/test/run"
T0=$SECONDS
SUMMARY=()
FAILED=0

timed() {
  local name=$1 t=$SECONDS rc=0
  step "$@" || rc=$?
  SUMMARY+=("$(printf '%-52s %5ds  %s' "$name" $((SECONDS - t)) "$([ "$rc" = 0 ] && echo ok || echo FAILED)")")
  return "$rc"
}

servers_were_running=0
for s in postgres nats ferretdb mailpit; do
  if [ -s "$TEST_RUN/$s.pid" ] && kill -0 "$(cat "$TEST_RUN/$s.pid")" 2>/dev/null; then
    servers_were_running=1
  fi
done

# shellcheck disable=SC2317  # run by the EXIT trap
finish() {
  local rc=$?
  set +e
  if [ "$rc" != 0 ]; then
    for log in "$TEST_RUN"/postgres.log "$TEST_RUN"/nats.log "$TEST_RUN"/ferretdb.log "$TEST_RUN"/mailpit.log; do
      [ -f "$log" ] || continue
      echo "----- last lines of $log -----"
      tail -n 30 "$log"
    done
  fi
  if [ "$servers_were_running" = 1 ]; then
    echo "test servers were already running before this script; left running"
  else
    bash scripts/servers.sh stop test
  fi
  echo
  echo "step                                                   time  result"
  printf '%s\n' "${SUMMARY[@]}"
  printf '%-52s %5ds  %s\n' "total" $((SECONDS - T0)) "$([ "$rc" = 0 ] && echo ok || echo "FAILED (exit $rc)")"
  exit "$rc"
}
trap finish EXIT

if [ "$servers_were_running" = 0 ]; then
  # Each run starts from empty stores; the tests also isolate themselves by namespace.
  rm -rf "$ROOT/.data/test/nats" "$ROOT/.data/test/postgres" "$ROOT/.data/test/ferretdb" "$ROOT/.data/test/mailpit"
fi
timed "servers: build if missing" bash scripts/servers.sh build
timed "servers: start (test)" bash scripts/servers.sh start test
while IFS= read -r kv; do export "${kv?}"; done < <(bash scripts/servers.sh env test)
echo "TICKETING_NATS_URL=$TICKETING_NATS_URL TICKETING_MONGODB_URI=$TICKETING_MONGODB_URI TICKETING_MAILPIT_API=$TICKETING_MAILPIT_API"

# Every TICKETING_* variable the binaries read is documented in .env.example.
# shellcheck disable=SC2317  # run through `timed`
env_documented() {
  local v missing=""
  while read -r v; do
    grep -qE "^(# )?$v=" .env.example || missing="$missing $v"
  done < <(grep -rhoE 'env = "TICKETING_[A-Z0-9_]+"' gateway/src workers/src | sed -E 's/.*"(.*)"/\1/' | sort -u)
  if [ -n "$missing" ]; then
    echo ".env.example does not document:$missing (add each with a comment and its default)"
    return 1
  fi
}

timed ".env.example documents every variable" env_documented || FAILED=1
# The production NATS identities are the generator's output, not a hand-edited copy.
# shellcheck disable=SC2317  # run through `timed`
nats_auth_current() {
  diff -u deploy/nats/auth.conf <(bash scripts/nats-auth.sh prod) ||
    { echo "deploy/nats/auth.conf is stale: bash scripts/nats-auth.sh prod > deploy/nats/auth.conf"; return 1; }
}
timed "deploy/nats/auth.conf is generated" nats_auth_current || FAILED=1
timed "cargo fmt --all --check" cargo fmt --all --check || FAILED=1
timed "cargo clippy --workspace --all-targets -D warnings" cargo clippy --workspace --all-targets -- -D warnings || FAILED=1
# The e2e stacks log to one file, which is then searched for card numbers together
# with the servers' logs (scripts/check-no-card-numbers.sh).
rm -f "$TEST_RUN/e2e.log"
TICKETING_TEST_LOG="$TEST_RUN/e2e.log" timed "cargo test --workspace" cargo test --workspace "$@" || FAILED=1
timed "schemathesis: OpenAPI vs the running API" bash scripts/schemathesis.sh || FAILED=1
timed "no card number in the logs" bash scripts/check-no-card-numbers.sh "$TEST_RUN"/*.log .data/schemathesis/run/*.log || FAILED=1
exit "$FAILED"
