package hintsource_test

// Unit tests with no server: the in-memory broker (record/recordtest), the
// in-memory event store (eventstore/memstore) and the real publisher.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/record/recordtest"
	"github.com/orderstream/orderstream/pkg/relay"
	"github.com/orderstream/orderstream/pkg/relay/hintsource"
	"github.com/orderstream/orderstream/pkg/relay/scansource"
)

var hintTopic = record.HintTopicOf(record.DefaultTopicPrefix)

// stack is a relay on the in-memory store and broker, with the scan source
// (told of hints) and the hint source.
type stack struct {
	store     *memstore.Store
	broker    *recordtest.Broker
	producer  *recordtest.Producer // the relay's
	hints     *recordtest.Producer // the command-service's
	fullScans chan struct{}
	reg       *prometheus.Registry
}

func newStack(t *testing.T, mutate func(*relay.Config)) *stack {
	t.Helper()
	store, err := memstore.New(eventstore.DefaultConfig())
	require.NoError(t, err)
	broker := recordtest.NewBroker(3)
	s := &stack{store: store, broker: broker, producer: broker.Producer(), hints: broker.Producer(),
		fullScans: make(chan struct{}, 100), reg: prometheus.NewRegistry()}
	cfg := relay.DefaultConfig()
	cfg.InitialBackoff, cfg.MaxBackoff = time.Millisecond, 2*time.Millisecond
	mutate(&cfg)
	r, err := relay.New(cfg, nil, store, s.producer, zerolog.Nop(), s.reg, relay.WithDeadLetters(deadletter.NewMemory()))
	require.NoError(t, err)
	hooks := r.ScanHooks()
	after := hooks.AfterFullScan
	hooks.AfterFullScan = func(n int64) {
		after(n)
		select {
		case s.fullScans <- struct{}{}:
		default:
		}
	}
	hints, err := hintsource.New(broker.ConsumerGroup("relay-hints"), hintTopic, zerolog.Nop(), s.reg)
	require.NoError(t, err)
	scan, err := scansource.New(cfg.Config, store, hooks, zerolog.Nop(), s.reg, scansource.WithHints(hints.Hinted))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, scan, hints) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return s
}

// commit appends one readable order event to a new order.
func (s *stack) commit(t *testing.T) gocql.UUID {
	t.Helper()
	id := gocql.TimeUUID()
	_, err := s.store.Append(context.Background(), "order", id, 0, []eventstore.Event{
		{EventID: gocql.TimeUUID(), Type: "OrderConfirmed", Version: 1, Data: []byte(`{}`), OccurredAt: time.Now()}})
	require.NoError(t, err)
	return id
}

func (s *stack) hint(t *testing.T, id gocql.UUID, version int64) {
	t.Helper()
	_, _, err := s.hints.SendMessage(record.EncodeHint(hintTopic, record.Hint{AggregateID: id, Version: version}))
	require.NoError(t, err)
}

func (s *stack) published(t *testing.T, id gocql.UUID) bool {
	t.Helper()
	for _, msg := range s.producer.Acked() {
		key, err := msg.Key.Encode()
		require.NoError(t, err)
		if string(key) == id.String() {
			return true
		}
	}
	return false
}

// A hint makes the relay publish the aggregate at once: the scans here run
// once at start and then only every hour, so nothing else could.
func TestHintLeadsToAPublishWithoutAScan(t *testing.T) {
	s := newStack(t, func(c *relay.Config) {
		c.ScanInterval, c.RecentInterval, c.ReconcileEvery, c.IdleMaxInterval = time.Hour, time.Hour, time.Hour, time.Hour
	})
	<-s.fullScans // the first reconcile ran: the next is an hour away
	require.Eventually(t, func() bool { return value(t, s.reg, "orderstream_relay_recent_scans_total", "") == 1 }, 5*time.Second, time.Millisecond,
		"the first read of recent commits ran: the next is an hour away")
	silent := s.commit(t)
	hinted := s.commit(t)
	s.hint(t, hinted, 1)
	require.Eventually(t, func() bool { return s.published(t, hinted) }, 5*time.Second, time.Millisecond)
	require.False(t, s.published(t, silent), "no hint, no scan: not yet")
	require.Equal(t, 1.0, testutil.ToFloat64(counter(t, s.reg, "notified")))
}

