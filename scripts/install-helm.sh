#!/usr/bin/env bash
# Installs the pinned Helm 3 into .cache/bin, once per version. Helm is built
# from source with the Go module proxy because its release tarballs are not
# reachable from every machine that runs the checks; the link flags are the
# ones of Helm's own release build, so that `helm version` names the release
# and `helm template`/`helm lint` assume the Kubernetes version Helm was
# released against (1.37), not Helm's fallback of 1.20.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.cache/bin"
mkdir -p "$bin"

version=v3.22.0
k8s_major=1  # Helm's release build: k8s.io/client-go v0.37 -> Kubernetes 1.37
k8s_minor=37
pin="helm.sh/helm/v3/cmd/helm@$version k8s=$k8s_major.$k8s_minor"
stamp="$bin/.helm.version"

if [[ -x "$bin/helm" && "$(cat "$stamp" 2>/dev/null)" == "$pin" ]]; then
  exit 0
fi
command -v go >/dev/null || { echo "install-helm.sh: Go is not on PATH; install Go 1.26 (https://go.dev/dl/)" >&2; exit 1; }

echo "installing helm $version (built from source; a few minutes the first time)"
ldflags="-w -s"
ldflags+=" -X helm.sh/helm/v3/internal/version.version=$version"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=$k8s_major -X $pkg.k8sVersionMinor=$k8s_minor"
done
(cd "$root" && GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOBIN="$bin" \
  go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$version")
echo "$pin" > "$stamp"
"$bin/helm" version --short
