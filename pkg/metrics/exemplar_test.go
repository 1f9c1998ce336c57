package metrics_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/metrics"
)

func TestObserveAddsTheTraceIDAsExemplar(t *testing.T) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: []float64{1, 2}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(h)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	unsampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))

	metrics.Observe(sampled, h, 0.5)
	metrics.Observe(unsampled, h, 1.5)
	metrics.Observe(context.Background(), h, 1.5)

	families, err := reg.Gather()
	require.NoError(t, err)
	m := families[0].GetMetric()[0].GetHistogram()
	require.Equal(t, uint64(3), m.GetSampleCount())
	ex := m.GetBucket()[0].GetExemplar()
	require.NotNil(t, ex, "the sampled observation's bucket carries its trace")
	require.Equal(t, "trace_id", ex.GetLabel()[0].GetName())
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", ex.GetLabel()[0].GetValue())
	require.Nil(t, m.GetBucket()[1].GetExemplar(), "no exemplar without a sampled span")
}