// A lost hint is caught by the scan, whose fast loop backs off while idle
// (idle_max_interval) but still runs.
func TestLostHintIsCaughtByTheScan(t *testing.T) {
	s := newStack(t, func(c *relay.Config) {
		c.ScanInterval, c.RecentInterval, c.ReconcileEvery, c.IdleMaxInterval = time.Millisecond, time.Millisecond, time.Hour, 20*time.Millisecond
	})
	<-s.fullScans
	lost := s.commit(t)
	require.Eventually(t, func() bool { return s.published(t, lost) }, 5*time.Second, time.Millisecond)
	require.Zero(t, testutil.ToFloat64(counter(t, s.reg, "notified")))
}

// counter is orderstream_relay_hints_total of an outcome, from reg.
func counter(t *testing.T, reg *prometheus.Registry, outcome string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func() float64 { return value(t, reg, "orderstream_relay_hints_total", outcome) })
}

// value is the counter called name on reg, of the one with the given
// label value when there is one.
func value(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%q}", name, label)
	return 0
}

// collectorFunc is a gauge whose value is computed on collection, so that
// testutil.ToFloat64 reads it.
func collectorFunc(f func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "value", Help: "value"}, f)
}

// held is a notify that holds every done until released.
type held struct {
	mu    sync.Mutex
	calls []gocql.UUID
	dones []func()
}

func (h *held) notify(_ context.Context, id gocql.UUID, done func()) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, id)
	h.dones = append(h.dones, done)
	return nil
}

func (h *held) ids() []gocql.UUID {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]gocql.UUID(nil), h.calls...)
}

func (h *held) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

// release calls the done of notification i.
func (h *held) release(i int) {
	h.mu.Lock()
	done := h.dones[i]
	h.mu.Unlock()
	done()
}

