package personal_test

import (
	"context"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	customerv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/customer/v1"
	_ "github.com/orderstream/orderstream/pkg/gen/orderstream/event/v1"
	orderv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/order/v1"
	"github.com/orderstream/orderstream/pkg/personal"
)

var update = flag.Bool("update", false, "rewrite testdata/personal_fields.golden")

// TestPersonalFieldsGolden lists every field of the event contracts marked
// personal. buf breaking does not compare custom options, so this list is
// what keeps a marking from being dropped by accident: a field that loses
// its marking would be stored in clear from then on. Adding a marking is
// a deliberate change: run the test with -update and commit the list.
func TestPersonalFieldsGolden(t *testing.T) {
	var got []string
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "orderstream.") {
			return true
		}
		var walk func(protoreflect.MessageDescriptors)
		walk = func(ms protoreflect.MessageDescriptors) {
			for i := range ms.Len() {
				md := ms.Get(i)
				fields := md.Fields()
				for j := range fields.Len() {
					f := fields.Get(j)
					if personal.IsPersonal(f) {
						require.Equal(t, protoreflect.StringKind, f.Kind(), "%s: only string fields can be personal", f.FullName())
						got = append(got, string(f.FullName()))
					}
				}
				walk(md.Messages())
			}
		}
		walk(fd.Messages())
		return true
	})
	slices.Sort(got)
	const golden = "testdata/personal_fields.golden"
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(strings.Join(got, "\n")+"\n"), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, strings.Split(strings.TrimSpace(string(want)), "\n"), got,
		"the personal fields of the event contracts changed; a field that lost its marking would be stored in clear")
}

func registered() *customerv1.CustomerRegistered {
	return &customerv1.CustomerRegistered{CustomerId: ann, Name: "Ada Lovelace", Email: "ada@example.com", Phone: "+441234567890",
		Tier: customerv1.CustomerTier_CUSTOMER_TIER_BRONZE, Status: customerv1.CustomerStatus_CUSTOMER_STATUS_ACTIVE}
}

func addressAdded() *customerv1.CustomerAddressAdded {
	return &customerv1.CustomerAddressAdded{AddressId: "home", Address: &customerv1.Address{
		Label: "home", Line1: "12 St James's Square", Line2: "Flat 3", City: "London", Region: "Greater London", PostalCode: "SW1Y 4JH", Country: "GB"}}
}

// clearTexts are the personal values of the test events, as a scan of
// stored bytes would look for them.
var clearTexts = []string{"Ada", "Lovelace", "ada@example.com", "+441234567890", "St James", "Flat 3", "London", "SW1Y", "A. Lovelace"}

func TestSealFieldsRoundTrip(t *testing.T) {
	k := newKey(t, 1)
	const order = "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11"
	for _, c := range []struct {
		name      string
		aggregate string
		msg       proto.Message
		sealed    int
	}{
		{"customer registered", ann, registered(), 3},
		{"address added", ann, addressAdded(), 7},
		{"email changed", ann, &customerv1.CustomerEmailChanged{Email: "ada@example.com"}, 1},
		{"phone removed", ann, &customerv1.CustomerPhoneChanged{}, 0},
		{"legacy v1 layout", ann, &customerv1.CustomerRegisteredV1{CustomerId: ann, FullName: "Ada Lovelace", Email: "ada@example.com"}, 2},
		{"order delivered", order, &orderv1.OrderDelivered{Signature: "A. Lovelace"}, 1},
		{"order created (nothing personal)", order, &orderv1.OrderCreated{OrderId: order, CustomerId: ann, Currency: "EUR",
			Items: []*orderv1.OrderItem{{ProductId: "sku-1", Quantity: 2, UnitPrice: &orderv1.Money{AmountMinor: 1999, Currency: "EUR"}}}}, 0},
		{"order shipped (nothing personal)", order, &orderv1.OrderShipped{Carrier: "DHL", TrackingNumber: "JD0146"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			orig := proto.Clone(c.msg)
			n, err := personal.SealFields(c.msg, c.aggregate, k)
			require.NoError(t, err)
			require.Equal(t, c.sealed, n)
			stored, err := protojson.Marshal(c.msg)
			require.NoError(t, err)
			for _, s := range clearTexts {
				require.NotContains(t, personal.StripSealed(string(stored)), s, "no personal value in clear")
			}
			if c.sealed == 0 {
				require.True(t, proto.Equal(orig, c.msg), "a message without personal values is unchanged")
			}

			read := proto.Clone(c.msg)
			o, err := personal.OpenFields(read, c.aggregate, k)
			require.NoError(t, err)
			require.Equal(t, personal.Outcome{Opened: c.sealed}, o)
			require.True(t, proto.Equal(orig, read), "opened %v, want %v", read, orig)

			if c.sealed > 0 {
				redacted := proto.Clone(c.msg)
				o, err := personal.OpenFields(redacted, c.aggregate, nil)
				require.NoError(t, err)
				require.Equal(t, personal.Outcome{Redacted: c.sealed}, o)
				require.True(t, o.IsRedacted())
			}
		})
	}
}

