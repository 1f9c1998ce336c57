package accounting

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/loadgen"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/relay/relaytest"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

func TestCommandsAccounting(t *testing.T) {
	a, b, c := gocql.UUID(uuid.New()), gocql.UUID(uuid.New()), gocql.UUID(uuid.New())
	heads := map[gocql.UUID]head{a: {"order", 3}, b: {"order", 5}, c: {"customer", 1}}
	var r Report
	checkCommands(&r, heads, []Acked{{a, 1}, {a, 2}, {a, 3}, {b, 1}, {b, 2}, {b, 3}, {c, 1}, {c, 2}})
	require.Equal(t, 8, r.AckedCommands)
	require.Equal(t, 1, r.LostCommands, "c acknowledged at 2, stored at 1")
	require.Equal(t, 2, r.DuplicatedWrites, "b stored 5 events for 3 acknowledged")
	require.False(t, r.Zero())
	require.Len(t, r.Examples, 2)
}

// Against the real stack: a load published by the relay accounts clean on
// the topics; records added by hand show up as duplicates, reordering and
// strays; the read models (no projector ran) are all lost rows.
func TestCheckTopics(t *testing.T) {
	kc := stacktest.RequireKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	session, _ := stacktest.PrivateKeyspace(t, "acct_")
	wm := servicetest.NewWriteModel(t, session, 10)
	store, orders, customers := wm.Store, wm.Orders, wm.Customers
	prefix := relaytest.Topics(ctx, t, kc, "acct", 3)
	_, err := loadgen.Run(ctx, loadgen.Config{Commands: 200, Aggregates: 40, Workers: 4, Seed: rand.Uint64()}, orders, customers)
	require.NoError(t, err)
	stop := relaytest.Run(ctx, t, session, store, kc, prefix)
	relaytest.WaitPublished(ctx, t, session, time.Minute)
	stop()

	in := Input{Session: session, Store: store, Kafka: kc, TopicPrefix: prefix}
	r, err := Check(ctx, in)
	require.NoError(t, err)
	require.GreaterOrEqual(t, r.Aggregates, 40)
	require.Equal(t, 200, r.Events)
	require.Equal(t, 200, r.Records)
	require.Zero(t, r.LostRecords+r.DuplicatedRecords+r.OutOfOrder+r.SplitKeys+r.Strays, "%s", r)
	require.Positive(t, r.LostRows, "no projector ran")
	require.Zero(t, r.ExtraRows+r.WrongRows)

	// A copy of a published record, and a key event_store does not have
	// with sequence 2 before 1.
	var (
		published gocql.UUID
		typ       string
	)
	require.NoError(t, store.Heads(ctx, func(h eventstore.Head) error {
		if typ == "" {
			published, typ = h.AggregateID, h.AggregateType
		}
		return nil
	}))
	require.NotEmpty(t, typ, "the event store has an aggregate")
	stranger := uuid.NewString()
	produce(t, kc, []*sarama.ProducerMessage{
		rawRecord(record.TopicOf(prefix, typ), published.String(), 1),
		rawRecord(record.TopicOf(prefix, "order"), stranger, 2),
		rawRecord(record.TopicOf(prefix, "order"), stranger, 1),
	})
	r, err = Check(ctx, in)
	require.NoError(t, err)
	require.Equal(t, 203, r.Records)
	require.Equal(t, 1, r.DuplicatedRecords)
	require.Equal(t, 1, r.OutOfOrder)
	require.Equal(t, 2, r.Strays)
	require.Zero(t, r.LostRecords)
}

func rawRecord(topic, key string, seq int64) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder("{}"),
		Headers: []sarama.RecordHeader{{Key: []byte(record.HeaderSequence), Value: []byte(strconv.FormatInt(seq, 10))}}}
}

func produce(t *testing.T, kc kafka.Config, msgs []*sarama.ProducerMessage) {
	t.Helper()
	sc, err := kc.Sarama("acct-test")
	require.NoError(t, err)
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	p, err := sarama.NewSyncProducer(kc.Brokers, sc)
	require.NoError(t, err)
	defer p.Close()
	for _, m := range msgs {
		_, _, err := p.SendMessage(m)
		require.NoError(t, err)
	}
}
