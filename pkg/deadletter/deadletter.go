// Package deadletter records what a component (the relay, a projector)
// cannot process: a row in dead_letter_queue with the error, and the
// aggregate parked for that component in parked_aggregates, so that its
// later events wait behind the failed one while other aggregates flow on.
// The dlq-service lists them, and re-drives or discards them through retry
// requests (retry.go) that the component itself carries out.
//
// Store is the queue in Cassandra and the only code that names its tables;
// Memory is its in-memory twin for unit tests, and deadlettertest.Suite
// the contract both pass. Users declare the small interface they need of
// either.
//
// Every dead letter is written with its rows in the query tables of schema
// v0004 (by component, by event type, by aggregate) in one logged batch, so
// that they never disagree for long. A component parks an aggregate at the
// first event it cannot process and reads nothing after it: there is one
// dead letter per parked aggregate and component, its head, and the events
// behind it wait in event_store, not here.
package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// Entry is one dead letter.
type Entry struct {
	ID            gocql.UUID
	Component     string
	AggregateID   gocql.UUID // zero for input that could not be tied to an aggregate
	AggregateType string
	Sequence      int64
	EventID       gocql.UUID
	EventType     string
	Payload       string
	Error         string
	// ErrorHistory has one line per failure, oldest first, each starting
	// with its time (RFC 3339); at most MaxHistory are kept.
	ErrorHistory   []string
	FailureCount   int
	ParksAggregate bool
	FirstFailedAt  time.Time
	LastFailedAt   time.Time
	CreatedAt      time.Time
}

// MaxHistory bounds Entry.ErrorHistory: the oldest lines are dropped.
const MaxHistory = 50

// historyLine is one line of error_history.
func historyLine(at time.Time, cause string) string {
	return at.UTC().Format(time.RFC3339Nano) + " " + cause
}

// appendHistory adds the line of a failure to history, keeping the last
// MaxHistory.
func appendHistory(history []string, at time.Time, cause error) []string {
	history = append(history, historyLine(at, cause.Error()))
	if len(history) > MaxHistory {
		history = history[len(history)-MaxHistory:]
	}
	return history
}

const entryColumns = `id, component, aggregate_id, aggregate_type, sequence_number, event_id, event_type, payload, error_message, error_history, failure_count, parks_aggregate, first_failed_at, last_failed_at, created_at`

// entryDest is where a row of entryColumns scans to; null columns (those
// of input not tied to an aggregate) scan as zero values.
func entryDest(e *Entry) []any {
	return []any{&e.ID, &e.Component, &e.AggregateID, &e.AggregateType, &e.Sequence, &e.EventID, &e.EventType, &e.Payload, &e.Error,
		&e.ErrorHistory, &e.FailureCount, &e.ParksAggregate, &e.FirstFailedAt, &e.LastFailedAt, &e.CreatedAt}
}

// Get reads the dead letter id.
func (s *Store) Get(ctx context.Context, id gocql.UUID) (Entry, bool, error) {
	var e Entry
	err := s.query(`SELECT `+entryColumns+` FROM dead_letter_queue WHERE id = ?`, id).WithContext(ctx).Idempotent(true).Scan(entryDest(&e)...)
	if errors.Is(err, gocql.ErrNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("reading dead letter %s: %w", id, err)
	}
	return e, true, nil
}

