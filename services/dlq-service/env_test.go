package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// testToken is the bearer token of the test servers.
const testToken = "a test token of some length"

// env serves the DLQ API on a keyspace of the test's own.
type env struct {
	t         testing.TB
	url       string
	cql       cql.Config
	session   *gocql.Session
	store     *eventstore.Store
	dlq       *deadletter.Store
	orders    *repository.Orders
	customers *repository.Customers
	api       *api
	reg       *prometheus.Registry
}

func testConfig() *Config {
	cfg := defaultConfig()
	cfg.DLQ.Token = testToken
	cfg.DLQ.PollEvery = 20 * time.Millisecond
	cfg.DLQ.RetryTimeout = 20 * time.Second
	cfg.DLQ.StatsEvery = 100 * time.Millisecond
	return cfg
}

func newEnv(t testing.TB, tune ...func(*Config)) *env {
	t.Helper()
	session, c := stacktest.PrivateKeyspace(t, "dlq_")
	cfg := testConfig()
	cfg.CQL = c
	for _, f := range tune {
		f(cfg)
	}
	require.NoError(t, cfg.Validate())
	reg := prometheus.NewRegistry()
	wm := servicetest.NewWriteModel(t, session, 10)
	dlq := deadletter.NewStore(session, c.Keyspace)
	a, err := newAPI(dlq, wm.Store, cfg.DLQ, cfg.DLQ.Token, zerolog.Nop(), reg)
	require.NoError(t, err)
	handler, err := newHandler(a, zerolog.Nop(), reg, noop.NewTracerProvider())
	require.NoError(t, err)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)

	return &env{t: t, url: srv.URL, cql: c, session: session, store: wm.Store, dlq: dlq, orders: wm.Orders, customers: wm.Customers, api: a, reg: reg}
}

type answer = servicetest.Answer

// authed are the headers of an authorized operator.
var authed = []string{"Authorization", "Bearer " + testToken, "X-Requested-By", "alice"}

// do sends a request; body (when not nil) is sent as JSON.
func (e *env) do(method, path string, body any, headers ...string) answer {
	e.t.Helper()
	return servicetest.Do(e.t, method, e.url+path, body, headers...)
}

func (e *env) get(path string) answer { return e.do(http.MethodGet, path, nil) }

// ok asserts status (200 when not given) with a JSON body and returns it.
func (e *env) ok(a answer, status ...int) map[string]any {
	e.t.Helper()
	want := http.StatusOK
	if len(status) > 0 {
		want = status[0]
	}
	require.Equal(e.t, want, a.Status, a.Raw)
	require.Equal(e.t, "application/json", a.Header.Get("Content-Type"))
	return a.Body
}

// problem asserts an RFC 9457 answer of the slug, naming field when given.
func (e *env) problem(a answer, status int, slug, field string) {
	e.t.Helper()
	servicetest.RequireProblem(e.t, a, status, slug, field)
}

// entries lists the dead letters a query selects (one page of up to 500).
func (e *env) entries(query string) []map[string]any {
	e.t.Helper()
	body := e.ok(e.get("/v1/dlq?limit=500&" + query))
	var out []map[string]any
	for _, x := range body["entries"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

// waitEntries waits until the query selects n dead letters.
func (e *env) waitEntries(query string, n int, within time.Duration) []map[string]any {
	e.t.Helper()
	var got []map[string]any
	require.Eventually(e.t, func() bool {
		got = e.entries(query)
		return len(got) == n
	}, within, 50*time.Millisecond, "waiting for %d dead letters of %q", n, query)
	return got
}

func (e *env) stats() map[string]any {
	e.t.Helper()
	return e.ok(e.get("/v1/dlq/stats"))
}

func meta() eventstore.Metadata { return servicetest.Meta("dlq-test") }

// num reads a JSON number of a body.
func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// counts reads a {name: count} object of a body.
func counts(v any) map[string]int {
	out := map[string]int{}
	m, _ := v.(map[string]any)
	for k, x := range m {
		out[k] = num(x)
	}
	return out
}

func (e *env) count(stmt string, args ...any) int {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.session.Query(stmt, args...).WithContext(context.Background()).Scan(&n))
	return n
}
