package value_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

func validAddressFields() value.AddressFields {
	return value.AddressFields{
		Label:      "Home",
		Line1:      "221B Baker Street",
		Line2:      "Flat 2",
		City:       "London",
		Region:     "Greater London",
		PostalCode: "NW1 6XE",
		Country:    "GB",
	}
}

func TestNewAddressAccepts(t *testing.T) {
	tests := []struct {
		name string
		edit func(*value.AddressFields)
		want func(*value.AddressFields)
	}{
		{name: "complete", edit: func(*value.AddressFields) {}, want: func(*value.AddressFields) {}},
		{
			name: "optional fields empty",
			edit: func(f *value.AddressFields) { f.Label, f.Line2, f.Region = "", "", "" },
			want: func(f *value.AddressFields) { f.Label, f.Line2, f.Region = "", "", "" },
		},
		{
			name: "trimmed and country upper-cased",
			edit: func(f *value.AddressFields) {
				f.Line1, f.City, f.PostalCode, f.Country = "  221B Baker Street\t", "\u00a0London ", " NW1 6XE ", "gb"
			},
			want: func(*value.AddressFields) {},
		},
		{
			name: "unicode text",
			edit: func(f *value.AddressFields) {
				f.Line1, f.City, f.Country = "Königsallee 1", "Düsseldorf", "DE"
			},
			want: func(f *value.AddressFields) {
				f.Line1, f.City, f.Country = "Königsallee 1", "Düsseldorf", "DE"
			},
		},
		{
			name: "persian with zero-width non-joiner",
			edit: func(f *value.AddressFields) { f.City, f.Country = "می\u200cخواهم", "IR" },
			want: func(f *value.AddressFields) { f.City, f.Country = "می\u200cخواهم", "IR" },
		},
		{
			name: "limits counted in characters",
			edit: func(f *value.AddressFields) {
				f.Label = strings.Repeat("ä", 40)
				f.Line1 = strings.Repeat("日", 200)
				f.Line2 = strings.Repeat("x", 200)
				f.City = strings.Repeat("é", 100)
				f.Region = strings.Repeat("r", 100)
				f.PostalCode = strings.Repeat("9", 20)
			},
			want: func(f *value.AddressFields) {
				f.Label = strings.Repeat("ä", 40)
				f.Line1 = strings.Repeat("日", 200)
				f.Line2 = strings.Repeat("x", 200)
				f.City = strings.Repeat("é", 100)
				f.Region = strings.Repeat("r", 100)
				f.PostalCode = strings.Repeat("9", 20)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, want := validAddressFields(), validAddressFields()
			tt.edit(&in)
			tt.want(&want)
			a, err := value.NewAddress(in)
			require.NoError(t, err)
			require.Equal(t, want, a.Fields())
			require.Equal(t, want.Label, a.Label())
			require.Equal(t, want.Line1, a.Line1())
			require.Equal(t, want.Line2, a.Line2())
			require.Equal(t, want.City, a.City())
			require.Equal(t, want.Region, a.Region())
			require.Equal(t, want.PostalCode, a.PostalCode())
			require.Equal(t, want.Country, a.Country().String())
			require.False(t, a.IsZero())
		})
	}
}

func TestNewAddressRejects(t *testing.T) {
	tests := []struct {
		name        string
		edit        func(*value.AddressFields)
		code, field string
	}{
		{"label too long", func(f *value.AddressFields) { f.Label = strings.Repeat("a", 41) }, "address.label_too_long", "label"},
		{"label control", func(f *value.AddressFields) { f.Label = "Ho\x07me" }, "address.label_invalid", "label"},
		{"line1 missing", func(f *value.AddressFields) { f.Line1 = "" }, "address.line1_required", "line1"},
		{"line1 blank", func(f *value.AddressFields) { f.Line1 = " \t " }, "address.line1_required", "line1"},
		{"line1 too long", func(f *value.AddressFields) { f.Line1 = strings.Repeat("a", 201) }, "address.line1_too_long", "line1"},
		{"line1 newline", func(f *value.AddressFields) { f.Line1 = "221B\nBaker Street" }, "address.line1_invalid", "line1"},
		{"line1 invalid utf8", func(f *value.AddressFields) { f.Line1 = "Baker \xff Street" }, "address.line1_invalid", "line1"},
		{"line1 bidi override", func(f *value.AddressFields) { f.Line1 = "Baker \u202eteertS" }, "address.line1_invalid", "line1"},
		{"line1 line separator", func(f *value.AddressFields) { f.Line1 = "Baker\u2028Street" }, "address.line1_invalid", "line1"},
		{"line2 too long", func(f *value.AddressFields) { f.Line2 = strings.Repeat("a", 201) }, "address.line2_too_long", "line2"},
		{"line2 tab", func(f *value.AddressFields) { f.Line2 = "Flat\t2" }, "address.line2_invalid", "line2"},
		{"city missing", func(f *value.AddressFields) { f.City = "" }, "address.city_required", "city"},
		{"city too long", func(f *value.AddressFields) { f.City = strings.Repeat("é", 101) }, "address.city_too_long", "city"},
		{"city C1 control", func(f *value.AddressFields) { f.City = "Lon\u0085don" }, "address.city_invalid", "city"},
		{"region too long", func(f *value.AddressFields) { f.Region = strings.Repeat("a", 101) }, "address.region_too_long", "region"},
		{"region nul", func(f *value.AddressFields) { f.Region = "a\x00" }, "address.region_invalid", "region"},
		{"postal code missing", func(f *value.AddressFields) { f.PostalCode = "" }, "address.postal_code_required", "postal_code"},
		{"postal code too long", func(f *value.AddressFields) { f.PostalCode = strings.Repeat("1", 21) }, "address.postal_code_too_long", "postal_code"},
		{"postal code bom", func(f *value.AddressFields) { f.PostalCode = "NW1\ufeff6XE" }, "address.postal_code_invalid", "postal_code"},
		{"country missing", func(f *value.AddressFields) { f.Country = "" }, "country.required", "country"},
		{"country name", func(f *value.AddressFields) { f.Country = "Germany" }, "country.invalid_format", "country"},
		{"country unknown", func(f *value.AddressFields) { f.Country = "XK" }, "country.unknown", "country"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := validAddressFields()
			tt.edit(&f)
			a, err := value.NewAddress(f)
			requireRule(t, err, tt.code, tt.field)
			require.True(t, a.IsZero())
		})
	}
}

func TestAddressStringAndJSON(t *testing.T) {
	a, err := value.NewAddress(validAddressFields())
	require.NoError(t, err)
	require.Equal(t, "221B Baker Street, Flat 2, London, Greater London, NW1 6XE, GB", a.String())
	require.Empty(t, value.Address{}.String())

	b, err := json.Marshal(a)
	require.NoError(t, err)
	require.JSONEq(t, `{"label":"Home","line1":"221B Baker Street","line2":"Flat 2","city":"London",
		"region":"Greater London","postal_code":"NW1 6XE","country":"GB"}`, string(b))
	var got value.Address
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, a, got)

	b, err = json.Marshal(value.Address{})
	require.NoError(t, err)
	require.Equal(t, "null", string(b))
	require.NoError(t, json.Unmarshal(b, &got))
	require.True(t, got.IsZero())

	requireRule(t, json.Unmarshal([]byte(`{"line1":"x","city":"y","postal_code":"z","country":"QQ"}`), &got),
		"country.unknown", "country")
	require.Error(t, json.Unmarshal([]byte(`{"line1":5}`), &got))
}
