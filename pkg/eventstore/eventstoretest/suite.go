// Package eventstoretest holds the contract every event store keeps: one
// suite of behavioural tests that runs against the CQL store (an
// integration test, real Cassandra) and its in-memory twin (a unit test),
// as hallgren/eventsourcing's core/testsuite and temporal's
// persistence-tests do. What only a real database can show (paging,
// Paxos under contention on real replicas, the server refusing a row)
// runs here too against the CQL store, and stays in pkg/eventstore's
// integration tests where it is about the driver.
package eventstoretest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// Store is every method of an event store the contract covers.
type Store interface {
	eventstore.RepositoryStore
	Version(ctx context.Context, id gocql.UUID) (int64, string, error)
	Head(ctx context.Context, id gocql.UUID) (eventstore.Head, error)
	HeadsInRange(ctx context.Context, rg eventstore.TokenRange, fn func(eventstore.Head) error) error
	Heads(ctx context.Context, fn func(eventstore.Head) error) error
	CheckRecent(ctx context.Context) error
	RecentHeads(ctx context.Context, since time.Time, fn func(eventstore.Head) error) error
	MarkPublished(ctx context.Context, id gocql.UUID, seq int64) error
	Unpublished(ctx context.Context) (int64, error)
}

// NewStore builds a store for one test over eventstore.DefaultConfig()
// changed by mutate (nil: unchanged). Stores built during one Suite may
// share their data (the CQL ones share a keyspace): the suite uses fresh
// aggregate ids and counts relative to what it wrote, and runs its tests
// one after the other, but nothing else may write the store meanwhile.
type NewStore func(t *testing.T, mutate func(*eventstore.Config)) Store

// Suite runs the contract against the stores newStore builds.
func Suite(t *testing.T, newStore NewStore) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, NewStore)
	}{
		{"AppendAndRead", testAppendAndRead},
		{"AppendConflicts", testAppendConflicts},
		{"IDReusedAcrossAggregateTypesIsRefused", testIDReusedAcrossTypes},
		{"MultiEventCommitIsAllOrNothing", testAllOrNothing},
		{"CommitSizeIsBounded", testCommitSizeBounded},
		{"ConcurrentCommitsOnOneAggregate", testConcurrentOnOne},
		{"ConcurrentCommitsAcrossAggregates", testConcurrentAcross},
		{"Snapshots", testSnapshots},
		{"HeadsAndPublishMarks", testHeadsAndMarks},
		{"TokenRangesCoverEveryAggregateOnce", testTokenRanges},
		{"RecentHeads", testRecentHeads},
		{"RepositorySnapshotsGiveTheSameState", testRepositorySnapshots},
		{"RepositoryRetriesConflicts", testRepositoryRetries},
		{"UpcastingOnLoad", testUpcastingOnLoad},
		{"RetryFindsItsOwnUnseenCommit", testRetryFindsItsOwnCommit},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore) })
	}
}

func newID() gocql.UUID { return gocql.UUID(uuid.New()) }

func oneEvent() []eventstore.Event {
	return []eventstore.Event{{EventID: newID(), Type: "Added", Version: 1, Data: []byte(`{"n":1}`), OccurredAt: time.Now().UTC()}}
}

func events(n int) []eventstore.Event {
	out := make([]eventstore.Event, n)
	for i := range out {
		out[i] = oneEvent()[0]
	}
	return out
}

type streamCheck struct {
	seqs     []int64
	eventIDs map[gocql.UUID]bool
}

func readStream(t *testing.T, store Store, id gocql.UUID) streamCheck {
	t.Helper()
	c := streamCheck{eventIDs: map[gocql.UUID]bool{}}
	require.NoError(t, store.Events(context.Background(), id, 0, 0, func(e eventstore.Event) error {
		c.seqs = append(c.seqs, e.Sequence)
		require.False(t, c.eventIDs[e.EventID], "event id %s appears twice", e.EventID)
		c.eventIDs[e.EventID] = true
		return nil
	}))
	return c
}

