#!/usr/bin/env bash
# The demo `make up` ends with. Until the services accept commands (issue 4
# onwards) it shows what is up: each service's readiness checks and the
# schema the migrator applied.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

echo
echo "== orderstream is up =="
for port in 9081 9082 9083 9084 9085 9086 9087 9088; do
  body=$(curl -sS "http://127.0.0.1:$port/readyz")
  name=$(curl -sS "http://127.0.0.1:$port/metrics" | sed -nE 's/^orderstream_build_info\{service="([^"]+)".*/\1/p')
  printf '%-32s :%s  %s\n' "$name" "$port" "$body"
done
echo
echo "Admin endpoints: http://127.0.0.1:908N/{healthz,readyz,metrics} (N = 1..8)"
echo "Logs: .run/services/*.log and .run/stack/*/logs/. Stop everything with 'make down'."
