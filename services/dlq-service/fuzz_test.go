package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// Arbitrary query strings (and path ids) to every endpoint, through the
// real handler and the real database, authorized: never a panic, never a
// 5xx. No component runs, so a retry or skip waits dlq.retry_timeout
// (kept short) and answers 202.
func FuzzQueryParameters(f *testing.F) {
	e := newEnv(f, func(c *Config) {
		c.DLQ.RetryTimeout, c.DLQ.PollEvery, c.DLQ.BulkTimeout = 30*time.Millisecond, 10*time.Millisecond, 200*time.Millisecond
	})
	ctx := context.Background()
	agg := gocql.UUID(uuid.New())
	head, err := e.dlq.Park(ctx, "projector/order-read-model", eventstore.Event{AggregateID: agg, AggregateType: "order", Sequence: 2, EventID: gocql.UUID(uuid.New()), Type: "OrderConfirmed", Data: []byte(`{}`)}, errors.New("bad"))
	if err != nil {
		f.Fatal(err)
	}
	if err := e.dlq.Raw(ctx, "relay/cdc", map[string]any{"row": 1}, errors.New("unreadable")); err != nil {
		f.Fatal(err)
	}
	page := e.ok(e.get("/v1/dlq?limit=1"))
	token, _ := page["next_page_token"].(string)

	seeds := []string{
		"", "component=relay", "component=projector/order-read-model&event_type=OrderConfirmed", "event_type=", "event_type=%00",
		"aggregate_id=" + agg.String(), "aggregate_id=" + strings.ToUpper(agg.String()), "aggregate_id=x",
		"since=2025-01-01T00:00:00Z", "until=2025-01-01T00:00:00.123456789%2B02:00", "since=0001-01-01T00:00:00Z", "until=9999-12-31T23:59:59Z",
		"since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z", "limit=1", "limit=0", "limit=500", "limit=501", "limit=-1", "limit=1e3",
		"page_token=" + token, "page_token=AQ", "page_token=" + strings.Repeat("A", 100), "page_token=%FF%FE", "page_token=",
		"skip=true", "skip=false", "skip=1", "all=true", "all=true&skip=true", "all=true&component=relay",
		"%zz", "a=b", "&&&", ";", "limit=1;limit=2", "component=a&component=a",
	}
	for i, s := range seeds {
		f.Add(uint8(i), "", s)
	}
	f.Add(uint8(1), head.String(), "")
	f.Add(uint8(2), strings.ToUpper(head.String()), "skip=true")
	f.Add(uint8(3), "00000000-0000-0000-0000-000000000000", "")
	f.Add(uint8(4), "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11", "")

	client := &http.Client{}
	f.Fuzz(func(t *testing.T, route uint8, id, rawQuery string) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		if id == "" || strings.ContainsAny(id, "/?#%") {
			id = head.String()
		}
		path := strings.ReplaceAll(rt.path, "{id}", id)
		var body io.Reader
		if rt.method == http.MethodPost {
			body = strings.NewReader(`{"component":"nobody"}`)
		}
		req, err := http.NewRequest(rt.method, e.url+path+"?"+rawQuery, body)
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(authed); i += 2 {
			req.Header.Set(authed[i], authed[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return // the client refused to send it
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s?%s → %d %s", rt.method, path, rawQuery, resp.StatusCode, raw)
		}
	})
}

var fuzzRoutes = []struct{ method, path string }{
	{http.MethodGet, "/v1/dlq"}, {http.MethodGet, "/v1/dlq/{id}"}, {http.MethodGet, "/v1/dlq/stats"},
	{http.MethodDelete, "/v1/dlq"}, {http.MethodDelete, "/v1/dlq/{id}"}, {http.MethodPost, "/v1/dlq/{id}/retry"}, {http.MethodPost, "/v1/dlq/retry"},
}
