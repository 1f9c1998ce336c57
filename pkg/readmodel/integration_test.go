package readmodel_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/readmodel/readmodeltest"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// projection stands in for the projector machinery: per aggregate it keeps
// the state as JSON with the applied sequence, and applies new events from
// the event store a few at a time, each Write in a batch of its own,
// unlogged unless the Write asks for a logged one (a row that moves), as
// projector.Checkpoints writes them.
type projection[S any] struct {
	view        projector.View[S]
	checkpoints map[gocql.UUID]checkpoint
}

type checkpoint struct {
	state []byte
	seq   int64
}

func newProjection[S any](v projector.View[S]) *projection[S] {
	return &projection[S]{view: v, checkpoints: map[gocql.UUID]checkpoint{}}
}

// catchUp applies every event after the checkpoint of each aggregate,
// folding 1, 2, 3, 1, … events per Write.
func (p *projection[S]) catchUp(ctx context.Context, t *testing.T, session *gocql.Session, store *eventstore.Store, ids ...gocql.UUID) {
	t.Helper()
	up := eventcodec.NewUpcasters()
	for _, id := range ids {
		cp, existed := p.checkpoints[id]
		var events []eventstore.Event
		require.NoError(t, store.Events(ctx, id, cp.seq, 0, func(e eventstore.Event) error {
			e, err := up.Upcast(e)
			events = append(events, e)
			return err
		}))
		for i, chunk := 0, 1; i < len(events); i, chunk = i+chunk, chunk%3+1 {
			var old S
			if existed {
				require.NoError(t, json.Unmarshal(cp.state, &old))
			}
			s := old
			end := min(i+chunk, len(events))
			for _, e := range events[i:end] {
				var err error
				s, err = p.view.Fold(s, e)
				require.NoError(t, err)
			}
			seq := events[end-1].Sequence
			b := session.Batch(gocql.UnloggedBatch).WithContext(ctx)
			require.NoError(t, p.view.Write(b, id, old, existed, s, seq))
			if len(b.Entries) > 0 {
				require.NoError(t, session.ExecuteBatch(b))
			}
			state, err := json.Marshal(s)
			require.NoError(t, err)
			cp, existed = checkpoint{state: state, seq: seq}, true
			p.checkpoints[id] = cp
		}
	}
}

