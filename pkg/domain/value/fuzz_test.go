package value_test

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

// Every parser is fuzzed for the same two promises: it never panics, and an
// accepted value's String() parses back to the same value (normalisation is
// idempotent). A refusal must be a RuleError with a code, since the HTTP
// layer maps nothing else to 422.

func requireRefusal(t *testing.T, err error) {
	t.Helper()
	var rule *domain.RuleError
	require.ErrorAs(t, err, &rule)
	require.NotEmpty(t, rule.Code)
	require.NotEmpty(t, rule.Field)
}

func FuzzEmail(f *testing.F) {
	for _, s := range []string{
		"ann@example.com", " Ann.Lee@Example.COM ", "a@b.c", "!#$%&'*+-/=?^_`{|}~@x.org",
		"a..b@x.org", "@x.org", "a@", "a@b@c.d", "a@-b.com", "a@b-.com", "a@1.2.3.4", "a@[1.2.3.4]",
		"jörg@example.com", "a@bücher.de", "a@xn--bcher-kva.de", `"a b"@x.org`, "A@B.C\u212A",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := value.NewEmail(in)
		if err != nil {
			requireRefusal(t, err)
			require.True(t, e.IsZero())
			return
		}
		s := e.String()
		require.LessOrEqual(t, len(s), 254)
		require.LessOrEqual(t, len(e.LocalPart()), 64)
		require.Equal(t, s, e.LocalPart()+"@"+e.Domain())
		for i := 0; i < len(s); i++ {
			require.Less(t, s[i], byte(utf8.RuneSelf), "only ASCII is accepted")
			require.False(t, s[i] >= 'A' && s[i] <= 'Z', "normalised to lower case")
		}
		again, err := value.NewEmail(s)
		require.NoError(t, err)
		require.Equal(t, e, again)
	})
}

func FuzzPhoneNumber(f *testing.F) {
	for _, s := range []string{
		"+442079460958", "+44 (20) 7946-0958", "+1.555.123.4567", "+12345678", "+123456789012345",
		"+1234567", "+1234567890123456", "+0123456789", "0044 20 7946 0958", "+٤٤٢٠٧٩٤٦٠٩٥٨", "++1", "+",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := value.NewPhoneNumber(in)
		if err != nil {
			requireRefusal(t, err)
			require.True(t, p.IsZero())
			return
		}
		s := p.String()
		require.Regexp(t, `^\+[1-9][0-9]{7,14}$`, s)
		again, err := value.NewPhoneNumber(s)
		require.NoError(t, err)
		require.Equal(t, p, again)
	})
}

func FuzzCountryCode(f *testing.F) {
	for _, s := range []string{"DE", "us", " gb ", "XK", "UK", "ZZ", "D", "DEU", "ıt", "ＤＥ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := value.NewCountryCode(in)
		if err != nil {
			requireRefusal(t, err)
			require.True(t, c.IsZero())
			return
		}
		require.Regexp(t, `^[A-Z]{2}$`, c.String())
		again, err := value.NewCountryCode(c.String())
		require.NoError(t, err)
		require.Equal(t, c, again)
	})
}

func FuzzCurrency(f *testing.F) {
	for _, s := range []string{"USD", "eur", " jpy ", "KWD", "CLF", "XAU", "HRK", "ABC", "US", "€", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := value.NewCurrency(in)
		if err != nil {
			requireRefusal(t, err)
			require.True(t, c.IsZero())
			return
		}
		require.Regexp(t, `^[A-Z]{3}$`, c.String())
		require.Contains(t, []int{0, 2, 3, 4}, c.MinorUnits())
		again, err := value.NewCurrency(c.String())
		require.NoError(t, err)
		require.Equal(t, c, again)
	})
}

func FuzzAddress(f *testing.F) {
	f.Add("Home", "221B Baker Street", "Flat 2", "London", "Greater London", "NW1 6XE", "gb")
	f.Add("", " Königsallee 1 ", "", "Düsseldorf", "", "40212", "DE")
	f.Add("", "a\nb", "", "c", "", "d", "FR")
	f.Add("x", "\u202e", "\u2028", "\ufeff", "\x85", "\xff", "XK")
	f.Fuzz(func(t *testing.T, label, line1, line2, city, region, postal, country string) {
		a, err := value.NewAddress(value.AddressFields{
			Label: label, Line1: line1, Line2: line2, City: city, Region: region, PostalCode: postal, Country: country,
		})
		if err != nil {
			requireRefusal(t, err)
			require.True(t, a.IsZero())
			return
		}
		require.NotEmpty(t, a.Line1())
		require.NotEmpty(t, a.City())
		require.NotEmpty(t, a.PostalCode())
		again, err := value.NewAddress(a.Fields())
		require.NoError(t, err)
		require.Equal(t, a, again)
	})
}

