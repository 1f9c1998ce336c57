#!/usr/bin/env bash
# Fails when a committed generated file is stale: every module's go.mod and
# go.sum must be what `go mod tidy` makes of them, and pkg/gen what buf
# generates from proto/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for m in "$@"; do
  dir="$root/$m"
  tmp=$(mktemp -d)
  cp "$dir/go.mod" "$tmp/go.mod"
  [[ -f "$dir/go.sum" ]] && cp "$dir/go.sum" "$tmp/go.sum"
  (cd "$dir" && GOWORK=off go mod tidy)
  if ! diff -q "$tmp/go.mod" "$dir/go.mod" >/dev/null || { [[ -f "$dir/go.sum" ]] && ! diff -q "$tmp/go.sum" "$dir/go.sum" >/dev/null; }; then
    echo "check-generated: $m/go.mod or go.sum is not tidy; run 'make tidy' and commit the result" >&2
    diff -u "$tmp/go.mod" "$dir/go.mod" >&2 || true
    status=1
  fi
  # Put the files back as they were: a check changes nothing.
  cp "$tmp/go.mod" "$dir/go.mod"
  if [[ -f "$tmp/go.sum" ]]; then cp "$tmp/go.sum" "$dir/go.sum"; else rm -f "$dir/go.sum"; fi
  rm -rf "$tmp"
done

# The Go code generated from proto/ must be what buf makes of it now.
if [[ -d "$root/proto" ]]; then
  tmp=$(mktemp -d)
  (cd "$root/proto" && buf generate -o "$tmp/proto")
  if ! diff -r "$tmp/pkg/gen" "$root/pkg/gen" >&2; then
    echo "check-generated: pkg/gen is stale; run 'make generate' and commit the result" >&2
    status=1
  fi
  rm -rf "$tmp"
fi
exit $status
