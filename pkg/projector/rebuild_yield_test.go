package projector

// Unit tests of a rebuild's scan yielding to the live consumer (yielder),
// without servers: a fake clock for the decisions, and a projector on the
// in-memory twins whose consumer's lag the test sets.

import (
	"context"
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
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
)

// fakeYielder is a yielder on a clock the test moves, with the lag it
// sets; it records the pauses' ends.
type fakeYielder struct {
	*yielder
	clock    time.Time
	lagNow   int64
	delayNow time.Duration
	starts   int
	ends     []time.Duration
	cuts     int
	counted  time.Duration
}

func newFakeYielder(maxLag int64, maxDelay, maxPause time.Duration) *fakeYielder {
	f := &fakeYielder{clock: time.Unix(1_700_000_000, 0)}
	f.yielder = &yielder{
		behind: func(time.Time) (int64, time.Duration) { return f.lagNow, f.delayNow },
		maxLag: maxLag, maxDelay: maxDelay, maxPause: maxPause, minRun: maxPause / 4, poll: 100 * time.Millisecond,
		now: func() time.Time { return f.clock },
		paused: func(start bool, _ int64, _, lasted time.Duration, cut bool) {
			switch {
			case start:
				f.starts++
			case cut:
				f.cuts++
				f.ends = append(f.ends, lasted)
			default:
				f.ends = append(f.ends, lasted)
			}
		},
		spent: func(d time.Duration) { f.counted += d },
	}
	return f
}

// The scan runs while the consumer is within rebuild_max_lag records and
// rebuild_max_delay, pauses once it is further behind, stays paused until
// the consumer is back within half of both, and the time paused is
// counted once.
func TestYielderPausesWhileTheConsumerIsBehind(t *testing.T) {
	type step struct {
		advance  time.Duration
		lag      int64
		delay    time.Duration
		runs     bool // check answers 0
		yielding bool
	}
	const ms = time.Millisecond
	for _, tc := range []struct {
		name     string
		maxLag   int64
		maxDelay time.Duration
		steps    []step
		paused   time.Duration
		pauses   int
	}{
		{
			name: "within the bounds", maxLag: 100, maxDelay: time.Second,
			steps: []step{{0, 0, 0, true, false}, {time.Second, 100, time.Second, true, false}, {time.Second, -1, 0, true, false}},
		},
		{
			name:  "never with both bounds 0",
			steps: []step{{0, 1_000_000, time.Hour, true, false}, {time.Minute, 1_000_000, time.Hour, true, false}},
		},
		{
			name: "records behind, then caught up", maxLag: 100,
			steps: []step{
				{0, 101, 0, false, true},               // pauses
				{time.Second, 500, 0, false, true},     // further behind
				{time.Second, 60, 0, false, true},      // within the bound, not within half: still paused
				{500 * ms, 50, time.Hour, true, false}, // within half: runs (time is no bound here)
				{time.Second, 80, 0, true, false},      // below the bound: runs
				{time.Second, 200, 0, false, true},     // a second pause
				{300 * ms, -1, 0, true, false},         // lag not known: runs
				{time.Second, 0, 0, true, false},
			},
			paused: 2500*ms + 300*ms, pauses: 2,
		},
		{
			name: "behind for too long, then caught up", maxLag: 100, maxDelay: time.Second,
			steps: []step{
				{0, 3, 900 * ms, true, false},         // a few records, not for long
				{200 * ms, 3, 1100 * ms, false, true}, // for too long: pauses
				{300 * ms, 2, 600 * ms, false, true},  // not within half yet
				{300 * ms, 1, 500 * ms, true, false},  // within half: runs
				{time.Second, 150, 0, false, true},    // records pause it too
				{200 * ms, 40, 700 * ms, false, true}, // records within half, time not
				{200 * ms, 0, 0, true, false},         // caught up
			},
			paused: 600*ms + 400*ms, pauses: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeYielder(tc.maxLag, tc.maxDelay, time.Minute)
			for i, s := range tc.steps {
				f.clock = f.clock.Add(s.advance)
				f.lagNow, f.delayNow = s.lag, s.delay
				d := f.check()
				require.Equal(t, s.runs, d == 0, "step %d: runs", i)
				if !s.runs {
					require.Equal(t, f.poll, d, "step %d: asks again after poll", i)
				}
				yielding, _ := f.state()
				require.Equal(t, s.yielding, yielding, "step %d: yielding", i)
			}
			_, total := f.state()
			require.Equal(t, tc.paused, total)
			require.Equal(t, tc.paused, f.counted, "counted once in the metric")
			require.Equal(t, tc.pauses, f.starts)
			require.Len(t, f.ends, tc.pauses)
			require.Zero(t, f.cuts)
		})
	}
}

