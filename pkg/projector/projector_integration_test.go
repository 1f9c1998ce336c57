package projector_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/loadgen"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/readmodel/readmodeltest"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/relay/relaytest"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// harness is a private keyspace and private topics (a unique prefix), with
// the relay publishing into them.
type harness struct {
	session   *gocql.Session
	store     *eventstore.Store
	orders    *repository.Orders
	customers *repository.Customers
	kc        kafka.Config
	prefix    string
}

func newHarness(ctx context.Context, t *testing.T) *harness {
	t.Helper()
	kc := stacktest.RequireKafka(t)
	session, _ := stacktest.PrivateKeyspace(t, "proj_")
	wm := servicetest.NewWriteModel(t, session, 10)
	store, orders, customers := wm.Store, wm.Orders, wm.Customers

	return &harness{session: session, store: store, orders: orders, customers: customers, kc: kc, prefix: relaytest.Topics(ctx, t, kc, "it", 3)}
}

// runRelay publishes until the test ends.
func (h *harness) runRelay(ctx context.Context, t *testing.T) {
	t.Helper()
	relaytest.Run(ctx, t, h.session, h.store, h.kc, h.prefix)
}

// published waits until every committed event is published.
func (h *harness) published(ctx context.Context, t *testing.T) {
	t.Helper()
	relaytest.WaitPublished(ctx, t, h.session, 2*time.Minute)
}

func newProjector[S any](t *testing.T, h *harness, view projector.View[S], reg prometheus.Registerer) *projector.Projector[S] {
	t.Helper()
	cfg := projector.DefaultConfig()
	cfg.Group = stacktest.UniqueName("projector-it-")
	cfg.TopicPrefix = h.prefix
	cfg.ParkedEvery = 100 * time.Millisecond
	logger := zerolog.Nop()
	if os.Getenv("PROJECTOR_IT_LOG") != "" { // warnings and errors on stderr, to debug a failure
		logger = zerolog.New(os.Stderr).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	}
	p, err := projector.New(cfg, view, h.session, h.store, logger, reg)
	require.NoError(t, err)
	return p
}

// run consumes until the test ends.
func run[S any](ctx context.Context, t *testing.T, h *harness, p *projector.Projector[S]) {
	t.Helper()
	sc, err := h.kc.Sarama("projector-it-" + p.Name())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, h.kc.Brokers, sc) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// projectors runs the four read models' projectors.
type projectors struct {
	orderRM, byCustomer, byStatus *projector.Projector[readmodel.Order]
	customerRM                    *projector.Projector[readmodel.Customer]
	reg                           *prometheus.Registry
}

func runAll(ctx context.Context, t *testing.T, h *harness) *projectors {
	reg := prometheus.NewRegistry()
	ps := &projectors{
		orderRM:    newProjector(t, h, readmodel.OrderReadModel(), reg),
		byCustomer: newProjector(t, h, readmodel.OrdersByCustomer(), reg),
		byStatus:   newProjector(t, h, readmodel.OrdersByStatus(), reg),
		customerRM: newProjector(t, h, readmodel.CustomerReadModel(), reg),
		reg:        reg,
	}
	run(ctx, t, h, ps.orderRM)
	run(ctx, t, h, ps.byCustomer)
	run(ctx, t, h, ps.byStatus)
	run(ctx, t, h, ps.customerRM)
	return ps
}

