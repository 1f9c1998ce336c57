#!/usr/bin/env bash
# make test-cluster: brings the local cluster up (unless it is up already),
# runs e2e's TestCluster against it (build tag cluster) and
# scripts/cluster/skaffold-dev.sh under the shared stack lock, and takes the
# cluster down again if it brought it up (then checks the host is as before).
# Prints the time of each part. Needs the shared stack (make infra-up).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
timeout=${CLUSTER_TEST_TIMEOUT:-60m}
start=$SECONDS
ours=0
before=$(mktemp)
if ! scripts/cluster.sh status >/dev/null 2>&1; then
  scripts/cluster/host-state.sh >"$before"
  t=$SECONDS
  scripts/cluster.sh up
  ours=1
  echo "test-cluster: cluster-up (build included) in $((SECONDS - t)) s"
fi
# After cluster-down the host must be as it was before cluster-up.
cleanup() {
  local rc=$?
  if [[ $ours == 1 && -z ${KEEP_CLUSTER:-} ]]; then
    scripts/cluster.sh down
    if ! diff -u "$before" <(scripts/cluster/host-state.sh); then
      echo "test-cluster: FAIL: cluster-down left the host changed (diff above)" >&2
      rc=1
    else
      echo "test-cluster: cluster-down left the host as it was"
    fi
  fi
  rm -f "$before"
  exit $rc
}
trap cleanup EXIT
scripts/helm-deps.sh   # the umbrella chart's subcharts, as they are now
t=$SECONDS
status=0
flock -s /tmp/orderstream-stack.lock \
  go test -count=1 -tags cluster -run '^TestCluster$' -timeout "$timeout" -v ./e2e/ || status=$?
echo "test-cluster: TestCluster in $((SECONDS - t)) s"
t=$SECONDS
flock -s /tmp/orderstream-stack.lock scripts/cluster/skaffold-dev.sh || status=$?
echo "test-cluster: skaffold run and dev in $((SECONDS - t)) s"
echo "test-cluster: make test-cluster in $((SECONDS - start)) s (exit $status)"
exit $status