// How long the consumer has been behind: per claimed partition, since it
// was last seen caught up (or first seen); a partition handed away is
// forgotten.
func TestLagClock(t *testing.T) {
	var l lagClock
	t0 := time.Unix(1_700_000_000, 0)
	part := func(hwm, next int64) *claimState {
		c := &claimState{hwm: func() int64 { return hwm }}
		c.next.Store(next)
		return c
	}
	a, b := part(10, 10), part(10, 7)
	lag, behind := l.behind(map[int32]*claimState{0: a, 1: b}, true, t0)
	require.Equal(t, int64(3), lag)
	require.Zero(t, behind, "b first seen now")
	lag, behind = l.behind(map[int32]*claimState{0: a, 1: b}, true, t0.Add(800*time.Millisecond))
	require.Equal(t, int64(3), lag)
	require.Equal(t, 800*time.Millisecond, behind, "b behind since first seen")
	b.next.Store(10) // b caught up
	lag, behind = l.behind(map[int32]*claimState{0: a, 1: b}, true, t0.Add(time.Second))
	require.Zero(t, lag)
	require.Zero(t, behind)
	b.next.Store(9) // behind again, since it was last seen caught up
	_, behind = l.behind(map[int32]*claimState{0: a, 1: b}, true, t0.Add(1500*time.Millisecond))
	require.Equal(t, 500*time.Millisecond, behind)
	// b handed away and back (a new claim): first seen again.
	c := part(10, 9)
	_, behind = l.behind(map[int32]*claimState{0: a, 1: c}, true, t0.Add(2*time.Second))
	require.Zero(t, behind)
	lag, behind = l.behind(nil, false, t0.Add(3*time.Second))
	require.Equal(t, int64(-1), lag, "not every partition started")
	require.Zero(t, behind)
}

// Under a lag that never recedes the scan still progresses: a pause lasts
// at most rebuild_max_pause, then the scan runs for a quarter of it, so it
// yields at most 80% of the time.
func TestYielderProgressesUnderALagThatNeverRecedes(t *testing.T) {
	f := newFakeYielder(100, time.Second, 10*time.Second)
	f.lagNow = 1000
	const step = 100 * time.Millisecond
	var ran time.Duration
	for elapsed := time.Duration(0); elapsed < 10*time.Minute; elapsed += step {
		if f.check() == 0 {
			ran += step
		}
		f.clock = f.clock.Add(step)
	}
	_, paused := f.state()
	require.Positive(t, f.cuts, "pauses cut short at rebuild_max_pause")
	require.InDelta(t, f.starts, f.cuts, 1, "every pause (but one running at the end) was cut short")
	for _, lasted := range f.ends {
		require.Equal(t, 10*time.Second, lasted)
	}
	share := ran.Seconds() / (10 * time.Minute).Seconds()
	require.InDelta(t, 0.2, share, 0.01, "the scan runs a fifth of the time (ran %s, paused %s)", ran, paused)
}

// A pause the scan leaves (it ended or failed) ends: counted, and the
// gauge back to 0.
func TestYielderStop(t *testing.T) {
	f := newFakeYielder(10, 0, time.Minute)
	f.lagNow = 50
	require.NotZero(t, f.check())
	f.clock = f.clock.Add(3 * time.Second)
	f.stop()
	yielding, total := f.state()
	require.False(t, yielding)
	require.Equal(t, 3*time.Second, total)
	require.Equal(t, []time.Duration{3 * time.Second}, f.ends)
	f.stop() // nothing to end
	require.Len(t, f.ends, 1)
}

type yieldState struct{ N int }

func yieldView(gen int) View[yieldState] {
	table := TableName("yield", gen)
	return View[yieldState]{
		Name: "yield-view", AggregateType: "order", Tables: []string{table},
		Fold: func(s yieldState, _ eventstore.Event) (yieldState, error) { s.N++; return s, nil },
		Write: func(b *gocql.Batch, id gocql.UUID, _ yieldState, _ bool, s yieldState, seq int64) error {
			b.Query(`UPDATE `+table+` SET n = ?, version = ? WHERE id = ?`, s.N, seq, id)
			return nil
		},
		At: yieldView,
		Schema: func(gen int) []string {
			return []string{`CREATE TABLE IF NOT EXISTS ` + TableName("yield", gen) + ` (id uuid PRIMARY KEY)`}
		},
	}
}

