package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

const unknownID = "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11"

func TestOrderByID(t *testing.T) {
	e := newEnv(t)
	c := e.registerCustomer()
	o := e.createOrder(c)
	e.handleOrder(o, order.ConfirmOrder{})
	e.projectOrder(o, 2)

	a := e.get("/v1/orders/" + o.String())
	body := e.ok(a)
	require.Equal(t, etag(2), a.Header.Get("ETag"))
	require.Equal(t, o.String(), body["id"])
	require.Equal(t, c.String(), body["customer_id"])
	require.Equal(t, "CONFIRMED", body["status"])
	require.EqualValues(t, 2, body["version"])
	require.Equal(t, false, body["is_deleted"])
	require.Equal(t, []any{map[string]any{"product_id": "sku-1", "quantity": float64(2), "unit_price": map[string]any{"amount_minor": float64(1999), "currency": "EUR"}}}, body["items"])

	// upper-case ids are the same order
	e.ok(e.get("/v1/orders/" + strings.ToUpper(o.String())))

	// conditional GET
	a = e.get("/v1/orders/"+o.String(), "If-None-Match", etag(2))
	require.Equal(t, 304, a.Status)
	require.Equal(t, etag(2), a.Header.Get("ETag"))
	require.Empty(t, a.Raw)
	require.Equal(t, 304, e.get("/v1/orders/"+o.String(), "If-None-Match", `"1", W/"2"`).Status)
	require.Equal(t, 200, e.get("/v1/orders/"+o.String(), "If-None-Match", etag(1)).Status)

	// not found: unknown, and a customer's id on the orders path
	e.problem(e.get("/v1/orders/"+unknownID), 404, "not-found", "id")
	e.problem(e.get("/v1/orders/"+c.String()), 404, "not-found", "id")

	for _, tc := range []struct{ path, slug, field string }{
		{"/v1/orders/not-a-uuid", "invalid-id", "id"},
		{"/v1/orders/00000000-0000-0000-0000-000000000000", "invalid-id", "id"},
		{"/v1/orders/" + strings.ReplaceAll(o.String(), "-", ""), "invalid-id", "id"},
		{"/v1/orders/" + o.String() + "?min_version=0", "invalid-parameter", "min_version"},
		{"/v1/orders/" + o.String() + "?min_version=x", "invalid-parameter", "min_version"},
		{"/v1/orders/" + o.String() + "?at_version=-1", "invalid-parameter", "at_version"},
		{"/v1/orders/" + o.String() + "?at_version=99999999999999999999", "invalid-parameter", "at_version"},
		{"/v1/orders/" + o.String() + "?at_version=1&min_version=1", "invalid-parameter", "min_version"},
		{"/v1/orders/" + o.String() + "?at_version=1&at_version=2", "invalid-parameter", "at_version"},
		{"/v1/orders/" + o.String() + "?atversion=1", "invalid-parameter", "atversion"},
		{"/v1/orders/" + o.String() + "?a=%zz", "invalid-parameter", "query"},
	} {
		e.problem(e.get(tc.path), 400, tc.slug, tc.field)
	}
	e.problem(e.get("/v1/orders/"+o.String()+"/nothing"), 404, "not-found", "")
}

