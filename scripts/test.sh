#!/usr/bin/env bash
# Runs every module's tests with gotestsum and, under CI=true, fails when
# any test was skipped: integration tests must run there, never skip.
# Usage: scripts/test.sh TIMEOUT [go test flags...] PACKAGES...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
timeout=$1; shift
mkdir -p "$root/.run"
json="$root/.run/test.json"

gotestsum --format pkgname --jsonfile "$json" -- -count=1 -p 2 -timeout "$timeout" "$@"

skipped=$(grep '"Action":"skip"' "$json" | grep '"Test"' | sed -E 's/.*"Package":"([^"]+)".*"Test":"([^"]+)".*/\1 \2/' || true)
if [[ -n "$skipped" ]]; then
  echo "skipped tests:"
  echo "$skipped" | sed 's/^/  /'
  if [[ "${CI:-}" == "true" ]]; then
    echo "test.sh: tests were skipped under CI=true; integration tests must run" >&2
    exit 1
  fi
fi
