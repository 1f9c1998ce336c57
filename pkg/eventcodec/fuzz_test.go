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

// FuzzOrderDecodeEvent feeds the stored-event decoder arbitrary event types
// and data, as a corrupt or hostile event_data would: it must never panic,
// and an event it accepts must encode and decode to itself under the same
// type, so that what a reader accepted is what the next reader sees.
func FuzzOrderDecodeEvent(f *testing.F) {
	var c eventcodec.OrderCodec
	for _, e := range []order.Event{
		order.OrderCreated{OrderID: "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11", CustomerID: "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b", Items: []value.OrderItem{item("sku-1", 2, 1999), item("sku-2", 1, 0)}, Currency: must(value.NewCurrency("EUR"))},
		order.OrderItemsUpdated{Items: []value.OrderItem{item("sku-3", 7, 5)}},
		order.OrderConfirmed{},
		order.OrderShipped{Carrier: "DHL", TrackingNumber: "JD0146"},
		order.OrderDelivered{Signature: "A. Lovelace"},
		order.OrderCancelled{Reason: "changed mind", CancelledBy: "customer", PreviousStatus: value.OrderStatusShipped},
	} {
		typ, data, err := c.EncodeEvent(e)
		require.NoError(f, err)
		f.Add(typ, data)
	}
	for _, s := range []struct{ typ, data string }{
		{"OrderExploded", `{}`},
		{order.EventOrderShipped, `{`},
		{order.EventOrderShipped, `{"carrier":5}`},
		{order.EventOrderCreated, `{"items":[{"productId":"A","quantity":0,"unitPrice":{"amountMinor":"1","currency":"EUR"}}],"currency":"EUR"}`},
		{order.EventOrderItemsUpdated, `{"items":[null,{"productId":" A ","quantity":1,"unitPrice":{"amountMinor":"-1","currency":"eur"}}]}`},
		{order.EventOrderCancelled, `{"previousStatus":"LOST"}`},
		{order.EventOrderCancelled, `{"previousStatus":7,"unknownField":true}`},
	} {
		f.Add(s.typ, []byte(s.data))
	}
	f.Fuzz(func(t *testing.T, eventType string, data []byte) {
		e, err := c.DecodeEvent(eventType, data)
		if err != nil {
			return
		}
		require.Equal(t, eventType, e.EventType())
		typ, encoded, err := c.EncodeEvent(e)
		require.NoError(t, err)
		require.Equal(t, eventType, typ)
		again, err := c.DecodeEvent(typ, encoded)
		require.NoError(t, err, "%s", encoded)
		require.Equal(t, e, again)
	})
}

// FuzzCustomerDecodeEvent is FuzzOrderDecodeEvent for customer events.
func FuzzCustomerDecodeEvent(f *testing.F) {
	var c eventcodec.CustomerCodec
	addr := must(value.NewAddress(value.AddressFields{Label: "home", Line1: "1 Main St", City: "Dublin", PostalCode: "D01", Country: "IE"}))
	for _, e := range []customer.Event{
		customer.CustomerRegistered{CustomerID: "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b", Name: "Ada", Email: must(value.NewEmail("ada@example.org")), Phone: must(value.NewPhoneNumber("+353 1 234 5678")), Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive},
		customer.CustomerProfileUpdated{Name: "Ada L."},
		customer.CustomerEmailChanged{Email: must(value.NewEmail("ada@example.com"))},
		customer.CustomerPhoneChanged{Phone: must(value.NewPhoneNumber("+14155550100"))},
		customer.CustomerAddressAdded{AddressID: "11111111-2222-4333-8444-555555555555", Address: addr},
		customer.CustomerAddressUpdated{AddressID: "11111111-2222-4333-8444-555555555555", Address: addr},
		customer.CustomerAddressRemoved{AddressID: "11111111-2222-4333-8444-555555555555"},
		customer.CustomerTierUpgraded{From: value.CustomerTierBronze, To: value.CustomerTierGold},
		customer.CustomerSuspended{Reason: "chargeback"},
		customer.CustomerReactivated{},
		customer.CustomerDeactivated{Reason: "asked to"},
		customer.CustomerForgotten{},
	} {
		typ, data, err := c.EncodeEvent(e)
		require.NoError(f, err)
		f.Add(typ, data)
	}
	for _, s := range []struct{ typ, data string }{
		{"CustomerLost", `{}`},
		{customer.EventCustomerSuspended, `[`},
		{customer.EventCustomerEmailChanged, `{"email":"not an email"}`},
		{customer.EventCustomerRegistered, `{"email":" ANN@X.ORG ","phone":"+1 (555) 123-4567","tier":"CUSTOMER_TIER_GOLD","status":1}`},
		{customer.EventCustomerTierUpgraded, `{"from":"CUSTOMER_TIER_GOLD","to":"IRON"}`},
		{customer.EventCustomerAddressAdded, `{"address":{"line1":"x"}}`},
		{customer.EventCustomerAddressAdded, `{"address":{"line1":" a ","city":"b","postalCode":"c","country":"de"}}`},
		{customer.EventCustomerPhoneChanged, `{"phone":""}`},
		// Sealed and redacted personal values (kept verbatim).
		{customer.EventCustomerRegistered, `{"customerId":"c","name":"pd:AQ","email":"pd:AQID","phone":"[redacted]","tier":1,"status":1}`},
		{customer.EventCustomerEmailChanged, `{"email":"[redacted]"}`},
		{customer.EventCustomerAddressAdded, `{"address":{"line1":"pd:AQ","city":" x ","postalCode":"","country":"[redacted]"}}`},
		{customer.EventCustomerForgotten, `{"unknown":1}`},
	} {
		f.Add(s.typ, []byte(s.data))
	}
	f.Fuzz(func(t *testing.T, eventType string, data []byte) {
		e, err := c.DecodeEvent(eventType, data)
		if err != nil {
			return
		}
		require.Equal(t, eventType, e.EventType())
		typ, encoded, err := c.EncodeEvent(e)
		require.NoError(t, err)
		require.Equal(t, eventType, typ)
		again, err := c.DecodeEvent(typ, encoded)
		require.NoError(t, err, "%s", encoded)
		require.Equal(t, e, again)
	})
}

// FuzzUpcastCustomerRegisteredV1 feeds the version 1 upcaster arbitrary
// stored data: it must never panic, and an upcast that succeeds yields a
// version 2 event whose data parses as the current contract.
func FuzzUpcastCustomerRegisteredV1(f *testing.F) {
	f.Add(must(protojson.Marshal(&customerv1.CustomerRegisteredV1{CustomerId: "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b", FullName: "Grace Hopper", Email: "grace@example.org"})))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{`))
	f.Add([]byte(`{"fullName":5}`))
	f.Add([]byte(`{"customerId":"x","fullName":"A","email":"not an email","phone":"+1","unknown":[1]}`))
	up := eventcodec.NewUpcasters()
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := up.Upcast(eventstore.Event{Type: customer.EventCustomerRegistered, Version: 1, Data: data})
		if err != nil {
			return
		}
		require.Equal(t, int32(2), e.Version)
		_, err = eventcodec.Payload(customer.AggregateType, e.Type, e.Data)
		require.NoError(t, err, "%s", e.Data)
	})
}
