package main

// Unit tests of the hint sender, with no server: the in-memory event store
// (eventstore/memstore) and broker (record/recordtest).

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/record/recordtest"
	"github.com/orderstream/orderstream/pkg/repository"
)

var hintTopic = record.HintTopicOf(record.DefaultTopicPrefix)

func newSender(t *testing.T, cfg HintsConfig, connect func() (hintProducer, error)) *hintSender {
	t.Helper()
	s, err := newHintSender(cfg, connect, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	return s
}

func runSender(t *testing.T, s *hintSender) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Error("the hint sender did not stop")
		}
	})
}

// hints are the hints on the broker, in order.
func hints(t *testing.T, b *recordtest.Broker) []record.Hint {
	t.Helper()
	var out []record.Hint
	for _, msg := range b.Records(hintTopic) {
		h, err := record.DecodeHint(msg)
		require.NoError(t, err)
		out = append(out, h)
	}
	return out
}

func newOrders(t *testing.T, s *hintSender) (*repository.Orders, *memstore.Store) {
	t.Helper()
	store, err := memstore.New(eventstore.DefaultConfig())
	require.NoError(t, err)
	orders, err := repository.NewOrders(hintingStore{RepositoryStore: store, hints: s}, eventcodec.NewUpcasters(),
		eventstore.RepositoryConfig{MaxConflictRetries: 1}, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	return orders, store
}

func createOrder(t *testing.T, orders *repository.Orders) (gocql.UUID, int64) {
	t.Helper()
	id := uuid.NewString()
	eur, err := value.NewCurrency("EUR")
	require.NoError(t, err)
	price, err := value.NewMoney(1999, eur)
	require.NoError(t, err)
	item, err := value.NewOrderItem("sku-1", 2, price)
	require.NoError(t, err)
	res, err := orders.Handle(context.Background(), gocql.UUID(uuid.MustParse(id)),
		order.CreateOrder{OrderID: id, CustomerID: uuid.NewString(), Items: []value.OrderItem{item}},
		eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now().UTC()})
	require.NoError(t, err)
	return gocql.UUID(uuid.MustParse(id)), res.Version
}

// Every commit sends a hint naming its aggregate and version.
func TestACommitSendsItsHint(t *testing.T) {
	p := recordtest.NewProducer(3)
	s := newSender(t, DefaultHintsConfig(), func() (hintProducer, error) { return p, nil })
	runSender(t, s)
	orders, _ := newOrders(t, s)
	id, v := createOrder(t, orders)
	require.Eventually(t, func() bool { return len(hints(t, p.Broker())) == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []record.Hint{{AggregateID: id, Version: v}}, hints(t, p.Broker()))
	require.Equal(t, 1.0, testutil.ToFloat64(s.sent))
}

// A stuck broker never holds a command up: the sender's worker waits in
// the producer, the queue fills, and later hints are dropped and counted
// while commands go on at full speed. Once the broker answers, the queued
// hints go out.
func TestStuckProducerNeverBlocksACommand(t *testing.T) {
	p := recordtest.NewProducer(3)
	release := make(chan struct{})
	stuck := make(chan struct{}, 1)
	p.FailWhen(func(*sarama.ProducerMessage) error {
		select {
		case stuck <- struct{}{}:
		default:
		}
		<-release
		return nil
	})
	cfg := DefaultHintsConfig()
	cfg.Queue, cfg.Batch = 4, 1
	s := newSender(t, cfg, func() (hintProducer, error) { return p, nil })
	runSender(t, s)
	orders, _ := newOrders(t, s)
	createOrder(t, orders)
	<-stuck // the worker is in the producer, holding the first hint

	const commands = 50
	start := time.Now()
	for range commands {
		done := make(chan struct{})
		go func() {
			defer close(done)
			createOrder(t, orders)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("a command waited for the hint producer")
		}
	}
	t.Logf("%d commands in %s with the producer stuck", commands, time.Since(start))
	require.Equal(t, float64(commands-cfg.Queue), testutil.ToFloat64(s.dropped.WithLabelValues(dropQueueFull)))
	close(release)
	require.Eventually(t, func() bool { return len(hints(t, p.Broker())) == 1+cfg.Queue }, 5*time.Second, time.Millisecond)
	require.Equal(t, float64(1+cfg.Queue), testutil.ToFloat64(s.sent))
}

// A broker that is down at start or refuses hints: the sender retries the
// connection with backoff, counts refused hints as dropped, and sends
// again once the broker is back.
func TestBrokerDownDropsHintsAndRecovers(t *testing.T) {
	p := recordtest.NewProducer(3)
	down := errors.New("no broker")
	attempts := make(chan struct{}, 100)
	var up = make(chan struct{})
	connect := func() (hintProducer, error) {
		attempts <- struct{}{}
		select {
		case <-up:
			return p, nil
		default:
			return nil, down
		}
	}
	s := newSender(t, DefaultHintsConfig(), connect)
	runSender(t, s)
	<-attempts
	<-attempts // retried
	id := gocql.TimeUUID()
	s.Hint(id, 1) // waits in the queue meanwhile
	close(up)
	require.Eventually(t, func() bool { return len(hints(t, p.Broker())) == 1 }, 5*time.Second, time.Millisecond)

	p.FailNext(1, recordtest.ErrOutage)
	s.Hint(id, 2)
	require.Eventually(t, func() bool { return testutil.ToFloat64(s.dropped.WithLabelValues(dropSendFailed)) == 1 }, 5*time.Second, time.Millisecond)
	s.Hint(id, 3)
	require.Eventually(t, func() bool { return len(hints(t, p.Broker())) == 2 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []record.Hint{{AggregateID: id, Version: 1}, {AggregateID: id, Version: 3}}, hints(t, p.Broker()))
}

func TestHintsOffAndConfig(t *testing.T) {
	var off *hintSender
	off.Hint(gocql.TimeUUID(), 1) // a nil sender does nothing

	cfg := defaultConfig()
	require.NoError(t, cfg.Validate())
	cfg.Kafka.Brokers = nil
	require.NoError(t, cfg.Validate(), "the broker is read only with hints on")
	cfg.Hints.Enabled = true
	require.ErrorContains(t, cfg.Validate(), `"kafka.brokers"`)
	cfg = defaultConfig()
	cfg.Hints.Queue, cfg.Hints.Batch, cfg.Hints.TopicPrefix = 0, 0, ""
	err := cfg.Validate()
	for _, key := range []string{`"hints.queue"`, `"hints.batch"`, `"hints.topic_prefix"`} {
		require.ErrorContains(t, err, key)
	}
}
