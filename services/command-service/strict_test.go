package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// requireCode asserts the problem's machine code.
func requireCode(t *testing.T, a answer, code string) {
	t.Helper()
	require.Equal(t, code, a.Body["code"], a.Raw)
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

// TestIfMatchForms: If-Match takes what RFC 9110 §13.1.1 allows and this
// API can match: "*", or a list of strong entity tags, each the decimal
// version an ETag of this API carries. Anything else is 400 naming the
// header; a list matches when any of its tags does.
func TestIfMatchForms(t *testing.T) {
	e := newEnv(t)
	cust := e.registerCustomer()
	reason := map[string]any{"reason": "r"}
	for _, h := range []string{`1`, `"1`, `1"`, `"01"`, `"+1"`, `"-1"`, `" 1"`, `W/"1"`, `w/"1"`, `*, "1"`, `""`, `"1" "2"`, `"1"x`, `"a"`, `,`, `"99999999999999999999"`, `"1";q=1`} {
		t.Run(h, func(t *testing.T) {
			e.t = t
			a := e.do("PATCH", "/v1/customers/"+cust+"/profile", map[string]any{"name": "N"}, "If-Match", h)
			e.problem(a, http.StatusBadRequest, "invalid-header", "If-Match")
			requireCode(t, a, "invalid-header")
		})
	}
	e.t = t
	v := int64(1)
	// %[1]d is the current version.
	for _, form := range []string{`"%[1]d"`, `*`, `"99", "%[1]d"`, `"%[1]d",`, ` "%[1]d" `, `"98","%[1]d" , "97"`, `, "%[1]d"`} {
		h := form
		if strings.Contains(form, "%") {
			h = fmt.Sprintf(form, v)
		}
		v++
		e.ok(e.do("POST", "/v1/customers/"+cust+"/suspend", reason, "If-Match", h), 200, v)
		e.ok(e.do("POST", "/v1/customers/"+cust+"/reactivate", nil), 200, v+1)
		v++
	}
	for _, h := range []string{`"1"`, `"1", "2"`} {
		a := e.do("POST", "/v1/customers/"+cust+"/suspend", reason, "If-Match", h)
		e.problem(a, http.StatusPreconditionFailed, "version-mismatch", "If-Match")
		require.EqualValues(t, v, a.Body["current_version"])
	}
	// Two header lines are one list.
	req, err := http.NewRequest("POST", e.url+"/v1/customers/"+cust+"/suspend", strings.NewReader(`{"reason":"r"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("If-Match", `"1"`)
	req.Header.Add("If-Match", fmt.Sprintf(`"%d"`, v))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestFormatsAsDocumented: what openapi.json's patterns refuse the server
// refuses too: a currency is three upper-case letters (no "eur", no
// surrounding space), a country two letters of either case, nothing around.
func TestFormatsAsDocumented(t *testing.T) {
	e := newEnv(t)
	cust := e.registerCustomer()
	money := func(cur string) map[string]any {
		return map[string]any{"customer_id": cust, "items": []any{map[string]any{"product_id": "p", "quantity": 1, "unit_price": map[string]any{"amount_minor": 100, "currency": cur}}}}
	}
	for _, cur := range []string{"eur", "Eur", " EUR", "EUR ", "EURO", "E1R"} {
		a := e.do("POST", "/v1/orders", money(cur))
		e.problem(a, http.StatusUnprocessableEntity, "rule-broken", "items[0].unit_price.currency")
		requireCode(t, a, "currency.invalid_format")
	}
	e.ok(e.do("POST", "/v1/orders", money("EUR")), 201, 1)
	addr := func(country string) map[string]any {
		return map[string]any{"line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": country}
	}
	for _, c := range []string{" DE", "DE ", "D E", "DEU"} {
		a := e.do("POST", "/v1/customers/"+cust+"/addresses", addr(c))
		e.problem(a, http.StatusUnprocessableEntity, "rule-broken", "country")
		requireCode(t, a, "country.invalid_format")
	}
	e.ok(e.do("POST", "/v1/customers/"+cust+"/addresses", addr("de")), 201, 2)
}
