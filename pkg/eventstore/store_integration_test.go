package eventstore_test

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
	"github.com/orderstream/orderstream/pkg/stacktest"
)

func newStore(t *testing.T, s *gocql.Session, mutate func(*eventstore.Config)) *eventstore.Store {
	t.Helper()
	cfg := eventstore.DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	store, err := eventstore.New(s, cfg, prometheus.NewRegistry())
	require.NoError(t, err)
	return store
}

func newID() gocql.UUID { return gocql.UUID(uuid.New()) }

func oneEvent() []eventstore.Event {
	return []eventstore.Event{{EventID: newID(), Type: "Added", Version: 1, Data: []byte(`{"n":1}`), OccurredAt: time.Now().UTC()}}
}

type streamCheck struct {
	seqs     []int64
	eventIDs map[gocql.UUID]bool
}

func readStream(t *testing.T, store *eventstore.Store, id gocql.UUID) streamCheck {
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

// 32 goroutines race 500 commits against ONE aggregate: each commit either
// succeeds or reports a conflict with the actual version; the stream ends
// 1..N with N the number of successes, and every event id is unique.
func TestConcurrentCommitsOnOneAggregate(t *testing.T) {
	store := newStore(t, stacktest.Session(t), nil)
	ctx := context.Background()
	id := newID()
	const workers, total = 32, 500

	var (
		issued, committed, conflicts atomic.Int64
		wg                           sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for issued.Add(1) <= total {
				version, _, err := store.Version(ctx, id)
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
func TestConcurrentCommitsAcrossAggregates(t *testing.T) {
	store := newStore(t, stacktest.Session(t), nil)
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

// A multi-event commit is all or nothing: the server rejects the batch for
// one bad row (invalid UTF-8 in a text column) and none of its events nor
// the version bump is visible; a conflicting batch is likewise invisible.
func TestMultiEventCommitIsAllOrNothing(t *testing.T) {
	store := newStore(t, stacktest.Session(t), nil)
	ctx := context.Background()
	id := newID()
	_, err := store.Append(ctx, "counter", id, 0, oneEvent())
	require.NoError(t, err)

	batch := make([]eventstore.Event, 10)
	for i := range batch {
		batch[i] = oneEvent()[0]
	}
	batch[6].Data = []byte{'{', 0xff, 0xfe, '}'} // not UTF-8: the server refuses the row
	_, err = store.Append(ctx, "counter", id, 1, batch)
	require.Error(t, err)
	require.NotErrorIs(t, err, eventstore.ErrConflict)

	version, _, err := store.Version(ctx, id)
	require.NoError(t, err)
	require.Equal(t, int64(1), version, "the version did not move")
	requireContiguous(t, readStream(t, store, id).seqs, 1)

	// A stale expected version: nothing of the 10 events lands either.
	for i := range batch {
		batch[i] = oneEvent()[0]
	}
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

func TestIDReusedAcrossAggregateTypesIsRefused(t *testing.T) {
	store := newStore(t, stacktest.Session(t), nil)
	ctx := context.Background()
	id := newID()
	_, err := store.Append(ctx, "order", id, 0, oneEvent())
	require.NoError(t, err)
	_, err = store.Append(ctx, "customer", id, 1, oneEvent())
	var conflict *eventstore.ConflictError
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, "order", conflict.ActualType)
}

func newRepo(t *testing.T, store *eventstore.Store, up *eventstore.Upcasters) *eventstore.Repository[counterState, addCmd, added] {
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
// past version; an aggregate of 10,000 events loads page by page.
func TestSnapshotsAndPaging(t *testing.T) {
	c := stacktest.RequireCQL(t)
	stacktest.Migrate(t, c, c.Keyspace)
	var pages atomic.Int64
	cluster := c.ClusterConfig(c.Keyspace)
	cluster.QueryObserver = pageCounter{&pages}
	session, err := cluster.CreateSession()
	require.NoError(t, err)
	t.Cleanup(session.Close)

	withSnaps := newRepo(t, newStore(t, session, func(c *eventstore.Config) { c.SnapshotEvery = 7; c.PageSize = 100 }), nil)
	noSnaps := newRepo(t, newStore(t, session, func(c *eventstore.Config) { c.SnapshotEvery = 0; c.PageSize = 100 }), nil)
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

	pages.Store(0)
	got, v, err := noSnaps.Load(ctx, id)
	require.NoError(t, err)
	require.Equal(t, int64(10_000), v)
	require.Equal(t, want, got)
	require.GreaterOrEqual(t, pages.Load(), int64(100), "10,000 events at 100 a page take at least 100 page fetches")

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

type pageCounter struct{ n *atomic.Int64 }

func (p pageCounter) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	if len(q.Statement) > 6 && q.Statement[:6] == "SELECT" && q.Rows > 0 {
		p.n.Add(1)
	}
}

// The repository re-decides on conflict; every command lands once.
func TestRepositoryRetriesConflicts(t *testing.T) {
	repo := newRepo(t, newStore(t, stacktest.Session(t), nil), nil)
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
func TestUpcastingOnLoad(t *testing.T) {
	store := newStore(t, stacktest.Session(t), nil)
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
func TestRetryFindsItsOwnUnseenCommit(t *testing.T) {
	session := stacktest.Session(t)
	store := newStore(t, session, nil)
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
}