func requireContiguous(t *testing.T, seqs []int64, n int64) {
	t.Helper()
	require.Len(t, seqs, int(n))
	for i, s := range seqs {
		require.Equal(t, int64(i+1), s, "gap or duplicate at position %d", i)
	}
}

// Append assigns sequences, and every field comes back as written
// (timestamps at millisecond precision); Events reads after < seq ≤ upTo
// in order; an empty commit is a no-op.
func testAppendAndRead(t *testing.T, newStore NewStore) {
	store := newStore(t, nil)
	ctx := context.Background()
	id := newID()

	version, typ, err := store.Version(ctx, id)
	require.NoError(t, err)
	require.Zero(t, version)
	require.Empty(t, typ)
	require.NoError(t, store.Events(ctx, id, 0, 0, func(eventstore.Event) error {
		t.Fatal("an unknown aggregate has no events")
		return nil
	}))

	at := time.Date(2026, 3, 4, 5, 6, 7, 891_234_567, time.UTC)
	written := make([]eventstore.Event, 3)
	for i := range written {
		written[i] = eventstore.Event{
			EventID: newID(), Type: "Added", Version: int32(i + 1), Data: []byte(`{"n":` + string(rune('1'+i)) + `}`),
			CausationID: "cmd", CorrelationID: "corr", OccurredAt: at, TraceContext: map[string]string{"traceparent": "00-abc-def-01"},
		}
	}
	next, err := store.Append(ctx, "counter", id, 0, written)
	require.NoError(t, err)
	require.Equal(t, int64(3), next)
	for i, e := range written {
		require.Equal(t, int64(i+1), e.Sequence, "Append assigns the sequence")
		require.Equal(t, id, e.AggregateID)
		require.Equal(t, "counter", e.AggregateType)
	}

	next, err = store.Append(ctx, "counter", id, 3, nil)
	require.NoError(t, err)
	require.Equal(t, int64(3), next, "an empty commit is a no-op")

	var read []eventstore.Event
	require.NoError(t, store.Events(ctx, id, 0, 0, func(e eventstore.Event) error { read = append(read, e); return nil }))
	require.Len(t, read, 3)
	for i, e := range read {
		w := written[i]
		require.Equal(t, w.AggregateID, e.AggregateID)
		require.Equal(t, "counter", e.AggregateType)
		require.Equal(t, w.Sequence, e.Sequence)
		require.Equal(t, w.EventID, e.EventID)
		require.Equal(t, w.Type, e.Type)
		require.Equal(t, w.Version, e.Version)
		require.Equal(t, string(w.Data), string(e.Data))
		require.Equal(t, w.CausationID, e.CausationID)
		require.Equal(t, w.CorrelationID, e.CorrelationID)
		require.True(t, at.Truncate(time.Millisecond).Equal(e.OccurredAt), "occurred at %s, read %s", at, e.OccurredAt)
		require.Equal(t, w.TraceContext, e.TraceContext)
	}

	for _, c := range []struct {
		after, upTo int64
		want        []int64
	}{{0, 0, []int64{1, 2, 3}}, {1, 0, []int64{2, 3}}, {0, 2, []int64{1, 2}}, {1, 2, []int64{2}}, {3, 0, nil}, {2, 2, nil}} {
		var seqs []int64
		require.NoError(t, store.Events(ctx, id, c.after, c.upTo, func(e eventstore.Event) error { seqs = append(seqs, e.Sequence); return nil }))
		require.Equal(t, c.want, seqs, "after %d up to %d", c.after, c.upTo)
	}

	stop := errors.New("stop")
	n := 0
	err = store.Events(ctx, id, 0, 0, func(eventstore.Event) error { n++; return stop })
	require.ErrorIs(t, err, stop, "the callback's error is returned")
	require.Equal(t, 1, n, "and stops the read")

	version, typ, err = store.Version(ctx, id)
	require.NoError(t, err)
	require.Equal(t, int64(3), version)
	require.Equal(t, "counter", typ)
}

