package redrive

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
)

// fakeStore is an in-memory parked_aggregates and dead letter count; the
// retry requests are deadletter.Memory's.
type fakeStore struct {
	*deadletter.Memory

	mu      sync.Mutex
	parked  map[string]map[gocql.UUID]bool // by component
	raw     []string                       // components of raw dead letters
	failing error
}

func newFakeStore() *fakeStore { return &fakeStore{Memory: deadletter.NewMemory()} }

func (s *fakeStore) Park(_ context.Context, component string, e eventstore.Event, _ error) (gocql.UUID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing != nil {
		return gocql.UUID{}, s.failing
	}
	if s.parked == nil {
		s.parked = map[string]map[gocql.UUID]bool{}
	}
	if s.parked[component] == nil {
		s.parked[component] = map[gocql.UUID]bool{}
	}
	s.parked[component][e.AggregateID] = true
	return gocql.TimeUUID(), nil
}

func (s *fakeStore) Parked(_ context.Context, component string) (map[gocql.UUID]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing != nil {
		return nil, s.failing
	}
	out := map[gocql.UUID]bool{}
	for id := range s.parked[component] {
		out[id] = true
	}
	return out, nil
}

func (s *fakeStore) Raw(_ context.Context, component string, _ any, _ error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw = append(s.raw, component)
	return nil
}

// unpark is the dlq-service unparking id behind the component's back.
func (s *fakeStore) unpark(component string, id gocql.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.parked[component], id)
}

type countingPoller struct{ polls atomic.Int32 }

func (p *countingPoller) Poll(ctx context.Context) error {
	p.polls.Add(1)
	return ctx.Err()
}

func newParking(t *testing.T, store DeadLetters, opts Options) (*Parking, prometheus.Gauge, prometheus.Counter) {
	t.Helper()
	parked := prometheus.NewGauge(prometheus.GaugeOpts{Name: "parked"})
	dead := prometheus.NewCounter(prometheus.CounterOpts{Name: "dead"})
	opts.Metrics = Metrics{Parked: parked, DeadLettered: dead}
	if opts.Poller == nil {
		opts.Poller = &countingPoller{}
	}
	cfg := deadletter.DefaultRetryConfig()
	cfg.Every = time.Millisecond
	p, err := New("relay", store, cfg, nil, zerolog.Nop(), nil, opts)
	require.NoError(t, err)
	return p, parked, dead
}

func TestParkAddsAtOnceAndCounts(t *testing.T) {
	store := newFakeStore()
	p, parked, dead := newParking(t, store, Options{RawComponent: "relay/cdc"})
	id := gocql.TimeUUID()
	_, err := p.Park(context.Background(), eventstore.Event{AggregateID: id, Sequence: 2, Type: "OrderConfirmed"}, "poison", errors.New("bad payload"))
	require.NoError(t, err)
	require.True(t, p.Has(id), "parked before any reload")
	require.Equal(t, 1.0, testutil.ToFloat64(parked))
	require.Equal(t, 1.0, testutil.ToFloat64(dead))

	require.NoError(t, p.Raw(context.Background(), map[string]any{"row": 1}, errors.New("unreadable")))
	require.Equal(t, []string{"relay/cdc"}, store.raw)
	require.Equal(t, 2.0, testutil.ToFloat64(dead), "raw dead letters count too")
	require.Equal(t, 1, p.Len(), "raw input parks nothing")

	p.Unpark(id)
	require.False(t, p.Has(id))
	require.Equal(t, 0.0, testutil.ToFloat64(parked))
}

func TestParkFailureParksNothing(t *testing.T) {
	p, _, dead := newParking(t, &fakeStore{Memory: deadletter.NewMemory(), failing: errors.New("database down")}, Options{})
	id := gocql.TimeUUID()
	_, err := p.Park(context.Background(), eventstore.Event{AggregateID: id}, "", errors.New("bad"))
	require.ErrorContains(t, err, "database down")
	require.False(t, p.Has(id))
	require.Equal(t, 0.0, testutil.ToFloat64(dead))
}

