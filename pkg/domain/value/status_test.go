package value_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

func TestParseOrderStatus(t *testing.T) {
	tests := []struct {
		in   string
		want value.OrderStatus
		code string
	}{
		{in: "CREATED", want: value.OrderStatusCreated},
		{in: "confirmed", want: value.OrderStatusConfirmed},
		{in: " Shipped ", want: value.OrderStatusShipped},
		{in: "DELIVERED", want: value.OrderStatusDelivered},
		{in: "cancelled", want: value.OrderStatusCancelled},
		{in: "", code: "order_status.required"},
		{in: "CANCELED", code: "order_status.invalid"},
		{in: "NEW", code: "order_status.invalid"},
		{in: "1", code: "order_status.invalid"},
		{in: "SHIPPED\x00", code: "order_status.invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := value.ParseOrderStatus(tt.in)
			if tt.code != "" {
				requireRule(t, err, tt.code, "status")
				require.False(t, got.IsValid())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.True(t, got.IsValid())
		})
	}
}

func TestOrderStatusNamesAndTerminal(t *testing.T) {
	want := map[value.OrderStatus]struct {
		name     string
		terminal bool
	}{
		value.OrderStatusCreated:   {"CREATED", false},
		value.OrderStatusConfirmed: {"CONFIRMED", false},
		value.OrderStatusShipped:   {"SHIPPED", false},
		value.OrderStatusDelivered: {"DELIVERED", true},
		value.OrderStatusCancelled: {"CANCELLED", true},
	}
	for s, w := range want {
		require.Equal(t, w.name, s.String())
		require.Equal(t, w.terminal, s.IsTerminal(), w.name)
		b, err := s.MarshalText()
		require.NoError(t, err)
		var got value.OrderStatus
		require.NoError(t, got.UnmarshalText(b))
		require.Equal(t, s, got)
	}
	require.Empty(t, value.OrderStatus(0).String())
	require.Empty(t, value.OrderStatus(99).String())
	require.False(t, value.OrderStatus(99).IsValid())
	var s value.OrderStatus
	require.NoError(t, s.UnmarshalText(nil))
	require.Zero(t, s)
	requireRule(t, s.UnmarshalText([]byte("LOST")), "order_status.invalid", "status")
}

func TestParseCustomerStatus(t *testing.T) {
	tests := []struct {
		in   string
		want value.CustomerStatus
		code string
	}{
		{in: "ACTIVE", want: value.CustomerStatusActive},
		{in: "suspended", want: value.CustomerStatusSuspended},
		{in: " Deactivated\n", want: value.CustomerStatusDeactivated},
		{in: "", code: "customer_status.required"},
		{in: "INACTIVE", code: "customer_status.invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := value.ParseCustomerStatus(tt.in)
			if tt.code != "" {
				requireRule(t, err, tt.code, "status")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.True(t, got.IsValid())
			b, err := got.MarshalText()
			require.NoError(t, err)
			var back value.CustomerStatus
			require.NoError(t, back.UnmarshalText(b))
			require.Equal(t, got, back)
		})
	}
	require.Empty(t, value.CustomerStatus(0).String())
	var s value.CustomerStatus
	require.NoError(t, s.UnmarshalText(nil))
	requireRule(t, s.UnmarshalText([]byte("x")), "customer_status.invalid", "status")
}

func TestParseCustomerTier(t *testing.T) {
	tests := []struct {
		in   string
		want value.CustomerTier
		rank int
		code string
	}{
		{in: "BRONZE", want: value.CustomerTierBronze, rank: 1},
		{in: "silver", want: value.CustomerTierSilver, rank: 2},
		{in: "Gold", want: value.CustomerTierGold, rank: 3},
		{in: " PLATINUM ", want: value.CustomerTierPlatinum, rank: 4},
		{in: "", code: "customer_tier.required"},
		{in: "DIAMOND", code: "customer_tier.invalid"},
		{in: "PLATINUM2", code: "customer_tier.invalid"},
		{in: "GOL\u212A", code: "customer_tier.invalid"}, // Kelvin sign, folds to k in strings.EqualFold
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := value.ParseCustomerTier(tt.in)
			if tt.code != "" {
				requireRule(t, err, tt.code, "tier")
				require.Zero(t, got.Rank())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.rank, got.Rank())
			b, err := got.MarshalText()
			require.NoError(t, err)
			var back value.CustomerTier
			require.NoError(t, back.UnmarshalText(b))
			require.Equal(t, got, back)
		})
	}
}

func TestCustomerTierOrder(t *testing.T) {
	tiers := []value.CustomerTier{
		value.CustomerTierBronze, value.CustomerTierSilver, value.CustomerTierGold, value.CustomerTierPlatinum,
	}
	for i, a := range tiers {
		for j, b := range tiers {
			require.Equal(t, i < j, a.Less(b), "%s < %s", a, b)
		}
		require.True(t, value.CustomerTier(0).Less(a), "no tier ranks below every tier")
	}
	require.Zero(t, value.CustomerTier(42).Rank())
	require.Empty(t, value.CustomerTier(42).String())
	var tier value.CustomerTier
	require.NoError(t, tier.UnmarshalText(nil))
	require.Zero(t, tier)
	requireRule(t, tier.UnmarshalText([]byte("IRON")), "customer_tier.invalid", "tier")
}
