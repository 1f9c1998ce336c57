package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderstream/orderstream/pkg/httpapi/httpapitest"
)

// Every route is documented in openapi.json and every documented route
// exists, with the same methods.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	httpapitest.RequireOpenAPIMatchesRoutes(t, openAPI, (&api{}).routes)
}

// Every $ref points at a component that exists.
func TestOpenAPIRefsResolve(t *testing.T) {
	httpapitest.RequireOpenAPIRefsResolve(t, openAPI)
}

// A method a path does not document is 405 with the documented methods in
// Allow, for fixed paths beside /v1/dlq/{id} too (DELETE /v1/dlq/stats
// was taken for a purge of the id "stats" and answered 401).
func TestUndocumentedMethodsNotAllowed(t *testing.T) {
	a, err := newAPI(nil, nil, defaultConfig().DLQ, testToken, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	h, err := newHandler(a, zerolog.Nop(), prometheus.NewRegistry(), noop.NewTracerProvider())
	require.NoError(t, err)
	httpapitest.RequireUndocumentedMethodsNotAllowed(t, openAPI, h)
}
