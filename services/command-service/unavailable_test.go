package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/cql/unavailabletest"
	"github.com/orderstream/orderstream/pkg/stacktest"
	"github.com/orderstream/orderstream/pkg/tracing"
)

// TestDatabaseUnavailableIs503: every class of database outage is a 503
// with Retry-After and code "unavailable", never a 500.
func TestDatabaseUnavailableIs503(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("reading snapshot of %s: %w", uuid.NewString(), unavailabletest.ShuttingDown{}),
		fmt.Errorf("loading: %w", gocql.ErrNoConnectionsInPool),
		fmt.Errorf("loading: %w", gocql.ErrNoConnections),
		fmt.Errorf("loading: %w", &gocql.RequestErrReadTimeout{}),
		fmt.Errorf("appending: %w", &gocql.RequestErrWriteTimeout{}),
		fmt.Errorf("appending: %w", &gocql.RequestErrUnavailable{}),
		context.DeadlineExceeded,
	} {
		p, outcome := problemFor(err)
		require.Equal(t, http.StatusServiceUnavailable, p.Status, "%v", err)
		require.Equal(t, "unavailable", p.Code, "%v", err)
		require.Equal(t, "unavailable", outcome)
	}
}

// TestDatabaseGoneOverHTTP: the command API on a session whose only node
// has gone (a proxy in front of the shared Cassandra, cut) answers 503 with
// Retry-After, with and without an Idempotency-Key.
func TestDatabaseGoneOverHTTP(t *testing.T) {
	stacktest.Session(t) // migrates the shared keyspace
	c := stacktest.RequireCQL(t)
	proxy := unavailabletest.ProxyTo(t, c.Hosts[0], c.Port)
	session := unavailabletest.Session(t, proxy, c.Keyspace)
	tp, _, err := tracing.New(context.Background(), tracing.DefaultConfig(), "command-service", "test")
	require.NoError(t, err)
	cfg := defaultConfig()
	cfg.CQL = c
	handler, err := newHandler(session, cfg, zerolog.Nop(), prometheus.NewRegistry(), tp, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	e := &env{t: t, url: srv.URL}

	id := e.registerCustomer()
	proxy.Cut()
	for i := 0; i < 5; i++ {
		for _, a := range []answer{
			e.do("POST", "/v1/customers/"+id+"/suspend", map[string]any{"reason": "fraud check"}),
			e.do("POST", "/v1/customers", map[string]any{"name": "Ada", "email": "ada@example.org"}, "Idempotency-Key", uuid.NewString()),
			e.do("POST", "/v1/orders", map[string]any{"customer_id": id, "items": []any{item("sku-1", 1, 100)}}),
		} {
			e.problem(a, http.StatusServiceUnavailable, "unavailable", "")
			require.Equal(t, "unavailable", a.Body["code"], a.Raw)
			require.NotEmpty(t, a.Header.Get("Retry-After"))
		}
	}
}
