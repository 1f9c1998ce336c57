#!/usr/bin/env bash
# buf breaking against the main branch: a change to proto/ that breaks an
# event already stored or published fails `make lint`. Where main has no
# proto/ yet (the change that introduces it) there is nothing to break.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/proto"
if ! git -C "$root" rev-parse --verify -q "main:proto/buf.yaml" >/dev/null; then
  echo "buf breaking: main has no proto/ yet; nothing to compare against"
  exit 0
fi
buf breaking --against "$root/.git#branch=main,subdir=proto"
