package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/cql"
)

// Head is an aggregate's static columns: its type, the version it is at,
// and how far the relay has published it. Only what the commits and the
// relay write is kept there, so reading heads (SELECT DISTINCT) touches
// partition keys and statics only, never the event rows.
type Head struct {
	AggregateID   gocql.UUID
	AggregateType string
	Current       int64 // current_sequence: the last committed event
	Published     int64 // published_sequence: the last event the relay recorded as published
}

// Unpublished is how many of the aggregate's events are committed and not
// yet recorded as published.
func (h Head) Unpublished() int64 { return max(h.Current-h.Published, 0) }

// TokenRange is an inclusive range of the partitioner's token ring (the
// Murmur3 token of aggregate_id). Scans read the store range by range, in
// parallel if they like; the ranges of SplitTokens cover every aggregate
// exactly once.
type TokenRange struct{ First, Last int64 }

// SplitTokens splits the whole token ring into n contiguous ranges.
func SplitTokens(n int) []TokenRange {
	rs := cql.TokenRanges(n)
	out := make([]TokenRange, len(rs))
	for i, r := range rs {
		out[i] = TokenRange{First: r[0], Last: r[1]}
	}
	return out
}

// Page sizes of the head scans: a head is small (an id, a type and two
// numbers), so large pages; a token range is read in a few pages.
const (
	rangePageSize = 1000
	allPageSize   = 5000
)

// The head reads and the mark below run at the session's consistency and
// without spans, as the relay's own queries always did: the relay reads a
// head per aggregate it publishes and scans every few milliseconds, and a
// root span for each would drown its traces.

// Head reads one aggregate's static columns. An aggregate that does not
// exist has a zero Head (with AggregateID set) and no error.
func (s *Store) Head(ctx context.Context, id gocql.UUID) (Head, error) {
	h := Head{AggregateID: id}
	var published *int64
	err := s.session.Query(`SELECT aggregate_type, current_sequence, published_sequence FROM event_store WHERE aggregate_id = ? LIMIT 1`, id).
		WithContext(ctx).Idempotent(true).Scan(&h.AggregateType, &h.Current, &published)
	if errors.Is(err, gocql.ErrNotFound) {
		return Head{AggregateID: id}, nil
	}
	if err != nil {
		return Head{AggregateID: id}, fmt.Errorf("reading the head of %s: %w", id, err)
	}
	if published != nil {
		h.Published = *published
	}
	return h, nil
}

// HeadsInRange calls fn for the head of every aggregate whose token is in
// rg, in token order, page by page. An error of fn stops the scan and is
// returned as is.
func (s *Store) HeadsInRange(ctx context.Context, rg TokenRange, fn func(Head) error) error {
	q := s.session.Query(`SELECT DISTINCT aggregate_id, aggregate_type, current_sequence, published_sequence FROM event_store WHERE token(aggregate_id) >= ? AND token(aggregate_id) <= ?`, rg.First, rg.Last)
	return s.scanHeads(q.WithContext(ctx).PageSize(rangePageSize), fn, func(err error) error {
		return fmt.Errorf("reading heads of tokens %d..%d: %w", rg.First, rg.Last, err)
	})
}

// Heads calls fn for the head of every aggregate, page by page: one read
// of every partition's static columns. For checks and tools; services
// scan by token range (HeadsInRange) to bound each query.
func (s *Store) Heads(ctx context.Context, fn func(Head) error) error {
	q := s.session.Query(`SELECT DISTINCT aggregate_id, aggregate_type, current_sequence, published_sequence FROM event_store`)
	return s.scanHeads(q.WithContext(ctx).PageSize(allPageSize), fn, func(err error) error {
		return fmt.Errorf("reading heads: %w", err)
	})
}

// CheckRecent reports whether RecentHeads can be served: it needs the
// index on updated_at (the SAI index of schema v0003 on Apache Cassandra
// 5; ScyllaDB and older Cassandra have none). It asks for it, so the error
// is the database's answer (or an outage).
func (s *Store) CheckRecent(ctx context.Context) error {
	return s.session.Query(`SELECT DISTINCT aggregate_id FROM event_store WHERE updated_at > ? LIMIT 1`, time.Now()).
		WithContext(ctx).Idempotent(true).Exec()
}

// RecentHeads calls fn for the head of every aggregate committed after
// since (by its static updated_at, set by each commit from the committing
// host's clock, through its index), page by page. Callers look back a
// little further than the time of their previous read to cover commit
// latency and clock skew.
func (s *Store) RecentHeads(ctx context.Context, since time.Time, fn func(Head) error) error {
	q := s.session.Query(`SELECT DISTINCT aggregate_id, aggregate_type, current_sequence, published_sequence FROM event_store WHERE updated_at > ?`, since)
	return s.scanHeads(q.WithContext(ctx).PageSize(rangePageSize), fn, func(err error) error {
		return fmt.Errorf("reading heads committed since %s: %w", since.Format(time.RFC3339Nano), err)
	})
}

// MarkPublished records that the aggregate's events up to seq are
// published. Only the relay writes the mark, one worker per aggregate and
// forwards from the mark it read, so a plain write is enough.
func (s *Store) MarkPublished(ctx context.Context, id gocql.UUID, seq int64) error {
	if err := s.session.Query(`UPDATE event_store SET published_sequence = ? WHERE aggregate_id = ?`, seq, id).
		WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("recording published_sequence %d of %s: %w", seq, id, err)
	}
	return nil
}

// Unpublished counts the events committed and not yet published in the
// whole store (one read of every partition's static columns): the backlog
// tests, checks and benchmarks wait on to see the relay done.
func (s *Store) Unpublished(ctx context.Context) (int64, error) {
	var total int64
	err := s.Heads(ctx, func(h Head) error {
		total += h.Unpublished()
		return nil
	})
	return total, err
}

// scanHeads runs a head query (aggregate_id, aggregate_type,
// current_sequence, published_sequence) and hands each row to fn. An
// error of fn is returned as is, a database error through wrap.
func (s *Store) scanHeads(q *gocql.Query, fn func(Head) error, wrap func(error) error) error {
	iter := q.Idempotent(true).Iter()
	var (
		h         Head
		published *int64
	)
	for iter.Scan(&h.AggregateID, &h.AggregateType, &h.Current, &published) {
		h.Published = 0
		if published != nil {
			h.Published = *published
		}
		if err := fn(h); err != nil {
			_ = iter.Close()
			return err
		}
		published = nil
	}
	if err := iter.Close(); err != nil {
		return wrap(err)
	}
	return nil
}
