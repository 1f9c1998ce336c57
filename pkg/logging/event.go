package logging

import (
	"context"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// Field names every log line about an event carries, so that one grep of a
// correlation id (or a trace id) across the services' logs shows the whole
// life of a command: its commit, the relay's publish, each projector's
// apply, any dead letter and re-drive.
const (
	FieldCorrelationID = "correlation_id"
	FieldCausationID   = "causation_id"
	FieldEventID       = "event_id"
	FieldAggregateID   = "aggregate_id"
	FieldSequence      = "sequence"
	FieldTraceID       = "trace_id"
)

// ForEvent returns l with the fields that identify e. The trace id is the
// one of the span in ctx (the publish or apply span, which continues the
// event's trace) or else the one stored with the event; absent when
// neither is valid.
func ForEvent(ctx context.Context, l zerolog.Logger, e eventstore.Event) zerolog.Logger {
	c := l.With().
		Str(FieldCorrelationID, e.CorrelationID).
		Str(FieldCausationID, e.CausationID).
		Str(FieldEventID, e.EventID.String()).
		Str(FieldAggregateID, e.AggregateID.String()).
		Int64(FieldSequence, e.Sequence)
	if id := TraceID(ctx, e.TraceContext); id != "" {
		c = c.Str(FieldTraceID, id)
	}
	return c.Logger()
}

// TraceID is the trace id of the span in ctx, or else of the W3C trace
// context in carrier (traceparent), or "".
func TraceID(ctx context.Context, carrier map[string]string) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	if carrier["traceparent"] == "" {
		return ""
	}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier(carrier)))
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}
