package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/httpapi"
	"github.com/orderstream/orderstream/pkg/httpapi/httpapitest"
)

// Every route is documented in openapi.json and every documented route
// exists, with the same methods.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	httpapitest.RequireOpenAPIMatchesRoutes(t, openAPI, (&api{}).routes)
}

// Every $ref points at a component that exists.
func TestOpenAPIRefsResolve(t *testing.T) {
	httpapitest.RequireOpenAPIRefsResolve(t, openAPI)
}

// openAPISchemas compiles schemas of openapi.json by JSON pointer, with
// formats asserted, as a schema-driven fuzzer reads them.
type openAPISchemas struct {
	mu    sync.Mutex // the compiler and the cache are shared by concurrent requests
	c     *jsonschema.Compiler
	cache map[string]*jsonschema.Schema
}

func newOpenAPISchemas(t testing.TB) *openAPISchemas {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPI))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	require.NoError(t, c.AddResource("openapi.json", doc))
	return &openAPISchemas{c: c, cache: map[string]*jsonschema.Schema{}}
}

// schema compiles the schema at pointer (e.g.
// /components/parameters/Id/schema).
func (s *openAPISchemas) schema(t testing.TB, pointer string) *jsonschema.Schema {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.cache[pointer]; ok {
		return sch
	}
	sch, err := s.c.Compile("openapi.json#" + pointer)
	require.NoError(t, err, pointer)
	s.cache[pointer] = sch
	return sch
}

// Each query and path parameter's schema in openapi.json accepts exactly
// what the server accepts: a value the schema allows is not refused for
// its form, and a value it refuses is a 400 naming the parameter. (The
// rules between parameters — at_version with min_version, the order of
// created_after and created_before — cannot be said in a parameter's
// schema; the descriptions and the BadRequest response say them. A page
// token of the right form is still refused unless this service signed it.)
func TestOpenAPIParametersAgreeWithServer(t *testing.T) {
	s := newOpenAPISchemas(t)
	integers := []string{"0", "1", "2", "-1", "-0", "01", "+1", "1e3", "1.5", " 1", "1 ", "", "x", "50", "500", "501",
		"4611686018427387903", "4611686018427387904", "9223372036854775807", "9223372036854775808", "99999999999999999999"}
	times := []string{"2025-01-31T12:00:00Z", "2025-01-31T12:00:00.123456789Z", "2025-01-31T12:00:00.1234567891Z",
		"2025-01-31T12:00:00+01:00", "2025-01-31T12:00:00-23:59", "2025-01-31T12:00:00+24:00", "2025-01-31t12:00:00z",
		"2025-01-31T12:00:00,5Z", "2025-01-31T23:59:60Z", "2025-01-31T24:00:00Z", "2025-13-01T00:00:00Z", "2025-02-30T00:00:00Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2025-01-31", "2025-01-31T12:00Z", "2025-01-31 12:00:00Z", "",
		"2025-01-31T12:00:00", "yesterday"}
	ids := []string{unknownID, strings.ToUpper(unknownID), "00000000-0000-0000-0000-000000000000", strings.ReplaceAll(unknownID, "-", ""),
		"{" + unknownID + "}", "urn:uuid:" + unknownID, unknownID[:35], unknownID + "0", "not-a-uuid", "", "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c1g"}
	statuses := []string{"CREATED", "created", "Confirmed", "SHIPPED", "delivered", "CANCELLED", "CANCELED", " CREATED", "CREATED ", "", "LOST", "CREATEDX"}
	tokens := []string{"", "!!!", "abc=", "a b", strings.Repeat("A", 2049), "é"}

	type param struct {
		name, pointer string
		values        []string
		integer       bool
		// accepted tells whether the server takes value for this
		// parameter on its own.
		accepted func(value string) bool
	}
	parses := func(field string, parse func(string) error) func(string) bool {
		return func(v string) bool {
			err := parse(field + "=" + url.QueryEscape(v))
			var pe *httpapi.ProblemError
			if errors.As(err, &pe) && pe.Problem.Field != field {
				t.Fatalf("%s=%q: a problem naming %q", field, v, pe.Problem.Field)
			}
			return err == nil
		}
	}
	ignore := func(f func(string) (listParams, error)) func(string) error {
		return func(raw string) error { _, err := f(raw); return err }
	}
	byID := func(raw string) error { _, err := parseByID(raw); return err }
	history := func(raw string) error { _, err := parseHistory(raw); return err }
	status := func(raw string) error { _, _, err := parseStatusOrders(raw); return err }
	for _, p := range []param{
		{"id", "/components/parameters/Id/schema", ids, false, func(v string) bool { _, err := parseID(v, "id"); return err == nil }},
		{"at_version", "/components/parameters/AtVersion/schema", integers, true, parses("at_version", byID)},
		{"min_version", "/components/parameters/MinVersion/schema", integers, true, parses("min_version", byID)},
		{"limit", "/components/parameters/Limit/schema", integers, true, parses("limit", history)},
		{"after_sequence", "/components/parameters/AfterSequence/schema", integers, true, parses("after_sequence", history)},
		{"created_after", "/components/parameters/CreatedAfter/schema", times, false, parses("created_after", ignore(parseCustomerOrders))},
		{"created_before", "/components/parameters/CreatedBefore/schema", times, false, parses("created_before", ignore(parseCustomerOrders))},
		{"status", "/components/parameters/Status/schema", statuses, false, func(v string) bool {
			return parses("status", status)(v)
		}},
	} {
		sch := s.schema(t, p.pointer)
		for _, v := range p.values {
			var inst any = v
			if p.integer {
				// A fuzzer sends an integer parameter as its JSON text;
				// anything that is not one is a string, which the schema
				// refuses.
				if n, ok := new(big.Int).SetString(v, 10); ok && integerForm.MatchString(v) {
					inst = json.Number(n.String())
				}
			}
			schemaOK := sch.Validate(inst) == nil
			require.Equal(t, schemaOK, p.accepted(v), "%s=%q: the schema says %v", p.name, v, schemaOK)
		}
	}

	// page_token: what the schema refuses, the server refuses too.
	sch, tokens2 := s.schema(t, "/components/parameters/PageToken/schema"), newSigner([]byte("a test key of at least thirty-two bytes"))
	good := tokens2.sign("scope", []byte("position"))
	require.NoError(t, sch.Validate(good), "a real token fits the schema")
	for _, v := range tokens {
		require.Error(t, sch.Validate(v), "%q", v)
		_, err := tokens2.open("scope", v)
		require.Error(t, err, "%q", v)
	}
}

