#!/usr/bin/env bash
# A local OpenTelemetry Collector for `make up OTEL=1`: the distribution in
# scripts/otel/builder.yaml (OTLP receiver, batch processor, debug exporter),
# built once with the collector's builder (ocb) from the Go module proxy into
# .cache/bin/otelcol-orderstream (rebuilt when builder.yaml changes), run on
# loopback with scripts/otel/collector.yaml. Spans land in its log.
#
# Usage: scripts/otel-collector.sh build|start|stop|status
#   start  build if needed, start, wait until 127.0.0.1:4317 accepts
#   stop   SIGTERM the recorded pid (only a collector this script started)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.cache/bin"
run="$root/.run/otel"
builder_version=v0.165.0
manifest="$root/scripts/otel/builder.yaml"
config="$root/scripts/otel/collector.yaml"
collector="$bin/otelcol-orderstream"
pidf="$run/collector.pid"
log="$run/collector.log"
mkdir -p "$bin" "$run"

build() {
  local stamp spec
  spec="builder@$builder_version $(sha256sum "$manifest" | cut -c1-16)"
  stamp="$bin/.otelcol-orderstream.version"
  if [[ -x "$collector" && "$(cat "$stamp" 2>/dev/null)" == "$spec" ]]; then
    return 0
  fi
  if [[ ! -x "$bin/ocb" || "$(cat "$bin/.ocb.version" 2>/dev/null)" != "$builder_version" ]]; then
    echo "installing go.opentelemetry.io/collector/cmd/builder@$builder_version"
    (cd "$root" && GOWORK=off GOBIN="$bin" go install "go.opentelemetry.io/collector/cmd/builder@$builder_version")
    mv "$bin/builder" "$bin/ocb"
    echo "$builder_version" > "$bin/.ocb.version"
  fi
  echo "building the collector (scripts/otel/builder.yaml; a few minutes on a cold cache)"
  local out="$root/.cache/otelcol"
  rm -rf "$out" && mkdir -p "$out"
  # The output folder is this checkout's: added to the manifest here.
  sed "s|^dist:|dist:\n  output_path: $out|" "$manifest" >"$out.yaml"
  GOWORK=off "$bin/ocb" --config="$out.yaml" >"$root/.cache/otelcol.build.log" 2>&1 ||
    { tail -n 30 "$root/.cache/otelcol.build.log" >&2; echo "otel-collector.sh: build failed" >&2; exit 1; }
  cp "$out/otelcol-orderstream" "$collector"
  echo "$spec" > "$stamp"
}

alive() {
  local pid
  pid=$(cat "$pidf" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" == "$(readlink -f "$collector")" ]]
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

start() {
  if alive; then
    echo "otel-collector already running (pid $(cat "$pidf"))"
    return 0
  fi
  build
  if port_open 4317; then
    echo "otel-collector.sh: 127.0.0.1:4317 is in use by a process this script did not start" >&2
    exit 1
  fi
  setsid "$collector" --config="$config" >>"$log" 2>&1 </dev/null &
  echo $! >"$pidf"
  local deadline=$((SECONDS + 60))
  until port_open 4317; do
    if ! alive; then
      echo "otel-collector.sh: the collector exited; last lines of $log:" >&2
      tail -n 20 "$log" >&2
      rm -f "$pidf"
      exit 1
    fi
    (( SECONDS < deadline )) || { echo "otel-collector.sh: not listening on 4317 after 60 s" >&2; exit 1; }
    sleep 0.2
  done
  printf '%-32s pid %-7s otlp grpc://127.0.0.1:4317  log %s\n' otel-collector "$(cat "$pidf")" "${log#"$root"/}"
}

stop() {
  if ! alive; then
    rm -f "$pidf"
    return 0
  fi
  local pid deadline=$((SECONDS + 30))
  pid=$(cat "$pidf")
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    (( SECONDS < deadline )) || { kill -KILL "$pid" 2>/dev/null || true; break; }
    sleep 0.2
  done
  rm -f "$pidf"
  echo "otel-collector stopped"
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) if alive; then echo "otel-collector running (pid $(cat "$pidf"))"; else echo "otel-collector stopped"; exit 1; fi ;;
  *) echo "usage: $0 build|start|stop|status" >&2; exit 2 ;;
esac
