package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Arbitrary bodies to every endpoint, through the real handler and the
// real database: never a panic, never a 5xx.
func FuzzCommandBodies(f *testing.F) {
	seeds := []string{
		`{"name":"Ada","email":"ada@example.org","phone":"+44 20 7946 0958"}`,
		`{"customer_id":"{c}","items":[{"product_id":"a","quantity":1,"unit_price":{"amount_minor":1,"currency":"EUR"}}]}`,
		`{"items":[{"product_id":"a","quantity":-1,"unit_price":{"amount_minor":9223372036854775807,"currency":"EUR"}}]}`,
		`{"carrier":"DHL","tracking_number":"1"}`, `{"reason":"r","cancelled_by":"x"}`, `{"tier":"GOLD"}`,
		`{"line1":"1","city":"c","postal_code":"p","country":"IE"}`, `{"email":"a@b.org"}`, `{"phone":""}`,
		`{}`, `[]`, `null`, ``, `{"name":"\u0000"}`, `{"name":"Robert'); DROP TABLE event_store;--","email":"x@y.org"}`,
		`{"items":[{"product_id":"a","quantity":1e400}]}`, `{"a":1}{"b":2}`, "\xff\xfe",
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s), "application/json")
	}
	f.Add(uint8(0), []byte(`name=a`), "application/x-www-form-urlencoded")
	f.Add(uint8(3), []byte(`{"phone":"+1"}`), "application/json; charset=utf-8")

	e := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, route uint8, body []byte, contentType string) {
		req, err := fuzzRequest(e.url, e.customer, e.order, route, bytes.ReplaceAll(body, []byte("{c}"), []byte(e.customer)), contentType)
		if err != nil {
			return // not a request a client could send
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil && strings.Contains(err.Error(), "invalid header field value") {
			return // the client refused to send it
		}
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q → %d %s", req.Method, req.URL.Path, body, resp.StatusCode, raw)
		}
	})
}

var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/v1/customers"},
	{"PATCH", "/v1/customers/{c}/profile"},
	{"PUT", "/v1/customers/{c}/email"},
	{"PUT", "/v1/customers/{c}/phone"},
	{"POST", "/v1/customers/{c}/addresses"},
	{"PUT", "/v1/customers/{c}/addresses/{a}"},
	{"DELETE", "/v1/customers/{c}/addresses/{a}"},
	{"POST", "/v1/customers/{c}/tier"},
	{"POST", "/v1/customers/{c}/suspend"},
	{"POST", "/v1/customers/{c}/reactivate"},
	{"POST", "/v1/customers/{c}/deactivate"},
	{"POST", "/v1/orders"},
	{"PUT", "/v1/orders/{o}/items"},
	{"POST", "/v1/orders/{o}/confirm"},
	{"POST", "/v1/orders/{o}/ship"},
	{"POST", "/v1/orders/{o}/deliver"},
	{"POST", "/v1/orders/{o}/cancel"},
}

func fuzzRequest(url, customer, order string, route uint8, body []byte, contentType string) (*http.Request, error) {
	rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
	path := strings.NewReplacer("{c}", customer, "{o}", order, "{a}", "11111111-2222-4333-8444-555555555555").Replace(rt.path)
	req, err := http.NewRequest(rt.method, url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	return req, nil
}

type fuzzTarget struct{ url, customer, order string }

// fuzzEnv serves the API on the real stack with one customer and one
// order to aim the commands at.
func fuzzEnv(f *testing.F) fuzzTarget {
	e := newEnv(f)
	c := e.registerCustomer()
	return fuzzTarget{url: e.url, customer: c, order: e.createOrder(c)}
}
