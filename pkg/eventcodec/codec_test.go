package eventcodec_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	customerv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/customer/v1"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func item(sku string, qty int64, minor int64) value.OrderItem {
	eur := must(value.NewCurrency("EUR"))
	return must(value.NewOrderItem(sku, qty, must(value.NewMoney(minor, eur))))
}

func TestOrderEventsRoundTrip(t *testing.T) {
	events := []order.Event{
		order.OrderCreated{OrderID: "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11", CustomerID: "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b", Items: []value.OrderItem{item("sku-1", 2, 1999), item("sku-2", 1, 0)}, Currency: must(value.NewCurrency("EUR"))},
		order.OrderItemsUpdated{Items: []value.OrderItem{item("sku-3", 7, 5)}},
		order.OrderConfirmed{},
		order.OrderShipped{Carrier: "DHL", TrackingNumber: "JD0146"},
		order.OrderDelivered{Signature: "A. Lovelace"},
		order.OrderDelivered{},
		order.OrderCancelled{Reason: "changed mind", CancelledBy: "customer", PreviousStatus: value.OrderStatusShipped},
	}
	require.Len(t, order.EventTypes(), 6)
	seen := map[string]bool{}
	for _, e := range events {
		typ, data, err := eventcodec.OrderCodec{}.EncodeEvent(e)
		require.NoError(t, err)
		require.Equal(t, e.EventType(), typ)
		got, err := eventcodec.OrderCodec{}.DecodeEvent(typ, data)
		require.NoError(t, err, "%s", data)
		require.Equal(t, e, got)
		seen[typ] = true
	}
	require.Len(t, seen, len(order.EventTypes()), "every order event type has a contract")
}

func TestCustomerEventsRoundTrip(t *testing.T) {
	addr := must(value.NewAddress(value.AddressFields{Label: "home", Line1: "1 Main St", City: "Dublin", PostalCode: "D01", Country: "IE"}))
	events := []customer.Event{
		customer.CustomerRegistered{CustomerID: "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b", Name: "Ada", Email: must(value.NewEmail("ada@example.org")), Phone: must(value.NewPhoneNumber("+353 1 234 5678")), Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive},
		customer.CustomerRegistered{CustomerID: "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b", Name: "No Phone", Email: must(value.NewEmail("np@example.org")), Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive},
		customer.CustomerProfileUpdated{Name: "Ada L."},
		customer.CustomerEmailChanged{Email: must(value.NewEmail("ada@example.com"))},
		customer.CustomerPhoneChanged{Phone: must(value.NewPhoneNumber("+14155550100"))},
		customer.CustomerPhoneChanged{},
		customer.CustomerAddressAdded{AddressID: "11111111-2222-4333-8444-555555555555", Address: addr},
		customer.CustomerAddressUpdated{AddressID: "11111111-2222-4333-8444-555555555555", Address: addr},
		customer.CustomerAddressRemoved{AddressID: "11111111-2222-4333-8444-555555555555"},
		customer.CustomerTierUpgraded{From: value.CustomerTierBronze, To: value.CustomerTierGold},
		customer.CustomerSuspended{Reason: "chargeback"},
		customer.CustomerReactivated{},
		customer.CustomerDeactivated{Reason: "asked to"},
		customer.CustomerForgotten{},
	}
	seen := map[string]bool{}
	for _, e := range events {
		typ, data, err := eventcodec.CustomerCodec{}.EncodeEvent(e)
		require.NoError(t, err)
		got, err := eventcodec.CustomerCodec{}.DecodeEvent(typ, data)
		require.NoError(t, err, "%s", data)
		require.Equal(t, e, got)
		seen[typ] = true
	}
	require.Len(t, seen, len(customer.EventTypes()), "every customer event type has a contract")
}

func TestStoredJSONIsProtoJSON(t *testing.T) {
	_, data, err := eventcodec.OrderCodec{}.EncodeEvent(order.OrderCancelled{Reason: "r", CancelledBy: "ops", PreviousStatus: value.OrderStatusConfirmed})
	require.NoError(t, err)
	require.JSONEq(t, `{"reason":"r","cancelledBy":"ops","previousStatus":"ORDER_STATUS_CONFIRMED"}`, string(data))
}

