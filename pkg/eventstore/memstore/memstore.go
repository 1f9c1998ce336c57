// Package memstore is the in-memory twin of eventstore.Store, for unit
// tests of the code above the event store (the repository, the relay's
// scans and publishing, projector rebuilds) without a database.
//
// It behaves as the CQL store does where callers can tell, and
// eventstoretest.Suite checks both against the same assertions: a commit
// is all or nothing and checks the expected version (a lost race is a
// *eventstore.ConflictError carrying the actual version, or the actual
// type when the id names an aggregate of another type); Append assigns the
// events' sequence numbers; reads return what was written with timestamps
// at the database's millisecond precision; a text that is not UTF-8 is
// refused as the server refuses it; a snapshot of the same version
// replaces the older one. Token ranges partition aggregates by a hash of
// their id instead of Murmur3: any deterministic partition serves a scan.
//
// It has no metrics, traces or paging: there is nothing to wait for.
package memstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// ErrNoRecentIndex is CheckRecent's answer for a store built
// WithoutRecentIndex, as a database without the index on updated_at
// refuses the query.
var ErrNoRecentIndex = errors.New("memstore: no index on updated_at")

// Option configures a Store.
type Option func(*Store)

// WithoutRecentIndex makes the store answer as a database without the
// index on updated_at (ScyllaDB, Cassandra before 5): CheckRecent and
// RecentHeads fail, so callers fall back to full scans.
func WithoutRecentIndex() Option { return func(s *Store) { s.noRecent = true } }

// WithClock sets the clock that stamps commits' updated_at (for
// RecentHeads); time.Now by default.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// Store keeps aggregates, events and snapshots in memory. It is safe for
// concurrent use; every method takes one lock, and callbacks run outside
// it, so a callback may call the store.
type Store struct {
	cfg      eventstore.Config
	noRecent bool
	now      func() time.Time

	mu    sync.Mutex
	aggs  map[gocql.UUID]*aggregate
	snaps map[gocql.UUID][]eventstore.Snapshot // ascending by version
}

type aggregate struct {
	typ       string
	current   int64
	published int64
	updatedAt time.Time
	events    []eventstore.Event // events[i].Sequence == i+1
}

// New builds an empty store with the given configuration (MaxEventsPerCommit
// and SnapshotEvery matter; the rest is kept for Config).
func New(cfg eventstore.Config, opts ...Option) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("memstore: %w", err)
	}
	s := &Store{cfg: cfg, now: time.Now, aggs: map[gocql.UUID]*aggregate{}, snaps: map[gocql.UUID][]eventstore.Snapshot{}}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Config returns the store's configuration.
func (s *Store) Config() eventstore.Config { return s.cfg }

