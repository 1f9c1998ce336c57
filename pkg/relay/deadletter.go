package relay

import (
	"context"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/redrive"
)

// Component names the relay in dead_letter_queue and parked_aggregates.
const Component = "relay"

// errPoison marks an event the relay can never publish as it is (its
// payload cannot be read, the broker refuses its record): it is the
// repository's one poison sentinel, redrive.ErrPoison.
var errPoison = redrive.ErrPoison

// WithDeadLetters makes the relay dead-letter, park and take retry
// requests in store instead of the session's tables (deadletter.Memory in
// unit tests).
func WithDeadLetters(store redrive.DeadLetters) Option {
	return func(r *Relay) { r.dlq = store }
}

// deadLetter records the poison event and parks its aggregate (at once:
// the next read of recent commits must not find it again before a full
// scan reloads the parked set): later events of that aggregate wait behind
// it, in order, until the dlq-service re-drives or skips it; other
// aggregates flow on.
func (r *Relay) deadLetter(ctx context.Context, e eventstore.Event, reason string, cause error) error {
	_, err := r.parking.Park(ctx, e, reason, cause)
	return err
}

// loadParked reads the relay's parked set; the scans skip these
// aggregates. It is read every full scan so that an aggregate the
// dlq-service unparks flows again at once.
func (r *Relay) loadParked(ctx context.Context) error { return r.parking.Reload(ctx) }

// DeadLetterRow records a CDC log row the CDC source could not read. It
// parks nothing: without an aggregate id there is nothing to hold back,
// and the scan still finds the event through the static columns.
func (r *Relay) DeadLetterRow(ctx context.Context, raw map[string]any, cause error) error {
	return r.parking.Raw(ctx, raw, cause)
}
