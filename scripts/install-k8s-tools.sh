#!/usr/bin/env bash
# Installs the tools of the Kubernetes delivery checks (make images,
# make check-deploy) into .cache/bin, once per version:
#   ko        from the Go module proxy;
#   skaffold  built from source through a wrapper module (the Go module
#             proxy serves skaffold's source, not its release binaries; its
#             own go.mod has replace directives that a plain `go install`
#             refuses, so the wrapper repeats them);
#   promtool  from Debian's prometheus package (apt-get, sudo if not root);
#   helm      through scripts/install-helm.sh (skaffold render runs it).
# With arguments, only the named tools: `install-k8s-tools.sh ko` is what
# `make images` needs. Go itself must be on PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.cache/bin"
mkdir -p "$bin"

command -v go >/dev/null || { echo "install-k8s-tools.sh: Go is not on PATH; install Go 1.26 (https://go.dev/dl/)" >&2; exit 1; }

ko_version=v0.19.1
skaffold_version=v2.16.1

# fresh NAME SPEC: true when .cache/bin/NAME exists, stamped with SPEC.
fresh() { [[ -x "$bin/$1" && "$(cat "$bin/.$1.version" 2>/dev/null)" == "$2" ]]; }
stamp() { echo "$2" > "$bin/.$1.version"; }

tools=("$@")
wanted() { [[ ${#tools[@]} -eq 0 || " ${tools[*]} " == *" $1 "* ]]; }

spec="github.com/google/ko@$ko_version"
if wanted ko && ! fresh ko "$spec"; then
  echo "installing $spec"
  (cd "$root" && GOWORK=off GOBIN="$bin" go install "$spec")
  stamp ko "$spec"
fi

spec="github.com/GoogleContainerTools/skaffold/v2@$skaffold_version"
if wanted skaffold && ! fresh skaffold "$spec"; then
  echo "building $spec (several minutes on a cold module and build cache)"
  wrap="$root/.cache/skaffold-wrapper"
  rm -rf "$wrap" && mkdir -p "$wrap"
  # The exclude and replace directives are copied from skaffold's own go.mod
  # at this version; update them together with skaffold_version.
  cat > "$wrap/go.mod" <<EOF
module orderstream.invalid/skaffold-wrapper

go 1.24.1

require github.com/GoogleContainerTools/skaffold/v2 $skaffold_version

exclude github.com/karrick/godirwalk v1.17.0

replace github.com/alessio/shellescape => github.com/alessio/shellescape v1.4.2

replace github.com/imdario/mergo => github.com/imdario/mergo v0.3.16

replace github.com/docker/docker => github.com/docker/docker v27.5.1+incompatible

replace github.com/docker/cli => github.com/docker/cli v27.5.1+incompatible

replace github.com/spf13/viper => github.com/spf13/viper v1.19.0

replace github.com/buildpacks/lifecycle => github.com/buildpacks/lifecycle v0.20.5
EOF
  # -mod=mod resolves the rest of the graph from skaffold's go.mod (the same
  # versions its release uses) and checks every module against the checksum
  # database.
  (cd "$wrap" && GOWORK=off GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$skaffold_version" \
    -o "$bin/skaffold" github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold)
  stamp skaffold "$spec"
fi

if wanted helm; then
  "$root/scripts/install-helm.sh"
fi

if wanted promtool && ! command -v promtool >/dev/null; then
  echo "installing promtool (Debian package prometheus)"
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends prometheus; then
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends prometheus
  fi
fi
