#!/usr/bin/env bash
# Installs the pinned Go tools the checks use into .cache/bin, once per
# version. Go itself must be on PATH (the project needs Go 1.26).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.cache/bin"
mkdir -p "$bin"

command -v go >/dev/null || { echo "tools.sh: Go is not on PATH; install Go 1.26 (https://go.dev/dl/)" >&2; exit 1; }

tools=(
  "gotest.tools/gotestsum@v1.13.0"
  "honnef.co/go/tools/cmd/staticcheck@v0.8.2"
  "github.com/bufbuild/buf/cmd/buf@v1.75.0"
  "google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12"
)
for t in "${tools[@]}"; do
  name=$(basename "${t%@*}")
  stamp="$bin/.$name.version"
  if [[ -x "$bin/$name" && "$(cat "$stamp" 2>/dev/null)" == "$t" ]]; then
    continue
  fi
  echo "installing $t"
  (cd "$root" && GOWORK=off GOBIN="$bin" go install "$t")
  echo "$t" > "$stamp"
done
