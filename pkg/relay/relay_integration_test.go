package relay_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/relay"
	"github.com/orderstream/orderstream/pkg/relay/scansource"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// Commands on 200 orders while the relay runs: every committed event
// reaches the topic, once per (aggregate, sequence) after dropping
// duplicates, in sequence order per key, as an envelope that says what it
// is; and published_sequence catches up with current_sequence.
type fixture struct {
	relay    *relay.Relay
	session  *gocql.Session
	store    *eventstore.Store
	orders   *repository.Orders
	consumed *consumer
	reg      *prometheus.Registry
	stop     func()
}

// newFixture migrates a keyspace of its own (the relay scans the whole
// event_store), makes sure the topics exist, starts a consumer at the end
// of the orders topic and runs a relay.
func newFixture(ctx context.Context, t *testing.T, mutate ...func(*relay.Config)) *fixture {
	t.Helper()
	return newFixtureOrdersTopic(ctx, t, nil, mutate...)
}

// newFixtureOrdersTopic is newFixture with the orders topic created with
// the given topic configuration (max.message.bytes, …).
func newFixtureOrdersTopic(ctx context.Context, t *testing.T, ordersTopic map[string]*string, mutate ...func(*relay.Config)) *fixture {
	t.Helper()
	c := stacktest.RequireCQL(t)
	kc := stacktest.RequireKafka(t)
	keyspace := stacktest.UniqueName("relay_")
	stacktest.Migrate(t, c, keyspace)
	session, err := cql.Connect(ctx, c, keyspace, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = session.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec()
		session.Close()
	})
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	orders, err := repository.NewOrders(store, eventcodec.NewUpcasters(), eventstore.RepositoryConfig{MaxConflictRetries: 10}, zerolog.Nop(), nil)
	require.NoError(t, err)

	sc, err := kc.Sarama("relay-it")
	require.NoError(t, err)
	client, err := kafka.Connect(ctx, kc, sc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	admin, err := sarama.NewClusterAdminFromClient(client)
	require.NoError(t, err)
	// Private topics: records of this test's keyspace never reach the
	// default topics that a local stack's projectors read.
	prefix := stacktest.UniqueName("relayit")
	if ordersTopic != nil {
		require.NoError(t, admin.CreateTopic(record.TopicOf(prefix, "order"), &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1, ConfigEntries: ordersTopic}, false))
	}
	require.NoError(t, record.EnsureTopics(admin, prefix, 3, 1))
	t.Cleanup(func() {
		_ = admin.DeleteTopic(record.TopicOf(prefix, "order"))
		_ = admin.DeleteTopic(record.TopicOf(prefix, "customer"))
	})
	consumed := startConsumer(ctx, t, kc, prefix)

	psc, err := kc.Sarama("relay-it-producer")
	require.NoError(t, err)
	producer, err := record.NewProducer(kc.Brokers, psc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = producer.Close() })
	reg := prometheus.NewRegistry()
	cfg := relay.DefaultConfig()
	cfg.TopicPrefix = prefix
	for _, m := range mutate {
		m(&cfg)
	}
	r, err := relay.New(cfg, session, store, producer, zerolog.Nop(), reg)
	require.NoError(t, err)
	scan, err := scansource.New(cfg.Config, store, r.ScanHooks(), zerolog.Nop(), reg)
	require.NoError(t, err)
	rctx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- r.Run(rctx, scan) }()
	stop := func() {
		stopRelay()
		require.NoError(t, <-relayDone)
	}
	return &fixture{relay: r, session: session, store: store, orders: orders, consumed: consumed, reg: reg, stop: stop}
}

func (f *fixture) published(t *testing.T, id gocql.UUID) int64 {
	t.Helper()
	h, err := f.store.Head(context.Background(), id)
	require.NoError(t, err)
	return h.Published
}

func newItem() value.OrderItem {
	eur, _ := value.NewCurrency("EUR")
	price, _ := value.NewMoney(100, eur)
	it, _ := value.NewOrderItem("sku", 1, price)
	return it
}

