package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderstream/orderstream/pkg/cql/unavailabletest"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// Every class of database outage a read can meet is a 503 with
// Retry-After and code "unavailable", never a 500; a bug stays a 500.
func TestReadUnavailableIs503(t *testing.T) {
	a := &api{logger: zerolog.Nop()}
	for _, tc := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("reading order %s: %w", uuid.NewString(), unavailabletest.ShuttingDown{}), 503},
		{fmt.Errorf("listing: %w", gocql.ErrNoConnectionsInPool), 503},
		{fmt.Errorf("listing: %w", gocql.ErrNoConnections), 503},
		{fmt.Errorf("reading: %w", gocql.ErrSessionClosed), 503},
		{fmt.Errorf("reading: %w", &gocql.RequestErrReadTimeout{}), 503},
		{fmt.Errorf("reading: %w", &gocql.RequestErrUnavailable{}), 503},
		{fmt.Errorf("reading: %w", gocql.ErrTimeoutNoResponse), 503},
		{fmt.Errorf("reading: %w", &net.OpError{Op: "dial", Err: fmt.Errorf("connection refused")}), 503},
		{context.DeadlineExceeded, 503},
		{fmt.Errorf("decoding: unexpected value"), 500},
	} {
		w := httptest.NewRecorder()
		a.fail(w, httptest.NewRequest(http.MethodGet, "/v1/orders/"+unknownID, nil), tc.err)
		require.Equal(t, tc.status, w.Code, "%v: %s", tc.err, w.Body)
		if tc.status == 503 {
			require.NotEmpty(t, w.Header().Get("Retry-After"), "%v", tc.err)
			require.Contains(t, w.Body.String(), `"code":"unavailable"`, "%v", tc.err)
		}
	}
}

// Every read path of the query API — by id, at a past version, waiting
// for min_version (before and during the wait), both listings and both
// histories — answers 503 with Retry-After once its only database node is
// gone (a loopback proxy in front of the shared Cassandra, cut).
func TestDatabaseGoneIs503OnEveryReadPath(t *testing.T) {
	e := newEnv(t)
	c := stacktest.RequireCQL(t)
	proxy := unavailabletest.ProxyTo(t, c.Hosts[0], c.Port)
	session := unavailabletest.Session(t, proxy, e.keyspace)
	cfg := *e.cfg
	cfg.Query.MinVersionTimeout = 20 * time.Second
	cfg.HTTP.WriteTimeout = 30 * time.Second
	reg := prometheus.NewRegistry()
	handler, err := newHandler(session, &cfg, zerolog.Nop(), reg, noop.NewTracerProvider())
	require.NoError(t, err)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	through := *e
	through.url = srv.URL

	cust := e.registerCustomer()
	o := e.createOrder(cust)
	e.projectOrder(o, 1)
	e.projectCustomer(cust)
	e.insertCustomerOrder(cust, o, time.Now().UTC().Truncate(time.Millisecond), "CREATED", 1)
	e.handleOrder(o, order.ConfirmOrder{}) // version 2, not projected: min_version=2 waits
	paths := []string{
		"/v1/orders/" + o.String(),
		"/v1/orders/" + o.String() + "?at_version=1",
		"/v1/orders/" + o.String() + "?min_version=1",
		"/v1/customers/" + cust.String(),
		"/v1/customers/" + cust.String() + "?at_version=1",
		"/v1/customers/" + cust.String() + "/orders",
		"/v1/orders?status=CREATED",
		"/v1/orders/" + o.String() + "/events",
		"/v1/customers/" + cust.String() + "/events",
	}
	for _, p := range paths {
		require.Equal(t, http.StatusOK, through.get(p).Status, p)
	}

	// A read waiting for min_version when the database goes.
	waiting := make(chan answer, 1)
	go func() { waiting <- through.get("/v1/orders/" + o.String() + "?min_version=2") }()
	deadline := time.Now().Add(15 * time.Second)
	for gaugeValue(t, reg, "orderstream_query_min_version_waiting") < 1 {
		require.True(t, time.Now().Before(deadline), "the read never started waiting")
		time.Sleep(5 * time.Millisecond)
	}
	proxy.Cut()
	unavailable := func(a answer, what string) {
		t.Helper()
		through.problem(a, http.StatusServiceUnavailable, "unavailable", "")
		require.Equal(t, "unavailable", a.Body["code"], "%s: %s", what, a.Raw)
		require.NotEmpty(t, a.Header.Get("Retry-After"), what)
	}
	unavailable(<-waiting, "min_version=2 while waiting")
	for range 3 {
		for _, p := range append(paths, "/v1/orders/"+o.String()+"?min_version=2") {
			unavailable(through.get(p), p)
		}
	}
}

// gaugeValue reads a gauge without labels from reg (0 while absent).
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