func TestSealKeepsWhatIsNotPersonal(t *testing.T) {
	m := registered()
	_, err := personal.SealFields(m, ann, newKey(t, 1))
	require.NoError(t, err)
	require.Equal(t, ann, m.GetCustomerId())
	require.Equal(t, customerv1.CustomerTier_CUSTOMER_TIER_BRONZE, m.GetTier())
	require.Equal(t, customerv1.CustomerStatus_CUSTOMER_STATUS_ACTIVE, m.GetStatus())
	for _, v := range []string{m.GetName(), m.GetEmail(), m.GetPhone()} {
		require.True(t, personal.IsSealed(v))
	}

	a := addressAdded()
	_, err = personal.SealFields(a, ann, newKey(t, 1))
	require.NoError(t, err)
	require.Equal(t, "home", a.GetAddressId(), "the address id is no personal data")
}

func TestSealedFieldsDoNotMove(t *testing.T) {
	k := newKey(t, 1)
	m := registered()
	_, err := personal.SealFields(m, ann, k)
	require.NoError(t, err)

	moved := proto.Clone(m).(*customerv1.CustomerRegistered)
	moved.CustomerId = bob
	_, err = personal.OpenFields(moved, bob, k)
	require.ErrorIs(t, err, personal.ErrAuth, "another aggregate")

	swapped := proto.Clone(m).(*customerv1.CustomerRegistered)
	swapped.Name, swapped.Email = m.GetEmail(), m.GetName()
	_, err = personal.OpenFields(swapped, ann, k)
	require.ErrorIs(t, err, personal.ErrAuth, "another field")
}

func TestOpenLegacyAndRedacted(t *testing.T) {
	ctx := context.Background()
	kr, _ := newKeyring(t, personal.NewMemStore())

	legacy := registered()
	o, err := kr.Open(ctx, legacy, ann, ann)
	require.NoError(t, err)
	require.Equal(t, personal.Outcome{Plain: 3}, o, "clear values of a customer without a key are read as they are")
	require.True(t, proto.Equal(registered(), legacy))

	sealed := registered()
	require.NoError(t, kr.Seal(ctx, sealed, ann, ann))
	mixed := proto.Clone(sealed).(*customerv1.CustomerRegistered)
	mixed.Phone = "+441234567890" // as if written in clear before the upgrade
	o, err = kr.Open(ctx, mixed, ann, ann)
	require.NoError(t, err)
	require.Equal(t, personal.Outcome{Opened: 2, Plain: 1}, o)
	require.True(t, proto.Equal(registered(), mixed))

	require.NoError(t, kr.Forget(ctx, ann))
	for _, m := range []*customerv1.CustomerRegistered{proto.Clone(sealed).(*customerv1.CustomerRegistered), registered()} {
		o, err = kr.Open(ctx, m, ann, ann)
		require.NoError(t, err, "a forgotten customer's fields are redacted, not an error")
		require.Equal(t, personal.Outcome{Redacted: 3}, o)
		require.Equal(t, personal.Redacted, m.GetName())
		require.Equal(t, personal.Redacted, m.GetEmail())
		require.Equal(t, personal.Redacted, m.GetPhone())
		require.Equal(t, ann, m.GetCustomerId(), "what is not personal stays")
		require.Equal(t, customerv1.CustomerTier_CUSTOMER_TIER_BRONZE, m.GetTier())
	}
	require.ErrorIs(t, kr.Seal(ctx, registered(), ann, ann), personal.ErrForgotten, "nothing new is sealed for a forgotten customer")
	require.NoError(t, kr.Seal(ctx, &orderv1.OrderShipped{Carrier: "DHL"}, ann, bob), "a message without personal values needs no key")
}

func TestOpenWithoutKeyFails(t *testing.T) {
	ctx := context.Background()
	kr, reg := newKeyring(t, personal.NewMemStore())
	m := registered()
	_, err := personal.SealFields(m, ann, newKey(t, 9))
	require.NoError(t, err)
	_, err = kr.Open(ctx, m, ann, ann)
	require.ErrorIs(t, err, personal.ErrNoKey, "sealed values of a customer without a key are a failure, not a redaction")
	require.Equal(t, 1.0, counter(t, reg, "orderstream_personal_decrypt_failures_total", "no_key"))

	_, err = kr.KeyFor(ctx, ann)
	require.NoError(t, err)
	_, err = kr.Open(ctx, m, ann, ann)
	require.ErrorIs(t, err, personal.ErrAuth, "sealed under another key")
	require.Equal(t, 1.0, counter(t, reg, "orderstream_personal_decrypt_failures_total", "auth"))
}

// FuzzOpenFields opens arbitrary protojson as a CustomerAddressAdded (a
// nested message of personal fields), as a corrupt or hostile stored event
// would be: it must never panic, and a message it opens must seal and open
// to itself.
func FuzzOpenFields(f *testing.F) {
	k := newKey(f, 3)
	sealed := addressAdded()
	_, err := personal.SealFields(sealed, ann, k)
	require.NoError(f, err)
	for _, m := range []proto.Message{sealed, addressAdded(), &customerv1.CustomerAddressAdded{}} {
		b, err := protojson.Marshal(m)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(`{"address":{"city":"pd:"}}`))
	f.Add([]byte(`{"address":{"city":"pd:AQ","line1":"clear"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := &customerv1.CustomerAddressAdded{}
		if protojson.Unmarshal(data, m) != nil {
			return
		}
		if _, err := personal.OpenFields(m, ann, k); err != nil {
			return
		}
		again := proto.Clone(m)
		_, err := personal.SealFields(again, ann, k)
		require.NoError(t, err)
		_, err = personal.OpenFields(again, ann, k)
		require.NoError(t, err)
		require.True(t, proto.Equal(m, again))
	})
}
