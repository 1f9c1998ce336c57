package record_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/record/recordtest"
)

// broker is what brokerContract needs of a broker: a producer, a consumer
// group, and topics of a known number of partitions under a prefix.
type broker struct {
	prefix     string
	partitions int32
	producer   sarama.SyncProducer
	group      sarama.ConsumerGroup
}

// brokerContract publishes the records of many aggregates' events, the
// first of each alone and the rest in one batch, and reads them back
// through a consumer group: each lands on the partition record.Partition
// names, each aggregate's records arrive once each and in sequence order,
// and each decodes to the event it was encoded from. The in-memory twin
// and the real broker (with the relay's and the projectors' settings) both
// pass it.
func brokerContract(t *testing.T, b broker) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const aggregates, perAggregate = 20, 50
	sent := map[gocql.UUID][]eventstore.Event{}
	template := events()[2] // OrderShipped
	var batch []*sarama.ProducerMessage
	for range aggregates {
		id := gocql.MustRandomUUID()
		want, err := record.Partition(id.String(), b.partitions)
		require.NoError(t, err)
		for seq := int64(1); seq <= perAggregate; seq++ {
			e := template
			e.AggregateID, e.Sequence, e.EventID = id, seq, gocql.MustRandomUUID()
			sent[id] = append(sent[id], e)
			msg, err := record.Encode(e, b.prefix)
			require.NoError(t, err)
			if seq > 1 {
				batch = append(batch, msg)
				continue
			}
			partition, _, err := b.producer.SendMessage(msg)
			require.NoError(t, err)
			require.Equal(t, want, partition, "partition of %s", id)
		}
	}
	require.NoError(t, b.producer.SendMessages(batch))
	for _, msg := range batch {
		key, err := msg.Key.Encode()
		require.NoError(t, err)
		want, err := record.Partition(string(key), b.partitions)
		require.NoError(t, err)
		require.Equal(t, want, msg.Partition, "partition of %s", key)
	}

	h := &decoder{got: map[gocql.UUID][]record.Decoded{}, want: aggregates * perAggregate, done: make(chan struct{})}
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		for gctx.Err() == nil {
			if err := b.group.Consume(gctx, []string{record.TopicOf(b.prefix, template.AggregateType)}, h); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
		t.Fatalf("consumed %d of %d records before the deadline", h.count(), aggregates*perAggregate)
	}
	stop()
	require.NoError(t, <-errc)

	require.Len(t, h.got, aggregates)
	for id, recs := range h.got {
		require.Len(t, recs, perAggregate, "aggregate %s", id)
		want, err := record.Partition(id.String(), b.partitions)
		require.NoError(t, err)
		for i, rec := range recs {
			require.NoError(t, rec.Err)
			require.Equal(t, want, rec.Partition)
			require.Equal(t, int64(i+1), rec.Sequence, "aggregate %s out of order", id)
			requireSameEvent(t, sent[id][i], rec.Event)
			require.Equal(t, sent[id][i].EventID.String(), rec.Headers.EventID)
		}
	}
}

// decoder decodes every record it is handed and marks it.
type decoder struct {
	mu   sync.Mutex
	got  map[gocql.UUID][]record.Decoded
	n    int
	want int
	done chan struct{}
}

func (d *decoder) count() int { d.mu.Lock(); defer d.mu.Unlock(); return d.n }

func (d *decoder) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (d *decoder) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (d *decoder) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		rec, err := record.Decode(msg)
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.got[rec.AggregateID] = append(d.got[rec.AggregateID], rec)
		d.n++
		if d.n == d.want {
			close(d.done)
		}
		d.mu.Unlock()
		sess.MarkMessage(msg, "")
	}
	return nil
}

func TestBrokerContractInMemory(t *testing.T) {
	b := recordtest.NewBroker(6)
	brokerContract(t, broker{prefix: "mem", partitions: 6, producer: b.Producer(), group: b.ConsumerGroup("g")})
}
