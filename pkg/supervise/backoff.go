package supervise

import (
	"time"

	"github.com/orderstream/orderstream/pkg/backoff"
)

// restarts yields one worker's restart delays from the repository's one
// backoff (pkg/backoff): exponential with equal jitter.
type restarts struct {
	b   *backoff.Backoff
	max time.Duration
}

func newRestarts(initial, limit time.Duration) restarts {
	return restarts{b: backoff.Policy{Initial: initial, Max: limit}.Start(), max: limit}
}

// next returns the delay after a failure of a run that lasted ranFor. A run
// longer than max counts as healthy, so an occasional failure starts over at
// initial instead of escalating towards max for the life of the process.
func (r *restarts) next(ranFor time.Duration) time.Duration {
	if ranFor > r.max {
		r.b.Reset()
	}
	return r.b.Next()
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
