package main

import (
	"net/url"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/readmodel"
)

// A listing reads the view's active generation; a page token goes on in
// the generation it was issued in while that one is kept after a
// rebuild's switch, and is a 410 that says to restart the listing once it
// is not.
func TestListingsFollowTheGenerations(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Query.GenerationCache = time.Millisecond })
	customer := gocql.TimeUUID()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var orders []gocql.UUID
	for i := range 3 {
		id := gocql.TimeUUID()
		orders = append(orders, id)
		e.insertCustomerOrder(customer, id, base.Add(time.Duration(i)*time.Minute), "CREATED", 1)
	}
	path := "/v1/customers/" + customer.String() + "/orders"
	first := e.ok(e.get(path + "?limit=1"))
	require.Len(t, first["orders"], 1)
	token := first["next_page_token"].(string)

	// A rebuild wrote generation 2 (one order more) and switched to it;
	// generation 1 is kept for an hour.
	for _, stmt := range readmodel.OrdersByCustomer().Schema(2) {
		require.NoError(t, e.session.Query(stmt).Exec())
	}
	extra := gocql.TimeUUID()
	for i, id := range append(orders, extra) {
		require.NoError(t, e.session.Query(`INSERT INTO orders_by_customer_g2 (customer_id, created_at, order_id, status, version) VALUES (?, ?, ?, ?, ?)`,
			customer, base.Add(time.Duration(i)*time.Minute), id, "CREATED", 1).Exec())
	}
	setGenerations := func(retireAt time.Time) {
		require.NoError(t, e.session.Query(`INSERT INTO projection_generations (projection_name, active, last_generation, retiring) VALUES (?, 2, 2, ?)`,
			readmodel.OrdersByCustomer().Name, map[int]time.Time{1: retireAt}).Exec())
	}
	setGenerations(time.Now().Add(time.Hour))
	require.Eventually(t, func() bool { return len(e.ok(e.get(path + "?limit=10"))["orders"].([]any)) == 4 }, 5*time.Second, 10*time.Millisecond,
		"a first page reads the active generation")

	next := e.ok(e.get(path + "?limit=5&page_token=" + url.QueryEscape(token)))
	require.Len(t, next["orders"], 2, "the old token goes on in generation 1, which has 3 orders")

	setGenerations(time.Now().Add(-time.Minute))
	require.Eventually(t, func() bool {
		return e.get(path+"?limit=5&page_token="+url.QueryEscape(token)).Status == 410
	}, 5*time.Second, 10*time.Millisecond)
	a := e.get(path + "?limit=5&page_token=" + url.QueryEscape(token))
	e.problem(a, 410, "page-token-expired", "page_token")
	require.Equal(t, "query.page_token_expired", a.Body["code"])
}
