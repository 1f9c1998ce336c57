package repository_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/repository"
)

// countingStore counts the reads a repository makes of its store.
type countingStore struct {
	eventstore.RepositoryStore
	events, snapshots atomic.Int64
}

func (s *countingStore) Events(ctx context.Context, id gocql.UUID, after, upTo int64, fn func(eventstore.Event) error) error {
	s.events.Add(1)
	return s.RepositoryStore.Events(ctx, id, after, upTo, fn)
}

func (s *countingStore) LatestSnapshot(ctx context.Context, id gocql.UUID, maxVersion int64) (eventstore.Snapshot, bool, error) {
	s.snapshots.Add(1)
	return s.RepositoryStore.LatestSnapshot(ctx, id, maxVersion)
}

func (s *countingStore) reads() int64 { return s.events.Load() + s.snapshots.Load() }

// replica is one command-service process: its own repositories, with
// their own state caches, on the shared store.
type replica struct {
	store     *countingStore
	orders    *repository.Orders
	customers *repository.Customers
	reg       *prometheus.Registry
}

func newReplica(t *testing.T, mem *memstore.Store, store eventstore.RepositoryStore, cacheSize int) replica {
	t.Helper()
	up := eventcodec.NewUpcasters()
	rc := eventstore.RepositoryConfig{MaxConflictRetries: 3}
	r := replica{store: &countingStore{RepositoryStore: store}, reg: prometheus.NewRegistry()}
	r.orders = must(repository.NewOrders(r.store, up, rc, zerolog.Nop(), nil))
	r.customers = must(repository.NewCustomers(r.store, up, rc, zerolog.Nop(), nil))
	cfg := repository.DefaultCacheConfig()
	cfg.CacheSize = cacheSize
	require.NoError(t, cfg.Validate())
	require.NoError(t, repository.UseStateCaches(r.orders, r.customers, cfg, mem, r.reg))
	return r
}

func newMem(t *testing.T) *memstore.Store {
	t.Helper()
	cfg := eventstore.DefaultConfig()
	cfg.SnapshotEvery = 3
	return must(memstore.New(cfg))
}

