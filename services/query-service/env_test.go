package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// env serves the query API on a keyspace of the test's own, so that the
// listings by status see only the test's rows.
type env struct {
	t         testing.TB
	url       string
	keyspace  string
	session   *gocql.Session
	store     *eventstore.Store
	orders    *repository.Orders
	customers *repository.Customers
	reg       *prometheus.Registry
	cfg       *Config
	// spans records every span the service ended.
	spans *tracetest.SpanRecorder
	// openAPI checks every answer against openapi.json.
	openAPI *openAPISchemas
}

func newEnv(t testing.TB, tune ...func(*Config)) *env {
	t.Helper()
	session, c := stacktest.PrivateKeyspace(t, "qs_")
	keyspace := c.Keyspace
	cfg := defaultConfig()
	cfg.CQL = c
	cfg.Query.PageTokenKey = "a test key of at least thirty-two bytes"
	for _, f := range tune {
		f(cfg)
	}
	require.NoError(t, cfg.Validate())
	reg := prometheus.NewRegistry()
	spans := tracetest.NewSpanRecorder()
	handler, err := newHandler(session, cfg, zerolog.Nop(), reg, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	require.NoError(t, err)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)

	wm := servicetest.NewWriteModel(t, session, 5)
	return &env{t: t, url: srv.URL, keyspace: keyspace, session: session, store: wm.Store, orders: wm.Orders, customers: wm.Customers, reg: reg, cfg: cfg, spans: spans}
}

type answer = servicetest.Answer

func (e *env) get(path string, headers ...string) answer {
	e.t.Helper()
	a := servicetest.Do(e.t, http.MethodGet, e.url+path, nil, headers...)
	if e.openAPI == nil {
		e.openAPI = newOpenAPISchemas(e.t)
	}
	e.openAPI.requireDocumented(e.t, path, a)
	return a
}

// ok asserts a 200 and returns the body.
func (e *env) ok(a answer) map[string]any {
	e.t.Helper()
	require.Equal(e.t, http.StatusOK, a.Status, a.Raw)
	require.Equal(e.t, "application/json", a.Header.Get("Content-Type"))
	return a.Body
}

// problem asserts an RFC 9457 answer naming field (when not empty).
func (e *env) problem(a answer, status int, slug, field string) {
	e.t.Helper()
	servicetest.RequireProblem(e.t, a, status, slug, field)
	require.EqualValues(e.t, status, a.Body["status"])
}

func meta() eventstore.Metadata { return servicetest.Meta("test-" + uuid.NewString()[:8]) }

func items(t testing.TB, specs ...any) []value.OrderItem {
	t.Helper()
	eur, err := value.NewCurrency("EUR")
	require.NoError(t, err)
	var out []value.OrderItem
	for i := 0; i+2 < len(specs); i += 3 {
		price, err := value.NewMoney(int64(specs[i+2].(int)), eur)
		require.NoError(t, err)
		it, err := value.NewOrderItem(specs[i].(string), int64(specs[i+1].(int)), price)
		require.NoError(t, err)
		out = append(out, it)
	}
	return out
}

// registerCustomer commits a customer and returns its id.
func (e *env) registerCustomer() gocql.UUID {
	e.t.Helper()
	id := gocql.UUID(uuid.New())
	email, err := value.NewEmail("ada+" + uuid.NewString()[:8] + "@example.org")
	require.NoError(e.t, err)
	_, err = e.customers.Handle(context.Background(), id, customer.Command(customer.RegisterCustomer{CustomerID: id.String(), Name: "Ada Lovelace", Email: email}), meta())
	require.NoError(e.t, err)
	return id
}

// createOrder commits an order and returns its id.
func (e *env) createOrder(customerID gocql.UUID) gocql.UUID {
	e.t.Helper()
	id := gocql.UUID(uuid.New())
	_, err := e.orders.Handle(context.Background(), id, order.Command(order.CreateOrder{OrderID: id.String(), CustomerID: customerID.String(), Items: items(e.t, "sku-1", 2, 1999)}), meta())
	require.NoError(e.t, err)
	return id
}

// handleOrder commits cmd and returns the new version.
func (e *env) handleOrder(id gocql.UUID, cmd order.Command) int64 {
	e.t.Helper()
	res, err := e.orders.Handle(context.Background(), id, cmd, meta())
	require.NoError(e.t, err)
	return res.Version
}

// projectOrder writes the order_read_model row of the order at version,
// as the projector would.
func (e *env) projectOrder(id gocql.UUID, version int64) {
	e.t.Helper()
	e.projectOrderViews(id, version, readmodel.OrderReadModel())
}

// projectOrderViews writes the rows of the order at version in the views,
// with the views' own Write, as the projectors would.
func (e *env) projectOrderViews(id gocql.UUID, version int64, views ...projector.View[readmodel.Order]) {
	e.t.Helper()
	ctx := context.Background()
	var s readmodel.Order
	require.NoError(e.t, e.store.Events(ctx, id, 0, version, func(ev eventstore.Event) error {
		up, err := eventcodec.NewUpcasters().Upcast(ev)
		if err != nil {
			return err
		}
		s, err = readmodel.FoldOrder(s, up)
		return err
	}))
	for _, v := range views {
		b := e.session.Batch(gocql.LoggedBatch).WithContext(ctx)
		require.NoError(e.t, v.Write(b, id, readmodel.Order{}, false, s, s.State.Version))
		require.NoError(e.t, e.session.ExecuteBatch(b))
	}
}

func (e *env) projectCustomer(id gocql.UUID) {
	e.t.Helper()
	ctx := context.Background()
	var s readmodel.Customer
	require.NoError(e.t, e.store.Events(ctx, id, 0, 0, func(ev eventstore.Event) error {
		up, err := eventcodec.NewUpcasters().Upcast(ev)
		if err != nil {
			return err
		}
		s, err = readmodel.FoldCustomer(s, up)
		return err
	}))
	row, err := readmodel.CustomerRowOf(id, s, s.State.Version)
	require.NoError(e.t, err)
	var phone any
	if row.Phone != "" {
		phone = row.Phone
	}
	require.NoError(e.t, e.session.Query(`INSERT INTO customer_read_model (customer_id, name, email, phone, addresses, tier, status, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		row.CustomerID, row.Name, row.Email, phone, row.Addresses, row.Tier, row.Status, row.Version, row.CreatedAt, row.UpdatedAt).Exec())
}

// insertCustomerOrder writes an orders_by_customer row directly, with
// only the columns of schema v0001 (a row not rewritten since v0005).
func (e *env) insertCustomerOrder(customerID, orderID gocql.UUID, created time.Time, status string, version int64) {
	e.t.Helper()
	require.NoError(e.t, e.session.Query(`INSERT INTO orders_by_customer (customer_id, created_at, order_id, status, version) VALUES (?, ?, ?, ?, ?)`,
		customerID, created, orderID, status, version).Exec())
}

func (e *env) insertStatusOrder(status string, created time.Time, orderID, customerID gocql.UUID, version int64) {
	e.t.Helper()
	require.NoError(e.t, e.session.Query(`INSERT INTO orders_by_status (status, created_at, order_id, customer_id, version) VALUES (?, ?, ?, ?, ?)`,
		status, created, orderID, customerID, version).Exec())
}

func etag(v int64) string { return fmt.Sprintf("%q", fmt.Sprint(v)) }
