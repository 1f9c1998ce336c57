package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

type testMoney struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
}

type testItem struct {
	ProductID string     `json:"product_id"`
	Quantity  int        `json:"quantity"`
	UnitPrice *testMoney `json:"unit_price"`
}

// testOrder stands for a command request: nested objects, slices, ints,
// strings, and a Validate hook that checks required fields.
type testOrder struct {
	CustomerID string            `json:"customer_id"`
	Items      []testItem        `json:"items"`
	Tags       map[string]string `json:"tags"`
	Due        *time.Time        `json:"due"`
	Priority   uint8             `json:"priority"`
}

func (o *testOrder) Validate() error {
	if o.CustomerID == "" {
		return MissingField("customer_id")
	}
	for i, it := range o.Items {
		if it.Quantity <= 0 {
			return NewProblem(http.StatusBadRequest, "invalid-value", "Invalid value", "quantity must be positive").
				WithField(fmt.Sprintf("items[%d].quantity", i))
		}
	}
	if o.CustomerID == "plain-error" {
		return errors.New("customer plain-error is not allowed")
	}
	return nil
}

// newJSONRequest builds a POST with body and content type; a negative
// length hides the length, as a chunked request would.
func newJSONRequest(contentType, body string, length int64) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/orders", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if length < 0 {
		r.ContentLength = -1
	}
	return r
}

func requireProblem(t *testing.T, err error, status int, slug, field string) *ProblemError {
	t.Helper()
	require.Error(t, err)
	pe, ok := errors.AsType[*ProblemError](err)
	require.True(t, ok, "error %T %v is not a *ProblemError", err, err)
	require.Equal(t, status, pe.Problem.Status, "status of %v", pe)
	require.Equal(t, slug, pe.Problem.Slug(), "slug of %v", pe)
	require.Equal(t, field, pe.Problem.Field, "field of %v", pe)
	return pe
}

func TestDecodeJSONErrors(t *testing.T) {
	const ct = "application/json"
	valid := `{"customer_id":"c-1","items":[{"product_id":"p","quantity":2}]}`
	tests := []struct {
		name        string
		contentType string
		encoding    string
		body        string
		status      int
		slug        string
		field       string
		detail      string // a substring of the detail
	}{
		{name: "no content type", body: valid, status: 415, slug: "unsupported-media-type"},
		{name: "text/plain", contentType: "text/plain", body: valid, status: 415, slug: "unsupported-media-type", detail: `"text/plain"`},
		{name: "json suffix type", contentType: "application/merge-patch+json", body: valid, status: 415, slug: "unsupported-media-type"},
		{name: "bad media type syntax", contentType: "application/json; ;", body: valid, status: 415, slug: "unsupported-media-type"},
		{name: "latin1 charset", contentType: "application/json; charset=iso-8859-1", body: valid, status: 415, slug: "unsupported-media-type", detail: "UTF-8"},
		{name: "gzip encoding", contentType: ct, encoding: "gzip", body: valid, status: 415, slug: "unsupported-media-type", detail: "gzip"},
		{name: "empty body", contentType: ct, body: "", status: 400, slug: "malformed-json", detail: "the request body is empty"},
		{name: "whitespace body", contentType: ct, body: " \r\n\t", status: 400, slug: "malformed-json", detail: "the request body is empty"},
		{name: "syntax error", contentType: ct, body: `{"customer_id": }`, status: 400, slug: "malformed-json", detail: "byte offset 16"},
		{name: "truncated", contentType: ct, body: `{"customer_id": "c`, status: 400, slug: "malformed-json", detail: "byte offset 18"},
		{name: "not json", contentType: ct, body: `customer_id=c`, status: 400, slug: "malformed-json", detail: "byte offset 0"},
		{name: "unknown field", contentType: ct, body: `{"customer_id":"c","colour":"red"}`, status: 400, slug: "unknown-field", field: "colour"},
		{name: "unknown nested field", contentType: ct, body: `{"customer_id":"c","items":[{"sku":"x"}]}`, status: 400, slug: "unknown-field", field: "items[0].sku"},
		{name: "unknown field with quote", contentType: ct, body: `{"a\"b":1}`, status: 400, slug: "unknown-field", field: `a"b`},
		{name: "string for int", contentType: ct, body: `{"customer_id":"c","items":[{"quantity":"2"}]}`, status: 400, slug: "invalid-type", field: "items[0].quantity", detail: "must be an integer, got string"},
		{name: "fraction for int", contentType: ct, body: `{"customer_id":"c","items":[{"quantity":1.5}]}`, status: 400, slug: "invalid-type", field: "items[0].quantity", detail: "an integer, got number 1.5"},
		{name: "negative for uint", contentType: ct, body: `{"customer_id":"c","priority":-1}`, status: 400, slug: "invalid-type", field: "priority", detail: "a non-negative integer"},
		{name: "number for string", contentType: ct, body: `{"customer_id":7}`, status: 400, slug: "invalid-type", field: "customer_id", detail: "a string"},
		{name: "object for slice", contentType: ct, body: `{"items":{}}`, status: 400, slug: "invalid-type", field: "items", detail: "an array"},
		{name: "string for nested object", contentType: ct, body: `{"items":[{"unit_price":"1 EUR"}]}`, status: 400, slug: "invalid-type", field: "items[0].unit_price", detail: "an object"},
		{name: "array body", contentType: ct, body: `[{"customer_id":"c"}]`, status: 400, slug: "invalid-type", detail: "must be a JSON object, got an array"},
		{name: "null body", contentType: ct, body: `null`, status: 400, slug: "invalid-type", detail: "got null"},
		{name: "trailing object", contentType: ct, body: valid + ` {}`, status: 400, slug: "malformed-json", detail: "after the JSON object"},
		{name: "trailing garbage", contentType: ct, body: valid + `x`, status: 400, slug: "malformed-json", detail: "after the JSON object"},
		{name: "bad time value", contentType: ct, body: `{"customer_id":"c","due":"tomorrow"}`, status: 400, slug: "invalid-value", field: "due"},
		{name: "validate missing field", contentType: ct, body: `{"items":[]}`, status: 400, slug: "missing-field", field: "customer_id", detail: `field "customer_id" is required`},
		{name: "validate problem kept", contentType: ct, body: `{"customer_id":"c","items":[{"quantity":0}]}`, status: 400, slug: "invalid-value", field: "items[0].quantity", detail: "quantity must be positive"},
		{name: "validate plain error", contentType: ct, body: `{"customer_id":"plain-error"}`, status: 400, slug: "invalid-value", detail: "customer plain-error is not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newJSONRequest(tc.contentType, tc.body, int64(len(tc.body)))
			if tc.encoding != "" {
				r.Header.Set("Content-Encoding", tc.encoding)
			}
			var v testOrder
			err := DecodeJSON(r, httptest.NewRecorder(), 1024, &v)
			pe := requireProblem(t, err, tc.status, tc.slug, tc.field)
			require.Contains(t, pe.Problem.Detail, tc.detail)
			require.True(t, strings.HasPrefix(pe.Problem.Type, ProblemTypeBase))
		})
	}
}

