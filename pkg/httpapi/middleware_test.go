package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// syncBuffer is a log sink safe for the handler and the test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines decodes every JSON log line written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "log line %q", l)
		out = append(out, m)
	}
	return out
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestCorrelationID(t *testing.T) {
	tests := []struct {
		name   string
		header string
		set    bool
		echoed bool
	}{
		{name: "absent"},
		{name: "empty", header: "", set: true},
		{name: "valid", header: "req-42_abc:XYZ", set: true, echoed: true},
		{name: "uuid", header: "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11", set: true, echoed: true},
		{name: "128 bytes", header: strings.Repeat("a", 128), set: true, echoed: true},
		{name: "129 bytes", header: strings.Repeat("a", 129), set: true},
		{name: "space", header: "a b", set: true},
		{name: "tab", header: "a\tb", set: true},
		{name: "non-ascii", header: "caf\u00e9", set: true},
		{name: "delete char", header: "a\x7f", set: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var inCtx string
			h := CorrelationID()(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				inCtx = CorrelationIDFrom(r.Context())
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.set {
				r.Header[http.CanonicalHeaderKey(CorrelationIDHeader)] = []string{tc.header}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			got := rec.Header().Get(CorrelationIDHeader)
			require.Equal(t, got, inCtx, "the context holds the id echoed")
			if tc.echoed {
				require.Equal(t, tc.header, got)
				return
			}
			id, err := uuid.Parse(got)
			require.NoError(t, err, "generated id %q", got)
			require.Equal(t, uuid.Version(4), id.Version())
		})
	}
	require.Empty(t, CorrelationIDFrom(t.Context()))
}

func TestRecoverer(t *testing.T) {
	var logs syncBuffer
	logger := zerolog.New(&logs)
	h := CorrelationID()(Recoverer(logger)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("ETag", `"3"`)
		panic("secret boom at 10.0.0.7")
	})))
	r := httptest.NewRequest(http.MethodPost, "/v1/orders", nil)
	r.Header.Set(CorrelationIDHeader, "corr-p")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)

	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.Empty(t, rec.Header().Get("ETag"), "headers of the abandoned answer are dropped")
	require.Equal(t, "corr-p", rec.Header().Get(CorrelationIDHeader))
	p, _ := decodeProblemBody(t, rec)
	require.Equal(t, "internal-error", p.Slug())
	require.Equal(t, "corr-p", p.CorrelationID)
	body := rec.Body.String()
	require.NotContains(t, body, "secret boom")
	require.NotContains(t, body, "goroutine")
	require.NotContains(t, body, ".go:")

	lines := logs.lines(t)
	require.Len(t, lines, 1)
	require.Equal(t, "error", lines[0]["level"])
	require.Equal(t, "secret boom at 10.0.0.7", lines[0]["panic"])
	require.Equal(t, "corr-p", lines[0]["correlation_id"])
	require.Contains(t, lines[0]["stack"], "goroutine")
}

