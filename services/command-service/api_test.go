package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
	"github.com/orderstream/orderstream/pkg/tracing"
)

type env struct {
	t       testing.TB
	url     string
	store   *eventstore.Store
	session *gocql.Session
	reg     *prometheus.Registry
}

func newEnv(t testing.TB) *env {
	t.Helper()
	// The service's default: no exporter, so a no-op tracer provider that
	// still carries an incoming traceparent through to the events.
	tp, _, err := tracing.New(context.Background(), tracing.DefaultConfig(), "command-service", "test")
	require.NoError(t, err)
	return newEnvTraced(t, tp)
}

func newEnvTraced(t testing.TB, tp trace.TracerProvider, tune ...func(*Config)) *env {
	t.Helper()
	return newEnvLogged(t, tp, zerolog.Nop(), tune...)
}

// newEnvLogged is newEnvTraced with the service logging to logger.
func newEnvLogged(t testing.TB, tp trace.TracerProvider, logger zerolog.Logger, tune ...func(*Config)) *env {
	t.Helper()
	session := stacktest.Session(t)
	cfg := defaultConfig()
	cfg.CQL = stacktest.CQLConfig()
	for _, f := range tune {
		f(cfg)
	}
	require.NoError(t, cfg.Validate())
	reg := prometheus.NewRegistry()
	handler, err := newHandler(session, cfg, logger, reg, tp, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	return &env{t: t, url: srv.URL, store: store, session: session, reg: reg}
}

type answer = servicetest.Answer

func (e *env) do(method, path string, body any, headers ...string) answer {
	e.t.Helper()
	return servicetest.Do(e.t, method, e.url+path, body, headers...)
}

// ok asserts a carried-out command at version.
func (e *env) ok(a answer, status int, version int64) string {
	e.t.Helper()
	require.Equal(e.t, status, a.Status, a.Raw)
	require.EqualValues(e.t, version, a.Body["version"], a.Raw)
	require.Equal(e.t, fmt.Sprintf("%q", fmt.Sprint(version)), a.Header.Get("ETag"))
	return a.Body["id"].(string)
}

// problem asserts an RFC 9457 answer.
func (e *env) problem(a answer, status int, slug, field string) {
	e.t.Helper()
	servicetest.RequireProblem(e.t, a, status, slug, field)
	require.NotEmpty(e.t, a.Body["code"], "every problem has a code: %s", a.Raw)
	require.EqualValues(e.t, status, a.Body["status"])
	require.NotContains(e.t, a.Raw, "goroutine", "no stack traces in answers")
}

func (e *env) registerCustomer() string {
	e.t.Helper()
	return e.ok(e.do("POST", "/v1/customers", map[string]any{"name": "Ada Lovelace", "email": "ada+" + uuid.NewString()[:8] + "@example.org", "phone": "+44 20 7946 0958"}), 201, 1)
}

func item(sku string, qty, minor int) map[string]any {
	return map[string]any{"product_id": sku, "quantity": qty, "unit_price": map[string]any{"amount_minor": minor, "currency": "EUR"}}
}

func (e *env) createOrder(customerID string) string {
	e.t.Helper()
	return e.ok(e.do("POST", "/v1/orders", map[string]any{"customer_id": customerID, "items": []any{item("sku-1", 2, 1999)}}), 201, 1)
}

func TestCustomerCommands(t *testing.T) {
	e := newEnv(t)
	a := e.do("POST", "/v1/customers", map[string]any{"name": "Grace Hopper", "email": "Grace@Example.org"})
	id := e.ok(a, 201, 1)
	require.Equal(t, "/v1/customers/"+id, a.Header.Get("Location"))
	base := "/v1/customers/" + id

	e.ok(e.do("PATCH", base+"/profile", map[string]any{"name": "Grace B. Hopper"}), 200, 2)
	e.ok(e.do("PUT", base+"/email", map[string]any{"email": "grace@navy.mil"}), 200, 3)
	e.ok(e.do("PUT", base+"/phone", map[string]any{"phone": "+1 202 555 0100"}), 200, 4)
	a = e.do("POST", base+"/addresses", map[string]any{"label": "home", "line1": "1 Main St", "city": "Arlington", "postal_code": "22201", "country": "us"})
	e.ok(a, 201, 5)
	addr := a.Body["address_id"].(string)
	e.ok(e.do("PUT", base+"/addresses/"+addr, map[string]any{"line1": "2 Main St", "city": "Arlington", "postal_code": "22201", "country": "US"}), 200, 6)
	e.ok(e.do("DELETE", base+"/addresses/"+addr, nil), 200, 7)
	e.ok(e.do("POST", base+"/tier", map[string]any{"tier": "GOLD"}), 200, 8)
	e.problem(e.do("POST", base+"/tier", map[string]any{"tier": "SILVER"}), 422, "rule-broken", "")
	e.ok(e.do("POST", base+"/suspend", map[string]any{"reason": "chargeback"}), 200, 9)
	e.problem(e.do("PATCH", base+"/profile", map[string]any{"name": "X"}), 409, "state-conflict", "")
	e.ok(e.do("POST", base+"/reactivate", nil), 200, 10)
	e.ok(e.do("POST", base+"/deactivate", map[string]any{"reason": "asked to leave"}), 200, 11)

	// A command that changes nothing answers with the unchanged version.
	e.ok(e.do("POST", base+"/deactivate", map[string]any{"reason": "asked to leave"}), 200, 11)

	// A customer id chosen by the client.
	chosen := uuid.NewString()
	require.Equal(t, chosen, e.ok(e.do("POST", "/v1/customers", map[string]any{"customer_id": chosen, "name": "C", "email": "c@example.org"}), 201, 1))
	e.problem(e.do("POST", "/v1/customers", map[string]any{"customer_id": chosen, "name": "C", "email": "c@example.org"}), 409, "state-conflict", "")
}

func TestOrderCommands(t *testing.T) {
	e := newEnv(t)
	cust := e.registerCustomer()
	a := e.do("POST", "/v1/orders", map[string]any{"customer_id": cust, "items": []any{item("sku-1", 2, 1999), item("sku-2", 1, 500)}})
	id := e.ok(a, 201, 1)
	require.Equal(t, "/v1/orders/"+id, a.Header.Get("Location"))
	base := "/v1/orders/" + id
	e.ok(e.do("PUT", base+"/items", map[string]any{"items": []any{item("sku-3", 1, 100)}}), 200, 2)
	e.ok(e.do("POST", base+"/confirm", nil), 200, 3)
	e.problem(e.do("PUT", base+"/items", map[string]any{"items": []any{item("sku-3", 2, 100)}}), 409, "state-conflict", "")
	e.ok(e.do("POST", base+"/ship", map[string]any{"carrier": "DHL", "tracking_number": "JD0146"}), 200, 4)
	e.ok(e.do("POST", base+"/deliver", map[string]any{"signature": "G. Hopper"}), 200, 5)
	e.problem(e.do("POST", base+"/cancel", map[string]any{"reason": "late", "cancelled_by": "ops"}), 409, "state-conflict", "")

	other := e.createOrder(cust)
	e.ok(e.do("POST", "/v1/orders/"+other+"/cancel", map[string]any{"reason": "changed mind", "cancelled_by": "customer"}), 200, 2)

	// Orders need a known, active customer.
	e.problem(e.do("POST", "/v1/orders", map[string]any{"customer_id": uuid.NewString(), "items": []any{item("a", 1, 1)}}), 422, "rule-broken", "customer_id")
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	cust := e.registerCustomer()
	order := e.createOrder(cust)
	for _, tc := range []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
		slug, field        string
	}{
		{"malformed JSON", "POST", "/v1/orders", `{"customer_id": `, nil, 400, "malformed-json", ""},
		{"unknown field", "POST", "/v1/customers", `{"name":"a","email":"a@b.org","nickname":"x"}`, nil, 400, "unknown-field", "nickname"},
		{"wrong type", "POST", "/v1/orders/" + order + "/ship", `{"carrier": 5, "tracking_number": "x"}`, nil, 400, "invalid-type", "carrier"},
		{"missing field", "POST", "/v1/orders/" + order + "/cancel", `{"reason":"r"}`, nil, 400, "missing-field", "cancelled_by"},
		{"missing nested field", "POST", "/v1/orders", map[string]any{"customer_id": cust, "items": []any{map[string]any{"product_id": "a", "quantity": 1}}}, nil, 400, "missing-field", "items[0].unit_price"},
		{"invalid path id", "POST", "/v1/orders/not-a-uuid/confirm", nil, nil, 400, "invalid-id", "id"},
		{"invalid body id", "POST", "/v1/orders", map[string]any{"customer_id": "42", "items": []any{item("a", 1, 1)}}, nil, 400, "invalid-id", "customer_id"},
		{"domain rule: no items", "POST", "/v1/orders", map[string]any{"customer_id": cust, "items": []any{}}, nil, 422, "rule-broken", "items"},
		{"domain rule: quantity", "POST", "/v1/orders", map[string]any{"customer_id": cust, "items": []any{item("a", 0, 1)}}, nil, 422, "rule-broken", "items[0].quantity"},
		{"domain rule: email", "POST", "/v1/customers", map[string]any{"name": "a", "email": "not-an-email"}, nil, 422, "rule-broken", "email"},
		{"domain rule: country", "POST", "/v1/customers/" + cust + "/addresses", map[string]any{"line1": "x", "city": "y", "postal_code": "1", "country": "ZZ"}, nil, 422, "rule-broken", "country"},
		{"unknown order", "POST", "/v1/orders/" + uuid.NewString() + "/confirm", nil, nil, 404, "not-found", ""},
		{"unknown customer", "PUT", "/v1/customers/" + uuid.NewString() + "/email", map[string]any{"email": "a@b.org"}, nil, 404, "not-found", ""},
		{"weak If-Match", "POST", "/v1/orders/" + order + "/confirm", nil, []string{"If-Match", `W/"1"`}, 400, "invalid-header", "If-Match"},
		{"unknown route", "GET", "/v1/nothing", nil, nil, 404, "not-found", ""},
		{"wrong method", "GET", "/v1/orders", nil, nil, 405, "method-not-allowed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.problem(e.do(tc.method, tc.path, tc.body, tc.headers...), tc.status, tc.slug, tc.field)
		})
	}
	e.t = t

	t.Run("wrong content type", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.url+"/v1/customers", strings.NewReader(`name=a`))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 415, resp.StatusCode)
	})
	t.Run("body over the limit", func(t *testing.T) {
		big := `{"name":"` + strings.Repeat("a", 2<<20) + `","email":"a@b.org"}`
		e.t = t
		e.problem(e.do("POST", "/v1/customers", big), 413, "payload-too-large", "")
	})
}

