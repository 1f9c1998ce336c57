package readmodeltest

import (
	"context"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
	"github.com/orderstream/orderstream/pkg/loadgen"
)

// The rows the checker expects come from the event store alone: one per
// aggregate and view, at the aggregate's version; an event that cannot be
// read stops its aggregate's history there and is reported, not
// mismatched. Here on the in-memory event store, without a database.
func TestExpectedRowsFollowTheEventStore(t *testing.T) {
	ctx := context.Background()
	store, err := memstore.New(eventstore.DefaultConfig())
	require.NoError(t, err)
	rc := eventstore.RepositoryConfig{MaxConflictRetries: 10}
	orders, err := eventstore.NewRepository(store, eventstore.Aggregate[order.State, order.Command, order.Event]{Type: order.AggregateType, Decide: order.Decide, Apply: order.Apply},
		eventcodec.OrderCodec{}, eventcodec.NewUpcasters(), rc, zerolog.Nop(), nil)
	require.NoError(t, err)
	customers, err := eventstore.NewRepository(store, eventstore.Aggregate[customer.State, customer.Command, customer.Event]{Type: customer.AggregateType, Decide: customer.Decide, Apply: customer.Apply},
		eventcodec.CustomerCodec{}, eventcodec.NewUpcasters(), rc, zerolog.Nop(), nil)
	require.NoError(t, err)
	_, err = loadgen.Run(ctx, loadgen.Config{Commands: 300, Aggregates: 40, Workers: 4, Seed: 17}, orders, customers)
	require.NoError(t, err)

	heads := map[string]eventstore.Head{}
	var nOrders, nCustomers int
	require.NoError(t, store.Heads(ctx, func(h eventstore.Head) error {
		heads[h.AggregateID.String()] = h
		switch h.AggregateType {
		case order.AggregateType:
			nOrders++
		case customer.AggregateType:
			nCustomers++
		}
		return nil
	}))
	require.Positive(t, nOrders)
	require.Positive(t, nCustomers)

	exp, rep, err := expectedRows(ctx, store, true, true)
	require.NoError(t, err)
	require.Equal(t, len(heads), rep.Aggregates)
	require.Empty(t, rep.Unreadable)
	require.Len(t, exp.orders, nOrders)
	require.Len(t, exp.byCustomer, nOrders)
	require.Len(t, exp.byStatus, nOrders)
	require.Len(t, exp.customers, nCustomers)
	for key, row := range exp.orders {
		require.Equal(t, heads[key].Current, row.Version, "order %s", key)
	}
	for key, row := range exp.customers {
		require.Equal(t, heads[key].Current, row.Version, "customer %s", key)
	}

	// Only the orders, when only order tables are checked.
	exp, _, err = expectedRows(ctx, store, true, false)
	require.NoError(t, err)
	require.Len(t, exp.orders, nOrders)
	require.Empty(t, exp.customers)

	// An order whose second event cannot be decoded: its rows stop at the
	// first event, and the checker says so.
	var broken eventstore.Head
	for _, h := range heads {
		if h.AggregateType == order.AggregateType && h.Current >= 2 {
			broken = h
			break
		}
	}
	require.NotZero(t, broken.Current, "an order with two events")
	require.True(t, store.ReplaceEventData(broken.AggregateID, 2, []byte(`{"not json`)))
	exp, rep, err = expectedRows(ctx, store, true, true)
	require.NoError(t, err)
	require.Len(t, rep.Unreadable, 1)
	require.Contains(t, rep.Unreadable[0], broken.AggregateID.String()+": event 2")
	require.Equal(t, int64(1), exp.orders[broken.AggregateID.String()].Version)
}
