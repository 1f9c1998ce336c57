package order_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

// TestDecideEveryCommandInEveryState walks the whole lifecycle matrix: each
// command, with a changing payload, the same payload again, and a different
// payload, against an order that does not exist and one in every status.
func TestDecideEveryCommandInEveryState(t *testing.T) {
	h := newHistory(t)
	usd := currency(t, "USD")
	newItems := items(item(t, "SKU-3", 1, 100, "USD"))

	create := order.CreateOrder{OrderID: orderID, CustomerID: customerID, Items: h.items}
	update := order.UpdateItems{Items: newItems}
	sameItems := order.UpdateItems{Items: h.items}
	confirm := order.ConfirmOrder{}
	ship := order.ShipOrder{Carrier: "DHL", TrackingNumber: "JD0001"}
	shipOther := order.ShipOrder{Carrier: "UPS", TrackingNumber: "1Z999"}
	deliver := order.DeliverOrder{Signature: "A. Lee"}
	deliverOther := order.DeliverOrder{Signature: "B. Kim"}
	cancelCmd := order.CancelOrder{Reason: "customer changed their mind", CancelledBy: "support:ann"}
	cancelOther := order.CancelOrder{Reason: "fraud", CancelledBy: "risk-engine"}

	states := map[string][]order.Event{
		"none":      nil,
		"created":   h.created,
		"confirmed": h.confirmed,
		"shipped":   h.shipped,
		"delivered": h.delivered,
		"cancelled": h.cancelled,
	}

	created := []order.Event{order.OrderCreated{OrderID: orderID, CustomerID: customerID, Items: h.items, Currency: usd}}
	cancelledFrom := func(s value.OrderStatus) []order.Event {
		return []order.Event{order.OrderCancelled{Reason: cancelCmd.Reason, CancelledBy: cancelCmd.CancelledBy, PreviousStatus: s}}
	}
	type outcome struct {
		events []order.Event
		kind   errKind
		code   string
	}
	noop := outcome{}
	ok := func(e ...order.Event) outcome { return outcome{events: e} }
	conflict := func(code string) outcome { return outcome{kind: conflictErr, code: code} }
	notFound := outcome{kind: notFoundErr, code: "order.not_found"}
	transition := conflict("order.invalid_transition")

	tests := []struct {
		cmd  order.Command
		name string
		want map[string]outcome
	}{
		{create, "create", map[string]outcome{
			"none": ok(created...), "created": conflict("order.already_exists"), "confirmed": conflict("order.already_exists"),
			"shipped": conflict("order.already_exists"), "delivered": conflict("order.already_exists"),
			"cancelled": conflict("order.already_exists"),
		}},
		{update, "update items", map[string]outcome{
			"none": notFound, "created": ok(order.OrderItemsUpdated{Items: newItems}),
			"confirmed": conflict("order.not_editable"), "shipped": conflict("order.not_editable"),
			"delivered": conflict("order.not_editable"), "cancelled": conflict("order.not_editable"),
		}},
		{sameItems, "update items unchanged", map[string]outcome{
			"none": notFound, "created": noop,
			"confirmed": conflict("order.not_editable"), "shipped": conflict("order.not_editable"),
			"delivered": conflict("order.not_editable"), "cancelled": conflict("order.not_editable"),
		}},
		{confirm, "confirm", map[string]outcome{
			"none": notFound, "created": ok(order.OrderConfirmed{}), "confirmed": noop,
			"shipped": transition, "delivered": transition, "cancelled": transition,
		}},
		{ship, "ship", map[string]outcome{
			"none": notFound, "created": transition,
			"confirmed": ok(order.OrderShipped{Carrier: "DHL", TrackingNumber: "JD0001"}),
			"shipped":   noop, "delivered": transition, "cancelled": transition,
		}},
		{shipOther, "ship with other tracking", map[string]outcome{
			"none": notFound, "created": transition,
			"confirmed": ok(order.OrderShipped{Carrier: "UPS", TrackingNumber: "1Z999"}),
			"shipped":   conflict("order.already_shipped"), "delivered": transition, "cancelled": transition,
		}},
		{deliver, "deliver", map[string]outcome{
			"none": notFound, "created": transition, "confirmed": transition,
			"shipped":   ok(order.OrderDelivered{Signature: "A. Lee"}),
			"delivered": noop, "cancelled": transition,
		}},
		{deliverOther, "deliver with other signature", map[string]outcome{
			"none": notFound, "created": transition, "confirmed": transition,
			"shipped":   ok(order.OrderDelivered{Signature: "B. Kim"}),
			"delivered": conflict("order.already_delivered"), "cancelled": transition,
		}},
		{cancelCmd, "cancel", map[string]outcome{
			"none": notFound, "created": ok(cancelledFrom(value.OrderStatusCreated)...),
			"confirmed": ok(cancelledFrom(value.OrderStatusConfirmed)...),
			"shipped":   ok(cancelledFrom(value.OrderStatusShipped)...),
			"delivered": transition, "cancelled": noop,
		}},
		{cancelOther, "cancel with other reason", map[string]outcome{
			"none": notFound,
			"created": ok(order.OrderCancelled{Reason: "fraud", CancelledBy: "risk-engine",
				PreviousStatus: value.OrderStatusCreated}),
			"confirmed": ok(order.OrderCancelled{Reason: "fraud", CancelledBy: "risk-engine",
				PreviousStatus: value.OrderStatusConfirmed}),
			"shipped": ok(order.OrderCancelled{Reason: "fraud", CancelledBy: "risk-engine",
				PreviousStatus: value.OrderStatusShipped}),
			"delivered": transition, "cancelled": conflict("order.already_cancelled"),
		}},
	}
	for _, tt := range tests {
		require.Len(t, tt.want, len(states), tt.name)
		for stateName, want := range tt.want {
			t.Run(tt.name+"/"+stateName, func(t *testing.T) {
				past, known := states[stateName]
				require.True(t, known)
				s := order.Fold(past)
				got, err := order.Decide(s, tt.cmd)
				if want.kind != noError {
					requireErr(t, err, want.kind, want.code)
					require.Nil(t, got)
					return
				}
				require.NoError(t, err)
				require.Equal(t, want.events, got)
			})
		}
	}
}