// Park dead-letters e for component and parks its aggregate behind it. An
// event already dead-lettered by component (a retry that failed again, an
// event read again after a restart) is not added twice: its dead letter
// counts one more failure instead. It returns the dead letter's id.
func (s *Store) Park(ctx context.Context, component string, e eventstore.Event, cause error) (gocql.UUID, error) {
	now := time.Now().UTC()
	if id, found, err := s.findEvent(ctx, component, e.AggregateID, e.Sequence); err != nil {
		return id, err
	} else if found {
		refailed, err := s.refail(ctx, id, cause, now)
		if err != nil {
			return id, err
		}
		if refailed {
			err := s.query(`INSERT INTO parked_aggregates (component, aggregate_id, aggregate_type, sequence_number, dlq_id, reason, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				component, e.AggregateID, e.AggregateType, e.Sequence, id, cause.Error(), now).WithContext(ctx).Exec()
			if err != nil {
				return id, fmt.Errorf("parking %s: %w", e.AggregateID, err)
			}
			return id, nil
		}
		// The row was deleted meanwhile (purged): a new dead letter.
	}
	id := gocql.UUIDFromTime(now)
	b := s.batch(ctx, gocql.LoggedBatch)
	b.Query(`INSERT INTO dead_letter_queue (`+entryColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, component, e.AggregateID, e.AggregateType, e.Sequence, e.EventID, e.Type, string(e.Data), cause.Error(), []string{historyLine(now, cause.Error())}, 1, true, now, now, now)
	addIndexRows(b, Summary{ID: id, Component: component, AggregateID: e.AggregateID, EventType: e.Type, Sequence: e.Sequence, ParksAggregate: true})
	b.Query(`INSERT INTO parked_aggregates (component, aggregate_id, aggregate_type, sequence_number, dlq_id, reason, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		component, e.AggregateID, e.AggregateType, e.Sequence, id, cause.Error(), now)
	if err := b.exec(); err != nil {
		return id, fmt.Errorf("dead-lettering %s %d and parking it: %w", e.AggregateID, e.Sequence, err)
	}
	return id, nil
}

// findEvent finds component's dead letter of an aggregate's event.
func (s *Store) findEvent(ctx context.Context, component string, aggregateID gocql.UUID, seq int64) (gocql.UUID, bool, error) {
	iter := s.query(`SELECT id, component, sequence_number FROM dead_letters_by_aggregate WHERE aggregate_id = ?`, aggregateID).
		WithContext(ctx).Idempotent(true).Iter()
	var (
		id   gocql.UUID
		comp string
		sq   int64
	)
	for iter.Scan(&id, &comp, &sq) {
		if comp == component && sq == seq {
			_ = iter.Close()
			return id, true, nil
		}
	}
	if err := iter.Close(); err != nil {
		return gocql.UUID{}, false, fmt.Errorf("reading the dead letters of %s: %w", aggregateID, err)
	}
	return gocql.UUID{}, false, nil
}

// Refail counts one more failure of dead letter id: failure_count, the
// error message, the history and last_failed_at. It reports false when the
// dead letter no longer exists.
func (s *Store) Refail(ctx context.Context, id gocql.UUID, cause error) (bool, error) {
	return s.refail(ctx, id, cause, time.Now().UTC())
}

// refail is a compare-and-set on failure_count, so that two failures
// counted at once are both counted, and a purged row is not brought back
// as a partial one by an update.
func (s *Store) refail(ctx context.Context, id gocql.UUID, cause error, now time.Time) (bool, error) {
	for range 10 {
		var (
			count   int
			history []string
		)
		err := s.query(`SELECT failure_count, error_history FROM dead_letter_queue WHERE id = ?`, id).WithContext(ctx).Scan(&count, &history)
		if errors.Is(err, gocql.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading dead letter %s: %w", id, err)
		}
		history = appendHistory(history, now, cause)
		applied, err := s.query(`UPDATE dead_letter_queue SET failure_count = ?, error_message = ?, error_history = ?, last_failed_at = ? WHERE id = ? IF failure_count = ?`,
			count+1, cause.Error(), history, now, id, count).WithContext(ctx).MapScanCAS(map[string]any{})
		if err != nil {
			return false, fmt.Errorf("counting a failure of dead letter %s: %w", id, err)
		}
		if applied {
			return true, nil
		}
	}
	return false, fmt.Errorf("counting a failure of dead letter %s: too much contention", id)
}

// Raw records input that could not even be tied to an aggregate (a CDC log
// row, a record without a usable key). It parks nothing.
func (s *Store) Raw(ctx context.Context, component string, raw any, cause error) error {
	now := time.Now().UTC()
	id := gocql.UUIDFromTime(now)
	payload, _ := json.Marshal(raw)
	b := s.batch(ctx, gocql.LoggedBatch)
	b.Query(`INSERT INTO dead_letter_queue (id, component, payload, error_message, error_history, failure_count, parks_aggregate, first_failed_at, last_failed_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, component, string(payload), cause.Error(), []string{historyLine(now, cause.Error())}, 1, false, now, now, now)
	addIndexRows(b, Summary{ID: id, Component: component})
	if err := b.exec(); err != nil {
		return fmt.Errorf("dead-lettering unreadable input of %s: %w", component, err)
	}
	return nil
}

// addIndexRows adds the query-table rows of a dead letter to b: by
// component always, by event type and by aggregate when it is an event.
func addIndexRows(b *batch, s Summary) {
	b.Query(`INSERT INTO dead_letters_by_component (component, id, aggregate_id, event_type, sequence_number, parks_aggregate) VALUES (?, ?, ?, ?, ?, ?)`,
		s.Component, s.ID, nullUUID(s.AggregateID), nullString(s.EventType), s.Sequence, s.ParksAggregate)
	if s.EventType != "" {
		b.Query(`INSERT INTO dead_letters_by_event_type (event_type, id, component, aggregate_id, sequence_number, parks_aggregate) VALUES (?, ?, ?, ?, ?, ?)`,
			s.EventType, s.ID, s.Component, nullUUID(s.AggregateID), s.Sequence, s.ParksAggregate)
	}
	if s.AggregateID != (gocql.UUID{}) {
		b.Query(`INSERT INTO dead_letters_by_aggregate (aggregate_id, id, component, event_type, sequence_number, parks_aggregate) VALUES (?, ?, ?, ?, ?, ?)`,
			s.AggregateID, s.ID, s.Component, nullString(s.EventType), s.Sequence, s.ParksAggregate)
	}
}

// deleteRows adds the deletion of a dead letter and its query-table rows
// to b.
func deleteRows(b *batch, e Summary) {
	b.Query(`DELETE FROM dead_letter_queue WHERE id = ?`, e.ID)
	b.Query(`DELETE FROM dead_letters_by_component WHERE component = ? AND id = ?`, e.Component, e.ID)
	if e.EventType != "" {
		b.Query(`DELETE FROM dead_letters_by_event_type WHERE event_type = ? AND id = ?`, e.EventType, e.ID)
	}
	if e.AggregateID != (gocql.UUID{}) {
		b.Query(`DELETE FROM dead_letters_by_aggregate WHERE aggregate_id = ? AND id = ?`, e.AggregateID, e.ID)
	}
}

// Delete removes a dead letter and its query-table rows. It does not
// unpark anything: purging the head of a parked aggregate goes through
// its component (a skip request), never through Delete.
func (s *Store) Delete(ctx context.Context, e Summary) error {
	b := s.batch(ctx, gocql.LoggedBatch)
	deleteRows(b, e)
	if err := b.exec(); err != nil {
		return fmt.Errorf("deleting dead letter %s: %w", e.ID, err)
	}
	return nil
}

// ParkedAggregate is a row of parked_aggregates: an aggregate a component
// holds back behind a dead letter.
type ParkedAggregate struct {
	Component     string
	AggregateID   gocql.UUID
	AggregateType string
	Sequence      int64
	DLQID         gocql.UUID
	Reason        string
	ParkedAt      time.Time
}

// ReadParked reads whether component parks an aggregate, and behind what.
func (s *Store) ReadParked(ctx context.Context, component string, aggregateID gocql.UUID) (ParkedAggregate, bool, error) {
	p := ParkedAggregate{Component: component, AggregateID: aggregateID}
	err := s.query(`SELECT aggregate_type, sequence_number, dlq_id, reason, parked_at FROM parked_aggregates WHERE component = ? AND aggregate_id = ?`, component, aggregateID).
		WithContext(ctx).Idempotent(true).Scan(&p.AggregateType, &p.Sequence, &p.DLQID, &p.Reason, &p.ParkedAt)
	if errors.Is(err, gocql.ErrNotFound) {
		return ParkedAggregate{}, false, nil
	}
	if err != nil {
		return ParkedAggregate{}, false, fmt.Errorf("reading whether %s parks %s: %w", component, aggregateID, err)
	}
	return p, true, nil
}

// IsHead reports whether e is the dead letter its aggregate is parked
// behind for its component: discarding it without the component moving
// past its event would let the events behind it overtake it.
func (s *Store) IsHead(ctx context.Context, e Entry) (bool, error) {
	return isHead(ctx, s, e)
}

// parkedReader reads parked_aggregates (Store, Memory).
type parkedReader interface {
	ReadParked(ctx context.Context, component string, aggregateID gocql.UUID) (ParkedAggregate, bool, error)
}

func isHead(ctx context.Context, s parkedReader, e Entry) (bool, error) {
	if !e.ParksAggregate || e.AggregateID == (gocql.UUID{}) {
		return false, nil
	}
	p, parked, err := s.ReadParked(ctx, e.Component, e.AggregateID)
	if err != nil || !parked {
		return false, err
	}
	return p.Heads(e.Summary()), nil
}

// Summary is what the query tables hold of e.
func (e Entry) Summary() Summary {
	return Summary{ID: e.ID, Component: e.Component, AggregateID: e.AggregateID, EventType: e.EventType, Sequence: e.Sequence, ParksAggregate: e.ParksAggregate}
}

// ParkedRows reads component's parked aggregates with what each is parked
// behind.
func (s *Store) ParkedRows(ctx context.Context, component string) (map[gocql.UUID]ParkedAggregate, error) {
	iter := s.query(`SELECT aggregate_id, aggregate_type, sequence_number, dlq_id, reason, parked_at FROM parked_aggregates WHERE component = ?`, component).
		WithContext(ctx).Idempotent(true).PageSize(1000).Iter()
	out := map[gocql.UUID]ParkedAggregate{}
	p := ParkedAggregate{Component: component}
	for iter.Scan(&p.AggregateID, &p.AggregateType, &p.Sequence, &p.DLQID, &p.Reason, &p.ParkedAt) {
		out[p.AggregateID] = p
		p = ParkedAggregate{Component: component}
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("reading parked aggregates of %s: %w", component, err)
	}
	return out, nil
}

// Heads reports whether s is the dead letter p is parked behind.
func (p ParkedAggregate) Heads(s Summary) bool {
	return s.ParksAggregate && s.Component == p.Component && s.AggregateID == p.AggregateID && (p.DLQID == s.ID || p.Sequence == s.Sequence)
}

// Parked reads component's parked aggregates.
func (s *Store) Parked(ctx context.Context, component string) (map[gocql.UUID]bool, error) {
	iter := s.query(`SELECT aggregate_id FROM parked_aggregates WHERE component = ?`, component).
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

func nullUUID(id gocql.UUID) any {
	if id == (gocql.UUID{}) {
		return nil
	}
	return id
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
