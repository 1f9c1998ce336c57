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

// A method a path does not document is 405 with the documented methods in
// Allow.
func TestUndocumentedMethodsNotAllowed(t *testing.T) {
	h, err := newHandler(nil, defaultConfig(), zerolog.Nop(), prometheus.NewRegistry(), noop.NewTracerProvider(), nil)
	require.NoError(t, err)
	httpapitest.RequireUndocumentedMethodsNotAllowed(t, openAPI, h)
}