// The scan of a rebuild pauses while the member's consumer is more than
// rebuild_max_lag records behind (GET /rebuild and the metrics say so),
// and goes on once it has caught up; the rebuild then switches.
func TestRebuildScanYieldsToALaggingConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem, err := memstore.New(eventstore.DefaultConfig())
	require.NoError(t, err)
	for range 20 {
		_, err := mem.Append(ctx, "order", gocql.TimeUUID(), 0, []eventstore.Event{{EventID: gocql.TimeUUID(), Type: "E", Version: 1, Data: []byte(`{}`)}})
		require.NoError(t, err)
	}
	cfg := DefaultConfig()
	cfg.GenerationRefresh, cfg.GenerationMaxStale = time.Millisecond, 2*time.Millisecond
	cfg.RebuildRanges, cfg.RebuildParallelism, cfg.RebuildRate = 4, 2, 0
	cfg.RebuildMaxLag, cfg.RebuildMaxDelay, cfg.RebuildMaxPause = 100, 0, time.Hour // records only; no pause cut short here
	reg := prometheus.NewRegistry()
	cps := NewMemoryCheckpoints()
	p, err := New(cfg, yieldView(1), nil, mem, zerolog.Nop(), reg,
		WithCheckpoints(cps), WithDeadLetters(deadletter.NewMemory()), WithGenerations(NewMemoryGenerations()))
	require.NoError(t, err)

	// The member's consumer: one claimed partition 500 records behind.
	var hwm atomic.Int64
	hwm.Store(1500)
	c := &claimState{partition: 0, hwm: hwm.Load}
	c.next.Store(1000)
	p.claimsMu.Lock()
	p.claims[0], p.expectedClaims = c, 1
	p.claimsMu.Unlock()
	require.Equal(t, int64(500), p.Lag())

	done := make(chan error, 1)
	go func() { done <- p.Rebuild(ctx) }()
	require.Eventually(t, func() bool { return testutil.ToFloat64(p.m.rebuildYielding) == 1 }, 10*time.Second, time.Millisecond, "the scan pauses")
	// Paused: nothing replayed while the consumer lags.
	time.Sleep(50 * time.Millisecond)
	require.Zero(t, testutil.ToFloat64(p.m.rebuildAggregates))
	st, err := p.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, "building", st.State)
	require.True(t, st.Yielding)
	require.Positive(t, st.YieldSeconds)

	// Within the bound but not within half of it: still paused.
	c.next.Store(1420)
	time.Sleep(50 * time.Millisecond)
	require.Zero(t, testutil.ToFloat64(p.m.rebuildAggregates))
	require.Equal(t, 1.0, testutil.ToFloat64(p.m.rebuildYielding))

	// Caught up: the scan goes on and the rebuild switches.
	c.next.Store(1500)
	require.NoError(t, <-done)
	require.Equal(t, 2, p.ActiveGeneration())
	require.Equal(t, 20.0, testutil.ToFloat64(p.m.rebuildAggregates))
	require.Zero(t, testutil.ToFloat64(p.m.rebuildYielding))
	require.GreaterOrEqual(t, testutil.ToFloat64(p.m.rebuildYielded), 0.1, "the pause is counted")
}