// Append commits events to the aggregate, which must be at version
// expected (0 for a new aggregate), as eventstore.Store.Append does.
func (s *Store) Append(ctx context.Context, aggregateType string, id gocql.UUID, expected int64, events []eventstore.Event) (int64, error) {
	if len(events) == 0 {
		return expected, nil
	}
	if len(events) > s.cfg.MaxEventsPerCommit {
		return 0, fmt.Errorf("eventstore: %d events in one commit, at most %d", len(events), s.cfg.MaxEventsPerCommit)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("committing %d events to %s: %w", len(events), id, err)
	}
	for i, e := range events {
		if err := validText(e); err != nil {
			return 0, fmt.Errorf("committing %d events to %s: event %d: %w", len(events), id, i, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, exists := s.aggs[id]
	// The CQL commit's condition: IF NOT EXISTS for a new aggregate, else
	// IF current_sequence = expected AND aggregate_type = type.
	if (expected == 0 && exists) || (expected > 0 && (!exists || a.current != expected || a.typ != aggregateType)) {
		ce := &eventstore.ConflictError{AggregateID: id, Expected: expected}
		if exists {
			ce.Actual = a.current
			if a.typ != "" && a.typ != aggregateType {
				ce.ActualType = a.typ
			}
		}
		return 0, ce
	}
	if !exists {
		a = &aggregate{}
		s.aggs[id] = a
	}
	a.typ = aggregateType
	a.updatedAt = millis(s.now())
	for i := range events {
		e := &events[i]
		e.AggregateID, e.AggregateType, e.Sequence = id, aggregateType, expected+int64(i)+1
		a.events = append(a.events, stored(*e))
	}
	a.current = expected + int64(len(events))
	return a.current, nil
}

// Version returns the aggregate's current version and type; 0 and "" when
// it does not exist.
func (s *Store) Version(ctx context.Context, id gocql.UUID) (int64, string, error) {
	if err := ctx.Err(); err != nil {
		return 0, "", fmt.Errorf("reading version of %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.aggs[id]; ok {
		return a.current, a.typ, nil
	}
	return 0, "", nil
}

// Events calls fn for each event with after < sequence ≤ upTo (upTo 0: no
// upper bound), in sequence order.
func (s *Store) Events(ctx context.Context, id gocql.UUID, after, upTo int64, fn func(eventstore.Event) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reading events of %s: %w", id, err)
	}
	s.mu.Lock()
	var events []eventstore.Event
	if a, ok := s.aggs[id]; ok {
		for _, e := range a.events {
			if e.Sequence > after && (upTo <= 0 || e.Sequence <= upTo) {
				e.AggregateType = a.typ // a static column: the aggregate's type now
				events = append(events, copied(e))
			}
		}
	}
	s.mu.Unlock()
	for _, e := range events {
		if err := fn(e); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading events of %s: %w", id, err)
		}
	}
	return nil
}

// LatestSnapshot returns the newest snapshot at or below maxVersion (0:
// any), or false when there is none.
func (s *Store) LatestSnapshot(ctx context.Context, id gocql.UUID, maxVersion int64) (eventstore.Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Snapshot{}, false, fmt.Errorf("reading snapshot of %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snaps := s.snaps[id]
	for i := len(snaps) - 1; i >= 0; i-- {
		if maxVersion <= 0 || snaps[i].Version <= maxVersion {
			snap := snaps[i]
			snap.State = slices.Clone(snap.State)
			return snap, true, nil
		}
	}
	return eventstore.Snapshot{}, false, nil
}

// SaveSnapshot writes a snapshot; one of the same version is replaced.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("saving snapshot of %s at %d: %w", snap.AggregateID, snap.Version, err)
	}
	if !utf8.Valid(snap.State) || !utf8.ValidString(snap.AggregateType) {
		return fmt.Errorf("saving snapshot of %s at %d: %w", snap.AggregateID, snap.Version, errNotUTF8)
	}
	snap.State = slices.Clone(snap.State)
	snap.CreatedAt = millis(snap.CreatedAt)
	s.mu.Lock()
	defer s.mu.Unlock()
	snaps := s.snaps[snap.AggregateID]
	i, found := slices.BinarySearchFunc(snaps, snap.Version, func(a eventstore.Snapshot, v int64) int { return cmp.Compare(a.Version, v) })
	if found {
		snaps[i] = snap
	} else {
		snaps = slices.Insert(snaps, i, snap)
	}
	s.snaps[snap.AggregateID] = snaps
	return nil
}

// Head reads one aggregate's head; a zero Head (AggregateID set) when it
// does not exist.
func (s *Store) Head(ctx context.Context, id gocql.UUID) (eventstore.Head, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Head{AggregateID: id}, fmt.Errorf("reading the head of %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.aggs[id]; ok {
		return a.head(id), nil
	}
	return eventstore.Head{AggregateID: id}, nil
}

// HeadsInRange calls fn for the head of every aggregate whose token (a
// hash of its id, see Token) is in rg, in token order.
func (s *Store) HeadsInRange(ctx context.Context, rg eventstore.TokenRange, fn func(eventstore.Head) error) error {
	return s.eachHead(ctx, func(tok int64, _ *aggregate) bool { return tok >= rg.First && tok <= rg.Last }, fn)
}

// Heads calls fn for the head of every aggregate, in token order.
func (s *Store) Heads(ctx context.Context, fn func(eventstore.Head) error) error {
	return s.eachHead(ctx, func(int64, *aggregate) bool { return true }, fn)
}

// CheckRecent reports whether RecentHeads can be served (always, unless
// built WithoutRecentIndex).
func (s *Store) CheckRecent(ctx context.Context) error {
	if s.noRecent {
		return ErrNoRecentIndex
	}
	return ctx.Err()
}

// RecentHeads calls fn for the head of every aggregate committed after
// since, in token order.
func (s *Store) RecentHeads(ctx context.Context, since time.Time, fn func(eventstore.Head) error) error {
	if s.noRecent {
		return ErrNoRecentIndex
	}
	return s.eachHead(ctx, func(_ int64, a *aggregate) bool { return a.updatedAt.After(since) }, fn)
}

// MarkPublished records that the aggregate's events up to seq are
// published. As the CQL write does, it creates a head of no type for an
// unknown id.
func (s *Store) MarkPublished(ctx context.Context, id gocql.UUID, seq int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("recording published_sequence %d of %s: %w", seq, id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.aggs[id]
	if !ok {
		a = &aggregate{}
		s.aggs[id] = a
	}
	a.published = seq
	return nil
}

// Unpublished counts the events committed and not yet published.
func (s *Store) Unpublished(ctx context.Context) (int64, error) {
	var total int64
	err := s.Heads(ctx, func(h eventstore.Head) error {
		total += h.Unpublished()
		return nil
	})
	return total, err
}

// ReplaceEventData overwrites the payload of one stored event, as a
// hand edit of the database would: for tests of what readers do with an
// event they cannot decode. It reports whether the event exists.
func (s *Store) ReplaceEventData(id gocql.UUID, seq int64, data []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.aggs[id]
	if !ok || seq < 1 || seq > int64(len(a.events)) {
		return false
	}
	a.events[seq-1].Data = slices.Clone(data)
	return true
}

// Token is the stand-in for an aggregate's Murmur3 token: FNV-1a of its id.
func Token(id gocql.UUID) int64 {
	h := fnv.New64a()
	_, _ = h.Write(id[:])
	return int64(h.Sum64())
}

func (s *Store) eachHead(ctx context.Context, match func(int64, *aggregate) bool, fn func(eventstore.Head) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reading heads: %w", err)
	}
	type keyed struct {
		tok int64
		h   eventstore.Head
	}
	s.mu.Lock()
	var heads []keyed
	for id, a := range s.aggs {
		if tok := Token(id); match(tok, a) {
			heads = append(heads, keyed{tok, a.head(id)})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(heads, func(a, b keyed) int { return cmp.Compare(a.tok, b.tok) })
	for _, k := range heads {
		if err := fn(k.h); err != nil {
			return err
		}
	}
	return nil
}

func (a *aggregate) head(id gocql.UUID) eventstore.Head {
	return eventstore.Head{AggregateID: id, AggregateType: a.typ, Current: a.current, Published: a.published}
}

var errNotUTF8 = errors.New("text is not valid UTF-8 (the database refuses it)")

// validText refuses what a CQL text column refuses.
func validText(e eventstore.Event) error {
	ok := utf8.Valid(e.Data) && utf8.ValidString(e.Type) && utf8.ValidString(e.CausationID) && utf8.ValidString(e.CorrelationID)
	for k, v := range e.TraceContext {
		ok = ok && utf8.ValidString(k) && utf8.ValidString(v)
	}
	if !ok {
		return errNotUTF8
	}
	return nil
}

// stored is the event as the database keeps it: its own copy, the
// timestamp at millisecond precision, an empty map as none.
func stored(e eventstore.Event) eventstore.Event {
	e = copied(e)
	e.OccurredAt = millis(e.OccurredAt)
	if len(e.TraceContext) == 0 {
		e.TraceContext = nil
	}
	return e
}

func copied(e eventstore.Event) eventstore.Event {
	e.Data = slices.Clone(e.Data)
	e.TraceContext = maps.Clone(e.TraceContext)
	return e
}

// millis is a CQL timestamp's precision, in UTC as the driver reads it.
func millis(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}
