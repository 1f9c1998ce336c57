package recordtest_test

import (
	"errors"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/record/recordtest"
)

func msg(topic, key, value string) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(value),
		Headers: []sarama.RecordHeader{{Key: []byte(record.HeaderSequence), Value: []byte(value)}}}
}

func TestProducerPlacesRecordsAsTheRealOneDoes(t *testing.T) {
	p := recordtest.NewProducer(6)
	var _ sarama.SyncProducer = p
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for i, k := range keys {
		m := msg("t", k, "1")
		part, off, err := p.SendMessage(m)
		require.NoError(t, err)
		want, err := record.Partition(k, 6)
		require.NoError(t, err)
		require.Equal(t, want, part, "key %s", k)
		require.Equal(t, part, m.Partition)
		require.Equal(t, off, m.Offset)
		require.Len(t, p.Acked(), i+1)
	}
	require.NoError(t, p.SendMessages([]*sarama.ProducerMessage{msg("t", "a", "2"), msg("t", "a", "3")}))
	var seqs []string
	for _, r := range p.Broker().Records("t") {
		if string(r.Key) == "a" {
			seqs = append(seqs, string(r.Value))
			require.Equal(t, record.HeaderSequence, string(r.Headers[0].Key))
		}
	}
	require.Equal(t, []string{"1", "2", "3"}, seqs, "one key's records stay in order on its partition")
	require.Equal(t, 10, p.Sent())
	require.Len(t, p.Broker().Records("t"), 10)
}

func TestProducerFailsAsTold(t *testing.T) {
	p := recordtest.NewProducer(3)
	p.FailNext(2, recordtest.ErrOutage)
	_, _, err := p.SendMessage(msg("t", "a", "1"))
	require.ErrorIs(t, err, recordtest.ErrOutage)

	// A partial batch: the first record fails, the others are acknowledged.
	err = p.SendMessages([]*sarama.ProducerMessage{msg("t", "a", "1"), msg("t", "a", "2"), msg("t", "b", "1")})
	var perrs sarama.ProducerErrors
	require.ErrorAs(t, err, &perrs)
	require.Len(t, perrs, 1)
	require.Equal(t, "1", string(must(perrs[0].Msg.Value.Encode())))
	require.Len(t, p.Acked(), 2)

	p.FailKey("b", recordtest.ErrTooLarge)
	_, _, err = p.SendMessage(msg("t", "b", "2"))
	require.ErrorIs(t, err, recordtest.ErrTooLarge)
	_, _, err = p.SendMessage(msg("t", "a", "3"))
	require.NoError(t, err)

	boom := errors.New("boom")
	p.FailWhen(func(m *sarama.ProducerMessage) error {
		if m.Topic == "u" {
			return boom
		}
		return nil
	})
	_, _, err = p.SendMessage(msg("u", "a", "1"))
	require.ErrorIs(t, err, boom)
	require.Len(t, p.Failed(), 4)
	require.ErrorIs(t, p.Failed()[3].Err, boom)

	p.Heal()
	_, _, err = p.SendMessage(msg("t", "b", "2"))
	require.NoError(t, err)
	require.Len(t, p.Acked(), 4)
	require.Equal(t, 8, p.Sent())

	require.NoError(t, p.Close())
	_, _, err = p.SendMessage(msg("t", "a", "4"))
	require.ErrorIs(t, err, sarama.ErrShuttingDown)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