func TestIfMatch(t *testing.T) {
	e := newEnv(t)
	cust := e.registerCustomer()
	order := e.createOrder(cust)
	a := e.do("POST", "/v1/orders/"+order+"/confirm", nil, "If-Match", `"7"`)
	e.problem(a, 412, "version-mismatch", "If-Match")
	require.EqualValues(t, 1, a.Body["current_version"])
	e.ok(e.do("POST", "/v1/orders/"+order+"/confirm", nil, "If-Match", `"1"`), 200, 2)
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	cust := e.registerCustomer()
	key := uuid.NewString()
	body := map[string]any{"customer_id": cust, "items": []any{item("sku-1", 1, 100)}}
	first := e.do("POST", "/v1/orders", body, "Idempotency-Key", key)
	id := e.ok(first, 201, 1)

	again := e.do("POST", "/v1/orders", body, "Idempotency-Key", key)
	require.Equal(t, first.Raw, again.Raw, "the replay is the first answer")
	require.Equal(t, 201, again.Status)
	require.Equal(t, first.Header.Get("ETag"), again.Header.Get("ETag"))
	require.Equal(t, first.Header.Get("Location"), again.Header.Get("Location"))
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))

	body["items"] = []any{item("sku-2", 1, 100)}
	e.problem(e.do("POST", "/v1/orders", body, "Idempotency-Key", key), 422, "idempotency-key-reused", "Idempotency-Key")

	// A replayed command commits once.
	confirmKey := uuid.NewString()
	for range 3 {
		e.ok(e.do("POST", "/v1/orders/"+id+"/confirm", nil, "Idempotency-Key", confirmKey), 200, 2)
	}
	v, _, err := e.store.Version(context.Background(), gocql.UUID(uuid.MustParse(id)))
	require.NoError(t, err)
	require.Equal(t, int64(2), v)
	e.problem(e.do("POST", "/v1/orders", body, "Idempotency-Key", strings.Repeat("k", 300)), 400, "invalid-header", "Idempotency-Key")
}

