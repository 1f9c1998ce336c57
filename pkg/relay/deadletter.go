package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/eventstore"
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
func (r *Relay) deadLetter(ctx context.Context, e eventstore.Event, cause error) error {
	now := time.Now().UTC()
	id := gocql.UUIDFromTime(now)
	if err := r.session.Query(`INSERT INTO dead_letter_queue (id, component, aggregate_id, aggregate_type, sequence_number, event_id, event_type, payload, error_message, error_history, failure_count, parks_aggregate, first_failed_at, last_failed_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, Component, e.AggregateID, e.AggregateType, e.Sequence, e.EventID, e.Type, string(e.Data), cause.Error(), []string{cause.Error()}, 1, true, now, now, now).
		WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("dead-lettering %s %d: %w", e.AggregateID, e.Sequence, err)
	}
	if err := r.session.Query(`INSERT INTO parked_aggregates (component, aggregate_id, aggregate_type, sequence_number, dlq_id, reason, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		Component, e.AggregateID, e.AggregateType, e.Sequence, id, cause.Error(), now).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("parking %s: %w", e.AggregateID, err)
	}
	r.m.deadLettered.Inc()
	r.logger.Error().Err(cause).Str("aggregate_id", e.AggregateID.String()).Int64("sequence", e.Sequence).Str("event_type", e.Type).
		Str("dlq_id", id.String()).Msg("event dead-lettered; its aggregate is parked")
	return nil
}

// loadParked reads the relay's parked set; the scans skip these
// aggregates. It is read every scan so that an aggregate the dlq-service
// unparks flows again at once.
func (r *Relay) loadParked(ctx context.Context) (map[gocql.UUID]bool, error) {
	iter := r.session.Query(`SELECT aggregate_id FROM parked_aggregates WHERE component = ?`, Component).
		WithContext(ctx).Idempotent(true).PageSize(1000).Iter()
	parked := map[gocql.UUID]bool{}
	var id gocql.UUID
	for iter.Scan(&id) {
		parked[id] = true
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("reading parked aggregates: %w", err)
	}
	r.m.parked.Set(float64(len(parked)))
	return parked, nil
}

// DeadLetterRow records a CDC log row the CDC source could not read. It
// parks nothing: without an aggregate id there is nothing to hold back,
// and the scan still finds the event through the static columns.
func (r *Relay) DeadLetterRow(ctx context.Context, raw map[string]any, cause error) error {
	now := time.Now().UTC()
	payload, _ := json.Marshal(raw)
	err := r.session.Query(`INSERT INTO dead_letter_queue (id, component, payload, error_message, error_history, failure_count, parks_aggregate, first_failed_at, last_failed_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		gocql.UUIDFromTime(now), Component+"/cdc", string(payload), cause.Error(), []string{cause.Error()}, 1, false, now, now, now).WithContext(ctx).Exec()
	if err != nil {
		return fmt.Errorf("dead-lettering a CDC row: %w", err)
	}
	r.m.deadLettered.Inc()
	return nil
}
