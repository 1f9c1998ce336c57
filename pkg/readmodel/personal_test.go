package readmodel_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

// sealEvents seals the personal fields of stored events under key, bound
// to aggregate, as command-service stores them.
func sealEvents(t *testing.T, key *personal.Key, aggregate gocql.UUID, events []eventstore.Event) []eventstore.Event {
	t.Helper()
	out := make([]eventstore.Event, len(events))
	for i, e := range events {
		m, err := eventcodec.Payload(e.AggregateType, e.Type, e.Data)
		require.NoError(t, err)
		_, err = personal.SealFields(m, aggregate.String(), key)
		require.NoError(t, err)
		e.Data, err = protojson.Marshal(m)
		require.NoError(t, err)
		out[i] = e
	}
	return out
}

func forgotten(t *testing.T, after []eventstore.Event) eventstore.Event {
	t.Helper()
	typ, data, err := eventcodec.CustomerCodec{}.EncodeEvent(customer.CustomerForgotten{})
	require.NoError(t, err)
	last := after[len(after)-1]
	e := last
	e.Sequence, e.EventID, e.Type, e.Data = last.Sequence+1, gocql.MustRandomUUID(), typ, data
	e.Version = eventcodec.NewUpcasters().Current(typ)
	e.OccurredAt = t0.Add(time.Duration(e.Sequence) * time.Second)
	return e
}

// The customer view holds no key: it copies sealed values into its state
// and row as they are, and on CustomerForgotten scrubs them.
func TestCustomerViewCopiesSealedValuesAndScrubsOnForget(t *testing.T) {
	key, err := personal.NewKey(personal.NewRandomKeyBytes())
	require.NoError(t, err)
	clear := customerEvents(t, customerID,
		customer.CustomerRegistered{CustomerID: customerID.String(), Name: "Ada Lovelace", Email: email(t, "ada@example.com"),
			Phone: phone(t, "+442079460958"), Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive},
		customer.CustomerAddressAdded{AddressID: homeID.String(), Address: address(t, "home", "12 St James Sq", "London")},
		customer.CustomerEmailChanged{Email: email(t, "ada@lovelace.example")},
	)
	sealed := sealEvents(t, key, customerID, clear)

	s := fold(t, readmodel.CustomerReadModel(), readmodel.Customer{}, sealed...)
	require.Equal(t, s, roundTrip(t, s), "the sealed state must survive the checkpoint's JSON")
	row := mustRow(t, s)
	for _, v := range []struct{ path, sealed, want string }{
		{"name", row.Name, "Ada Lovelace"},
		{"email", row.Email, "ada@lovelace.example"},
		{"phone", row.Phone, "+442079460958"},
		{"address.line1", row.Addresses[homeID].Line1, "12 St James Sq"},
		{"address.city", row.Addresses[homeID].City, "London"},
		{"address.country", row.Addresses[homeID].Country, "DE"},
	} {
		require.True(t, personal.IsSealed(v.sealed), "%s: %q", v.path, v.sealed)
		got, err := key.OpenString(customerID.String(), v.path, v.sealed)
		require.NoError(t, err, v.path)
		require.Equal(t, v.want, got, "the view copies the ciphertext verbatim, so it opens under its field path")
	}
	require.NotContains(t, personal.StripSealed(mustJSON(t, row)), "Ada")
	require.NotContains(t, personal.StripSealed(mustJSON(t, s)), "London")

	gone := forgotten(t, sealed)
	after, err := readmodel.FoldCustomer(s, gone)
	require.NoError(t, err)
	require.True(t, after.State.Forgotten)
	require.Equal(t, int64(4), after.State.Version, "the forget advances the version like any event")
	require.Equal(t, at(4), after.UpdatedAt)
	scrubbed := mustRow(t, after)
	require.Equal(t, personal.Redacted, scrubbed.Name)
	require.Equal(t, personal.Redacted, scrubbed.Email)
	require.Equal(t, personal.Redacted, scrubbed.Phone)
	require.Nil(t, scrubbed.Addresses)
	require.Equal(t, "BRONZE", scrubbed.Tier, "what is not personal stays")
	require.Equal(t, "ACTIVE", scrubbed.Status)
	require.NotContains(t, mustJSON(t, after), personal.TextPrefix, "no ciphertext is left in the checkpoint either")
	require.Equal(t, after, roundTrip(t, after))

	// The projector writes the scrubbed row over the sealed one.
	b := new(gocql.Batch)
	require.NoError(t, readmodel.CustomerReadModel().Write(b, customerID, s, true, after, after.State.Version))
	require.Equal(t, []gocql.BatchEntry{entry(insertCustomer, customerID, personal.Redacted, personal.Redacted, personal.Redacted,
		map[gocql.UUID]readmodel.AddressRow(nil), "BRONZE", "ACTIVE", int64(4), at(1), at(4))}, b.Entries)

	// A rebuild after the forget folds the same history to the same row.
	rebuilt := fold(t, readmodel.CustomerReadModel(), readmodel.Customer{}, append(sealed, gone)...)
	require.Equal(t, scrubbed, mustRow(t, rebuilt))

	// Clear events written before encryption are scrubbed alike.
	clearThenForgotten := fold(t, readmodel.CustomerReadModel(), readmodel.Customer{}, append(clear, forgotten(t, clear))...)
	require.Equal(t, scrubbed, mustRow(t, clearThenForgotten))
}

// The order views copy a sealed delivery signature verbatim: they cannot
// see the customer's forget, and once the key is gone the ciphertext is
// unreadable, which query-service shows as the marker.
func TestOrderViewsCopyASealedSignature(t *testing.T) {
	key, err := personal.NewKey(personal.NewRandomKeyBytes())
	require.NoError(t, err)
	events := sealEvents(t, key, orderID, orderEvents(t, orderID, created(t), order.OrderConfirmed{},
		order.OrderShipped{Carrier: "DHL", TrackingNumber: "T1"}, order.OrderDelivered{Signature: "Ada Lovelace"}))
	s := fold(t, readmodel.OrderReadModel(), readmodel.Order{}, events...)
	row, err := readmodel.OrderRowOf(orderID, s, s.State.Version)
	require.NoError(t, err)
	require.True(t, personal.IsSealed(row.DeliverySignature))
	got, err := key.OpenString(orderID.String(), "signature", row.DeliverySignature)
	require.NoError(t, err)
	require.Equal(t, "Ada Lovelace", got)
	require.Equal(t, "DHL", row.Carrier, "not personal: clear")
	require.Equal(t, s, roundTrip(t, s))
}

func mustRow(t *testing.T, s readmodel.Customer) readmodel.CustomerRow {
	t.Helper()
	row, err := readmodel.CustomerRowOf(customerID, s, s.State.Version)
	require.NoError(t, err)
	return row
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
