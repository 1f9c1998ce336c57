package scansource

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
)

func newStore(t *testing.T, opts ...memstore.Option) *memstore.Store {
	t.Helper()
	s, err := memstore.New(eventstore.DefaultConfig(), opts...)
	require.NoError(t, err)
	return s
}

func commit(t *testing.T, s *memstore.Store, n int) gocql.UUID {
	t.Helper()
	id := gocql.TimeUUID()
	var events []eventstore.Event
	for range n {
		events = append(events, eventstore.Event{EventID: gocql.TimeUUID(), Type: "OrderConfirmed", Version: 1, Data: []byte(`{}`)})
	}
	_, err := s.Append(context.Background(), "order", id, 0, events)
	require.NoError(t, err)
	return id
}

// notified records the aggregates a source hands over and calls done at
// once, unless held.
type notified struct {
	mu    sync.Mutex
	ids   []gocql.UUID
	held  []func()
	hold  bool
	count atomic.Int32
}

func (n *notified) notify(_ context.Context, id gocql.UUID, done func()) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ids = append(n.ids, id)
	n.count.Add(1)
	if n.hold {
		n.held = append(n.held, done)
		return nil
	}
	done()
	return nil
}

func (n *notified) has(id gocql.UUID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, got := range n.ids {
		if got == id {
			return true
		}
	}
	return false
}

func start(t *testing.T, src *Source, notify Notify) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, notify) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func fast() Config {
	c := DefaultConfig()
	c.ScanInterval, c.RecentInterval, c.ReconcileEvery = time.Millisecond, time.Millisecond, time.Hour
	return c
}

// Without the index on updated_at, full scans find every aggregate with
// unpublished events, report the backlog, and reload the parked set
// (BeforeFullScan) first.
func TestFullScansFindTheUnpublished(t *testing.T) {
	store := newStore(t, memstore.WithoutRecentIndex())
	a, b := commit(t, store, 3), commit(t, store, 2)
	require.NoError(t, store.MarkPublished(context.Background(), b, 2))
	var before atomic.Int32
	var backlog atomic.Int64
	backlog.Store(-1)
	reg := prometheus.NewRegistry()
	src, err := New(fast(), store, Hooks{
		BeforeFullScan: func(context.Context) error { before.Add(1); return nil },
		AfterFullScan:  func(n int64) { backlog.Store(n) },
	}, zerolog.Nop(), reg)
	require.NoError(t, err)
	n := &notified{}
	stop := start(t, src, n.notify)
	require.Eventually(t, func() bool { return n.has(a) && backlog.Load() == 3 }, 5*time.Second, time.Millisecond)
	require.False(t, n.has(b), "published through its head: nothing to do")
	require.Positive(t, before.Load())
	require.NoError(t, store.MarkPublished(context.Background(), a, 3))
	require.Eventually(t, func() bool { return backlog.Load() == 0 }, 5*time.Second, time.Millisecond)
	require.NoError(t, stop())
	require.Zero(t, testutil.ToFloat64(src.m.lag))
	require.Positive(t, testutil.ToFloat64(src.m.scans))
	require.Zero(t, testutil.ToFloat64(src.m.recentScans), "no index: no recent reads")
}

// Each scan's aggregates are all handled before the next scan starts: a
// scan waits for every done it handed out.
func TestNextScanWaitsForTheAggregatesHandedOut(t *testing.T) {
	store := newStore(t, memstore.WithoutRecentIndex())
	commit(t, store, 1)
	var scans atomic.Int32
	src, err := New(fast(), store, Hooks{BeforeFullScan: func(context.Context) error { scans.Add(1); return nil }}, zerolog.Nop(), nil)
	require.NoError(t, err)
	n := &notified{hold: true}
	start(t, src, n.notify)
	require.Eventually(t, func() bool { return n.count.Load() == 1 }, 5*time.Second, time.Millisecond)
	require.Never(t, func() bool { return scans.Load() > 1 }, 50*time.Millisecond, time.Millisecond, "the aggregate is still being handled")
	n.mu.Lock()
	n.hold = false
	held := n.held
	n.mu.Unlock()
	for _, done := range held {
		done()
	}
	require.Eventually(t, func() bool { return scans.Load() > 1 }, 5*time.Second, time.Millisecond)
}