// documentedPaths are the path templates of openapi.json, as patterns.
var documentedPaths = []struct {
	pattern  *regexp.Regexp
	template string
}{
	{regexp.MustCompile(`^/v1/orders$`), "/v1/orders"},
	{regexp.MustCompile(`^/v1/orders/[^/]+$`), "/v1/orders/{id}"},
	{regexp.MustCompile(`^/v1/orders/[^/]+/events$`), "/v1/orders/{id}/events"},
	{regexp.MustCompile(`^/v1/customers/[^/]+$`), "/v1/customers/{id}"},
	{regexp.MustCompile(`^/v1/customers/[^/]+/orders$`), "/v1/customers/{id}/orders"},
	{regexp.MustCompile(`^/v1/customers/[^/]+/events$`), "/v1/customers/{id}/events"},
}

// requireDocumented checks an answer to GET path against openapi.json:
// its status is documented for the path, its content type is one the
// status documents and its body fits that schema, and the headers the
// answer must carry are there. Paths of no template are not checked.
func (s *openAPISchemas) requireDocumented(t testing.TB, path string, a answer) {
	t.Helper()
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	template := ""
	for _, d := range documentedPaths {
		if d.pattern.MatchString(path) {
			template = d.template
		}
	}
	if template == "" {
		return
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openAPI, &doc))
	status := strconv.Itoa(a.Status)
	raw, ok := doc.Paths[template]["get"].Responses[status]
	require.True(t, ok, "GET %s answered %d, which openapi.json does not document: %s", path, a.Status, a.Raw)
	pointer := "/paths/" + escapePointer(template) + "/get/responses/" + status
	var ref struct {
		Ref string `json:"$ref"`
	}
	require.NoError(t, json.Unmarshal(raw, &ref))
	if ref.Ref != "" {
		pointer = strings.TrimPrefix(ref.Ref, "#")
	}
	var response struct {
		Content map[string]json.RawMessage `json:"content"`
		Headers map[string]struct {
			Required bool `json:"required"`
		} `json:"headers"`
	}
	require.NoError(t, json.Unmarshal(resolvePointer(t, pointer), &response))
	for name, h := range response.Headers {
		if h.Required {
			require.NotEmpty(t, a.Header.Get(name), "GET %s %d: header %s is required", path, a.Status, name)
		}
	}
	if len(response.Content) == 0 {
		require.Empty(t, a.Raw, "GET %s %d documents no body", path, a.Status)
		return
	}
	ctype := a.Header.Get("Content-Type")
	_, ok = response.Content[ctype]
	require.True(t, ok, "GET %s %d: content type %q is not documented", path, a.Status, ctype)
	body, err := jsonschema.UnmarshalJSON(strings.NewReader(a.Raw))
	require.NoError(t, err, "GET %s %d: %s", path, a.Status, a.Raw)
	sch := s.schema(t, pointer+"/content/"+escapePointer(ctype)+"/schema")
	require.NoError(t, sch.Validate(body), "GET %s %d: the body does not fit openapi.json: %s", path, a.Status, a.Raw)
}

