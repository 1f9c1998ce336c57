package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDecodeJSONStrictText: a body is taken exactly as sent or refused.
// Text that is not UTF-8, or escapes that are not Unicode, would be stored
// as U+FFFD (what the client did not send); keys that differ from a field's
// name only in case, and keys sent twice, would silently pick one value.
func TestDecodeJSONStrictText(t *testing.T) {
	const ct = "application/json"
	tests := []struct {
		name  string
		body  string
		slug  string
		field string
	}{
		{name: "invalid utf-8 in a value", body: "{\"customer_id\":\"a\xff\xfeb\"}", slug: "invalid-utf8", field: "customer_id"},
		{name: "invalid utf-8 nested", body: "{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"p\xc3\"}]}", slug: "invalid-utf8", field: "items[0].product_id"},
		{name: "lone high surrogate", body: `{"customer_id":"\ud800"}`, slug: "invalid-utf8", field: "customer_id"},
		{name: "lone low surrogate", body: `{"customer_id":"a\udc00b"}`, slug: "invalid-utf8", field: "customer_id"},
		{name: "high surrogate then letter", body: `{"customer_id":"\ud800\u0041"}`, slug: "invalid-utf8", field: "customer_id"},
		{name: "invalid utf-8 in a map key", body: "{\"customer_id\":\"c\",\"tags\":{\"k\xff\":\"v\"}}", slug: "invalid-utf8", field: "tags"},
		{name: "key in upper case", body: `{"CUSTOMER_ID":"c"}`, slug: "unknown-field", field: "CUSTOMER_ID"},
		{name: "key in mixed case", body: `{"customer_id":"c","items":[{"Product_Id":"p"}]}`, slug: "unknown-field", field: "items[0].Product_Id"},
		{name: "duplicate key", body: `{"customer_id":"a","customer_id":"b"}`, slug: "duplicate-field", field: "customer_id"},
		{name: "duplicate key in other case", body: `{"customer_id":"a","CUSTOMER_ID":"b"}`, slug: "duplicate-field", field: "CUSTOMER_ID"},
		{name: "duplicate key in other case first", body: `{"Customer_ID":"a","customer_id":"b"}`, slug: "duplicate-field", field: "customer_id"},
		{name: "duplicate nested key", body: `{"customer_id":"c","items":[{"quantity":1,"quantity":2}]}`, slug: "duplicate-field", field: "items[0].quantity"},
		{name: "duplicate map key in other case", body: `{"customer_id":"c","tags":{"a":"1","A":"2"}}`, slug: "duplicate-field", field: "tags.A"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v testOrder
			err := DecodeJSON(newJSONRequest(ct, tc.body, int64(len(tc.body))), httptest.NewRecorder(), 1024, &v)
			pe := requireProblem(t, err, http.StatusBadRequest, tc.slug, tc.field)
			require.Equal(t, tc.slug, pe.Problem.Code, "code of %v", pe)
			require.Contains(t, pe.Problem.Detail, tc.field)
		})
	}
}

// TestDecodeJSONAcceptsUnicode: what is valid is kept byte for byte,
// escaped surrogate pairs included.
func TestDecodeJSONAcceptsUnicode(t *testing.T) {
	body := `{"customer_id":"Zoë \ud83d\ude00 😀 \u00e9"}`
	var v testOrder
	require.NoError(t, DecodeJSON(newJSONRequest("application/json", body, int64(len(body))), httptest.NewRecorder(), 1024, &v))
	require.Equal(t, "Zoë 😀 😀 é", v.CustomerID)
}

// TestEveryDecodeProblemHasCode: the README promises a code on every
// error, the body's own included.
func TestEveryDecodeProblemHasCode(t *testing.T) {
	tests := []struct{ contentType, body string }{
		{"text/plain", `{}`},
		{"application/json", ``},
		{"application/json", `{"customer_id": }`},
		{"application/json", `{"colour":"red"}`},
		{"application/json", `{"customer_id":7}`},
		{"application/json", `[]`},
		{"application/json", `{"customer_id":"c","due":"tomorrow"}`},
		{"application/json", `{"items":[]}`},
		{"application/json", `{"customer_id":"` + string(make([]byte, 2000)) + `"}`},
	}
	for _, tc := range tests {
		var v testOrder
		err := DecodeJSON(newJSONRequest(tc.contentType, tc.body, int64(len(tc.body))), httptest.NewRecorder(), 1024, &v)
		pe, ok := err.(*ProblemError)
		require.True(t, ok, "%q: %v", tc.body, err)
		require.NotEmpty(t, pe.Problem.Code, "problem without a code for %q: %+v", tc.body, pe.Problem)
	}
}

// TestDecodeJSONIntegers: a number is an integer when its value is one, as
// JSON Schema (and so the OpenAPI documents) has it: 3.0 and 3e2 are
// integers; fractions and values outside the field's type are not.
func TestDecodeJSONIntegers(t *testing.T) {
	type ints struct {
		I64 int64 `json:"i64"`
		U8  uint8 `json:"u8"`
		I   int   `json:"i"`
	}
	accept := []struct {
		body string
		want ints
	}{
		{`{"i64":1197.0}`, ints{I64: 1197}},
		{`{"i64":3e2,"u8":2.50e2}`, ints{I64: 300, U8: 250}},
		{`{"i64":-0.0}`, ints{}},
		{`{"i64":-9223372036854775808,"i":9223372036854775807}`, ints{I64: -9223372036854775808, I: 9223372036854775807}},
		{`{"i64":1E+3}`, ints{I64: 1000}},
	}
	for _, tc := range accept {
		var v ints
		require.NoError(t, DecodeJSON(newJSONRequest("application/json", tc.body, int64(len(tc.body))), httptest.NewRecorder(), 1024, &v), tc.body)
		require.Equal(t, tc.want, v, tc.body)
	}
	refuse := []struct{ body, field string }{
		{`{"i64":1.5}`, "i64"},
		{`{"i64":9223372036854775808}`, "i64"},
		{`{"i64":-9223372036854775809}`, "i64"},
		{`{"u8":256}`, "u8"},
		{`{"u8":-1}`, "u8"},
		{`{"u8":-0.5}`, "u8"},
		{`{"i64":1e999999999}`, "i64"},
		{`{"i64":1e-1}`, "i64"},
		{`{"i64":"1"}`, "i64"},
	}
	for _, tc := range refuse {
		var v ints
		err := DecodeJSON(newJSONRequest("application/json", tc.body, int64(len(tc.body))), httptest.NewRecorder(), 1024, &v)
		requireProblem(t, err, http.StatusBadRequest, "invalid-type", tc.field)
	}
}
