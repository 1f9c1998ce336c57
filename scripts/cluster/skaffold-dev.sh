#!/usr/bin/env bash
# skaffold against the local cluster (make cluster-up), on a copy of the
# working tree so that the edit below never touches it:
#   1. `skaffold run -p local`: ko builds every image, pushes it to the
#      cluster's registry, Helm deploys the umbrella chart; a read through
#      the Gateway answers;
#   2. `skaffold dev -p local`, then a one-line change to query-service (the
#      text of a problem it answers): prints the time from the edit to the
#      new text served through the Gateway (rebuild, push, rollout, ready).
# Uninstalls the release at the end. Exits non-zero if either step fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
eval "$("$root/scripts/cluster.sh" env)"
"$root/scripts/install-k8s-tools.sh" ko helm skaffold
gateway=${ORDERSTREAM_CLUSTER_GATEWAY:-http://10.243.0.2:8000}
url="$gateway/v1/orders?status=BOGUS"
work=$(mktemp -d /tmp/orderstream-skaffold-XXXXXX)
dev_pid=""
cleanup() {
  [[ -n $dev_pid ]] && kill -INT "$dev_pid" 2>/dev/null && wait "$dev_pid" 2>/dev/null || true
  helm uninstall orderstream -n orderstream --wait >/dev/null 2>&1 || true
  kubectl -n orderstream delete job,configmap,serviceaccount -l app.kubernetes.io/name=schema-migrator >/dev/null 2>&1 || true
  kubectl -n orderstream delete service,endpointslice -l 'app.kubernetes.io/component in (external-cassandra,external-kafka)' >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# Tracked and untracked files as they are now; a tracked file deleted in
# the working tree is left out.
(cd "$root" && git ls-files -co --exclude-standard -z \
  | while IFS= read -r -d '' f; do if [[ -e $f ]]; then printf '%s\0' "$f"; fi; done \
  | xargs -0 cp --parents -t "$work")
cd "$work"
# skaffold tags images by git commit (tagPolicy gitCommit): the copy is a
# repository of its own, and the edit below makes it dirty.
git init -q && git add -A && git -c user.name=orderstream -c user.email=orderstream@invalid commit -q -m copy
# No usage data sent, no update check.
printf 'global:\n  collect-metrics: false\n  update-check: false\n  survey:\n    disable-prompt: true\n' >"$work/skaffold-global.yaml"
"$root/scripts/helm-deps.sh" "$work/charts"
export KOCACHE="$work/.cache/ko"   # where the artifacts' before-hook writes the base
skaffold=("$root/.cache/bin/skaffold" -p local --default-repo "$ORDERSTREAM_CLUSTER_REGISTRY" --kube-context orderstream-local --config "$work/skaffold-global.yaml")

t=$SECONDS
"${skaffold[@]}" run --status-check=true >"$work/run.log" 2>&1 || { tail -50 "$work/run.log"; exit 1; }
echo "skaffold-dev: skaffold run (ko build of 9 images, push, helm deploy, all ready) in $((SECONDS - t)) s"
before=$(curl -s "$url")
grep -q 'status must be one of' <<<"$before" || { echo "skaffold-dev: unexpected answer through the Gateway: $before" >&2; exit 1; }

"${skaffold[@]}" dev --trigger=polling --watch-poll-interval=1000 --cleanup=false --status-check=true >"$work/dev.log" 2>&1 &
dev_pid=$!
deadline=$((SECONDS + 900))
until grep -q 'Watching for changes' "$work/dev.log"; do
  (( SECONDS < deadline )) || { tail -50 "$work/dev.log"; echo "skaffold-dev: skaffold dev never got to watching" >&2; exit 1; }
  kill -0 "$dev_pid" || { tail -50 "$work/dev.log"; exit 1; }
  sleep 1
done
sed -i 's/status must be one of CREATED/status (edited) must be one of CREATED/' services/query-service/params.go
edit=$(date +%s.%N)
deadline=$((SECONDS + 900))
until curl -s "$url" | grep -q 'status (edited) must be one of'; do
  (( SECONDS < deadline )) || { tail -50 "$work/dev.log"; echo "skaffold-dev: the edit was never served" >&2; exit 1; }
  sleep 0.5
done
served=$(date +%s.%N)
awk -v a="$edit" -v b="$served" 'BEGIN { printf "skaffold-dev: skaffold dev edit -> serving through the Gateway in %.1f s\n", b - a }'