// With the index, recent commits are found between two full scans.
func TestRecentCommitsFoundBetweenFullScans(t *testing.T) {
	store := newStore(t)
	var fulls atomic.Int32
	src, err := New(fast(), store, Hooks{AfterFullScan: func(int64) { fulls.Add(1) }}, zerolog.Nop(), nil)
	require.NoError(t, err)
	n := &notified{}
	start(t, src, n.notify)
	require.Eventually(t, func() bool { return fulls.Load() == 1 }, 5*time.Second, time.Millisecond, "the first reconcile runs at once")
	id := commit(t, store, 1)
	require.Eventually(t, func() bool { return n.has(id) }, 5*time.Second, time.Millisecond)
	require.Equal(t, int32(1), fulls.Load(), "found by a recent read, not a reconcile (reconcile_every is an hour)")
	require.Positive(t, testutil.ToFloat64(src.m.recentScans))
}

// A failed reload of the parked set fails the scan: its supervisor
// restarts the source.
func TestFailedBeforeFullScanEndsRun(t *testing.T) {
	store := newStore(t, memstore.WithoutRecentIndex())
	down := errors.New("database down")
	src, err := New(fast(), store, Hooks{BeforeFullScan: func(context.Context) error { return down }}, zerolog.Nop(), nil)
	require.NoError(t, err)
	err = src.Run(context.Background(), (&notified{}).notify)
	require.ErrorIs(t, err, down)
	require.ErrorContains(t, err, "scanning event_store")
}

func TestConfigAndNewChecks(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	bad := DefaultConfig()
	bad.ScanRanges, bad.RecentInterval = 0, 0
	err := bad.Validate()
	require.ErrorContains(t, err, `"scan_ranges"`)
	require.ErrorContains(t, err, `"recent_interval"`)
	_, err = New(bad, newStore(t), Hooks{}, zerolog.Nop(), nil)
	require.Error(t, err)
	_, err = New(DefaultConfig(), nil, Hooks{}, zerolog.Nop(), nil)
	require.ErrorContains(t, err, "store")
	reg := prometheus.NewRegistry()
	_, err = New(DefaultConfig(), newStore(t), Hooks{}, zerolog.Nop(), reg)
	require.NoError(t, err)
	_, err = New(DefaultConfig(), newStore(t), Hooks{}, zerolog.Nop(), reg)
	require.Error(t, err, "a second source on one registry")
	families, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, families, 8, "the failed one left the registry as it was")
}

// pauses records the pauses of a source's fast loop.
type pauses struct {
	mu sync.Mutex
	ds []time.Duration
}

func (p *pauses) add(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ds = append(p.ds, d)
}

func (p *pauses) all() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Duration(nil), p.ds...)
}

func (p *pauses) last() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ds) == 0 {
		return 0
	}
	return p.ds[len(p.ds)-1]
}

// With commit hints the fast loop backs off while it finds nothing, up to
// idle_max_interval, and comes back to recent_interval on a find (a lost
// hint); it grows again once the find is published. With the index or
// without (the full scans are then the fast loop).
func TestFastLoopBacksOffWhenIdleWithHints(t *testing.T) {
	for name, opts := range map[string][]memstore.Option{"recent reads": nil, "full scans": {memstore.WithoutRecentIndex()}} {
		t.Run(name, func(t *testing.T) {
			store := newStore(t, opts...)
			cfg := fast()
			cfg.IdleMaxInterval = 40 * time.Millisecond
			reg := prometheus.NewRegistry()
			src, err := New(cfg, store, Hooks{}, zerolog.Nop(), reg, WithHints(nil))
			require.NoError(t, err)
			p := &pauses{}
			src.onPause = p.add
			var published atomic.Bool
			notify := func(ctx context.Context, id gocql.UUID, done func()) error {
				if published.Load() {
					require.NoError(t, store.MarkPublished(ctx, id, 1))
				}
				done()
				return nil
			}
			start(t, src, notify)
			require.Eventually(t, func() bool { return p.last() >= cfg.IdleMaxInterval/2 }, 5*time.Second, time.Millisecond, "idle: the pause grows to the cap")
			for _, d := range p.all() {
				require.LessOrEqual(t, d, cfg.IdleMaxInterval)
				require.GreaterOrEqual(t, d, cfg.RecentInterval/2)
			}
			require.Zero(t, testutil.ToFloat64(src.m.finds))

			commit(t, store, 1) // its hint was lost
			require.Eventually(t, func() bool { return p.last() == time.Millisecond }, 5*time.Second, time.Millisecond, "a find resets the pause")
			require.Positive(t, testutil.ToFloat64(src.m.finds))
			require.Equal(t, time.Millisecond.Seconds(), testutil.ToFloat64(src.m.pause))

			published.Store(true)
			require.Eventually(t, func() bool { return p.last() >= cfg.IdleMaxInterval/2 }, 5*time.Second, time.Millisecond, "published: idle again")
		})
	}
}

