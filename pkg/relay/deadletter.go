package relay

import (
	"context"
	"errors"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/logging"
)

// Component names the relay in dead_letter_queue and parked_aggregates.
const Component = "relay"

// errPoison marks an event the relay can never publish as it is (its
// payload cannot be read): retrying is pointless, so it is dead-lettered
// and its aggregate parked.
var errPoison = errors.New("event cannot be published")

// deadLetter records the poison event and parks its aggregate: later events
// of that aggregate wait behind it, in order, until the dlq-service
// re-drives or skips it; other aggregates flow on.
func (r *Relay) deadLetter(ctx context.Context, e eventstore.Event, reason string, cause error) error {
	id, err := deadletter.Park(ctx, r.session, Component, e, cause)
	if err != nil {
		return err
	}
	// Parked at once: the next read of recent commits must not find it
	// again before a full scan reloads the parked set.
	r.m.parked.Set(float64(r.parked.Add(e.AggregateID)))
	r.m.deadLettered.Inc()
	l := logging.ForEvent(ctx, r.logger, e)
	l.Error().Err(cause).Str("reason", reason).Str("event_type", e.Type).Str("dlq_id", id.String()).Msg("event dead-lettered; its aggregate is parked")
	return nil
}

// loadParked reads the relay's parked set; the scans skip these
// aggregates. It is read every scan so that an aggregate the dlq-service
// unparks flows again at once.
func (r *Relay) loadParked(ctx context.Context) error {
	if _, err := r.parked.Reload(ctx, func(ctx context.Context) (map[gocql.UUID]bool, error) {
		return deadletter.Parked(ctx, r.session, Component)
	}); err != nil {
		return err
	}
	r.m.parked.Set(float64(r.parked.Len()))
	return nil
}

// DeadLetterRow records a CDC log row the CDC source could not read. It
// parks nothing: without an aggregate id there is nothing to hold back,
// and the scan still finds the event through the static columns.
func (r *Relay) DeadLetterRow(ctx context.Context, raw map[string]any, cause error) error {
	if err := deadletter.Raw(ctx, r.session, Component+"/cdc", raw, cause); err != nil {
		return err
	}
	r.m.deadLettered.Inc()
	return nil
}