// Commands on 200 orders while the relay runs: every committed event
// reaches the topic, once per (aggregate, sequence) after dropping
// duplicates, in sequence order per key, as an envelope that says what it
// is; and published_sequence catches up with current_sequence.
func TestRelayPublishesEveryEventInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(ctx, t)
	orders, consumed := f.orders, f.consumed
	it := newItem()

	// 200 orders driven through their lifecycle by 16 writers.
	ids := make([]gocql.UUID, 200)
	for i := range ids {
		ids[i] = gocql.UUID(uuid.New())
	}
	steps := []order.Command{order.ConfirmOrder{}, order.ShipOrder{Carrier: "c", TrackingNumber: "t"}, order.DeliverOrder{}}
	want := map[string]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(ids); i += 16 {
				id := ids[i]
				cmds := append([]order.Command{order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{it}}}, steps[:i%4]...)
				var v int64
				for _, cmd := range cmds {
					res, err := orders.Handle(ctx, id, cmd, eventstore.Metadata{CommandID: uuid.NewString(), CorrelationID: "relay-it", Now: time.Now()})
					require.NoError(t, err)
					v = res.Version
				}
				mu.Lock()
				want[id.String()] = v
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var total int64
	for _, v := range want {
		total += v
	}

	require.Eventually(t, func() bool { return consumed.countFor(want) == total }, 60*time.Second, 50*time.Millisecond,
		"consumed %d of %d events", consumed.countFor(want), total)
	f.stop()

	consumed.mu.Lock()
	defer consumed.mu.Unlock()
	for id, v := range want {
		seqs := consumed.byKey[id]
		// Drop duplicates by (key, sequence); what remains is 1..v in order.
		var dedup []int64
		for _, s := range seqs {
			if len(dedup) == 0 || s > dedup[len(dedup)-1] {
				dedup = append(dedup, s)
			} else {
				require.LessOrEqual(t, s, dedup[len(dedup)-1], "key %s went backwards: %v", id, seqs)
			}
		}
		require.Len(t, dedup, int(v), "key %s: %v", id, seqs)
		for i, s := range dedup {
			require.Equal(t, int64(i+1), s, "key %s: %v", id, seqs)
		}
		require.Equal(t, v, f.published(t, gocql.UUID(uuid.MustParse(id))))
	}
	env := consumed.sample
	require.Equal(t, "order", env["aggregateType"])
	require.Equal(t, "relay-it", env["correlationId"])
	require.Contains(t, env["payload"].(map[string]any)["@type"], "orderstream.order.v1.")
}

// An event the relay cannot read is dead-lettered and parks its
// aggregate: what precedes it is published, what follows waits; other
// aggregates are not held up.
func TestPoisonEventIsDeadLetteredAndParksItsAggregate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := newFixture(ctx, t)
	meta := eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now()}

	poisoned, healthy := gocql.UUID(uuid.New()), gocql.UUID(uuid.New())
	for _, id := range []gocql.UUID{poisoned, healthy} {
		_, err := f.orders.Handle(ctx, id, order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{newItem()}}, meta)
		require.NoError(t, err)
	}
	// Sequence 2 of the poisoned order is not the JSON of its contract.
	_, err := f.store.Append(ctx, "order", poisoned, 1, []eventstore.Event{{EventID: gocql.UUID(uuid.New()), Type: "OrderConfirmed", Version: 1, Data: []byte(`{"not json`)}})
	require.NoError(t, err)
	_, err = f.store.Append(ctx, "order", poisoned, 2, []eventstore.Event{{EventID: gocql.UUID(uuid.New()), Type: "OrderShipped", Version: 1, Data: []byte(`{"carrier":"c","trackingNumber":"t"}`)}})
	require.NoError(t, err)
	_, err = f.orders.Handle(ctx, healthy, order.ConfirmOrder{}, meta)
	require.NoError(t, err)

	require.Eventually(t, func() bool { return f.published(t, healthy) == 2 && f.published(t, poisoned) == 1 }, 30*time.Second, 50*time.Millisecond)
	var (
		seq   int64
		parks bool
		typ   string
	)
	require.Eventually(t, func() bool {
		return f.session.Query(`SELECT sequence_number, parks_aggregate, event_type FROM dead_letter_queue WHERE aggregate_id = ? ALLOW FILTERING`, poisoned).Scan(&seq, &parks, &typ) == nil
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, int64(2), seq)
	require.True(t, parks)
	require.Equal(t, "OrderConfirmed", typ)
	var parkedAt int64
	require.NoError(t, f.session.Query(`SELECT sequence_number FROM parked_aggregates WHERE component = ? AND aggregate_id = ?`, relay.Component, poisoned).Scan(&parkedAt))
	require.Equal(t, int64(2), parkedAt)

	// Later scans leave the parked aggregate alone: sequence 3 waits.
	require.Never(t, func() bool { return f.published(t, poisoned) != 1 }, time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		return f.consumed.countFor(map[string]int64{healthy.String(): 2, poisoned.String(): 1}) == 3
	}, 10*time.Second, 20*time.Millisecond)
	f.stop()
	f.consumed.mu.Lock()
	defer f.consumed.mu.Unlock()
	require.Equal(t, []int64{1}, f.consumed.byKey[poisoned.String()])
	require.Equal(t, []int64{1, 2}, f.consumed.byKey[healthy.String()])
}