// A create without an id whose first attempt committed and then died
// before storing its answer (a crash): the retry with the same key takes
// the reservation over and answers with the same aggregate, created once.
func TestRetriedCreateWithoutIDCommitsOnce(t *testing.T) {
	e := newEnv(t)
	key := uuid.NewString()
	body := map[string]any{"name": "Retry Tester", "email": "retry@example.org"}
	first := e.do("POST", "/v1/customers", body, "Idempotency-Key", key)
	id := e.ok(first, 201, 1)

	// Forget the stored answer and age the reservation past its lease, as
	// if the process had died between the commit and the answer.
	require.NoError(t, e.session.Query(`UPDATE idempotency_keys SET status_code = 0, created_at = ? WHERE idempotency_key = ?`,
		time.Unix(0, 0).UTC(), key).Exec())
	again := e.do("POST", "/v1/customers", body, "Idempotency-Key", key)
	require.NotEqual(t, "true", again.Header.Get("Idempotent-Replayed"), "the answer was forgotten: the request ran again")
	require.Equal(t, id, e.ok(again, 201, 1), "the same customer, not a second one")

	other := e.do("POST", "/v1/customers", body, "Idempotency-Key", uuid.NewString())
	require.NotEqual(t, id, e.ok(other, 201, 1), "another key is another customer")
}