func TestRecovererPassesAborts(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{name: "ErrAbortHandler", handler: func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }},
		{name: "panic after the response started", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"partial":`))
			panic("late")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := Recoverer(zerolog.Nop())(tc.handler)
			require.PanicsWithValue(t, http.ErrAbortHandler, func() {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
			})
		})
	}
}

func TestAccessLog(t *testing.T) {
	var logs syncBuffer
	r := chi.NewRouter()
	r.Use(CorrelationID(), AccessLog(zerolog.New(&logs)))
	r.NotFound(NotFound)
	r.Route("/v1", func(r chi.Router) {
		r.Post("/orders/{id}/confirm", func(w http.ResponseWriter, r *http.Request) {
			AddLogFields(r.Context(), func(e *zerolog.Event) { e.Str("command", "ConfirmOrder").Str("aggregate_id", chi.URLParam(r, "id")) })
			// Fields may come from another goroutine of the handler.
			done := make(chan struct{})
			go func() {
				defer close(done)
				AddLogFields(r.Context(), func(e *zerolog.Event) { e.Str("outcome", "ok") })
			}()
			<-done
			WriteJSON(w, http.StatusAccepted, map[string]int{"version": 2})
		})
		r.Get("/fail", func(w http.ResponseWriter, r *http.Request) {
			WriteError(w, r, http.ErrHandlerTimeout)
		})
	})

	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/v1/orders/o-7/confirm", nil),
		httptest.NewRequest(http.MethodGet, "/v1/fail", nil),
		httptest.NewRequest(http.MethodGet, "/scan/me", nil),
	} {
		req.Header.Set(CorrelationIDHeader, "corr-"+req.Method)
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
	lines := logs.lines(t)
	require.Len(t, lines, 3)

	ok := lines[0]
	require.Equal(t, "info", ok["level"])
	require.Equal(t, "POST", ok["method"])
	require.Equal(t, "/v1/orders/{id}/confirm", ok["route"])
	require.Equal(t, "/v1/orders/o-7/confirm", ok["path"])
	require.EqualValues(t, 202, ok["status"])
	require.EqualValues(t, len(`{"version":2}`+"\n"), ok["bytes"])
	require.Contains(t, ok, "duration_ms")
	require.Equal(t, "corr-POST", ok["correlation_id"])
	require.Equal(t, "ConfirmOrder", ok["command"])
	require.Equal(t, "o-7", ok["aggregate_id"])
	require.Equal(t, "ok", ok["outcome"])
	require.NotContains(t, ok, "trace_id", "no span, no trace id")

	require.Equal(t, "error", lines[1]["level"])
	require.EqualValues(t, 500, lines[1]["status"])
	require.Equal(t, "/v1/fail", lines[1]["route"])

	require.Equal(t, "unmatched", lines[2]["route"])
	require.EqualValues(t, 404, lines[2]["status"])

	// Without AccessLog in the chain, adding fields is harmless.
	AddLogFields(t.Context(), func(e *zerolog.Event) { e.Str("x", "y") })
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	_, err = NewMetrics(reg)
	require.Error(t, err, "registering twice fails instead of panicking")

	r := chi.NewRouter()
	r.Use(m.Middleware())
	r.NotFound(NotFound)
	r.MethodNotAllowed(MethodNotAllowed)
	r.Route("/v1", func(r chi.Router) {
		r.Post("/orders/{id}/confirm", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
		r.Get("/orders/{id}", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) })
	})
	for _, req := range []struct{ method, path string }{
		{http.MethodPost, "/v1/orders/a/confirm"},
		{http.MethodPost, "/v1/orders/b/confirm"},
		{http.MethodGet, "/v1/orders/a"},
		{http.MethodGet, "/wp-admin.php"},
		{http.MethodGet, "/v1/other"},
		{"BREW", "/v1/orders/a"},
	} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}

	tests := []struct {
		route, method, code string
		want                float64
	}{
		{"/v1/orders/{id}/confirm", "POST", "202", 2},
		{"/v1/orders/{id}", "GET", "200", 1},
		{"unmatched", "GET", "404", 2},
		{"unmatched", "_OTHER", "405", 1},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, testutil.ToFloat64(m.requests.WithLabelValues(tc.route, tc.method, tc.code)), "%+v", tc)
	}
	require.Equal(t, 4, testutil.CollectAndCount(m.requests, "orderstream_http_requests_total"))
	require.Equal(t, 4, testutil.CollectAndCount(m.duration, "orderstream_http_request_duration_seconds"))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP orderstream_http_requests_total HTTP requests answered, by chi route pattern ("unmatched" when no route matched), method and status code.
# TYPE orderstream_http_requests_total counter
orderstream_http_requests_total{code="200",method="GET",route="/v1/orders/{id}"} 1
orderstream_http_requests_total{code="202",method="POST",route="/v1/orders/{id}/confirm"} 2
orderstream_http_requests_total{code="404",method="GET",route="unmatched"} 2
orderstream_http_requests_total{code="405",method="_OTHER",route="unmatched"} 1
`), "orderstream_http_requests_total"))
}

