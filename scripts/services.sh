#!/usr/bin/env bash
# Starts, stops and shows orderstream's services as local processes, built
# into bin/ by `make build`. Logs go to .run/services/<name>.log, process ids
# to .run/services/<name>.pid; stop touches only those recorded processes.
# Usage: scripts/services.sh start|stop|restart|status|wait [name...]
# (no names: every service; restart = stop, then start)
#
# Commit hints (DESIGN.md, "The relay") are on: command-service sends one
# after each commit and cdc-relay reads it, so that an idle relay does not
# poll the database. HINTS=0 starts both without them, the previous
# behaviour (the relay reads recent commits every relay.recent_interval),
# which e2ebench measures as its baseline.
#
# Each projector's self-healing auditor (projector.audit.*) is on. AUDIT=0
# starts the four projectors without it (projector.audit.enabled=false),
# which e2ebench measures as "hints on, auditors off": the auditor's share
# of the idle system.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run="$root/.run/services"
mkdir -p "$run"

# name:admin-port, as in DESIGN.md "Local ports", in start order: the relay
# first, since it creates the topics (the hint topic among them) before it
# is ready, so that no topic is auto-created with the broker's defaults by
# the first hint or subscription.
services=(
  cdc-relay:9084
  command-service:9081
  query-service:9082
  dlq-service:9083
  projector-order-read-model:9085
  projector-orders-by-customer:9086
  projector-orders-by-status:9087
  projector-customer-read-model:9088
)
HINTS=${HINTS:-1}
case "$HINTS" in 1|true) hints=true ;; 0|false) hints=false ;; *) echo "services.sh: HINTS must be 1 or 0, got $HINTS" >&2; exit 2 ;; esac
AUDIT=${AUDIT:-1}
case "$AUDIT" in 1|true) audit=true ;; 0|false) audit=false ;; *) echo "services.sh: AUDIT must be 1 or 0, got $AUDIT" >&2; exit 2 ;; esac

# Personal data (issue 20, docs/personal-data.md) is sealed: the key-encryption
# key and the bearer token of POST /v1/customers/{id}/forget are made once
# under .cache/personal and kept (a new KEK cannot open the stored data keys).
personal="$root/.cache/personal"
ensure_personal() {
  mkdir -p "$personal"
  [[ -s "$personal/kek" ]] || (umask 077; head -c 32 /dev/urandom > "$personal/kek")
  [[ -s "$personal/forget-token" ]] || (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$personal/forget-token")
}

# The admin bearer token of every service: the projectors' mutating admin
# endpoints (POST/DELETE /rebuild) and every service's Go profiles
# (admin.pprof, /debug/pprof/ on the admin port) want it.
ADMIN_TOKEN=${ADMIN_TOKEN:-orderstream-local-admin-token}

# The local configuration beyond the binaries' defaults, per service, as
# ORDERSTREAM_<KEY> environment variables (pkg/config; values without spaces).
service_env() { # name
  echo -n "ORDERSTREAM_ADMIN_TOKEN=$ADMIN_TOKEN ORDERSTREAM_ADMIN_PPROF=true "
  case "$1" in
    command-service) echo "ORDERSTREAM_HINTS_ENABLED=$hints ORDERSTREAM_PERSONAL_ENABLED=true ORDERSTREAM_PERSONAL_KEK_FILE=$personal/kek ORDERSTREAM_FORGET_TOKEN_FILE=$personal/forget-token" ;;
    query-service) echo "ORDERSTREAM_PERSONAL_ENABLED=true ORDERSTREAM_PERSONAL_KEK_FILE=$personal/kek" ;;
    cdc-relay) echo "ORDERSTREAM_HINTS_ENABLED=$hints" ;;
    projector-*) echo "ORDERSTREAM_PROJECTOR_AUDIT_ENABLED=$audit" ;;
  esac
}
READY_TIMEOUT=${READY_TIMEOUT:-120}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}

# alive pidfile binary: the recorded process runs that binary. A binary
# rebuilt since (make build) shows as "<path> (deleted)": still ours.
alive() { # pidfile binary
  local pid exe
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ "${exe% (deleted)}" == "$2" ]]
}