func FuzzOrderItem(f *testing.F) {
	f.Add("SKU-1", int64(3), int64(199), "USD")
	f.Add(" SKU-1 ", int64(10_000), int64(922337203685477), "jpy")
	f.Add("SKU 1", int64(0), int64(-1), "XAU")
	f.Add("", int64(-1), int64(9223372036854775807), "")
	f.Fuzz(func(t *testing.T, productID string, quantity, amount int64, code string) {
		c, err := value.NewCurrency(code)
		if err != nil {
			return
		}
		price, err := value.NewMoney(amount, c)
		require.NoError(t, err)
		it, err := value.NewOrderItem(productID, quantity, price)
		if err != nil {
			requireRefusal(t, err)
			require.True(t, it.IsZero())
			return
		}
		require.Positive(t, it.Quantity())
		require.LessOrEqual(t, it.Quantity(), int64(value.MaxQuantity))
		require.False(t, it.UnitPrice().IsNegative())
		want, err := it.UnitPrice().Multiply(it.Quantity())
		require.NoError(t, err)
		require.Equal(t, want, it.LineTotal())
		again, err := value.NewOrderItem(it.ProductID(), it.Quantity(), it.UnitPrice())
		require.NoError(t, err)
		require.Equal(t, it, again)
	})
}

func FuzzOrderStatus(f *testing.F) {
	for _, s := range []string{"CREATED", "confirmed", " Shipped ", "DELIVERED", "cancelled", "CANCELED", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := value.ParseOrderStatus(in)
		if err != nil {
			requireRefusal(t, err)
			require.False(t, s.IsValid())
			return
		}
		require.True(t, s.IsValid())
		again, err := value.ParseOrderStatus(s.String())
		require.NoError(t, err)
		require.Equal(t, s, again)
	})
}

func FuzzCustomerTier(f *testing.F) {
	for _, s := range []string{"BRONZE", "silver", " Gold ", "PLATINUM", "GOL\u212A", "", "DIAMOND"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tier, err := value.ParseCustomerTier(in)
		if err != nil {
			requireRefusal(t, err)
			require.Zero(t, tier.Rank())
			return
		}
		require.Positive(t, tier.Rank())
		again, err := value.ParseCustomerTier(tier.String())
		require.NoError(t, err)
		require.Equal(t, tier, again)
	})
}

func FuzzCustomerStatus(f *testing.F) {
	for _, s := range []string{"ACTIVE", "suspended", " Deactivated ", "", "INACTIVE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := value.ParseCustomerStatus(in)
		if err != nil {
			requireRefusal(t, err)
			require.False(t, s.IsValid())
			return
		}
		again, err := value.ParseCustomerStatus(s.String())
		require.NoError(t, err)
		require.Equal(t, s, again)
	})
}

// The JSON decoders read stored events; they are fuzzed for the same
// promises, with "re-encode and decode again" as the idempotence check.

func fuzzJSON[T any](t *testing.T, data []byte) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return
	}
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var again T
	require.NoError(t, json.Unmarshal(b, &again), "%s", b)
	require.Equal(t, v, again)
}

func FuzzMoneyJSON(f *testing.F) {
	for _, s := range []string{`{"amount":1,"currency":"USD"}`, `null`, `{"amount":-9223372036854775808,"currency":"kwd"}`,
		`{"amount":1.5,"currency":"USD"}`, `{"currency":"XAU"}`, `[]`, `{"amount":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzJSON[value.Money](t, data) })
}

func FuzzOrderItemJSON(f *testing.F) {
	for _, s := range []string{
		`{"product_id":"SKU","quantity":2,"unit_price":{"amount":999,"currency":"EUR"}}`,
		`{"product_id":" SKU ","quantity":10000,"unit_price":{"amount":922337203685477,"currency":"jpy"}}`,
		`{"product_id":"SKU","quantity":0,"unit_price":null}`, `null`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzJSON[value.OrderItem](t, data) })
}

func FuzzAddressJSON(f *testing.F) {
	for _, s := range []string{
		`{"label":"Home","line1":"221B Baker Street","city":"London","postal_code":"NW1 6XE","country":"gb"}`,
		`{"line1":" a ","city":"\u00a0b","postal_code":"c","country":"de","extra":1}`,
		`{"line1":"a\nb","city":"b","postal_code":"c","country":"DE"}`, `null`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzJSON[value.Address](t, data) })
}
