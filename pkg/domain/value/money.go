package value

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/orderstream/orderstream/pkg/domain"
)

// Money is an amount in a currency's minor units (cents for USD, yen for
// JPY) as an int64. There are no floats anywhere: 0.1 + 0.2 must be 0.3.
// Negative amounts are allowed (refunds, discounts); rules that need a
// non-negative amount, such as an item's price, check it themselves.
type Money struct {
	amount   int64
	currency Currency
}

// NewMoney returns minor units of currency. The currency must be set.
func NewMoney(minorUnits int64, currency Currency) (Money, error) {
	if currency.IsZero() {
		return Money{}, domain.NewValidationError("money.currency_required", "currency",
			"an amount of money needs a currency")
	}
	return Money{amount: minorUnits, currency: currency}, nil
}

// Amount returns the amount in minor units.
func (m Money) Amount() int64 { return m.amount }

// Currency returns the currency.
func (m Money) Currency() Currency { return m.currency }

// IsZero reports whether m is the zero value (no amount and no currency).
// An amount of 0 in a currency is not zero in this sense.
func (m Money) IsZero() bool { return m == Money{} }

// IsNegative reports whether the amount is below zero.
func (m Money) IsNegative() bool { return m.amount < 0 }

// Add returns m + o. Both must be in the same currency; a sum outside int64
// is an error rather than a silent wrap-around.
func (m Money) Add(o Money) (Money, error) {
	if m.currency != o.currency {
		return Money{}, domain.NewValidationError("money.currency_mismatch", "currency",
			fmt.Sprintf("cannot add %s to %s", o.currency, m.currency))
	}
	if (o.amount > 0 && m.amount > math.MaxInt64-o.amount) ||
		(o.amount < 0 && m.amount < math.MinInt64-o.amount) {
		return Money{}, domain.NewValidationError("money.overflow", "amount", "the amount is too large")
	}
	return Money{amount: m.amount + o.amount, currency: m.currency}, nil
}

// Multiply returns m × qty, or an error when the product leaves int64.
func (m Money) Multiply(qty int64) (Money, error) {
	if m.amount == 0 || qty == 0 {
		return Money{amount: 0, currency: m.currency}, nil
	}
	p := m.amount * qty
	// The division check misses exactly one case: MinInt64 × -1 wraps to
	// MinInt64, and MinInt64 / -1 wraps back to MinInt64.
	if p/qty != m.amount || (m.amount == -1 && qty == math.MinInt64) || (qty == -1 && m.amount == math.MinInt64) {
		return Money{}, domain.NewValidationError("money.overflow", "amount", "the amount is too large")
	}
	return Money{amount: p, currency: m.currency}, nil
}

// String formats m with the currency's decimal places and its code, such as
// "12.34 USD", "-0.05 EUR" or "1200 JPY". It is for people and logs,
// never parsed back.
func (m Money) String() string {
	if m.IsZero() {
		return ""
	}
	neg := m.amount < 0
	// Through uint64 so that MinInt64, whose negation does not fit in int64,
	// prints correctly.
	u := uint64(m.amount)
	if neg {
		u = -u
	}
	digits := strconv.FormatUint(u, 10)
	if e := m.currency.MinorUnits(); e > 0 {
		for len(digits) <= e {
			digits = "0" + digits
		}
		digits = digits[:len(digits)-e] + "." + digits[len(digits)-e:]
	}
	if neg {
		digits = "-" + digits
	}
	return digits + " " + m.currency.String()
}

type moneyJSON struct {
	Amount   int64    `json:"amount"`
	Currency Currency `json:"currency"`
}

// MarshalJSON encodes m as {"amount": minor units, "currency": code}, or
// null for the zero value.
func (m Money) MarshalJSON() ([]byte, error) {
	if m.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(moneyJSON{Amount: m.amount, Currency: m.currency})
}

// UnmarshalJSON decodes and validates what MarshalJSON produced.
func (m *Money) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*m = Money{}
		return nil
	}
	var j moneyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decoding money: %w", err)
	}
	v, err := NewMoney(j.Amount, j.Currency)
	if err != nil {
		return err
	}
	*m = v
	return nil
}