// escapePointer escapes a JSON pointer token, and the characters a URI
// fragment cannot hold.
func escapePointer(token string) string {
	token = strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
	return strings.NewReplacer("{", "%7B", "}", "%7D").Replace(token)
}

// resolvePointer returns the JSON at a pointer of openapi.json.
func resolvePointer(t testing.TB, pointer string) json.RawMessage {
	t.Helper()
	var node json.RawMessage = openAPI
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok, err := url.PathUnescape(tok)
		require.NoError(t, err)
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(node, &m), pointer)
		next, ok := m[tok]
		require.True(t, ok, "openapi.json has no %s", pointer)
		node = next
	}
	return node
}

// failures records whether a check failed, for testing a check.
type failures struct {
	testing.TB
	failed bool
}

func (f *failures) Helper()               {}
func (f *failures) Errorf(string, ...any) { f.failed = true }
func (f *failures) FailNow()              { f.failed = true; runtime.Goexit() }

// The check of answers against openapi.json that every test's env.get
// runs catches what it should.
func TestRequireDocumentedCatchesDisagreement(t *testing.T) {
	s := newOpenAPISchemas(t)
	check := func(path string, a answer) bool {
		f := &failures{TB: t}
		done := make(chan struct{})
		go func() { defer close(done); s.requireDocumented(f, path, a) }()
		<-done
		return !f.failed
	}
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	problemHeader := func(extra ...string) http.Header {
		h := http.Header{"Content-Type": {"application/problem+json"}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	order := `{"id":"` + unknownID + `","customer_id":"` + unknownID + `","status":"CREATED","items":[],"item_count":1,` +
		`"totals":[{"amount_minor":5,"currency":"EUR"}],"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z","version":1,"is_deleted":false}`
	unavailable := `{"type":"https://orderstream.dev/problems/unavailable","title":"Service unavailable","status":503,"code":"unavailable"}`
	for _, tc := range []struct {
		name string
		path string
		a    answer
		ok   bool
	}{
		{"a documented order", "/v1/orders/" + unknownID, answer{Status: 200, Header: jsonHeader, Raw: order}, true},
		{"an order without its status", "/v1/orders/" + unknownID, answer{Status: 200, Header: jsonHeader, Raw: strings.Replace(order, `"status":"CREATED",`, "", 1)}, false},
		{"a null carrier", "/v1/orders/" + unknownID, answer{Status: 200, Header: jsonHeader, Raw: strings.Replace(order, `"version":1`, `"version":1,"carrier":null`, 1)}, false},
		{"an undocumented status", "/v1/orders/" + unknownID, answer{Status: 418, Header: jsonHeader, Raw: "{}"}, false},
		{"a 503 with Retry-After", "/v1/orders?status=CREATED", answer{Status: 503, Header: problemHeader("Retry-After", "1"), Raw: unavailable}, true},
		{"a 503 without Retry-After", "/v1/orders?status=CREATED", answer{Status: 503, Header: problemHeader(), Raw: unavailable}, false},
		{"a problem as plain JSON", "/v1/orders?status=CREATED", answer{Status: 503, Header: http.Header{"Content-Type": {"application/json"}, "Retry-After": {"1"}}, Raw: unavailable}, false},
		{"a 304 without a body", "/v1/orders/" + unknownID, answer{Status: 304, Header: http.Header{}}, true},
		{"a path of no template", "/v1/nothing", answer{Status: 418}, true},
	} {
		require.Equal(t, tc.ok, check(tc.path, tc.a), tc.name)
	}
}
