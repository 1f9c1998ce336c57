package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// An idempotent producer with acks=all publishes keyed records; a consumer
// group reads them back in per-key order, each exactly once.
func TestIdempotentProducerKeepsPerKeyOrder(t *testing.T) {
	cfg := stacktest.RequireKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := stacktest.UniqueName("it-order-")
	const keys, perKey = 20, 50

	sc, err := cfg.Sarama("it-admin")
	require.NoError(t, err)
	client, err := kafka.Connect(ctx, cfg, sc)
	require.NoError(t, err)
	defer client.Close()
	require.NoError(t, kafka.Ping(ctx, client))
	admin, err := sarama.NewClusterAdminFromClient(client)
	require.NoError(t, err)
	require.NoError(t, admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false))
	t.Cleanup(func() { _ = admin.DeleteTopic(topic) })

	pc, err := cfg.Sarama("it-producer")
	require.NoError(t, err)
	pc.Producer.Idempotent = true
	pc.Producer.RequiredAcks = sarama.WaitForAll
	pc.Net.MaxOpenRequests = 1
	pc.Producer.Retry.Max = 10
	pc.Producer.Return.Successes = true
	producer, err := sarama.NewSyncProducer(cfg.Brokers, pc)
	require.NoError(t, err)
	defer producer.Close()

	var batch []*sarama.ProducerMessage
	for seq := 1; seq <= perKey; seq++ {
		for k := range keys {
			batch = append(batch, &sarama.ProducerMessage{
				Topic:   topic,
				Key:     sarama.StringEncoder(fmt.Sprintf("agg-%02d", k)),
				Value:   sarama.StringEncoder(strconv.Itoa(seq)),
				Headers: []sarama.RecordHeader{{Key: []byte("sequence"), Value: []byte(strconv.Itoa(seq))}},
			})
		}
	}
	require.NoError(t, producer.SendMessages(batch))

	cc, err := cfg.Sarama("it-consumer")
	require.NoError(t, err)
	cc.Consumer.Offsets.Initial = sarama.OffsetOldest
	group, err := sarama.NewConsumerGroup(cfg.Brokers, stacktest.UniqueName("it-group-"), cc)
	require.NoError(t, err)
	defer group.Close()

	h := &collector{seen: map[string][]int{}, want: keys * perKey, done: make(chan struct{})}
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		for gctx.Err() == nil {
			if err := group.Consume(gctx, []string{topic}, h); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
		t.Fatalf("consumed %d of %d records before the deadline", h.count(), keys*perKey)
	}
	stop()
	require.NoError(t, <-errc)

	require.Len(t, h.seen, keys)
	for key, seqs := range h.seen {
		require.Len(t, seqs, perKey, "key %s", key)
		for i, s := range seqs {
			require.Equal(t, i+1, s, "key %s out of order: %v", key, seqs)
		}
	}
}

type collector struct {
	mu   sync.Mutex
	seen map[string][]int
	n    int
	want int
	done chan struct{}
}

func (c *collector) count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

func (c *collector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *collector) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (c *collector) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		seq, err := strconv.Atoi(string(msg.Value))
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.seen[string(msg.Key)] = append(c.seen[string(msg.Key)], seq)
		c.n++
		if c.n == c.want {
			close(c.done)
		}
		c.mu.Unlock()
		sess.MarkMessage(msg, "")
	}
	return nil
}
