# shellcheck shell=bash
# Helpers shared by scripts/up.sh, scripts/down.sh and scripts/test.sh. Sourced, not run.

# step NAME CMD...: runs CMD, then prints how long it took; the exit code is CMD's.
step() {
  local name=$1; shift
  local t0=$SECONDS rc=0
  echo "==> $name"
  "$@" || rc=$?
  printf '==> %s: %s in %ds\n' "$name" "$([ "$rc" = 0 ] && echo ok || echo "FAILED (exit $rc)")" $((SECONDS - t0))
  return "$rc"
}

# proc_alive RUN NAME: true when RUN/NAME.pid names a live process of ours (the pid's
# command line must mention ticketing-NAME, so a recycled pid is never taken for ours).
proc_alive() {
  local run=$1 name=$2 pid
  [ -s "$run/$name.pid" ] || return 1
  pid=$(cat "$run/$name.pid")
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "ticketing-$name"
}

# start_proc RUN NAME CMD...: starts CMD in the background (its own session, so a Ctrl-C
# in the terminal does not reach it), logging to RUN/NAME.log without colours (the
# previous log is kept as NAME.log.1) and writing RUN/NAME.pid.
start_proc() {
  local run=$1 name=$2; shift 2
  [ -f "$run/$name.log" ] && mv -f "$run/$name.log" "$run/$name.log.1"
  NO_COLOR=1 setsid "$@" </dev/null >"$run/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
  echo "started $name (pid $!), log $run/$name.log"
}

# stop_proc RUN NAME: SIGTERM, up to 20 s to drain in-flight work, then SIGKILL.
stop_proc() {
  local run=$1 name=$2 pid
  if proc_alive "$run" "$name"; then
    pid=$(cat "$run/$name.pid")
    echo "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name did not stop in 20 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$run/$name.pid"
}

# stop_product RUN: the gateway first (no new commands), then the workers.
stop_product() {
  stop_proc "$1" gateway
  stop_proc "$1" workers
}

# log_tail FILE [LINES]: the end of a log, without the frames of a backtrace and the
# readiness probes of scripts/up.sh, so the line that matters stays in view.
log_tail() {
  echo "----- last lines of $1 -----"
  grep -vE '^[[:space:]]+([0-9]+: |at )|path=/readyz' "$1" 2>/dev/null | tail -n "${2:-40}" || true
}