// Without hints the fast loop keeps its fixed pause, idle or not.
func TestFastLoopKeepsItsPaceWithoutHints(t *testing.T) {
	store := newStore(t)
	cfg := fast()
	cfg.IdleMaxInterval = 40 * time.Millisecond
	src, err := New(cfg, store, Hooks{}, zerolog.Nop(), nil)
	require.NoError(t, err)
	p := &pauses{}
	src.onPause = p.add
	start(t, src, (&notified{}).notify)
	require.Eventually(t, func() bool { return len(p.all()) >= 50 }, 5*time.Second, time.Millisecond)
	for _, d := range p.all() {
		require.Equal(t, cfg.RecentInterval, d)
	}
}

// A find that a hint announced is published but is no miss: the pause
// keeps growing; a find no hint announced resets it.
func TestFindsAnnouncedByHintsAreNoMisses(t *testing.T) {
	store := newStore(t)
	cfg := fast()
	cfg.IdleMaxInterval = 40 * time.Millisecond
	var announced sync.Map
	var asked atomic.Int32
	hinted := func(id gocql.UUID, since time.Time) bool {
		asked.Add(1)
		at, ok := announced.Load(id)
		return ok && !at.(time.Time).Before(since)
	}
	src, err := New(cfg, store, Hooks{}, zerolog.Nop(), nil, WithHints(hinted))
	require.NoError(t, err)
	p := &pauses{}
	src.onPause = p.add
	n := &notified{}
	start(t, src, func(ctx context.Context, id gocql.UUID, done func()) error {
		require.NoError(t, store.MarkPublished(ctx, id, 1))
		return n.notify(ctx, id, done)
	})
	require.Eventually(t, func() bool { return p.last() >= cfg.IdleMaxInterval/2 }, 5*time.Second, time.Millisecond)

	// Announced: its hint came before the read.
	id := gocql.TimeUUID()
	announced.Store(id, time.Now())
	k := len(p.all())
	_, err = store.Append(context.Background(), "order", id, 0, []eventstore.Event{{EventID: gocql.TimeUUID(), Type: "OrderConfirmed", Version: 1, Data: []byte(`{}`)}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return n.has(id) }, 5*time.Second, time.Millisecond, "an announced find is still published")
	require.Positive(t, asked.Load())
	require.Eventually(t, func() bool { return len(p.all()) >= k+3 }, 5*time.Second, time.Millisecond)
	for _, d := range p.all()[k:] {
		require.Greater(t, d, cfg.RecentInterval, "no miss: the pause did not reset")
	}
	require.Zero(t, testutil.ToFloat64(src.m.finds))

	// Not announced: a miss.
	k = len(p.all())
	lost := commit(t, store, 1)
	require.Eventually(t, func() bool { return n.has(lost) }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return testutil.ToFloat64(src.m.finds) == 1 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return slices.Contains(p.all()[k:], cfg.RecentInterval) }, 5*time.Second, time.Millisecond, "the miss reset the pause")
}

// countingStore counts the reads of recent commits.
type countingStore struct {
	Store
	recent atomic.Int32
}

func (c *countingStore) RecentHeads(ctx context.Context, since time.Time, fn func(eventstore.Head) error) error {
	c.recent.Add(1)
	return c.Store.RecentHeads(ctx, since, fn)
}

// Idle, with hints, the relay reads recent commits about once per
// idle_max_interval after the first few doublings, instead of once per
// recent_interval.
func TestIdleReadsWithHintsAreFew(t *testing.T) {
	const window = 2 * time.Second
	cfg := DefaultConfig() // recent_interval 10 ms
	cfg.IdleMaxInterval = 200 * time.Millisecond
	store := &countingStore{Store: newStore(t)}
	src, err := New(cfg, store, Hooks{}, zerolog.Nop(), nil, WithHints(nil))
	require.NoError(t, err)
	start(t, src, (&notified{}).notify)
	// 10+20+40+80+160 ms of doubling, then at most one read per 100 ms
	// (the jittered cap is 100..200 ms): about 25 reads in 2 s, against
	// up to 200 without hints.
	require.Never(t, func() bool { return store.recent.Load() > 30 }, window, 10*time.Millisecond)
	t.Logf("idle with hints: %d reads of recent commits in %s (recent_interval %s, idle_max_interval %s)", store.recent.Load(), window, cfg.RecentInterval, cfg.IdleMaxInterval)
}