func TestDecideCreateOrderValidation(t *testing.T) {
	usd1 := item(t, "SKU-1", 1, 100, "USD")
	usd2 := item(t, "SKU-2", 1, 100, "USD")
	eur := item(t, "SKU-3", 1, 100, "EUR")
	huge := item(t, "BIG-1", 10_000, 922337203685477, "USD")
	huge2 := item(t, "BIG-2", 10_000, 922337203685477, "USD")
	many := make([]value.OrderItem, order.MaxItems+1)
	for i := range many {
		many[i] = item(t, fmt.Sprintf("SKU-%03d", i), 1, 1, "USD")
	}

	tests := []struct {
		name        string
		cmd         order.CreateOrder
		code, field string
	}{
		{"bad order id", order.CreateOrder{OrderID: "nope", CustomerID: customerID, Items: items(usd1)}, "order.id_invalid", "order_id"},
		{"upper-case order id", order.CreateOrder{OrderID: strings.ToUpper(orderID), CustomerID: customerID, Items: items(usd1)},
			"order.id_invalid", "order_id"},
		{"nil order id", order.CreateOrder{OrderID: "00000000-0000-0000-0000-000000000000", CustomerID: customerID, Items: items(usd1)},
			"order.id_invalid", "order_id"},
		{"bad customer id", order.CreateOrder{OrderID: orderID, CustomerID: "", Items: items(usd1)}, "order.customer_id_invalid", "customer_id"},
		{"no items", order.CreateOrder{OrderID: orderID, CustomerID: customerID}, "order.items_empty", "items"},
		{"empty items", order.CreateOrder{OrderID: orderID, CustomerID: customerID, Items: []value.OrderItem{}}, "order.items_empty", "items"},
		{"too many items", order.CreateOrder{OrderID: orderID, CustomerID: customerID, Items: many}, "order.too_many_items", "items"},
		{"zero item", order.CreateOrder{OrderID: orderID, CustomerID: customerID, Items: items(usd1, value.OrderItem{})},
			"order.item_invalid", "items[1]"},
		{"mixed currencies", order.CreateOrder{OrderID: orderID, CustomerID: customerID, Items: items(usd1, usd2, eur)},
			"order.mixed_currencies", "items[2].unit_price"},
		{"duplicate product", order.CreateOrder{OrderID: orderID, CustomerID: customerID, Items: items(usd1, usd2, usd1)},
			"order.duplicate_item", "items[2].product_id"},
		{"total overflow", order.CreateOrder{OrderID: orderID, CustomerID: customerID, Items: items(huge, huge2)},
			"order.total_overflow", "items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := order.Decide(order.State{}, tt.cmd)
			requireErr(t, err, ruleErr, tt.code)
			require.Nil(t, got)
			require.Equal(t, tt.field, fieldOf(err))
		})
	}

	t.Run("exactly the maximum", func(t *testing.T) {
		got, err := order.Decide(order.State{}, order.CreateOrder{OrderID: orderID, CustomerID: customerID, Items: many[:order.MaxItems]})
		require.NoError(t, err)
		require.Len(t, got, 1)
	})
	t.Run("validation comes before the existence conflict", func(t *testing.T) {
		s := order.Fold(newHistory(t).created)
		_, err := order.Decide(s, order.CreateOrder{OrderID: orderID, CustomerID: customerID})
		requireErr(t, err, ruleErr, "order.items_empty")
	})
}

