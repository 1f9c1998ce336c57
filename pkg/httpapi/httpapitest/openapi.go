// Package httpapitest holds test helpers for the services that serve an API
// with package httpapi.
package httpapitest

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"
)

// RequireOpenAPIMatchesRoutes asserts that spec is an OpenAPI 3.1.0
// document, that every route routes installs is documented in it and that
// every documented route exists, with the same methods.
func RequireOpenAPIMatchesRoutes(t testing.TB, spec []byte, routes func(chi.Router)) {
	t.Helper()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(spec, &doc))
	require.Equal(t, "3.1.0", doc.OpenAPI)

	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	r := chi.NewRouter()
	routes(r)
	served := map[string]bool{}
	require.NoError(t, chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served[method+" "+route] = true
		return nil
	}))
	require.Equal(t, keys(documented), keys(served))
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// RequireOpenAPIRefsResolve asserts that every $ref of spec points at a
// component that exists.
func RequireOpenAPIRefsResolve(t testing.TB, spec []byte) {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(spec, &doc))
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				var node any = doc
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, _ := node.(map[string]any)
					node = m[part]
				}
				require.NotNil(t, node, "unresolved %s", ref)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
}
