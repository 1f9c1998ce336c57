package deadletter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"
)

// Summary is what the query tables hold of a dead letter: what never
// changes.
type Summary struct {
	ID             gocql.UUID
	Component      string
	AggregateID    gocql.UUID
	EventType      string
	Sequence       int64
	ParksAggregate bool
}

// Filter selects dead letters; zero fields select everything.
type Filter struct {
	Component   string
	EventType   string
	AggregateID gocql.UUID
	// Since and Until bound the time of the first failure (the id's time),
	// both inclusive.
	Since, Until time.Time
}

// IsZero reports whether f selects everything.
func (f Filter) IsZero() bool {
	return f.Component == "" && f.EventType == "" && f.AggregateID == (gocql.UUID{}) && f.Since.IsZero() && f.Until.IsZero()
}

func (f Filter) match(s Summary) bool {
	return (f.Component == "" || s.Component == f.Component) &&
		(f.EventType == "" || s.EventType == f.EventType) &&
		(f.AggregateID == (gocql.UUID{}) || s.AggregateID == f.AggregateID)
}

// ListPage is one page of a listing, newest first.
type ListPage struct {
	Entries []Entry
	// Next is the id the next page starts after; zero on the last page.
	Next gocql.UUID
}

// List reads up to limit dead letters matching f, newest first, older than
// after (zero: from the newest). It reads the most selective query table
// for f (by aggregate, else by event type, else by component, merging the
// component partitions when no component is given) over the id range of
// f's times, filters the rest on the rows, and reads the entries by id.
// An entry deleted meanwhile is left out.
func (s *Store) List(ctx context.Context, f Filter, after gocql.UUID, limit int) (ListPage, error) {
	return list(ctx, s, f, after, limit)
}

// lister reads summaries and entries (Store, Memory).
type lister interface {
	Summaries(ctx context.Context, f Filter, after gocql.UUID, n int) ([]Summary, error)
	Get(ctx context.Context, id gocql.UUID) (Entry, bool, error)
}

