// Package httpapitest holds test helpers for the services that serve an API
// with package httpapi.
package httpapitest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/httpapi"
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
	require.NoError(t, chi.Walk(r, func(method, route string, h http.Handler, _ ...func(http.Handler) http.Handler) error {
		if _, ok := h.(httpapi.NotAllowedHandler); !ok {
			served[method+" "+route] = true
		}
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

// probeMethods are the methods tried at every documented path.
var probeMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// RequireUndocumentedMethodsNotAllowed sends every method the document does
// not list for a path (path parameters filled with a UUID) to handler and
// asserts 405 problem JSON with an Allow header naming exactly the
// documented methods. It catches a fixed path shadowed by a sibling
// parameter route ("/v1/dlq/stats" answered by "/v1/dlq/{id}").
func RequireUndocumentedMethodsNotAllowed(t testing.TB, spec []byte, handler http.Handler) {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(spec, &doc))
	param := regexp.MustCompile(`\{[^}]+\}`)
	for path, ops := range doc.Paths {
		var allowed []string
		for _, m := range probeMethods {
			if _, ok := ops[strings.ToLower(m)]; ok {
				allowed = append(allowed, m)
			}
		}
		url := param.ReplaceAllString(path, "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11")
		for _, m := range probeMethods {
			if slices.Contains(allowed, m) {
				continue
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, httptest.NewRequest(m, url, nil))
			require.Equal(t, http.StatusMethodNotAllowed, rec.Code, "%s %s: %s", m, url, rec.Body.String())
			require.Equal(t, strings.Join(allowed, ", "), rec.Header().Get("Allow"), "Allow of %s %s", m, url)
			require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), "%s %s", m, url)
		}
	}
}