func register(t *testing.T, repo *repository.Customers, id gocql.UUID) {
	t.Helper()
	_, err := repo.Handle(context.Background(), id, customer.RegisterCustomer{CustomerID: id.String(), Name: "Grace Hopper",
		Email: must(value.NewEmail("grace@example.org"))}, meta())
	require.NoError(t, err)
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// A command on an aggregate this process has just written decides on the
// cached state: no snapshot or event is read, and the state it reaches is
// the one a load from the store gives.
func TestStateCacheHit(t *testing.T) {
	ctx := context.Background()
	mem := newMem(t)
	r := newReplica(t, mem, mem, 100)
	id := gocql.UUID(uuid.New())
	register(t, r.customers, id)
	require.Zero(t, r.store.reads(), "a create presumes a new aggregate: its commit checks that it is")

	for i, name := range []string{"Grace B. Hopper", "Rear Admiral Hopper", "Amazing Grace", "G. Hopper"} {
		res, err := r.customers.Handle(ctx, id, customer.UpdateProfile{Name: name}, meta())
		require.NoError(t, err)
		require.Equal(t, int64(i+2), res.Version)
	}
	require.Zero(t, r.store.reads(), "the later commands read nothing")
	require.Equal(t, 4.0, counterValue(t, r.reg, "orderstream_event_store_state_cache_lookups_total", map[string]string{"aggregate_type": customer.AggregateType, "result": "hit"}))

	cached, version, err := r.customers.Current(ctx, id)
	require.NoError(t, err)
	fresh, freshVersion, err := newReplica(t, mem, mem, 0).customers.Load(ctx, id)
	require.NoError(t, err)
	require.Equal(t, fresh, cached)
	require.Equal(t, freshVersion, version)
	require.Equal(t, "G. Hopper", cached.Name)
}

// A state cached by one process is stale once another commits: the
// command loses the commit's version check, and is decided again on the
// stored state, not counted as a retry.
func TestStateCacheConflictReloads(t *testing.T) {
	ctx := context.Background()
	mem := newMem(t)
	a, b := newReplica(t, mem, mem, 100), newReplica(t, mem, mem, 100)
	id := gocql.UUID(uuid.New())
	register(t, a.customers, id)
	_, err := b.customers.Handle(ctx, id, customer.UpgradeTier{Tier: value.CustomerTierGold}, meta())
	require.NoError(t, err)

	res, err := a.customers.Handle(ctx, id, customer.UpdateProfile{Name: "Grace B. Hopper"}, meta())
	require.NoError(t, err)
	require.Equal(t, int64(3), res.Version)
	require.Zero(t, res.Retries, "a stale cached state is not a lost race")
	state, _, err := a.customers.Current(ctx, id)
	require.NoError(t, err)
	require.Equal(t, value.CustomerTierGold, state.Tier, "B's commit is in A's state")
	require.Equal(t, "Grace B. Hopper", state.Name)
	require.Equal(t, 1.0, counterValue(t, a.reg, "orderstream_event_store_state_cache_stale_total", map[string]string{"aggregate_type": customer.AggregateType}))
}

// A create on an aggregate the cache does not hold commits on the
// presumption that it is new; when it is not, the answer is the one a
// load would have given: the customer exists, or the id is an order's.
func TestStateCachePresumedNew(t *testing.T) {
	ctx := context.Background()
	mem := newMem(t)
	a, b := newReplica(t, mem, mem, 100), newReplica(t, mem, mem, 0)
	id := gocql.UUID(uuid.New())
	register(t, b.customers, id)
	cmd := customer.RegisterCustomer{CustomerID: id.String(), Name: "Grace Hopper", Email: must(value.NewEmail("grace@example.org"))}
	_, want := b.customers.Handle(ctx, id, cmd, meta())
	require.Error(t, want)
	_, err := a.customers.Handle(ctx, id, cmd, meta())
	require.Equal(t, want.Error(), err.Error())

	oid := gocql.UUID(uuid.New())
	_, err = b.orders.Handle(ctx, oid, order.CreateOrder{OrderID: oid.String(), CustomerID: id.String(), Items: items()}, meta())
	require.NoError(t, err)
	cmd.CustomerID = oid.String()
	_, want = b.customers.Handle(ctx, oid, cmd, meta())
	_, err = a.customers.Handle(ctx, oid, cmd, meta())
	require.IsType(t, want, err)
	require.Equal(t, want.Error(), err.Error())

	// A command that is not a create, on an aggregate the cache does not
	// hold, is decided on the stored state.
	res, err := a.customers.Handle(ctx, id, customer.UpdateProfile{Name: "G. Hopper"}, meta())
	require.NoError(t, err)
	require.Equal(t, int64(2), res.Version)
}

// Every answer a cached state would give without a commit, a refusal, a
// no-op or a failed If-Match, is decided again on the stored state.
func TestStateCacheAnswersOnlyThroughTheCommit(t *testing.T) {
	ctx := context.Background()
	mem := newMem(t)
	a, b := newReplica(t, mem, mem, 100), newReplica(t, mem, mem, 100)

	t.Run("refusal", func(t *testing.T) {
		id := gocql.UUID(uuid.New())
		register(t, a.customers, id)
		_, err := a.customers.Handle(ctx, id, customer.SuspendCustomer{Reason: "fraud check"}, meta())
		require.NoError(t, err)
		_, err = b.customers.Handle(ctx, id, customer.ReactivateCustomer{}, meta())
		require.NoError(t, err)
		// A's cache says suspended, which refuses a profile change.
		res, err := a.customers.Handle(ctx, id, customer.UpdateProfile{Name: "Grace B. Hopper"}, meta())
		require.NoError(t, err)
		require.Equal(t, int64(4), res.Version)
	})
	t.Run("no-op", func(t *testing.T) {
		id := gocql.UUID(uuid.New())
		register(t, a.customers, id)
		_, err := b.customers.Handle(ctx, id, customer.SuspendCustomer{Reason: "fraud check"}, meta())
		require.NoError(t, err)
		_, err = b.customers.Handle(ctx, id, customer.ReactivateCustomer{}, meta())
		require.NoError(t, err)
		_, err = b.customers.Handle(ctx, id, customer.SuspendCustomer{Reason: "again"}, meta())
		require.NoError(t, err)
		// A's cache says active at version 1, where reactivating does nothing.
		res, err := a.customers.Handle(ctx, id, customer.ReactivateCustomer{}, meta())
		require.NoError(t, err)
		require.Equal(t, int64(5), res.Version, "reactivated on the stored (suspended) state")
	})
	t.Run("If-Match", func(t *testing.T) {
		id := gocql.UUID(uuid.New())
		register(t, a.customers, id)
		_, err := b.customers.Handle(ctx, id, customer.UpdateProfile{Name: "G. Hopper"}, meta())
		require.NoError(t, err)
		m := meta()
		expected := int64(2)
		m.ExpectedVersion = &expected
		res, err := a.customers.Handle(ctx, id, customer.UpdateProfile{Name: "Grace B. Hopper"}, m)
		require.NoError(t, err, "the stored version is the one expected; A's cached one is not")
		require.Equal(t, int64(3), res.Version)
	})
}

// Current, for a decision outside the aggregate's commit (CanOrder),
// checks the cached version against the stored one: a change made by
// another process is seen at once, and a state this process holds at the
// stored version is used without loading.
func TestStateCacheCurrentChecksTheVersion(t *testing.T) {
	ctx := context.Background()
	mem := newMem(t)
	a, b := newReplica(t, mem, mem, 100), newReplica(t, mem, mem, 100)
	id := gocql.UUID(uuid.New())
	register(t, a.customers, id)

	reads := a.store.reads()
	state, _, err := a.customers.Current(ctx, id)
	require.NoError(t, err)
	require.Equal(t, value.CustomerStatusActive, state.Status)
	require.Equal(t, reads, a.store.reads(), "at the stored version: no load")

	_, err = b.customers.Handle(ctx, id, customer.SuspendCustomer{Reason: "fraud check"}, meta())
	require.NoError(t, err)
	state, version, err := a.customers.Current(ctx, id)
	require.NoError(t, err)
	require.Equal(t, value.CustomerStatusSuspended, state.Status)
	require.Equal(t, int64(2), version)

	// An order's id is no customer's: Current says what Load says.
	oid := gocql.UUID(uuid.New())
	_, err = a.orders.Handle(ctx, oid, order.CreateOrder{OrderID: oid.String(), CustomerID: id.String(), Items: items()}, meta())
	require.NoError(t, err)
	_, _, loadErr := a.customers.Load(ctx, oid)
	_, _, err = a.customers.Current(ctx, oid)
	require.Error(t, loadErr)
	require.Equal(t, loadErr, err)
}

// An order's opened delivery signature is never cached, before a forget
// or after; a forget drops the customer and the customer's orders from
// this process's caches; the customer is refused right after the forget,
// here and in a process whose cache still holds them.
func TestStateCacheForget(t *testing.T) {
	ctx := context.Background()
	w := newSealedWorld(t, 2)
	sealing := must(repository.NewSealing(w.mem, w.keys, eventcodec.NewUpcasters(), 100, zerolog.Nop()))
	a, b := newReplica(t, w.mem, sealing, 100), newReplica(t, w.mem, sealing, 100)
	ada, other := gocql.UUID(uuid.New()), gocql.UUID(uuid.New())
	registerAda(t, a.customers, ada)
	register(t, a.customers, other)
	_, _, err := b.customers.Current(ctx, ada) // B caches Ada, active
	require.NoError(t, err)
	shipped := func(customerID gocql.UUID) gocql.UUID {
		id := gocql.UUID(uuid.New())
		for _, cmd := range []order.Command{
			order.CreateOrder{OrderID: id.String(), CustomerID: customerID.String(), Items: items()},
			order.ConfirmOrder{}, order.ShipOrder{Carrier: "DHL", TrackingNumber: "1Z"},
		} {
			_, err := a.orders.Handle(ctx, id, cmd, meta())
			require.NoError(t, err)
		}
		return id
	}
	open, kept := shipped(ada), shipped(other)
	delivered, err := deliveredOrder(t, a.orders, ada, "Ada L. signed")
	require.NoError(t, err)
	require.Equal(t, 2, a.orders.StateCache().Len(), "the delivered order, with its opened signature, is not cached")
	o, _, err := a.orders.Current(ctx, delivered)
	require.NoError(t, err)
	require.Equal(t, "Ada L. signed", o.Signature)
	require.Equal(t, 2, a.orders.StateCache().Len(), "nor is it once loaded")

	_, err = a.customers.Handle(ctx, ada, customer.ForgetCustomer{}, meta())
	require.NoError(t, err)
	require.NoError(t, w.keys.Forget(ctx, ada.String()))
	repository.ForgetCustomer(a.orders, a.customers, ada)
	require.Equal(t, 1, a.orders.StateCache().Len(), "only the other customer's order is left")
	require.Equal(t, 1, a.customers.StateCache().Len(), "only the other customer is left")

	reads := a.store.reads()
	o, _, err = a.orders.Current(ctx, delivered)
	require.NoError(t, err)
	require.Equal(t, personal.Redacted, o.Signature)
	require.Greater(t, a.store.reads(), reads, "loaded from the store")
	require.Equal(t, 2, a.orders.StateCache().Len(), "a redacted signature may be cached")
	// Delivered after the forget: stored redacted, and the opened
	// signature the command carried is not cached.
	_, err = a.orders.Handle(ctx, open, order.DeliverOrder{Signature: "Ada L. signed again"}, meta())
	require.NoError(t, err)
	require.Equal(t, 2, a.orders.StateCache().Len())
	reads = a.store.reads()
	o, _, err = a.orders.Current(ctx, open)
	require.NoError(t, err)
	require.Equal(t, personal.Redacted, o.Signature)
	require.Greater(t, a.store.reads(), reads, "loaded from the store")
	o, _, err = a.orders.Current(ctx, kept)
	require.NoError(t, err)
	require.Equal(t, value.OrderStatusShipped, o.Status)

	for name, r := range map[string]replica{"the forgetting process": a, "another process": b} {
		state, _, err := r.customers.Current(ctx, ada)
		require.NoError(t, err, name)
		require.True(t, state.Forgotten, name)
		require.Empty(t, state.Name, name)
	}
}