# select name... sets chosen to the entries (name:port) of the named
# services, or of every service when none is named, in start order.
chosen=()
select_services() {
  local entry name found
  chosen=()
  if (( $# == 0 )); then chosen=("${services[@]}"); return; fi
  for name in "$@"; do
    found=
    for entry in "${services[@]}"; do [[ ${entry%%:*} == "$name" ]] && found=$entry; done
    [[ -n "$found" ]] || { echo "services.sh: unknown service $name" >&2; exit 2; }
  done
  for entry in "${services[@]}"; do
    for name in "$@"; do if [[ ${entry%%:*} == "$name" ]]; then chosen+=("$entry"); fi; done
  done
}

start() {
  select_services "$@"
  ensure_personal
  for entry in "${chosen[@]}"; do
    local name=${entry%%:*} port=${entry##*:}
    local bin="$root/bin/$name" pidf="$run/$name.pid"
    [[ -x "$bin" ]] || { echo "services.sh: $bin is missing; run 'make build'" >&2; exit 1; }
    if alive "$pidf" "$bin"; then
      if [[ "$(readlink "/proc/$(cat "$pidf")/exe" 2>/dev/null)" == *" (deleted)" ]]; then
        echo "$name already running (pid $(cat "$pidf")) an older build of $bin: scripts/services.sh restart $name"
      else
        echo "$name already running (pid $(cat "$pidf"))"
      fi
      continue
    fi
    local extra
    read -r -a extra <<<"$(service_env "$name")"
    env ORDERSTREAM_ADMIN_ADDR="127.0.0.1:$port" "${extra[@]}" setsid "$bin" >>"$run/$name.log" 2>&1 < /dev/null &
    echo $! > "$pidf"
    printf '%-32s pid %-7s admin http://127.0.0.1:%s  log %s%s\n' "$name" "$!" "$port" "${run#"$root"/}/$name.log" "${extra[*]:+  (${extra[*]})}"
    # The relay creates the topics (with their partition count) before it
    # is ready; the others start only then.
    if [[ "$name" == cdc-relay ]]; then wait_ready "$entry"; fi
  done
  wait_ready "${chosen[@]}"
  echo "admin token (projectors' POST /rebuild, every service's /debug/pprof/): $ADMIN_TOKEN (ADMIN_TOKEN; default orderstream-local-admin-token)"
}

wait_ready() { # name:port ...
  local deadline=$((SECONDS + READY_TIMEOUT))
  for entry in "$@"; do
    local name=${entry%%:*} port=${entry##*:}
    until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
      if ! alive "$run/$name.pid" "$root/bin/$name"; then
        echo "services.sh: $name exited; last lines of its log:" >&2
        tail -n 30 "$run/$name.log" >&2
        exit 1
      fi
      if (( SECONDS > deadline )); then
        echo "services.sh: $name not ready after ${READY_TIMEOUT}s:" >&2
        curl -sS "http://127.0.0.1:$port/readyz" >&2 || true
        exit 1
      fi
      sleep 0.5
    done
    echo "$name ready"
  done
}

stop() {
  local pids=()
  select_services "$@"
  for entry in "${chosen[@]}"; do
    local name=${entry%%:*} pidf="$run/${entry%%:*}.pid"
    if alive "$pidf" "$root/bin/$name"; then
      kill -TERM "$(cat "$pidf")"
      pids+=("$name:$(cat "$pidf")")
    else
      rm -f "$pidf"
    fi
  done
  local deadline=$((SECONDS + STOP_TIMEOUT))
  for p in "${pids[@]+"${pids[@]}"}"; do
    local name=${p%%:*} pid=${p##*:}
    while kill -0 "$pid" 2>/dev/null; do
      if (( SECONDS > deadline )); then
        echo "services.sh: $name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
    rm -f "$run/$name.pid"
    echo "$name stopped"
  done
}

status() {
  local rc=0
  select_services "$@"
  for entry in "${chosen[@]}"; do
    local name=${entry%%:*} port=${entry##*:}
    if alive "$run/$name.pid" "$root/bin/$name"; then
      local ready
      ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
      printf '%-32s running (pid %s), readyz %s\n' "$name" "$(cat "$run/$name.pid")" "$ready"
    else
      printf '%-32s stopped\n' "$name"
      rc=1
    fi
  done
  return $rc
}

cmd=${1:-}
shift || true
case "$cmd" in
  start) start "$@" ;;
  stop) stop "$@" ;;
  restart) stop "$@"; start "$@" ;;
  status) status "$@" ;;
  wait) select_services "$@"; wait_ready "${chosen[@]}" ;;
  *) echo "usage: $0 start|stop|restart|status|wait [name...]" >&2; exit 2 ;;
esac
