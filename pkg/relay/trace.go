package relay

import (
	"context"
	"strconv"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/record"
)

// instrumentationName names the relay's tracer.
const instrumentationName = "github.com/orderstream/orderstream/pkg/relay"

// Option configures a Relay.
type Option func(*Relay)

// WithTracerProvider makes the relay trace each publish, gap and re-drive.
// Without it the relay starts no span but still passes the stored trace
// context on in the records' headers.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(r *Relay) {
		if tp != nil {
			r.tracer = tp.Tracer(instrumentationName)
		}
	}
}

// startSend starts the span of one record's publish and writes the span's
// context into the record's traceparent and tracestate headers.
//
// The span is a child of the trace stored with the event (the command's),
// not a new trace linked to it. OpenTelemetry's messaging conventions make
// the context a producer puts on a message the "creation context", and let
// a span for a single message be parented by the context it carries; the
// relay handles exactly one event per record and per span, so a child keeps
// the HTTP request, the commit, the publish and every projector's apply in
// one trace, which a trace id search shows whole. Links are kept for the
// operations that gather many events of many traces (a projector's rebuild,
// a re-drive). The record then carries the publish span's context, so each
// apply is a child of the publish; the envelope keeps the stored one.
func (r *Relay) startSend(ctx context.Context, e eventstore.Event, msg *sarama.ProducerMessage) (context.Context, trace.Span) {
	ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(e.TraceContext))
	ctx, span := r.tracer.Start(ctx, "send "+msg.Topic,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"),
			semconv.MessagingDestinationName(msg.Topic),
			semconv.MessagingKafkaMessageKey(e.AggregateID.String()),
			semconv.MessagingMessageID(e.EventID.String()),
			record.AttrAggregateID.String(e.AggregateID.String()),
			record.AttrSequence.Int64(e.Sequence),
			record.AttrEventType.String(e.Type),
		))
	// A span that records nothing (no tracer provider, or not sampled)
	// leaves the stored context on the record as it is.
	if span.IsRecording() {
		carrier := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, carrier)
		record.SetHeader(msg, record.HeaderTraceparent, carrier.Get(record.HeaderTraceparent))
		record.SetHeader(msg, record.HeaderTracestate, carrier.Get(record.HeaderTracestate))
	}
	return ctx, span
}

// endSend records where the record landed, or why it did not, and ends
// the span.
func endSend(span trace.Span, msg *sarama.ProducerMessage, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		if reason := unpublishable(err); reason != "" {
			span.SetAttributes(attribute.String("error.type", reason))
		}
	} else {
		span.SetAttributes(
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(msg.Partition))),
			semconv.MessagingKafkaOffset(int(msg.Offset)),
		)
	}
	span.End()
}
