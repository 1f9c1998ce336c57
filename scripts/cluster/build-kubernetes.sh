#!/usr/bin/env bash
# Builds the Kubernetes binaries of the local cluster (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kubectl) from the Go
# module proxy into .cache/cluster/k8s/bin, once per version.
#
# `go install k8s.io/kubernetes/cmd/...@v` is refused: kubernetes' go.mod
# replaces every k8s.io/* staging module with ./staging/src/...  A wrapper
# module requires k8s.io/kubernetes and replaces each of those staging
# modules with its published release (v0.<minor>.<patch>), generated from
# the downloaded go.mod.  About 17 min on 2 cores with empty Go caches,
# about 30 s warm.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=${K8S_VERSION:-v1.37.2}
staging=v0.${version#v1.}
out="$root/.cache/cluster/k8s"
bin="$out/bin"
stamp="$bin/.version"
cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

fresh=1
for c in "${cmds[@]}"; do [[ -x "$bin/$c" ]] || fresh=0; done
if [[ $fresh == 1 && "$(cat "$stamp" 2>/dev/null)" == "$version" ]]; then
  exit 0
fi
command -v go >/dev/null || { echo "build-kubernetes.sh: Go is not on PATH" >&2; exit 1; }
echo "building Kubernetes $version (about 17 min on 2 cores the first time)"
start=$(date +%s)
wrap="$out/wrapper"
rm -rf "$wrap" && mkdir -p "$wrap" "$bin"
export GOWORK=off GOFLAGS=-mod=mod
gomod=$(cd "$wrap" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
[[ -f "$gomod" ]] || { echo "build-kubernetes.sh: no go.mod for k8s.io/kubernetes@$version" >&2; exit 1; }
{
  echo "module orderstream.invalid/k8s-wrapper"
  echo
  echo "go $(sed -n 's/^go //p' "$gomod")"
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  # Every `k8s.io/x => ./staging/src/k8s.io/x` becomes `k8s.io/x => k8s.io/x v0.N.M`.
  sed -n 's#^\s*\(k8s\.io/[a-z0-9.-]*\) => \./staging/src/.*#\1#p' "$gomod" \
    | grep -v -e '^k8s.io/sample-' \
    | while read -r m; do echo "replace $m => $m $staging"; done
} > "$wrap/go.mod"
{
  echo "//go:build tools"
  echo
  echo "package tools"
  echo
  echo "import ("
  for c in "${cmds[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
  echo ")"
} > "$wrap/tools.go"
(cd "$wrap" && go mod tidy)
minor=${version#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
for c in "${cmds[@]}"; do
  echo "  $c"
  (cd "$wrap" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/$c" "k8s.io/kubernetes/cmd/$c")
done
echo "$version" > "$stamp"
echo "Kubernetes $version built in $(( $(date +%s) - start )) s"
