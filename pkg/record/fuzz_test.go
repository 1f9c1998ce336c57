package record_test

import (
	"strconv"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/record/recordtest"
)

// FuzzDecodeRecord feeds the record decoder arbitrary keys, sequence
// headers and values, as a corrupt or foreign record on the topic would
// (the seeds are real envelopes of every kind of event Encode writes, and
// broken ones). Decode must never panic; a record it places has a key that
// is an aggregate id and a positive sequence; an event it reads must
// encode to a record that decodes to the same event.
func FuzzDecodeRecord(f *testing.F) {
	for _, e := range events() {
		msg, err := record.Encode(e, "fz")
		require.NoError(f, err)
		c := recordtest.Consumed(msg, 0, 0)
		f.Add(c.Key, strconv.FormatInt(e.Sequence, 10), c.Value)
	}
	e := events()[0]
	f.Add([]byte(e.AggregateID.String()), "1", []byte(`{}`))
	f.Add([]byte(e.AggregateID.String()), "0", []byte(`{"aggregateId":"x"}`))
	f.Add([]byte("not a uuid"), "1", []byte(`null`))
	f.Add([]byte(e.AggregateID.String()), "9223372036854775807", []byte(`{"payload":{"@type":"type.googleapis.com/google.protobuf.Empty"}}`))
	f.Fuzz(func(t *testing.T, key []byte, sequence string, value []byte) {
		msg := &sarama.ConsumerMessage{Key: key, Value: value, Headers: []*sarama.RecordHeader{{Key: []byte(record.HeaderSequence), Value: []byte(sequence)}}}
		rec, err := record.Decode(msg)
		if err != nil {
			return
		}
		require.Equal(t, string(key), rec.AggregateID.String())
		require.Positive(t, rec.Sequence)
		if rec.Err != nil {
			return
		}
		require.Equal(t, rec.AggregateID, rec.Event.AggregateID)
		require.Equal(t, rec.Sequence, rec.Event.Sequence)
		again, err := record.Encode(rec.Event, "fz")
		require.NoError(t, err, "an event Decode accepted cannot be encoded: %s", value)
		back, err := record.Decode(recordtest.Consumed(again, 0, 0))
		require.NoError(t, err)
		require.NoError(t, back.Err)
		requireSameEvent(t, rec.Event, back.Event)
	})
}