// A stale or early expected version is a *ConflictError carrying the
// actual version; nothing of the commit lands.
func testAppendConflicts(t *testing.T, newStore NewStore) {
	store := newStore(t, nil)
	ctx := context.Background()
	id := newID()

	_, err := store.Append(ctx, "counter", id, 3, oneEvent())
	var conflict *eventstore.ConflictError
	require.ErrorAs(t, err, &conflict, "an aggregate that does not exist is not at version 3")
	require.ErrorIs(t, err, eventstore.ErrConflict)
	require.Equal(t, id, conflict.AggregateID)
	require.Equal(t, int64(3), conflict.Expected)
	require.Zero(t, conflict.Actual)
	require.Empty(t, conflict.ActualType)

	_, err = store.Append(ctx, "counter", id, 0, events(2))
	require.NoError(t, err)
	for _, expected := range []int64{0, 1, 3} {
		_, err = store.Append(ctx, "counter", id, expected, oneEvent())
		require.ErrorAs(t, err, &conflict, "expected %d", expected)
		require.Equal(t, expected, conflict.Expected)
		require.Equal(t, int64(2), conflict.Actual)
		require.Empty(t, conflict.ActualType)
	}
	requireContiguous(t, readStream(t, store, id).seqs, 2)
}

func testIDReusedAcrossTypes(t *testing.T, newStore NewStore) {
	store := newStore(t, nil)
	ctx := context.Background()
	id := newID()
	_, err := store.Append(ctx, "order", id, 0, oneEvent())
	require.NoError(t, err)
	_, err = store.Append(ctx, "customer", id, 1, oneEvent())
	var conflict *eventstore.ConflictError
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, "order", conflict.ActualType)

	_, err = store.Append(ctx, "customer", id, 0, oneEvent())
	require.ErrorAs(t, err, &conflict, "a new aggregate of another type cannot take the id")
	require.Equal(t, "order", conflict.ActualType)
	require.Equal(t, int64(1), conflict.Actual)
	requireContiguous(t, readStream(t, store, id).seqs, 1)
}

// A multi-event commit is all or nothing: the server rejects the batch for
// one bad row (invalid UTF-8 in a text column) and none of its events nor
// the version bump is visible; a conflicting batch is likewise invisible.
func testAllOrNothing(t *testing.T, newStore NewStore) {
	store := newStore(t, nil)
	ctx := context.Background()
	id := newID()
	_, err := store.Append(ctx, "counter", id, 0, oneEvent())
	require.NoError(t, err)

	batch := events(10)
	batch[6].Data = []byte{'{', 0xff, 0xfe, '}'} // not UTF-8: the server refuses the row
	_, err = store.Append(ctx, "counter", id, 1, batch)
	require.Error(t, err)
	require.NotErrorIs(t, err, eventstore.ErrConflict)

	version, _, err := store.Version(ctx, id)
	require.NoError(t, err)
	require.Equal(t, int64(1), version, "the version did not move")
	requireContiguous(t, readStream(t, store, id).seqs, 1)

	// A stale expected version: nothing of the 10 events lands either.
	batch = events(10)
	_, err = store.Append(ctx, "counter", id, 0, batch)
	var conflict *eventstore.ConflictError
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, int64(1), conflict.Actual)
	requireContiguous(t, readStream(t, store, id).seqs, 1)

	// The right version commits all ten at once.
	next, err := store.Append(ctx, "counter", id, 1, batch)
	require.NoError(t, err)
	require.Equal(t, int64(11), next)
	requireContiguous(t, readStream(t, store, id).seqs, 11)
}