func list(ctx context.Context, st lister, f Filter, after gocql.UUID, limit int) (ListPage, error) {
	if limit < 1 {
		return ListPage{}, fmt.Errorf("listing dead letters: limit %d", limit)
	}
	sums, err := st.Summaries(ctx, f, after, limit+1)
	if err != nil {
		return ListPage{}, err
	}
	var page ListPage
	if len(sums) > limit {
		sums = sums[:limit]
		page.Next = sums[limit-1].ID
	}
	entries := make([]*Entry, len(sums))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, s := range sums {
		g.Go(func() error {
			e, found, err := st.Get(gctx, s.ID)
			if found {
				entries[i] = &e
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return ListPage{}, err
	}
	page.Entries = []Entry{}
	for _, e := range entries {
		if e != nil {
			page.Entries = append(page.Entries, *e)
		}
	}
	return page, nil
}

// Summaries reads up to n query-table rows matching f, newest first, older
// than after (zero: from the newest).
func (s *Store) Summaries(ctx context.Context, f Filter, after gocql.UUID, n int) ([]Summary, error) {
	switch {
	case f.AggregateID != (gocql.UUID{}):
		return s.scanPartition(ctx, "dead_letters_by_aggregate", "aggregate_id", f.AggregateID, f, after, n)
	case f.EventType != "":
		return s.scanPartition(ctx, "dead_letters_by_event_type", "event_type", f.EventType, f, after, n)
	case f.Component != "":
		return s.scanPartition(ctx, "dead_letters_by_component", "component", f.Component, f, after, n)
	}
	components, err := s.Components(ctx)
	if err != nil {
		return nil, err
	}
	var (
		mu  sync.Mutex
		all []Summary
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, c := range components {
		g.Go(func() error {
			sums, err := s.scanPartition(gctx, "dead_letters_by_component", "component", c, f, after, n)
			mu.Lock()
			all = append(all, sums...)
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool { return CompareTimeUUID(all[i].ID, all[j].ID) > 0 })
	return all[:min(n, len(all))], nil
}

// Components lists the components that have dead letters.
func (s *Store) Components(ctx context.Context) ([]string, error) {
	iter := s.query(`SELECT DISTINCT component FROM dead_letters_by_component`).WithContext(ctx).Idempotent(true).Iter()
	var (
		out []string
		c   string
	)
	for iter.Scan(&c) {
		out = append(out, c)
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("listing the components with dead letters: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// scanPartition reads one partition of a query table over the id range
// that after and f's times allow, keeping the rows f matches, until it has
// n of them.
func (s *Store) scanPartition(ctx context.Context, table, key string, value any, f Filter, after gocql.UUID, n int) ([]Summary, error) {
	stmt := `SELECT id, component, aggregate_id, event_type, sequence_number, parks_aggregate FROM ` + table + ` WHERE ` + key + ` = ?`
	args := []any{value}
	// One upper bound only (CQL takes one per column): the tighter of the
	// page's start (exclusive) and the end of the time range (inclusive).
	var until gocql.UUID
	if !f.Until.IsZero() {
		until = gocql.MaxTimeUUID(f.Until)
	}
	switch {
	case after != (gocql.UUID{}) && (until == (gocql.UUID{}) || CompareTimeUUID(after, until) <= 0):
		stmt += ` AND id < ?`
		args = append(args, after)
	case until != (gocql.UUID{}):
		stmt += ` AND id <= ?`
		args = append(args, until)
	}
	if !f.Since.IsZero() {
		stmt += ` AND id >= ?`
		args = append(args, gocql.MinTimeUUID(f.Since))
	}
	iter := s.query(stmt, args...).WithContext(ctx).Idempotent(true).PageSize(max(2*n, 100)).Iter()
	var (
		out []Summary
		sum Summary
	)
	for len(out) < n && iter.Scan(&sum.ID, &sum.Component, &sum.AggregateID, &sum.EventType, &sum.Sequence, &sum.ParksAggregate) {
		if f.match(sum) {
			out = append(out, sum)
		}
		sum = Summary{}
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", table, err)
	}
	return out, nil
}

// CompareTimeUUID orders two version-1 UUIDs as Cassandra's and ScyllaDB's
// timeuuid type does: by timestamp, then by the remaining bytes compared as
// signed bytes. It returns -1, 0 or +1.
func CompareTimeUUID(a, b gocql.UUID) int {
	if ta, tb := a.Timestamp(), b.Timestamp(); ta != tb {
		if ta < tb {
			return -1
		}
		return 1
	}
	for i := 8; i < 16; i++ {
		if x, y := int8(a[i]), int8(b[i]); x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Count is the number of dead letters of one component and event type.
type Count struct {
	Component string `json:"component"`
	EventType string `json:"event_type"`
	Count     int    `json:"count"`
}

// Stats sums up the dead-letter queue.
type Stats struct {
	Total int
	// ByComponentAndType has one Count per component and event type
	// (EventType empty for input not tied to an event), sorted.
	ByComponentAndType []Count
	ByComponent        map[string]int
	ByEventType        map[string]int
	// Oldest is the dead letter that failed first; zero ID when empty.
	Oldest Summary
	// OldestFailedAt is its first failure.
	OldestFailedAt time.Time
	// Parked counts the parked aggregates per component.
	Parked map[string]int
	// PendingRetries counts the retry requests not finished yet, per
	// component.
	PendingRetries map[string]int
}

// ReadStats reads the whole dead_letter_queue (its own rows, not the query
// tables, so that the counts are exact), parked_aggregates and
// dlq_retry_requests. The queue is small by construction (one dead letter
// per parked aggregate and component); this is a scan nonetheless, run by
// the stats endpoint and the dlq-service's gauges, not per request.
func (s *Store) ReadStats(ctx context.Context) (Stats, error) {
	st := newStats()
	iter := s.query(`SELECT id, component, aggregate_id, event_type, sequence_number, parks_aggregate, first_failed_at FROM dead_letter_queue`).
		WithContext(ctx).Idempotent(true).PageSize(1000).Iter()
	var (
		sum   Summary
		first time.Time
	)
	for iter.Scan(&sum.ID, &sum.Component, &sum.AggregateID, &sum.EventType, &sum.Sequence, &sum.ParksAggregate, &first) {
		st.add(sum, first)
		sum, first = Summary{}, time.Time{}
	}
	if err := iter.Close(); err != nil {
		return Stats{}, fmt.Errorf("reading dead_letter_queue: %w", err)
	}
	for table, into := range map[string]map[string]int{"parked_aggregates": st.Parked, "dlq_retry_requests": st.PendingRetries} {
		iter := s.query(`SELECT component FROM ` + table).WithContext(ctx).Idempotent(true).PageSize(1000).Iter()
		var c string
		for iter.Scan(&c) {
			into[c]++
		}
		if err := iter.Close(); err != nil {
			return Stats{}, fmt.Errorf("reading %s: %w", table, err)
		}
	}
	st.sortCounts()
	return *st, nil
}

func newStats() *Stats {
	return &Stats{ByComponent: map[string]int{}, ByEventType: map[string]int{}, Parked: map[string]int{}, PendingRetries: map[string]int{}}
}

// add counts one dead letter.
func (st *Stats) add(s Summary, firstFailed time.Time) {
	st.Total++
	st.ByComponent[s.Component]++
	if s.EventType != "" {
		st.ByEventType[s.EventType]++
	}
	if st.Oldest.ID == (gocql.UUID{}) || firstFailed.Before(st.OldestFailedAt) {
		st.Oldest, st.OldestFailedAt = s, firstFailed
	}
	for i, c := range st.ByComponentAndType {
		if c.Component == s.Component && c.EventType == s.EventType {
			st.ByComponentAndType[i].Count++
			return
		}
	}
	st.ByComponentAndType = append(st.ByComponentAndType, Count{Component: s.Component, EventType: s.EventType, Count: 1})
}

func (st *Stats) sortCounts() {
	sort.Slice(st.ByComponentAndType, func(i, j int) bool {
		a, b := st.ByComponentAndType[i], st.ByComponentAndType[j]
		if a.Component != b.Component {
			return a.Component < b.Component
		}
		return a.EventType < b.EventType
	})
}

// Backfill writes the query-table rows of every dead letter, for those
// written before schema v0004 added the tables. It is idempotent. A dead
// letter purged while it runs may get its rows back; readers skip rows
// whose dead letter is gone, and the rows expire with the partition's
// tombstones like any other.
func (s *Store) Backfill(ctx context.Context) (int, error) {
	iter := s.query(`SELECT id, component, aggregate_id, event_type, sequence_number, parks_aggregate FROM dead_letter_queue`).
		WithContext(ctx).Idempotent(true).PageSize(500).Iter()
	var (
		sum Summary
		n   int
	)
	for iter.Scan(&sum.ID, &sum.Component, &sum.AggregateID, &sum.EventType, &sum.Sequence, &sum.ParksAggregate) {
		var exists gocql.UUID
		err := s.query(`SELECT id FROM dead_letters_by_component WHERE component = ? AND id = ?`, sum.Component, sum.ID).WithContext(ctx).Scan(&exists)
		if errors.Is(err, gocql.ErrNotFound) {
			b := s.batch(ctx, gocql.UnloggedBatch)
			addIndexRows(b, sum)
			err = b.exec()
			n++
		}
		if err != nil {
			_ = iter.Close()
			return n, fmt.Errorf("backfilling the query rows of dead letter %s: %w", sum.ID, err)
		}
		sum = Summary{}
	}
	if err := iter.Close(); err != nil {
		return n, fmt.Errorf("reading dead_letter_queue: %w", err)
	}
	return n, nil
}
