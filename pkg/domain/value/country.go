package value

import (
	"strings"

	"github.com/orderstream/orderstream/pkg/domain"
)

// CountryCode is an officially assigned ISO 3166-1 alpha-2 code, upper-case.
type CountryCode struct {
	code string
}

// NewCountryCode validates raw (any letter case) against the ISO 3166-1
// table.
func NewCountryCode(raw string) (CountryCode, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return CountryCode{}, domain.NewValidationError("country.required", "country", "a country is required")
	}
	// Only ASCII letters are case-folded: strings.ToUpper would turn the
	// dotless "ı" into "I" and let "ıt" pass as Italy.
	if len(s) != 2 || !isASCIIAlpha(s[0]) || !isASCIIAlpha(s[1]) {
		return CountryCode{}, domain.NewValidationError("country.invalid_format", "country",
			"a country must be a two-letter ISO 3166-1 code, like DE or US")
	}
	s = strings.ToUpper(s)
	if _, ok := countryCodes[s]; !ok {
		return CountryCode{}, domain.NewValidationError("country.unknown", "country",
			s+" is not an assigned ISO 3166-1 country code")
	}
	return CountryCode{code: s}, nil
}

// String returns the upper-case code, or "" for the zero value.
func (c CountryCode) String() string { return c.code }

// IsZero reports whether c is the zero value (no country).
func (c CountryCode) IsZero() bool { return c.code == "" }

// MarshalText encodes c as its code.
func (c CountryCode) MarshalText() ([]byte, error) { return []byte(c.code), nil }

// UnmarshalText decodes and validates a code; empty text is the zero value.
func (c *CountryCode) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*c = CountryCode{}
		return nil
	}
	v, err := NewCountryCode(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}
