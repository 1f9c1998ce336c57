package value

import (
	"strings"

	"github.com/orderstream/orderstream/pkg/domain"
)

// OrderStatus is where an order is in its lifecycle. The zero value is no
// status (an order that does not exist yet).
type OrderStatus uint8

// The order lifecycle: CREATED → CONFIRMED → SHIPPED → DELIVERED, and
// CANCELLED from CREATED, CONFIRMED or SHIPPED. The numeric values are not
// stored anywhere (the text form is), so they may be reordered freely.
const (
	OrderStatusCreated OrderStatus = iota + 1
	OrderStatusConfirmed
	OrderStatusShipped
	OrderStatusDelivered
	OrderStatusCancelled
)

var orderStatusNames = [...]string{
	OrderStatusCreated:   "CREATED",
	OrderStatusConfirmed: "CONFIRMED",
	OrderStatusShipped:   "SHIPPED",
	OrderStatusDelivered: "DELIVERED",
	OrderStatusCancelled: "CANCELLED",
}

// ParseOrderStatus accepts a status name in any letter case, so that a query
// string may say ?status=shipped.
func ParseOrderStatus(raw string) (OrderStatus, error) {
	i, err := parseEnum(raw, orderStatusNames[:], "order_status", "status",
		"an order status must be one of CREATED, CONFIRMED, SHIPPED, DELIVERED or CANCELLED")
	return OrderStatus(i), err
}

// String returns the upper-case name, or "" for the zero value.
func (s OrderStatus) String() string { return enumName(orderStatusNames[:], int(s)) }

// IsValid reports whether s is one of the defined statuses.
func (s OrderStatus) IsValid() bool { return enumName(orderStatusNames[:], int(s)) != "" }

// IsTerminal reports whether no transition leaves s.
func (s OrderStatus) IsTerminal() bool {
	return s == OrderStatusDelivered || s == OrderStatusCancelled
}

// MarshalText encodes s as its name.
func (s OrderStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a name; empty text is the zero value.
func (s *OrderStatus) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = 0
		return nil
	}
	v, err := ParseOrderStatus(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// CustomerStatus is whether a customer may act. The zero value is no status
// (a customer that does not exist yet).
type CustomerStatus uint8

// Customer statuses: ACTIVE ⇄ SUSPENDED, either → DEACTIVATED, which is
// final.
const (
	CustomerStatusActive CustomerStatus = iota + 1
	CustomerStatusSuspended
	CustomerStatusDeactivated
)

var customerStatusNames = [...]string{
	CustomerStatusActive:      "ACTIVE",
	CustomerStatusSuspended:   "SUSPENDED",
	CustomerStatusDeactivated: "DEACTIVATED",
}

// ParseCustomerStatus accepts a status name in any letter case.
func ParseCustomerStatus(raw string) (CustomerStatus, error) {
	i, err := parseEnum(raw, customerStatusNames[:], "customer_status", "status",
		"a customer status must be one of ACTIVE, SUSPENDED or DEACTIVATED")
	return CustomerStatus(i), err
}

// String returns the upper-case name, or "" for the zero value.
func (s CustomerStatus) String() string { return enumName(customerStatusNames[:], int(s)) }

// IsValid reports whether s is one of the defined statuses.
func (s CustomerStatus) IsValid() bool { return enumName(customerStatusNames[:], int(s)) != "" }

// MarshalText encodes s as its name.
func (s CustomerStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a name; empty text is the zero value.
func (s *CustomerStatus) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = 0
		return nil
	}
	v, err := ParseCustomerStatus(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// CustomerTier is a customer's loyalty tier. Tiers are ordered; the zero
// value is no tier and ranks below all of them.
type CustomerTier uint8

// Tiers from lowest to highest. Their order is their rank.
const (
	CustomerTierBronze CustomerTier = iota + 1
	CustomerTierSilver
	CustomerTierGold
	CustomerTierPlatinum
)

var customerTierNames = [...]string{
	CustomerTierBronze:   "BRONZE",
	CustomerTierSilver:   "SILVER",
	CustomerTierGold:     "GOLD",
	CustomerTierPlatinum: "PLATINUM",
}

// ParseCustomerTier accepts a tier name in any letter case.
func ParseCustomerTier(raw string) (CustomerTier, error) {
	i, err := parseEnum(raw, customerTierNames[:], "customer_tier", "tier",
		"a customer tier must be one of BRONZE, SILVER, GOLD or PLATINUM")
	return CustomerTier(i), err
}

// Rank returns 1 for BRONZE up to 4 for PLATINUM, and 0 for no tier.
func (t CustomerTier) Rank() int {
	if !t.IsValid() {
		return 0
	}
	return int(t)
}

// Less reports whether t ranks below o.
func (t CustomerTier) Less(o CustomerTier) bool { return t.Rank() < o.Rank() }

// String returns the upper-case name, or "" for the zero value.
func (t CustomerTier) String() string { return enumName(customerTierNames[:], int(t)) }

// IsValid reports whether t is one of the defined tiers.
func (t CustomerTier) IsValid() bool { return enumName(customerTierNames[:], int(t)) != "" }

// MarshalText encodes t as its name.
func (t CustomerTier) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText decodes a name; empty text is the zero value.
func (t *CustomerTier) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*t = 0
		return nil
	}
	v, err := ParseCustomerTier(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// parseEnum finds raw among names (index 0 is unused), ignoring case and
// surrounding whitespace. Only ASCII case is folded, so that a Unicode
// look-alike never maps onto a name.
func parseEnum(raw string, names []string, code, field, message string) (int, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return 0, domain.NewValidationError(code+".required", field, message)
	}
	for i, n := range names {
		if n != "" && asciiEqualFold(s, n) {
			return i, nil
		}
	}
	return 0, domain.NewValidationError(code+".invalid", field, message)
}

func enumName(names []string, i int) string {
	if i <= 0 || i >= len(names) {
		return ""
	}
	return names[i]
}

// asciiEqualFold is strings.EqualFold restricted to ASCII: EqualFold treats
// the Kelvin sign "K" as "k", which would let "PLATINUM" be spelled with
// look-alike runes.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
