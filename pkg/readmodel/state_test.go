package readmodel_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

func TestFoldOrder(t *testing.T) {
	events := orderEvents(t, orderID,
		created(t),
		order.OrderItemsUpdated{Items: []value.OrderItem{item(t, "sku-2", 1, 999, "EUR"), item(t, "sku-3", 3, 100, "EUR")}},
		order.OrderConfirmed{},
		order.OrderShipped{Carrier: "DHL", TrackingNumber: "T1"},
		order.OrderDelivered{Signature: "A.L."},
	)
	cancelled := orderEvents(t, orderID, created(t), order.OrderConfirmed{},
		order.OrderCancelled{Reason: "changed mind", CancelledBy: "customer", PreviousStatus: value.OrderStatusConfirmed})

	tests := []struct {
		name       string
		events     []eventstore.Event
		status     value.OrderStatus
		items      int
		updatedSeq int64
		deletedSeq int64
	}{
		{"created", events[:1], value.OrderStatusCreated, 1, 1, 0},
		{"items updated", events[:2], value.OrderStatusCreated, 2, 2, 0},
		{"confirmed", events[:3], value.OrderStatusConfirmed, 2, 3, 0},
		{"shipped", events[:4], value.OrderStatusShipped, 2, 4, 0},
		{"delivered", events, value.OrderStatusDelivered, 2, 5, 0},
		{"cancelled", cancelled, value.OrderStatusCancelled, 1, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fold(t, readmodel.OrderReadModel(), readmodel.Order{}, tt.events...)
			require.Equal(t, orderID.String(), s.State.ID)
			require.Equal(t, customerID.String(), s.State.CustomerID)
			require.Equal(t, tt.status, s.State.Status)
			require.Len(t, s.State.Items, tt.items)
			require.Equal(t, int64(len(tt.events)), s.State.Version)
			require.Equal(t, at(1), s.CreatedAt)
			require.Equal(t, at(tt.updatedSeq), s.UpdatedAt)
			if tt.deletedSeq == 0 {
				require.True(t, s.DeletedAt.IsZero())
			} else {
				require.Equal(t, at(tt.deletedSeq), s.DeletedAt)
			}
			require.Equal(t, s, roundTrip(t, s), "the state must survive the checkpoint's JSON")
		})
	}
}

func TestFoldCustomer(t *testing.T) {
	home, work := address(t, "home", "1 Main St", "Berlin"), address(t, "work", "2 Work St", "Berlin")
	events := customerEvents(t, customerID,
		registered(t),
		customer.CustomerAddressAdded{AddressID: homeID.String(), Address: home},
		customer.CustomerAddressAdded{AddressID: workID.String(), Address: work},
		customer.CustomerAddressUpdated{AddressID: homeID.String(), Address: address(t, "home", "3 New St", "Hamburg")},
		customer.CustomerAddressRemoved{AddressID: workID.String()},
		customer.CustomerPhoneChanged{Phone: phone(t, "+491701234567")},
		customer.CustomerTierUpgraded{From: value.CustomerTierBronze, To: value.CustomerTierGold},
		customer.CustomerSuspended{Reason: "fraud check"},
	)
	s := fold(t, readmodel.CustomerReadModel(), readmodel.Customer{}, events...)
	require.Equal(t, customerID.String(), s.State.ID)
	require.Len(t, s.State.Addresses, 1)
	require.Equal(t, "3 New St", s.State.Addresses[0].Address.Line1())
	require.Equal(t, "+491701234567", s.State.Phone.String())
	require.Equal(t, value.CustomerTierGold, s.State.Tier)
	require.Equal(t, value.CustomerStatusSuspended, s.State.Status)
	require.Equal(t, int64(8), s.State.Version)
	require.Equal(t, at(1), s.CreatedAt)
	require.Equal(t, at(8), s.UpdatedAt)
	require.Equal(t, s, roundTrip(t, s))
	require.Equal(t, readmodel.Customer{}, roundTrip(t, readmodel.Customer{}))
	require.Equal(t, readmodel.Order{}, roundTrip(t, readmodel.Order{}))
}