func TestCustomerByID(t *testing.T) {
	e := newEnv(t)
	c := e.registerCustomer()
	addr, err := value.NewAddress(value.AddressFields{Label: "home", Line1: "12 St James Sq", City: "London", PostalCode: "SW1Y 4JH", Country: "GB"})
	require.NoError(t, err)
	aid := uuid.NewString()
	_, err = e.customers.Handle(context.Background(), c, customer.Command(customer.AddAddress{AddressID: aid, Address: addr}), meta())
	require.NoError(t, err)
	e.projectCustomer(c)

	a := e.get("/v1/customers/" + c.String())
	body := e.ok(a)
	require.Equal(t, etag(2), a.Header.Get("ETag"))
	require.Equal(t, "Ada Lovelace", body["name"])
	require.Equal(t, "ACTIVE", body["status"])
	require.EqualValues(t, 2, body["version"])
	require.Equal(t, []any{map[string]any{"id": aid, "label": "home", "line1": "12 St James Sq", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"}}, body["addresses"])
	require.Equal(t, 304, e.get("/v1/customers/"+c.String(), "If-None-Match", "*").Status)

	o := e.createOrder(c)
	e.problem(e.get("/v1/customers/"+unknownID), 404, "not-found", "id")
	e.problem(e.get("/v1/customers/"+o.String()), 404, "not-found", "id")
	e.problem(e.get("/v1/customers/nope"), 400, "invalid-id", "id")
	e.problem(e.get("/v1/customers/"+c.String()+"?min_version=-2"), 400, "invalid-parameter", "min_version")
	e.problem(e.get("/v1/customers/"+c.String()+"?limit=2"), 400, "invalid-parameter", "limit")
}

// ordersOf pages through a listing with limit, returning the ids in the
// order served and the number of pages.
func (e *env) pageThrough(path string, limit int) ([]string, int) {
	e.t.Helper()
	var (
		ids   []string
		token string
		pages int
	)
	for {
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if token != "" {
			q.Set("page_token", token)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		body := e.ok(e.get(path + sep + q.Encode()))
		pages++
		for _, o := range body["orders"].([]any) {
			ids = append(ids, o.(map[string]any)["id"].(string))
		}
		next, _ := body["next_page_token"].(string)
		if next == "" {
			return ids, pages
		}
		token = next
		require.Less(e.t, pages, 10000, "paging does not end")
	}
}

type listed struct {
	id      gocql.UUID
	created time.Time
}

// want sorts as the tables cluster: created_at descending, then order id
// ascending (UUID byte order for these random ids is their string order).
func want(rows []listed) []string {
	sort.Slice(rows, func(i, j int) bool {
		if !rows[i].created.Equal(rows[j].created) {
			return rows[i].created.After(rows[j].created)
		}
		return rows[i].id.String() < rows[j].id.String()
	})
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.id.String()
	}
	return out
}

func TestOrdersOfCustomerPaging(t *testing.T) {
	e := newEnv(t)
	c := e.registerCustomer()
	other := e.registerCustomer()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var rows []listed
	for i := range 1200 {
		// Some orders share a created_at, so the order id breaks ties.
		created := base.Add(time.Duration(i/2) * time.Minute)
		id := gocql.UUID(uuid.New())
		e.insertCustomerOrder(c, id, created, "CREATED", 1)
		rows = append(rows, listed{id, created})
	}
	for i := range 3 {
		e.insertCustomerOrder(other, gocql.UUID(uuid.New()), base.Add(time.Duration(i)*time.Minute), "CREATED", 1)
	}
	path := "/v1/customers/" + c.String() + "/orders"
	expected := want(rows)

	got, pages := e.pageThrough(path, 50)
	require.Equal(t, expected, got, "every order exactly once, newest first")
	require.GreaterOrEqual(t, pages, 24)
	got, _ = e.pageThrough(path, 500)
	require.Equal(t, expected, got)

	// the default page is 50
	first := e.ok(e.get(path))
	require.Len(t, first["orders"], 50)
	o0 := first["orders"].([]any)[0].(map[string]any)
	require.Equal(t, expected[0], o0["id"])
	require.Equal(t, c.String(), o0["customer_id"])
	require.Equal(t, "CREATED", o0["status"])
	token := first["next_page_token"].(string)
	require.NotEmpty(t, token)

	// a time range: created_after < created_at < created_before
	from, to := base.Add(100*time.Minute), base.Add(200*time.Minute)
	var inRange []listed
	for _, r := range rows {
		if r.created.After(from) && r.created.Before(to) {
			inRange = append(inRange, r)
		}
	}
	ranged := path + "?created_after=" + from.Format(time.RFC3339) + "&created_before=" + url.QueryEscape(to.Format(time.RFC3339Nano))
	got, _ = e.pageThrough(ranged, 30)
	require.Equal(t, want(inRange), got)

	// tokens: forged, truncated, of another listing, of another filter
	raw, err := base64.RawURLEncoding.DecodeString(token)
	require.NoError(t, err)
	forged := append([]byte(nil), raw...)
	forged[3] ^= 1
	otherToken := e.ok(e.get("/v1/customers/" + other.String() + "/orders?limit=1"))["next_page_token"].(string)
	require.NotEmpty(t, otherToken)
	rangedToken := e.ok(e.get(ranged + "&limit=5"))["next_page_token"].(string)
	for name, tok := range map[string]string{
		"forged":               base64.RawURLEncoding.EncodeToString(forged),
		"truncated":            token[:len(token)-4],
		"cut short":            token[:10],
		"not base64":           "!!!",
		"empty":                "",
		"padded":               token + "==",
		"other customer":       otherToken,
		"other filters":        rangedToken,
		"too long":             strings.Repeat("A", 5000),
		"history of the order": e.historyToken(t, c),
	} {
		e.problem(e.get(path+"?page_token="+url.QueryEscape(tok)), 400, "invalid-parameter", "page_token")
		_ = name
	}
	// the token of another customer is refused on this one, and this one's
	// token keeps working with another limit
	e.problem(e.get("/v1/customers/"+other.String()+"/orders?page_token="+token), 400, "invalid-parameter", "page_token")
	require.Len(t, e.ok(e.get(path + "?limit=7&page_token=" + token))["orders"], 7)

	for _, tc := range []struct{ query, field string }{
		{"limit=0", "limit"}, {"limit=501", "limit"}, {"limit=ten", "limit"}, {"limit=", "limit"},
		{"created_after=yesterday", "created_after"}, {"created_before=2025-01-01", "created_before"},
		{"created_after=2025-02-01T00:00:00Z&created_before=2025-01-01T00:00:00Z", "created_before"},
		{"status=CREATED", "status"},
	} {
		e.problem(e.get(path+"?"+tc.query), 400, "invalid-parameter", tc.field)
	}
	e.problem(e.get("/v1/customers/bad/orders"), 400, "invalid-id", "id")
	e.problem(e.get("/v1/customers/"+unknownID+"/orders"), 404, "not-found", "id")
	// a customer without orders has an empty list
	lonely := e.registerCustomer()
	body := e.ok(e.get("/v1/customers/" + lonely.String() + "/orders"))
	require.Equal(t, []any{}, body["orders"])
	require.NotContains(t, body, "next_page_token")
}

// historyToken is a genuine page token of another listing: the history of
// a customer with three events, read two at a time.
func (e *env) historyToken(t *testing.T, c gocql.UUID) string {
	for _, n := range []string{"B", "C"} {
		_, err := e.customers.Handle(context.Background(), c, customer.Command(customer.UpdateProfile{Name: n}), meta())
		require.NoError(t, err)
	}
	tok, _ := e.ok(e.get("/v1/customers/" + c.String() + "/events?limit=1"))["next_page_token"].(string)
	require.NotEmpty(t, tok)
	return tok
}

func TestOrdersWithStatus(t *testing.T) {
	e := newEnv(t)
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	var confirmed []listed
	for i := range 120 {
		id, created := gocql.UUID(uuid.New()), base.Add(time.Duration(i)*time.Second)
		e.insertStatusOrder("CONFIRMED", created, id, gocql.UUID(uuid.New()), 2)
		confirmed = append(confirmed, listed{id, created})
	}
	shipped := gocql.UUID(uuid.New())
	e.insertStatusOrder("SHIPPED", base, shipped, gocql.UUID(uuid.New()), 3)

	got, _ := e.pageThrough("/v1/orders?status=CONFIRMED", 50)
	require.Equal(t, want(confirmed), got)
	got, _ = e.pageThrough("/v1/orders?status=confirmed", 7)
	require.Equal(t, want(confirmed), got)
	body := e.ok(e.get("/v1/orders?status=SHIPPED"))
	require.Len(t, body["orders"], 1)
	require.Equal(t, "SHIPPED", body["orders"].([]any)[0].(map[string]any)["status"])
	require.Equal(t, []any{}, e.ok(e.get("/v1/orders?status=DELIVERED"))["orders"])

	tok := e.ok(e.get("/v1/orders?status=CONFIRMED&limit=10"))["next_page_token"].(string)
	e.problem(e.get("/v1/orders?status=CANCELLED&page_token="+tok), 400, "invalid-parameter", "page_token")
	e.problem(e.get("/v1/orders?status=CONFIRMED&created_after=2025-03-01T00:00:30Z&page_token="+tok), 400, "invalid-parameter", "page_token")
	for _, tc := range []struct{ query, field string }{
		{"", "status"}, {"status=", "status"}, {"status=LOST", "status"}, {"status=CONFIRMED&limit=-1", "limit"},
		{"status=CONFIRMED&status=SHIPPED", "status"}, {"status=CONFIRMED&page_token=abc", "page_token"},
		{"status=CONFIRMED&customer_id=" + unknownID, "customer_id"},
	} {
		e.problem(e.get("/v1/orders?"+tc.query), 400, "invalid-parameter", tc.field)
	}
	// the range restriction
	body = e.ok(e.get("/v1/orders?status=CONFIRMED&limit=500&created_after=2025-03-01T00:00:09.5Z&created_before=2025-03-01T00:00:20Z"))
	require.Len(t, body["orders"], 10) // seconds 10..19
}

func TestHistory(t *testing.T) {
	e := newEnv(t)
	c := e.registerCustomer()
	o := e.createOrder(c)
	e.handleOrder(o, order.ConfirmOrder{})
	e.handleOrder(o, order.ShipOrder{Carrier: "DHL", TrackingNumber: "1"})
	e.handleOrder(o, order.DeliverOrder{Signature: "A"})

	body := e.ok(e.get("/v1/orders/" + o.String() + "/events"))
	require.Equal(t, o.String(), body["aggregate_id"])
	require.Equal(t, "order", body["aggregate_type"])
	require.EqualValues(t, 4, body["version"])
	events := body["events"].([]any)
	require.Len(t, events, 4)
	require.NotContains(t, body, "next_page_token")
	first := events[0].(map[string]any)
	require.Equal(t, "OrderCreated", first["type"])
	require.EqualValues(t, 1, first["sequence"])
	require.EqualValues(t, 1, first["version"])
	require.NotEmpty(t, first["event_id"])
	require.NotEmpty(t, first["occurred_at"])
	require.NotEmpty(t, first["causation_id"])
	require.Contains(t, first["correlation_id"], "test-")
	require.Equal(t, o.String(), first["payload"].(map[string]any)["orderId"], "payload is the stored protojson")
	for i, ev := range events {
		require.EqualValues(t, i+1, ev.(map[string]any)["sequence"])
	}

	// paging by token and by after_sequence
	var seqs []float64
	path := "/v1/orders/" + o.String() + "/events?limit=3"
	for {
		b := e.ok(e.get(path))
		for _, ev := range b["events"].([]any) {
			seqs = append(seqs, ev.(map[string]any)["sequence"].(float64))
		}
		tok, _ := b["next_page_token"].(string)
		if tok == "" {
			break
		}
		path = "/v1/orders/" + o.String() + "/events?limit=3&page_token=" + tok
	}
	require.Equal(t, []float64{1, 2, 3, 4}, seqs)
	b := e.ok(e.get("/v1/orders/" + o.String() + "/events?after_sequence=2&limit=1"))
	require.Len(t, b["events"], 1)
	require.EqualValues(t, 3, b["events"].([]any)[0].(map[string]any)["sequence"])
	require.NotEmpty(t, b["next_page_token"])
	require.Equal(t, []any{}, e.ok(e.get("/v1/orders/" + o.String() + "/events?after_sequence=4"))["events"])
	require.Equal(t, []any{}, e.ok(e.get("/v1/orders/" + o.String() + "/events?after_sequence=40"))["events"])

	cust := e.ok(e.get("/v1/customers/" + c.String() + "/events"))
	require.Equal(t, "customer", cust["aggregate_type"])
	require.Equal(t, "CustomerRegistered", cust["events"].([]any)[0].(map[string]any)["type"])

	tok := e.ok(e.get("/v1/orders/" + o.String() + "/events?limit=1"))["next_page_token"].(string)
	other := e.createOrder(c)
	for _, tc := range []struct{ path, slug, field string }{
		{"/v1/orders/" + other.String() + "/events?page_token=" + tok, "invalid-parameter", "page_token"},
		{"/v1/customers/" + c.String() + "/events?page_token=" + tok, "invalid-parameter", "page_token"},
		{"/v1/orders/" + o.String() + "/events?page_token=" + tok + "&after_sequence=1", "invalid-parameter", "page_token"},
		{"/v1/orders/" + o.String() + "/events?page_token=" + tok[:len(tok)-1], "invalid-parameter", "page_token"},
		{"/v1/orders/" + o.String() + "/events?after_sequence=-1", "invalid-parameter", "after_sequence"},
		{"/v1/orders/" + o.String() + "/events?after_sequence=9223372036854775807", "invalid-parameter", "after_sequence"},
		{"/v1/orders/" + o.String() + "/events?limit=1000", "invalid-parameter", "limit"},
		{"/v1/orders/" + o.String() + "/events?at_version=1", "invalid-parameter", "at_version"},
		{"/v1/orders/x/events", "invalid-id", "id"},
	} {
		e.problem(e.get(tc.path), 400, tc.slug, tc.field)
	}
	e.problem(e.get("/v1/orders/"+unknownID+"/events"), 404, "not-found", "id")
	e.problem(e.get("/v1/customers/"+o.String()+"/events"), 404, "not-found", "id")
	e.problem(e.get("/v1/orders/"+c.String()+"/events"), 404, "not-found", "id")
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	a := e.get("/openapi.json")
	require.Equal(t, 200, a.Status)
	require.Equal(t, "3.1.0", a.Body["openapi"])
}

// What a user asks of an order — where the parcel is, why it was
// cancelled, what it costs — is in its answer, from the read model and at
// a past version alike, and the listings show each order's item count,
// totals and latest change.
func TestOrderDetails(t *testing.T) {
	e := newEnv(t)
	c := e.registerCustomer()
	views := []projector.View[readmodel.Order]{readmodel.OrderReadModel(), readmodel.OrdersByCustomer(), readmodel.OrdersByStatus()}

	delivered := e.createOrder(c)
	e.handleOrder(delivered, order.UpdateItems{Items: items(t, "sku-1", 2, 1999, "sku-2", 3, 250)})
	e.handleOrder(delivered, order.ConfirmOrder{})
	e.handleOrder(delivered, order.ShipOrder{Carrier: "DHL", TrackingNumber: "JJD0001"})
	e.handleOrder(delivered, order.DeliverOrder{Signature: "A. Lovelace"})
	e.projectOrderViews(delivered, 5, views...)

	body := e.ok(e.get("/v1/orders/" + delivered.String()))
	require.Equal(t, "DELIVERED", body["status"])
	require.EqualValues(t, 5, body["item_count"])
	require.Equal(t, []any{map[string]any{"amount_minor": float64(2*1999 + 3*250), "currency": "EUR"}}, body["totals"])
	require.Equal(t, "DHL", body["carrier"])
	require.Equal(t, "JJD0001", body["tracking_number"])
	require.Equal(t, "A. Lovelace", body["delivery_signature"])
	shippedAt, deliveredAt := instant(t, body["shipped_at"]), instant(t, body["delivered_at"])
	require.False(t, deliveredAt.Before(shippedAt))
	require.Equal(t, body["updated_at"], body["delivered_at"])
	for _, absent := range []string{"cancel_reason", "cancelled_by", "deleted_at"} {
		require.NotContains(t, body, absent)
	}

	// at a past version: confirmed, not yet shipped; the same fields the
	// read model has at that version
	past := e.ok(e.get("/v1/orders/" + delivered.String() + "?at_version=3"))
	require.Equal(t, "CONFIRMED", past["status"])
	require.EqualValues(t, 5, past["item_count"])
	for _, absent := range []string{"carrier", "tracking_number", "shipped_at", "delivered_at", "delivery_signature"} {
		require.NotContains(t, past, absent)
	}
	shippedPast := e.ok(e.get("/v1/orders/" + delivered.String() + "?at_version=4"))
	require.Equal(t, body["shipped_at"], shippedPast["shipped_at"])
	require.NotContains(t, shippedPast, "delivered_at")

	cancelled := e.createOrder(c)
	e.handleOrder(cancelled, order.CancelOrder{Reason: "found it cheaper", CancelledBy: "customer"})
	e.projectOrderViews(cancelled, 2, views...)
	body = e.ok(e.get("/v1/orders/" + cancelled.String()))
	require.Equal(t, "CANCELLED", body["status"])
	require.Equal(t, "found it cheaper", body["cancel_reason"])
	require.Equal(t, "customer", body["cancelled_by"])
	require.Equal(t, true, body["is_deleted"])
	require.Equal(t, body["updated_at"], body["deleted_at"])
	require.EqualValues(t, 2, body["item_count"])
	require.NotContains(t, body, "carrier")

	// the listings
	list := e.ok(e.get("/v1/customers/" + c.String() + "/orders"))["orders"].([]any)
	require.Len(t, list, 2)
	byID := map[string]map[string]any{}
	for _, o := range list {
		byID[o.(map[string]any)["id"].(string)] = o.(map[string]any)
	}
	require.EqualValues(t, 5, byID[delivered.String()]["item_count"])
	require.Equal(t, []any{map[string]any{"amount_minor": float64(2*1999 + 3*250), "currency": "EUR"}}, byID[delivered.String()]["totals"])
	require.Equal(t, e.ok(e.get("/v1/orders/" + delivered.String()))["updated_at"], byID[delivered.String()]["updated_at"])
	require.Equal(t, "CANCELLED", byID[cancelled.String()]["status"])
	require.EqualValues(t, 2, byID[cancelled.String()]["item_count"])

	shipped := e.ok(e.get("/v1/orders?status=DELIVERED"))["orders"].([]any)
	require.Len(t, shipped, 1)
	require.Equal(t, byID[delivered.String()], shipped[0].(map[string]any))

	// a row written before schema v0005 and not rewritten since: the new
	// fields are absent, not zero
	legacy := gocql.UUID(uuid.New())
	e.insertStatusOrder("SHIPPED", time.Now().UTC().Truncate(time.Millisecond), legacy, c, 3)
	old := e.ok(e.get("/v1/orders?status=SHIPPED"))["orders"].([]any)[0].(map[string]any)
	require.Equal(t, legacy.String(), old["id"])
	for _, absent := range []string{"item_count", "totals", "updated_at"} {
		require.NotContains(t, old, absent)
	}
}

func instant(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "%v is not a time", v)
	at, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return at
}
