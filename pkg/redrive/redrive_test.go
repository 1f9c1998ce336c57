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

	"github.com/orderstream/orderstream/pkg/backoff"
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
	reads   int // of the parked set
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
	s.reads++
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

func (s *fakeStore) parkedReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// countingPoller counts its polls and finds, in each, the number of
// pending requests the next value of pending says (none when empty).
type countingPoller struct {
	polls   atomic.Int32
	mu      sync.Mutex
	pending []int
}

func (p *countingPoller) PollPending(ctx context.Context) (int, error) {
	p.polls.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	if len(p.pending) > 0 {
		n, p.pending = p.pending[0], p.pending[1:]
	}
	return n, ctx.Err()
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
	cfg.Every, cfg.MaxEvery = time.Millisecond, 8*time.Millisecond
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

// Idle, the rounds back off from retry.Every up to retry.MaxEvery; a round
// that finds a request (even one another replica holds) brings the next
// pause back to retry.Every at once.
func TestRunBacksOffWhileNoRequestsAndReturnsAtOnce(t *testing.T) {
	const every, maxEvery = 10 * time.Millisecond, 80 * time.Millisecond
	pending := []int{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2}
	poller := &countingPoller{pending: append([]int(nil), pending...)}
	cfg := deadletter.RetryConfig{Every: every, MaxEvery: maxEvery, ClaimFor: time.Minute}
	p, err := New("relay", newFakeStore(), cfg, nil, zerolog.Nop(), nil, Options{Poller: poller})
	require.NoError(t, err)
	var pauses []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.sleep = func(_ context.Context, d time.Duration) bool {
		pauses = append(pauses, d)
		if len(pauses) == len(pending) {
			cancel()
			return false
		}
		return true
	}
	require.NoError(t, p.Run(ctx))
	require.Len(t, pauses, len(pending))
	for i, d := range pauses {
		require.GreaterOrEqual(t, d, every, "pause %d", i)
		require.LessOrEqual(t, d, maxEvery, "pause %d", i)
		if pending[i] > 0 {
			require.Equal(t, every, d, "pause %d follows a round that found requests", i)
		}
	}
	for _, i := range []int{7, 16} { // after 8 idle rounds: at the cap (jittered to [cap/2, cap])
		require.GreaterOrEqual(t, pauses[i], maxEvery/2, "pause %d", i)
	}
	require.Less(t, pauses[9], maxEvery/2, "the first idle pause after a find starts over from every")

	// No back-off configured: every round waits retry.Every, exactly.
	cfg.MaxEvery = 0
	poller = &countingPoller{}
	p, err = New("relay", newFakeStore(), cfg, nil, zerolog.Nop(), nil, Options{Poller: poller})
	require.NoError(t, err)
	pauses = nil
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	p.sleep = func(_ context.Context, d time.Duration) bool {
		pauses = append(pauses, d)
		if len(pauses) == 6 {
			cancel()
			return false
		}
		return true
	}
	require.NoError(t, p.Run(ctx))
	require.Equal(t, []time.Duration{every, every, every, every, every, every}, pauses)
}

// Run's re-reads of the parked set back off while it is empty and stays
// so, and return to ReloadEvery as soon as one finds it changed or while
// it holds aggregates; the hot path's ReloadIfStale keeps ReloadEvery.
func TestRunReloadsBackOffWhileNothingIsParked(t *testing.T) {
	const every, maxEvery = 10 * time.Millisecond, 80 * time.Millisecond
	store := newFakeStore()
	var unparked []gocql.UUID
	p, _, _ := newParking(t, store, Options{ReloadEvery: every, ReloadMaxEvery: maxEvery, Unparked: func(ids []gocql.UUID) { unparked = append(unparked, ids...) }})
	ctx := context.Background()
	reloads := backoff.Policy{Initial: every, Max: maxEvery}.Start()
	stale := func() { p.reloadedAt.Store(time.Now().Add(-time.Hour).UnixNano()) }

	after := p.reloadIdle(ctx, every, reloads) // never read: stale
	require.Equal(t, 1, store.parkedReads())
	require.GreaterOrEqual(t, after, every)
	require.Equal(t, after, p.reloadIdle(ctx, after, reloads), "read just now: not stale")
	require.Equal(t, 1, store.parkedReads())
	for range 6 {
		stale()
		next := p.reloadIdle(ctx, after, reloads)
		require.GreaterOrEqual(t, next, every)
		require.LessOrEqual(t, next, maxEvery)
		after = next
	}
	require.Equal(t, 7, store.parkedReads())
	require.GreaterOrEqual(t, after, maxEvery/2, "empty and unchanged: backed off to the cap")

	// Another member parks an aggregate: the re-read finds it, and while
	// it is parked the re-reads stay at ReloadEvery.
	id := gocql.TimeUUID()
	_, err := store.Park(ctx, "relay", eventstore.Event{AggregateID: id}, nil)
	require.NoError(t, err)
	for range 3 {
		stale()
		require.Equal(t, every, p.reloadIdle(ctx, after, reloads))
		after = every
	}
	require.True(t, p.Has(id))

	// Unparked elsewhere: the change is reported, and the threshold starts
	// over from ReloadEvery.
	store.unpark("relay", id)
	stale()
	require.Equal(t, every, p.reloadIdle(ctx, after, reloads))
	require.Equal(t, []gocql.UUID{id}, unparked)
	require.False(t, p.Has(id))
	stale()
	require.Less(t, p.reloadIdle(ctx, every, reloads), maxEvery/2, "backing off starts over")

	// A failed read keeps the set and the threshold.
	store.mu.Lock()
	store.failing = errors.New("database down")
	store.mu.Unlock()
	stale()
	require.Equal(t, 40*time.Millisecond, p.reloadIdle(ctx, 40*time.Millisecond, reloads))

	// The hot path keeps ReloadEvery whatever Run backed off to.
	store.mu.Lock()
	store.failing = nil
	store.mu.Unlock()
	p.reloadedAt.Store(time.Now().Add(-2 * every).UnixNano())
	reads := store.parkedReads()
	p.ReloadIfStale(ctx)
	require.Equal(t, reads+1, store.parkedReads())
}

// Idle, Run re-reads the parked set every ReloadEvery without
// ReloadMaxEvery, and less often with it.
func TestRunReadsTheParkedSetLessOftenWhenIdle(t *testing.T) {
	count := func(maxEvery time.Duration) int {
		store := newFakeStore()
		cfg := deadletter.RetryConfig{Every: 10 * time.Millisecond, MaxEvery: 10 * time.Millisecond, ClaimFor: time.Minute}
		p, err := New("relay", store, cfg, nil, zerolog.Nop(), nil, Options{Poller: &countingPoller{}, ReloadEvery: 10 * time.Millisecond, ReloadMaxEvery: maxEvery})
		require.NoError(t, err)
		// A simulated clock: each pause moves the last reload back by the
		// pause, as if that much time had passed.
		rounds := 0
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p.sleep = func(_ context.Context, d time.Duration) bool {
			p.reloadedAt.Add(-int64(d) - int64(time.Millisecond))
			rounds++
			if rounds == 200 {
				cancel()
				return false
			}
			return true
		}
		require.NoError(t, p.Run(ctx))
		return store.parkedReads()
	}
	fixed, backedOff := count(0), count(640*time.Millisecond)
	require.Equal(t, 200, fixed, "each round, every 11 ms, finds the set older than ReloadEvery")
	require.LessOrEqual(t, backedOff, 20, "backed off to 320..640 ms over 2 s")
	t.Logf("parked-set reads over 200 idle rounds: %d fixed, %d backing off", fixed, backedOff)
}