func TestDecodeRefusesBadData(t *testing.T) {
	for name, tc := range map[string]struct{ typ, data string }{
		"unknown type":     {"OrderExploded", `{}`},
		"not JSON":         {order.EventOrderShipped, `{`},
		"invalid value":    {order.EventOrderCreated, `{"orderId":"x","items":[{"productId":"a","quantity":0,"unitPrice":{"amountMinor":1,"currency":"EUR"}}],"currency":"EUR"}`},
		"bad currency":     {order.EventOrderCreated, `{"currency":"XXY"}`},
		"unset enum":       {order.EventOrderCancelled, `{"reason":"r"}`},
		"wrong field type": {order.EventOrderShipped, `{"carrier":5}`},
		// protojson takes any number for an enum; 258 must not wrap onto CONFIRMED.
		"enum out of range": {order.EventOrderCancelled, `{"reason":"r","cancelledBy":"x","previousStatus":258}`},
		"unknown enum":      {order.EventOrderCancelled, `{"reason":"r","cancelledBy":"x","previousStatus":9}`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := eventcodec.OrderCodec{}.DecodeEvent(tc.typ, []byte(tc.data))
			require.Error(t, err)
		})
	}
}

func TestDecodeRefusesBadCustomerData(t *testing.T) {
	for name, tc := range map[string]struct{ typ, data string }{
		"bad email":         {customer.EventCustomerEmailChanged, `{"email":"not an email"}`},
		"tier out of range": {customer.EventCustomerTierUpgraded, `{"from":"CUSTOMER_TIER_GOLD","to":260}`},
		"unset tier":        {customer.EventCustomerTierUpgraded, `{"from":"CUSTOMER_TIER_GOLD"}`},
		"missing city":      {customer.EventCustomerAddressAdded, `{"addressId":"a","address":{"line1":"x","postalCode":"1","country":"IE"}}`},
		"status wraps":      {customer.EventCustomerRegistered, `{"customerId":"c","name":"n","email":"a@b.org","tier":"CUSTOMER_TIER_BRONZE","status":257}`},
		"bad phone":         {customer.EventCustomerPhoneChanged, `{"phone":"12"}`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := eventcodec.CustomerCodec{}.DecodeEvent(tc.typ, []byte(tc.data))
			require.Error(t, err)
		})
	}
}

// A stored version 1 CustomerRegistered reads as version 2.
func TestUpcastCustomerRegisteredV1(t *testing.T) {
	v1, err := protojson.Marshal(&customerv1.CustomerRegisteredV1{CustomerId: "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b", FullName: "Grace Hopper", Email: "grace@example.org"})
	require.NoError(t, err)
	up := eventcodec.NewUpcasters()
	require.Equal(t, int32(2), up.Current(customer.EventCustomerRegistered))
	require.Equal(t, int32(1), up.Current(customer.EventCustomerTierUpgraded))

	e, err := up.Upcast(eventstore.Event{Type: customer.EventCustomerRegistered, Version: 1, Data: v1})
	require.NoError(t, err)
	require.Equal(t, int32(2), e.Version)
	got, err := eventcodec.CustomerCodec{}.DecodeEvent(e.Type, e.Data)
	require.NoError(t, err)
	require.Equal(t, customer.CustomerRegistered{
		CustomerID: "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b", Name: "Grace Hopper", Email: must(value.NewEmail("grace@example.org")),
		Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive,
	}, got)
}

func TestStateSnapshotsRoundTrip(t *testing.T) {
	s := order.Fold([]order.Event{
		order.OrderCreated{OrderID: "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11", CustomerID: "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b", Items: []value.OrderItem{item("sku-1", 2, 1999)}, Currency: must(value.NewCurrency("EUR"))},
		order.OrderConfirmed{},
	})
	b, err := eventcodec.OrderCodec{}.EncodeState(s)
	require.NoError(t, err)
	got, err := eventcodec.OrderCodec{}.DecodeState(b)
	require.NoError(t, err)
	require.Equal(t, s, got)
}