// The four views, fed the events of orders and customers committed
// through the repositories in two rounds, produce exactly the rows the
// checker expects, and the readers return them; a corrupted row is
// reported.
func TestViewsAgainstCassandra(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	session, _ := stacktest.PrivateKeyspace(t, "rm_")
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	cfg := eventstore.RepositoryConfig{MaxConflictRetries: 3}
	orders, err := repository.NewOrders(store, eventcodec.NewUpcasters(), cfg, zerolog.Nop(), nil)
	require.NoError(t, err)
	customers, err := repository.NewCustomers(store, eventcodec.NewUpcasters(), cfg, zerolog.Nop(), nil)
	require.NoError(t, err)

	// Each command happens one second after the previous, so that
	// created_at orders the rows.
	clock := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tick := func() eventstore.Metadata {
		clock = clock.Add(time.Second + 123*time.Microsecond)
		return eventstore.Metadata{CommandID: gocql.MustRandomUUID().String(), Now: clock}
	}
	doOrder := func(id gocql.UUID, cmds ...order.Command) {
		t.Helper()
		for _, cmd := range cmds {
			_, err := orders.Handle(ctx, id, cmd, tick())
			require.NoError(t, err)
		}
	}
	doCustomer := func(id gocql.UUID, cmds ...customer.Command) {
		t.Helper()
		for _, cmd := range cmds {
			_, err := customers.Handle(ctx, id, cmd, tick())
			require.NoError(t, err)
		}
	}
	createOrder := func(id, cust gocql.UUID) order.Command {
		return order.CreateOrder{OrderID: id.String(), CustomerID: cust.String(), Items: []value.OrderItem{item(t, "sku-1", 2, 1250, "EUR")}}
	}

	ann, bob := gocql.MustRandomUUID(), gocql.MustRandomUUID()
	home, work := gocql.MustRandomUUID(), gocql.MustRandomUUID()
	o1, o2, o3, o4 := gocql.MustRandomUUID(), gocql.MustRandomUUID(), gocql.MustRandomUUID(), gocql.MustRandomUUID()
	orderIDs, customerIDs := []gocql.UUID{o1, o2, o3, o4}, []gocql.UUID{ann, bob}

	// Round one.
	doCustomer(ann, customer.RegisterCustomer{CustomerID: ann.String(), Name: "Ann Lee", Email: email(t, "ann@example.com")},
		customer.AddAddress{AddressID: home.String(), Address: address(t, "home", "1 Main St", "Berlin")},
		customer.AddAddress{AddressID: work.String(), Address: address(t, "work", "2 Work St", "Berlin")})
	doCustomer(bob, customer.RegisterCustomer{CustomerID: bob.String(), Name: "Bob Roe", Email: email(t, "bob@example.com"), Phone: phone(t, "+491701234567")})
	doOrder(o1, createOrder(o1, ann), order.UpdateItems{Items: []value.OrderItem{item(t, "sku-2", 1, 999, "EUR"), item(t, "sku-3", 3, 100, "EUR")}})
	doOrder(o2, createOrder(o2, ann), order.ConfirmOrder{})
	doOrder(o3, createOrder(o3, bob))
	doOrder(o4, createOrder(o4, ann))

	views := []interface {
		catchUp(context.Context, *testing.T, *gocql.Session, *eventstore.Store, ...gocql.UUID)
	}{
		newProjection(readmodel.OrderReadModel()), newProjection(readmodel.OrdersByCustomer()), newProjection(readmodel.OrdersByStatus()),
	}
	customerView := newProjection(readmodel.CustomerReadModel())
	project := func() {
		t.Helper()
		for _, v := range views {
			v.catchUp(ctx, t, session, store, orderIDs...)
		}
		customerView.catchUp(ctx, t, session, store, customerIDs...)
		rep, err := readmodeltest.Check(ctx, session, store)
		require.NoError(t, err)
		require.True(t, rep.OK(), rep.String())
		require.Empty(t, rep.Unreadable)
		require.Equal(t, 6, rep.Aggregates)
	}
	project()

	// Round two: status changes move rows between partitions, addresses
	// change, an order is cancelled.
	doOrder(o1, order.ConfirmOrder{}, order.ShipOrder{Carrier: "DHL", TrackingNumber: "T1"}, order.DeliverOrder{Signature: "A.L."})
	doOrder(o2, order.CancelOrder{Reason: "changed mind", CancelledBy: "customer"})
	doOrder(o3, order.ConfirmOrder{})
	doCustomer(ann, customer.UpdateAddress{AddressID: home.String(), Address: address(t, "home", "3 New St", "Hamburg")},
		customer.RemoveAddress{AddressID: work.String()}, customer.UpgradeTier{Tier: value.CustomerTierGold})
	doCustomer(bob, customer.ChangePhone{}, customer.SuspendCustomer{Reason: "fraud check"})
	project()

	rep, err := readmodeltest.Check(ctx, session, store)
	require.NoError(t, err)
	require.Equal(t, readmodeltest.TableCounts{Expected: 4, Actual: 4}, rep.Tables[readmodel.OrdersByStatusTable])
	require.Equal(t, readmodeltest.TableCounts{Expected: 2, Actual: 2}, rep.Tables[readmodel.CustomerReadModelTable])

	t.Run("readers", func(t *testing.T) {
		r, ok, err := readmodel.ReadOrder(ctx, session, o2)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, o2, r.OrderID)
		require.Equal(t, ann, r.CustomerID)
		require.Equal(t, "CANCELLED", r.Status)
		require.Equal(t, int64(3), r.Version)
		require.True(t, r.IsDeleted)
		require.Equal(t, r.UpdatedAt, r.DeletedAt)
		require.Equal(t, []readmodel.OrderItemRow{{ProductID: "sku-1", Quantity: 2, UnitPriceMinor: 1250, Currency: "EUR"}}, r.Items)
		require.Equal(t, "changed mind", r.CancelReason)
		require.Equal(t, "customer", r.CancelledBy)
		require.Equal(t, 2, r.ItemCount)
		require.Equal(t, map[string]int64{"EUR": 2500}, r.Totals)
		require.Empty(t, r.Carrier)
		require.True(t, r.ShippedAt.IsZero())

		r, ok, err = readmodel.ReadOrder(ctx, session, o1)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "DELIVERED", r.Status)
		require.False(t, r.IsDeleted)
		require.True(t, r.DeletedAt.IsZero())
		require.Len(t, r.Items, 2)
		require.Equal(t, r.CreatedAt, readmodel.Millis(r.CreatedAt), "timestamps come back at millisecond precision, in UTC")
		require.Equal(t, "DHL", r.Carrier)
		require.Equal(t, "T1", r.TrackingNumber)
		require.Equal(t, "A.L.", r.DeliverySignature)
		require.False(t, r.ShippedAt.IsZero())
		require.True(t, r.DeliveredAt.After(r.ShippedAt))
		require.Equal(t, r.UpdatedAt, r.DeliveredAt)
		require.Empty(t, r.CancelReason)
		require.Equal(t, 4, r.ItemCount)
		require.Equal(t, map[string]int64{"EUR": 999 + 300}, r.Totals)

		_, ok, err = readmodel.ReadOrder(ctx, session, gocql.MustRandomUUID())
		require.NoError(t, err)
		require.False(t, ok)

		annOrders, err := readmodel.OrdersOfCustomer(ctx, session, ann)
		require.NoError(t, err)
		require.Equal(t, []gocql.UUID{o4, o2, o1}, orderIDsOf(annOrders), "newest first")
		require.Equal(t, "CANCELLED", annOrders[1].Status)
		require.Equal(t, 4, annOrders[2].ItemCount)
		require.Equal(t, map[string]int64{"EUR": 1299}, annOrders[2].Totals)
		require.Equal(t, r.UpdatedAt, annOrders[2].UpdatedAt)
		page, token, err := readmodel.OrdersOfCustomerPage(ctx, session, ann, readmodel.Created{}, 2, nil)
		require.NoError(t, err)
		require.Equal(t, annOrders[:2], page)
		require.NotEmpty(t, token)
		page, token, err = readmodel.OrdersOfCustomerPage(ctx, session, ann, readmodel.Created{}, 2, token)
		require.NoError(t, err)
		require.Equal(t, annOrders[2:], page)
		require.Empty(t, token)
		// Within a range of creation times, both bounds exclusive.
		newest, oldest := annOrders[0].CreatedAt, annOrders[len(annOrders)-1].CreatedAt
		var between []readmodel.CustomerOrderRow
		for _, o := range annOrders {
			if o.CreatedAt.After(oldest) && o.CreatedAt.Before(newest) {
				between = append(between, o)
			}
		}
		page, token, err = readmodel.OrdersOfCustomerPage(ctx, session, ann, readmodel.Created{After: oldest, Before: newest}, 10, nil)
		require.NoError(t, err)
		require.Equal(t, between, page)
		require.Empty(t, token)

		for status, want := range map[value.OrderStatus][]gocql.UUID{
			value.OrderStatusCreated: {o4}, value.OrderStatusConfirmed: {o3}, value.OrderStatusShipped: nil,
			value.OrderStatusDelivered: {o1}, value.OrderStatusCancelled: {o2},
		} {
			rows, err := readmodel.OrdersWithStatus(ctx, session, status)
			require.NoError(t, err)
			var ids []gocql.UUID
			for _, r := range rows {
				require.Equal(t, status.String(), r.Status)
				ids = append(ids, r.OrderID)
			}
			require.Equal(t, want, ids, status.String())
		}
		rows, next, err := readmodel.OrdersWithStatusPage(ctx, session, value.OrderStatusCreated, readmodel.Created{}, 10, nil)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		require.Equal(t, o4, rows[0].OrderID)
		require.Equal(t, ann, rows[0].CustomerID)
		require.Equal(t, 2, rows[0].ItemCount)
		require.Equal(t, map[string]int64{"EUR": 2500}, rows[0].Totals)
		require.Equal(t, rows[0].CreatedAt, rows[0].UpdatedAt)
		require.Empty(t, next)
		rows, _, err = readmodel.OrdersWithStatusPage(ctx, session, value.OrderStatusCreated, readmodel.Created{After: rows[0].CreatedAt}, 10, nil)
		require.NoError(t, err)
		require.Empty(t, rows, "created_after is exclusive")

		cr, ok, err := readmodel.ReadCustomer(ctx, session, ann)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "Ann Lee", cr.Name)
		require.Equal(t, "ann@example.com", cr.Email)
		require.Empty(t, cr.Phone)
		require.Equal(t, "GOLD", cr.Tier)
		require.Equal(t, "ACTIVE", cr.Status)
		require.Equal(t, int64(6), cr.Version)
		require.Equal(t, map[gocql.UUID]readmodel.AddressRow{
			home: {Label: "home", Line1: "3 New St", City: "Hamburg", PostalCode: "10115", Country: "DE"},
		}, cr.Addresses)

		cr, ok, err = readmodel.ReadCustomer(ctx, session, bob)
		require.NoError(t, err)
		require.True(t, ok)
		require.Empty(t, cr.Phone, "a removed phone is null")
		require.Nil(t, cr.Addresses)
		require.Equal(t, "SUSPENDED", cr.Status)

		_, ok, err = readmodel.ReadCustomer(ctx, session, gocql.MustRandomUUID())
		require.NoError(t, err)
		require.False(t, ok)
	})

	t.Run("the checker reports corruption", func(t *testing.T) {
		o3Row, _, err := readmodel.ReadOrder(ctx, session, o3)
		require.NoError(t, err)
		// o3 left behind in the CREATED partition, o1 with a wrong status,
		// bob's row gone, ann's address changed, o4 listed with a wrong
		// item count.
		require.NoError(t, session.Query(`INSERT INTO orders_by_status (status, created_at, order_id, customer_id, version) VALUES ('CREATED', ?, ?, ?, 1)`,
			o3Row.CreatedAt, o3, bob).Exec())
		require.NoError(t, session.Query(`UPDATE order_read_model SET status = 'SHIPPED' WHERE order_id = ?`, o1).Exec())
		require.NoError(t, session.Query(`DELETE FROM customer_read_model WHERE customer_id = ?`, bob).Exec())
		o4Row, _, err := readmodel.ReadOrder(ctx, session, o4)
		require.NoError(t, err)
		require.NoError(t, session.Query(`UPDATE orders_by_customer SET item_count = 99 WHERE customer_id = ? AND created_at = ? AND order_id = ?`,
			ann, o4Row.CreatedAt, o4).Exec())
		require.NoError(t, session.Query(`UPDATE customer_read_model SET addresses[?] = {label: 'home', line1: '1 Main St', city: 'Berlin', postal_code: '10115', country: 'DE'} WHERE customer_id = ?`, home, ann).Exec())

		rep, err := readmodeltest.Check(ctx, session, store)
		require.NoError(t, err)
		require.False(t, rep.OK())
		require.Len(t, rep.Mismatches, 5, rep.String())
		require.Equal(t, readmodeltest.TableCounts{Expected: 4, Actual: 5, Extra: 1}, rep.Tables[readmodel.OrdersByStatusTable])
		require.Equal(t, readmodeltest.TableCounts{Expected: 4, Actual: 4, Wrong: 1}, rep.Tables[readmodel.OrderReadModelTable])
		require.Equal(t, readmodeltest.TableCounts{Expected: 4, Actual: 4, Wrong: 1}, rep.Tables[readmodel.OrdersByCustomerTable])
		require.Equal(t, readmodeltest.TableCounts{Expected: 2, Actual: 1, Missing: 1, Wrong: 1}, rep.Tables[readmodel.CustomerReadModelTable])
		s := rep.String()
		t.Log(s)
		require.Contains(t, s, "orders_by_status (CREATED, ")
		require.Contains(t, s, "extra row")
		require.Contains(t, s, "order_read_model "+o1.String()+": Status: want DELIVERED, got SHIPPED")
		require.Contains(t, s, "customer_read_model "+bob.String()+": missing")
		require.Contains(t, s, "customer_read_model "+ann.String()+": Addresses: want")
		require.Contains(t, s, "ItemCount: want 2, got 99")

		only, err := readmodeltest.CheckTables(ctx, session, store, readmodel.OrdersByCustomerTable, readmodel.OrderReadModelTable)
		require.NoError(t, err)
		require.Len(t, only.Mismatches, 2, only.String())
		require.Equal(t, 4, only.Aggregates, "customers are not read for order tables")
		require.Len(t, only.Tables, 2)

		_, err = readmodeltest.CheckTables(ctx, session, store, "event_store")
		require.Error(t, err)
	})
}

func orderIDsOf(rows []readmodel.CustomerOrderRow) []gocql.UUID {
	ids := make([]gocql.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.OrderID
	}
	return ids
}