// requireExact waits until every read model equals the fold of event_store.
func (h *harness) requireExact(ctx context.Context, t *testing.T, within time.Duration) {
	t.Helper()
	var last readmodeltest.Report
	deadline := time.Now().Add(within)
	for {
		r, err := readmodeltest.Check(ctx, h.session, h.store)
		require.NoError(t, err)
		if r.OK() {
			return
		}
		last = r
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	n := min(len(last.Mismatches), 20)
	t.Fatalf("read models differ from event_store (%d differences), first ones:\n%s", len(last.Mismatches), strings.Join(last.Mismatches[:n], "\n"))
}

func load(ctx context.Context, t *testing.T, h *harness, commands, aggregates int) {
	t.Helper()
	_, err := loadgen.Run(ctx, loadgen.Config{Commands: commands, Aggregates: aggregates, Workers: 16, Seed: rand.Uint64()}, h.orders, h.customers)
	require.NoError(t, err)
}

// Commands on 300 aggregates while the relay and the four projectors run:
// every read model ends exactly equal to the fold of event_store, and
// every order is in exactly one orders_by_status partition.
func TestReadModelsMatchEventStore(t *testing.T) {
	t.Parallel() // a private keyspace, topics and groups of its own
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h := newHarness(ctx, t)
	h.runRelay(ctx, t)
	ps := runAll(ctx, t, h)
	load(ctx, t, h, 3000, 300)
	h.requireExact(ctx, t, time.Minute)
	require.Positive(t, testutil.ToFloat64(ps.orderRM.Metrics().Applied))
	require.Positive(t, testutil.ToFloat64(ps.customerRM.Metrics().Applied))
}

// records reads every record of the harness's topics.
func (h *harness) records(ctx context.Context, t *testing.T) []*sarama.ConsumerMessage {
	t.Helper()
	sc, err := h.kc.Sarama("projector-it-reader")
	require.NoError(t, err)
	c, err := sarama.NewConsumer(h.kc.Brokers, sc)
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	client, err := sarama.NewClient(h.kc.Brokers, sc)
	require.NoError(t, err)
	defer func() { _ = client.Close() }()
	var out []*sarama.ConsumerMessage
	for _, typ := range []string{"order", "customer"} {
		topic := record.TopicOf(h.prefix, typ)
		parts, err := c.Partitions(topic)
		require.NoError(t, err)
		for _, part := range parts {
			end, err := client.GetOffset(topic, part, sarama.OffsetNewest)
			require.NoError(t, err)
			if end == 0 {
				continue
			}
			pc, err := c.ConsumePartition(topic, part, sarama.OffsetOldest)
			require.NoError(t, err)
			for msg := range pc.Messages() {
				out = append(out, msg)
				if msg.Offset >= end-1 {
					break
				}
			}
			require.NoError(t, pc.Close())
		}
	}
	return out
}

// feed hands records to the four projectors' Handle, as a consumer would,
// with per-key order kept; order across keys is whatever records holds.
func feed(ctx context.Context, t *testing.T, ps *projectors, records []*sarama.ConsumerMessage) {
	t.Helper()
	for _, msg := range records {
		d, err := record.Decode(msg)
		require.NoError(t, err)
		rec := projector.Record(d)
		if strings.HasSuffix(msg.Topic, ".customers.v1") {
			require.NoError(t, ps.customerRM.Handle(ctx, rec))
			continue
		}
		require.NoError(t, ps.orderRM.Handle(ctx, rec))
		require.NoError(t, ps.byCustomer.Handle(ctx, rec))
		require.NoError(t, ps.byStatus.Handle(ctx, rec))
	}
}

// shuffleKeepingKeys interleaves the records of different keys at random
// while every key's records stay in their order.
func shuffleKeepingKeys(records []*sarama.ConsumerMessage, rng *rand.Rand) []*sarama.ConsumerMessage {
	byKey := map[string][]*sarama.ConsumerMessage{}
	var keys []string
	for _, m := range records {
		k := m.Topic + "/" + string(m.Key)
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], m)
	}
	out := make([]*sarama.ConsumerMessage, 0, len(records))
	for len(keys) > 0 {
		i := rng.IntN(len(keys))
		k := keys[i]
		out = append(out, byKey[k][0])
		byKey[k] = byKey[k][1:]
		if len(byKey[k]) == 0 {
			keys = append(keys[:i], keys[i+1:]...)
		}
	}
	return out
}

func feedOnly(t *testing.T, h *harness) *projectors {
	reg := prometheus.NewRegistry()
	return &projectors{
		orderRM:    newProjector(t, h, readmodel.OrderReadModel(), reg),
		byCustomer: newProjector(t, h, readmodel.OrdersByCustomer(), reg),
		byStatus:   newProjector(t, h, readmodel.OrdersByStatus(), reg),
		customerRM: newProjector(t, h, readmodel.CustomerReadModel(), reg),
		reg:        reg,
	}
}

// Every record delivered twice, records of different aggregates shuffled
// (each aggregate's own order kept): the read models are exactly what
// one delivery in order gives.
func TestRedeliveredShuffledRecordsChangeNothing(t *testing.T) {
	t.Parallel() // a private keyspace, topics and groups of its own
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h := newHarness(ctx, t)
	h.runRelay(ctx, t)
	load(ctx, t, h, 600, 150)
	h.published(ctx, t)
	records := h.records(ctx, t)
	require.NotEmpty(t, records)

	twice := make([]*sarama.ConsumerMessage, 0, 2*len(records))
	for _, m := range records {
		twice = append(twice, m, m)
	}
	ps := feedOnly(t, h)
	feed(ctx, t, ps, shuffleKeepingKeys(twice, rand.New(rand.NewPCG(1, 2))))
	h.requireExact(ctx, t, 0)
	skipped := testutil.ToFloat64(ps.orderRM.Metrics().Skipped)
	require.GreaterOrEqual(t, skipped, float64(len(records))/3, "duplicates were skipped as already applied")
}

