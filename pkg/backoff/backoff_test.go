package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNominalDoublesToTheCap(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, w := range want {
		require.Equal(t, w*time.Millisecond, p.Nominal(i+1), "retry %d", i+1)
	}
	require.Equal(t, p.Initial, p.Nominal(0), "before the first retry: Initial")
}

func TestBackoffGrowsToTheCapWithEqualJitter(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	nominal := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	// Jitter is random, so repeat to cover its range.
	for range 200 {
		b := p.Start()
		for i, n := range nominal {
			want := n * time.Millisecond
			got := b.Next()
			require.GreaterOrEqual(t, got, want/2, "retry %d", i)
			require.LessOrEqual(t, got, want, "retry %d", i)
		}
	}
}

func TestBackoffReset(t *testing.T) {
	p := Policy{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for range 100 {
		b := p.Start()
		for range 4 {
			b.Next()
		}
		b.Reset()
		got := b.Next()
		require.GreaterOrEqual(t, got, p.Initial/2)
		require.LessOrEqual(t, got, p.Initial)
	}
}

func TestBackoffEdges(t *testing.T) {
	t.Run("one nanosecond never panics in rand.N", func(t *testing.T) {
		b := Policy{Initial: 1, Max: 1}.Start()
		for range 10 {
			require.Equal(t, time.Duration(1), b.Next())
		}
	})
	t.Run("huge max does not overflow", func(t *testing.T) {
		const huge = time.Duration(1<<63 - 1)
		b := Policy{Initial: time.Hour, Max: huge}.Start()
		var last time.Duration
		for range 200 {
			last = b.Next()
			require.Positive(t, last)
		}
		require.GreaterOrEqual(t, last, huge/2)
		require.Equal(t, huge, Policy{Initial: time.Hour, Max: huge}.Nominal(1000))
	})
	t.Run("zero policy waits nothing", func(t *testing.T) {
		require.Zero(t, Policy{}.Start().Next())
	})
}

func TestSleepStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	require.False(t, Sleep(ctx, time.Hour))
	require.Less(t, time.Since(start), time.Second)
	require.True(t, Sleep(context.Background(), time.Millisecond))
	b := Policy{Initial: time.Hour, Max: time.Hour}.Start()
	require.ErrorIs(t, b.Wait(ctx), context.Canceled)
}

func TestFullJitterStaysBelowNominal(t *testing.T) {
	p := Policy{Initial: time.Millisecond, Max: 64 * time.Millisecond}
	for range 200 {
		for n := 1; n <= 10; n++ {
			d := p.FullJitter(n)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.Less(t, d, p.Nominal(n))
		}
	}
	require.Zero(t, Policy{}.FullJitter(3))
}