// With commit hints and the index, the reconcile backs off too while its
// full scans find nothing, from reconcile_every up to reconcile_max_every,
// and a find no hint announced brings it back to reconcile_every.
func TestReconcileBacksOffWhenIdleWithHints(t *testing.T) {
	store := newStore(t)
	cfg := fast()
	cfg.RecentInterval = time.Hour // only the reconcile finds commits
	cfg.ReconcileEvery, cfg.ReconcileMaxEvery = time.Millisecond, 40*time.Millisecond
	reg := prometheus.NewRegistry()
	src, err := New(cfg, store, Hooks{}, zerolog.Nop(), reg, WithHints(func(gocql.UUID, time.Time) bool { return false }))
	require.NoError(t, err)
	p := &pauses{}
	src.onReconcilePause = p.add
	n := &notified{}
	var published atomic.Bool
	start(t, src, func(ctx context.Context, id gocql.UUID, done func()) error {
		if published.Load() {
			require.NoError(t, store.MarkPublished(ctx, id, 1))
		}
		return n.notify(ctx, id, done)
	})
	require.Eventually(t, func() bool { return p.last() >= cfg.ReconcileMaxEvery/2 }, 5*time.Second, time.Millisecond, "idle: the pause grows to the cap")
	for _, d := range p.all() {
		require.LessOrEqual(t, d, cfg.ReconcileMaxEvery)
		require.GreaterOrEqual(t, d, cfg.ReconcileEvery/2)
	}
	require.Equal(t, p.last().Seconds(), testutil.ToFloat64(src.m.reconcile))

	lost := commit(t, store, 1) // no hint announced it
	require.Eventually(t, func() bool { return n.has(lost) }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return p.last() == cfg.ReconcileEvery }, 5*time.Second, time.Millisecond, "a find resets the pause")
	published.Store(true)
	require.Eventually(t, func() bool { return p.last() >= cfg.ReconcileMaxEvery/2 }, 5*time.Second, time.Millisecond, "published: idle again")
}

// Without hints the reconcile keeps reconcile_every, idle or not.
func TestReconcileKeepsItsPaceWithoutHints(t *testing.T) {
	cfg := fast()
	cfg.RecentInterval = time.Hour
	cfg.ReconcileEvery, cfg.ReconcileMaxEvery = time.Millisecond, 40*time.Millisecond
	src, err := New(cfg, newStore(t), Hooks{}, zerolog.Nop(), nil)
	require.NoError(t, err)
	p := &pauses{}
	src.onReconcilePause = p.add
	start(t, src, (&notified{}).notify)
	require.Eventually(t, func() bool { return len(p.all()) >= 30 }, 5*time.Second, time.Millisecond)
	for _, d := range p.all() {
		require.Equal(t, cfg.ReconcileEvery, d)
	}
}

// With ReconcileOnly (the CDC source notifies) and without the index, the
// full scans run as the reconcile: from reconcile_every, backing off to
// reconcile_max_every with hints, never at scan_interval; what they find is
// still published.
func TestReconcileOnlyScansAtTheReconcilePace(t *testing.T) {
	store := newStore(t, memstore.WithoutRecentIndex())
	cfg := fast() // scan_interval 1 ms
	cfg.ReconcileEvery, cfg.ReconcileMaxEvery = 5*time.Millisecond, 40*time.Millisecond
	src, err := New(cfg, store, Hooks{}, zerolog.Nop(), nil, WithHints(nil), ReconcileOnly())
	require.NoError(t, err)
	fastPauses, reconcilePauses := &pauses{}, &pauses{}
	src.onPause, src.onReconcilePause = fastPauses.add, reconcilePauses.add
	n := &notified{}
	start(t, src, n.notify)
	require.Eventually(t, func() bool { return reconcilePauses.last() >= cfg.ReconcileMaxEvery/2 }, 5*time.Second, time.Millisecond, "idle: the pause grows to the cap")
	for _, d := range reconcilePauses.all() {
		require.GreaterOrEqual(t, d, cfg.ReconcileEvery/2)
	}
	require.Empty(t, fastPauses.all(), "no scan at scan_interval")
	id := commit(t, store, 1)
	require.Eventually(t, func() bool { return n.has(id) }, 5*time.Second, time.Millisecond)
}
