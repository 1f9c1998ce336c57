package value

import (
	"strings"

	"github.com/orderstream/orderstream/pkg/domain"
)

// Currency is an active ISO 4217 alphabetic currency code together with its
// minor-unit exponent, which says how many decimal places an amount in that
// currency has (USD 2, JPY 0, KWD 3).
type Currency struct {
	code  string
	minor uint8
}

// NewCurrency validates raw (any letter case) against the ISO 4217 table.
func NewCurrency(raw string) (Currency, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Currency{}, domain.NewValidationError("currency.required", "currency", "a currency is required")
	}
	if len(s) != 3 || !isASCIIAlpha(s[0]) || !isASCIIAlpha(s[1]) || !isASCIIAlpha(s[2]) {
		return Currency{}, domain.NewValidationError("currency.invalid_format", "currency",
			"a currency must be a three-letter ISO 4217 code, like EUR or USD")
	}
	s = strings.ToUpper(s)
	minor, ok := currencyMinorUnits[s]
	if !ok {
		return Currency{}, domain.NewValidationError("currency.unknown", "currency",
			s+" is not an active ISO 4217 currency code")
	}
	return Currency{code: s, minor: minor}, nil
}

// String returns the upper-case code, or "" for the zero value.
func (c Currency) String() string { return c.code }

// Code returns the upper-case code, or "" for the zero value.
func (c Currency) Code() string { return c.code }

// MinorUnits returns the number of decimal places of an amount in c.
func (c Currency) MinorUnits() int { return int(c.minor) }

// IsZero reports whether c is the zero value (no currency).
func (c Currency) IsZero() bool { return c.code == "" }

// MarshalText encodes c as its code.
func (c Currency) MarshalText() ([]byte, error) { return []byte(c.code), nil }

// UnmarshalText decodes and validates a code; empty text is the zero value.
func (c *Currency) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*c = Currency{}
		return nil
	}
	v, err := NewCurrency(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}
