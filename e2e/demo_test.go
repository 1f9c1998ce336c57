package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/accounting"
	"github.com/orderstream/orderstream/pkg/domain/order"
)

// The scenario of `make up`'s demo, against the whole system as
// processes: a customer registered with an address, an order driven to
// DELIVERED, another cancelled, a command the domain rejects; then every
// read model, the event history and the DLQ stats are exactly what the
// commands call for, and the accounting checker is at zero.
func TestDemoScenario(t *testing.T) {
	s := Start(t, Options{})
	c := NewClient(t)
	cmd, qry := s.URL("command-service"), s.URL("query-service")
	var acked []accounting.Acked
	ack := func(id string, v int64) {
		acked = append(acked, accounting.Acked{AggregateID: mustUUID(t, id), Version: v})
	}

	customer, v := c.Command("POST", cmd+"/v1/customers", map[string]any{"name": "Ada Lovelace", "email": "ada@example.org", "phone": "+44 20 7946 0958"})
	ack(customer, v)
	_, v = c.Command("POST", cmd+"/v1/customers/"+customer+"/addresses", map[string]any{"label": "home", "line1": "12 St James Sq", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"})
	ack(customer, v)
	require.EqualValues(t, 2, v)

	item := func(sku string, qty, minor int) []map[string]any {
		return []map[string]any{{"product_id": sku, "quantity": qty, "unit_price": map[string]any{"amount_minor": minor, "currency": "GBP"}}}
	}
	delivered, v := c.Command("POST", cmd+"/v1/orders", map[string]any{"customer_id": customer, "items": item("analytical-engine", 1, 99900)})
	ack(delivered, v)
	for _, step := range []struct {
		path string
		body any
	}{
		{"/confirm", nil},
		{"/ship", map[string]any{"carrier": "Royal Mail", "tracking_number": "RM123456789GB"}},
		{"/deliver", map[string]any{"signature": "A. Lovelace"}},
	} {
		_, v = c.Command("POST", cmd+"/v1/orders/"+delivered+step.path, step.body)
		ack(delivered, v)
	}
	require.EqualValues(t, 4, v)
	cancelled, v := c.Command("POST", cmd+"/v1/orders", map[string]any{"customer_id": customer, "items": item("difference-engine", 2, 45000)})
	ack(cancelled, v)
	_, v = c.Command("POST", cmd+"/v1/orders/"+cancelled+"/cancel", map[string]any{"reason": "changed my mind", "cancelled_by": "customer"})
	ack(cancelled, v)

	// A delivered order cannot be cancelled: a problem, and no event.
	rejected := c.Do("POST", cmd+"/v1/orders/"+delivered+"/cancel", map[string]any{"reason": "too late", "cancelled_by": "customer"})
	require.Contains(t, []int{http.StatusConflict, http.StatusUnprocessableEntity}, rejected.Status, "%s", rejected.Body)
	require.Equal(t, "application/problem+json", rejected.Header.Get("Content-Type"))

	// The read models, each read once it has caught up with the commands.
	o := c.Do("GET", qry+"/v1/orders/"+delivered+"?min_version=4", nil)
	require.Equal(t, http.StatusOK, o.Status, "%s", o.Body)
	om := o.JSON(t)
	require.Equal(t, "DELIVERED", om["status"])
	require.EqualValues(t, 4, om["version"])
	require.Equal(t, customer, om["customer_id"])
	require.Equal(t, false, om["is_deleted"])
	require.Equal(t, []any{map[string]any{"product_id": "analytical-engine", "quantity": 1.0, "unit_price": map[string]any{"amount_minor": 99900.0, "currency": "GBP"}}}, om["items"])
	require.Equal(t, `"4"`, o.Header.Get("ETag"))

	x := c.Do("GET", qry+"/v1/orders/"+cancelled+"?min_version=2", nil)
	require.Equal(t, http.StatusOK, x.Status, "%s", x.Body)
	xm := x.JSON(t)
	require.Equal(t, "CANCELLED", xm["status"])
	require.Equal(t, true, xm["is_deleted"])
	require.NotEmpty(t, xm["deleted_at"])

	cu := c.Do("GET", qry+"/v1/customers/"+customer+"?min_version=2", nil)
	require.Equal(t, http.StatusOK, cu.Status, "%s", cu.Body)
	cm := cu.JSON(t)
	require.Equal(t, "Ada Lovelace", cm["name"])
	require.Equal(t, "ada@example.org", cm["email"])
	require.Equal(t, "ACTIVE", cm["status"])
	addrs := cm["addresses"].([]any)
	require.Len(t, addrs, 1)
	a := addrs[0].(map[string]any)
	require.Equal(t, "12 St James Sq", a["line1"])
	require.Equal(t, "GB", a["country"])

	// The lists catch up too (they have no min_version: poll, bounded).
	list := func(path string) []map[string]any {
		t.Helper()
		ans := c.Do("GET", qry+path, nil)
		require.Equal(t, http.StatusOK, ans.Status, "%s", ans.Body)
		var out []map[string]any
		for _, r := range ans.JSON(t)["orders"].([]any) {
			out = append(out, r.(map[string]any))
		}
		return out
	}
	require.Eventually(t, func() bool {
		l := list("/v1/customers/" + customer + "/orders")
		return len(l) == 2 && l[0]["status"] == "CANCELLED" && l[1]["status"] == "DELIVERED"
	}, 30*time.Second, 100*time.Millisecond, "orders of the customer, newest first")
	byCustomer := list("/v1/customers/" + customer + "/orders")
	require.Equal(t, cancelled, byCustomer[0]["id"])
	require.Equal(t, delivered, byCustomer[1]["id"])
	for status, id := range map[string]string{"DELIVERED": delivered, "CANCELLED": cancelled} {
		require.Eventually(t, func() bool {
			l := list("/v1/orders?status=" + status)
			return len(l) == 1 && l[0]["id"] == id
		}, 30*time.Second, 100*time.Millisecond, "orders with status %s", status)
	}
	require.Empty(t, list("/v1/orders?status=CREATED"))
	require.Empty(t, list("/v1/orders?status=CONFIRMED"))

	// The event history of the delivered order.
	h := c.Do("GET", qry+"/v1/orders/"+delivered+"/events", nil)
	require.Equal(t, http.StatusOK, h.Status, "%s", h.Body)
	var types []string
	for i, e := range h.JSON(t)["events"].([]any) {
		em := e.(map[string]any)
		require.EqualValues(t, i+1, em["sequence"])
		types = append(types, em["type"].(string))
	}
	require.Equal(t, []string{order.EventOrderCreated, order.EventOrderConfirmed, order.EventOrderShipped, order.EventOrderDelivered}, types)

	// The state at version 2, folded from the events.
	at := c.Do("GET", qry+"/v1/orders/"+delivered+"?at_version=2", nil)
	require.Equal(t, http.StatusOK, at.Status, "%s", at.Body)
	require.Equal(t, "CONFIRMED", at.JSON(t)["status"])

	// Nothing failed: the DLQ is empty.
	st := c.Do("GET", s.URL("dlq-service")+"/v1/dlq/stats", nil)
	require.Equal(t, http.StatusOK, st.Status, "%s", st.Body)
	stats := st.JSON(t)
	require.EqualValues(t, 0, stats["total"], "%s", st.Body)
	require.EqualValues(t, 0, stats["parked_total"], "%s", st.Body)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := s.Account(ctx, acked, time.Minute)
	require.Equal(t, 8, r.Events)
	require.Equal(t, 3, r.Aggregates)
	t.Logf("accounting:\n%s", r)
}

func mustUUID(t testing.TB, s string) gocql.UUID {
	t.Helper()
	u, err := gocql.ParseUUID(s)
	require.NoError(t, err, "id %q", s)
	return u
}