func TestDecodeJSONAccepts(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
	}{
		{name: "plain", contentType: "application/json", body: `{"customer_id":"c-1","items":[{"product_id":"p","quantity":2,"unit_price":{"amount_minor":1999,"currency":"EUR"}}],"tags":{"a":"b"}}`},
		{name: "charset utf-8", contentType: "application/json; charset=utf-8", body: `{"customer_id":"c-1","items":[{"product_id":"p","quantity":2,"unit_price":{"amount_minor":1999,"currency":"EUR"}}],"tags":{"a":"b"}}`},
		{name: "upper case type and charset", contentType: "Application/JSON; charset=UTF-8", body: `{"customer_id":"c-1","items":[{"product_id":"p","quantity":2,"unit_price":{"amount_minor":1999,"currency":"EUR"}}],"tags":{"a":"b"}}`},
		{name: "surrounding whitespace", contentType: "application/json", body: "\n  {\"customer_id\":\"c-1\",\"items\":[{\"product_id\":\"p\",\"quantity\":2,\"unit_price\":{\"amount_minor\":1999,\"currency\":\"EUR\"}}],\"tags\":{\"a\":\"b\"}}  \r\n"},
	}
	want := testOrder{
		CustomerID: "c-1",
		Items:      []testItem{{ProductID: "p", Quantity: 2, UnitPrice: &testMoney{AmountMinor: 1999, Currency: "EUR"}}},
		Tags:       map[string]string{"a": "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got testOrder
			require.NoError(t, DecodeJSON(newJSONRequest(tc.contentType, tc.body, int64(len(tc.body))), httptest.NewRecorder(), 1024, &got))
			require.Equal(t, want, got)
		})
	}
}

func TestDecodeJSONLimit(t *testing.T) {
	// A valid body padded with trailing spaces to exactly n bytes.
	bodyOf := func(n int) string {
		b := `{"customer_id":"c"}`
		return b + strings.Repeat(" ", n-len(b))
	}
	const limit = 64
	tests := []struct {
		name    string
		size    int
		chunked bool // hide the length, so that only reading finds the excess
		tooBig  bool
	}{
		{name: "at limit", size: limit},
		{name: "one over", size: limit + 1, tooBig: true},
		{name: "at limit unknown length", size: limit, chunked: true},
		{name: "one over unknown length", size: limit + 1, chunked: true, tooBig: true},
		{name: "far over unknown length", size: 10 * limit, chunked: true, tooBig: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			length := int64(tc.size)
			if tc.chunked {
				length = -1
			}
			var v testOrder
			err := DecodeJSON(newJSONRequest("application/json", bodyOf(tc.size), length), httptest.NewRecorder(), limit, &v)
			if !tc.tooBig {
				require.NoError(t, err)
				require.Equal(t, "c", v.CustomerID)
				return
			}
			pe := requireProblem(t, err, http.StatusRequestEntityTooLarge, "payload-too-large", "")
			require.Contains(t, pe.Problem.Detail, "64 bytes")
		})
	}
}

