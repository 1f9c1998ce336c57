package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/gocql/gocql"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/logging"
)

func TestForEventCarriesTheEventsIDs(t *testing.T) {
	e := eventstore.Event{
		AggregateID: gocql.MustRandomUUID(), EventID: gocql.MustRandomUUID(), Sequence: 7,
		CorrelationID: "corr-1", CausationID: "cmd-1",
		TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	}
	line := func(ctx context.Context) map[string]any {
		var buf bytes.Buffer
		l := logging.ForEvent(ctx, zerolog.New(&buf), e)
		l.Info().Msg("event published")
		var got map[string]any
		require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
		return got
	}
	got := line(context.Background())
	require.Equal(t, "corr-1", got["correlation_id"])
	require.Equal(t, "cmd-1", got["causation_id"])
	require.Equal(t, e.EventID.String(), got["event_id"])
	require.Equal(t, e.AggregateID.String(), got["aggregate_id"])
	require.EqualValues(t, 7, got["sequence"])
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", got["trace_id"], "from the stored trace context")

	// The span in ctx wins: it is the one that continues the trace here.
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", line(ctx)["trace_id"])

	// No trace at all: no trace_id field rather than a zero one.
	e.TraceContext = nil
	require.NotContains(t, line(context.Background()), "trace_id")
}
