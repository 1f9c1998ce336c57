package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Observe records v on h with the trace id of the sampled span in ctx as
// an exemplar, so that a latency panel can jump from a slow bucket to the
// trace that fell into it. Without a sampled span (tracing off, or the
// trace not sampled) it is a plain Observe. Exemplars are exposed only in
// the OpenMetrics format, which the admin server offers.
func Observe(ctx context.Context, h prometheus.Observer, v float64) {
	sc := trace.SpanContextFromContext(ctx)
	if eo, ok := h.(prometheus.ExemplarObserver); ok && sc.IsSampled() {
		eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": sc.TraceID().String()})
		return
	}
	h.Observe(v)
}
