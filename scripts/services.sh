#!/usr/bin/env bash
# Starts, stops and shows orderstream's services as local processes, built
# into bin/ by `make build`. Logs go to .run/services/<name>.log, process ids
# to .run/services/<name>.pid; stop touches only those recorded processes.
# Usage: scripts/services.sh start|stop|status|wait
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run="$root/.run/services"
mkdir -p "$run"

# name:admin-port, as in DESIGN.md "Local ports".
services=(
  command-service:9081
  query-service:9082
  dlq-service:9083
  cdc-relay:9084
  projector-order-read-model:9085
  projector-orders-by-customer:9086
  projector-orders-by-status:9087
  projector-customer-read-model:9088
)
READY_TIMEOUT=${READY_TIMEOUT:-120}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}

alive() { # pidfile binary
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" == "$2" ]]
}

start() {
  for entry in "${services[@]}"; do
    local name=${entry%%:*} port=${entry##*:}
    local bin="$root/bin/$name" pidf="$run/$name.pid"
    [[ -x "$bin" ]] || { echo "services.sh: $bin is missing; run 'make build'" >&2; exit 1; }
    if alive "$pidf" "$bin"; then
      echo "$name already running (pid $(cat "$pidf"))"
      continue
    fi
    ORDERSTREAM_ADMIN_ADDR="127.0.0.1:$port" setsid "$bin" >>"$run/$name.log" 2>&1 < /dev/null &
    echo $! > "$pidf"
    printf '%-32s pid %-7s admin http://127.0.0.1:%s  log %s\n' "$name" "$!" "$port" "${run#"$root"/}/$name.log"
    # The relay creates the topics (with their partition count) before it
    # is ready; the projectors subscribe only then, so that no topic is
    # auto-created with the broker's defaults.
    if [[ "$name" == cdc-relay ]]; then wait_ready "$entry"; fi
  done
  wait_ready "${services[@]}"
}

wait_ready() { # name:port ...
  local deadline=$((SECONDS + READY_TIMEOUT))
  for entry in "$@"; do
    local name=${entry%%:*} port=${entry##*:}
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz"; do
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
  for entry in "${services[@]}"; do
    local name=${entry%%:*} pidf="$run/${entry%%:*}.pid"
    if alive "$pidf" "$root/bin/$name"; then
      kill -TERM "$(cat "$pidf")"
      pids+=("$name:$(cat "$pidf")")
    else
      rm -f "$pidf"
    fi
  done
  local deadline=$((SECONDS + STOP_TIMEOUT))
  for p in "${pids[@]}"; do
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
  for entry in "${services[@]}"; do
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

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  wait) wait_ready "${services[@]}" ;;
  *) echo "usage: $0 start|stop|status|wait" >&2; exit 2 ;;
esac
