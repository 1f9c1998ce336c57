package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

// at_version=N answers the fold of the first N events, for every N,
// compared with the repository's own StateAt.
func TestTimeTravel(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.registerCustomer()
	o := e.createOrder(c)
	e.handleOrder(o, order.UpdateItems{Items: items(t, "sku-1", 1, 500, "sku-2", 3, 250)})
	e.handleOrder(o, order.ConfirmOrder{})
	e.handleOrder(o, order.ShipOrder{Carrier: "DHL", TrackingNumber: "JD1"})
	last := e.handleOrder(o, order.CancelOrder{Reason: "lost", CancelledBy: "carrier"})
	require.EqualValues(t, 5, last)

	for n := int64(1); n <= last; n++ {
		a := e.get(fmt.Sprintf("/v1/orders/%s?at_version=%d", o, n))
		body := e.ok(a)
		require.Equal(t, etag(n), a.Header.Get("ETag"))
		state, v, err := e.orders.StateAt(ctx, o, n)
		require.NoError(t, err)
		require.Equal(t, n, v)
		require.EqualValues(t, state.Version, body["version"])
		require.Equal(t, state.Status.String(), body["status"], "version %d", n)
		require.Equal(t, state.CustomerID, body["customer_id"])
		got := body["items"].([]any)
		require.Len(t, got, len(state.Items))
		for i, it := range state.Items {
			g := got[i].(map[string]any)
			require.Equal(t, it.ProductID(), g["product_id"])
			require.EqualValues(t, it.Quantity(), g["quantity"])
			require.EqualValues(t, it.UnitPrice().Amount(), g["unit_price"].(map[string]any)["amount_minor"])
		}
		require.Equal(t, state.Status == value.OrderStatusCancelled, body["is_deleted"])
		require.Equal(t, state.Status == value.OrderStatusCancelled, body["deleted_at"] != nil)
	}
	// the current version folded equals the read model row the projector
	// writes
	e.projectOrder(o, last)
	require.Equal(t, e.ok(e.get("/v1/orders/"+o.String())), e.ok(e.get(fmt.Sprintf("/v1/orders/%s?at_version=%d", o, last))))
	require.Equal(t, 304, e.get(fmt.Sprintf("/v1/orders/%s?at_version=3", o), "If-None-Match", etag(3)).Status)

	a := e.get(fmt.Sprintf("/v1/orders/%s?at_version=%d", o, last+1))
	e.problem(a, 404, "version-not-found", "at_version")
	require.EqualValues(t, last, a.Body["current_version"])
	e.problem(e.get("/v1/orders/"+unknownID+"?at_version=1"), 404, "not-found", "id")
	e.problem(e.get("/v1/customers/"+o.String()+"?at_version=1"), 404, "not-found", "id")
	e.problem(e.get("/v1/orders/"+o.String()+"?at_version=0"), 400, "invalid-parameter", "at_version")

	// a customer
	email, err := value.NewEmail("grace@example.org")
	require.NoError(t, err)
	addr, err := value.NewAddress(value.AddressFields{Line1: "1 Main St", City: "Arlington", PostalCode: "22201", Country: "US"})
	require.NoError(t, err)
	for _, cmd := range []customer.Command{
		customer.AddAddress{AddressID: uuid.NewString(), Address: addr},
		customer.ChangeEmail{Email: email},
		customer.UpgradeTier{Tier: value.CustomerTierGold},
		customer.UpdateProfile{Name: "Grace Hopper"},
		customer.SuspendCustomer{Reason: "audit"},
	} {
		_, err := e.customers.Handle(ctx, c, cmd, meta())
		require.NoError(t, err)
	}
	for n := int64(1); n <= 6; n++ {
		body := e.ok(e.get(fmt.Sprintf("/v1/customers/%s?at_version=%d", c, n)))
		state, _, err := e.customers.StateAt(ctx, c, n)
		require.NoError(t, err)
		require.EqualValues(t, n, body["version"])
		require.Equal(t, state.Name, body["name"], "version %d", n)
		require.Equal(t, state.Email.String(), body["email"])
		require.Equal(t, state.Tier.String(), body["tier"])
		require.Equal(t, state.Status.String(), body["status"])
		require.Len(t, body["addresses"], len(state.Addresses))
	}
	e.projectCustomer(c)
	require.Equal(t, e.ok(e.get("/v1/customers/"+c.String())), e.ok(e.get("/v1/customers/"+c.String()+"?at_version=6")))
}

