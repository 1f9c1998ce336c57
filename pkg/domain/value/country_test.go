package value_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

func TestNewCountryCodeAcceptsEveryAssignedCode(t *testing.T) {
	accepted := 0
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			code := string([]rune{a, b})
			c, err := value.NewCountryCode(code)
			if err != nil {
				requireRule(t, err, "country.unknown", "country")
				continue
			}
			accepted++
			require.Equal(t, code, c.String())
		}
	}
	require.Equal(t, 249, accepted, "ISO 3166-1 has 249 officially assigned alpha-2 codes")
}

func TestNewCountryCodeNormalises(t *testing.T) {
	for in, want := range map[string]string{"de": "DE", " us ": "US", "Gb": "GB", "ax": "AX", "SS": "SS", "BQ": "BQ"} {
		c, err := value.NewCountryCode(in)
		require.NoError(t, err, in)
		require.Equal(t, want, c.String())
		require.False(t, c.IsZero())
	}
}

func TestNewCountryCodeRejects(t *testing.T) {
	tests := []struct {
		name, in, code string
	}{
		{"empty", "", "country.required"},
		{"blank", "  ", "country.required"},
		{"one letter", "D", "country.invalid_format"},
		{"alpha-3", "DEU", "country.invalid_format"},
		{"numeric", "276", "country.invalid_format"},
		{"digits", "12", "country.invalid_format"},
		{"dotless i", "ıt", "country.invalid_format"},
		{"fullwidth", "ＤＥ", "country.invalid_format"},
		{"inner space", "D E", "country.invalid_format"},
		{"user-assigned Kosovo", "XK", "country.unknown"},
		{"reserved UK", "UK", "country.unknown"},
		{"reserved EU", "EU", "country.unknown"},
		{"withdrawn AN", "AN", "country.unknown"},
		{"unassigned", "ZZ", "country.unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := value.NewCountryCode(tt.in)
			requireRule(t, err, tt.code, "country")
			require.True(t, c.IsZero())
		})
	}
}

func TestCountryCodeText(t *testing.T) {
	var c value.CountryCode
	require.NoError(t, c.UnmarshalText([]byte("fr")))
	b, err := c.MarshalText()
	require.NoError(t, err)
	require.Equal(t, "FR", string(b))
	require.NoError(t, c.UnmarshalText(nil))
	require.True(t, c.IsZero())
	requireRule(t, c.UnmarshalText([]byte("XX")), "country.unknown", "country")
}
