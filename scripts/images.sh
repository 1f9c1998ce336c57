#!/usr/bin/env bash
# Builds every service image with ko as an OCI tarball, offline:
# .cache/images/<service>.tar (the image orderstream/<service>:latest, for
# linux/amd64 unless KO_PLATFORM says otherwise). The base image is built
# from this repository into ko's local cache first (k8s/images/baseimage);
# .ko.yaml names it by digest, so nothing is pulled. `docker load -i` or
# `kind load image-archive` take the tarballs as they are.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/install-k8s-tools.sh" ko
ko="$root/.cache/bin/ko"
out="$root/.cache/images"
mkdir -p "$out"

# The base: written into ko's cache, and refused if .ko.yaml or
# skaffold.yaml name another digest.
go run ./k8s/images/cmd/baseimage -layout .cache/ko/img -check .ko.yaml -check skaffold.yaml >/dev/null

export KOCACHE="$root/.cache/ko" KO_DOCKER_REPO=orderstream
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
services=()
for d in services/*/; do
  [[ -f "$d/main.go" ]] && services+=("$(basename "$d")")
done
for s in "${services[@]}"; do
  start=$SECONDS
  tar="$out/$s.tar"
  rm -f "$tar"
  # -B: orderstream/<service>; the user is the base's, set again so that
  # no base can make it root.
  if ! "$ko" build --push=false --tarball="$tar" -B --sbom=none \
      --image-user=65532:65532 --platform="${KO_PLATFORM:-linux/amd64}" \
      "./services/$s" >/dev/null 2>"$out/$s.log"; then
    cat "$out/$s.log" >&2
    rm -f "$tar"
    echo "images: building $s failed" >&2
    exit 1
  fi
  echo "built $tar ($(du -h "$tar" | cut -f1), $((SECONDS - start))s)"
done
