// Package deadletter records what a component (the relay, a projector)
// cannot process: a row in dead_letter_queue with the error, and the
// aggregate parked for that component in parked_aggregates, so that its
// later events wait behind the failed one while other aggregates flow on.
// The dlq-service re-drives or discards them and unparks the aggregate.
package deadletter

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// Park writes the event to dead_letter_queue and parks its aggregate for
// component. It returns the dead letter's id.
func Park(ctx context.Context, session *gocql.Session, component string, e eventstore.Event, cause error) (gocql.UUID, error) {
	now := time.Now().UTC()
	id := gocql.UUIDFromTime(now)
	if err := session.Query(`INSERT INTO dead_letter_queue (id, component, aggregate_id, aggregate_type, sequence_number, event_id, event_type, payload, error_message, error_history, failure_count, parks_aggregate, first_failed_at, last_failed_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, component, e.AggregateID, e.AggregateType, e.Sequence, e.EventID, e.Type, string(e.Data), cause.Error(), []string{cause.Error()}, 1, true, now, now, now).
		WithContext(ctx).Exec(); err != nil {
		return id, fmt.Errorf("dead-lettering %s %d: %w", e.AggregateID, e.Sequence, err)
	}
	if err := session.Query(`INSERT INTO parked_aggregates (component, aggregate_id, aggregate_type, sequence_number, dlq_id, reason, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		component, e.AggregateID, e.AggregateType, e.Sequence, id, cause.Error(), now).WithContext(ctx).Exec(); err != nil {
		return id, fmt.Errorf("parking %s: %w", e.AggregateID, err)
	}
	return id, nil
}

// Parked reads component's parked aggregates.
func Parked(ctx context.Context, session *gocql.Session, component string) (map[gocql.UUID]bool, error) {
	iter := session.Query(`SELECT aggregate_id FROM parked_aggregates WHERE component = ?`, component).
		WithContext(ctx).Idempotent(true).PageSize(1000).Iter()
	parked := map[gocql.UUID]bool{}
	var id gocql.UUID
	for iter.Scan(&id) {
		parked[id] = true
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("reading parked aggregates of %s: %w", component, err)
	}
	return parked, nil
}

// Raw records input that could not even be tied to an aggregate (a CDC log
// row, a record without a usable key). It parks nothing.
func Raw(ctx context.Context, session *gocql.Session, component string, raw any, cause error) error {
	now := time.Now().UTC()
	payload, _ := json.Marshal(raw)
	err := session.Query(`INSERT INTO dead_letter_queue (id, component, payload, error_message, error_history, failure_count, parks_aggregate, first_failed_at, last_failed_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		gocql.UUIDFromTime(now), component, string(payload), cause.Error(), []string{cause.Error()}, 1, false, now, now, now).WithContext(ctx).Exec()
	if err != nil {
		return fmt.Errorf("dead-lettering unreadable input of %s: %w", component, err)
	}
	return nil
}
