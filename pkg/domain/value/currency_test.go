package value_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

func TestNewCurrencyMinorUnits(t *testing.T) {
	tests := []struct {
		in    string
		code  string
		minor int
	}{
		{"USD", "USD", 2},
		{"eur", "EUR", 2},
		{" gbp ", "GBP", 2},
		{"JPY", "JPY", 0},
		{"KRW", "KRW", 0},
		{"ISK", "ISK", 0},
		{"CLP", "CLP", 0},
		{"XOF", "XOF", 0},
		{"KWD", "KWD", 3},
		{"BHD", "BHD", 3},
		{"TND", "TND", 3},
		{"CLF", "CLF", 4},
		{"UYW", "UYW", 4},
		{"CHF", "CHF", 2},
		{"XCG", "XCG", 2},
		{"ZWG", "ZWG", 2},
		{"SLE", "SLE", 2},
		{"VED", "VED", 2},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, err := value.NewCurrency(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.code, c.String())
			require.Equal(t, tt.code, c.Code())
			require.Equal(t, tt.minor, c.MinorUnits())
			require.False(t, c.IsZero())
		})
	}
}

func TestNewCurrencyTableSize(t *testing.T) {
	accepted := 0
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			for c := 'A'; c <= 'Z'; c++ {
				if cur, err := value.NewCurrency(string([]rune{a, b, c})); err == nil {
					accepted++
					require.Contains(t, []int{0, 2, 3, 4}, cur.MinorUnits())
				}
			}
		}
	}
	// Every active ISO 4217 code with a minor unit; see currency_table.go
	// for what is left out and why.
	require.Equal(t, 165, accepted)
}

func TestNewCurrencyRejects(t *testing.T) {
	tests := []struct {
		name, in, code string
	}{
		{"empty", "", "currency.required"},
		{"blank", "\t", "currency.required"},
		{"two letters", "US", "currency.invalid_format"},
		{"four letters", "USDT", "currency.invalid_format"},
		{"numeric", "840", "currency.invalid_format"},
		{"symbol", "$", "currency.invalid_format"},
		{"unicode", "€UR", "currency.invalid_format"},
		{"unknown", "ABC", "currency.unknown"},
		{"withdrawn HRK", "HRK", "currency.unknown"},
		{"no minor unit gold", "XAU", "currency.unknown"},
		{"no minor unit SDR", "XDR", "currency.unknown"},
		{"testing code", "XTS", "currency.unknown"},
		{"no currency", "XXX", "currency.unknown"},
		{"crypto", "BTC", "currency.unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := value.NewCurrency(tt.in)
			requireRule(t, err, tt.code, "currency")
			require.True(t, c.IsZero())
		})
	}
}

func TestCurrencyText(t *testing.T) {
	var c value.Currency
	require.NoError(t, c.UnmarshalText([]byte("jpy")))
	require.Equal(t, 0, c.MinorUnits())
	b, err := c.MarshalText()
	require.NoError(t, err)
	require.Equal(t, "JPY", string(b))
	require.NoError(t, c.UnmarshalText(nil))
	require.True(t, c.IsZero())
	requireRule(t, c.UnmarshalText([]byte("ABC")), "currency.unknown", "currency")
}