func testCommitSizeBounded(t *testing.T, newStore NewStore) {
	store := newStore(t, func(c *eventstore.Config) { c.MaxEventsPerCommit = 5 })
	ctx := context.Background()
	id := newID()
	_, err := store.Append(ctx, "counter", id, 0, events(6))
	require.Error(t, err)
	require.NotErrorIs(t, err, eventstore.ErrConflict)
	version, _, err := store.Version(ctx, id)
	require.NoError(t, err)
	require.Zero(t, version)
	next, err := store.Append(ctx, "counter", id, 0, events(5))
	require.NoError(t, err)
	require.Equal(t, int64(5), next)
}

// 32 goroutines race 500 commits against ONE aggregate: each commit either
// succeeds or reports a conflict with the actual version; the stream ends
// 1..N with N the number of successes, and every event id is unique.
func testConcurrentOnOne(t *testing.T, newStore NewStore) {
	store := newStore(t, nil)
	ctx := context.Background()
	id := newID()
	const workers, total = 32, 500

	var (
		issued, committed, conflicts atomic.Int64
		wg, ready                    sync.WaitGroup
	)
	// Every worker reads the version before the first commits, so that
	// the race happens on any store, however fast.
	ready.Add(workers)
	for range workers {
		wg.Go(func() {
			for first := true; issued.Add(1) <= total; first = false {
				version, _, err := store.Version(ctx, id)
				if first {
					ready.Done()
					ready.Wait()
				}
				require.NoError(t, err)
				_, err = store.Append(ctx, "counter", id, version, oneEvent())
				var conflict *eventstore.ConflictError
				switch {
				case err == nil:
					committed.Add(1)
				case errors.As(err, &conflict):
					require.ErrorIs(t, err, eventstore.ErrConflict)
					require.Greater(t, conflict.Actual, version, "a conflict reports a newer version")
					conflicts.Add(1)
				default:
					require.NoError(t, err)
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(total), committed.Load()+conflicts.Load())
	require.Positive(t, conflicts.Load(), "32 writers on one aggregate must collide")
	t.Logf("%d committed, %d conflicts", committed.Load(), conflicts.Load())

	version, typ, err := store.Version(ctx, id)
	require.NoError(t, err)
	require.Equal(t, committed.Load(), version)
	require.Equal(t, "counter", typ)
	requireContiguous(t, readStream(t, store, id).seqs, committed.Load())
}

// The same across 1,000 aggregates in parallel.
func testConcurrentAcross(t *testing.T, newStore NewStore) {
	store := newStore(t, nil)
	ctx := context.Background()
	ids := make([]gocql.UUID, 1000)
	for i := range ids {
		ids[i] = newID()
	}
	const workers, total = 32, 4000
	committed := make([]atomic.Int64, len(ids))
	var (
		issued, conflicts atomic.Int64
		wg                sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for {
				n := issued.Add(1)
				if n > total {
					return
				}
				// Two workers share each aggregate at a time, so races happen.
				i := int(n*7+int64(w)) % len(ids)
				version, _, err := store.Version(ctx, ids[i])
				require.NoError(t, err)
				_, err = store.Append(ctx, "counter", ids[i], version, oneEvent())
				if errors.Is(err, eventstore.ErrConflict) {
					conflicts.Add(1)
					continue
				}
				require.NoError(t, err)
				committed[i].Add(1)
			}
		})
	}
	wg.Wait()
	var sum int64
	for i, id := range ids {
		n := committed[i].Load()
		sum += n
		c := readStream(t, store, id)
		requireContiguous(t, c.seqs, n)
		version, _, err := store.Version(ctx, id)
		require.NoError(t, err)
		require.Equal(t, n, version)
	}
	require.Equal(t, int64(total), sum+conflicts.Load())
	t.Logf("%d committed, %d conflicts over %d aggregates", sum, conflicts.Load(), len(ids))
}

// The newest snapshot at or below a version is found; one of the same
// version replaces the older.
func testSnapshots(t *testing.T, newStore NewStore) {
	store := newStore(t, nil)
	ctx := context.Background()
	id := newID()
	_, found, err := store.LatestSnapshot(ctx, id, 0)
	require.NoError(t, err)
	require.False(t, found)

	at := time.Date(2026, 1, 2, 3, 4, 5, 678_900_000, time.UTC)
	snap := func(v int64, state string) eventstore.Snapshot {
		return eventstore.Snapshot{AggregateID: id, AggregateType: "counter", Version: v, State: []byte(state), StateVersion: 3, CreatedAt: at}
	}
	require.NoError(t, store.SaveSnapshot(ctx, snap(5, `{"v":5}`)))
	require.NoError(t, store.SaveSnapshot(ctx, snap(10, `{"v":10}`)))
	require.NoError(t, store.SaveSnapshot(ctx, snap(10, `{"v":"ten"}`)))

	for _, c := range []struct {
		max     int64
		found   bool
		version int64
		state   string
	}{{0, true, 10, `{"v":"ten"}`}, {11, true, 10, `{"v":"ten"}`}, {10, true, 10, `{"v":"ten"}`}, {9, true, 5, `{"v":5}`}, {5, true, 5, `{"v":5}`}, {4, false, 0, ""}} {
		got, found, err := store.LatestSnapshot(ctx, id, c.max)
		require.NoError(t, err)
		require.Equal(t, c.found, found, "at most %d", c.max)
		if !found {
			continue
		}
		require.Equal(t, id, got.AggregateID)
		require.Equal(t, "counter", got.AggregateType)
		require.Equal(t, c.version, got.Version, "at most %d", c.max)
		require.Equal(t, c.state, string(got.State), "at most %d", c.max)
		require.Equal(t, int32(3), got.StateVersion)
		require.True(t, at.Truncate(time.Millisecond).Equal(got.CreatedAt), "created at %s, read %s", at, got.CreatedAt)
	}
	_, found, err = store.LatestSnapshot(ctx, newID(), 0)
	require.NoError(t, err)
	require.False(t, found, "snapshots belong to their aggregate")
}

// A head is the aggregate's type, version and published mark; Unpublished
// counts what the marks leave.
func testHeadsAndMarks(t *testing.T, newStore NewStore) {
	store := newStore(t, nil)
	ctx := context.Background()
	id := newID()

	h, err := store.Head(ctx, id)
	require.NoError(t, err)
	require.Equal(t, eventstore.Head{AggregateID: id}, h, "an unknown aggregate has a zero head")

	before, err := store.Unpublished(ctx)
	require.NoError(t, err)
	_, err = store.Append(ctx, "counter", id, 0, events(3))
	require.NoError(t, err)
	h, err = store.Head(ctx, id)
	require.NoError(t, err)
	require.Equal(t, eventstore.Head{AggregateID: id, AggregateType: "counter", Current: 3}, h)
	require.Equal(t, int64(3), h.Unpublished())
	n, err := store.Unpublished(ctx)
	require.NoError(t, err)
	require.Equal(t, before+3, n)

	require.NoError(t, store.MarkPublished(ctx, id, 2))
	h, err = store.Head(ctx, id)
	require.NoError(t, err)
	require.Equal(t, eventstore.Head{AggregateID: id, AggregateType: "counter", Current: 3, Published: 2}, h)
	require.Equal(t, int64(1), h.Unpublished())
	n, err = store.Unpublished(ctx)
	require.NoError(t, err)
	require.Equal(t, before+1, n)

	// A commit keeps the mark.
	_, err = store.Append(ctx, "counter", id, 3, events(2))
	require.NoError(t, err)
	h, err = store.Head(ctx, id)
	require.NoError(t, err)
	require.Equal(t, eventstore.Head{AggregateID: id, AggregateType: "counter", Current: 5, Published: 2}, h)

	require.NoError(t, store.MarkPublished(ctx, id, 5))
	n, err = store.Unpublished(ctx)
	require.NoError(t, err)
	require.Equal(t, before, n)

	var seen []eventstore.Head
	require.NoError(t, store.Heads(ctx, func(h eventstore.Head) error {
		if h.AggregateID == id {
			seen = append(seen, h)
		}
		return nil
	}))
	require.Equal(t, []eventstore.Head{{AggregateID: id, AggregateType: "counter", Current: 5, Published: 5}}, seen)
}

// Any split of the token ring lists every aggregate in exactly one range,
// with its head; the callback's error stops a scan and is returned.
func testTokenRanges(t *testing.T, newStore NewStore) {
	store := newStore(t, nil)
	ctx := context.Background()
	want := map[gocql.UUID]int64{}
	for i := range 60 {
		id := newID()
		_, err := store.Append(ctx, "counter", id, 0, events(i%4+1))
		require.NoError(t, err)
		want[id] = int64(i%4 + 1)
	}
	for _, n := range []int{1, 2, 7, 64} {
		ranges := eventstore.SplitTokens(n)
		require.Len(t, ranges, n)
		seen := map[gocql.UUID]int{}
		for _, rg := range ranges {
			require.NoError(t, store.HeadsInRange(ctx, rg, func(h eventstore.Head) error {
				seen[h.AggregateID]++
				if cur, ok := want[h.AggregateID]; ok {
					require.Equal(t, eventstore.Head{AggregateID: h.AggregateID, AggregateType: "counter", Current: cur}, h)
				}
				return nil
			}))
		}
		for id := range want {
			require.Equal(t, 1, seen[id], "%d ranges: aggregate %s seen %d times", n, id, seen[id])
		}
		for id, k := range seen {
			require.Equal(t, 1, k, "%d ranges: aggregate %s seen %d times", n, id, k)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := store.HeadsInRange(ctx, eventstore.SplitTokens(1)[0], func(eventstore.Head) error { calls++; return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, calls)
	calls = 0
	require.ErrorIs(t, store.Heads(ctx, func(eventstore.Head) error { calls++; return stop }), stop)
	require.Equal(t, 1, calls)
}

// RecentHeads lists the aggregates committed after a time, with their
// heads, and not those committed before it; a store that cannot (no index
// on updated_at) says so in CheckRecent and refuses the read.
func testRecentHeads(t *testing.T, newStore NewStore) {
	store := newStore(t, nil)
	ctx := context.Background()
	if err := store.CheckRecent(ctx); err != nil {
		// A store without the index on updated_at refuses the read, as
		// CheckRecent said, rather than answering nothing.
		t.Logf("no index on updated_at: %v", err)
		require.Error(t, store.RecentHeads(ctx, time.Now(), func(eventstore.Head) error { return nil }))
		return
	}
	old, fresh := newID(), newID()
	_, err := store.Append(ctx, "counter", old, 0, oneEvent())
	require.NoError(t, err)
	since := time.Now()
	// The database keeps milliseconds: let the clock leave since's
	// millisecond before the next commit (a wait of under 1 ms).
	require.Eventually(t, func() bool { return time.Now().UnixMilli() > since.UnixMilli() }, time.Second, 100*time.Microsecond)
	_, err = store.Append(ctx, "counter", fresh, 0, events(2))
	require.NoError(t, err)
	require.NoError(t, store.MarkPublished(ctx, fresh, 1))

	found := map[gocql.UUID]eventstore.Head{}
	require.NoError(t, store.RecentHeads(ctx, since, func(h eventstore.Head) error { found[h.AggregateID] = h; return nil }))
	require.Equal(t, eventstore.Head{AggregateID: fresh, AggregateType: "counter", Current: 2, Published: 1}, found[fresh])
	require.NotContains(t, found, old, "committed before since")

	found = map[gocql.UUID]eventstore.Head{}
	require.NoError(t, store.RecentHeads(ctx, since.Add(-time.Minute), func(h eventstore.Head) error { found[h.AggregateID] = h; return nil }))
	require.Contains(t, found, old)
	require.Contains(t, found, fresh)
}

// configured is a store that reports another configuration to the
// repository (which reads only SnapshotEvery of it).
type configured struct {
	Store
	cfg eventstore.Config
}

func (c configured) Config() eventstore.Config { return c.cfg }

func newRepo(t *testing.T, store Store, up *eventstore.Upcasters) *eventstore.Repository[counterState, addCmd, added] {
	t.Helper()
	if up == nil {
		up = eventstore.NewUpcasters()
	}
	r, err := eventstore.NewRepository(store, counterAggregate, counterCodec{}, up,
		eventstore.RepositoryConfig{MaxConflictRetries: 50}, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	return r
}

// Loading with and without snapshots gives the same state, also at every
// past version, over an aggregate of 10,000 events.
func testRepositorySnapshots(t *testing.T, newStore NewStore) {
	store := newStore(t, func(c *eventstore.Config) { c.SnapshotEvery = 7; c.PageSize = 100 })
	withSnaps := newRepo(t, store, nil)
	cfg := store.Config()
	cfg.SnapshotEvery = 0
	noSnaps := newRepo(t, configured{store, cfg}, nil) // the same events, read without snapshots
	ctx := context.Background()
	id := newID()
	meta := eventstore.Metadata{CommandID: "cmd", CorrelationID: "corr", Now: time.Now().UTC()}

	// 10,000 events in commits of 1..100 events.
	var want counterState
	var version int64
	for n := 1; version < 10_000; n = n%100 + 1 {
		values := make([]int, min(n, 10_000-int(version)))
		for i := range values {
			values[i] = int(version) + i + 1
		}
		res, err := withSnaps.Handle(ctx, id, addCmd{Values: values}, meta)
		require.NoError(t, err)
		version = res.Version
		for _, v := range values {
			want = counterApply(want, added{N: v})
		}
	}
	require.Equal(t, int64(10_000), version)

	got, v, err := noSnaps.Load(ctx, id)
	require.NoError(t, err)
	require.Equal(t, int64(10_000), v)
	require.Equal(t, want, got)

	got, v, err = withSnaps.Load(ctx, id)
	require.NoError(t, err)
	require.Equal(t, int64(10_000), v)
	require.Equal(t, want, got)

	for _, at := range []int64{1, 6, 7, 8, 50, 4999, 9999} {
		a, va, err := withSnaps.StateAt(ctx, id, at)
		require.NoError(t, err)
		b, vb, err := noSnaps.StateAt(ctx, id, at)
		require.NoError(t, err)
		require.Equal(t, at, va)
		require.Equal(t, at, vb)
		require.Equal(t, b, a, "state at %d", at)
		require.Len(t, a.Adds, int(at))
	}
}

// The repository re-decides on conflict; every command lands once.
func testRepositoryRetries(t *testing.T, newStore NewStore) {
	repo := newRepo(t, newStore(t, nil), nil)
	ctx := context.Background()
	id := newID()
	var wg sync.WaitGroup
	var retries atomic.Int64
	for range 16 {
		wg.Go(func() {
			for range 10 {
				res, err := repo.Handle(ctx, id, addCmd{Values: []int{1}}, eventstore.Metadata{Now: time.Now()})
				require.NoError(t, err)
				retries.Add(int64(res.Retries))
			}
		})
	}
	wg.Wait()
	state, version, err := repo.Load(ctx, id)
	require.NoError(t, err)
	require.Equal(t, int64(160), version)
	require.Equal(t, 160, state.Total)
	t.Logf("%d retries", retries.Load())

	expected := int64(3)
	_, err = repo.Handle(ctx, id, addCmd{Values: []int{1}}, eventstore.Metadata{ExpectedVersion: &expected})
	var pre *eventstore.PreconditionError
	require.ErrorAs(t, err, &pre)
	require.Equal(t, int64(160), pre.Actual)

	res, err := repo.Handle(ctx, id, addCmd{Values: []int{0}}, eventstore.Metadata{})
	require.NoError(t, err, "a command deciding no events is a no-op")
	require.Empty(t, res.Events)
	require.Equal(t, int64(160), res.Version)
}

// A stored version 1 event is read through the upcasters as version 2.
func testUpcastingOnLoad(t *testing.T, newStore NewStore) {
	store := newStore(t, nil)
	ctx := context.Background()
	id := newID()
	_, err := store.Append(ctx, "counter", id, 0, []eventstore.Event{
		{EventID: newID(), Type: "Added", Version: 1, Data: []byte(`{"value":5}`)}, // v1 called it "value"
	})
	require.NoError(t, err)

	up := eventstore.NewUpcasters()
	up.SetCurrent("Added", 2)
	up.Register("Added", 1, func(data []byte) ([]byte, error) {
		// v1 {"value":N} → v2 {"n":N}
		return []byte(`{"n":` + string(data[len(`{"value":`):len(data)-1]) + `}`), nil
	})
	repo := newRepo(t, store, up)
	state, _, err := repo.Load(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 5, state.Total)

	// New events are written at version 2 and read without upcasting.
	_, err = repo.Handle(ctx, id, addCmd{Values: []int{3}}, eventstore.Metadata{})
	require.NoError(t, err)
	var versions []int32
	require.NoError(t, store.Events(ctx, id, 0, 0, func(e eventstore.Event) error { versions = append(versions, e.Version); return nil }))
	require.Equal(t, []int32{1, 2}, versions)

	// Without the upcaster the v1 event cannot be read.
	bare := eventstore.NewUpcasters()
	bare.SetCurrent("Added", 2)
	_, _, err = newRepo(t, store, bare).Load(ctx, id)
	require.ErrorIs(t, err, eventstore.ErrUnknownVersion)
}

// A retried command whose first attempt committed after all (its Paxos
// round left unfinished when the database died, so the retry's load did
// not see it, and the retry's own Append finished it) is answered with
// that commit: its effect is not applied twice, and a create is not
// refused as "already exists". Here the first attempt's commit lands
// between the retry's load and its Append.
func testRetryFindsItsOwnCommit(t *testing.T, newStore NewStore) {
	store := newStore(t, nil)
	ctx := context.Background()
	id := newID()
	meta := eventstore.Metadata{CommandID: "the-retried-command", CorrelationID: "corr", Now: time.Now().UTC()}

	earlier := sync.OnceFunc(func() {
		// the first attempt's events, committed under the same command id
		typ, data, err := counterCodec{}.EncodeEvent(added{N: 1})
		require.NoError(t, err)
		_, err = store.Append(ctx, counterAggregate.Type, id, 0, []eventstore.Event{{
			EventID: newID(), Type: typ, Version: 1, Data: data,
			CausationID: meta.CommandID, CorrelationID: meta.CorrelationID, OccurredAt: meta.Now,
		}})
		require.NoError(t, err)
	})
	agg := counterAggregate
	agg.Decide = func(s counterState, c addCmd) ([]added, error) {
		earlier()
		return counterDecide(s, c)
	}
	repo, err := eventstore.NewRepository(store, agg, counterCodec{}, eventstore.NewUpcasters(),
		eventstore.RepositoryConfig{MaxConflictRetries: 50}, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)

	res, err := repo.Handle(ctx, id, addCmd{Values: []int{1}}, meta)
	require.NoError(t, err)
	require.Equal(t, int64(1), res.Version, "answered with the earlier attempt's commit")
	require.Empty(t, res.Events, "nothing committed again")
	_, version, err := repo.Load(ctx, id)
	require.NoError(t, err)
	require.Equal(t, int64(1), version, "the command's effect is in the store once")

	// A different command is decided again on the fresh state and lands.
	res, err = repo.Handle(ctx, id, addCmd{Values: []int{2}}, eventstore.Metadata{CommandID: "another", Now: time.Now().UTC()})
	require.NoError(t, err)
	require.Equal(t, int64(2), res.Version)
}
