package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/orderstream/orderstream/pkg/httpapi"
)

// The request-duration histogram carries the request's trace id as an
// exemplar, so a slow bucket leads to its trace.
func TestRequestDurationHasTheTraceAsExemplar(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	reg := prometheus.NewRegistry()
	r, err := httpapi.NewRouter([]byte(`{}`), zerolog.Nop(), reg, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)), nil)
	require.NoError(t, err)
	r.Get("/v1/ping", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/ping", nil))

	require.Len(t, spans.Ended(), 1)
	want := spans.Ended()[0].SpanContext().TraceID().String()
	families, err := reg.Gather()
	require.NoError(t, err)
	var got []string
	for _, f := range families {
		if f.GetName() != "orderstream_http_request_duration_seconds" {
			continue
		}
		for _, b := range f.GetMetric()[0].GetHistogram().GetBucket() {
			for _, l := range b.GetExemplar().GetLabel() {
				got = append(got, l.GetName()+"="+l.GetValue())
			}
		}
	}
	require.Equal(t, []string{"trace_id=" + want}, got)
}
