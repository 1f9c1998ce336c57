package supervise

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffGrowsToTheCap(t *testing.T) {
	const initial, limit = 100 * time.Millisecond, time.Second
	// Nominal delays of consecutive failures of a worker that fails at once.
	nominal := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i := range nominal {
		nominal[i] *= time.Millisecond
	}
	// Jitter is random, so repeat to cover its range.
	for range 200 {
		b := newRestarts(initial, limit)
		for i, want := range nominal {
			got := b.next(0)
			require.GreaterOrEqual(t, got, want/2, "failure %d", i)
			require.LessOrEqual(t, got, want, "failure %d", i)
		}
	}
}

func TestBackoffResetsAfterAHealthyRun(t *testing.T) {
	const initial, limit = 10 * time.Millisecond, 80 * time.Millisecond
	tests := []struct {
		name   string
		ranFor time.Duration
		min    time.Duration // of the delay after the fourth failure
		max    time.Duration
	}{
		{name: "failed at once", ranFor: 0, min: 40 * time.Millisecond, max: limit},
		{name: "ran exactly max", ranFor: limit, min: 40 * time.Millisecond, max: limit},
		{name: "ran longer than max", ranFor: limit + time.Nanosecond, min: initial / 2, max: initial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 {
				b := newRestarts(initial, limit)
				for range 3 {
					b.next(0)
				}
				got := b.next(tt.ranFor)
				require.GreaterOrEqual(t, got, tt.min)
				require.LessOrEqual(t, got, tt.max)
			}
		})
	}
}

func TestBackoffEdges(t *testing.T) {
	t.Run("one nanosecond never panics in rand.N", func(t *testing.T) {
		b := newRestarts(1, 1)
		for range 10 {
			require.Equal(t, time.Duration(1), b.next(0))
		}
	})
	t.Run("huge max does not overflow", func(t *testing.T) {
		const huge = time.Duration(1<<63 - 1)
		b := newRestarts(time.Hour, huge)
		var last time.Duration
		for range 200 {
			last = b.next(0)
			require.Positive(t, last)
		}
		require.GreaterOrEqual(t, last, huge/2)
	})
}

func TestBudgetSlidingWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name      string
		failures  []time.Time
		wantCount int
		wantSpent bool
	}{
		{name: "first failure", failures: []time.Time{at(0)}, wantCount: 1},
		{name: "at the budget", failures: []time.Time{at(0), at(1), at(2)}, wantCount: 3},
		{name: "over the budget", failures: []time.Time{at(0), at(1), at(2), at(3)}, wantCount: 4, wantSpent: true},
		{
			name:      "old failures slide out",
			failures:  []time.Time{at(0), at(1), at(2), at(time.Minute + 1)},
			wantCount: 2,
		},
		{
			name:      "a failure exactly one window old has slid out",
			failures:  []time.Time{at(0), at(time.Second), at(2 * time.Second), at(time.Minute)},
			wantCount: 3,
		},
		{
			name:      "spread out failures never spend it",
			failures:  []time.Time{at(0), at(30 * time.Second), at(60 * time.Second), at(90 * time.Second), at(120 * time.Second), at(150 * time.Second)},
			wantCount: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := budget{limit: 3, window: time.Minute}
			var (
				count int
				spent bool
			)
			for i, f := range tt.failures {
				count, spent = b.fail(f)
				if i < len(tt.failures)-1 {
					require.False(t, spent, "failure %d", i)
				}
			}
			require.Equal(t, tt.wantCount, count)
			require.Equal(t, tt.wantSpent, spent)
		})
	}
}