// A record larger than its topic accepts (max.message.bytes) can never be
// published: the broker refuses it on every attempt, so it is
// dead-lettered with the broker's reason and parks its aggregate, while
// what precedes it is published and other aggregates flow on; the breaker
// stays closed.
func TestOversizeRecordIsDeadLetteredAndParksItsAggregate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	limit := "4096"
	f := newFixtureOrdersTopic(ctx, t, map[string]*string{"max.message.bytes": &limit}, func(c *relay.Config) {
		c.InitialBackoff, c.MaxBackoff = 20*time.Millisecond, 100*time.Millisecond
	})
	meta := eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now()}

	big, healthy := gocql.UUID(uuid.New()), gocql.UUID(uuid.New())
	for _, id := range []gocql.UUID{big, healthy} {
		_, err := f.orders.Handle(ctx, id, order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{newItem()}}, meta)
		require.NoError(t, err)
	}
	// Sequence 2 of the big order is a valid event whose record is about
	// 10 KB, well under the producer's 1 MB limit and over the topic's.
	carrier := strings.Repeat("c", 10_000)
	_, err := f.store.Append(ctx, "order", big, 1, []eventstore.Event{{EventID: gocql.UUID(uuid.New()), Type: "OrderShipped", Version: 1, Data: []byte(`{"carrier":"` + carrier + `","trackingNumber":"t"}`)}})
	require.NoError(t, err)
	_, err = f.store.Append(ctx, "order", big, 2, []eventstore.Event{{EventID: gocql.UUID(uuid.New()), Type: "OrderDelivered", Version: 1, Data: []byte(`{}`)}})
	require.NoError(t, err)
	_, err = f.orders.Handle(ctx, healthy, order.ConfirmOrder{}, meta)
	require.NoError(t, err)

	var (
		seq    int64
		parks  bool
		reason string
	)
	require.Eventually(t, func() bool {
		return f.session.Query(`SELECT sequence_number, parks_aggregate, error_message FROM dead_letter_queue WHERE aggregate_id = ? ALLOW FILTERING`, big).Scan(&seq, &parks, &reason) == nil
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, int64(2), seq)
	require.True(t, parks)
	require.Contains(t, reason, "record_too_large")
	require.Contains(t, reason, sarama.ErrMessageSizeTooLarge.Error())
	var parkedAt int64
	require.NoError(t, f.session.Query(`SELECT sequence_number FROM parked_aggregates WHERE component = ? AND aggregate_id = ?`, relay.Component, big).Scan(&parkedAt))
	require.Equal(t, int64(2), parkedAt)

	// The aggregate waits behind it; another one committed now flows.
	later := gocql.UUID(uuid.New())
	_, err = f.orders.Handle(ctx, later, order.CreateOrder{OrderID: later.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{newItem()}}, meta)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return f.consumed.countFor(map[string]int64{healthy.String(): 2, big.String(): 1, later.String(): 1}) == 4
	}, 20*time.Second, 20*time.Millisecond)
	require.Never(t, func() bool { return f.published(t, big) != 1 }, time.Second, 50*time.Millisecond)
	require.Equal(t, int64(2), f.published(t, healthy))

	families, err := f.reg.Gather()
	require.NoError(t, err)
	values := map[string]float64{}
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			switch {
			case fam.GetName() == "orderstream_relay_dead_lettered_total":
				values["dead_lettered"] = m.GetCounter().GetValue()
			case fam.GetName() == "orderstream_circuit_breaker_state":
				values["breaker"] = m.GetGauge().GetValue()
			case fam.GetName() == "orderstream_relay_publish_failures_total" && m.GetLabel()[0].GetValue() == relay.ReasonTooLarge:
				values["too_large"] = m.GetCounter().GetValue()
			}
		}
	}
	require.Equal(t, 1.0, values["dead_lettered"])
	require.Zero(t, values["breaker"], "a refused record does not open the breaker")
	require.Equal(t, float64(relay.DefaultConfig().MaxAttempts), values["too_large"], "refused on every attempt")
	f.stop()
	f.consumed.mu.Lock()
	defer f.consumed.mu.Unlock()
	require.Equal(t, []int64{1}, f.consumed.byKey[big.String()])
}