// Records dropped on the way (a consumer that loses some): the next
// record of each aggregate reveals the gap, and the missing events are
// read from event_store, so the read models end exact.
func TestGapFillRepairsDroppedRecords(t *testing.T) {
	t.Parallel() // a private keyspace, topics and groups of its own
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h := newHarness(ctx, t)
	h.runRelay(ctx, t)
	load(ctx, t, h, 600, 150)
	h.published(ctx, t)
	records := h.records(ctx, t)

	// Keep each key's last record (something must reveal the gap) and
	// drop a third of the others.
	last := map[string]int{}
	for i, m := range records {
		last[m.Topic+"/"+string(m.Key)] = i
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var kept []*sarama.ConsumerMessage
	dropped := 0
	for i, m := range records {
		if last[m.Topic+"/"+string(m.Key)] != i && rng.IntN(3) == 0 {
			dropped++
			continue
		}
		kept = append(kept, m)
	}
	require.Positive(t, dropped)
	ps := feedOnly(t, h)
	feed(ctx, t, ps, kept)
	h.requireExact(ctx, t, 0)
	require.Positive(t, testutil.ToFloat64(ps.orderRM.Metrics().GapFills))
}

// A rebuild of every read model into a new generation while commands
// keep arriving ends exact once switched to, without a gap or a double
// apply.
func TestRebuildWhileCommandsArrive(t *testing.T) {
	t.Parallel() // a private keyspace, topics and groups of its own
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h := newHarness(ctx, t)
	h.runRelay(ctx, t)
	ps := runAll(ctx, t, h)
	load(ctx, t, h, 1500, 150)

	var wg sync.WaitGroup
	wg.Go(func() { load(ctx, t, h, 1500, 150) })
	time.Sleep(300 * time.Millisecond)
	require.True(t, ps.orderRM.RequestRebuild())
	require.True(t, ps.byCustomer.RequestRebuild())
	require.True(t, ps.byStatus.RequestRebuild())
	require.True(t, ps.customerRM.RequestRebuild())
	wg.Wait()
	require.Eventually(t, func() bool {
		return ps.orderRM.ActiveGeneration() == 2 && ps.byCustomer.ActiveGeneration() == 2 &&
			ps.byStatus.ActiveGeneration() == 2 && ps.customerRM.ActiveGeneration() == 2
	}, 2*time.Minute, 100*time.Millisecond, "every rebuild switched to its new generation")
	h.requireExact(ctx, t, 2*time.Minute)

	for _, name := range []string{"order-read-model", "orders-by-customer", "orders-by-status", "customer-read-model"} {
		var status string
		var aggregates int64
		require.NoError(t, h.session.Query(`SELECT status, aggregates FROM projection_rebuilds WHERE projection_name = ?`, name).Scan(&status, &aggregates))
		require.Equal(t, "done", status, name)
		require.Positive(t, aggregates, name)
	}
}

// An event the view cannot read is dead-lettered and parks its aggregate
// for that projector; its later events wait, other aggregates flow on.
func TestPoisonEventParksItsAggregate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := newHarness(ctx, t)
	ps := feedOnly(t, h)
	p := ps.orderRM

	poisoned, healthy := gocql.UUID(uuid.New()), gocql.UUID(uuid.New())
	event := func(typ string, data string) eventstore.Event {
		return eventstore.Event{AggregateType: "order", EventID: gocql.UUID(uuid.New()), Type: typ, Version: 1,
			Data: []byte(data), CausationID: "c", CorrelationID: "c", OccurredAt: time.Now().UTC().Truncate(time.Millisecond)}
	}
	created := func(id gocql.UUID) eventstore.Event {
		return event("OrderCreated", `{"orderId":"`+id.String()+`","customerId":"`+uuid.NewString()+`","items":[{"productId":"p","quantity":1,"unitPrice":{"amountMinor":100,"currency":"EUR"}}],"currency":"EUR"}`)
	}
	// The store takes any event type; the view cannot fold OrderTeleported.
	commit := func(id gocql.UUID, events ...eventstore.Event) {
		_, err := h.store.Append(ctx, "order", id, 0, events)
		require.NoError(t, err)
		for i, e := range events {
			e.AggregateID, e.Sequence = id, int64(i+1)
			require.NoError(t, p.Handle(ctx, projector.Record{AggregateID: id, Sequence: e.Sequence, Event: e}))
		}
	}
	commit(poisoned, created(poisoned), event("OrderTeleported", `{}`), event("OrderConfirmed", `{}`))
	commit(healthy, created(healthy), event("OrderConfirmed", `{}`))

	// A record of an aggregate this event_store does not have is skipped.
	stranger := gocql.UUID(uuid.New())
	e := created(stranger)
	e.AggregateID, e.Sequence = stranger, 1
	require.NoError(t, p.Handle(ctx, projector.Record{AggregateID: stranger, Sequence: 1, Event: e}))
	_, ok, err := readmodel.ReadOrder(ctx, h.session, stranger)
	require.NoError(t, err)
	require.False(t, ok)

	row, ok, err := readmodel.ReadOrder(ctx, h.session, poisoned)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(1), row.Version, "the poisoned order stays at the event before the poison")
	row, ok, err = readmodel.ReadOrder(ctx, h.session, healthy)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(2), row.Version)

	var count int
	require.NoError(t, h.session.Query(`SELECT count(*) FROM dead_letter_queue WHERE component = ? ALLOW FILTERING`, p.Component()).Scan(&count))
	require.Equal(t, 1, count)
	var seq int64
	require.NoError(t, h.session.Query(`SELECT sequence_number FROM parked_aggregates WHERE component = ? AND aggregate_id = ?`, p.Component(), poisoned).Scan(&seq))
	require.Equal(t, int64(2), seq)
	require.Equal(t, 1.0, testutil.ToFloat64(p.Metrics().DeadLettered))
}
