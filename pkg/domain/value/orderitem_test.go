package value_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

func TestNewOrderItemAccepts(t *testing.T) {
	tests := []struct {
		name      string
		productID string
		quantity  int64
		price     value.Money
		wantID    string
		wantTotal value.Money
	}{
		{"simple", "SKU-1", 3, money(t, 199, "USD"), "SKU-1", money(t, 597, "USD")},
		{"trimmed id", "  SKU-1\t", 1, money(t, 199, "USD"), "SKU-1", money(t, 199, "USD")},
		{"free item", "GIFT", 2, money(t, 0, "EUR"), "GIFT", money(t, 0, "EUR")},
		{"max quantity", "SKU-1", 10_000, money(t, 1, "JPY"), "SKU-1", money(t, 10_000, "JPY")},
		{"64 character id", strings.Repeat("x", 64), 1, money(t, 1, "USD"), strings.Repeat("x", 64), money(t, 1, "USD")},
		{"punctuation id", "a/b:c#1~", 1, money(t, 1, "USD"), "a/b:c#1~", money(t, 1, "USD")},
		{
			"largest total", "SKU", 10_000, money(t, math.MaxInt64/10_000, "USD"),
			"SKU", money(t, math.MaxInt64/10_000*10_000, "USD"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, err := value.NewOrderItem(tt.productID, tt.quantity, tt.price)
			require.NoError(t, err)
			require.Equal(t, tt.wantID, it.ProductID())
			require.Equal(t, tt.quantity, it.Quantity())
			require.Equal(t, tt.price, it.UnitPrice())
			require.Equal(t, tt.wantTotal, it.LineTotal())
			require.Equal(t, tt.price.Currency(), it.Currency())
			require.False(t, it.IsZero())
		})
	}
}

func TestNewOrderItemRejects(t *testing.T) {
	tests := []struct {
		name        string
		productID   string
		quantity    int64
		price       value.Money
		code, field string
	}{
		{"empty id", "", 1, money(t, 1, "USD"), "order_item.product_id_required", "product_id"},
		{"blank id", "   ", 1, money(t, 1, "USD"), "order_item.product_id_required", "product_id"},
		{"id too long", strings.Repeat("x", 65), 1, money(t, 1, "USD"), "order_item.product_id_too_long", "product_id"},
		{"id with space", "SKU 1", 1, money(t, 1, "USD"), "order_item.product_id_invalid", "product_id"},
		{"id with unicode", "SKU-ü", 1, money(t, 1, "USD"), "order_item.product_id_invalid", "product_id"},
		{"id with control", "SKU\x01", 1, money(t, 1, "USD"), "order_item.product_id_invalid", "product_id"},
		{"zero quantity", "SKU", 0, money(t, 1, "USD"), "order_item.quantity_invalid", "quantity"},
		{"negative quantity", "SKU", -1, money(t, 1, "USD"), "order_item.quantity_invalid", "quantity"},
		{"quantity too large", "SKU", 10_001, money(t, 1, "USD"), "order_item.quantity_too_large", "quantity"},
		{"no price", "SKU", 1, value.Money{}, "order_item.unit_price_required", "unit_price"},
		{"negative price", "SKU", 1, money(t, -1, "USD"), "order_item.unit_price_negative", "unit_price"},
		{"total overflow", "SKU", 10_000, money(t, math.MaxInt64/10_000+1, "USD"), "order_item.total_overflow", "unit_price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, err := value.NewOrderItem(tt.productID, tt.quantity, tt.price)
			requireRule(t, err, tt.code, tt.field)
			require.True(t, it.IsZero())
		})
	}
}

func TestOrderItemStringAndJSON(t *testing.T) {
	it, err := value.NewOrderItem("SKU-1", 2, money(t, 999, "EUR"))
	require.NoError(t, err)
	require.Equal(t, "2 x SKU-1 @ 9.99 EUR", it.String())
	require.Empty(t, value.OrderItem{}.String())

	b, err := json.Marshal(it)
	require.NoError(t, err)
	require.JSONEq(t, `{"product_id":"SKU-1","quantity":2,"unit_price":{"amount":999,"currency":"EUR"}}`, string(b))
	var got value.OrderItem
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, it, got)
	require.Equal(t, money(t, 1998, "EUR"), got.LineTotal(), "the line total is derived again on decode")

	b, err = json.Marshal(value.OrderItem{})
	require.NoError(t, err)
	require.Equal(t, "null", string(b))

	requireRule(t, json.Unmarshal([]byte(`{"product_id":"SKU","quantity":0,"unit_price":{"amount":1,"currency":"EUR"}}`), &got),
		"order_item.quantity_invalid", "quantity")
	requireRule(t, json.Unmarshal([]byte(`{"product_id":"SKU","quantity":1}`), &got),
		"order_item.unit_price_required", "unit_price")
}
