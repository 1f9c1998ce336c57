#!/usr/bin/env bash
# Builds Traefik v3 (the local cluster's Gateway API and Ingress controller)
# from the Go module proxy into .cache/cluster/bin/traefik, once per version.
#
# `go install github.com/traefik/traefik/v3/cmd/traefik@v` is refused
# (Traefik's go.mod has replace directives), so a wrapper module repeats
# them, with three local stand-ins for what the proxy does not serve:
#   github.com/traefik/traefik/dynamic/ext   a nested directory missing from
#       the module zip; empty structs, as in Traefik's open-source tree;
#   github.com/abbot/go-http-auth            Traefik's fork
#       (containous/go-http-auth) is not served: upstream v0.4.0 plus the two
#       functions the fork adds and Traefik calls, DigestAuth.RequireAuthStale
#       and CheckSecret;
#   github.com/go-acme/lego/v5               its ACME DNS-01 providers import
#       cloud SDKs the proxy refuses: a copy whose provider lookup returns an
#       error.
# So this build has no ACME DNS-01 and no stale-nonce digest auth; the
# local cluster uses neither. About 4 min with empty Go caches.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=${TRAEFIK_VERSION:-v3.7.13}
lego_version=v5.4.1
auth_version=v0.4.0
bin="$root/.cache/cluster/bin"
spec="traefik@$version lego@$lego_version go-http-auth@$auth_version stand-ins=2"
if [[ -x "$bin/traefik" && "$(cat "$bin/.traefik.version" 2>/dev/null)" == "$spec" ]]; then
  exit 0
fi
echo "building Traefik $version (about 4 min the first time)"
start=$(date +%s)
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0
wrap="$root/.cache/cluster/traefik-wrapper"
rm -rf "$wrap" && mkdir -p "$wrap" "$bin"
dir_of() { (cd "$wrap" && go mod download -json "$1" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p'); }
printf 'module orderstream.invalid/traefik-wrapper\n\ngo 1.26.0\n' > "$wrap/go.mod"

traefik=$(dir_of "github.com/traefik/traefik/v3@$version")
traefik_mod=$(cd "$wrap" && go mod download -json "github.com/traefik/traefik/v3@$version" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')

# 1. github.com/traefik/traefik/dynamic/ext: the types http_config.go embeds.
mkdir -p "$wrap/ext"
printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24\n' > "$wrap/ext/go.mod"
cat > "$wrap/ext/ext.go" <<'GO'
// Package ext holds the extension points of Traefik's dynamic configuration;
// empty in the open-source build.
package ext

// HTTP extends dynamic.HTTPConfiguration.
type HTTP struct{}

// Router extends dynamic.Router.
type Router struct{}
GO

# 2. github.com/abbot/go-http-auth plus RequireAuthStale.
auth=$(dir_of "github.com/abbot/go-http-auth@$auth_version")
mkdir -p "$wrap/go-http-auth"
cp "$auth"/*.go "$auth/LICENSE" "$wrap/go-http-auth/"
rm -f "$wrap"/go-http-auth/*_test.go
chmod -R u+w "$wrap/go-http-auth"
cat > "$wrap/go-http-auth/fork.go" <<'GO'
package auth

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CheckSecret tells whether password matches secret, an htpasswd entry
// (MD5 crypt, {SHA} or bcrypt), as BasicAuth.CheckAuth compares them
// (Traefik's fork exports this).
func CheckSecret(password, secret string) bool {
	compare := compareFuncs[0].compare
	for _, cmp := range compareFuncs[1:] {
		if strings.HasPrefix(secret, cmp.prefix) {
			compare = cmp.compare
			break
		}
	}
	return compare([]byte(secret), []byte(password)) == nil
}

// RequireAuthStale is RequireAuth with stale=true: the client's nonce was
// valid but is no longer, so it may retry with the new one (Traefik's fork
// adds this method).
func (a *DigestAuth) RequireAuthStale(w http.ResponseWriter, r *http.Request) {
	if len(a.clients) > a.ClientCacheSize+a.ClientCacheTolerance {
		a.Purge(a.ClientCacheTolerance * 2)
	}
	nonce := RandomKey()
	a.clients[nonce] = &digest_client{nc: 0, last_seen: time.Now().UnixNano()}
	w.Header().Set(contentType, a.Headers.V().UnauthContentType)
	w.Header().Set(a.Headers.V().Authenticate,
		fmt.Sprintf(`Digest realm="%s", nonce="%s", opaque="%s", algorithm="MD5", qop="auth", stale=true`,
			a.Realm, nonce, a.Opaque))
	w.WriteHeader(a.Headers.V().UnauthCode)
	_, _ = w.Write([]byte(a.Headers.V().UnauthResponse))
}
GO
(cd "$wrap/go-http-auth" && printf 'module github.com/abbot/go-http-auth\n\ngo 1.24\n' > go.mod && go mod tidy)

# 3. lego v5 without its DNS-01 providers.
lego=$(dir_of "github.com/go-acme/lego/v5@$lego_version")
cp -r "$lego" "$wrap/lego"
chmod -R u+w "$wrap/lego"
rm -rf "$wrap/lego/providers/dns" "$wrap/lego/cmd" "$wrap/lego/e2e" "$wrap/lego/internal/dns/providers" 2>/dev/null || true
mkdir -p "$wrap/lego/providers/dns"
cat > "$wrap/lego/providers/dns/dns_providers.go" <<'GO'
// Package dns is a stand-in: this build of lego has no DNS-01 providers.
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v5/challenge"
)

// NewDNSChallengeProviderByName always fails: no DNS provider is built in.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	return nil, fmt.Errorf("dns provider %q: ACME DNS-01 providers are not part of this build", name)
}
GO
(cd "$wrap/lego" && go mod tidy -e >/dev/null 2>&1 || true)

# The wrapper: Traefik's own replace and exclude directives plus the stand-ins.
cat >> "$wrap/go.mod" <<GOMOD

require github.com/traefik/traefik/v3 $version

replace github.com/traefik/traefik/dynamic/ext => ./ext

replace github.com/abbot/go-http-auth => ./go-http-auth

replace github.com/go-acme/lego/v5 => ./lego

$(sed -n 's#^\s*github.com/gorilla/mux => \(.*\)#replace github.com/gorilla/mux => \1#p' "$traefik_mod")

$(grep '^exclude ' "$traefik_mod")
GOMOD
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/traefik/traefik/v3/cmd/traefik"\n' > "$wrap/tools.go"
(cd "$wrap" && GOFLAGS=-mod=mod go mod tidy)
(cd "$wrap" && go build -trimpath \
  -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$version" \
  -o "$bin/traefik" github.com/traefik/traefik/v3/cmd/traefik)
echo "$spec" > "$bin/.traefik.version"
echo "Traefik $version built in $(( $(date +%s) - start )) s"
