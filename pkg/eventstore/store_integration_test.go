package eventstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/eventstoretest"
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

// The CQL store keeps the event store's contract (eventstoretest.Suite),
// in a keyspace of its own so that the suite's counts are its own.
func TestContract(t *testing.T) {
	session, _ := stacktest.PrivateKeyspace(t, "es_contract_")
	eventstoretest.Suite(t, func(t *testing.T, mutate func(*eventstore.Config)) eventstoretest.Store {
		return newStore(t, session, mutate)
	})
}

// An aggregate of 10,000 events is read page by page (page_size rows a
// fetch), in order and complete.
func TestEventsArePaged(t *testing.T) {
	c := stacktest.RequireCQL(t)
	stacktest.Migrate(t, c, c.Keyspace)
	var pages atomic.Int64
	cluster := c.ClusterConfig(c.Keyspace)
	cluster.QueryObserver = pageCounter{&pages}
	session, err := cluster.CreateSession()
	require.NoError(t, err)
	t.Cleanup(session.Close)

	store := newStore(t, session, func(c *eventstore.Config) { c.PageSize = 100 })
	ctx := context.Background()
	id := newID()
	var version int64
	for version < 10_000 {
		batch := make([]eventstore.Event, 100)
		for i := range batch {
			batch[i] = eventstore.Event{EventID: newID(), Type: "Added", Version: 1, Data: []byte(`{"n":1}`), OccurredAt: time.Now().UTC()}
		}
		version, err = store.Append(ctx, "counter", id, version, batch)
		require.NoError(t, err)
	}

	pages.Store(0)
	var next int64 = 1
	require.NoError(t, store.Events(ctx, id, 0, 0, func(e eventstore.Event) error {
		require.Equal(t, next, e.Sequence)
		next++
		return nil
	}))
	require.Equal(t, int64(10_001), next)
	require.GreaterOrEqual(t, pages.Load(), int64(100), "10,000 events at 100 a page take at least 100 page fetches")
}

type pageCounter struct{ n *atomic.Int64 }

func (p pageCounter) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	if len(q.Statement) > 6 && q.Statement[:6] == "SELECT" && q.Rows > 0 {
		p.n.Add(1)
	}
}