// X-Correlation-ID is echoed and stored on every event; traceparent is
// continued into the events' trace context; the causation id is the
// command's id.
func TestCorrelationAndTraceReachTheEvents(t *testing.T) {
	e := newEnv(t)
	a := e.do("POST", "/v1/customers", map[string]any{"name": "T", "email": "t@example.org"},
		"X-Correlation-ID", "corr-123", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	id := e.ok(a, 201, 1)
	require.Equal(t, "corr-123", a.Header.Get("X-Correlation-ID"))
	var events []eventstore.Event
	require.NoError(t, e.store.Events(context.Background(), gocql.UUID(uuid.MustParse(id)), 0, 0, func(ev eventstore.Event) error {
		events = append(events, ev)
		return nil
	}))
	require.Len(t, events, 1)
	require.Equal(t, "corr-123", events[0].CorrelationID)
	require.NotEmpty(t, events[0].CausationID)
	require.Contains(t, events[0].TraceContext["traceparent"], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace id")

	generated := e.do("POST", "/v1/customers", map[string]any{"name": "U", "email": "u@example.org"})
	require.NotEmpty(t, generated.Header.Get("X-Correlation-ID"))
}

// 64 clients race confirm, ship, deliver and cancel on 10 orders: every
// answer is 2xx, 409 or 422, and every stream stays contiguous and valid.
func TestConcurrentLifecycleOverHTTP(t *testing.T) {
	e := newEnv(t)
	cust := e.registerCustomer()
	orders := make([]string, 10)
	for i := range orders {
		orders[i] = e.createOrder(cust)
	}
	steps := []struct {
		path string
		body any
	}{
		{"/confirm", nil},
		{"/ship", map[string]any{"carrier": "UPS", "tracking_number": "1Z"}},
		{"/deliver", nil},
		{"/cancel", map[string]any{"reason": "race", "cancelled_by": "test"}},
	}
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		wg     sync.WaitGroup
	)
	client := &http.Client{Timeout: 30 * time.Second}
	for c := range 64 {
		wg.Go(func() {
			for i := range 8 {
				s := steps[(c+i*3)%len(steps)]
				var rd io.Reader = http.NoBody
				if s.body != nil {
					b, _ := json.Marshal(s.body)
					rd = bytes.NewReader(b)
				}
				req, _ := http.NewRequest("POST", e.url+"/v1/orders/"+orders[(c*5+i)%len(orders)]+s.path, rd)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				counts[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("answers by status: %v", counts)
	for status := range counts {
		require.True(t, status == 200 || status == 409 || status == 422, "unexpected status %d", status)
	}
	for _, id := range orders {
		var types []string
		var seq int64
		require.NoError(t, e.store.Events(context.Background(), gocql.UUID(uuid.MustParse(id)), 0, 0, func(ev eventstore.Event) error {
			seq++
			require.Equal(t, seq, ev.Sequence)
			types = append(types, ev.Type)
			return nil
		}))
		joined := strings.Join(types, ",")
		require.False(t, strings.Contains(joined, "OrderDelivered") && strings.Contains(joined, "OrderCancelled"), "order %s: %s", id, joined)
	}
}

// Every endpoint with an id in its path answers 404 for an unknown
// aggregate, and 400 naming the first missing required field.
func TestEveryEndpointNotFoundAndMissingField(t *testing.T) {
	e := newEnv(t)
	unknown := uuid.NewString()
	addr := "11111111-2222-4333-8444-555555555555"
	for _, tc := range []struct {
		method, path string
		valid        any
		missing      string
	}{
		{"PATCH", "/v1/customers/%s/profile", map[string]any{"name": "n"}, "name"},
		{"PUT", "/v1/customers/%s/email", map[string]any{"email": "a@b.org"}, "email"},
		{"PUT", "/v1/customers/%s/phone", map[string]any{"phone": "+14155550100"}, "phone"},
		{"POST", "/v1/customers/%s/addresses", map[string]any{"line1": "1", "city": "c", "postal_code": "p", "country": "IE"}, "line1"},
		{"PUT", "/v1/customers/%s/addresses/" + addr, map[string]any{"line1": "1", "city": "c", "postal_code": "p", "country": "IE"}, "line1"},
		{"DELETE", "/v1/customers/%s/addresses/" + addr, nil, ""},
		{"POST", "/v1/customers/%s/tier", map[string]any{"tier": "GOLD"}, "tier"},
		{"POST", "/v1/customers/%s/suspend", map[string]any{"reason": "r"}, "reason"},
		{"POST", "/v1/customers/%s/reactivate", nil, ""},
		{"POST", "/v1/customers/%s/deactivate", map[string]any{"reason": "r"}, "reason"},
		{"PUT", "/v1/orders/%s/items", map[string]any{"items": []any{item("a", 1, 1)}}, "items"},
		{"POST", "/v1/orders/%s/confirm", nil, ""},
		{"POST", "/v1/orders/%s/ship", map[string]any{"carrier": "c", "tracking_number": "t"}, "carrier"},
		{"POST", "/v1/orders/%s/deliver", nil, ""},
		{"POST", "/v1/orders/%s/cancel", map[string]any{"reason": "r", "cancelled_by": "x"}, "reason"},
	} {
		path := fmt.Sprintf(tc.path, unknown)
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			e.t = t
			e.problem(e.do(tc.method, path, tc.valid), 404, "not-found", "")
			if tc.missing != "" {
				e.problem(e.do(tc.method, path, `{}`), 400, "missing-field", tc.missing)
			}
		})
	}
	e.t = t
	e.problem(e.do("POST", "/v1/customers", `{}`), 400, "missing-field", "name")
	e.problem(e.do("POST", "/v1/orders", `{}`), 400, "missing-field", "customer_id")
}

// One trace from the request through the command to each store call.
// The state cache is off: with it a create reads nothing (it presumes a
// new aggregate), and this test wants the load's span too.
func TestSpansPerRequestAndStoreCall(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := newEnvTraced(t, tp, func(c *Config) { c.Repository.CacheSize = 0 })
	e.ok(e.do("POST", "/v1/customers", map[string]any{"name": "S", "email": "s@example.org"},
		"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), 201, 1)
	names := map[string]bool{}
	for _, s := range rec.Ended() {
		require.Equal(t, "0af7651916cd43dd8448eb211c80319c", s.SpanContext().TraceID().String(), "span %s", s.Name())
		names[s.Name()] = true
	}
	for _, want := range []string{"POST /v1/customers", "command RegisterCustomer", "eventstore.Events", "eventstore.Append"} {
		require.True(t, names[want], "missing span %q in %v", want, names)
	}
}
