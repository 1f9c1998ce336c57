package supervise

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

func TestRunAllStopsEveryWorkerWhenOneFails(t *testing.T) {
	boom := errors.New("boom")
	var stopped atomic.Int32
	err := RunAll(context.Background(),
		Worker{Name: "fails", Run: func(context.Context) error { return boom }},
		Worker{Name: "waits", Run: func(ctx context.Context) error {
			<-ctx.Done()
			stopped.Add(1)
			return ctx.Err()
		}},
		Worker{Name: "done", Run: func(context.Context) error { return nil }},
	)
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "worker fails")
	require.Equal(t, int32(1), stopped.Load())
}

func TestRunAllReturnsNilWhenItsContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunAll(ctx, Worker{Name: "waits", Run: func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}}, Worker{Name: "panics later", Run: func(ctx context.Context) error {
			<-ctx.Done()
			panic("stopping")
		}})
	}()
	cancel()
	require.NoError(t, <-done, "errors of workers told to stop are not failures")
}

// The gate runs guarded workers only while it is held, stops them when the
// hold ends (Hold waits for them), and lets them run again in the next term.
func TestGateRunsGuardedWorkersOnlyWhileHeld(t *testing.T) {
	g := NewGate()
	var running, runs atomic.Int32
	guarded := g.Guard(func(ctx context.Context) error {
		runs.Add(1)
		running.Add(1)
		defer running.Add(-1)
		<-ctx.Done()
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- guarded(ctx) }()

	for term := 1; term <= 2; term++ {
		require.Equal(t, int32(0), running.Load(), "term %d: nothing runs before the gate opens", term)
		hold, release := context.WithCancel(context.Background())
		held := make(chan error, 1)
		go func() { held <- g.Hold(hold) }()
		require.Eventually(t, func() bool { return running.Load() == 1 }, 5*time.Second, time.Millisecond, "term %d", term)
		release()
		require.NoError(t, <-held)
		require.Equal(t, int32(0), running.Load(), "term %d: Hold returns after the guarded run", term)
	}
	require.Equal(t, int32(2), runs.Load())
	cancel()
	require.NoError(t, <-done)
}

func TestGuardReturnsAFailureWhileTheGateIsOpen(t *testing.T) {
	g := NewGate()
	boom := errors.New("boom")
	hold, release := context.WithCancel(context.Background())
	held := make(chan error, 1)
	go func() { held <- g.Hold(hold) }()
	err := g.Guard(func(context.Context) error { return boom })(context.Background())
	require.ErrorIs(t, err, boom, "the supervisor restarts the worker")
	release()
	require.NoError(t, <-held)
}

func TestGuardStopsWaitingWithItsContext(t *testing.T) {
	g := NewGate()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, g.Guard(func(context.Context) error {
		t.Fatal("ran without the gate")
		return nil
	})(ctx))
}

// Under a supervisor: a guarded worker that fails is restarted on its own
// while the gate stays held.
func TestGuardedWorkerRestartsUnderTheSupervisor(t *testing.T) {
	g := NewGate()
	var starts atomic.Int32
	cfg := DefaultConfig()
	cfg.InitialBackoff, cfg.MaxBackoff = time.Millisecond, time.Millisecond
	s, err := New(cfg, zerolog.Nop(), nil,
		Worker{Name: "lease", Run: g.Hold},
		Worker{Name: "publisher", Run: g.Guard(func(ctx context.Context) error {
			if starts.Add(1) == 1 {
				return errors.New("first run fails")
			}
			<-ctx.Done()
			return nil
		})},
	)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	require.Eventually(t, func() bool { return starts.Load() == 2 && s.Ready(ctx) == nil }, 5*time.Second, time.Millisecond)
	require.Equal(t, 1, s.States()["publisher"].Restarts)
	require.Equal(t, 0, s.States()["lease"].Restarts)
	cancel()
	require.NoError(t, <-done)
}
