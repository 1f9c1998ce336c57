#!/usr/bin/env bash
# Installs the small tools of the local cluster into .cache/cluster/bin,
# once per version, from the Go module proxy:
#   registry, crane     github.com/google/go-containerregistry (the local
#                       image registry ko and skaffold push to and
#                       containerd pulls from);
#   prometheus          github.com/prometheus/prometheus (Debian's build
#                       has no Kubernetes service discovery); the API
#                       only, without the web UI's assets;
#   coredns             github.com/coredns/coredns, the cluster's DNS, built
#                       from the wrapper module scripts/cluster/coredns
#                       (only the plugins its Corefile uses);
#   kube-state-metrics  k8s.io/kube-state-metrics/v2 (kube_pod_* series for
#                       the dashboards' "Pod restarts");
#   controller-gen      sigs.k8s.io/controller-tools, to generate the
#                       ServiceMonitor and PrometheusRule CRDs from
#                       prometheus-operator's API types (the main
#                       prometheus-operator module is not served).
# Then the CRD manifests into .cache/cluster/crds.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/.cache/cluster/bin"
mkdir -p "$bin"
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0

ggcr_version=v0.22.1
controller_tools_version=v0.23.0
promop_version=v0.95.2
gateway_api_version=v1.6.3
prometheus_version=v0.316.0
ksm_version=v2.20.0

fresh() { [[ -x "$bin/$1" && "$(cat "$bin/.$1.version" 2>/dev/null)" == "$2" ]]; }
stamp() { echo "$2" > "$bin/.$1.version"; }

for tool in registry crane; do
  spec="github.com/google/go-containerregistry/cmd/$tool@$ggcr_version"
  if ! fresh "$tool" "$spec"; then
    echo "installing $spec"
    (cd "$root" && GOBIN="$bin" go install -trimpath -ldflags "-s -w" "$spec")
    stamp "$tool" "$spec"
  fi
done

spec="github.com/prometheus/prometheus/cmd/prometheus@$prometheus_version"
if ! fresh prometheus "$spec"; then
  echo "installing $spec (several minutes the first time)"
  (cd "$root" && GOBIN="$bin" go install -trimpath -ldflags "-s -w" "$spec")
  stamp prometheus "$spec"
fi

# CoreDNS: its version is the wrapper's requirement; the stamp also covers
# the wrapper's files (a plugin added rebuilds it).
coredns_src="$root/scripts/cluster/coredns"
spec="coredns@$(sed -n 's#^require github.com/coredns/coredns ##p' "$coredns_src/go.mod") $(cat "$coredns_src/go.mod" "$coredns_src/go.sum" "$coredns_src/main.go" | sha256sum | cut -c1-12)"
if ! fresh coredns "$spec"; then
  echo "building $spec (about 1 min the first time)"
  (cd "$coredns_src" && go build -trimpath -ldflags "-s -w" -o "$bin/coredns" .)
  stamp coredns "$spec"
fi

spec="k8s.io/kube-state-metrics/v2@$ksm_version"
if ! fresh kube-state-metrics "$spec"; then
  echo "installing $spec (about 2 min the first time)"
  (cd "$root" && GOBIN="$bin" go install -trimpath \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${ksm_version#v}" "$spec")
  stamp kube-state-metrics "$spec"
fi

spec="sigs.k8s.io/controller-tools/cmd/controller-gen@$controller_tools_version"
if ! fresh controller-gen "$spec"; then
  echo "installing $spec"
  (cd "$root" && GOBIN="$bin" go install -trimpath -ldflags "-s -w" "$spec")
  stamp controller-gen "$spec"
fi

crds="$root/.cache/cluster/crds"
want="gateway-api@$gateway_api_version prometheus-operator@$promop_version controller-gen@$controller_tools_version"
if [[ "$(cat "$crds/.version" 2>/dev/null)" != "$want" ]]; then
  echo "generating CRDs ($want)"
  rm -rf "$crds" && mkdir -p "$crds"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"\n' >"$tmp/tools.go"
  (cd "$tmp" && go mod init orderstream.invalid/crds >/dev/null 2>&1 \
    && go mod download "sigs.k8s.io/gateway-api@$gateway_api_version" \
    && go get "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring@$promop_version" \
    && GOFLAGS=-mod=mod go mod tidy)
  gw=$(cd "$tmp" && go mod download -json "sigs.k8s.io/gateway-api@$gateway_api_version" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  cp "$gw"/config/crd/standard/*.yaml "$crds/"
  chmod u+w "$crds"/*.yaml
  apis=$(cd "$tmp" && go list -m -json "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$tmp/monitoring-crds"
  # controller-gen loads the packages from a module that requires them.
  (cd "$tmp" && "$bin/controller-gen" crd:crdVersions=v1,maxDescLen=0 \
    paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
    output:crd:artifacts:config="$tmp/monitoring-crds")
  for kind in servicemonitors prometheusrules; do
    cp "$tmp"/monitoring-crds/*_"$kind".yaml "$crds/"
  done
  echo "$want" > "$crds/.version"
fi
