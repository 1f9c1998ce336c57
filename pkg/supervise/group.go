package supervise

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// RunAll runs workers together, without restarts, until ctx is done or one
// of them fails; then it stops the others and returns the first failure
// (nil after ctx ended). A worker that finishes with nil leaves the others
// running. It is for tests and tools that run a component's workers
// without a Supervisor; a service runs them under one.
func RunAll(ctx context.Context, workers ...Worker) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, w := range workers {
		g.Go(func() error {
			if err := runOnce(ctx, w.Run); err != nil && ctx.Err() == nil {
				return fmt.Errorf("worker %s: %w", w.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// Gate lets workers run only while something holds it: a lease, say, so
// that of several replicas only the leader's workers run, each still a
// supervised worker of its own (named in logs, metrics and readiness,
// restarted on its own). Hold opens the gate for as long as its context
// lasts; Guard wraps a worker so that it waits for the gate to open, runs
// while it is open, and is stopped when it closes, to wait again.
//
// Hold returns only once every guarded run of its term has returned, so
// that a lease released after Hold never overlaps the work it guarded.
type Gate struct {
	mu   sync.Mutex
	open chan struct{} // closed while a term is open
	term *term
}

type term struct {
	ctx     context.Context
	cancel  context.CancelFunc
	running sync.WaitGroup
}

// NewGate returns a closed gate.
func NewGate() *Gate { return &Gate{open: make(chan struct{})} }

// Hold opens the gate until ctx is done, then closes it, stops the guarded
// runs and waits for them to return. It returns nil: it has the shape of a
// lease's work function.
func (g *Gate) Hold(ctx context.Context) error {
	t := &term{}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	g.mu.Lock()
	g.term = t
	close(g.open)
	g.mu.Unlock()

	<-ctx.Done()

	g.mu.Lock()
	g.term = nil
	g.open = make(chan struct{})
	g.mu.Unlock()
	t.cancel()
	t.running.Wait()
	return nil
}

// enter waits for an open gate and registers a run in its term; it
// returns nil when ctx ended first.
func (g *Gate) enter(ctx context.Context) *term {
	for {
		g.mu.Lock()
		if t := g.term; t != nil {
			t.running.Add(1)
			g.mu.Unlock()
			return t
		}
		open := g.open
		g.mu.Unlock()
		select {
		case <-open:
		case <-ctx.Done():
			return nil
		}
	}
}

// Guard returns run gated: it waits for the gate to open, then runs run
// with a context that ends when either ctx or the gate's term ends. When
// the term ends (the lease was lost), it waits for the next one; when run
// fails while the gate is open, it returns the error to its supervisor.
func (g *Gate) Guard(run func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		for {
			t := g.enter(ctx)
			if t == nil {
				return nil // ctx ended while waiting
			}
			err := func() error {
				defer t.running.Done()
				rctx, cancel := context.WithCancel(ctx)
				defer cancel()
				stop := context.AfterFunc(t.ctx, cancel)
				defer stop()
				return run(rctx)
			}()
			switch {
			case ctx.Err() != nil:
				return err
			case t.ctx.Err() != nil:
				continue // the term ended: wait for the next
			default:
				return err
			}
		}
	}
}
