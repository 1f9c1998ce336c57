#!/usr/bin/env bash
# Builds every service image with ko and pushes it to the local cluster's
# registry as <registry>/orderstream/<service>:<tag> for each tag given
# (default: dev), the way images reach a user's cluster:
#   scripts/cluster/push-images.sh t1 t2
# The base image is orderstream's own (.ko.yaml), written into ko's local
# cache first, so nothing is pulled. The registry is the cluster's
# (scripts/cluster.sh up), or $ORDERSTREAM_CLUSTER_REGISTRY.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
registry=${ORDERSTREAM_CLUSTER_REGISTRY:-10.243.0.2:5000}
tags=$(IFS=,; echo "${*:-dev}")
"$root/scripts/install-k8s-tools.sh" ko
go run ./k8s/images/cmd/baseimage -layout .cache/ko/img -check .ko.yaml -check skaffold.yaml >/dev/null
export KOCACHE="$root/.cache/ko" KO_DOCKER_REPO="$registry/orderstream"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
paths=()
for d in services/*/; do
  [[ -f "$d/main.go" ]] && paths+=("./${d%/}")
done
start=$SECONDS
# -B: <repo>/<service>; the user is the base's, set again so that no base
# can make it root.
"$root/.cache/bin/ko" build -B --tags "$tags" --sbom=none --image-user=65532:65532 \
  --platform=linux/amd64 "${paths[@]}" >/dev/null
echo "pushed ${#paths[@]} images as $KO_DOCKER_REPO/<service>:{$tags} in $((SECONDS - start)) s"