// The scan also pauses while a partition stays behind for longer than
// rebuild_max_delay, however few its records: a min_version reader waits
// for the oldest of them.
func TestRebuildScanYieldsToAConsumerBehindForTooLong(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem, err := memstore.New(eventstore.DefaultConfig())
	require.NoError(t, err)
	for range 10 {
		_, err := mem.Append(ctx, "order", gocql.TimeUUID(), 0, []eventstore.Event{{EventID: gocql.TimeUUID(), Type: "E", Version: 1, Data: []byte(`{}`)}})
		require.NoError(t, err)
	}
	cfg := DefaultConfig()
	cfg.GenerationRefresh, cfg.GenerationMaxStale = time.Millisecond, 2*time.Millisecond
	cfg.RebuildRanges, cfg.RebuildParallelism, cfg.RebuildRate = 2, 2, 50 // a scan of 200 ms
	cfg.RebuildMaxLag, cfg.RebuildMaxDelay, cfg.RebuildMaxPause = 100, 20*time.Millisecond, time.Hour
	p, err := New(cfg, yieldView(1), nil, mem, zerolog.Nop(), prometheus.NewRegistry(),
		WithCheckpoints(NewMemoryCheckpoints()), WithDeadLetters(deadletter.NewMemory()), WithGenerations(NewMemoryGenerations()))
	require.NoError(t, err)
	// Two records behind: far within rebuild_max_lag, but for ever.
	c := &claimState{partition: 0, hwm: func() int64 { return 2 }}
	c.next.Store(0)
	p.claimsMu.Lock()
	p.claims[0], p.expectedClaims = c, 1
	p.claimsMu.Unlock()

	done := make(chan error, 1)
	go func() { done <- p.Rebuild(ctx) }()
	require.Eventually(t, func() bool { return testutil.ToFloat64(p.m.rebuildYielding) == 1 }, 10*time.Second, time.Millisecond, "the scan pauses")
	time.Sleep(100 * time.Millisecond) // the aggregates already past the check (at most one per scanning range)
	replayed := testutil.ToFloat64(p.m.rebuildAggregates)
	require.Less(t, replayed, 10.0)
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, replayed, testutil.ToFloat64(p.m.rebuildAggregates), "nothing replayed while paused")

	c.next.Store(2) // caught up
	require.NoError(t, <-done)
	require.Equal(t, 2, p.ActiveGeneration())
	require.Equal(t, 10.0, testutil.ToFloat64(p.m.rebuildAggregates))
	require.Zero(t, testutil.ToFloat64(p.m.rebuildYielding))
}

// A rebuild stopped while its scan pauses leaves no pause behind.
func TestRebuildStoppedWhileYielding(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem, err := memstore.New(eventstore.DefaultConfig())
	require.NoError(t, err)
	_, err = mem.Append(ctx, "order", gocql.TimeUUID(), 0, []eventstore.Event{{EventID: gocql.TimeUUID(), Type: "E", Version: 1, Data: []byte(`{}`)}})
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.GenerationRefresh, cfg.GenerationMaxStale = time.Millisecond, 2*time.Millisecond
	cfg.RebuildRanges, cfg.RebuildParallelism = 2, 2
	p, err := New(cfg, yieldView(1), nil, mem, zerolog.Nop(), prometheus.NewRegistry(),
		WithCheckpoints(NewMemoryCheckpoints()), WithDeadLetters(deadletter.NewMemory()), WithGenerations(NewMemoryGenerations()))
	require.NoError(t, err)
	c := &claimState{partition: 0, hwm: func() int64 { return 10_000 }}
	c.next.Store(0)
	p.claimsMu.Lock()
	p.claims[0], p.expectedClaims = c, 1
	p.claimsMu.Unlock()

	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Rebuild(rctx) }()
	require.Eventually(t, func() bool { return testutil.ToFloat64(p.m.rebuildYielding) == 1 }, 10*time.Second, time.Millisecond)
	stop()
	require.ErrorIs(t, <-done, context.Canceled)
	require.Zero(t, testutil.ToFloat64(p.m.rebuildYielding))
	require.Zero(t, testutil.ToFloat64(p.m.rebuilding))
	require.Positive(t, testutil.ToFloat64(p.m.rebuildYielded))
	g, err := p.gens.Load(ctx, "yield-view")
	require.NoError(t, err)
	require.Equal(t, 2, g.Building, "still building: resumed by the rebuild worker")
}

// The yielding keys are checked at start.
func TestConfigValidateRebuildYield(t *testing.T) {
	c := DefaultConfig()
	require.Equal(t, int64(100), c.RebuildMaxLag)
	require.Equal(t, 10*time.Second, c.RebuildMaxPause)
	require.Equal(t, time.Second, c.RebuildMaxDelay)
	c.RebuildMaxLag, c.RebuildMaxDelay, c.RebuildMaxPause = -1, -time.Second, 0
	err := c.Validate()
	require.ErrorContains(t, err, `"rebuild_max_lag"`)
	require.ErrorContains(t, err, `"rebuild_max_delay"`)
	require.ErrorContains(t, err, `"rebuild_max_pause"`)
}
