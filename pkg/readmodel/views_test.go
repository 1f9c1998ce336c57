package readmodel_test

import (
	"strings"
	"testing"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

// The statements, spelled out so that a change of column order shows.
const (
	insertOrder = `INSERT INTO order_read_model (order_id, customer_id, items, status, created_at, updated_at, version, is_deleted, deleted_at, ` +
		`carrier, tracking_number, shipped_at, delivered_at, delivery_signature, cancel_reason, cancelled_by, item_count, totals) ` +
		`VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertOrderByCustomer = `INSERT INTO orders_by_customer (customer_id, created_at, order_id, status, version, item_count, totals, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	insertOrderByStatus   = `INSERT INTO orders_by_status (status, created_at, order_id, customer_id, version, item_count, totals, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	deleteOrderByStatus   = `DELETE FROM orders_by_status WHERE status = ? AND created_at = ? AND order_id = ?`
	insertCustomer        = `INSERT INTO customer_read_model (customer_id, name, email, phone, addresses, tier, status, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

func TestViewsAreNamed(t *testing.T) {
	for _, tt := range []struct {
		name, aggregate string
		tables          []string
		got             func() (string, string, []string)
	}{
		{"order-read-model", "order", []string{"order_read_model"}, names(readmodel.OrderReadModel())},
		{"orders-by-customer", "order", []string{"orders_by_customer"}, names(readmodel.OrdersByCustomer())},
		{"orders-by-status", "order", []string{"orders_by_status"}, names(readmodel.OrdersByStatus())},
		{"customer-read-model", "customer", []string{"customer_read_model"}, names(readmodel.CustomerReadModel())},
	} {
		name, aggregate, tables := tt.got()
		require.Equal(t, tt.name, name)
		require.Equal(t, tt.aggregate, aggregate)
		require.Equal(t, tt.tables, tables)
	}
}

func names[S any](v projector.View[S]) func() (string, string, []string) {
	return func() (string, string, []string) { return v.Name, v.AggregateType, v.Tables }
}

func orderLifecycle(t *testing.T) ([]order.Event, []readmodel.OrderItemRow, []readmodel.OrderItemRow) {
	first := []readmodel.OrderItemRow{{ProductID: "sku-1", Quantity: 2, UnitPriceMinor: 1250, Currency: "EUR"}}
	second := []readmodel.OrderItemRow{
		{ProductID: "sku-2", Quantity: 1, UnitPriceMinor: 999, Currency: "EUR"},
		{ProductID: "sku-3", Quantity: 3, UnitPriceMinor: 100, Currency: "EUR"},
	}
	return []order.Event{
		created(t),
		order.OrderItemsUpdated{Items: []value.OrderItem{item(t, "sku-2", 1, 999, "EUR"), item(t, "sku-3", 3, 100, "EUR")}},
		order.OrderConfirmed{},
		order.OrderShipped{Carrier: "DHL", TrackingNumber: "T1"},
		order.OrderDelivered{Signature: "J. Doe"},
	}, first, second
}

// The item count and totals of the lifecycle's two item lists.
var (
	firstTotals  = map[string]int64{"EUR": 2 * 1250}
	secondTotals = map[string]int64{"EUR": 999 + 3*100}
)

func TestOrderReadModelWrite(t *testing.T) {
	lifecycle, first, second := orderLifecycle(t)
	// details are the columns from carrier on; nil binds null.
	type details struct {
		carrier, tracking, shipped, delivered, signature, reason, by any
		count                                                        int
		totals                                                       map[string]int64
	}
	open := func(count int, totals map[string]int64) details {
		return details{nil, nil, nil, nil, nil, nil, nil, count, totals}
	}
	row := func(items []readmodel.OrderItemRow, status string, seq int64, deletedAt any, d details) gocql.BatchEntry {
		return entry(insertOrder, orderID, customerID, items, status, at(1), at(seq), seq, deletedAt != nil, deletedAt,
			d.carrier, d.tracking, d.shipped, d.delivered, d.signature, d.reason, d.by, d.count, d.totals)
	}
	t.Run("lifecycle", func(t *testing.T) {
		shipped := details{"DHL", "T1", at(4), nil, nil, nil, nil, 4, secondTotals}
		delivered := shipped
		delivered.delivered, delivered.signature = at(5), "J. Doe"
		runSteps(t, readmodel.OrderReadModel(), orderID, orderEvents(t, orderID, lifecycle...), []step{
			{"create", 1, []gocql.BatchEntry{row(first, "CREATED", 1, nil, open(2, firstTotals))}},
			{"items update", 1, []gocql.BatchEntry{row(second, "CREATED", 2, nil, open(4, secondTotals))}},
			{"confirm", 1, []gocql.BatchEntry{row(second, "CONFIRMED", 3, nil, open(4, secondTotals))}},
			{"ship: carrier, tracking number, time", 1, []gocql.BatchEntry{row(second, "SHIPPED", 4, nil, shipped)}},
			{"deliver: time, signature", 1, []gocql.BatchEntry{row(second, "DELIVERED", 5, nil, delivered)}},
		})
	})
	t.Run("cancel marks the row deleted, with reason and who", func(t *testing.T) {
		events := orderEvents(t, orderID, created(t), order.OrderConfirmed{},
			order.OrderCancelled{Reason: "r", CancelledBy: "c", PreviousStatus: value.OrderStatusConfirmed})
		cancelled := open(2, firstTotals)
		cancelled.reason, cancelled.by = "r", "c"
		runSteps(t, readmodel.OrderReadModel(), orderID, events, []step{
			{"create and confirm", 2, []gocql.BatchEntry{row(first, "CONFIRMED", 2, nil, open(2, firstTotals))}},
			{"cancel", 1, []gocql.BatchEntry{row(first, "CANCELLED", 3, at(3), cancelled)}},
		})
	})
	t.Run("a shipped order cancelled keeps its shipping", func(t *testing.T) {
		events := orderEvents(t, orderID, created(t), order.OrderConfirmed{}, order.OrderShipped{Carrier: "UPS", TrackingNumber: "1Z"},
			order.OrderCancelled{Reason: "lost", CancelledBy: "ops", PreviousStatus: value.OrderStatusShipped})
		d := details{"UPS", "1Z", at(3), nil, nil, "lost", "ops", 2, firstTotals}
		runSteps(t, readmodel.OrderReadModel(), orderID, events, []step{
			{"all at once", 4, []gocql.BatchEntry{row(first, "CANCELLED", 4, at(4), d)}},
		})
	})
	t.Run("unchanged state writes nothing", func(t *testing.T) {
		v := readmodel.OrderReadModel()
		s := fold(t, v, readmodel.Order{}, orderEvents(t, orderID, created(t))...)
		b := new(gocql.Batch)
		require.NoError(t, v.Write(b, orderID, s, true, s, 1))
		require.Empty(t, b.Entries)
	})
	t.Run("nothing to write before the order exists", func(t *testing.T) {
		b := new(gocql.Batch)
		require.NoError(t, readmodel.OrderReadModel().Write(b, orderID, readmodel.Order{}, false, readmodel.Order{}, 0))
		require.Empty(t, b.Entries)
	})
}

func TestSummarize(t *testing.T) {
	for _, tt := range []struct {
		name   string
		items  []readmodel.OrderItemRow
		count  int
		totals map[string]int64
		fails  bool
	}{
		{name: "no items", items: nil, count: 0, totals: nil},
		{name: "one currency", items: []readmodel.OrderItemRow{{Quantity: 2, UnitPriceMinor: 150, Currency: "EUR"}, {Quantity: 1, UnitPriceMinor: 5, Currency: "EUR"}},
			count: 3, totals: map[string]int64{"EUR": 305}},
		{name: "per currency", items: []readmodel.OrderItemRow{{Quantity: 1, UnitPriceMinor: 100, Currency: "EUR"}, {Quantity: 4, UnitPriceMinor: 25, Currency: "USD"}},
			count: 5, totals: map[string]int64{"EUR": 100, "USD": 100}},
		{name: "free items count", items: []readmodel.OrderItemRow{{Quantity: 7, UnitPriceMinor: 0, Currency: "JPY"}},
			count: 7, totals: map[string]int64{"JPY": 0}},
		{name: "a line overflows", items: []readmodel.OrderItemRow{{Quantity: 10, UnitPriceMinor: 1 << 62, Currency: "EUR"}}, fails: true},
		{name: "the sum overflows", items: []readmodel.OrderItemRow{{Quantity: 1, UnitPriceMinor: 1 << 62, Currency: "EUR"},
			{Quantity: 1, UnitPriceMinor: 1 << 62, Currency: "EUR"}}, fails: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			count, totals, err := readmodel.Summarize(tt.items)
			if tt.fails {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.count, count)
			require.Equal(t, tt.totals, totals)
		})
	}
}

func TestOrdersByCustomerWrite(t *testing.T) {
	lifecycle, _, _ := orderLifecycle(t)
	row := func(status string, seq int64, count int, totals map[string]int64) gocql.BatchEntry {
		return entry(insertOrderByCustomer, customerID, at(1), orderID, status, seq, count, totals, at(seq))
	}
	runSteps(t, readmodel.OrdersByCustomer(), orderID, orderEvents(t, orderID, append(lifecycle[:3:3],
		order.OrderCancelled{Reason: "r", CancelledBy: "c", PreviousStatus: value.OrderStatusConfirmed})...), []step{
		{"create", 1, []gocql.BatchEntry{row("CREATED", 1, 2, firstTotals)}},
		{"items update keeps the row current", 1, []gocql.BatchEntry{row("CREATED", 2, 4, secondTotals)}},
		{"confirm", 1, []gocql.BatchEntry{row("CONFIRMED", 3, 4, secondTotals)}},
		{"a cancelled order keeps its row", 1, []gocql.BatchEntry{row("CANCELLED", 4, 4, secondTotals)}},
	})
}

func TestOrdersByStatusWrite(t *testing.T) {
	lifecycle, _, _ := orderLifecycle(t)
	// The lifecycle has its first items at sequence 1 only; the other
	// histories keep them throughout.
	row := func(status string, seq int64) gocql.BatchEntry {
		return entry(insertOrderByStatus, status, at(1), orderID, customerID, seq, 4, secondTotals, at(seq))
	}
	firstRow := func(status string, seq int64) gocql.BatchEntry {
		return entry(insertOrderByStatus, status, at(1), orderID, customerID, seq, 2, firstTotals, at(seq))
	}
	out := func(status string) gocql.BatchEntry {
		return entry(deleteOrderByStatus, status, at(1), orderID)
	}
	t.Run("one event at a time", func(t *testing.T) {
		runSteps(t, readmodel.OrdersByStatus(), orderID, orderEvents(t, orderID, lifecycle...), []step{
			{"create", 1, []gocql.BatchEntry{firstRow("CREATED", 1)}},
			{"items update stays in its partition", 1, []gocql.BatchEntry{row("CREATED", 2)}},
			{"confirm moves the row", 1, []gocql.BatchEntry{out("CREATED"), row("CONFIRMED", 3)}},
			{"ship moves the row", 1, []gocql.BatchEntry{out("CONFIRMED"), row("SHIPPED", 4)}},
			{"deliver moves the row", 1, []gocql.BatchEntry{out("SHIPPED"), row("DELIVERED", 5)}},
		})
	})
	t.Run("several events per write", func(t *testing.T) {
		events := orderEvents(t, orderID, created(t), order.OrderConfirmed{}, order.OrderShipped{Carrier: "c", TrackingNumber: "t"},
			order.OrderCancelled{Reason: "r", CancelledBy: "c", PreviousStatus: value.OrderStatusShipped})
		runSteps(t, readmodel.OrdersByStatus(), orderID, events, []step{
			{"first write lands in the latest status only", 2, []gocql.BatchEntry{firstRow("CONFIRMED", 2)}},
			{"cancel moves from the last written status", 2, []gocql.BatchEntry{out("CONFIRMED"), firstRow("CANCELLED", 4)}},
		})
	})
}

func TestCustomerReadModelWrite(t *testing.T) {
	home, work := address(t, "home", "1 Main St", "Berlin"), address(t, "work", "2 Work St", "Berlin")
	moved := address(t, "home", "3 New St", "Hamburg")
	homeRow := readmodel.AddressRow{Label: "home", Line1: "1 Main St", City: "Berlin", PostalCode: "10115", Country: "DE"}
	workRow := readmodel.AddressRow{Label: "work", Line1: "2 Work St", City: "Berlin", PostalCode: "10115", Country: "DE"}
	movedRow := readmodel.AddressRow{Label: "home", Line1: "3 New St", City: "Hamburg", PostalCode: "10115", Country: "DE"}
	type addrs = map[gocql.UUID]readmodel.AddressRow
	row := func(phone any, addresses addrs, tier, status string, seq int64) gocql.BatchEntry {
		return entry(insertCustomer, customerID, "Ada Lovelace", "ada@example.com", phone, addresses, tier, status, seq, at(1), at(seq))
	}
	events := customerEvents(t, customerID,
		registered(t),
		customer.CustomerAddressAdded{AddressID: homeID.String(), Address: home},
		customer.CustomerAddressAdded{AddressID: workID.String(), Address: work},
		customer.CustomerAddressUpdated{AddressID: homeID.String(), Address: moved},
		customer.CustomerAddressRemoved{AddressID: workID.String()},
		customer.CustomerAddressRemoved{AddressID: homeID.String()},
		customer.CustomerPhoneChanged{Phone: phone(t, "+491701234567")},
		customer.CustomerTierUpgraded{From: value.CustomerTierBronze, To: value.CustomerTierGold},
		customer.CustomerSuspended{Reason: "fraud check"},
		customer.CustomerReactivated{},
	)
	runSteps(t, readmodel.CustomerReadModel(), customerID, events, []step{
		{"register: no phone, no addresses", 1, []gocql.BatchEntry{row(nil, nil, "BRONZE", "ACTIVE", 1)}},
		{"address added", 1, []gocql.BatchEntry{row(nil, addrs{homeID: homeRow}, "BRONZE", "ACTIVE", 2)}},
		{"second address added", 1, []gocql.BatchEntry{row(nil, addrs{homeID: homeRow, workID: workRow}, "BRONZE", "ACTIVE", 3)}},
		{"address updated", 1, []gocql.BatchEntry{row(nil, addrs{homeID: movedRow, workID: workRow}, "BRONZE", "ACTIVE", 4)}},
		{"address removed", 1, []gocql.BatchEntry{row(nil, addrs{homeID: movedRow}, "BRONZE", "ACTIVE", 5)}},
		{"last address removed", 1, []gocql.BatchEntry{row(nil, nil, "BRONZE", "ACTIVE", 6)}},
		{"phone and tier", 2, []gocql.BatchEntry{row("+491701234567", nil, "GOLD", "ACTIVE", 8)}},
		{"suspended", 1, []gocql.BatchEntry{row("+491701234567", nil, "GOLD", "SUSPENDED", 9)}},
		{"reactivated", 1, []gocql.BatchEntry{row("+491701234567", nil, "GOLD", "ACTIVE", 10)}},
	})
}

// Each view writes generation g's tables (a rebuild's), created by its own
// CQL in the current layout, and keeps its name: the checkpoints of a
// generation are told apart by projector.CheckpointName.
func TestViewsHaveGenerations(t *testing.T) {
	for _, tt := range []struct {
		table  string
		at     func(gen int) (string, []string, []string)
		column string
	}{
		{"order_read_model", generation(readmodel.OrderReadModel()), "totals             frozen<map<text, bigint>>"},
		{"orders_by_customer", generation(readmodel.OrdersByCustomer()), "PRIMARY KEY (customer_id, created_at, order_id)"},
		{"orders_by_status", generation(readmodel.OrdersByStatus()), "PRIMARY KEY (status, created_at, order_id)"},
		{"customer_read_model", generation(readmodel.CustomerReadModel()), "addresses   map<uuid, frozen<address>>"},
	} {
		name, tables, schema := tt.at(3)
		require.NotEmpty(t, name)
		require.Equal(t, []string{tt.table + "_g3"}, tables)
		require.Len(t, schema, 1)
		require.Contains(t, schema[0], "CREATE TABLE IF NOT EXISTS "+tt.table+"_g3 (")
		require.Contains(t, schema[0], tt.column)
		_, tables, _ = tt.at(1)
		require.Equal(t, []string{tt.table}, tables, "generation 1 is the v0001 table")
	}

	// The rows of generation 2 go to its table, with the same statements.
	lifecycle, _, _ := orderLifecycle(t)
	events := orderEvents(t, orderID, lifecycle[:3]...)
	var s readmodel.Order
	for _, e := range events {
		var err error
		s, err = readmodel.FoldOrder(s, e)
		require.NoError(t, err)
	}
	b := new(gocql.Batch)
	require.NoError(t, readmodel.OrdersByStatus().At(2).Write(b, orderID, readmodel.Order{}, false, s, 3))
	require.Len(t, b.Entries, 1)
	require.Equal(t, strings.Replace(insertOrderByStatus, "orders_by_status", "orders_by_status_g2", 1), b.Entries[0].Stmt)
}

func generation[S any](v projector.View[S]) func(gen int) (string, []string, []string) {
	return func(gen int) (string, []string, []string) {
		g := v.At(gen)
		return g.Name, g.Tables, g.Schema(gen)
	}
}
