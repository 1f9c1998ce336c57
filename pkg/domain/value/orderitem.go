package value

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/orderstream/orderstream/pkg/domain"
)

// Limits of an order line.
const (
	MaxProductIDLen = 64
	MaxQuantity     = 10_000
)

// OrderItem is one line of an order: a product, how many, and the price of
// one. The line total is computed once here, so a line whose total does not
// fit in int64 minor units is refused at construction and LineTotal cannot
// fail.
type OrderItem struct {
	productID string
	quantity  int64
	unitPrice Money
	lineTotal Money
}

// NewOrderItem validates one order line. The product id is trimmed and must
// be 1..64 visible ASCII characters (no spaces inside): ids are keys shared
// with other systems, where a look-alike Unicode character or a stray space
// would make two ids that print the same compare different.
func NewOrderItem(productID string, quantity int64, unitPrice Money) (OrderItem, error) {
	id := strings.TrimSpace(productID)
	switch {
	case id == "":
		return OrderItem{}, domain.NewValidationError("order_item.product_id_required", "product_id",
			"a product id is required")
	case len(id) > MaxProductIDLen:
		return OrderItem{}, domain.NewValidationError("order_item.product_id_too_long", "product_id",
			"a product id must be at most 64 characters")
	case !isVisibleASCII(id):
		return OrderItem{}, domain.NewValidationError("order_item.product_id_invalid", "product_id",
			"a product id may contain only visible ASCII characters, without spaces")
	case quantity <= 0:
		return OrderItem{}, domain.NewValidationError("order_item.quantity_invalid", "quantity",
			"the quantity must be at least 1")
	case quantity > MaxQuantity:
		return OrderItem{}, domain.NewValidationError("order_item.quantity_too_large", "quantity",
			"the quantity must be at most 10000")
	case unitPrice.Currency().IsZero():
		return OrderItem{}, domain.NewValidationError("order_item.unit_price_required", "unit_price",
			"a unit price with a currency is required")
	case unitPrice.IsNegative():
		return OrderItem{}, domain.NewValidationError("order_item.unit_price_negative", "unit_price",
			"the unit price cannot be negative")
	}
	total, err := unitPrice.Multiply(quantity)
	if err != nil {
		return OrderItem{}, domain.NewValidationError("order_item.total_overflow", "unit_price",
			"the unit price times the quantity is too large")
	}
	return OrderItem{productID: id, quantity: quantity, unitPrice: unitPrice, lineTotal: total}, nil
}

// ProductID returns the product id.
func (i OrderItem) ProductID() string { return i.productID }

// Quantity returns how many units the line orders.
func (i OrderItem) Quantity() int64 { return i.quantity }

// UnitPrice returns the price of one unit.
func (i OrderItem) UnitPrice() Money { return i.unitPrice }

// LineTotal returns the unit price times the quantity.
func (i OrderItem) LineTotal() Money { return i.lineTotal }

// Currency returns the currency of the line's prices.
func (i OrderItem) Currency() Currency { return i.unitPrice.Currency() }

// IsZero reports whether i is the zero value (no line).
func (i OrderItem) IsZero() bool { return i == OrderItem{} }

// String describes the line for logs, such as "2 x SKU-1 @ 9.99 EUR".
func (i OrderItem) String() string {
	if i.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d x %s @ %s", i.quantity, i.productID, i.unitPrice)
}

type orderItemJSON struct {
	ProductID string `json:"product_id"`
	Quantity  int64  `json:"quantity"`
	UnitPrice Money  `json:"unit_price"`
}

// MarshalJSON encodes the line as {"product_id", "quantity", "unit_price"};
// the line total is derived, so it is not stored. The zero value is null.
func (i OrderItem) MarshalJSON() ([]byte, error) {
	if i.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(orderItemJSON{ProductID: i.productID, Quantity: i.quantity, UnitPrice: i.unitPrice})
}

// UnmarshalJSON decodes and validates what MarshalJSON produced.
func (i *OrderItem) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*i = OrderItem{}
		return nil
	}
	var j orderItemJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decoding order item: %w", err)
	}
	v, err := NewOrderItem(j.ProductID, j.Quantity, j.UnitPrice)
	if err != nil {
		return err
	}
	*i = v
	return nil
}

func isVisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
