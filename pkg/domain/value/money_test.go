package value_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

func TestNewMoney(t *testing.T) {
	m := money(t, 1234, "USD")
	require.Equal(t, int64(1234), m.Amount())
	require.Equal(t, "USD", m.Currency().String())
	require.False(t, m.IsZero())
	require.False(t, money(t, 0, "USD").IsZero(), "0 USD is an amount, not absent")
	require.True(t, value.Money{}.IsZero())
	require.True(t, money(t, -1, "EUR").IsNegative())

	_, err := value.NewMoney(1, value.Currency{})
	requireRule(t, err, "money.currency_required", "currency")
}

func TestMoneyString(t *testing.T) {
	tests := []struct {
		minor int64
		code  string
		want  string
	}{
		{1234, "USD", "12.34 USD"},
		{5, "USD", "0.05 USD"},
		{0, "USD", "0.00 USD"},
		{-5, "EUR", "-0.05 EUR"},
		{-1234, "EUR", "-12.34 EUR"},
		{1200, "JPY", "1200 JPY"},
		{-7, "JPY", "-7 JPY"},
		{1, "KWD", "0.001 KWD"},
		{12345, "CLF", "1.2345 CLF"},
		{math.MaxInt64, "USD", "92233720368547758.07 USD"},
		{math.MinInt64, "USD", "-92233720368547758.08 USD"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, money(t, tt.minor, tt.code).String())
		})
	}
	require.Empty(t, value.Money{}.String())
}

func TestMoneyAdd(t *testing.T) {
	tests := []struct {
		name string
		a, b int64
		want int64
		code string
	}{
		{name: "simple", a: 150, b: 250, want: 400},
		{name: "negative", a: 150, b: -250, want: -100},
		{name: "to max", a: math.MaxInt64 - 1, b: 1, want: math.MaxInt64},
		{name: "to min", a: math.MinInt64 + 1, b: -1, want: math.MinInt64},
		{name: "max plus min", a: math.MaxInt64, b: math.MinInt64, want: -1},
		{name: "over max", a: math.MaxInt64, b: 1, code: "money.overflow"},
		{name: "under min", a: math.MinInt64, b: -1, code: "money.overflow"},
		{name: "big plus big", a: math.MaxInt64 / 2, b: math.MaxInt64/2 + 2, code: "money.overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := money(t, tt.a, "EUR").Add(money(t, tt.b, "EUR"))
			if tt.code != "" {
				requireRule(t, err, tt.code, "amount")
				return
			}
			require.NoError(t, err)
			require.Equal(t, money(t, tt.want, "EUR"), got)
		})
	}

	_, err := money(t, 1, "EUR").Add(money(t, 1, "USD"))
	requireRule(t, err, "money.currency_mismatch", "currency")
}

func TestMoneyMultiply(t *testing.T) {
	tests := []struct {
		name   string
		amount int64
		qty    int64
		want   int64
		code   string
	}{
		{name: "simple", amount: 199, qty: 3, want: 597},
		{name: "by zero", amount: 199, qty: 0, want: 0},
		{name: "zero amount by max", amount: 0, qty: math.MaxInt64, want: 0},
		{name: "negative", amount: -5, qty: 3, want: -15},
		{name: "negative qty", amount: 5, qty: -3, want: -15},
		{name: "largest", amount: math.MaxInt64 / 10_000, qty: 10_000, want: math.MaxInt64 / 10_000 * 10_000},
		{name: "just over", amount: math.MaxInt64/10_000 + 1, qty: 10_000, code: "money.overflow"},
		{name: "max by two", amount: math.MaxInt64, qty: 2, code: "money.overflow"},
		{name: "min by minus one", amount: math.MinInt64, qty: -1, code: "money.overflow"},
		{name: "minus one by min", amount: -1, qty: math.MinInt64, code: "money.overflow"},
		{name: "min by one", amount: math.MinInt64, qty: 1, want: math.MinInt64},
		{name: "square overflow", amount: 1 << 32, qty: 1 << 32, code: "money.overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := money(t, tt.amount, "USD").Multiply(tt.qty)
			if tt.code != "" {
				requireRule(t, err, tt.code, "amount")
				return
			}
			require.NoError(t, err)
			require.Equal(t, money(t, tt.want, "USD"), got)
		})
	}
}

func TestMoneyJSON(t *testing.T) {
	m := money(t, -1234, "KWD")
	b, err := json.Marshal(m)
	require.NoError(t, err)
	require.JSONEq(t, `{"amount":-1234,"currency":"KWD"}`, string(b))
	var got value.Money
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, m, got)

	b, err = json.Marshal(value.Money{})
	require.NoError(t, err)
	require.Equal(t, "null", string(b))
	require.NoError(t, json.Unmarshal(b, &got))
	require.True(t, got.IsZero())

	requireRule(t, json.Unmarshal([]byte(`{"amount":1}`), &got), "money.currency_required", "currency")
	requireRule(t, json.Unmarshal([]byte(`{"amount":1,"currency":"ABC"}`), &got), "currency.unknown", "currency")
	require.Error(t, json.Unmarshal([]byte(`{"amount":1.5,"currency":"USD"}`), &got), "no fractions of a minor unit")
	require.Error(t, json.Unmarshal([]byte(`{"amount":"1","currency":"USD"}`), &got))
}
