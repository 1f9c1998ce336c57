package repository_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	customerv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/customer/v1"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func setup(t *testing.T, snapshotEvery int) (*eventstore.Store, *repository.Orders, *repository.Customers) {
	t.Helper()
	cfg := eventstore.DefaultConfig()
	cfg.SnapshotEvery = snapshotEvery
	store, err := eventstore.New(stacktest.Session(t), cfg, prometheus.NewRegistry())
	require.NoError(t, err)
	up := eventcodec.NewUpcasters()
	rc := eventstore.RepositoryConfig{MaxConflictRetries: 20}
	orders, err := repository.NewOrders(store, up, rc, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	customers, err := repository.NewCustomers(store, up, rc, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	return store, orders, customers
}

func meta() eventstore.Metadata {
	return eventstore.Metadata{CommandID: uuid.NewString(), CorrelationID: "it", Now: time.Now().UTC().Truncate(time.Millisecond),
		TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
}

func items() []value.OrderItem {
	eur := must(value.NewCurrency("EUR"))
	return []value.OrderItem{must(value.NewOrderItem("sku-1", 2, must(value.NewMoney(1999, eur))))}
}

func TestOrderLifecycleThroughTheStore(t *testing.T) {
	store, orders, _ := setup(t, 3)
	ctx := context.Background()
	id := uuid.NewString()
	oid := gocql.UUID(uuid.MustParse(id))
	cust := uuid.NewString()

	cmds := []order.Command{
		order.CreateOrder{OrderID: id, CustomerID: cust, Items: items()},
		order.ConfirmOrder{},
		order.ShipOrder{Carrier: "DHL", TrackingNumber: "JD0146"},
		order.DeliverOrder{Signature: "A. Lovelace"},
	}
	var all []order.Event
	for i, c := range cmds {
		m := meta()
		res, err := orders.Handle(ctx, oid, c, m)
		require.NoError(t, err, "command %d", i)
		require.Equal(t, int64(i+1), res.Version)
		all = append(all, res.Events...)
	}
	state, version, err := orders.Load(ctx, oid)
	require.NoError(t, err)
	require.Equal(t, int64(4), version)
	require.Equal(t, order.Fold(all), state)
	require.Equal(t, value.OrderStatusDelivered, state.Status)

	// A rejected command commits nothing and keeps its typed error.
	_, err = orders.Handle(ctx, oid, order.CancelOrder{Reason: "late", CancelledBy: "ops"}, meta())
	var conflict *domain.ConflictError
	require.ErrorAs(t, err, &conflict)
	v, _, err := store.Version(ctx, oid)
	require.NoError(t, err)
	require.Equal(t, int64(4), v)

	// Envelope metadata is stored with every event.
	var seqs []int64
	require.NoError(t, store.Events(ctx, oid, 0, 0, func(e eventstore.Event) error {
		seqs = append(seqs, e.Sequence)
		require.Equal(t, "order", e.AggregateType)
		require.Equal(t, "it", e.CorrelationID)
		require.NotEmpty(t, e.CausationID)
		require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", e.TraceContext["traceparent"])
		require.False(t, e.OccurredAt.IsZero())
		return nil
	}))
	require.Equal(t, []int64{1, 2, 3, 4}, seqs)

	// The state at every past version equals a fold of the first N events.
	for n := 1; n <= 4; n++ {
		s, v, err := orders.StateAt(ctx, oid, int64(n))
		require.NoError(t, err)
		require.Equal(t, int64(n), v)
		require.Equal(t, order.Fold(all[:n]), s)
	}

	// Commands on an unknown order are not found; an order id cannot be
	// reused as a customer.
	_, err = orders.Handle(ctx, gocql.UUID(uuid.New()), order.ConfirmOrder{}, meta())
	var nf *domain.NotFoundError
	require.ErrorAs(t, err, &nf)
}

// A version 1 CustomerRegistered stored long ago is read as version 2.
func TestStoredV1CustomerRegisteredLoadsAsV2(t *testing.T) {
	store, _, customers := setup(t, 0)
	ctx := context.Background()
	id := uuid.New()
	v1, err := protojson.Marshal(&customerv1.CustomerRegisteredV1{CustomerId: id.String(), FullName: "Grace Hopper", Email: "grace@example.org"})
	require.NoError(t, err)
	_, err = store.Append(ctx, customer.AggregateType, gocql.UUID(id), 0, []eventstore.Event{{
		EventID: gocql.UUID(uuid.New()), Type: customer.EventCustomerRegistered, Version: 1, Data: v1, OccurredAt: time.Now(),
	}})
	require.NoError(t, err)

	state, version, err := customers.Load(ctx, gocql.UUID(id))
	require.NoError(t, err)
	require.Equal(t, int64(1), version)
	require.Equal(t, "Grace Hopper", state.Name)
	require.Equal(t, "grace@example.org", state.Email.String())
	require.Equal(t, value.CustomerTierBronze, state.Tier)
	require.Equal(t, value.CustomerStatusActive, state.Status)

	// The customer lives on: new events are written at their current version.
	_, err = customers.Handle(ctx, gocql.UUID(id), customer.UpgradeTier{Tier: value.CustomerTierGold}, meta())
	require.NoError(t, err)
	state, _, err = customers.Load(ctx, gocql.UUID(id))
	require.NoError(t, err)
	require.Equal(t, value.CustomerTierGold, state.Tier)
}

// Confirm, ship, deliver and cancel race on the same orders: every commit
// is valid against the state it was decided on, so no order ends both
// delivered and cancelled and every stream is contiguous.
func TestRacingLifecycleCommandsStayValid(t *testing.T) {
	store, orders, _ := setup(t, 5)
	ctx := context.Background()
	ids := make([]gocql.UUID, 10)
	for i := range ids {
		ids[i] = gocql.UUID(uuid.New())
		_, err := orders.Handle(ctx, ids[i], order.CreateOrder{OrderID: ids[i].String(), CustomerID: uuid.NewString(), Items: items()}, meta())
		require.NoError(t, err)
	}
	cmds := []order.Command{order.ConfirmOrder{}, order.ShipOrder{Carrier: "UPS", TrackingNumber: "1Z"}, order.DeliverOrder{}, order.CancelOrder{Reason: "race", CancelledBy: "test"}}
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := range 20 {
				_, err := orders.Handle(ctx, ids[(w+i)%len(ids)], cmds[(w*7+i)%len(cmds)], meta())
				var c *domain.ConflictError
				var r *domain.RuleError
				if err != nil && !errors.As(err, &c) && !errors.As(err, &r) && !errors.Is(err, eventstore.ErrConflict) {
					require.NoError(t, err)
				}
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		var events []order.Event
		var seq int64
		require.NoError(t, store.Events(ctx, id, 0, 0, func(e eventstore.Event) error {
			seq++
			require.Equal(t, seq, e.Sequence)
			ev, err := orders.Decode(e)
			require.NoError(t, err)
			events = append(events, ev)
			return nil
		}))
		delivered, cancelled := false, false
		for _, e := range events {
			switch e.(type) {
			case order.OrderDelivered:
				delivered = true
			case order.OrderCancelled:
				cancelled = true
			}
		}
		require.False(t, delivered && cancelled, "order %s both delivered and cancelled", id)
		state, _, err := orders.Load(ctx, id)
		require.NoError(t, err)
		require.Equal(t, order.Fold(events), state)
	}
}
