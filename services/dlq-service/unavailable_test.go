package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderstream/orderstream/pkg/cql/unavailabletest"
	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// TestDatabaseGoneIs503: the DLQ API on a session whose only node has gone
// (a proxy in front of the shared Cassandra, cut) answers 503 with
// Retry-After and code unavailable, never 500.
func TestDatabaseGoneIs503(t *testing.T) {
	_, c := stacktest.PrivateKeyspace(t, "dlq_")
	proxy := unavailabletest.ProxyTo(t, c.Hosts[0], c.Port)
	session := unavailabletest.Session(t, proxy, c.Keyspace)
	reg := prometheus.NewRegistry()
	events, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	a, err := newAPI(deadletter.NewStore(session, c.Keyspace), events, testConfig().DLQ, testToken, zerolog.Nop(), reg)
	require.NoError(t, err)
	h, err := newHandler(a, zerolog.Nop(), reg, noop.NewTracerProvider())
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	get := func(path string) *http.Response {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	require.Equal(t, http.StatusOK, get("/v1/dlq").StatusCode)
	proxy.Cut()
	for range 3 {
		for _, path := range []string{"/v1/dlq", "/v1/dlq/stats", "/v1/dlq/7b3f0e1a-5a0c-11f0-8000-0242ac120002"} {
			resp := get(path)
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, path)
			require.NotEmpty(t, resp.Header.Get("Retry-After"), path)
		}
	}
}