func TestDecodeJSONDefaultLimit(t *testing.T) {
	body := `{"customer_id":"c","tags":{"k":"` + strings.Repeat("x", int(DefaultMaxBodyBytes)) + `"}}`
	var v testOrder
	err := DecodeJSON(newJSONRequest("application/json", body, -1), httptest.NewRecorder(), 0, &v)
	requireProblem(t, err, http.StatusRequestEntityTooLarge, "payload-too-large", "")
}

func TestDecodeJSONUnreadableBody(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/v1/orders", io.NopCloser(failingReader{}))
	r.Header.Set("Content-Type", "application/json")
	var v testOrder
	requireProblem(t, DecodeJSON(r, httptest.NewRecorder(), 1024, &v), http.StatusBadRequest, "unreadable-body", "")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

func TestDecodeJSONNotAPointer(t *testing.T) {
	var v testOrder
	err := DecodeJSON(newJSONRequest("application/json", `{}`, 2), httptest.NewRecorder(), 1024, v)
	requireProblem(t, err, http.StatusInternalServerError, "internal-error", "")
}

// fuzzOrder has no Validate, so that bodies which decode get past it.
type fuzzOrder struct {
	ID       string `json:"id"`
	Customer struct {
		Name    string   `json:"name"`
		Tier    int8     `json:"tier"`
		Emails  []string `json:"emails"`
		Address *struct {
			Lines   []string `json:"lines"`
			Country string   `json:"country"`
		} `json:"address"`
	} `json:"customer"`
	Items []struct {
		SKU      string  `json:"sku"`
		Quantity uint32  `json:"quantity"`
		Price    int64   `json:"price"`
		Weight   float64 `json:"weight"`
	} `json:"items"`
	Flags map[string]bool `json:"flags"`
	At    time.Time       `json:"at"`
}

func FuzzDecodeJSON(f *testing.F) {
	seeds := []struct{ ct, body string }{
		{"application/json", `{"id":"o-1","customer":{"name":"Ada","tier":2,"emails":["a@b.c"],"address":{"lines":["1 Main St"],"country":"GB"}},"items":[{"sku":"x","quantity":3,"price":1999,"weight":0.5}],"flags":{"gift":true},"at":"2024-01-02T03:04:05Z"}`},
		{"application/json; charset=utf-8", `{"items":[{"quantity":-1}]}`},
		{"application/json", `{"customer":{"tier":300}}`},
		{"application/json", `{"unknown":1}`},
		{"application/json", `{"id":"a"} {"id":"b"}`},
		{"application/json", `[1,2,3]`},
		{"application/json", `null`},
		{"application/json", `{"at":"not a time"}`},
		{"application/json", `{"id":"\ud800"}`},
		{"application/json", "{\"id\":\"a\xff\"}"},
		{"application/json", `{"ID":"a","id":"b"}`},
		{"application/json", `{"id":"a","id":"b"}`},
		{"application/json", "\xef\xbb\xbf{}"},
		{"application/json", `{"items":[{"price":1e400}]}`},
		{"text/plain", `{}`},
		{"", ``},
		{"application/json", ``},
		{"application/json", `{"customer":{"address":{"lines":"x"}}}`},
		{"application/json", strings.Repeat("[", 300)},
	}
	for _, s := range seeds {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/orders", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", contentType)
		if len(body)%2 == 1 {
			r.ContentLength = -1 // exercise the read path as well as the length check
		}
		var v fuzzOrder
		err := DecodeJSON(r, httptest.NewRecorder(), 512, &v)
		if err == nil {
			if !json.Valid(body) {
				t.Fatalf("accepted invalid JSON %q", body)
			}
			// Accepted text is exactly what was sent: valid UTF-8, and no
			// string decoded to the replacement character unless sent.
			if !utf8.Valid(body) {
				t.Fatalf("accepted invalid UTF-8 %q", body)
			}
			if strings.Contains(fmt.Sprintf("%+v", v), "\uFFFD") && !strings.Contains(string(body), "\uFFFD") &&
				!strings.Contains(strings.ToLower(string(body)), `\ufffd`) {
				t.Fatalf("decoded %q to U+FFFD that was not sent", body)
			}
			return
		}
		pe, ok := errors.AsType[*ProblemError](err)
		if !ok {
			t.Fatalf("error %T %v is not a *ProblemError", err, err)
		}
		switch pe.Problem.Status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("status %d for %q (%q): %v", pe.Problem.Status, body, contentType, pe)
		}
		if !strings.HasPrefix(pe.Problem.Type, ProblemTypeBase) || pe.Problem.Title == "" {
			t.Fatalf("incomplete problem %+v", pe.Problem)
		}
	})
}
