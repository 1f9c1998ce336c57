package record_test

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// TestBrokerContract runs the contract on the real broker, with the
// producer and consumer settings of the relay and the projectors, on topics
// EnsureTopics creates.
func TestBrokerContract(t *testing.T) {
	kc := stacktest.RequireKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prefix := stacktest.UniqueName("record-it-")
	const partitions = 6

	sc, err := kc.Sarama("record-it-admin")
	require.NoError(t, err)
	client, err := kafka.Connect(ctx, kc, sc)
	require.NoError(t, err)
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	require.NoError(t, err)
	require.NoError(t, record.EnsureTopics(admin, prefix, partitions, 1))
	t.Cleanup(func() {
		for _, topic := range record.TopicsOf(prefix) {
			_ = admin.DeleteTopic(topic)
		}
	})
	require.NoError(t, record.EnsureTopics(admin, prefix, partitions, 1), "a second call finds the topics")

	psc, err := kc.Sarama("record-it-producer")
	require.NoError(t, err)
	producer, err := record.NewProducer(kc.Brokers, psc)
	require.NoError(t, err)
	defer producer.Close()
	csc, err := kc.Sarama("record-it-consumer")
	require.NoError(t, err)
	group, err := record.NewConsumerGroup(kc.Brokers, stacktest.UniqueName("record-it-"), csc)
	require.NoError(t, err)
	defer group.Close()

	brokerContract(t, broker{prefix: prefix, partitions: partitions, producer: producer, group: group})
}
