package order_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

func TestFoldBuildsTheState(t *testing.T) {
	h := newHistory(t)
	usd := currency(t, "USD")
	tests := []struct {
		name   string
		events []order.Event
		want   order.State
	}{
		{"empty", nil, order.State{}},
		{"created", h.created, order.State{
			ID: orderID, CustomerID: customerID, Items: h.items, Currency: usd, Status: value.OrderStatusCreated, Version: 1,
		}},
		{"delivered", h.delivered, order.State{
			ID: orderID, CustomerID: customerID, Items: h.items, Currency: usd, Status: value.OrderStatusDelivered,
			Carrier: "DHL", TrackingNumber: "JD0001", Signature: "A. Lee", Version: 4,
		}},
		{"cancelled", h.cancelled, order.State{
			ID: orderID, CustomerID: customerID, Items: h.items, Currency: usd, Status: value.OrderStatusCancelled,
			CancelReason: "customer changed their mind", CancelledBy: "support:ann", Version: 3,
		}},
		{"items updated", append(clone(h.created), order.OrderItemsUpdated{Items: items(item(t, "X", 1, 5, "USD"))}), order.State{
			ID: orderID, CustomerID: customerID, Items: items(item(t, "X", 1, 5, "USD")), Currency: usd,
			Status: value.OrderStatusCreated, Version: 2,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := order.Fold(tt.events)
			require.Equal(t, tt.want, got)
			require.Equal(t, len(tt.events) > 0, got.Exists())
		})
	}
}

func TestApplyAllContinuesFromASnapshot(t *testing.T) {
	h := newHistory(t)
	snapshot := order.Fold(h.delivered[:2])
	require.Equal(t, order.Fold(h.delivered), order.ApplyAll(snapshot, h.delivered[2:]))
}

func TestApplyCountsEveryEvent(t *testing.T) {
	// A nil event carries no change, but it still took a sequence number.
	s := order.Apply(order.State{}, nil)
	require.Equal(t, int64(1), s.Version)
}

func TestApplyDoesNotShareSlices(t *testing.T) {
	h := newHistory(t)
	e := order.OrderCreated{OrderID: orderID, CustomerID: customerID, Items: items(h.items...), Currency: currency(t, "USD")}
	s := order.Apply(order.State{}, e)
	e.Items[0] = item(t, "CHANGED", 1, 1, "USD")
	require.Equal(t, "SKU-1", s.Items[0].ProductID())
}

func TestStateTotal(t *testing.T) {
	h := newHistory(t)
	s := order.Fold(h.created)
	want, err := value.NewMoney(2*999+500, currency(t, "USD"))
	require.NoError(t, err)
	require.Equal(t, want, s.Total())
	require.True(t, order.State{}.Total().IsZero())
}

func TestStateSnapshotJSON(t *testing.T) {
	for name, events := range map[string][]order.Event{"delivered": newHistory(t).delivered, "cancelled": newHistory(t).cancelled} {
		t.Run(name, func(t *testing.T) {
			s := order.Fold(events)
			b, err := json.Marshal(s)
			require.NoError(t, err)
			var got order.State
			require.NoError(t, json.Unmarshal(b, &got))
			require.Equal(t, s, got)
		})
	}
}

// TestStateRoundTripsThroughJSONAfterEveryEvent checks that what each event
// type does to the state survives a snapshot: a state folded up to any event
// encodes as JSON and decodes to itself. (Events themselves are stored as
// protojson by pkg/eventcodec and tested there.)
func TestStateRoundTripsThroughJSONAfterEveryEvent(t *testing.T) {
	h := newHistory(t)
	histories := [][]order.Event{
		h.delivered,
		h.cancelled,
		append(clone(h.created), order.OrderItemsUpdated{Items: items(item(t, "X", 1, 5, "USD"))}),
	}
	seen := map[string]bool{}
	for _, events := range histories {
		for n := 1; n <= len(events); n++ {
			e := events[n-1]
			t.Run(e.EventType(), func(t *testing.T) {
				s := order.Fold(events[:n])
				b, err := json.Marshal(s)
				require.NoError(t, err)
				var got order.State
				require.NoError(t, json.Unmarshal(b, &got))
				require.Equal(t, s, got)
			})
			seen[e.EventType()] = true
		}
	}
	for _, name := range order.EventTypes() {
		require.True(t, seen[name], "no round-trip test for %s", name)
	}
	require.Len(t, seen, len(order.EventTypes()))
}

// TestStateJSONShape pins the snapshot shape, which is stored and read back
// by later versions of the service.
func TestStateJSONShape(t *testing.T) {
	h := newHistory(t)
	b, err := json.Marshal(order.Fold(h.cancelled))
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"`+orderID+`","customer_id":"`+customerID+`","currency":"USD","status":"CANCELLED",
		"cancel_reason":"customer changed their mind","cancelled_by":"support:ann","version":3,"items":[
		{"product_id":"SKU-1","quantity":2,"unit_price":{"amount":999,"currency":"USD"}},
		{"product_id":"SKU-2","quantity":1,"unit_price":{"amount":500,"currency":"USD"}}]}`, string(b))

	b, err = json.Marshal(order.Fold(h.delivered))
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"`+orderID+`","customer_id":"`+customerID+`","currency":"USD","status":"DELIVERED",
		"carrier":"DHL","tracking_number":"JD0001","signature":"A. Lee","version":4,"items":[
		{"product_id":"SKU-1","quantity":2,"unit_price":{"amount":999,"currency":"USD"}},
		{"product_id":"SKU-2","quantity":1,"unit_price":{"amount":500,"currency":"USD"}}]}`, string(b))
}

func TestEventTypeNames(t *testing.T) {
	events := []order.Event{
		order.OrderCreated{}, order.OrderItemsUpdated{}, order.OrderConfirmed{},
		order.OrderShipped{}, order.OrderDelivered{}, order.OrderCancelled{},
	}
	names := make([]string, len(events))
	for i, e := range events {
		names[i] = e.EventType()
	}
	require.Equal(t, []string{
		"OrderCreated", "OrderItemsUpdated", "OrderConfirmed", "OrderShipped", "OrderDelivered", "OrderCancelled",
	}, names)
	require.Equal(t, names, order.EventTypes())
}