func TestTracing(t *testing.T) {
	const (
		traceID      = "4bf92f3577b34da6a3ce929d0e0e4736"
		parentSpanID = "00f067aa0ba902b7"
	)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	prop := propagation.TraceContext{}

	var carried map[string]string
	var inHandler trace.SpanContext
	r := chi.NewRouter()
	r.Use(Tracing(tp, prop))
	r.Route("/v1", func(r chi.Router) {
		r.Get("/things/{id}", func(w http.ResponseWriter, r *http.Request) {
			inHandler = trace.SpanContextFromContext(r.Context())
			carried = TraceContext(r.Context(), prop)
			w.WriteHeader(http.StatusOK)
		})
		r.Get("/broken", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	})

	req := httptest.NewRequest(http.MethodGet, "/v1/things/t-1", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentSpanID+"-01")
	r.ServeHTTP(httptest.NewRecorder(), req)
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/broken", nil))
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nowhere", nil))

	ended := spans.Ended()
	require.Len(t, ended, 3)

	s := ended[0]
	require.Equal(t, "GET /v1/things/{id}", s.Name())
	require.Equal(t, trace.SpanKindServer, s.SpanKind())
	require.Equal(t, traceID, s.SpanContext().TraceID().String())
	require.Equal(t, parentSpanID, s.Parent().SpanID().String())
	require.True(t, s.Parent().IsRemote())
	require.Equal(t, s.SpanContext().SpanID(), inHandler.SpanID(), "the span is in the request context")
	attrs := attribute.NewSet(s.Attributes()...)
	route, _ := attrs.Value("http.route")
	require.Equal(t, "/v1/things/{id}", route.AsString())
	code, _ := attrs.Value("http.response.status_code")
	require.EqualValues(t, 200, code.AsInt64())
	require.Equal(t, codes.Unset, s.Status().Code)

	require.Equal(t, "00-"+traceID+"-"+s.SpanContext().SpanID().String()+"-01", carried["traceparent"])

	require.Equal(t, "GET /v1/broken", ended[1].Name())
	require.Equal(t, codes.Error, ended[1].Status().Code)
	require.False(t, ended[1].Parent().IsValid(), "no traceparent starts a new trace")

	require.Equal(t, "GET", ended[2].Name(), "an unmatched request keeps the bare method")

	require.Empty(t, TraceContext(t.Context(), prop))
}

// TestChainPanic runs the middleware in the documented order and panics in
// the handler: the panic is answered once, counted, logged and traced as a
// failure, and its logged stack still shows where it happened.
func TestChainPanic(t *testing.T) {
	var logs syncBuffer
	logger := zerolog.New(&logs)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })

	r := chi.NewRouter()
	r.Use(CorrelationID(), Recoverer(logger), Tracing(tp, propagation.TraceContext{}), m.Middleware(), AccessLog(logger))
	r.Get("/v1/explode/{id}", panickingHandler)

	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/explode/x", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)

	require.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("/v1/explode/{id}", "GET", "500")))
	ended := spans.Ended()
	require.Len(t, ended, 1)
	require.Equal(t, codes.Error, ended[0].Status().Code)
	require.Equal(t, "GET /v1/explode/{id}", ended[0].Name())

	lines := logs.lines(t)
	require.Len(t, lines, 2, "one access line, one panic line")
	access, panicLine := lines[0], lines[1]
	require.Equal(t, "http request", access["message"])
	require.EqualValues(t, 500, access["status"])
	require.Equal(t, true, access["panicked"])
	require.Equal(t, ended[0].SpanContext().TraceID().String(), access["trace_id"])
	require.Contains(t, panicLine["stack"], "panickingHandler", "the stack is the panic's own, not a re-panic's")
}

func panickingHandler(_ http.ResponseWriter, r *http.Request) {
	parts := strings.Split(r.URL.Path, "/")
	_ = parts[len(parts)] // an index out of range: a runtime panic, as a real bug would be
}
