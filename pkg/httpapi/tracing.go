package httpapi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// instrumentationName names the tracer, so that spans say which code made
// them.
const instrumentationName = "github.com/orderstream/orderstream/pkg/httpapi"

// Tracing continues the caller's trace (W3C traceparent and tracestate, read
// by prop) with a server span per request and puts the span in the request
// context. The span starts named by the method alone, since the route is
// known only after chi has matched it, and is renamed "METHOD route" (such as
// "GET /v1/orders/{id}") when the handler returns; a request no route matched
// keeps the bare method, as OpenTelemetry's HTTP conventions ask. 5xx answers
// and panics mark the span as failed. A nil tp traces nothing; a nil prop
// reads W3C trace context only.
func Tracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) func(http.Handler) http.Handler {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	tracer := tp.Tracer(instrumentationName)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			method := methodLabel(r.Method)
			ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span := tracer.Start(ctx, method,
				trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(
					semconv.HTTPRequestMethodKey.String(method),
					semconv.URLPath(r.URL.Path),
					semconv.UserAgentOriginal(r.UserAgent()),
				))
			rec := wrapWriter(w)
			completed := false
			defer func() {
				if route := chi.RouteContext(r.Context()).RoutePattern(); route != "" {
					span.SetName(method + " " + route)
					span.SetAttributes(semconv.HTTPRoute(route))
				}
				status := rec.statusFor(completed)
				span.SetAttributes(semconv.HTTPResponseStatusCode(status))
				switch {
				case !completed:
					span.SetStatus(codes.Error, "handler panicked")
				case status >= 500:
					span.SetStatus(codes.Error, http.StatusText(status))
				}
				span.End()
			}()
			next.ServeHTTP(rec, r.WithContext(ctx))
			completed = true
		})
	}
}

// TraceContext returns the propagation headers (traceparent, tracestate and
// whatever else prop writes) of the span in ctx, to store on the events a
// request produces so that the relay and projectors continue its trace. It
// returns an empty map when ctx holds no valid span. A nil prop writes W3C
// trace context only.
func TraceContext(ctx context.Context, prop propagation.TextMapPropagator) map[string]string {
	out := map[string]string{}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return out
	}
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	prop.Inject(ctx, propagation.MapCarrier(out))
	return out
}
