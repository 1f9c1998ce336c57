package projector

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/gocql/gocql"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/record"
)

func newTracedProjector(t *testing.T, logs *bytes.Buffer) (*Projector[int], *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	view := View[int]{Name: "test-view", AggregateType: "order",
		Fold:  func(s int, _ eventstore.Event) (int, error) { return s + 1, nil },
		Write: func(*gocql.Batch, gocql.UUID, int, bool, int, int64) error { return nil }}
	p, err := New(DefaultConfig(), view, nil, nil, zerolog.New(logs), nil, WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))))
	require.NoError(t, err)
	return p, rec
}

const (
	commandTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" // stored with the event
	publishTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01" // the relay's publish span
)

// The apply span is a child of the relay's publish span the record's
// headers carry, in the command's trace, with the record's place; without
// those headers it continues the envelope's trace.
func TestProcessSpanIsAChildOfThePublish(t *testing.T) {
	var logs bytes.Buffer
	p, spans := newTracedProjector(t, &logs)
	id := gocql.MustRandomUUID()
	rec := Record{AggregateID: id, Sequence: 2, Topic: "orderstream.orders.v1", Partition: 5, Offset: 42,
		Event:   eventstore.Event{AggregateID: id, Sequence: 2, CorrelationID: "corr-9", TraceContext: map[string]string{"traceparent": commandTraceparent}},
		Headers: record.Headers{EventID: gocql.MustRandomUUID().String(), CorrelationID: "corr-9", TraceContext: map[string]string{"traceparent": publishTraceparent}}}

	ctx, span := p.startProcess(context.Background(), rec)
	l := p.recordLogger(ctx, rec)
	l.Info().Msg("applying")
	endSpan(span, nil)
	s := spans.Ended()[0]
	require.Equal(t, "process orderstream.orders.v1", s.Name())
	require.Equal(t, trace.SpanKindConsumer, s.SpanKind())
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.SpanContext().TraceID().String())
	require.Equal(t, "b7ad6b7169203331", s.Parent().SpanID().String(), "child of the publish span")
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	require.Equal(t, "5", attrs["messaging.destination.partition.id"].AsString())
	require.Equal(t, int64(42), attrs["messaging.kafka.offset"].AsInt64())
	require.Equal(t, "projector-test-view", attrs["messaging.consumer.group.name"].AsString())
	require.Equal(t, id.String(), attrs[record.AttrAggregateID].AsString())
	require.Equal(t, int64(2), attrs[record.AttrSequence].AsInt64())

	var line map[string]any
	require.NoError(t, json.Unmarshal(logs.Bytes(), &line))
	require.Equal(t, "corr-9", line["correlation_id"])
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", line["trace_id"])
	require.Equal(t, id.String(), line["aggregate_id"])

	// An older record without the publish span's headers: the envelope's.
	rec.Headers.TraceContext = nil
	_, span = p.startProcess(context.Background(), rec)
	endSpan(span, nil)
	require.Equal(t, "00f067aa0ba902b7", spans.Ended()[1].Parent().SpanID().String())
}

// A record whose envelope could not be read still logs its event's ids,
// from the headers.
func TestRecordLoggerFallsBackToTheHeaders(t *testing.T) {
	var logs bytes.Buffer
	p, _ := newTracedProjector(t, &logs)
	id, eventID := gocql.MustRandomUUID(), gocql.MustRandomUUID()
	rec := Record{AggregateID: id, Sequence: 4, Err: errUnreadable,
		Headers: record.Headers{EventID: eventID.String(), CorrelationID: "corr-h", CausationID: "cause-h", TraceContext: map[string]string{"traceparent": publishTraceparent}}}
	l := p.recordLogger(context.Background(), rec)
	l.Warn().Msg("applying a record failed; retrying")
	var line map[string]any
	require.NoError(t, json.Unmarshal(logs.Bytes(), &line))
	require.Equal(t, "corr-h", line["correlation_id"])
	require.Equal(t, "cause-h", line["causation_id"])
	require.Equal(t, eventID.String(), line["event_id"])
	require.EqualValues(t, 4, line["sequence"])
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", line["trace_id"])
}

var errUnreadable = errPermanent
