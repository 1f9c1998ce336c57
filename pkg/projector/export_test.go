package projector

import "context"

// What Run does for the dlq-service's retry requests, for tests that feed
// records through Handle.

// ServeRetries runs the retry loop until stop is called.
func (p *Projector[S]) ServeRetries(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.RedriveWorker().Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// RefreshParked reloads the parked set now.
func (p *Projector[S]) RefreshParked(ctx context.Context) { p.refreshParked(ctx) }

// CatchUpUnparked catches up the aggregates unparked by another member.
func (p *Projector[S]) CatchUpUnparked(ctx context.Context) { p.catchUpUnparked(ctx) }
