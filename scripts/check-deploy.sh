#!/usr/bin/env bash
# The checks of the Kubernetes delivery (make check-deploy), all offline:
#   1. the tools (ko, helm, promtool, and skaffold unless
#      CHECK_DEPLOY_SKAFFOLD=0: scripts/install-k8s-tools.sh);
#   2. every service image built with ko (scripts/images.sh), and each
#      image's binary, taken out of the tarball, run with --help as the
#      image's non-root user would (k8s/images/cmd/imagecheck);
#   3. skaffold diagnose --yaml-only and skaffold render --offline=true
#      --digest-source=tag of the umbrella chart, for each profile, with every
#      service's image in the output (skipped with CHECK_DEPLOY_SKAFFOLD=0:
#      make test leaves skaffold to make test-cluster, which builds it and
#      runs it against a real cluster);
#   4. the dashboards are current, and the alert rules pass promtool's check
#      and unit tests;
#   5. go test of k8s/observability (every dashboard and rule query against
#      the metrics the services register; with the local stack up, that
#      registered.json is what the services really register) and k8s/images.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.cache/bin:$PATH"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

step() { echo; echo "== $*"; }

skaffold=${CHECK_DEPLOY_SKAFFOLD:-1}

step "tools"
if [[ "$skaffold" == 0 ]]; then
  scripts/install-k8s-tools.sh ko helm promtool
else
  scripts/install-k8s-tools.sh
fi

step "images"
scripts/images.sh
go run ./k8s/images/cmd/imagecheck .cache/images/*.tar

if [[ "$skaffold" != 0 ]]; then
  step "skaffold"
  # A home of its own, so that skaffold reads only this global config: no
  # update check, no survey or metrics prompt (skaffold answers its own
  # metrics prompt with "yes" in the user's config), nothing sent anywhere.
  home="$root/.cache/skaffold/home"
  mkdir -p "$home/.skaffold"
  cat > "$home/.skaffold/config" <<'EOF'
global:
  update-check: false
  collect-metrics: false
  survey:
    disable-prompt: true
EOF
  sk=(env HOME="$home" SKAFFOLD_UPDATE_CHECK=false skaffold)
  scripts/helm-deps.sh
  "${sk[@]}" diagnose --yaml-only >/dev/null
  images=$(sed -n 's/^ *- image: \(orderstream\/[a-z0-9-]*\)$/\1/p' skaffold.yaml)
  for profile in "" dev prod; do
    out=".cache/skaffold/render${profile:+-$profile}.yaml"
    "${sk[@]}" diagnose --yaml-only ${profile:+-p "$profile"} >/dev/null
    "${sk[@]}" render --offline=true --digest-source=tag ${profile:+-p "$profile"} --output "$out" >/dev/null
    for image in $images; do
      grep -q "image: $image:" "$out" || { echo "check-deploy: skaffold render${profile:+ -p $profile} has no $image image" >&2; exit 1; }
    done
    echo "skaffold render ${profile:-default}: $(grep -c '^kind:' "$out") objects, $(echo "$images" | wc -w) images -> $out"
  done
fi

step "dashboards and alert rules"
go run ./k8s/observability/cmd/dashboards -check
promtool check rules charts/orderstream/rules/*.yaml
promtool test rules k8s/observability/rules/testdata/*.test.yaml

# make test runs these with every other module's tests.
if [[ "${CHECK_DEPLOY_GO_TEST:-1}" != 0 ]]; then
  step "go test ./k8s/observability/... ./k8s/images/..."
  go test -count=1 ./k8s/observability/... ./k8s/images/...
fi
