package main

import (
	"net/http"
	"testing"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// requireCode asserts the problem's machine code.
func requireCode(t *testing.T, a answer, code string) {
	t.Helper()
	require.Equal(t, code, a.body["code"], a.rawBody)
}

// TestIDOfTheOtherAggregateType: an id that names a customer is no order
// (and the other way round): a command on it is 404, creating with it is
// 409 id-taken, an order for an order's id as customer is the answer for
// an unknown customer. None is a 500.
func TestIDOfTheOtherAggregateType(t *testing.T) {
	e := newEnv(t)
	cust := e.registerCustomer()
	order := e.createOrder(cust)

	a := e.do("POST", "/v1/orders/"+cust+"/confirm", nil)
	e.problem(a, http.StatusNotFound, "not-found", "")
	requireCode(t, a, "order.not_found")
	a = e.do("PUT", "/v1/orders/"+cust+"/items", map[string]any{"items": []any{item("a", 1, 1)}})
	e.problem(a, http.StatusNotFound, "not-found", "")
	requireCode(t, a, "order.not_found")
	a = e.do("POST", "/v1/customers/"+order+"/suspend", map[string]any{"reason": "x"})
	e.problem(a, http.StatusNotFound, "not-found", "")
	requireCode(t, a, "customer.not_found")
	a = e.do("PATCH", "/v1/customers/"+order+"/profile", map[string]any{"name": "x"}, "If-Match", `"1"`)
	e.problem(a, http.StatusNotFound, "not-found", "")
	requireCode(t, a, "customer.not_found")

	a = e.do("POST", "/v1/orders", map[string]any{"order_id": cust, "customer_id": cust, "items": []any{item("a", 1, 1)}})
	e.problem(a, http.StatusConflict, "id-taken", "order_id")
	requireCode(t, a, "id_taken")
	a = e.do("POST", "/v1/customers", map[string]any{"customer_id": order, "name": "C", "email": "c@example.org"})
	e.problem(a, http.StatusConflict, "id-taken", "customer_id")
	requireCode(t, a, "id_taken")

	a = e.do("POST", "/v1/orders", map[string]any{"customer_id": order, "items": []any{item("a", 1, 1)}})
	e.problem(a, http.StatusUnprocessableEntity, "rule-broken", "customer_id")
	requireCode(t, a, "order.customer_unknown")
	a = e.do("POST", "/v1/orders", map[string]any{"order_id": uuid.NewString(), "customer_id": order, "items": []any{item("a", 1, 1)}})
	requireCode(t, a, "order.customer_unknown")

	// Nothing of it reached either stream.
	for id, typ := range map[string]string{cust: "customer", order: "order"} {
		v, gotType, err := e.store.Version(t.Context(), gocql.UUID(uuid.MustParse(id)))
		require.NoError(t, err)
		require.EqualValues(t, 1, v)
		require.Equal(t, typ, gotType)
	}
}
