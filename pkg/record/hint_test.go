package record_test

import (
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/record/recordtest"
)

func TestHintRoundTrip(t *testing.T) {
	h := record.Hint{AggregateID: gocql.MustRandomUUID(), Version: 42}
	msg := record.EncodeHint(record.HintTopicOf("os"), h)
	require.Equal(t, "os.hints.v1", msg.Topic)
	require.Equal(t, "os.hints.v1", record.Topics{TopicPrefix: "os"}.HintTopic())
	got, err := record.DecodeHint(recordtest.Consumed(msg, 0, 0))
	require.NoError(t, err)
	require.Equal(t, h, got)
}

func TestDecodeHintRefusesForeignRecords(t *testing.T) {
	id := []byte(gocql.MustRandomUUID().String())
	for name, c := range map[string]struct{ key, value []byte }{
		"key not an id":   {[]byte("nope"), []byte("1")},
		"no value":        {id, nil},
		"value not a int": {id, []byte("x")},
		"version zero":    {id, []byte("0")},
		"version < 0":     {id, []byte("-3")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := record.DecodeHint(&sarama.ConsumerMessage{Key: c.key, Value: c.value})
			require.ErrorIs(t, err, record.ErrBadHint)
		})
	}
}

// FuzzDecodeHint: DecodeHint never panics, and a hint it accepts encodes
// to a record that decodes to the same hint.
func FuzzDecodeHint(f *testing.F) {
	f.Add([]byte(gocql.MustRandomUUID().String()), []byte("7"))
	f.Add([]byte("x"), []byte("-1"))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		h, err := record.DecodeHint(&sarama.ConsumerMessage{Key: key, Value: value})
		if err != nil {
			return
		}
		require.Positive(t, h.Version)
		again, err := record.DecodeHint(recordtest.Consumed(record.EncodeHint("t", h), 0, 0))
		require.NoError(t, err)
		require.Equal(t, h, again)
	})
}

func TestEnsureHintTopic(t *testing.T) {
	a := &fakeAdmin{topics: map[string]sarama.TopicDetail{}}
	spec := record.HintTopicSpec{Partitions: 2, Replication: 1, Retention: 30 * time.Minute}
	require.NoError(t, record.EnsureHintTopic(a, "os", spec))
	require.Equal(t, []string{"os.hints.v1"}, a.created)
	d := a.topics["os.hints.v1"]
	require.Equal(t, int32(2), d.NumPartitions)
	require.Equal(t, int16(1), d.ReplicationFactor)
	require.Equal(t, "1800000", *d.ConfigEntries["retention.ms"])
	require.Equal(t, "1800000", *d.ConfigEntries["segment.ms"])

	// An existing topic is left alone.
	require.NoError(t, record.EnsureHintTopic(a, "os", spec))
	require.Equal(t, []string{"os.hints.v1"}, a.created)
}

func TestHintTopicSpecValidate(t *testing.T) {
	require.NoError(t, record.DefaultHintTopicSpec().Validate())
	err := record.HintTopicSpec{Partitions: 0, Replication: 0, Retention: time.Second}.Validate()
	for _, key := range []string{"partitions", "replication", "retention"} {
		require.ErrorContains(t, err, key)
	}
	require.False(t, errors.Is(err, record.ErrBadHint))
}

// The hint settings are valid sarama settings on the connection settings
// every service starts from.
func TestHintSettingsAreValid(t *testing.T) {
	for name, set := range map[string]func(*sarama.Config){"producer": record.HintProducerConfig, "consumer": record.HintConsumerConfig} {
		sc := sarama.NewConfig()
		sc.Version = sarama.V3_6_0_0
		set(sc)
		require.NoError(t, sc.Validate(), name)
	}
	sc := sarama.NewConfig()
	record.HintProducerConfig(sc)
	require.False(t, sc.Producer.Idempotent)
	require.Equal(t, sarama.WaitForLocal, sc.Producer.RequiredAcks)
	sc = sarama.NewConfig()
	record.HintConsumerConfig(sc)
	require.Equal(t, sarama.OffsetNewest, sc.Consumer.Offsets.Initial)
}