// min_version without the pipeline: the test plays the projector.
func TestMinVersion(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Query.MinVersionTimeout = 300 * time.Millisecond })
	c := e.registerCustomer()
	o := e.createOrder(c)
	e.projectOrder(o, 1)
	e.handleOrder(o, order.ConfirmOrder{})

	// already there: answered at once
	body := e.ok(e.get("/v1/orders/" + o.String() + "?min_version=1"))
	require.EqualValues(t, 1, body["version"])

	// reached while waiting
	done := make(chan answer, 1)
	go func() { done <- e.get("/v1/orders/" + o.String() + "?min_version=2") }()
	e.untilWaiting(1)
	e.projectOrder(o, 2)
	a := <-done
	require.EqualValues(t, 2, e.ok(a)["version"])
	require.Equal(t, etag(2), a.Header.Get("ETag"))

	// not reached in time: 409 with the version the read model has
	e.handleOrder(o, order.ShipOrder{Carrier: "DHL", TrackingNumber: "1"})
	start := time.Now()
	a = e.get("/v1/orders/" + o.String() + "?min_version=3")
	e.problem(a, 409, "version-not-reached", "min_version")
	require.EqualValues(t, 2, a.Body["current_version"])
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)

	// beyond the event store: 409 at once
	start = time.Now()
	a = e.get("/v1/orders/" + o.String() + "?min_version=9")
	e.problem(a, 409, "version-not-reached", "min_version")
	require.Less(t, time.Since(start), 250*time.Millisecond)

	// no such aggregate: 404 at once, also for the other type's id
	e.problem(e.get("/v1/orders/"+unknownID+"?min_version=1"), 404, "not-found", "id")
	e.problem(e.get("/v1/customers/"+o.String()+"?min_version=1"), 404, "not-found", "id")

	// a customer whose row appears while waiting
	done = make(chan answer, 1)
	go func() { done <- e.get("/v1/customers/" + c.String() + "?min_version=1") }()
	e.untilWaiting(1)
	e.projectCustomer(c)
	require.EqualValues(t, 1, e.ok(<-done)["version"])

	require.Equal(t, float64(2), e.waitCount("order", "reached")+e.waitCount("customer", "reached"))
	require.Equal(t, float64(1), e.waitCount("order", "timeout"))
	require.Equal(t, float64(1), e.waitCount("order", "unreachable"))

	// every wait is a span that says how it ended
	outcomes := map[string]int{}
	for _, sp := range e.spans.Ended() {
		if sp.Name() != "query min_version wait" {
			continue
		}
		for _, kv := range sp.Attributes() {
			if kv.Key == "orderstream.min_version.outcome" {
				outcomes[kv.Value.AsString()]++
			}
		}
	}
	require.Equal(t, map[string]int{"reached": 2, "timeout": 1, "unreachable": 1, "not_found": 2}, outcomes)
}

// untilWaiting polls until n reads wait for their read model.
func (e *env) untilWaiting(n float64) {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.gauge("orderstream_query_min_version_waiting") == n },
		5*time.Second, time.Millisecond, "no read started waiting")
}

func (e *env) gauge(name string) float64 {
	e.t.Helper()
	families, err := e.reg.Gather()
	require.NoError(e.t, err)
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func (e *env) waitCount(typ, outcome string) float64 {
	e.t.Helper()
	families, err := e.reg.Gather()
	require.NoError(e.t, err)
	for _, f := range families {
		if f.GetName() != "orderstream_query_min_version_waits_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["aggregate_type"] == typ && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		tune func(*Config)
		key  string
	}{
		{"short key", func(c *Config) { c.Query.PageTokenKey = "short" }, "query.page_token_key"},
		{"no wait", func(c *Config) { c.Query.MinVersionTimeout = 0 }, "query.min_version_timeout"},
		{"wait past write timeout", func(c *Config) { c.Query.MinVersionTimeout = time.Minute }, "query.min_version_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := defaultConfig()
			tc.tune(c)
			err := c.Validate()
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.key)
		})
	}
	require.NoError(t, defaultConfig().Validate())
}