// With scans an hour apart, a notification (what the CDC source sends)
// publishes an aggregate's new events at once, in order.
func TestNotifyPublishesWithoutWaitingForAScan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newFixture(ctx, t, func(c *relay.Config) {
		c.ScanInterval, c.RecentInterval, c.ReconcileEvery = time.Hour, time.Hour, time.Hour
	})
	// Commit only after the first scan, which runs at start, has finished.
	require.Eventually(t, func() bool {
		families, _ := f.reg.Gather()
		for _, fam := range families {
			if fam.GetName() == "orderstream_relay_scans_total" {
				return fam.GetMetric()[0].GetCounter().GetValue() >= 1
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	id := gocql.UUID(uuid.New())
	meta := eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now()}
	_, err := f.orders.Handle(ctx, id, order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{newItem()}}, meta)
	require.NoError(t, err)
	_, err = f.orders.Handle(ctx, id, order.ConfirmOrder{}, meta)
	require.NoError(t, err)
	require.Never(t, func() bool { return f.published(t, id) > 0 }, 500*time.Millisecond, 50*time.Millisecond, "no scan runs in between")

	// Notified twice, as a source may repeat itself: published once.
	require.NoError(t, f.relay.Notify(ctx, id, nil))
	require.NoError(t, f.relay.Notify(ctx, id, nil))
	require.Eventually(t, func() bool { return f.published(t, id) == 2 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return f.consumed.countFor(map[string]int64{id.String(): 2}) == 2 }, 10*time.Second, 20*time.Millisecond)
	f.stop()
	f.consumed.mu.Lock()
	defer f.consumed.mu.Unlock()
	require.Equal(t, []int64{1, 2}, f.consumed.byKey[id.String()])
}

type consumer struct {
	mu     sync.Mutex
	byKey  map[string][]int64
	sample map[string]any
}

func (c *consumer) countFor(want map[string]int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for id, v := range want {
		seen := map[int64]bool{}
		for _, s := range c.byKey[id] {
			if s <= v {
				seen[s] = true
			}
		}
		n += int64(len(seen))
	}
	return n
}

func startConsumer(ctx context.Context, t *testing.T, kc kafka.Config, prefix string) *consumer {
	t.Helper()
	sc, err := kc.Sarama("relay-it-consumer")
	require.NoError(t, err)
	sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	group, err := sarama.NewConsumerGroup(kc.Brokers, stacktest.UniqueName("relay-it-"), sc)
	require.NoError(t, err)
	c := &consumer{byKey: map[string][]int64{}}
	ready := make(chan struct{})
	h := &handler{c: c, ready: ready}
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{record.TopicOf(prefix, "order")}, h); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { _ = group.Close() })
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("consumer group did not get its partitions")
	}
	return c
}

type handler struct {
	c     *consumer
	ready chan struct{}
	once  sync.Once
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error {
	h.once.Do(func() { close(h.ready) })
	return nil
}
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		var seq int64
		for _, hd := range msg.Headers {
			if string(hd.Key) == record.HeaderSequence {
				seq, _ = strconv.ParseInt(string(hd.Value), 10, 64)
			}
		}
		h.c.mu.Lock()
		h.c.byKey[string(msg.Key)] = append(h.c.byKey[string(msg.Key)], seq)
		if h.c.sample == nil {
			_ = json.Unmarshal(msg.Value, &h.c.sample)
		}
		h.c.mu.Unlock()
		sess.MarkMessage(msg, "")
	}
	return nil
}

// With full scans an hour apart, a commit is still published at once: the
// relay reads recent commits through the index on updated_at (Apache
// Cassandra; schema v0003).
func TestRecentCommitsPublishedBetweenFullScans(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newFixture(ctx, t, func(c *relay.Config) { c.ScanInterval, c.ReconcileEvery = time.Hour, time.Hour })
	id := gocql.UUID(uuid.New())
	meta := eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now()}
	_, err := f.orders.Handle(ctx, id, order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{newItem()}}, meta)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.consumed.countFor(map[string]int64{id.String(): 1}) == 1 }, 5*time.Second, 10*time.Millisecond)
	families, err := f.reg.Gather()
	require.NoError(t, err)
	counts := map[string]float64{}
	for _, fam := range families {
		if n := fam.GetName(); n == "orderstream_relay_scans_total" || n == "orderstream_relay_recent_scans_total" {
			counts[n] = fam.GetMetric()[0].GetCounter().GetValue()
		}
	}
	require.Equal(t, 1.0, counts["orderstream_relay_scans_total"], "only the full scan at start")
	require.Positive(t, counts["orderstream_relay_recent_scans_total"])
	f.stop()
}
