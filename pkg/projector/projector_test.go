package projector

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/relay"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	c := DefaultConfig()
	c.MaxAttempts, c.TopicPrefix, c.RebuildRanges = 0, "", 0
	err := c.Validate()
	require.ErrorContains(t, err, `"max_attempts"`)
	require.ErrorContains(t, err, `"topic_prefix"`)
	require.ErrorContains(t, err, `"rebuild_ranges"`)
}

// consumed turns what the relay produces into what a consumer receives.
func consumed(t *testing.T, msg *sarama.ProducerMessage) *sarama.ConsumerMessage {
	t.Helper()
	key, err := msg.Key.Encode()
	require.NoError(t, err)
	value, err := msg.Value.Encode()
	require.NoError(t, err)
	out := &sarama.ConsumerMessage{Topic: msg.Topic, Key: key, Value: value, Partition: 2, Offset: 7}
	for _, h := range msg.Headers {
		out.Headers = append(out.Headers, &sarama.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return out
}

func TestDecodeReadsTheRelaysRecords(t *testing.T) {
	e := eventstore.Event{
		AggregateID: gocql.UUID(uuid.New()), AggregateType: "order", Sequence: 3, EventID: gocql.UUID(uuid.New()),
		Type: "OrderShipped", Version: 1, Data: []byte(`{"carrier":"DHL","trackingNumber":"T1"}`),
		CausationID: "cause", CorrelationID: "corr", OccurredAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	}
	msg, err := relay.Message(e)
	require.NoError(t, err)
	rec, err := Decode(consumed(t, msg))
	require.NoError(t, err)
	require.NoError(t, rec.Err)
	require.Equal(t, e.AggregateID, rec.AggregateID)
	require.Equal(t, int64(3), rec.Sequence)
	require.Equal(t, int32(2), rec.Partition)
	require.Equal(t, int64(7), rec.Offset)
	require.Equal(t, e.EventID, rec.Event.EventID)
	require.Equal(t, e.Type, rec.Event.Type)
	require.Equal(t, e.OccurredAt, rec.Event.OccurredAt)
	require.Equal(t, e.TraceContext, rec.Event.TraceContext)
	require.JSONEq(t, string(e.Data), string(rec.Event.Data))
	require.Equal(t, RecordHeaders{EventID: e.EventID.String(), CorrelationID: "corr", CausationID: "cause", TraceContext: e.TraceContext}, rec.Headers)
	require.Equal(t, msg.Topic, rec.Topic)
}

func TestDecodeRejectsWhatCannotBePlaced(t *testing.T) {
	id := uuid.NewString()
	seq := &sarama.RecordHeader{Key: []byte(relay.HeaderSequence), Value: []byte("4")}

	_, err := Decode(&sarama.ConsumerMessage{Key: []byte("not-a-uuid"), Headers: []*sarama.RecordHeader{seq}})
	require.ErrorContains(t, err, "not an aggregate id")
	_, err = Decode(&sarama.ConsumerMessage{Key: []byte(id)})
	require.ErrorContains(t, err, "no sequence header")
	_, err = Decode(&sarama.ConsumerMessage{Key: []byte(id), Headers: []*sarama.RecordHeader{{Key: []byte(relay.HeaderSequence), Value: []byte("-1")}}})
	require.ErrorContains(t, err, "bad sequence header")

	// Placeable but unreadable: event_store has the event, so the record
	// is not an error; Handle reads the event from the store instead.
	rec, err := Decode(&sarama.ConsumerMessage{Key: []byte(id), Value: []byte(`{"not":"an envelope"`), Headers: []*sarama.RecordHeader{seq}})
	require.NoError(t, err)
	require.Equal(t, int64(4), rec.Sequence)
	require.Error(t, rec.Err)
}
