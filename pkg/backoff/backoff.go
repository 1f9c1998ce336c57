// Package backoff is the one retry delay of the repository: exponential,
// doubling from an initial delay up to a cap, with equal jitter so that
// replicas failing on a shared outage do not retry in lockstep while every
// delay stays within [nominal/2, nominal] and the sequence still grows from
// one failure to the next.
//
// Every retry loop (the supervisor's restarts, the relay's publish attempts
// and held aggregates, the projector's apply attempts, connecting to the
// database, the migration lock) draws its delays from here, so that they all
// behave, and are tuned, the same way.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: Initial before the first retry,
// doubling per retry up to Max.
type Policy struct {
	Initial time.Duration
	Max     time.Duration
}

// Nominal is the delay before retry n (n ≥ 1): Initial·2ⁿ⁻¹, at most Max,
// without jitter. It never overflows, whatever n.
func (p Policy) Nominal(n int) time.Duration {
	d := p.Initial
	for i := 1; i < n; i++ {
		if d >= p.Max/2 {
			return p.Max
		}
		d *= 2
	}
	return min(d, p.Max)
}

// Jittered is Nominal(n) with equal jitter: a delay drawn uniformly from
// [Nominal/2, Nominal].
func (p Policy) Jittered(n int) time.Duration { return jitter(p.Nominal(n)) }

// FullJitter is a delay drawn uniformly from [0, Nominal(n)): for
// contenders that should spread as widely as possible (optimistic
// concurrency conflicts on one hot aggregate), where a floor would only
// make every loser wait.
func (p Policy) FullJitter(n int) time.Duration {
	d := p.Nominal(n)
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// Start returns a fresh Backoff of the policy.
func (p Policy) Start() *Backoff { return &Backoff{policy: p} }

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	half := d / 2
	return d - half + rand.N(half+1)
}

// Backoff yields the delays of one retry loop. It is not safe for
// concurrent use: each loop owns its own.
type Backoff struct {
	policy  Policy
	attempt int // retries so far, counted up to the cap only
}

// Next returns the delay before the next retry, jittered, and counts the
// retry.
func (b *Backoff) Next() time.Duration {
	d := b.policy.Nominal(b.attempt + 1)
	if d < b.policy.Max {
		// Stop counting at the cap so attempt cannot overflow.
		b.attempt++
	}
	return jitter(d)
}

// Reset starts the sequence over at Initial, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Sleep waits for d and reports whether it did, or returns false as soon as
// ctx is done, so that shutdown never waits out a backoff.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Wait sleeps for the backoff's next delay; it returns ctx's error when ctx
// ends first.
func (b *Backoff) Wait(ctx context.Context) error {
	if !Sleep(ctx, b.Next()) {
		return ctx.Err()
	}
	return nil
}