func TestDecideUpdateItemsValidation(t *testing.T) {
	s := order.Fold(newHistory(t).created)
	tests := []struct {
		name        string
		items       []value.OrderItem
		code, field string
	}{
		{"empty", nil, "order.items_empty", "items"},
		{"other currency", items(item(t, "SKU-1", 1, 100, "EUR")), "order.currency_mismatch", "items"},
		{"duplicate", items(item(t, "A", 1, 1, "USD"), item(t, "A", 2, 1, "USD")), "order.duplicate_item", "items[1].product_id"},
		{"mixed", items(item(t, "A", 1, 1, "USD"), item(t, "B", 2, 1, "JPY")), "order.mixed_currencies", "items[1].unit_price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := order.Decide(s, order.UpdateItems{Items: tt.items})
			requireErr(t, err, ruleErr, tt.code)
			require.Nil(t, got)
			require.Equal(t, tt.field, fieldOf(err))
		})
	}
	t.Run("reordering is a change", func(t *testing.T) {
		h := newHistory(t)
		got, err := order.Decide(s, order.UpdateItems{Items: items(h.items[1], h.items[0])})
		require.NoError(t, err)
		require.Equal(t, []order.Event{order.OrderItemsUpdated{Items: items(h.items[1], h.items[0])}}, got)
	})
	t.Run("a not-editable order refuses even a valid currency change", func(t *testing.T) {
		confirmed := order.Fold(newHistory(t).confirmed)
		_, err := order.Decide(confirmed, order.UpdateItems{Items: items(item(t, "SKU-1", 1, 100, "EUR"))})
		requireErr(t, err, conflictErr, "order.not_editable")
	})
}

