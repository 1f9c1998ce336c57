package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Arbitrary query strings (and path ids) to every endpoint, through the
// real handler and the real database: never a panic, never a 5xx.
func FuzzQueryParameters(f *testing.F) {
	e := newEnv(f, func(c *Config) { c.Query.MinVersionTimeout = 20 * time.Millisecond }) // waits stay short
	c := e.registerCustomer()
	o := e.createOrder(c)
	e.projectOrder(o, 1)
	e.projectCustomer(c)
	token := e.ok(e.get("/v1/orders/" + o.String() + "/events?limit=1"))

	seeds := []string{
		"", "at_version=1", "at_version=0", "at_version=99999999999999999999", "min_version=1", "min_version=2",
		"at_version=1&min_version=1", "limit=1", "limit=0", "limit=500", "limit=501", "limit=-1", "limit=1e3",
		"status=CONFIRMED", "status=confirmed&limit=2", "status=", "status=%00", "status=CONFIRMED&status=CREATED",
		"created_after=2025-01-01T00:00:00Z", "created_before=2025-01-01T00:00:00.123456789%2B02:00",
		"created_after=0000-01-01T00:00:00Z", "created_after=9999-12-31T23:59:59Z&created_before=0001-01-01T00:00:00Z",
		"page_token=AQ", "page_token=" + strings.Repeat("A", 100), "page_token=%FF%FE", "page_token=",
		"after_sequence=1", "after_sequence=-1", "after_sequence=9223372036854775807", "after_sequence=1&page_token=x",
		"%zz", "a=b", "&&&", ";", "limit=1;limit=2",
	}
	if tok, ok := token["next_page_token"].(string); ok {
		seeds = append(seeds, "page_token="+tok)
	}
	for i, s := range seeds {
		f.Add(uint8(i), "", s)
	}
	f.Add(uint8(1), "not-a-uuid", "")
	f.Add(uint8(2), "00000000-0000-0000-0000-000000000000", "limit=1")
	f.Add(uint8(3), strings.ToUpper(c.String()), "min_version=1")

	client := &http.Client{}
	f.Fuzz(func(t *testing.T, route uint8, id, rawQuery string) {
		path := fuzzPath(route, id, c.String(), o.String())
		req, err := http.NewRequest(http.MethodGet, e.url+path+"?"+rawQuery, nil)
		if err != nil {
			return // not a request a client could send
		}
		resp, err := client.Do(req)
		if err != nil {
			return // the client refused to send it
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("GET %s?%s → %d %s", path, rawQuery, resp.StatusCode, raw)
		}
	})
}

var fuzzRoutes = []string{
	"/v1/orders", "/v1/orders/{o}", "/v1/orders/{o}/events",
	"/v1/customers/{c}", "/v1/customers/{c}/orders", "/v1/customers/{c}/events",
}

// fuzzPath builds the path of a route, with the fuzzed id when there is
// one and it fits in a path segment, else a real one.
func fuzzPath(route uint8, id, customer, order string) string {
	rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
	if id != "" && !strings.ContainsAny(id, "/?#%") {
		customer, order = id, id
	}
	return strings.NewReplacer("{c}", customer, "{o}", order).Replace(rt)
}