// An event Fold cannot read is an error, never a silently wrong state: the
// projector dead-letters it.
func TestFoldRefusesWhatItCannotRead(t *testing.T) {
	ok := orderEvents(t, orderID, created(t))[0]
	with := func(mutate func(*eventstore.Event)) eventstore.Event {
		e := ok
		mutate(&e)
		return e
	}
	badID := created(t)
	badID.CustomerID = "not-a-uuid"
	confirmed := orderEvents(t, orderID, order.OrderConfirmed{})[0]

	orderTests := []struct {
		name  string
		state readmodel.Order
		event eventstore.Event
		want  string
	}{
		{"unknown event type", readmodel.Order{}, with(func(e *eventstore.Event) { e.Type = "OrderTeleported" }), "unknown order event type"},
		{"customer event type", readmodel.Order{}, with(func(e *eventstore.Event) { e.Type = customer.EventCustomerRegistered }), "unknown order event type"},
		{"malformed payload", readmodel.Order{}, with(func(e *eventstore.Event) { e.Data = []byte(`{"not json`) }), "decoding OrderCreated"},
		{"invalid payload", readmodel.Order{}, with(func(e *eventstore.Event) { e.Data = []byte(`{"orderId":"x","items":[{"quantity":-1}]}`) }), "item 0"},
		{"other aggregate type", readmodel.Order{}, with(func(e *eventstore.Event) { e.AggregateType = customer.AggregateType }), "not an order event"},
		{"before creation", readmodel.Order{}, confirmed, "OrderConfirmed before OrderCreated"},
		{"customer id not a UUID", readmodel.Order{}, orderEvents(t, orderID, badID)[0], `customer_id "not-a-uuid" is not a UUID`},
	}
	for _, tt := range orderTests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := readmodel.FoldOrder(tt.state, tt.event)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, tt.state, s, "a refused event leaves the state alone")
		})
	}

	reg := customerEvents(t, customerID, registered(t))[0]
	existing := fold(t, readmodel.CustomerReadModel(), readmodel.Customer{}, reg)
	badAddr := customerEvents(t, customerID, registered(t),
		customer.CustomerAddressAdded{AddressID: "home", Address: address(t, "home", "1 Main St", "Berlin")})[1]
	customerTests := []struct {
		name  string
		state readmodel.Customer
		event eventstore.Event
		want  string
	}{
		{"unknown event type", existing, func() eventstore.Event { e := reg; e.Type = "CustomerVanished"; return e }(), "unknown customer event type"},
		{"order event type", existing, func() eventstore.Event { e := reg; e.Type = order.EventOrderCreated; return e }(), "unknown customer event type"},
		{"malformed payload", readmodel.Customer{}, func() eventstore.Event { e := reg; e.Data = []byte(`[]`); return e }(), "decoding CustomerRegistered"},
		{"before registration", readmodel.Customer{}, customerEvents(t, customerID, customer.CustomerReactivated{})[0], "CustomerReactivated before CustomerRegistered"},
		{"address id not a UUID", existing, badAddr, `address_id "home" is not a UUID`},
	}
	for _, tt := range customerTests {
		t.Run("customer "+tt.name, func(t *testing.T) {
			s, err := readmodel.FoldCustomer(tt.state, tt.event)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, tt.state, s)
		})
	}
}

func TestMillis(t *testing.T) {
	local := time.Date(2025, 3, 1, 13, 0, 0, 987_654_321, time.FixedZone("CET", 3600))
	m := readmodel.Millis(local)
	require.Equal(t, time.Date(2025, 3, 1, 12, 0, 0, 987_000_000, time.UTC), m)
	require.True(t, m == time.UnixMilli(m.UnixMilli()).UTC(), "== must hold, not only Equal")
	require.True(t, readmodel.Millis(time.Time{}).IsZero())
	require.Equal(t, time.Time{}, readmodel.Millis(time.Time{}))
}
