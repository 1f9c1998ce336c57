package projector

import (
	"context"
	"strconv"

	"github.com/gocql/gocql"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/logging"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/redrive"
)

// instrumentationName names the projectors' tracer.
const instrumentationName = "github.com/orderstream/orderstream/pkg/projector"

// attrProjection names the read model on the projector's spans.
const attrProjection = attribute.Key("orderstream.projection")

// Option configures a Projector.
type Option func(*projectorOptions)

type projectorOptions struct {
	tracer      trace.Tracer
	deadLetters redrive.DeadLetters
	checkpoints Checkpoints
	generations GenerationStore
}

// WithCheckpoints makes the projector keep its checkpoints, and write its
// rows, in c instead of the session's tables (MemoryCheckpoints in unit
// tests).
func WithCheckpoints(c Checkpoints) Option {
	return func(o *projectorOptions) { o.checkpoints = c }
}

// WithDeadLetters makes the projector dead-letter, park and take retry
// requests in store instead of the session's tables (deadletter.Memory in
// unit tests).
func WithDeadLetters(store redrive.DeadLetters) Option {
	return func(o *projectorOptions) { o.deadLetters = store }
}

// WithTracerProvider makes the projector trace each record it applies, the
// gaps it fills, its re-drives and rebuilds.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *projectorOptions) {
		if tp != nil {
			o.tracer = tp.Tracer(instrumentationName)
		}
	}
}

// traceContext is the trace a record continues: the relay's publish span
// the headers carry, or else the command's trace in the envelope.
func (rec Record) traceContext() map[string]string {
	if rec.Headers.TraceContext["traceparent"] != "" {
		return rec.Headers.TraceContext
	}
	return rec.Event.TraceContext
}

// startProcess starts the span of applying one record: a child of the
// relay's publish span (whose context the record carries), so that the
// command, its publish and every projector's apply share one trace. The
// relay's trace.go says why a child rather than a link: one span handles
// exactly one record.
func (p *Projector[S]) startProcess(ctx context.Context, rec Record) (context.Context, trace.Span) {
	ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(rec.traceContext()))
	topic := rec.Topic
	if topic == "" {
		topic = p.Topic()
	}
	return p.tracer.Start(ctx, "process "+topic,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
			semconv.MessagingDestinationName(topic),
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(rec.Partition))),
			semconv.MessagingKafkaOffset(int(rec.Offset)),
			semconv.MessagingConsumerGroupName(p.cfg.Group),
			semconv.MessagingKafkaMessageKey(rec.AggregateID.String()),
			semconv.MessagingMessageID(rec.Headers.EventID),
			record.AttrAggregateID.String(rec.AggregateID.String()),
			record.AttrSequence.Int64(rec.Sequence),
			attrProjection.String(p.view.Name),
		))
}

// endSpan records err, if any, and ends span.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// recordLogger is the projector's logger with the ids of the record's
// event: from the envelope, or from the headers when the envelope could
// not be read.
func (p *Projector[S]) recordLogger(ctx context.Context, rec Record) zerolog.Logger {
	e := rec.Event
	if rec.Err != nil || e.AggregateID != rec.AggregateID {
		e = eventstore.Event{AggregateID: rec.AggregateID, Sequence: rec.Sequence, CorrelationID: rec.Headers.CorrelationID, CausationID: rec.Headers.CausationID,
			TraceContext: rec.traceContext()}
		e.EventID, _ = gocql.ParseUUID(rec.Headers.EventID)
	}
	return logging.ForEvent(ctx, p.logger, e)
}
