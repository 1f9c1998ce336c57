package eventcodec

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	customerv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/customer/v1"
	orderv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/order/v1"
	"github.com/orderstream/orderstream/pkg/personal"
)

// These tests and the benchmark run the path command-service takes with
// personal data on (repository.Sealing): EncodeEvent, then SealData before
// the event is stored; OpenData after it is read, then DecodeEvent.

const personalCustomer = "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b"

func personalKeyring(tb testing.TB) *personal.Keyring {
	tb.Helper()
	w, err := personal.NewFileWrapper(bytes.Repeat([]byte{0x42}, personal.KeySize))
	require.NoError(tb, err)
	cfg := personal.DefaultConfig()
	cfg.KEKFile = "/run/secrets/orderstream-kek"
	kr, err := personal.NewKeyring(cfg, personal.NewMemStore(), w, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(tb, err)
	return kr
}

func mustValue[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func personalCustomerEvents() []customer.Event {
	addr := mustValue(value.NewAddress(value.AddressFields{Label: "home", Line1: "12 St James's Square", City: "London", PostalCode: "SW1Y 4JH", Country: "GB"}))
	return []customer.Event{
		customer.CustomerRegistered{CustomerID: personalCustomer, Name: "Ada Lovelace", Email: mustValue(value.NewEmail("ada@example.org")),
			Phone: mustValue(value.NewPhoneNumber("+44 20 7946 0958")), Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive},
		customer.CustomerProfileUpdated{Name: "Ada King"},
		customer.CustomerEmailChanged{Email: mustValue(value.NewEmail("ada.king@example.com"))},
		customer.CustomerPhoneChanged{},
		customer.CustomerAddressAdded{AddressID: "11111111-2222-4333-8444-555555555555", Address: addr},
		customer.CustomerTierUpgraded{From: value.CustomerTierBronze, To: value.CustomerTierGold},
	}
}

// sealEvent encodes e as stored with personal data on.
func sealEvent(ctx context.Context, kr *personal.Keyring, e customer.Event) (string, []byte, error) {
	typ, data, err := CustomerCodec{}.EncodeEvent(e)
	if err != nil {
		return "", nil, err
	}
	data, err = SealData(ctx, kr, customer.AggregateType, typ, data, personalCustomer, personalCustomer)
	return typ, data, err
}

// openEvent decodes stored data with personal data on.
func openEvent(ctx context.Context, kr *personal.Keyring, typ string, data []byte) (customer.Event, error) {
	data, _, err := OpenData(ctx, kr, customer.AggregateType, typ, data, personalCustomer, personalCustomer)
	if err != nil {
		return nil, err
	}
	return CustomerCodec{}.DecodeEvent(typ, data)
}

func TestSealedCustomerEventsRoundTrip(t *testing.T) {
	ctx := context.Background()
	kr := personalKeyring(t)
	for _, e := range personalCustomerEvents() {
		typ, data, err := sealEvent(ctx, kr, e)
		require.NoError(t, err)
		for _, clear := range []string{"Ada", "Lovelace", "King", "example", "7946", "James", "London", "SW1Y"} {
			require.NotContains(t, personal.StripSealed(string(data)), clear)
		}
		got, err := openEvent(ctx, kr, typ, data)
		require.NoError(t, err, "%s", data)
		require.Equal(t, e, got)

		// The encoding of today reads the same event from its clear JSON.
		_, plain, err := CustomerCodec{}.EncodeEvent(e)
		require.NoError(t, err)
		got, err = openEvent(ctx, kr, typ, plain)
		require.NoError(t, err, "an event stored before encryption reads as it is")
		require.Equal(t, e, got)
	}
}

// TestForgottenContractMessagesAreRedacted: after a forget the contract
// message reads Redacted in every personal field, and its other fields
// stay. (The domain event decodes with the marker kept verbatim:
// TestDecodeKeepsOpaqueValues.)
func TestForgottenContractMessagesAreRedacted(t *testing.T) {
	ctx := context.Background()
	kr := personalKeyring(t)
	e := personalCustomerEvents()[0]
	typ, data, err := sealEvent(ctx, kr, e)
	require.NoError(t, err)
	require.NoError(t, kr.Forget(ctx, personalCustomer))
	m, err := Payload(customer.AggregateType, typ, data)
	require.NoError(t, err)
	o, err := kr.Open(ctx, m, personalCustomer, personalCustomer)
	require.NoError(t, err)
	require.Equal(t, personal.Outcome{Redacted: 3}, o)
	js, err := marshal.Marshal(m)
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(string(js), personal.Redacted), "%s", js)
	require.Contains(t, string(js), personalCustomer)
	require.Contains(t, string(js), "CUSTOMER_TIER_BRONZE")
}

// roundTrip returns one encode and decode of e, in clear (kr nil, as
// with personal.enabled off) or sealed and opened.
func roundTrip(ctx context.Context, kr *personal.Keyring, e customer.Event) error {
	if kr == nil {
		var c CustomerCodec
		typ, data, err := c.EncodeEvent(e)
		if err != nil {
			return err
		}
		_, err = c.DecodeEvent(typ, data)
		return err
	}
	typ, data, err := sealEvent(ctx, kr, e)
	if err != nil {
		return err
	}
	_, err = openEvent(ctx, kr, typ, data)
	return err
}

// BenchmarkCustomerEventEncryption encodes and decodes a CustomerRegistered
// (three personal fields) in clear, and with its personal fields sealed
// and opened under a cached data key, as command-service does.
func BenchmarkCustomerEventEncryption(b *testing.B) {
	ctx := context.Background()
	e := personalCustomerEvents()[0]
	for _, c := range []struct {
		name string
		kr   *personal.Keyring
	}{{"plain", nil}, {"sealed", personalKeyring(b)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := roundTrip(ctx, c.kr, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCustomerEventEncryptionRatio reports sealed/plain: the factor
// by which the codec's share of commit and query latency grows (issue 20's
// target, 1.1× on end-to-end p50, is for make bench; this is the codec
// alone). Each iteration runs one of each, so that load from other
// processes weighs on both alike.
func BenchmarkCustomerEventEncryptionRatio(b *testing.B) {
	ctx := context.Background()
	kr := personalKeyring(b)
	e := personalCustomerEvents()[0]
	var plain, sealed time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := roundTrip(ctx, nil, e); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := roundTrip(ctx, kr, e); err != nil {
			b.Fatal(err)
		}
		plain, sealed = plain+t1.Sub(t0), sealed+time.Since(t1)
	}
	b.ReportMetric(float64(plain.Nanoseconds())/float64(b.N), "plain-ns/op")
	b.ReportMetric(float64(sealed.Nanoseconds())/float64(b.N), "sealed-ns/op")
	b.ReportMetric(float64(sealed)/float64(plain), "sealed/plain")
}

// A reader without the key (a projector) decodes sealed and redacted
// personal values verbatim, unvalidated, and its state keeps them through
// its JSON (a projector's checkpoint, a snapshot).
func TestDecodeKeepsOpaqueValues(t *testing.T) {
	ctx := context.Background()
	kr := personalKeyring(t)
	var stored [][2]string
	for _, e := range personalCustomerEvents() {
		typ, data, err := sealEvent(ctx, kr, e)
		require.NoError(t, err)
		stored = append(stored, [2]string{typ, string(data)})
	}
	fold := func() customer.State {
		var events []customer.Event
		for _, s := range stored {
			e, err := CustomerCodec{}.DecodeEvent(s[0], []byte(s[1]))
			require.NoError(t, err, "%s", s[1])
			events = append(events, e)
		}
		return customer.Fold(events)
	}
	s := fold()
	require.True(t, personal.IsSealed(s.Name))
	require.True(t, personal.IsSealed(s.Email.String()))
	require.True(t, s.Phone.IsZero(), "the phone was removed")
	require.True(t, personal.IsSealed(s.Addresses[0].Address.City()))
	require.True(t, personal.IsSealed(s.Addresses[0].Address.Country().String()))
	js, err := json.Marshal(s)
	require.NoError(t, err)
	var back customer.State
	require.NoError(t, json.Unmarshal(js, &back))
	require.Equal(t, s, back)

	// Opened after a forget: the marker, kept the same way.
	require.NoError(t, kr.Forget(ctx, personalCustomer))
	for i, st := range stored {
		data, o, err := OpenData(ctx, kr, customer.AggregateType, st[0], []byte(st[1]), personalCustomer, personalCustomer)
		require.NoError(t, err)
		require.Zero(t, o.Opened)
		stored[i][1] = string(data)
	}
	s = fold()
	require.Equal(t, personal.Redacted, s.Name)
	require.Equal(t, personal.Redacted, s.Email.String())
	require.Equal(t, personal.Redacted, s.Addresses[0].Address.Line1())
	require.Empty(t, s.Addresses[0].Address.Line2(), "an empty value stays empty")
	js, err = json.Marshal(s)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(js, &back))
	require.Equal(t, s, back)
}

// The value package spells sealed and redacted values as pkg/personal
// does (it cannot import it).
func TestOpaqueSpellingsMatchPersonal(t *testing.T) {
	require.True(t, value.IsOpaque(personal.Redacted))
	require.True(t, value.IsOpaque(personal.TextPrefix+"AQ"))
	require.False(t, value.IsOpaque("ada@example.org"))
	_, err := value.NewEmail(personal.Redacted)
	require.Error(t, err, "a client cannot send the marker as an email")
}

func TestSealDataLeavesEventsWithoutPersonalFields(t *testing.T) {
	ctx := context.Background()
	kr := personalKeyring(t)
	require.False(t, HasPersonalFields(customer.AggregateType, customer.EventCustomerTierUpgraded))
	require.False(t, HasPersonalFields(customer.AggregateType, customer.EventCustomerForgotten))
	require.True(t, HasPersonalFields(customer.AggregateType, customer.EventCustomerAddressAdded))
	require.True(t, HasPersonalFields(order.AggregateType, order.EventOrderDelivered))
	require.False(t, HasPersonalFields(order.AggregateType, order.EventOrderCreated))
	data := []byte(`{"from":"CUSTOMER_TIER_BRONZE","to":"CUSTOMER_TIER_GOLD"}`)
	got, err := SealData(ctx, kr, customer.AggregateType, customer.EventCustomerTierUpgraded, data, personalCustomer, personalCustomer)
	require.NoError(t, err)
	require.Equal(t, data, got)

	// An order's signature, sealed under its customer's key and bound to
	// the order; redacted without a key.
	const orderID = "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11"
	_, data, err = OrderCodec{}.EncodeEvent(order.OrderDelivered{Signature: "Ada L."})
	require.NoError(t, err)
	sealed, err := SealData(ctx, kr, order.AggregateType, order.EventOrderDelivered, data, personalCustomer, orderID)
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "Ada")
	_, _, err = OpenData(ctx, kr, order.AggregateType, order.EventOrderDelivered, sealed, personalCustomer, personalCustomer)
	require.ErrorIs(t, err, personal.ErrAuth, "bound to the order id")
	opened, o, err := OpenData(ctx, kr, order.AggregateType, order.EventOrderDelivered, sealed, personalCustomer, orderID)
	require.NoError(t, err)
	require.Equal(t, 1, o.Opened)
	require.JSONEq(t, string(data), string(opened))
	redacted, err := RedactData(order.AggregateType, order.EventOrderDelivered, data)
	require.NoError(t, err)
	require.JSONEq(t, `{"signature":"[redacted]"}`, string(redacted))

	require.NoError(t, kr.Forget(ctx, personalCustomer))
	_, err = SealData(ctx, kr, order.AggregateType, order.EventOrderDelivered, data, personalCustomer, orderID)
	require.ErrorIs(t, err, personal.ErrForgotten)
}

func TestPayloadVersion(t *testing.T) {
	v1 := []byte(`{"customerId":"` + personalCustomer + `","fullName":"Grace Hopper","email":"grace@example.org"}`)
	m, err := PayloadVersion(customer.AggregateType, customer.EventCustomerRegistered, 1, v1)
	require.NoError(t, err)
	require.Equal(t, "Grace Hopper", m.(*customerv1.CustomerRegisteredV1).GetFullName())
	m, err = PayloadVersion(customer.AggregateType, customer.EventCustomerRegistered, 2, []byte(`{"name":"Grace"}`))
	require.NoError(t, err)
	require.Equal(t, "Grace", m.(*customerv1.CustomerRegistered).GetName())
	m, err = PayloadVersion(order.AggregateType, order.EventOrderDelivered, 1, []byte(`{"signature":"x"}`))
	require.NoError(t, err)
	require.Equal(t, "x", m.(*orderv1.OrderDelivered).GetSignature())
	_, err = PayloadVersion(customer.AggregateType, customer.EventCustomerRegistered, 3, []byte(`{}`))
	require.Error(t, err)
	id, err := OrderCustomerID([]byte(`{"orderId":"o","customerId":"` + personalCustomer + `"}`))
	require.NoError(t, err)
	require.Equal(t, personalCustomer, id)
}

// FuzzOpenData feeds the opening of stored data arbitrary event types and
// data, as a corrupt event_data would: it must never panic, and data it
// opens decodes as the contract of its type.
func FuzzOpenData(f *testing.F) {
	ctx := context.Background()
	kr := personalKeyring(f)
	for _, e := range personalCustomerEvents() {
		typ, data, err := sealEvent(ctx, kr, e)
		require.NoError(f, err)
		f.Add(typ, data)
	}
	f.Add(customer.EventCustomerEmailChanged, []byte(`{"email":"pd:AQ"}`))
	f.Add(customer.EventCustomerEmailChanged, []byte(`{"email":"pd:!!"}`))
	f.Add(customer.EventCustomerAddressAdded, []byte(`{"address":{"line1":"pd:"}}`))
	f.Add("CustomerLost", []byte(`{}`))
	f.Fuzz(func(t *testing.T, eventType string, data []byte) {
		opened, _, err := OpenData(ctx, kr, customer.AggregateType, eventType, data, personalCustomer, personalCustomer)
		if err != nil {
			return
		}
		if HasPersonalFields(customer.AggregateType, eventType) {
			_, err = Payload(customer.AggregateType, eventType, opened)
			require.NoError(t, err, "%s", opened)
		}
	})
}