func TestDecideTextFields(t *testing.T) {
	h := newHistory(t)
	confirmed := order.Fold(h.confirmed)
	shipped := order.Fold(h.shipped)
	created := order.Fold(h.created)

	tests := []struct {
		name        string
		s           order.State
		cmd         order.Command
		code, field string
	}{
		{"carrier missing", confirmed, order.ShipOrder{TrackingNumber: "X"}, "order.carrier_required", "carrier"},
		{"carrier blank", confirmed, order.ShipOrder{Carrier: "  ", TrackingNumber: "X"}, "order.carrier_required", "carrier"},
		{"carrier too long", confirmed, order.ShipOrder{Carrier: strings.Repeat("c", 101), TrackingNumber: "X"}, "order.carrier_too_long", "carrier"},
		{"carrier control", confirmed, order.ShipOrder{Carrier: "D\x1bHL", TrackingNumber: "X"}, "order.carrier_invalid", "carrier"},
		{"tracking missing", confirmed, order.ShipOrder{Carrier: "DHL"}, "order.tracking_number_required", "tracking_number"},
		{"tracking too long", confirmed, order.ShipOrder{Carrier: "DHL", TrackingNumber: strings.Repeat("1", 101)},
			"order.tracking_number_too_long", "tracking_number"},
		{"tracking newline", confirmed, order.ShipOrder{Carrier: "DHL", TrackingNumber: "1\n2"}, "order.tracking_number_invalid", "tracking_number"},
		{"ship validates before the state check", created, order.ShipOrder{}, "order.carrier_required", "carrier"},
		{"signature too long", shipped, order.DeliverOrder{Signature: strings.Repeat("s", 201)}, "order.signature_too_long", "signature"},
		{"signature control", shipped, order.DeliverOrder{Signature: "A\x00"}, "order.signature_invalid", "signature"},
		{"reason missing", created, order.CancelOrder{CancelledBy: "ann"}, "order.reason_required", "reason"},
		{"reason too long", created, order.CancelOrder{Reason: strings.Repeat("r", 501), CancelledBy: "ann"}, "order.reason_too_long", "reason"},
		{"reason bidi", created, order.CancelOrder{Reason: "\u202eevil", CancelledBy: "ann"}, "order.reason_invalid", "reason"},
		{"canceller missing", created, order.CancelOrder{Reason: "x"}, "order.cancelled_by_required", "cancelled_by"},
		{"canceller too long", created, order.CancelOrder{Reason: "x", CancelledBy: strings.Repeat("b", 201)},
			"order.cancelled_by_too_long", "cancelled_by"},
		{"canceller control", created, order.CancelOrder{Reason: "x", CancelledBy: "a\tb"}, "order.cancelled_by_invalid", "cancelled_by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := order.Decide(tt.s, tt.cmd)
			requireErr(t, err, ruleErr, tt.code)
			require.Nil(t, got)
			require.Equal(t, tt.field, fieldOf(err))
		})
	}

	t.Run("text is trimmed before it is recorded", func(t *testing.T) {
		got, err := order.Decide(confirmed, order.ShipOrder{Carrier: "  DHL ", TrackingNumber: "\tJD0001\n"})
		require.NoError(t, err)
		require.Equal(t, []order.Event{order.OrderShipped{Carrier: "DHL", TrackingNumber: "JD0001"}}, got)
	})
	t.Run("a retry differing only in whitespace is a no-op", func(t *testing.T) {
		got, err := order.Decide(shipped, order.ShipOrder{Carrier: " DHL ", TrackingNumber: "JD0001 "})
		require.NoError(t, err)
		require.Empty(t, got)
	})
	t.Run("limits are in characters", func(t *testing.T) {
		got, err := order.Decide(created, order.CancelOrder{Reason: strings.Repeat("ü", 500), CancelledBy: strings.Repeat("é", 200)})
		require.NoError(t, err)
		require.Len(t, got, 1)
	})
	t.Run("delivery without signature", func(t *testing.T) {
		got, err := order.Decide(shipped, order.DeliverOrder{Signature: "   "})
		require.NoError(t, err)
		require.Equal(t, []order.Event{order.OrderDelivered{}}, got)
	})
}

// unsupportedCommand is a command only a test can build: Command's marker
// method is unexported, so embedding is the only way in.
type unsupportedCommand struct{ order.ConfirmOrder }

func TestDecideRefusesUnknownCommands(t *testing.T) {
	s := order.Fold(newHistory(t).created)
	for name, cmd := range map[string]order.Command{
		"nil":      nil,
		"pointer":  &order.ConfirmOrder{},
		"embedded": unsupportedCommand{},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := order.Decide(s, cmd)
			require.Error(t, err)
			require.Empty(t, fieldOf(err))
			require.Nil(t, got)
			require.Empty(t, codeOf(err), "a programming error is not a domain error")
		})
	}
}

func TestDecideDoesNotShareItemSlices(t *testing.T) {
	h := newHistory(t)
	in := slices.Clone(h.items)
	got, err := order.Decide(order.State{}, order.CreateOrder{OrderID: orderID, CustomerID: customerID, Items: in})
	require.NoError(t, err)
	in[0] = item(t, "CHANGED", 1, 1, "USD")
	require.Equal(t, h.items, got[0].(order.OrderCreated).Items)
}

func TestCommandTypes(t *testing.T) {
	for want, cmd := range map[string]order.Command{
		"CreateOrder":  order.CreateOrder{},
		"UpdateItems":  order.UpdateItems{},
		"ConfirmOrder": order.ConfirmOrder{},
		"ShipOrder":    order.ShipOrder{},
		"DeliverOrder": order.DeliverOrder{},
		"CancelOrder":  order.CancelOrder{},
	} {
		require.Equal(t, want, cmd.CommandType())
	}
	require.Equal(t, "order", order.AggregateType)
}
