package supervise

import (
	"math/rand/v2"
	"time"
)

// backoff yields one worker's restart delays: exponential, with equal jitter
// so that replicas failing on a shared outage do not restart in lockstep,
// while every delay stays within [nominal/2, nominal] and the sequence still
// grows from one failure to the next.
type backoff struct {
	initial, max time.Duration
	attempt      int
}

// next returns the delay after a failure of a run that lasted ranFor. A run
// longer than max counts as healthy, so an occasional failure starts over at
// initial instead of escalating towards max for the life of the process.
func (b *backoff) next(ranFor time.Duration) time.Duration {
	if ranFor > b.max {
		b.attempt = 0
	}
	d := b.nominal()
	if d < b.max {
		// Stop counting at the cap so attempt cannot overflow.
		b.attempt++
	}
	half := d / 2
	return d - half + rand.N(half+1)
}

func (b *backoff) nominal() time.Duration {
	d := b.initial
	for range b.attempt {
		if d >= b.max/2 {
			return b.max
		}
		d *= 2
	}
	return min(d, b.max)
}

// budget counts one worker's failures in a sliding window, so that a worker
// failing now and then runs for ever while one that keeps failing stops the
// process.
type budget struct {
	limit    int
	window   time.Duration
	failures []time.Time
}

// fail records a failure at now and reports how many fall within the window
// and whether that is more than the budget allows.
func (b *budget) fail(now time.Time) (count int, exhausted bool) {
	cutoff := now.Add(-b.window)
	kept := b.failures[:0]
	for _, t := range b.failures {
		if t.After(cutoff) {
			kept = append(kept, t)
		}
	}
	b.failures = append(kept, now)
	return len(b.failures), len(b.failures) > b.limit
}