// A burst of hints for one aggregate notifies once while the first is in
// flight, then once more for the versions beyond the first; a repeated
// hint of a version already covered notifies nothing more. Records that
// are not hints are counted and skipped.
func TestBurstsAreCoalesced(t *testing.T) {
	broker := recordtest.NewBroker(1)
	p := broker.Producer()
	reg := prometheus.NewRegistry()
	src, err := hintsource.New(broker.ConsumerGroup("g"), hintTopic, zerolog.Nop(), reg)
	require.NoError(t, err)
	h := &held{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, h.notify) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	send := func(id gocql.UUID, v int64) {
		_, _, err := p.SendMessage(record.EncodeHint(hintTopic, record.Hint{AggregateID: id, Version: v}))
		require.NoError(t, err)
	}
	a, b := gocql.TimeUUID(), gocql.TimeUUID()
	send(a, 1)
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: hintTopic, Key: sarama.StringEncoder("junk"), Value: sarama.StringEncoder("1")})
	require.NoError(t, err)
	send(a, 2)
	send(a, 3)
	send(a, 1) // redelivered
	send(b, 1) // another aggregate is not held up
	require.Eventually(t, func() bool { return h.count() == 2 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return testutil.ToFloat64(counter(t, reg, "invalid")) == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, 3.0, testutil.ToFloat64(counter(t, reg, "coalesced")))
	require.Never(t, func() bool { return h.count() > 2 }, 30*time.Millisecond, time.Millisecond, "a is in flight")

	before := time.Now()
	require.True(t, src.Hinted(a, before.Add(-time.Minute)), "a hint announced a")
	require.False(t, src.Hinted(a, before.Add(time.Second)), "not since then")
	require.False(t, src.Hinted(gocql.TimeUUID(), time.Time{}), "never hinted")

	h.release(0) // a's first: versions 2 and 3 were hinted meanwhile
	require.Eventually(t, func() bool { return h.count() == 3 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []gocql.UUID{a, b, a}, h.ids())
	send(a, 3) // covered by the notification in flight
	require.Eventually(t, func() bool { return testutil.ToFloat64(counter(t, reg, "coalesced")) == 4 }, 5*time.Second, time.Millisecond)
	h.release(2)
	require.Never(t, func() bool { return h.count() > 3 }, 30*time.Millisecond, time.Millisecond, "version 3 was covered")

	send(a, 4) // nothing in flight any more
	require.Eventually(t, func() bool { return h.count() == 4 }, 5*time.Second, time.Millisecond)
	require.Equal(t, 3.0, testutil.ToFloat64(counter(t, reg, "notified")))
}

func TestConfigAndNewChecks(t *testing.T) {
	require.NoError(t, hintsource.DefaultConfig().Validate())
	bad := hintsource.DefaultConfig()
	bad.Group, bad.Topic.Partitions = "", 0
	err := bad.Validate()
	require.ErrorContains(t, err, `"group"`)
	require.ErrorContains(t, err, `"topic.partitions"`)
	_, err = hintsource.New(nil, hintTopic, zerolog.Nop(), nil)
	require.Error(t, err)
	_, err = hintsource.New(recordtest.NewBroker(1).ConsumerGroup("g"), "", zerolog.Nop(), nil)
	require.Error(t, err)
	reg := prometheus.NewRegistry()
	_, err = hintsource.New(recordtest.NewBroker(1).ConsumerGroup("g"), hintTopic, zerolog.Nop(), reg)
	require.NoError(t, err)
	_, err = hintsource.New(recordtest.NewBroker(1).ConsumerGroup("g"), hintTopic, zerolog.Nop(), reg)
	require.Error(t, err, "a second source on one registry")
}

// failingGroup fails its first sessions, as a group does while the broker
// is away, then consumes through the in-memory group.
type failingGroup struct {
	hintsource.Group
	mu    sync.Mutex
	fails int
}

func (g *failingGroup) Consume(ctx context.Context, topics []string, h sarama.ConsumerGroupHandler) error {
	g.mu.Lock()
	if g.fails > 0 {
		g.fails--
		g.mu.Unlock()
		return sarama.ErrOutOfBrokers
	}
	g.mu.Unlock()
	return g.Group.Consume(ctx, topics, h)
}

// A broker that is away fails the hint reader's sessions: the source
// counts them and joins again after a backoff instead of ending (which
// would spend its worker's restart budget and stop the relay), and reads
// hints once the broker is back.
func TestBrokerOutageIsRiddenOut(t *testing.T) {
	broker := recordtest.NewBroker(1)
	group := &failingGroup{Group: broker.ConsumerGroup("relay-hints"), fails: 3}
	reg := prometheus.NewRegistry()
	src, err := hintsource.New(group, hintTopic, zerolog.Nop(), reg)
	require.NoError(t, err)
	notified := make(chan gocql.UUID, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(_ context.Context, id gocql.UUID, finished func()) error {
			notified <- id
			finished()
			return nil
		})
	}()
	require.Eventually(t, func() bool { return value(t, reg, "orderstream_relay_hint_read_errors_total", "") == 3 }, 10*time.Second, time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Run ended on a broker outage: %v", err)
	default:
	}
	// Back: a hint sent now (the group starts at the newest) is read.
	id := gocql.TimeUUID()
	require.Eventually(t, func() bool {
		_, _, err := broker.Producer().SendMessage(record.EncodeHint(hintTopic, record.Hint{AggregateID: id, Version: 1}))
		require.NoError(t, err)
		select {
		case got := <-notified:
			return got == id
		case <-time.After(50 * time.Millisecond):
			return false
		}
	}, 10*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}