func TestReloadReportsWhatWasUnparkedElsewhere(t *testing.T) {
	store := newFakeStore()
	var unparked []gocql.UUID
	p, parked, _ := newParking(t, store, Options{Unparked: func(ids []gocql.UUID) { unparked = append(unparked, ids...) }})
	ctx := context.Background()
	a, b := gocql.TimeUUID(), gocql.TimeUUID()
	for _, id := range []gocql.UUID{a, b} {
		_, err := p.Park(ctx, eventstore.Event{AggregateID: id}, "", errors.New("bad"))
		require.NoError(t, err)
	}
	require.NoError(t, p.Reload(ctx))
	require.Empty(t, unparked)

	store.unpark("relay", a)
	require.NoError(t, p.Reload(ctx))
	require.Equal(t, []gocql.UUID{a}, unparked)
	require.False(t, p.Has(a))
	require.True(t, p.Has(b))
	require.Equal(t, 1.0, testutil.ToFloat64(parked))
}

func TestReloadIfStale(t *testing.T) {
	store := newFakeStore()
	p, _, _ := newParking(t, store, Options{ReloadEvery: time.Hour})
	ctx := context.Background()
	id := gocql.TimeUUID()
	_, err := store.Park(ctx, "relay", eventstore.Event{AggregateID: id}, nil)
	require.NoError(t, err)
	p.ReloadIfStale(ctx) // never read: stale
	require.True(t, p.Has(id))
	store.unpark("relay", id)
	p.ReloadIfStale(ctx) // read just now: not stale, the set stays
	require.True(t, p.Has(id))

	never, _, _ := newParking(t, store, Options{})
	_, err = store.Park(ctx, "relay", eventstore.Event{AggregateID: id}, nil)
	require.NoError(t, err)
	never.ReloadIfStale(ctx)
	require.False(t, never.Has(id), "no ReloadEvery: reloading is the component's")
}

func TestRunPollsEachRoundUnlessPausedAndStopsWithItsContext(t *testing.T) {
	poller := &countingPoller{}
	var (
		paused         atomic.Bool
		rounds, checks atomic.Int32
	)
	isPaused := func() bool {
		checks.Add(1)
		return paused.Load()
	}
	p, _, _ := newParking(t, newFakeStore(), Options{Poller: poller, Paused: isPaused, EachRound: func(context.Context) { rounds.Add(1) }})
	w := p.Worker("redrive")
	require.Equal(t, "redrive", w.Name)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	require.Eventually(t, func() bool { return poller.polls.Load() >= 3 }, 5*time.Second, time.Millisecond)
	require.GreaterOrEqual(t, rounds.Load(), int32(3))

	// Rounds run one after another: once a round has seen the pause, the
	// one in flight when it began is over, and no later round polls.
	paused.Store(true)
	start := checks.Load()
	require.Eventually(t, func() bool { return checks.Load() > start }, 5*time.Second, time.Millisecond)
	before := poller.polls.Load()
	require.Eventually(t, func() bool { return checks.Load() > start+3 }, 5*time.Second, time.Millisecond)
	require.Equal(t, before, poller.polls.Load(), "no polls while paused")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the redrive worker did not stop with its context")
	}
}

func TestNewChecks(t *testing.T) {
	_, err := New("", newFakeStore(), deadletter.DefaultRetryConfig(), nil, zerolog.Nop(), nil, Options{Poller: &countingPoller{}})
	require.Error(t, err)
	bad := deadletter.DefaultRetryConfig()
	bad.Every = 0
	_, err = New("relay", newFakeStore(), bad, nil, zerolog.Nop(), nil, Options{Poller: &countingPoller{}})
	require.ErrorContains(t, err, `"every"`)
}
