package relay

import (
	"context"
	"testing"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/record"
)

const storedTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func header(msg *sarama.ProducerMessage, key string) string {
	for _, h := range msg.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// The publish span is a child of the trace stored with the event, carries
// the record's place, and the record carries the publish span's context.
func TestSendSpanContinuesTheEventsTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	r, err := New(DefaultConfig(), nil, nil, &scriptedProducer{}, zerolog.Nop(), prometheus.NewRegistry(), WithTracerProvider(tp))
	require.NoError(t, err)
	e := eventstore.Event{AggregateID: gocql.MustRandomUUID(), EventID: gocql.MustRandomUUID(), Sequence: 3, Type: "OrderConfirmed",
		TraceContext: map[string]string{"traceparent": storedTraceparent}}
	msg := &sarama.ProducerMessage{Topic: "orderstream.orders.v1", Headers: []sarama.RecordHeader{{Key: []byte(record.HeaderTraceparent), Value: []byte(storedTraceparent)}}}
	msg.Partition, msg.Offset = 4, 17 // what the producer sets on success

	ctx, span := r.startSend(context.Background(), e, msg)
	endSend(span, msg, nil)

	spans := rec.Ended()
	require.Len(t, spans, 1)
	s := spans[0]
	require.Equal(t, "send orderstream.orders.v1", s.Name())
	require.Equal(t, trace.SpanKindProducer, s.SpanKind())
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.SpanContext().TraceID().String(), "same trace as the command")
	require.Equal(t, "00f067aa0ba902b7", s.Parent().SpanID().String(), "child of the stored span")
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	require.Equal(t, "kafka", attrs["messaging.system"].AsString())
	require.Equal(t, "orderstream.orders.v1", attrs["messaging.destination.name"].AsString())
	require.Equal(t, "4", attrs["messaging.destination.partition.id"].AsString())
	require.Equal(t, int64(17), attrs["messaging.kafka.offset"].AsInt64())
	require.Equal(t, e.AggregateID.String(), attrs[record.AttrAggregateID].AsString())
	require.Equal(t, int64(3), attrs[record.AttrSequence].AsInt64())

	// The record now names the publish span as its parent, once.
	require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-"+s.SpanContext().SpanID().String()+"-01", header(msg, record.HeaderTraceparent))
	n := 0
	for _, h := range msg.Headers {
		if string(h.Key) == record.HeaderTraceparent {
			n++
		}
	}
	require.Equal(t, 1, n)
	require.Equal(t, s.SpanContext().SpanID(), trace.SpanContextFromContext(ctx).SpanID())
}

// Without a tracer provider the stored trace context passes through as it
// is.
func TestSendWithoutTracingKeepsTheStoredTraceContext(t *testing.T) {
	r, err := New(DefaultConfig(), nil, nil, &scriptedProducer{}, zerolog.Nop(), nil)
	require.NoError(t, err)
	e := eventstore.Event{AggregateID: gocql.MustRandomUUID(), TraceContext: map[string]string{"traceparent": storedTraceparent}}
	msg := &sarama.ProducerMessage{Topic: "t", Headers: []sarama.RecordHeader{{Key: []byte(record.HeaderTraceparent), Value: []byte(storedTraceparent)}}}
	_, span := r.startSend(context.Background(), e, msg)
	endSend(span, msg, nil)
	require.Equal(t, storedTraceparent, header(msg, record.HeaderTraceparent))
}

// A record refused for its own sake ends its span in error with the reason.
func TestSendSpanRecordsTheRefusal(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	r, err := New(DefaultConfig(), nil, nil, &scriptedProducer{}, zerolog.Nop(), nil, WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))))
	require.NoError(t, err)
	msg := &sarama.ProducerMessage{Topic: "t"}
	_, span := r.startSend(context.Background(), eventstore.Event{}, msg)
	endSend(span, msg, &unpublishableError{reason: ReasonTooLarge, err: sarama.ErrMessageSizeTooLarge})
	s := rec.Ended()[0]
	require.Equal(t, "Error", s.Status().Code.String())
	found := false
	for _, kv := range s.Attributes() {
		if kv.Key == "error.type" {
			found = kv.Value.AsString() == ReasonTooLarge
		}
	}
	require.True(t, found, "%v", s.Attributes())
	require.False(t, s.Parent().IsValid(), "no stored trace: a root span")
}

// What a publish's span costs the relay, without a tracer provider (the
// default) and with the SDK recording every span.
func BenchmarkSendSpan(b *testing.B) {
	e := eventstore.Event{AggregateID: gocql.MustRandomUUID(), EventID: gocql.MustRandomUUID(), Sequence: 3, Type: "OrderConfirmed",
		TraceContext: map[string]string{"traceparent": storedTraceparent}}
	for _, bc := range []struct {
		name string
		opts []Option
	}{
		{"noop", nil},
		{"sdk", []Option{WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder())))}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := New(DefaultConfig(), nil, nil, &scriptedProducer{}, zerolog.Nop(), nil, bc.opts...)
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				msg := &sarama.ProducerMessage{Topic: "orderstream.orders.v1", Headers: []sarama.RecordHeader{{Key: []byte(record.HeaderTraceparent), Value: []byte(storedTraceparent)}}}
				_, span := r.startSend(context.Background(), e, msg)
				endSend(span, msg, nil)
			}
		})
	}
}
